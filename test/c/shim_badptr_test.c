/*
 * Bad pointers (issue 9, item 4): a path or buffer argument that points
 * outside the address space gives EFAULT, as the kernel does, and never
 * crashes the shim.  The kernel's answers are taken first in this process,
 * without the shim; then every call is made again under the shim, with the
 * working directory in the managed root, and must fail the same way.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

#include "check.h"
#include "shimmed.h"

/* (volatile, so the compiler does not reason about the calls with them) */
static const char *volatile bad_top = (const char *)-1;                     /* the top of the address space */
static const char *volatile bad_low = (const char *)16;                     /* the zero page */
static const char *volatile bad_kernel = (const char *)0xffff800000000000ull; /* kernel half */
#define BAD (bad_top)
#define BAD_LOW (bad_low)
#define BAD_KERNEL (bad_kernel)

static struct stat st;
static struct statx stx;
static int mfd = -1;                    /* f, open for reading and writing */
static struct iovec bad_iov = {NULL, 4};
static struct statvfs sv;
static char buf[64];

/* Each call returns -1 with errno set (or something else, which the comparison reports). */
#define CALLS(X)                                                                     \
    X(open_rd, open(BAD, O_RDONLY))                                                  \
    X(open_creat, open(BAD, O_CREAT | O_WRONLY, 0644))                               \
    X(open_low, open(BAD_LOW, O_RDONLY))                                             \
    X(open_kernel, open(BAD_KERNEL, O_RDONLY))                                       \
    X(openat, openat(AT_FDCWD, BAD, O_RDONLY))                                       \
    X(creat, creat(BAD, 0644))                                                       \
    X(unlink, unlink(BAD))                                                           \
    X(unlinkat, unlinkat(AT_FDCWD, BAD, 0))                                          \
    X(mkdir, mkdir(BAD, 0755))                                                       \
    X(mkdirat, mkdirat(AT_FDCWD, BAD_LOW, 0755))                                     \
    X(rmdir, rmdir(BAD))                                                             \
    X(truncate, truncate(BAD, 0))                                                    \
    X(rename_from, rename(BAD, "f"))                                                 \
    X(rename_to, rename("f", BAD))                                                   \
    X(renameat2, renameat2(AT_FDCWD, "f", AT_FDCWD, BAD, 0))                         \
    X(link_from, link(BAD, "g"))                                                     \
    X(link_to, link("f", BAD))                                                       \
    X(symlink_target, symlink(BAD, "s"))                                             \
    X(symlink_name, symlink("f", BAD))                                               \
    X(readlink_path, (int)readlink(BAD, buf, sizeof buf))                            \
    X(readlink_buf, (int)readlink("l", (char *)BAD, 16))                             \
    X(stat, stat(BAD, &st))                                                          \
    X(lstat, lstat(BAD, &st))                                                        \
    X(stat_buf, stat("f", (struct stat *)BAD))                                       \
    X(fstatat, fstatat(AT_FDCWD, BAD, &st, 0))                                       \
    X(access, access(BAD, F_OK))                                                     \
    X(faccessat, faccessat(AT_FDCWD, BAD, R_OK, 0))                                  \
    X(chmod, chmod(BAD, 0600))                                                       \
    X(chown, chown(BAD, 0, 0))                                                       \
    X(lchown, lchown(BAD, 0, 0))                                                     \
    X(utimensat, utimensat(AT_FDCWD, BAD, NULL, 0))                                  \
    X(utimes, utimes(BAD, NULL))                                                     \
    X(chdir, chdir(BAD))                                                             \
    X(mkfifo, mkfifo(BAD, 0644))                                                     \
    X(statvfs, statvfs(BAD, &sv))                                                    \
    X(getxattr, (int)getxattr(BAD, "user.a", buf, sizeof buf))                       \
    X(setxattr, setxattr(BAD, "user.a", "v", 1, 0))                                  \
    X(listxattr, (int)listxattr(BAD, buf, sizeof buf))                               \
    X(removexattr, removexattr(BAD, "user.a"))                                       \
    X(statx_buf, statx(AT_FDCWD, "f", 0, STATX_BASIC_STATS, (struct statx *)BAD))    \
    X(statx_path, statx(AT_FDCWD, BAD, 0, STATX_BASIC_STATS, &stx))                  \
    X(fstat_buf, fstat(mfd, (struct stat *)BAD))                                     \
    X(read_buf, (int)read(mfd, (void *)BAD, 4))                                      \
    X(pread_buf, (int)pread(mfd, (void *)BAD_LOW, 4, 0))                             \
    X(write_buf, (int)write(mfd, BAD, 4))                                            \
    X(pwrite_buf, (int)pwrite(mfd, BAD_KERNEL, 4, 0))                                \
    X(readv_vec, (int)readv(mfd, (const struct iovec *)BAD, 1))                      \
    X(writev_buf, (int)writev(mfd, &bad_iov, 1))

