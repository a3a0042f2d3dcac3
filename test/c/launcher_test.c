// test-tier: unit
/*
 * launcher_test.c - the native launcher's pure parts (launcher/args.c, env.c, json.c, report.c)
 * against what the TypeScript CLI does with the same input: which command lines it runs itself
 * and which it leaves to Node, sizes, paths, the command's environment, and the JSON it writes.
 * The expected values were printed by Node (parseSize, path.resolve, String(number),
 * JSON.stringify) and are the contract: a launcher that reads a command line differently from
 * run.ts must hand it to Node instead.  And which commands wait for the daemon at the shim's
 * start gate (launcher/gate.c): only those that surely run the shim's constructor.
 */
// test-sources: launcher/args.c launcher/env.c launcher/gate.c launcher/json.c launcher/report.c
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "../../launcher/args.h"
#include "../../launcher/env.h"
#include "../../launcher/gate.h"
#include "../../launcher/json.h"
#include "../../launcher/report.h"

static const char *parse(struct run_opts *o, const char *line)
{
    static char copy[1024];
    static char *argv[64];
    int argc = 0;
    snprintf(copy, sizeof copy, "%s", line);
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save))
        argv[argc++] = strcmp(t, "''") == 0 ? t + 2 : t; /* '' stands for an empty argument */
    argv[argc] = NULL;
    return args_parse(argc, argv, "/work/here", o);
}

static void test_native_command_lines(void)
{
    struct run_opts o;
    CHECK(parse(&o, "-- python3 -c x --root") == NULL, "the plain form is native");
    CHECK(o.nroots == 1 && strcmp(o.roots[0], "/tmp") == 0, "default root /tmp, got %s", o.roots[0]);
    CHECK(o.ncommand == 4 && strcmp(o.command[0], "python3") == 0 && strcmp(o.command[3], "--root") == 0, "command verbatim");
    CHECK(o.budget == -1 && o.headroom == -1 && !o.discard && o.stats_file == NULL && o.log_file == NULL, "nothing else set");
    args_free(&o);

    CHECK(parse(&o, "--root /a/b/ --root=/a//b/. --root rel/../x --budget 64M --headroom=1.5k --stats s.json --log /l/x.log --discard -- true") == NULL,
          "every native flag");
    CHECK(o.nroots == 2, "duplicate roots collapse after resolution, got %zu", o.nroots);
    CHECK(strcmp(o.roots[0], "/a/b") == 0 && strcmp(o.roots[1], "/work/here/x") == 0, "roots %s %s", o.roots[0], o.roots[1]);
    CHECK(o.budget == 64LL << 20 && o.headroom == 1536, "sizes %lld %lld", o.budget, o.headroom);
    CHECK(strcmp(o.stats_file, "/work/here/s.json") == 0 && strcmp(o.log_file, "/l/x.log") == 0, "files resolved");
    CHECK(o.discard, "--discard");
    args_free(&o);

    CHECK(parse(&o, "--keep --root --keep -- true") == NULL, "a value that looks like a flag is a value, as in flags.ts");
    CHECK(strcmp(o.roots[0], "/work/here/--keep") == 0, "got %s", o.roots[0]);
    args_free(&o);
}

static void test_node_command_lines(void)
{
    /* Every mistake, and what the launcher does not do itself, goes to Node (and its messages). */
    static const char *const to_node[] = {
        "true",                            /* no -- */
        "--root /tmp",                     /* no -- */
        "--",                              /* no command */
        "-- ''",                           /* empty command */
        "--budget 12x -- true",
        "--budget 1.5 -- true",            /* a fraction of a byte */
        "--budget 99999999999T -- true",   /* over MAX_SAFE_INTEGER */
        "--headroom -5 -- true",
        "--memory 256M -- true",           /* the cgroup and the watchdog live in TypeScript */
        "--memory 0 -- true",
        "--keep --discard -- true",
        "--keep=yes -- true",
        "--budget 1 --budget 2 -- true",
        "--stats '' -- true",
        "--log= -- true",
        "--frobnicate -- true",
        "-x -- true",
        "- -- true",
        "--root / -- true",
        "--root /.. -- true",
        "--root /a:b -- true",
        "--budget -- true",                /* a value flag before -- */
        "--budget",
        "--help",
    };
    for (size_t i = 0; i < sizeof to_node / sizeof to_node[0]; i++) {
        struct run_opts o;
        const char *why = parse(&o, to_node[i]);
        CHECK(why != NULL, "%s: should go to Node", to_node[i]);
        CHECK(o.roots == NULL && o.nroots == 0, "%s: nothing left allocated", to_node[i]);
    }
}

