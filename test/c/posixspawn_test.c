/*
 * posixspawn_test.c - posix_spawn[p] file actions that name paths in a root act on the files in
 * memory, as the kernel would on tmpfs.
 *
 *   posixspawn_test       (runs itself under the shim: see shimmed.h)
 *
 * glibc runs file actions in its spawn child with internal calls the shim cannot see.  A chdir
 * action into a directory that exists only in memory failed (posix_spawn returned ENOENT), and an
 * open action relative to it opened the kernel's name: ENOENT for a file in memory, or, with
 * O_CREAT, a disk file the in-memory name hides (a lost write).  The shim now runs such spawns
 * through its own wrappers (intercept_proc.c, spawn_needs_us).
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

extern char **environ;

static void put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "writing %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
}

static void expect(const char *what, const char *path, const char *text)
{
    char buf[256] = {0};
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    CHECK(n == (ssize_t)strlen(text) && memcmp(buf, text, strlen(text)) == 0, "%s: %s holds [%s], not [%s]", what,
          path, n >= 0 ? buf : strerror(errno), text);
}

/*
 * Spawn argv (posix_spawnp when p) with fa, stdout into a pipe when out is given: its exit status
 * (-1 when the spawn failed, with its error in *err), and what it wrote in out.
 */
static int spawn(int p, char *const argv[], posix_spawn_file_actions_t *fa, char *out, size_t cap, int *err)
{
    int pf[2] = {-1, -1};
    if (out) {
        if (pipe2(pf, O_CLOEXEC) < 0)
            return -1;
        posix_spawn_file_actions_adddup2(fa, pf[1], 1);
    }
    pid_t pid = 0;
    *err = p ? posix_spawnp(&pid, argv[0], fa, NULL, argv, environ)
             : posix_spawn(&pid, argv[0], fa, NULL, argv, environ);
    size_t got = 0;
    if (out) {
        close(pf[1]);
        ssize_t n;
        while (*err == 0 && got + 1 < cap && (n = read(pf[0], out + got, cap - 1 - got)) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                break;
            got += (size_t)n;
        }
        out[got] = '\0';
        close(pf[0]);
    }
    int st = 0;
    if (*err != 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* An open action reads a file in memory as stdin; another creates the output in the root. */
static void opens_absolute(const char *root)
{
    char in[512], outp[512];
    snprintf(in, sizeof in, "%s/in.txt", root);
    snprintf(outp, sizeof outp, "%s/out.txt", root);
    put(in, "bytes in memory\n");
    put(outp, "old contents, longer than the new\n");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *argv[] = {"/bin/cat", NULL};
    int err = 0;
    int rc = spawn(0, argv, &fa, NULL, 0, &err);
    posix_spawn_file_actions_destroy(&fa);
    CHECK(rc == 0, "posix_spawn cat <in >out: status %d, error %s", rc, strerror(err));
    expect("addopen in, addopen out", outp, "bytes in memory\n");
}

/* A chdir action into a directory in memory, then `cat f` by its relative name. */
static void chdir_in_memory(const char *root, int p)
{
    char dir[512], f[600];
    snprintf(dir, sizeof dir, "%s/cd%d", root, p);
    snprintf(f, sizeof f, "%s/f", dir);
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
    put(f, "f in a directory in memory\n");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    char *argv[] = {p ? "cat" : "/bin/cat", "f", NULL};
    char out[256];
    int err = 0;
    int rc = spawn(p, argv, &fa, out, sizeof out, &err);
    posix_spawn_file_actions_destroy(&fa);
    CHECK(rc == 0 && strcmp(out, "f in a directory in memory\n") == 0,
          "%s with addchdir %s; cat f: status %d, error %s, output [%s]", p ? "posix_spawnp" : "posix_spawn", dir, rc,
          strerror(err), rc == 0 ? out : "");
}

/*
 * A chdir action into a directory in memory that has a disk twin (the parent's chdir made it), so
 * the kernel's chdir succeeds there: a relative open action must still act on the names in memory.
 * Reading stdin from "in" and truncating "out", both in memory; the kernel would have found no
 * "in" and made a disk "out" that the one in memory hides.
 */
static void relative_opens_after_chdir(const char *root, int p)
{
    char dir[512], in[600], outp[600], start[512];
    snprintf(dir, sizeof dir, "%s/rel%d", root, p);
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(outp, sizeof outp, "%s/out", dir);
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
    put(in, "relative input\n");
    put(outp, "OLD bytes that must be replaced\n");
    CHECK(getcwd(start, sizeof start) != NULL, "getcwd: %s", strerror(errno));
    CHECK(chdir(dir) == 0 && chdir(start) == 0, "chdir %s and back: %s", dir, strerror(errno));

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    posix_spawn_file_actions_addopen(&fa, 1, "out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *echo[] = {p ? "echo" : "/bin/echo", "NEW", NULL};
    int err = 0;
    int rc = spawn(p, echo, &fa, NULL, 0, &err);
    posix_spawn_file_actions_destroy(&fa);
    CHECK(rc == 0, "addchdir; addopen out O_CREAT|O_TRUNC; echo NEW: status %d, error %s", rc, strerror(err));
    expect("relative O_CREAT|O_TRUNC after addchdir", outp, "NEW\n");

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    posix_spawn_file_actions_addopen(&fa, 0, "in", O_RDONLY, 0);
    char *cat[] = {p ? "cat" : "/bin/cat", NULL};
    char out[256];
    rc = spawn(p, cat, &fa, out, sizeof out, &err);
    posix_spawn_file_actions_destroy(&fa);
    CHECK(rc == 0 && strcmp(out, "relative input\n") == 0,
          "addchdir; addopen in as stdin; cat: status %d, error %s, output [%s]", rc, strerror(err), rc == 0 ? out : "");
}

/* The parent works inside the root: a relative chdir action, joined to its directory. */
static void relative_chdir_from_root(const char *root)
{
    char dir[512], sub[600], f[700], start[512];
    snprintf(dir, sizeof dir, "%s/top", root);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(f, sizeof f, "%s/f", sub);
    CHECK(mkdir(dir, 0755) == 0 && mkdir(sub, 0755) == 0, "mkdir %s: %s", sub, strerror(errno));
    put(f, "below the parent's directory\n");
    CHECK(getcwd(start, sizeof start) != NULL, "getcwd: %s", strerror(errno));
    CHECK(chdir(dir) == 0, "chdir %s: %s", dir, strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, "sub");
    char *argv[] = {"cat", "f", NULL};
    char out[256];
    int err = 0;
    int rc = spawn(1, argv, &fa, out, sizeof out, &err);
    posix_spawn_file_actions_destroy(&fa);
    CHECK(chdir(start) == 0, "chdir %s: %s", start, strerror(errno));
    CHECK(rc == 0 && strcmp(out, "below the parent's directory\n") == 0,
          "in %s, addchdir sub; cat f: status %d, error %s, output [%s]", dir, rc, strerror(err), rc == 0 ? out : "");
}

/* An fchdir action on a close-on-exec fd of a directory in memory. */
static void fchdir_in_memory(const char *root)
{
    char dir[512], f[600];
    snprintf(dir, sizeof dir, "%s/fcd", root);
    snprintf(f, sizeof f, "%s/f", dir);
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
    put(f, "through a directory fd\n");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(dfd >= 0, "open %s: %s", dir, strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addfchdir_np(&fa, dfd);
    char *argv[] = {"cat", "f", NULL};
    char out[256];
    int err = 0;
    int rc = spawn(1, argv, &fa, out, sizeof out, &err);
    posix_spawn_file_actions_destroy(&fa);
    close(dfd);
    CHECK(rc == 0 && strcmp(out, "through a directory fd\n") == 0,
          "addfchdir %s; cat f: status %d, error %s, output [%s]", dir, rc, strerror(err), rc == 0 ? out : "");
}

/* Outside the roots nothing changes: a chdir action into a missing disk directory still fails. */
static void disk_unchanged(const char *disk)
{
    char missing[512];
    snprintf(missing, sizeof missing, "%s/no-such-dir", disk);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, missing);
    char *argv[] = {"true", NULL};
    int err = 0;
    int rc = spawn(1, argv, &fa, NULL, 0, &err);
    posix_spawn_file_actions_destroy(&fa);
    CHECK(rc == -1 && err == ENOENT, "addchdir %s: status %d, error %s (want ENOENT)", missing, rc, strerror(err));
}

static int child_main(const char *root, const char *disk)
{
    /* Work beside the root, not above it: a relative name is then not in a root by itself. */
    CHECK(chdir(disk) == 0, "chdir %s: %s", disk, strerror(errno));
    opens_absolute(root);
    chdir_in_memory(root, 0);
    chdir_in_memory(root, 1);
    relative_opens_after_chdir(root, 0);
    relative_opens_after_chdir(root, 1);
    relative_chdir_from_root(root);
    fchdir_in_memory(root);
    disk_unchanged(disk);
    fprintf(stderr, "posixspawn_test: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}

int main(int argc, char **argv)
{
    return shimmed_main(argc, argv, "posixspawn_test", child_main);
}