#define NAME(n, call) #n,
static const char *const names[] = {CALLS(NAME)};
#define N (int)(sizeof names / sizeof names[0])

/* A crash names the call that crashed (the test's point is that none does). */
static const char *volatile current = "setup";
static void on_segv(int sig)
{
    char m[128];
    int n = snprintf(m, sizeof m, "shim_badptr_test: SIGSEGV in %s\n", current);
    (void)!write(2, m, (size_t)n);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Make f (a file), l (a symlink to it) in the cwd, call everything, return the errnos. */
static void run_all(int *err)
{
    int fd = open("f", O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) {
        (void)!write(fd, "data", 4);
        close(fd);
    }
    (void)!symlink("f", "l");
    mfd = open("f", O_RDWR);
    bad_iov.iov_base = (void *)BAD;
    int i = 0;
#define RUN(n, call)                                                                 \
    do {                                                                             \
        current = #n;                                                                \
        errno = 0;                                                                   \
        int r_ = (int)(call);                                                        \
        err[i++] = r_ == -1 ? errno : 1000 + (r_ > 0 ? 1 : r_);                      \
    } while (0);
    CALLS(RUN)
#undef RUN
    close(mfd);
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    const char *want_s = getenv("BADPTR_WANT");
    if (!want_s || chdir(root) != 0)
        return 1;
    int got[N], want[N];
    for (int i = 0; i < N; i++)
        want[i] = (int)strtol(want_s, (char **)&want_s, 10), want_s += *want_s == ',';
    signal(SIGSEGV, on_segv);
    run_all(got);
    for (int i = 0; i < N; i++)
        CHECK(got[i] == want[i], "%s: under the shim %d (%s), the kernel %d (%s)", names[i], got[i],
              got[i] < 1000 ? strerror(got[i]) : "no error", want[i], want[i] < 1000 ? strerror(want[i]) : "no error");
    /* Nothing the failed calls could have done: f is intact and in memory. */
    char b[8] = "";
    int fd = open("f", O_RDONLY);
    CHECK(fd >= 0 && read(fd, b, sizeof b) == 4 && memcmp(b, "data", 4) == 0, "f changed");
    close(fd);
    printf("shim_badptr_test: %d calls, %d checks, %d failures\n", N, checks, failures);
    return failures != 0;
}

int main(int argc, char **argv)
{
#ifdef __SANITIZE_ADDRESS__
    /* ASan's own interceptors of open, stat, readlink... read the path before the shim or the
     * kernel sees it, so a bad pointer crashes them: this test is meaningful only plain. */
    (void)argc, (void)argv, (void)child;
    puts("shim_badptr_test: skipped under ASan (its interceptors dereference the bad pointers)");
    return 0;
#endif
    if (argc > 1)
        return shimmed_main(argc, argv, "shim_badptr", child);
    /* The kernel's answers, in a scratch directory of our own, without the shim. */
    char dir[] = "build/test/shim_badptr-ref-XXXXXX", cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd) || !mkdtemp(dir) || chdir(dir) != 0) {
        perror("shim_badptr_test: scratch");
        return 1;
    }
    int want[N];
    run_all(want);
    if (chdir(cwd) != 0)
        return 1;
    rm_rf(dir);
    char s[N * 8] = "";
    for (int i = 0; i < N; i++)
        snprintf(s + strlen(s), sizeof s - strlen(s), "%s%d", i ? "," : "", want[i]);
    for (int i = 0; i < N; i++)
        if (want[i] != EFAULT)
            fprintf(stderr, "shim_badptr_test: note: the kernel gives %s for %s\n", strerror(want[i]), names[i]);
    setenv("BADPTR_WANT", s, 1);
    return shimmed_main(argc, argv, "shim_badptr", child);
}
