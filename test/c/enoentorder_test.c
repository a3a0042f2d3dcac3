/*
 * The shim's looks "disk first, then memory" that can say ENOENT for a file the daemon moves to disk
 * between them (its eviction names the file on disk before it takes it out of memory, so a file
 * moving is missed by a look at the disk followed by one at memory, never by the other order).
 * Two spots were suspected after walk_error's (test/c/walklink_test.c); each is stopped at with the
 * shim's fault build (EPHEMERA_NS_STALL: the caller stops, this process moves every file to disk,
 * the daemon's shrink to 0 then its budget back, and lets it go on), and each call's answer must be
 * the kernel's for the same names on disk (a directory outside the roots, made alike).
 *
 * 1. enoent-slash (shim/nsview.c, nsv_enoent): "l/" with l a symlink to f, a file, is ENOTDIR for
 *    the kernel.  With f only in memory the kernel says ENOENT and nsv_enoent asks memory for f.
 * 2. dc-miss (shim/dircache.c, dc_stat): within one open, a name whose stat found nothing answers
 *    ENOENT again without the disk; an eviction does not move dir_gen, so a file that was in memory
 *    at the first stat is still "missing" at the next.  Names below a file in memory, spelled
 *    through symlinks.
 *
 * Every call that names a file in memory looks at memory first (docs/ARCHITECTURE.md, "Two more
 * disk-first looks"): none of them stops at enoent-slash; at dc-miss some stop, and answer right.
 * A call that stops with the wrong answer (a caller made to ask the disk first) fails here.  A
 * control per point (a name that is nowhere) proves each point is where the test looks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"
#include "stalled.h"


static char run_dir[PATH_MAX];

enum call {
    C_STAT, C_LSTAT, C_ACCESS, C_READLINK, C_CHMOD, C_CHOWN, C_LCHOWN, C_UTIMENS, C_TRUNCATE, C_OPEN, C_CREATE,
    C_EXCL, C_OPENDIR, C_FOPEN, C_GETXATTR, C_SETXATTR, C_STATX, C_RENAME, C_LINK, C_UNLINK, C_RMDIR, C_MKDIR, C_N
};
static const char *const names[C_N] = {"stat", "lstat", "access", "readlink", "chmod", "chown", "lchown",
                                       "utimensat", "truncate", "open", "open O_CREAT", "open O_CREAT|O_EXCL", "opendir", "fopen",
                                       "getxattr", "setxattr", "statx", "rename from", "link from", "unlink", "rmdir", "mkdir"};

/* The call on "<dir>/l/" (other, a free name in dir).  0, or the errno. */
static int do_call(enum call c, const char *slash, const char *other)
{
    struct stat st;
    char b[64];
    int r;
    switch (c) {
    case C_STAT: r = stat(slash, &st); break;
    case C_LSTAT: r = lstat(slash, &st); break;
    case C_ACCESS: r = access(slash, F_OK); break;
    case C_READLINK: r = readlink(slash, b, sizeof b) < 0 ? -1 : 0; break;
    case C_CHMOD: r = chmod(slash, 0640); break;
    case C_CHOWN: r = chown(slash, getuid(), (gid_t)-1); break;
    case C_LCHOWN: r = lchown(slash, getuid(), (gid_t)-1); break;
    case C_UTIMENS: r = utimensat(AT_FDCWD, slash, NULL, 0); break;
    case C_TRUNCATE: r = truncate(slash, 1); break;
    case C_OPEN:
    case C_CREATE:
    case C_EXCL: {
        int f = open(slash, c == C_OPEN ? O_RDONLY : c == C_CREATE ? O_WRONLY | O_CREAT : O_WRONLY | O_CREAT | O_EXCL, 0600);
        r = f < 0 ? -1 : close(f);
        break;
    }
    case C_OPENDIR: {
        DIR *d = opendir(slash);
        r = d ? closedir(d) : -1;
        break;
    }
    case C_FOPEN: {
        FILE *f = fopen(slash, "r");
        r = f ? fclose(f) : -1;
        break;
    }
    case C_GETXATTR: r = getxattr(slash, "user.x", b, sizeof b) < 0 ? -1 : 0; break;
    case C_SETXATTR: r = setxattr(slash, "user.x", "v", 1, 0); break;
    case C_STATX: {
        struct statx x;
        r = statx(AT_FDCWD, slash, 0, STATX_BASIC_STATS, &x);
        break;
    }
    case C_RENAME: r = rename(slash, other); break;
    case C_LINK: r = link(slash, other); break;
    case C_UNLINK: r = unlink(slash); break;
    case C_RMDIR: r = rmdir(slash); break;
    case C_MKDIR: r = mkdir(slash, 0755); break;
    default: r = -1; errno = EINVAL;
    }
    return r == 0 ? 0 : errno;
}

