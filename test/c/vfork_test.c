/*
 * vfork_test.c - vfork is served as vfork when no fd of the shim's is open, and a vfork child
 * changes nothing of its parent's shim state, whatever it calls before its exec.
 *
 *   vfork_test       (runs itself under the shim: see shimmed.h)
 *
 * The shim used to serve vfork with fork in every process (a vfork child shares the shim's
 * tables), so gcc's driver paid a fork for each cc1 and as (docs/ARCHITECTURE.md, "vfork served
 * as vfork").  A real vfork child runs in its parent's memory: a variable it sets is the
 * parent's, which is how the test tells the two apart (undefined by POSIX, what Linux does).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

static volatile int child_wrote;

/* Under AddressSanitizer the shim serves vfork by fork (its stack shadow: intercept_proc.c). */
#ifdef __SANITIZE_ADDRESS__
enum { WANT_VFORK = 0 };
#else
enum { WANT_VFORK = 1 };
#endif

/* Runs argv with fd 0 and 1 as given (-1: unchanged) from a vfork child; its exit status, or -1. */
static int spawn(char *const argv[], int in, int out, int *was_vfork)
{
    child_wrote = 0;
    pid_t pid = vfork();
    if (pid == 0) {
        child_wrote = 1;
        if (in >= 0 && (dup2(in, 0) < 0 || close(in) < 0))
            _exit(120);
        if (out >= 0 && (dup2(out, 1) < 0 || close(out) < 0))
            _exit(121);
        closefrom(3); /* our private fds too: the child's copies, the parent's stay */
        execv(argv[0], argv);
        _exit(127);
    }
    if (was_vfork)
        *was_vfork = child_wrote;
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static void put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "writing %s: %s", path, strerror(errno));
    close(fd);
}

static void expect(const char *path, const char *text)
{
    char buf[256] = {0};
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    CHECK(n == (ssize_t)strlen(text) && memcmp(buf, text, strlen(text)) == 0, "%s holds [%s], not [%s]", path, buf,
          text);
}

/* A program copied to path (in memory when path is in the root). */
static void copy_prog(const char *from, const char *path)
{
    int src = open(from, O_RDONLY), dst = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    CHECK(src >= 0 && dst >= 0, "copying %s to %s: %s", from, path, strerror(errno));
    char buf[65536];
    ssize_t n;
    while ((n = read(src, buf, sizeof buf)) > 0)
        CHECK(write(dst, buf, (size_t)n) == n, "write: %s", strerror(errno));
    close(src);
    close(dst);
}

