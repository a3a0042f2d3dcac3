/*
 * The mid-call window of the calls relative to a stand-in (shim/nsdirfd.c: an fd of a directory
 * in memory): the call names the directory from its slot, then the directory gets its disk twin
 * from elsewhere (in real runs the daemon's eviction of a file in it, at a moment nobody sees),
 * then the call goes on.  If it then falls to the kernel with the stand-in as its dirfd, the
 * kernel walks the removed directory the stand-in is and says ENOENT, where tmpfs does the call.
 * `open_disk` closed it for open (branch creatrace); here the other *at calls.
 *
 * Forced with the shim's fault build: EPHEMERA_NS_STALL=standin-look stops the caller (SIGSTOP)
 * just after its first look at the stand-in's directory; this process then gives the directory
 * its twin (a symlink in it) and, for the calls on an existing name, makes that name on disk
 * (a FIFO), and lets the caller go on.  Each call must do what it does on tmpfs.  (symlinkat is
 * not among them: a symlink gives every directory in memory its twin before it looks, nsdir.c.)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"
#include "standin.h"

enum call { C_MKDIR, C_MKNOD, C_LINK, C_RENAME, C_CREATE, C_UNLINK, C_CHMOD, C_RMDIR, C_N };
static const char *const names[C_N] = {"mkdirat", "mknodat", "linkat", "renameat", "openat O_CREAT",
                                       "unlinkat", "fchmodat", "unlinkat AT_REMOVEDIR"};

/* In the caller: the call through the stand-in fd.  0, or -1 with errno. */
static int do_call(enum call c, int fd, const char *src)
{
    switch (c) {
    case C_MKDIR:
        return mkdirat(fd, "x", 0755);
    case C_MKNOD:
        return mknodat(fd, "x", S_IFIFO | 0600, 0);
    case C_LINK:
        return linkat(AT_FDCWD, src, fd, "x", 0);
    case C_RENAME:
        return renameat(AT_FDCWD, src, fd, "x");
    case C_CREATE: {
        int f = openat(fd, "x", O_CREAT | O_EXCL | O_WRONLY, 0600);
        return f < 0 ? -1 : close(f);
    }
    case C_UNLINK:
        return unlinkat(fd, "q", 0);
    case C_CHMOD:
        return fchmodat(fd, "q", 0640, 0);
    case C_RMDIR:
        return unlinkat(fd, "q", AT_REMOVEDIR);
    default:
        return -1;
    }
}

/* The outcome tmpfs gives, looked at by path. */
static int outcome_ok(enum call c, const char *d)
{
    char x[PATH_MAX + 8], q[PATH_MAX + 8];
    struct stat st;
    snprintf(x, sizeof x, "%s/x", d);
    snprintf(q, sizeof q, "%s/q", d);
    switch (c) {
    case C_MKDIR:
        return lstat(x, &st) == 0 && S_ISDIR(st.st_mode);
    case C_MKNOD:
    case C_LINK:
    case C_RENAME:
        return lstat(x, &st) == 0 && S_ISFIFO(st.st_mode);
    case C_CREATE:
        return lstat(x, &st) == 0 && S_ISREG(st.st_mode);
    case C_UNLINK:
    case C_RMDIR:
        return lstat(q, &st) < 0 && errno == ENOENT;
    case C_CHMOD:
        return lstat(q, &st) == 0 && (st.st_mode & 07777) == 0640;
    default:
        return 0;
    }
}

static void one(const char *root, enum call c)
{
    char d[PATH_MAX], src[PATH_MAX + 16], l[PATH_MAX + 16], q[PATH_MAX + 16];
    snprintf(d, sizeof d, "%s/d%d", root, (int)c);
    snprintf(src, sizeof src, "%s/src%d", root, (int)c);
    snprintf(l, sizeof l, "%s/l", d);
    snprintf(q, sizeof q, "%s/q", d);
    CHECK(mkdir(d, 0755) == 0, "%s: mkdir: %s", names[c], strerror(errno));
    if (c == C_LINK || c == C_RENAME)
        CHECK(mkfifo(src, 0600) == 0, "%s: mkfifo of the source: %s", names[c], strerror(errno));
    pid_t p = fork();
    if (p == 0) {
        int fd = open(d, O_RDONLY | O_DIRECTORY);
        if (fd < 0 || !is_standin(fd))
            _exit(100);
        setenv("EPHEMERA_NS_STALL", "standin-look", 1);
        int r = do_call(c, fd, src);
        _exit(r == 0 ? 0 : errno > 0 && errno < 100 ? errno : 99);
    }
    int st = 0;
    CHECK(p > 0 && waitpid(p, &st, WUNTRACED) == p, "%s: fork/wait: %s", names[c], strerror(errno));
    if (!WIFSTOPPED(st)) {
        CHECK(0, "%s: the caller did not stop at its look at the stand-in (status 0x%x): the test shows nothing",
              names[c], st);
        return;
    }
    /* the twin, from this process; then the name the call acts on, on disk in it */
    CHECK(symlink("y", l) == 0 && unlink(l) == 0, "%s: symlink in the directory: %s", names[c], strerror(errno));
    if (c == C_UNLINK || c == C_CHMOD)
        CHECK(mkfifo(q, 0600) == 0, "%s: mkfifo in the twin: %s", names[c], strerror(errno));
    if (c == C_RMDIR)
        CHECK(mkdir(q, 0755) == 0, "%s: mkdir in the twin: %s", names[c], strerror(errno));
    kill(p, SIGCONT);
    CHECK(waitpid(p, &st, 0) == p && WIFEXITED(st), "%s: wait: %s", names[c], strerror(errno));
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    CHECK(code == 0, "%s through a stand-in twinned mid-call: %s (tmpfs: done)", names[c],
          code > 0 && code < 99 ? strerror(code) : "the caller failed");
    CHECK(outcome_ok(c, d), "%s through a stand-in twinned mid-call: not done in the directory", names[c]);
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    for (int c = 0; c < C_N; c++)
        one(root, (enum call)c);
    printf("standincall_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    return shimmed_main_faulty(argc, argv, "standincall", child, NULL, 1);
}