/* In dir: f<k> a file with a few bytes, l<k> a symlink to it, m<k> a symlink to l<k>, d<k> one to ".". */
static int make_names(const char *dir, int k, int in_memory)
{
    char f[PATH_MAX], l[PATH_MAX], m[PATH_MAX], d[PATH_MAX], tf[32], tl[32];
    snprintf(tf, sizeof tf, "f%d", k);
    snprintf(tl, sizeof tl, "l%d", k);
    snprintf(f, sizeof f, "%s/f%d", dir, k);
    snprintf(l, sizeof l, "%s/l%d", dir, k);
    snprintf(m, sizeof m, "%s/m%d", dir, k);
    snprintf(d, sizeof d, "%s/d%d", dir, k);
    int fd = open(f, O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0 && write(fd, "bytes", 5) == 5 && close(fd) == 0, "create %s: %s", f, strerror(errno));
    CHECK(symlink(tf, l) == 0 && symlink(tl, m) == 0 && symlink(".", d) == 0, "symlinks in %s: %s", dir,
          strerror(errno));
    if (!in_memory)
        return 1;
    struct stat st;
    int mem = stat(f, &st) == 0 && (st.st_ino & INO_IN_MEMORY) && !disk_has(f);
    CHECK(mem, "%s is not in memory: the case shows nothing", f);
    return mem;
}

/* The spellings of each point's names (k twice as the arguments after dir). */
#define SPELLINGS 3
static const char *const slash_spelling[SPELLINGS] = {"%s/l%d/", "%s/m%d/", "%s/d%d/l%d/"};
#define BELOW 6
static const char *const below_spelling[BELOW] = {"%s/f%d/x", "%s/l%d/x", "%s/m%d/x",
                                                  "%s/d%d/f%d/x", "%s/d%d/l%d/x", "%s/l%d/c/x"};

static void spell(char *out, size_t n, const char *fmt, const char *dir, int k)
{
    snprintf(out, n, fmt, dir, k, k);
}

static int stopped_calls;

/* The call on fmt's name of file k, the caller stopping at point (once: the eviction). */
static void one_case(enum call c, const char *fmt, int k, const char *point, const char *root, const char *ref)
{
    char slash[PATH_MAX], other[PATH_MAX], f[PATH_MAX];
    spell(slash, sizeof slash, fmt, ref, k);
    snprintf(other, sizeof other, "%s/o%d", ref, k);
    if (!make_names(ref, k, 0))
        return;
    int want = do_call(c, slash, other);
    spell(slash, sizeof slash, fmt, root, k);
    snprintf(other, sizeof other, "%s/o%d", root, k);
    snprintf(f, sizeof f, "%s/f%d", root, k);
    if (!make_names(root, k, 1))
        return;
    pid_t p = fork();
    if (p == 0) {
        setenv("EPHEMERA_NS_STALL", point, 1);
        int e = do_call(c, slash, other);
        _exit(e > 0 && e < 100 ? e : e == 0 ? 0 : 99);
    }
    CHECK(p > 0, "fork: %s", strerror(errno));
    if (p < 0)
        return;
    struct to_disk moved = {run_dir, names[c], f, NULL};
    int code, stops = stall_run(p, evict_at_first_stop, &moved, &code);
    stopped_calls += stops > 0;
    CHECK(code == want, "%s of %s: %s, the kernel %s (%d stops)", names[c], slash, stall_said(code),
          want ? strerror(want) : "success", stops);
    if (stops)
        printf("  %s of %s: stopped at %s, %s\n", names[c], slash, point, code == want ? "right" : "wrong");
}

/*
 * 3. link-exists (shim/intercept_names.c, link_in_memory): link(f, "D") with f a file in memory and
 *    D a directory in memory (no symlink in the root yet: so it has no disk twin) holding a file in
 *    memory, g.  The kernel: EEXIST.  The caller stops between its two looks at D, the disk's and
 *    then memory's; the eviction of g makes D's twin on disk and then drops D from memory, so both
 *    looks miss.  The link under the lock (nslink.c) looks at the chain and the disk again: EEXIST.
 *    (Spelled "D/", the resolve makes D's twin before either look.)
 */