/* A pipe read to its end. */
static void read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    ssize_t n;
    while (got + 1 < cap && (n = read(fd, buf + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = 0;
}

/* The child's in-memory state: a file written in memory, read back by a program the child execs. */
static void plain_spawns(const char *root)
{
    char f[PATH_MAX], out[PATH_MAX];
    snprintf(f, sizeof f, "%s/in", root);
    snprintf(out, sizeof out, "%s/out", root);
    put(f, "memory\n");
    int vf = 0;
    char *t[] = {"/bin/true", NULL};
    CHECK(spawn(t, -1, -1, &vf) == 0, "/bin/true from a vfork child");
    CHECK(vf == WANT_VFORK, "vfork was served by fork with no fd of the shim's open");
    /* pipes through dup2 and close, as gcc's driver does */
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    char *cat[] = {"/bin/cat", f, NULL};
    CHECK(spawn(cat, -1, p[1], &vf) == 0, "cat %s into a pipe", f);
    close(p[1]);
    char buf[256];
    read_all(p[0], buf, sizeof buf);
    close(p[0]);
    CHECK(strcmp(buf, "memory\n") == 0, "cat read [%s]", buf);
    CHECK(vf == WANT_VFORK, "vfork with pipes: served by fork");
    /* the parent's tables are intact: it makes, reads and removes in-memory files as before */
    for (int i = 0; i < 20; i++) {
        put(out, "after\n");
        expect(out, "after\n");
        expect(f, "memory\n");
        CHECK(unlink(out) == 0, "unlink %s: %s", out, strerror(errno));
    }
}

/* An in-memory fd open in the parent: fork, and the child's exec inherits the file. */
static void with_managed_fd(const char *root)
{
    char f[PATH_MAX];
    snprintf(f, sizeof f, "%s/held", root);
    put(f, "held\n");
    int fd = open(f, O_RDONLY);
    CHECK(fd >= 0, "open %s: %s", f, strerror(errno));
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    char *cat[] = {"/bin/cat", NULL};
    int vf = 0;
    CHECK(spawn(cat, fd, p[1], &vf) == 0, "cat < in-memory fd");
    close(p[1]);
    char buf[256];
    read_all(p[0], buf, sizeof buf);
    close(p[0]);
    CHECK(strcmp(buf, "held\n") == 0, "cat of the inherited in-memory fd read [%s]", buf);
    CHECK(vf == 0, "vfork was served as vfork with an in-memory fd open");
    char b2[8] = {0};
    CHECK(pread(fd, b2, 5, 0) == 5 && memcmp(b2, "held\n", 5) == 0, "the parent's fd reads [%s]", b2);
    close(fd);
}

/* A vfork child that opens paths in the root itself (a redirection): the kernel serves it, on
 * files put on disk first, and the parent sees the same files. */
static void child_opens_root(const char *root)
{
    char in[PATH_MAX], out[PATH_MAX], dir[PATH_MAX], deep[PATH_MAX];
    snprintf(in, sizeof in, "%s/src", root);
    snprintf(out, sizeof out, "%s/dst", root);
    snprintf(dir, sizeof dir, "%s/sub", root);
    snprintf(deep, sizeof deep, "%s/sub/made", root);
    put(in, "redirected\n");
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
    for (int round = 0; round < 2; round++) {
        const char *volatile target = round ? deep : out;
        child_wrote = 0;
        pid_t pid = vfork();
        if (pid == 0) {
            child_wrote = 1;
            int i = open(in, O_RDONLY);
            int o = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (i < 0 || o < 0 || dup2(i, 0) < 0 || dup2(o, 1) < 0)
                _exit(122);
            close(i);
            close(o);
            execl("/bin/cat", "cat", (char *)NULL);
            _exit(127);
        }
        int status = 0;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child redirecting %s > %s: status %#x", in, target, status);
        CHECK(child_wrote == WANT_VFORK, "vfork was served by fork");
        expect(target, "redirected\n");
        expect(in, "redirected\n");
    }
    /* the parent still works in the root */
    char again[PATH_MAX];
    snprintf(again, sizeof again, "%s/again", root);
    put(again, "x\n");
    expect(again, "x\n");
}

/* A program in the root, exec'd from a vfork child: it moves to disk for the kernel to load. */
static void exec_in_root(const char *root)
{
    char prog[PATH_MAX];
    snprintf(prog, sizeof prog, "%s/prog", root);
    copy_prog("/bin/true", prog);
    int vf = 0;
    char *argv[] = {prog, NULL};
    CHECK(spawn(argv, -1, -1, &vf) == 0, "exec of %s from a vfork child", prog);
    CHECK(vf == WANT_VFORK, "vfork was served by fork");
}

/*
 * Another thread opens in-memory files and puts them on SLOT while the main thread vforks
 * children that look at SLOT: where the child's own fd table has SLOT closed, the shim says so
 * too, never answering from the parent's table, which the thread keeps changing (a vfork child
 * only starts once the table had no fd of ours: SLOT is closed in it); and a child leaving by exit()
 * takes no reference of the thread's away.
 */
enum { SLOT = 90, MT_ROUNDS = 200 };
static atomic_int mt_stop;
static const char *mt_path;

static void *churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&mt_stop)) {
        int m = open(mt_path, O_RDONLY);
        if (m < 0)
            continue;
        dup2(m, SLOT);
        close(m);
        char b[4];
        if (pread(SLOT, b, 4, 0) != 4 || memcmp(b, "mtmt", 4) != 0)
            atomic_store(&mt_stop, 2);
        close(SLOT);
    }
    return NULL;
}