static void test_sizes(void)
{
    /* parseSize's values (src/core/size.ts), printed by Node. */
    static const struct {
        const char *text;
        long long bytes;
    } cases[] = {
        {"123", 123}, {"64K", 65536}, {"64M", 67108864}, {"1.5G", 1610612736}, {"64KiB", 65536},
        {"500MB", 500000000}, {"1.5gib", 1610612736}, {"0", 0}, {"2.5T", 2748779069440LL}, {"0.1k", 102},
        {"9007199254740991", 9007199254740991LL}, {"1.7kb", 1700}, {"7b", 7}, {"7B", 7},
        {"", -1}, {"k", -1}, {"1.", -1}, {".5k", -1}, {"1.5", -1}, {"1.5b", -1}, {"1 k", -1}, {"1kk", -1},
        {"9007199254740992", -1}, {"+1", -1}, {"0x10", -1}, {" 5", -1}, {"5 ", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long long got = args_size(cases[i].text);
        CHECK(got == cases[i].bytes, "size '%s': %lld, expected %lld", cases[i].text, got, cases[i].bytes);
    }
}

static void test_paths(void)
{
    static const char *const cases[][3] = {
        {"/w", ".", "/w"}, {"/w", "", "/w"}, {"/w", "a/b/", "/w/a/b"}, {"/w", "../..", "/"},
        {"/w", "/x/./y//z/..", "/x/y"}, {"/", "..", "/"}, {"/w/v", "../u", "/w/u"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = args_resolve(cases[i][0], cases[i][1]);
        CHECK(strcmp(got, cases[i][2]) == 0, "resolve(%s, %s) = %s, expected %s", cases[i][0], cases[i][1], got, cases[i][2]);
        free(got);
    }
    CHECK(args_under("/tmp", "/tmp"), "a root is under itself");
    CHECK(args_under("/tmp/ephemera-0", "/tmp"), "a child");
    CHECK(!args_under("/tmpx", "/tmp"), "a sibling with the same prefix");
    CHECK(!args_under("/tmp/..x", "/tmp"), "path.relative starts with '..': run.ts counts it outside");
    CHECK(!args_under("/run/ephemera", "/tmp"), "elsewhere");
}

static void test_environment(void)
{
    /* The cases of run.test.ts "LD_PRELOAD gets the shim first, keeps others, never twice". */
    static const char *const pre[][3] = {
        {"/b/lib.so", NULL, "/b/lib.so"},
        {"/b/lib.so", "", "/b/lib.so"},
        {"/b/lib.so", "/x.so /y.so", "/b/lib.so:/x.so:/y.so"},
        {"/b/lib.so", "/x.so:/b/lib.so", "/b/lib.so:/x.so"},
        {"/b/lib.so", " :/x.so\t:", "/b/lib.so:/x.so"},
    };
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
        char *got = env_preload_with(pre[i][0], pre[i][1]);
        CHECK(strcmp(got, pre[i][2]) == 0, "preload %s: %s", pre[i][2], got);
        free(got);
    }
    /* "the environment contract" of run.test.ts, plus where each variable lands. */
    char *base[] = {"PATH=/bin", "EPHEMERA_FDMAP=stale", "EPHEMERA_LOG=old", "EPHEMERA_ROOTS=/old", "NOEQUALS",
                    "EPHEMERA_REGION=1:2:3:4", "EPHEMERA_START_GATE=7:8", NULL};
    char *roots[] = {"/tmp", "/scratch"};
    char **env = env_for_command(base, "/b/lib.so", "/run/x", roots, 2, NULL);
    const char *want[] = {"PATH=/bin", "EPHEMERA_ROOTS=/tmp:/scratch", "LD_PRELOAD=/b/lib.so", "EPHEMERA_SOCK=/run/x/shim.sock",
                          "EPHEMERA_LIB=/b/lib.so", NULL};
    for (size_t i = 0; want[i] != NULL || env[i] != NULL; i++) {
        CHECK(want[i] != NULL && env[i] != NULL && strcmp(want[i], env[i]) == 0, "env[%zu] = %s, expected %s", i, env[i] ? env[i] : "(end)",
              want[i] ? want[i] : "(end)");
        if (want[i] == NULL || env[i] == NULL)
            break;
    }
    env_free(env);
    char *empty[] = {NULL};
    env = env_for_command(empty, "/l.so", "/r", roots, 1, "/log");
    CHECK(env[4] != NULL && strcmp(env[4], "EPHEMERA_LOG=/log") == 0 && env[5] == NULL, "EPHEMERA_LOG set: %s", env[4]);
    env = env_add(env, "EPHEMERA_START_GATE=101:102");
    CHECK(env[5] != NULL && strcmp(env[5], "EPHEMERA_START_GATE=101:102") == 0 && env[6] == NULL, "the gate's variable last: %s", env[5]);
    env_free(env);
}

/* A minimal 64-bit ELF header and one program header: PT_INTERP naming `interp`, or PT_LOAD. */
static size_t fake_elf(unsigned char *buf, unsigned char cls, unsigned machine, const char *interp)
{
    memset(buf, 0, 512);
    Elf64_Ehdr eh = {.e_type = ET_DYN, .e_machine = (Elf64_Half)machine, .e_version = EV_CURRENT, .e_phoff = sizeof eh,
                     .e_ehsize = sizeof eh, .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 1};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = cls;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    memcpy(buf, &eh, sizeof eh);
    Elf64_Phdr ph = {.p_type = interp ? PT_INTERP : PT_LOAD, .p_offset = 256, .p_filesz = interp ? strlen(interp) + 1 : 0};
    memcpy(buf + sizeof eh, &ph, sizeof ph);
    if (interp)
        memcpy(buf + 256, interp, strlen(interp) + 1);
    return 512;
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0700);
    CHECK(fd >= 0 && write(fd, data, n) == (ssize_t)n, "write %s", path);
    close(fd);
    chmod(path, mode);
}

