/*
 * ddesc_fds DIR: what an fd opened on a file in DIR shows of its open file description and its
 * close-on-exec flag, printed so that a run on tmpfs and one under the shim can be compared.
 * Under the shim an open of an in-memory file takes the daemon's memfd by pidfd_getfd, which
 * shares the daemon's own description and sets close-on-exec whatever the program asked; the fd
 * table keeps the program's flag and gives the fd a description of its own where it shows
 * (docs/ARCHITECTURE.md, "Opening the daemon's memfd by pidfd").  Each line is one observation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *what, int r)
{
    printf("%s: %s\n", what, r < 0 ? strerror(errno) : r ? "1" : "0");
}

static int cloexec(int fd)
{
    int f = fcntl(fd, F_GETFD);
    return f < 0 ? -1 : (f & FD_CLOEXEC) != 0;
}

static int nb_lock(int fd)
{
    return flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : -1;
}

static int ofd_lock(int fd, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl);
}

/* The child's exit status, or -1. */
static int child(int (*fn)(int), int arg)
{
    fflush(stdout);
    pid_t p = fork();
    if (p == 0)
        _exit(fn(arg));
    int st;
    if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static int make_f(int unused)
{
    (void)unused;
    FILE *f = fopen("f", "w");
    return f && fputs("made by a child\n", f) >= 0 && fclose(f) == 0 ? 0 : 1;
}

static int lock_and_exit(int fd) { return nb_lock(fd) == 0 ? 0 : 1; }

static int open_lock_exit(int unused)
{
    (void)unused;
    closefrom(3); /* its own open only: nothing here shares a description with it */
    int fd = open("f", O_RDWR);
    return fd >= 0 && nb_lock(fd) == 0 ? 0 : 1; /* exits holding it: the lock goes with its description */
}

static int open_try_lock(int unused)
{
    (void)unused;
    closefrom(3);
    int fd = open("f", O_RDWR);
    return fd < 0 ? 2 : nb_lock(fd) == 0 ? 0 : 1;
}

/* sh reads the fd it inherited through exec */
static void exec_cat(const char *what, int fd)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "exec cat <&%d 2>/dev/null || echo no fd", fd);
    lseek(fd, 0, SEEK_SET);
    printf("%s: ", what);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
}

/*
 * ddesc_fds DIR ofd: OFD locks with branch ofdlock's FT_OWNDESC, which answers an fd's later OFD
 * locks at the kernel's cost once its description is known to be its own: an fd on the daemon's
 * description must first leave it (ft_ddesc_own), with every copy of it, or its lock would be every
 * program's (docs/ARCHITECTURE.md, "With ofdlock's marks").
 */
static const char *const names[] = {"o", "p", "q"};

static int make_named(int i)
{
    FILE *f = fopen(names[i], "w");
    return f && fputs("made by a child\n", f) >= 0 && fclose(f) == 0 ? 0 : 1;
}

/* Another process's own open of names[i]: 0 it locked, 1 busy, 2 no open. */
static int open_try_ofd(int i)
{
    closefrom(3);
    int fd = open(names[i], O_RDWR);
    return fd < 0 ? 2 : ofd_lock(fd, F_WRLCK) == 0 ? 0 : 1;
}

/* A fork child's lock through the description it shares with its parent: 0 it locked, 1 busy. */
static int ofd_inherited(int fd) { return ofd_lock(fd, F_WRLCK) == 0 ? 0 : 1; }

/* A fork child locks fd (of q), then a process of its own opens q: 0 that open was busy. */
static int ofd_inherited_then_other(int fd)
{
    if (ofd_lock(fd, F_WRLCK) != 0)
        return 2;
    return child(open_try_ofd, 2) == 1 ? 0 : 1;
}

/* Is there a POSIX lock on fd's file that another process sees? */
static int posix_held(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    return fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK ? 1 : 0;
}

