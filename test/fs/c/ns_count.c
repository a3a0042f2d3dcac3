/*
 * The loops whose system calls test/fs/nscount.test.mjs counts (issue 15, "no syscall the kernel
 * would not make"): plain libc calls and nothing else, so that under strace every call between the
 * two markers is either the kernel's own answer to one of them or something the shim added.
 *
 *   ns_count DIR create N   N cycles of open(O_WRONLY|O_CREAT|O_TRUNC) + write 4 KiB + close +
 *                           unlink (bench io's md-create)
 *   ns_count DIR rename N   bench io's md-rename set of N files: create each (O_CREAT|O_EXCL, close),
 *                           then rename each, stat each, unlink each
 *   ns_count DIR git N      git's loose objects (git add): N objects fanned out over 256
 *                           directories of DIR/<tag>o made as they are needed (an open that says
 *                           ENOENT, a mkdir, the open again), each written to a temporary name
 *                           (O_CREAT|O_EXCL, 0444), linked to its final name, the temporary
 *                           unlinked, the object stat'ed
 *   ns_count DIR gitdisk N  the same as a real `git add` meets it: DIR/<tag>o gets its disk twin
 *                           first (git init's probe for symlinks: a symlink made and removed in
 *                           it), and each object's name is looked up with access(F_OK) before
 *                           it is written (git's "have I got it" check)
 *
 * The markers are access() of two paths that cannot exist, outside every root; strace shows them
 * with their strings "/nonexistent-ns-count/begin" and ".../end" whatever call the shim makes of
 * access(), and the test counts the calls that lie between.  Before the first marker a warm-up
 * round of 8 runs the same workload on other names: the shim attaches to the daemon and maps its
 * tables on a process's first managed call, a cost per process that the window leaves out.
 * Exit status 0, or 1 with the failing call named on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARK_BEGIN "/nonexistent-ns-count/begin"
#define MARK_END "/nonexistent-ns-count/end"

static char buf[4096];

static int die(const char *what, const char *path)
{
    fprintf(stderr, "ns_count: %s %s: %s\n", what, path, strerror(errno));
    return 1;
}

static int create_cycles(const char *dir, const char *tag, long n)
{
    char a[4200];
    for (long i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/%sc%ld", dir, tag, i);
        int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            return die("open", a);
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
            return die("write", a);
        if (close(fd) < 0)
            return die("close", a);
        if (unlink(a) < 0)
            return die("unlink", a);
    }
    return 0;
}

static int rename_set(const char *dir, const char *tag, long n, unsigned long long *sum)
{
    char a[4200], b[4200];
    struct stat st;
    for (long i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/%sf%ld", dir, tag, i);
        int fd = open(a, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0)
            return die("open", a);
        if (close(fd) < 0)
            return die("close", a);
    }
    for (long i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/%sf%ld", dir, tag, i);
        snprintf(b, sizeof b, "%s/%sr%ld", dir, tag, i);
        if (rename(a, b) < 0)
            return die("rename", a);
    }
    for (long i = 0; i < n; i++) {
        snprintf(b, sizeof b, "%s/%sr%ld", dir, tag, i);
        if (stat(b, &st) < 0)
            return die("stat", b);
        *sum += (unsigned long long)st.st_size + 1;
    }
    for (long i = 0; i < n; i++) {
        snprintf(b, sizeof b, "%s/%sr%ld", dir, tag, i);
        if (unlink(b) < 0)
            return die("unlink", b);
    }
    return 0;
}

static int git_objects(const char *dir, const char *tag, long n, unsigned long long *sum, int on_disk)
{
    char objs[4100], fan[4200], tmp[4300], obj[4300];
    struct stat st;
    snprintf(objs, sizeof objs, "%s/%so", dir, tag);
    if (mkdir(objs, 0755) < 0)
        return die("mkdir", objs);
    if (on_disk) {
        snprintf(tmp, sizeof tmp, "%s/probe", objs);
        if (symlink("testing", tmp) < 0)
            return die("symlink", tmp);
        if (unlink(tmp) < 0)
            return die("unlink", tmp);
    }
    for (long i = 0; i < n; i++) {
        snprintf(fan, sizeof fan, "%s/%02lx", objs, (unsigned long)(i * 37) % 256);
        snprintf(tmp, sizeof tmp, "%s/tmp_obj_%ld", fan, i);
        snprintf(obj, sizeof obj, "%s/%038lx", fan, (unsigned long)i * 2654435761ul);
        if (on_disk && (access(obj, F_OK) == 0 || errno != ENOENT))
            return die("access (expected ENOENT)", obj);
        int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL, 0444);
        if (fd < 0 && errno == ENOENT) {
            if (mkdir(fan, 0777) < 0)
                return die("mkdir", fan);
            fd = open(tmp, O_RDWR | O_CREAT | O_EXCL, 0444);
        }
        if (fd < 0)
            return die("open", tmp);
        if (write(fd, buf, 100) != 100)
            return die("write", tmp);
        if (close(fd) < 0)
            return die("close", tmp);
        if (link(tmp, obj) < 0)
            return die("link", obj);
        if (unlink(tmp) < 0)
            return die("unlink", tmp);
        if (stat(obj, &st) < 0)
            return die("stat", obj);
        *sum += (unsigned long long)st.st_size;
    }
    return 0;
}

static int workload(const char *dir, const char *what, const char *tag, long n, unsigned long long *sum)
{
    return strcmp(what, "create") == 0   ? create_cycles(dir, tag, n)
           : strcmp(what, "rename") == 0 ? rename_set(dir, tag, n, sum)
                                         : git_objects(dir, tag, n, sum, strcmp(what, "gitdisk") == 0);
}

int main(int argc, char **argv)
{
    if (argc != 4 ||
        (strcmp(argv[2], "create") != 0 && strcmp(argv[2], "rename") != 0 && strcmp(argv[2], "git") != 0 &&
         strcmp(argv[2], "gitdisk") != 0) ||
        atol(argv[3]) <= 0) {
        fprintf(stderr, "usage: ns_count DIR create|rename|git|gitdisk N\n");
        return 2;
    }
    const char *dir = argv[1];
    const char *create = argv[2];
    long n = atol(argv[3]);
    unsigned long long sum = 0;
    memset(buf, 0xA5, sizeof buf);
    if (workload(dir, create, "w", 8, &sum))
        return 1;
    (void)access(MARK_BEGIN, F_OK);
    if (workload(dir, create, "", n, &sum))
        return 1;
    (void)access(MARK_END, F_OK);
    printf("%s %ld done %llu\n", argv[2], n, sum);
    return 0;
}