static void test_gate(void)
{
    unsigned char b[512];
#if defined(__x86_64__)
    const unsigned me = EM_X86_64;
    const char *glibc = "/lib64/ld-linux-x86-64.so.2";
#else
    const unsigned me = EM_AARCH64;
    const char *glibc = "/lib/ld-linux-aarch64.so.1";
#endif
    CHECK(gate_elf_loads_shim(b, fake_elf(b, ELFCLASS64, me, glibc)), "glibc's loader: the shim's constructor runs");
    CHECK(!gate_elf_loads_shim(b, fake_elf(b, ELFCLASS64, me, NULL)), "static: no shim, no gate");
    CHECK(!gate_elf_loads_shim(b, fake_elf(b, ELFCLASS64, me, "/lib/ld-musl-x86_64.so.1")), "musl's loader: our shim does not load");
    CHECK(!gate_elf_loads_shim(b, fake_elf(b, ELFCLASS32, me, glibc)), "32-bit: our shim does not load");
    CHECK(!gate_elf_loads_shim(b, fake_elf(b, ELFCLASS64, me == EM_X86_64 ? EM_AARCH64 : EM_X86_64, glibc)), "another machine");
    CHECK(!gate_elf_loads_shim(b, 40), "a truncated header");
    fake_elf(b, ELFCLASS64, me, glibc);
    CHECK(!gate_elf_loads_shim(b, 260), "an interpreter cut off by the read");

    char dir[] = "/tmp/launcher-gate-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char prog[64], suid[64], stat_prog[64], sh[64], sh_env[64], sh_static[64], sh_rel[64], text[64];
    snprintf(prog, sizeof prog, "%s/prog", dir);
    snprintf(suid, sizeof suid, "%s/suid", dir);
    snprintf(stat_prog, sizeof stat_prog, "%s/static", dir);
    snprintf(sh, sizeof sh, "%s/a.sh", dir);
    snprintf(sh_env, sizeof sh_env, "%s/b.sh", dir);
    snprintf(sh_static, sizeof sh_static, "%s/c.sh", dir);
    snprintf(sh_rel, sizeof sh_rel, "%s/d.sh", dir);
    snprintf(text, sizeof text, "%s/e.txt", dir);
    write_file(prog, b, fake_elf(b, ELFCLASS64, me, glibc), 0755);
    write_file(suid, b, 512, 04755);
    write_file(stat_prog, b, fake_elf(b, ELFCLASS64, me, NULL), 0755);
    char line[128];
    snprintf(line, sizeof line, "#!%s -e\necho\n", prog);
    write_file(sh, line, strlen(line), 0755);
    snprintf(line, sizeof line, "#! %s\n", prog);
    write_file(sh_env, line, strlen(line), 0755);
    snprintf(line, sizeof line, "#!%s\n", stat_prog);
    write_file(sh_static, line, strlen(line), 0755);
    write_file(sh_rel, "#!prog\n", 7, 0755);
    write_file(text, "echo hi\n", 8, 0755);
    CHECK(gate_possible(prog), "a dynamic glibc program");
    CHECK(!gate_possible(suid), "set-id: a secure exec ignores LD_PRELOAD");
    CHECK(!gate_possible(stat_prog), "a static program");
    CHECK(gate_possible(sh), "a script run by a dynamic glibc program");
    CHECK(gate_possible(sh_env), "#! with a blank before the interpreter");
    CHECK(!gate_possible(sh_static), "a script run by a static program");
    CHECK(!gate_possible(sh_rel), "a relative interpreter");
    CHECK(!gate_possible(text), "no #! (/bin/sh through ENOEXEC): the launcher's child waits");
    CHECK(!gate_possible(dir), "a directory");
    CHECK(!gate_possible("/nonexistent/prog"), "a missing file");
    const char *files[] = {prog, suid, stat_prog, sh, sh_env, sh_static, sh_rel, text};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(files[i]);
    rmdir(dir);
}