static void link_case(const char *root, const char *ref)
{
    char d[PATH_MAX], g[PATH_MAX], f[PATH_MAX], dname[PATH_MAX];
    int want = -1;
    for (int pass = 0; pass < 2; pass++) {
        const char *dir = pass ? root : ref;
        snprintf(d, sizeof d, "%s/D", dir);
        snprintf(g, sizeof g, "%s/D/g", dir);
        snprintf(f, sizeof f, "%s/lf", dir);
        snprintf(dname, sizeof dname, "%s/D", dir);
        CHECK(mkdir(d, 0755) == 0, "mkdir %s: %s", d, strerror(errno));
        for (int k = 0; k < 2; k++) {
            const char *p = k ? g : f;
            int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
            CHECK(fd >= 0 && write(fd, "bytes", 5) == 5 && close(fd) == 0, "create %s: %s", p, strerror(errno));
        }
        if (!pass)
            want = link(f, dname) == 0 ? 0 : errno;
    }
    struct stat st;
    int mem = stat(f, &st) == 0 && (st.st_ino & INO_IN_MEMORY) && !disk_has(f) && !disk_has(d) && !disk_has(g);
    CHECK(mem, "%s, %s or %s is on disk: the case shows nothing", f, d, g);
    if (!mem)
        return;
    pid_t p = fork();
    if (p == 0) {
        setenv("EPHEMERA_NS_STALL", "link-exists", 1);
        _exit(stall_exit_code(link(f, dname)));
    }
    CHECK(p > 0, "fork: %s", strerror(errno));
    if (p < 0)
        return;
    struct to_disk moved = {run_dir, "link", g, d};
    int code, stops = stall_run(p, evict_at_first_stop, &moved, &code);
    CHECK(stops >= 1, "link onto %s never stopped at link-exists: the case shows nothing", dname);
    printf("  link onto %s: %d stops, %s (the kernel: %s)\n", dname, stops, stall_said(code), strerror(want));
    CHECK(code == want, "link onto %s: %s, the kernel %s (%d stops)", dname, stall_said(code),
          want ? strerror(want) : "success", stops);
}

/* A name that is nowhere (dangling: a symlink to nothing), which point must stop at:
 * the kernel's ENOENT, as without a stop. */
static void control(const char *root, const char *name, enum call c, const char *point)
{
    char z[PATH_MAX], path[PATH_MAX];
    snprintf(z, sizeof z, "%s/dangling", root);
    snprintf(path, sizeof path, "%s/%s", root, name);
    CHECK(symlink("nothing", z) == 0, "symlink %s: %s", z, strerror(errno));
    pid_t p = fork();
    if (p == 0) {
        setenv("EPHEMERA_NS_STALL", point, 1);
        _exit(do_call(c, path, NULL));
    }
    CHECK(p > 0, "fork: %s", strerror(errno));
    if (p < 0)
        return;
    int code, stops = stall_run(p, NULL, NULL, &code);
    CHECK(stops >= 1 && code == ENOENT, "%s of %s: %d stops at %s, %s: the point is not where the test looks",
          names[c], path, stops, point, stall_said(code));
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    shimmed_run_dir(root, run_dir);
    char ref[] = "/tmp/enoentorder.XXXXXX";
    CHECK(mkdtemp(ref) != NULL, "mkdtemp: %s", strerror(errno));
    link_case(root, ref); /* first: before any symlink gives every directory its twin */
    int k = 0;
    for (int c = 0; c < C_N; c++)
        for (int sp = 0; sp < SPELLINGS; sp++)
            one_case((enum call)c, slash_spelling[sp], k++, "enoent-slash", root, ref);
    int slash_stops = stopped_calls;
    stopped_calls = 0;
    static const enum call opens[] = {C_OPEN, C_CREATE, C_EXCL};
    for (size_t c = 0; c < sizeof opens / sizeof opens[0]; c++)
        for (int sp = 0; sp < BELOW; sp++)
            one_case(opens[c], below_spelling[sp], k++, "dc-miss", root, ref);
    int miss_stops = stopped_calls;
    /* The points are there: a name that is nowhere stops at enoent-slash; opens below a file in
     * memory reach dc-miss. */
    control(root, "dangling/", C_STAT, "enoent-slash");
    CHECK(miss_stops > 0, "no open stopped at dc-miss: the point is not where the test looks");
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", ref);
    CHECK(system(cmd) == 0, "rm %s", ref);
    printf("enoentorder_test (shimmed): %d checks, %d failures; calls that stopped: enoent-slash %d of %d, dc-miss %d of %d\n",
           checks, failures, slash_stops, C_N * SPELLINGS, miss_stops, (int)(sizeof opens / sizeof opens[0]) * BELOW);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    return shimmed_main_faulty(argc, argv, "enoentorder", child, NULL, 1);
}