static int ofd_main(void)
{
    /* A file another process made: this process's first open of it (pidfd_getfd under the shim). */
    say("made o", child(make_named, 0));
    int a = open("o", O_RDWR);
    say("open a", a < 0 ? -1 : 0);
    say("OFD lock a", ofd_lock(a, F_WRLCK));
    say("OFD lock a again", ofd_lock(a, F_WRLCK));
    say("another process's open locks o (1: busy)", child(open_try_ofd, 0));
    say("a fork child locks a (its parent's description)", child(ofd_inherited, a));
    say("a fork child's own open (1: busy)", child(open_try_ofd, 0));
    int b = open("o", O_RDWR);
    say("OFD lock b (another open)", ofd_lock(b, F_WRLCK));
    say("unlock a", ofd_lock(a, F_UNLCK));
    say("OFD lock b", ofd_lock(b, F_WRLCK));
    say("another process's open locks o (1: busy)", child(open_try_ofd, 0));
    close(b);
    say("another process's open locks o after b's close", child(open_try_ofd, 0));

    /* After a POSIX lock a dup and a fork keep the daemon's description under the shim. */
    say("made p", child(make_named, 1));
    say("made q", child(make_named, 2));
    int p = open("p", O_RDWR);
    struct flock pl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    say("POSIX lock p", fcntl(p, F_SETLK, &pl));
    int q = open("q", O_RDWR), d = dup(q), e = fcntl(q, F_DUPFD_CLOEXEC, 0);
    say("dup d cloexec", cloexec(d));
    say("F_DUPFD_CLOEXEC e cloexec", cloexec(e));
    say("a fork child locks d, then its own process opens q (1: was not busy)", child(ofd_inherited_then_other, d));
    /* (Not asked: whether that child's lock outlives it.  On tmpfs it does, held by the parent's
     * description; under the shim, in a process that holds POSIX locks, the child's lock was on a
     * description of the child's own: ARCHITECTURE.md, "A reopen closes the fd it replaces".) */
    say("OFD lock d", ofd_lock(d, F_WRLCK));
    say("OFD lock q (d's description)", ofd_lock(q, F_WRLCK));
    say("OFD lock e (d's description)", ofd_lock(e, F_WRLCK));
    int r = open("q", O_RDWR);
    say("OFD lock r (another open)", ofd_lock(r, F_WRLCK));
    say("another process's open locks q (1: busy)", child(open_try_ofd, 2));
    close(q);
    close(e);
    say("another process's open locks q, d still open (1: busy)", child(open_try_ofd, 2));
    exec_cat("exec reads d", d);
    close(d);
    say("OFD lock r after d's close", ofd_lock(r, F_WRLCK));
    say("POSIX lock on p still held (1)", child(posix_held, p));
    return 0;
}

int main(int argc, char **argv)
{
    int ofd = argc == 3 && strcmp(argv[2], "ofd") == 0;
    if ((argc != 2 && !ofd) || chdir(argv[1]) != 0) {
        fprintf(stderr, "usage: ddesc_fds DIR [ofd]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (ofd)
        return ofd_main();
    say("made by a child", child(make_f, 0));
    int a = open("f", O_RDWR), b = open("f", O_RDONLY), c = open("f", O_RDONLY | O_CLOEXEC);
    if (a < 0 || b < 0 || c < 0) {
        perror("open f");
        return 1;
    }
    say("a cloexec", cloexec(a));
    say("c cloexec", cloexec(c));
    /* two opens: two descriptions */
    say("lock a", nb_lock(a));
    say("lock b while a holds it", nb_lock(b));
    say("unlock a", flock(a, LOCK_UN));
    /* another process's open conflicts, and its lock goes when it exits */
    say("lock a", nb_lock(a));
    say("another process's open locks (1: busy)", child(open_try_lock, 0));
    say("unlock a", flock(a, LOCK_UN));
    say("another process locks and exits holding it", child(open_lock_exit, 0));
    say("lock a after it exited", nb_lock(a));
    say("unlock a", flock(a, LOCK_UN));
    /* fork: the child's fd shares the parent's description, and so its lock */
    say("the child locks a and exits holding it", child(lock_and_exit, a));
    say("lock a again (same description)", nb_lock(a));
    say("lock b (another description)", nb_lock(b));
    say("unlock a", flock(a, LOCK_UN));
    /* exec keeps a and drops c */
    exec_cat("exec reads a", a);
    exec_cat("exec reads c", c);
    /* the flag itself */
    say("F_SETFD a", fcntl(a, F_SETFD, FD_CLOEXEC));
    say("a cloexec", cloexec(a));
    say("F_SETFD a 0", fcntl(a, F_SETFD, 0));
    say("a cloexec", cloexec(a));
    say("FIOCLEX c", ioctl(c, FIONCLEX));
    say("c cloexec", cloexec(c));
    exec_cat("exec reads c", c);
    say("FIOCLEX c", ioctl(c, FIOCLEX));
    say("c cloexec", cloexec(c));
    /* copies */
    int d = dup(a), e = fcntl(a, F_DUPFD_CLOEXEC, 0), g = open("f", O_RDONLY);
    say("dup cloexec", cloexec(d));
    say("F_DUPFD_CLOEXEC cloexec", cloexec(e));
    say("lock the dup", nb_lock(d));
    say("lock a (same description)", nb_lock(a));
    say("lock g (another)", nb_lock(g));
    say("unlock a", flock(a, LOCK_UN));
    say("dup2 onto 9", dup2(g, 9) == 9 ? 0 : -1);
    say("9 cloexec", cloexec(9));
    exec_cat("exec reads 9", 9);
    /* OFD locks belong to the description too */
    say("OFD write lock a", ofd_lock(a, F_WRLCK));
    say("OFD read lock b (another)", ofd_lock(b, F_RDLCK));
    say("OFD write lock d (a's)", ofd_lock(d, F_WRLCK));
    say("close_range CLOEXEC of g", close_range((unsigned)g, (unsigned)g, CLOSE_RANGE_CLOEXEC));
    say("g cloexec", cloexec(g));
    /* a file made here: the create's fd */
    int n = open("n", O_RDWR | O_CREAT | O_TRUNC, 0644);
    say("create n", n < 0 ? -1 : 0);
    say("n cloexec", cloexec(n));
    say("write n", write(n, "new file\n", 9) == 9 ? 0 : -1);
    exec_cat("exec reads n", n);
    say("lock n", nb_lock(n));
    int n2 = open("n", O_RDONLY);
    say("lock n2 (another)", nb_lock(n2));
    return 0;
}
