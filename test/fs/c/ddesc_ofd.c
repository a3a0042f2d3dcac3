/*
 * ddesc_ofd DIR: OFD locks on fds that, under the shim, an open took from the daemon by
 * pidfd_getfd (the daemon's own open file description, shared with every process that took the
 * file), printed so that a run on tmpfs and one under the shim can be compared.  Branch ofdlock
 * answers an fd's later OFD locks at the kernel's cost once its description is known to be its own
 * (FT_OWNDESC); such an fd must first leave the daemon's description (ft_ddesc_own), with every
 * copy of it, or its lock would be every program's (docs/ARCHITECTURE.md, "With ofdlock's marks").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int ofd_lock(int fd, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl);
}

/* The child's exit status, or -1. */
static int child(int (*fn)(const char *, int), const char *name, int fd)
{
    fflush(stdout);
    pid_t p = fork();
    if (p == 0)
        _exit(fn(name, fd));
    int st;
    if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static int make(const char *name, int unused)
{
    (void)unused;
    FILE *f = fopen(name, "w");
    return f && fputs("made by a child\n", f) >= 0 && fclose(f) == 0 ? 0 : 1;
}

/* Another process's own open of name: 0 it locked, 1 busy, 2 no open. */
static int open_try_ofd(const char *name, int unused)
{
    (void)unused;
    closefrom(3);
    int fd = open(name, O_RDWR);
    return fd < 0 ? 2 : ofd_lock(fd, F_WRLCK) == 0 ? 0 : 1;
}

/* A fork child's lock through the description it shares with its parent: 0 it locked, 1 busy. */
static int ofd_inherited(const char *unused, int fd)
{
    (void)unused;
    return ofd_lock(fd, F_WRLCK) == 0 ? 0 : 1;
}

/* A fork child locks fd, then a process of its own opens name: 0 locked, 1 that open was busy. */
static int ofd_inherited_then_other(const char *name, int fd)
{
    if (ofd_lock(fd, F_WRLCK) != 0)
        return 2;
    return child(open_try_ofd, name, -1) == 1 ? 0 : 1;
}

/* Is there a POSIX lock on fd's file that another process sees? */
static int posix_held(const char *unused, int fd)
{
    (void)unused;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    return fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK ? 1 : 0;
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

int main(int argc, char **argv)
{
    if (argc != 2 || chdir(argv[1]) != 0) {
        fprintf(stderr, "usage: ddesc_ofd DIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* A file another process made: this process's first open of it (pidfd_getfd under the shim). */
    say("made o", child(make, "o", -1));
    int a = open("o", O_RDWR);
    say("open a", a < 0 ? -1 : 0);
    say("OFD lock a", ofd_lock(a, F_WRLCK));
    say("OFD lock a again", ofd_lock(a, F_WRLCK));
    say("another process's open locks o (1: busy)", child(open_try_ofd, "o", -1));
    say("a fork child locks a (its parent's description)", child(ofd_inherited, "o", a));
    say("a fork child's own open (1: busy)", child(open_try_ofd, "o", -1));
    int b = open("o", O_RDWR);
    say("OFD lock b (another open)", ofd_lock(b, F_WRLCK));
    say("unlock a", ofd_lock(a, F_UNLCK));
    say("OFD lock b", ofd_lock(b, F_WRLCK));
    say("another process's open locks o (1: busy)", child(open_try_ofd, "o", -1));
    close(b);
    say("another process's open locks o after b's close", child(open_try_ofd, "o", -1));

    /* After a POSIX lock a dup and a fork keep the daemon's description under the shim. */
    say("made p", child(make, "p", -1));
    say("made q", child(make, "q", -1));
    int p = open("p", O_RDWR);
    struct flock pl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    say("POSIX lock p", fcntl(p, F_SETLK, &pl));
    int q = open("q", O_RDWR), d = dup(q), e = fcntl(q, F_DUPFD_CLOEXEC, 0);
    say("dup d cloexec", cloexec(d));
    say("F_DUPFD_CLOEXEC e cloexec", cloexec(e));
    say("a fork child locks d, then its own process opens q (1: was not busy)", child(ofd_inherited_then_other, "q", d));
    /* (Not asked: whether that child's lock outlives it.  On tmpfs it does, held by the parent's
     * description; under the shim, in a process that holds POSIX locks, the child's lock was on a
     * description of the child's own: ARCHITECTURE.md, "A reopen closes the fd it replaces".) */
    say("OFD lock d", ofd_lock(d, F_WRLCK));
    say("OFD lock q (d's description)", ofd_lock(q, F_WRLCK));
    say("OFD lock e (d's description)", ofd_lock(e, F_WRLCK));
    int r = open("q", O_RDWR);
    say("OFD lock r (another open)", ofd_lock(r, F_WRLCK));
    say("another process's open locks q (1: busy)", child(open_try_ofd, "q", -1));
    close(q);
    close(e);
    say("another process's open locks q, d still open (1: busy)", child(open_try_ofd, "q", -1));
    exec_cat("exec reads d", d);
    close(d);
    say("OFD lock r after d's close", ofd_lock(r, F_WRLCK));
    say("POSIX lock on p still held (1)", child(posix_held, "p", p));
    return 0;
}