static void expect_number(double x, const char *want)
{
    struct jbuf b = {0};
    js_number(&b, x);
    CHECK(strcmp(b.s, want) == 0, "String(%.17g) = %s, expected %s", x, b.s, want);
    jb_free(&b);
}

static void test_json(void)
{
    expect_number(0, "0");
    expect_number(-0.0, "0");
    expect_number(1, "1");
    expect_number(4.963, "4.963");
    expect_number(0.1, "0.1");
    expect_number(1e21, "1e+21");
    expect_number(1e-7, "1e-7");
    expect_number(123456789012345680000.0, "123456789012345680000");
    expect_number(1.5e-6, "0.0000015");
    expect_number(18446744073709551616.0, "18446744073709552000");
    expect_number(-3.25, "-3.25");
    expect_number(1.0 / 3, "0.3333333333333333");
    expect_number(1e20, "100000000000000000000");
    expect_number(5e-324, "5e-324");
    expect_number(0.000001, "0.000001");

    struct jbuf b = {0};
    js_quote(&b, "a\"b\\c\n\t\x01\x1f\x7f\xc3\xa9", 12);
    CHECK(strcmp(b.s, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\x7f\xc3\xa9\"") == 0, "quote: %s", b.s);
    b.len = 0;
    js_quote(&b, "a\xff" "b\xe2\x82" "c", 6); /* invalid UTF-8: one U+FFFD per maximal subpart */
    CHECK(strcmp(b.s, "\"a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\"") == 0, "replacement: %s", b.s);
    jb_free(&b);

    const char *text = "{\"a\":[1,2,{\"b\":null}],\"c\":{},\"d\":[],\"e\":\"\\u00e9\\/\\ud83d\\ude00\",\"a\":true}";
    struct jv *v = jv_parse(text, strlen(text));
    CHECK(v != NULL, "parses");
    jv_stringify(&b, v, 2);
    CHECK(strcmp(b.s, "{\n  \"a\": true,\n  \"c\": {},\n  \"d\": [],\n  \"e\": \"\xc3\xa9/\xf0\x9f\x98\x80\"\n}") == 0, "stringify: %s", b.s);
    jb_free(&b);
    jv_free(v);
    static const char *const not_json[] = {"", "{", "{\"a\":}", "[1,]", "01", "1.", "\"\x01\"", "{} x", "\"\\x\"", "tru", "-"};
    for (size_t i = 0; i < sizeof not_json / sizeof not_json[0]; i++) {
        v = jv_parse(not_json[i], strlen(not_json[i]));
        CHECK(v == NULL, "'%s' is not JSON", not_json[i]);
        jv_free(v);
    }
}