static void multithreaded(const char *root)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/mt", root);
    put(path, "mtmt");
    mt_path = path;
    int (*libc_fstat)(int, struct stat *) = (int (*)(int, struct stat *))libc_sym("fstat");
    CHECK(libc_fstat != NULL, "libc's fstat");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, churn, NULL) == 0, "pthread_create");
    int wrong = 0, real = 0;
    for (int i = 0; i < MT_ROUNDS && atomic_load(&mt_stop) == 0; i++) {
        child_wrote = 0;
        pid_t pid = vfork();
        if (pid == 0) {
            child_wrote = 1;
            struct stat a, b;
            int ra = fstat(SLOT, &a), rb = libc_fstat(SLOT, &b);
            /* closed in the child's own table: the shim must not answer from the parent's (a fork
             * child's open copy of the file is served as the in-memory file it is) */
            int same = rb == 0 || ra < 0;
            (void)a;
            close(SLOT);
            if (i % 2)
                exit(same ? 0 : 1); /* atexit handlers and destructors, ours too */
            _exit(same ? 0 : 1);
        }
        real += child_wrote;
        int status = 0;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            wrong++;
            fprintf(stderr, "round %d: child by %s: status %#x\n", i, child_wrote ? "vfork" : "fork", status);
        }
    }
    int stop = atomic_exchange(&mt_stop, 1);
    pthread_join(t, NULL);
    CHECK(stop == 0, "the thread's in-memory file read wrong while vfork children ran");
    CHECK(wrong == 0, "%d children saw the parent's table for fd %d, not their own", wrong, SLOT);
    expect(path, "mtmt");
    fprintf(stderr, "vfork_test: multithreaded: %d of %d children by vfork\n", real, MT_ROUNDS);
    CHECK((real > 0) == WANT_VFORK, "%d children of the multithreaded parent came by vfork", real);
}

/* A vfork child changes into where and runs prog f there: the output must be f's text. */
static void cat_f_in(const char *where_, const char *prog_)
{
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    const char *volatile where = where_, *volatile prog = prog_;
    child_wrote = 0;
    pid_t pid = vfork();
    if (pid == 0) {
        child_wrote = 1;
        if (chdir(where) != 0)
            _exit(121);
        if (dup2(p[1], 1) < 0)
            _exit(122);
        execl(prog, "cat", "f", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[64] = {0};
    read_all(p[0], buf, sizeof buf);
    close(p[0]);
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child changing into %s to run %s: status %#x", where, prog, status);
    CHECK(strcmp(buf, "in cwd\n") == 0, "%s f in %s read [%s]", prog, where, buf);
    CHECK(child_wrote == WANT_VFORK, "vfork was served by fork");
}

/* A vfork child that changes into a directory in memory before its exec (Python's subprocess with
 * cwd=): the directory gets its disk twin for the kernel's chdir, and the program reads its file
 * by a relative name.  Before, the kernel's chdir met ENOENT and the spawn failed.  The change
 * alone puts no file on disk (it used to put them all there). */
static void child_chdirs(const char *root, const char *disk)
{
    char dir[PATH_MAX], f[PATH_MAX], prog[PATH_MAX], start[PATH_MAX];
    CHECK(getcwd(start, sizeof start) != NULL, "getcwd: %s", strerror(errno));
    snprintf(dir, sizeof dir, "%s/cwd", root);
    snprintf(f, sizeof f, "%s/cwd/f", root);
    snprintf(prog, sizeof prog, "%s/cwd/cat", root);
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
    put(f, "in cwd\n");
    cat_f_in(dir, "/bin/cat");
    CHECK(chdir(root) == 0, "chdir %s: %s", root, strerror(errno));
    cat_f_in("cwd", "/bin/cat");
    /* The program loaded the shim again and read f from memory: the child's chdir put nothing on
     * disk (it used to send everything there, MATERIALISE_ALL).  faccessat is the kernel's. */
    CHECK(syscall(SYS_faccessat, AT_FDCWD, f, F_OK) < 0 && errno == ENOENT,
          "%s is on disk after children changed into its directory", f);
    /* A child that execs a program in memory by a relative name, while the parent's working
     * directory is outside the roots (and above none): the parent's cached one says "not in a
     * root", the child's own is; the kernel must find ./cat on disk (the exec looks at the name
     * through that test only, where a child's open of a relative name also meets path_alias's). */
    copy_prog("/bin/cat", prog);
    CHECK(chdir(disk) == 0, "chdir %s: %s", disk, strerror(errno));
    cat_f_in(dir, "./cat");
    expect(f, "in cwd\n");
    CHECK(chdir(start) == 0, "chdir %s: %s", start, strerror(errno));
}

static int child_main(const char *root, const char *disk)
{
    plain_spawns(root);
    with_managed_fd(root);
    multithreaded(root);
    child_chdirs(root, disk);
    exec_in_root(root);
    child_opens_root(root); /* last: it puts the root on disk */
    fprintf(stderr, "vfork_test: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}

int main(int argc, char **argv)
{
    return shimmed_main(argc, argv, "vfork_test", child_main);
}