static const char STATS[] =
    "{\"limit\":null,\"usage\":5,\"file_bytes_memory\":0,\"file_bytes_disk\":0,\"files_in_memory\":0,\"budget\":9,"
    "\"headroom\":0,\"evictions\":0,\"bytes_evicted\":0,\"fast_reads\":0,\"fast_writes\":0,\"files_in_memory_peak\":0,"
    "\"bytes_in_memory_peak\":0,\"cgroup\":\"/sys/x\",\"cgroup_version\":1,\"files_created\":0,\"files_on_disk\":0,"
    "\"materialisations\":0,\"slow_ops\":0,\"bytes_read\":0,\"bytes_written\":0,\"fast_seeks\":0,\"fast_stats\":0,\"pid\":42,"
    "\"files_on_disk_predicted\":0,\"own_memory_peak\":null,\"extra\":{\"k\":[1]}}";

static void test_report(void)
{
    struct jv *stats = jv_parse(STATS, sizeof STATS - 1);
    struct jbuf msg = {0};
    CHECK(stats != NULL && report_check_stats(stats, "src", &msg), "valid stats: %s", msg.s ? msg.s : "");
    char *command[] = {"sh", "-c", "exit 3"};
    char *roots[] = {"/tmp"};
    struct run_report r = {command, 3, 143, "SIGTERM", 4.9634999, "discard", roots, 1};
    struct jbuf out = {0};
    report_json(&out, stats, &r);
    /* The tail JSON.stringify({...stats, command, ...}, null, 2) writes for these values. */
    const char *tail = "  \"own_memory_peak\": null,\n  \"extra\": {\n    \"k\": [\n      1\n    ]\n  },\n  \"command\": [\n    \"sh\",\n"
                       "    \"-c\",\n    \"exit 3\"\n  ],\n  \"exit_status\": 143,\n  \"signal\": \"SIGTERM\",\n  \"elapsed_ms\": 4.963,\n"
                       "  \"on_exit\": \"discard\",\n  \"roots\": [\n    \"/tmp\"\n  ],\n  \"cgroup_limit\": null\n}\n";
    CHECK(out.len > strlen(tail) && strcmp(out.s + out.len - strlen(tail), tail) == 0, "report tail:\n%s", out.s);
    CHECK(strncmp(out.s, "{\n  \"limit\": null,\n  \"usage\": 5,\n", 32) == 0, "report head:\n%s", out.s);
    jb_free(&out);
    jv_free(stats);

    /* parseStats's messages for a bad counter and a bad cgroup_version. */
    char bad[sizeof STATS + 16];
    snprintf(bad, sizeof bad, "%s", STATS);
    memcpy(strstr(bad, "\"pid\":42"), "\"pid\":-1", 8);
    stats = jv_parse(bad, strlen(bad));
    CHECK(!report_check_stats(stats, "S", &msg), "a negative pid is refused");
    CHECK(strcmp(msg.s, "S: field 'pid' is -1, expected a non-negative integer; the daemon and the CLI may come from different builds: run make") == 0,
          "message: %s", msg.s);
    jv_free(stats);
    snprintf(bad, sizeof bad, "%s", STATS);
    memcpy(strstr(bad, "\"cgroup_version\":1"), "\"cgroup_version\":3", 18);
    stats = jv_parse(bad, strlen(bad));
    msg.len = 0;
    CHECK(!report_check_stats(stats, "S", &msg) && strstr(msg.s, "field 'cgroup_version' is 3, expected 1, 2 or null") != NULL, "message: %s", msg.s);
    jv_free(stats);
    jb_free(&msg);

    char name[16];
    report_signal_name(15, name, sizeof name);
    CHECK(strcmp(name, "SIGTERM") == 0, "%s", name);
    report_signal_name(29, name, sizeof name);
    CHECK(strcmp(name, "SIGIO") == 0, "Node calls 29 SIGIO, got %s", name);
}

int main(void)
{
    test_native_command_lines();
    test_node_command_lines();
    test_sizes();
    test_paths();
    test_environment();
    test_gate();
    test_json();
    test_report();
    printf("launcher_test: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
