/*
 * test/fs/c/memdir_fds.c - fds of directories made in a root, for memdir_fds.test.mjs: the same
 * output on tmpfs and under the shim, which opens a directory that lives only in memory on a
 * stand-in fd (shim/nsdirfd.c) instead of giving it a disk twin.
 *
 *   memdir_fds DIR            the scenarios
 *   memdir_fds DIR child FD   (the exec'd child of the fork + exec scenario)
 *   memdir_fds DIR getdents   a raw getdents64 on a fresh directory's fd: the number of names
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>

static const char *D;

static const char *P(const char *sub)
{
    static char buf[4][4096];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", D, sub);
    return b;
}

static void res(const char *what, int r)
{
    if (r < 0)
        printf("%s: %s\n", what, strerror(errno));
    else
        printf("%s: ok\n", what);
}

/* The stat of fd against the stat of path: the same directory, and its counts. */
static void same(const char *what, int fd, const char *path)
{
    struct stat a, b;
    if (fstat(fd, &a) < 0) {
        printf("%s: fstat %s\n", what, strerror(errno));
        return;
    }
    if (lstat(path, &b) < 0) {
        printf("%s: lstat %s\n", what, strerror(errno));
        return;
    }
    /* (st_size: a directory that got its disk twin, after a rename of one in it, shows the disk's) */
    printf("%s: %s mode=%o nlink=%lu size=%s uid=%s\n", what,
           a.st_dev == b.st_dev && a.st_ino == b.st_ino ? "same" : "DIFFERENT", a.st_mode, (unsigned long)a.st_nlink,
           a.st_size == b.st_size ? "same" : "DIFFERENT",
           a.st_uid == b.st_uid && a.st_gid == b.st_gid && a.st_mtime == b.st_mtime ? "same" : "DIFFERENT");
}

static int cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The listing through a stream on a copy of fd: sorted names with their types; "." and ".."
 * checked against fstat of fd and stat of parent. */
static void list(const char *what, int fd, const char *parent)
{
    int c = dup(fd);
    DIR *d = fdopendir(c);
    if (!d) {
        printf("%s: fdopendir %s\n", what, strerror(errno));
        close(c);
        return;
    }
    rewinddir(d); /* the copy shares the fd's position */
    struct stat self, up;
    int have = fstat(fd, &self) == 0 && stat(parent, &up) == 0;
    char *names[64];
    int n = 0, dots = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL && n < 64) {
        if (strcmp(e->d_name, ".") == 0) {
            dots |= have && e->d_ino == self.st_ino ? 1 : 4;
            continue;
        }
        if (strcmp(e->d_name, "..") == 0) {
            dots |= have && e->d_ino == up.st_ino ? 2 : 8;
            continue;
        }
        char buf[300];
        snprintf(buf, sizeof buf, "%s%s", e->d_name, e->d_type == DT_DIR ? "/" : e->d_type == DT_REG ? "" : "?");
        names[n++] = strdup(buf);
    }
    int err = errno;
    qsort(names, (size_t)n, sizeof names[0], cmp);
    printf("%s: dots=%d err=%s [", what, dots, err ? strerror(err) : "none");
    for (int i = 0; i < n; i++) {
        printf("%s%s", i ? " " : "", names[i]);
        free(names[i]);
    }
    printf("] dirfd=%s\n", dirfd(d) == c ? "same" : "DIFFERENT");
    /* seekdir back to a position telldir gave: the same entry again */
    rewinddir(d);
    struct dirent *first = readdir(d);
    long pos = telldir(d);
    struct dirent *second = readdir(d);
    char name2[256] = "";
    if (second)
        snprintf(name2, sizeof name2, "%s", second->d_name);
    seekdir(d, pos);
    struct dirent *again = readdir(d);
    printf("%s: seek %s\n", what,
           !first ? "empty" : (!second && !again) || (second && again && strcmp(name2, again->d_name) == 0) ? "same" : "DIFFERENT");
    closedir(d);
}

static void write_at(int dfd, const char *name, const char *text)
{
    int fd = openat(dfd, name, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) {
        printf("create %s: %s\n", name, strerror(errno));
        return;
    }
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        printf("write %s: short\n", name);
    close(fd);
    printf("create %s: ok\n", name);
}

static void show(const char *sub)
{
    char buf[64] = "";
    int fd = open(P(sub), O_RDONLY);
    if (fd < 0) {
        printf("%s: %s\n", sub, strerror(errno));
        return;
    }
    ssize_t r = read(fd, buf, sizeof buf - 1);
    buf[r > 0 ? r : 0] = '\0';
    close(fd);
    printf("%s: \"%s\"\n", sub, buf);
}

static int child(int fd)
{
    same("child fstat", fd, P("a"));
    write_at(fd, "fromchild", "child");
    list("child list", fd, D);
    return 0;
}

static int raw_getdents(void)
{
    mkdir(P("g"), 0755);
    close(open(P("g/one"), O_CREAT | O_WRONLY, 0644));
    int fd = open(P("g"), O_RDONLY | O_DIRECTORY);
    char buf[4096];
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf), names = 0;
    for (long off = 0; n > 0 && off < n;) {
        struct dirent64 *e = (struct dirent64 *)(buf + off);
        names++;
        off += e->d_reclen;
    }
    printf("getdents64: %ld names (%s)\n", names, n < 0 ? strerror(errno) : "ok");
    close(fd);
    unlink(P("g/one"));
    rmdir(P("g"));
    return 0;
}

/* A directory's mode and times, or the error. */
static void attrs_of(const char *sub)
{
    struct stat st;
    if (stat(P(sub), &st) < 0) {
        printf("%s: %s\n", sub, strerror(errno));
        return;
    }
    printf("%s: mode=%o atime=%ld.%09ld mtime=%ld.%09ld nlink=%lu\n", sub, st.st_mode, (long)st.st_atim.tv_sec,
           st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (unsigned long)st.st_nlink);
}

/* chmod and the times of directories in memory and of the files in them (issue 15, branch twincount).
 * "tools": only unzip's pattern (each file's times and mode, then each directory's, by a name with a
 * trailing slash, deepest first) and the fd calls served in memory, which make no disk twin; "all"
 * adds the calls that still take the twin (an O_PATH fd, AT_SYMLINK_NOFOLLOW, misses). */
static int attrs(int all)
{
    res("mkdir u", mkdir(P("u"), 0700));
    res("mkdir u/v", mkdir(P("u/v"), 0700));
    write_at(AT_FDCWD, P("u/f"), "f"); /* (printed with DIR: the harness replaces it) */
    struct utimbuf ub = {1000000000, 1100000000};
    res("utime u/f", utime(P("u/f"), &ub));
    res("chmod u/f", chmod(P("u/f"), 0640));
    ub.actime += 7;
    res("utime u/v/", utime(P("u/v/"), &ub));
    res("chmod u/v/", chmod(P("u/v/"), 040751));
    ub.modtime += 3;
    res("utime u/", utime(P("u/"), &ub));
    res("chmod u/", chmod(P("u/"), 040755));
    attrs_of("u");
    attrs_of("u/v");
    attrs_of("u/f");
    show("u/f");

    int fd = open(P("u/v"), O_RDONLY | O_DIRECTORY);
    res("open u/v", fd);
    struct timespec ts[2] = {{1200000000, 5}, {0, UTIME_OMIT}};
    res("futimens v atime", futimens(fd, ts));
    struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    res("futimens v omit", futimens(fd, omit));
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    res("futimens v bad", futimens(fd, bad));
    res("utimensat u/v bad", utimensat(AT_FDCWD, P("u/v"), bad, 0));
    res("fchmod v 0705", fchmod(fd, 0705));
    same("fstat v", fd, P("u/v"));
    res("fchmodat u/v 2750", fchmodat(AT_FDCWD, P("u/v"), 02750, 0));
    struct timespec both[2] = {{1300000000, 0}, {1300000001, 0}};
    res("utimensat u/v", utimensat(AT_FDCWD, P("u/v"), both, 0));
    same("fstat v after", fd, P("u/v"));
    attrs_of("u/v");
    /* tar x's last pass as root, each directory by a name relative to its parent's fd, with
     * AT_SYMLINK_NOFOLLOW: owner, mode, times (branch dirtwin: served in memory, no twin) */
    int ufd = open(P("u"), O_RDONLY | O_DIRECTORY);
    struct stat so;
    res("fchownat u v 1:2 nofollow", fchownat(ufd, "v", 1, 2, AT_SYMLINK_NOFOLLOW));
    res("fchmodat u v 2751 nofollow", fchmodat(ufd, "v", 02751, AT_SYMLINK_NOFOLLOW));
    struct timespec tt[2] = {{0, UTIME_OMIT}, {1400000000, 9}};
    res("utimensat u v nofollow", utimensat(ufd, "v", tt, AT_SYMLINK_NOFOLLOW));
    attrs_of("u/v");
    printf("owner u/v: %s\n", stat(P("u/v"), &so) == 0 && so.st_uid == 1 && so.st_gid == 2 ? "1:2" : "OTHER");
    res("chown u/v 3:4", chown(P("u/v"), 3, 4));
    res("lchown u/v -1:5", lchown(P("u/v"), (uid_t)-1, 5));
    res("fchown v 0:0", fchown(fd, 0, 0));
    res("fchownat u \"\" empty path", fchownat(ufd, "", 6, 6, AT_EMPTY_PATH));
    if (stat(P("u/v"), &so) == 0)
        printf("owner u/v: %u:%u mode %o\n", (unsigned)so.st_uid, (unsigned)so.st_gid, (unsigned)so.st_mode);
    if (stat(P("u"), &so) == 0)
        printf("owner u: %u:%u\n", (unsigned)so.st_uid, (unsigned)so.st_gid);
    res("fchownat u \"\" back", fchownat(ufd, "", 0, 0, AT_EMPTY_PATH));
    /* git's access(X_OK) of its object directories: answered from the slot (branch dirtwin) */
    res("access u/v X_OK", access(P("u/v"), X_OK));
    res("access u/v/ R_OK|W_OK", access(P("u/v/"), R_OK | W_OK));
    res("faccessat u v F_OK eaccess", faccessat(ufd, "v", F_OK, AT_EACCESS));
    res("faccessat u v bad mode", faccessat(ufd, "v", 0x40, 0));
    res("access u/v/ nofollow", faccessat(AT_FDCWD, P("u/v/"), W_OK, AT_SYMLINK_NOFOLLOW));
    if (all) /* a miss: the kernel's answer, after the twin */
        res("fchownat u nothere nofollow", fchownat(ufd, "nothere", 1, 1, AT_SYMLINK_NOFOLLOW));
    close(ufd);
    if (all) {
        int pfd = open(P("u/v"), O_PATH | O_DIRECTORY);
        res("fchmod O_PATH v", fchmod(pfd, 0700));
        close(pfd);
        both[0].tv_sec++;
        res("utimensat u/v nofollow", utimensat(AT_FDCWD, P("u/v"), both, AT_SYMLINK_NOFOLLOW));
        attrs_of("u/v");
        /* misses in a directory in memory: the kernel's answer, after the twin */
        res("chmod u/nothere", chmod(P("u/nothere"), 0755));
        res("utime u/nothere/x", utime(P("u/nothere/x"), &ub));
        res("chmod u/f/x", chmod(P("u/f/x"), 0755));
        res("chown u/f/x", chown(P("u/f/x"), 0, 0));
    }
    close(fd);
    res("unlink u/f", unlink(P("u/f")));
    res("rmdir u/v", rmdir(P("u/v")));
    res("rmdir u", rmdir(P("u")));
    return 0;
}

/* A directory fd sent to another process over a unix socket (SCM_RIGHTS): the receiver lists,
 * opens and creates through it, and fchdir()s into it, as on tmpfs (branch dirtwin: a stand-in
 * arrived as a removed directory, empty and refusing creates). */
static int scm(void)
{
    res("mkdir s", mkdir(P("s"), 0755));
    res("mkdir s/in", mkdir(P("s/in"), 0755));
    write_at(AT_FDCWD, P("s/f"), "sent");
    int fd = open(P("s"), O_RDONLY | O_DIRECTORY);
    res("open s", fd);
    int sv[2];
    res("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    pid_t c = fork();
    if (c == 0) {
        close(sv[0]);
        char byte;
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        struct iovec iov = {&byte, 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
        ssize_t got = recvmsg(sv[1], &m, 0);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        int rfd = -1;
        if (got == 1 && cm && cm->cmsg_type == SCM_RIGHTS)
            memcpy(&rfd, CMSG_DATA(cm), sizeof rfd);
        printf("child: received %s\n", rfd >= 0 ? "an fd" : "nothing");
        same("child: fstat", rfd, P("s"));
        list("child: list", rfd, D);
        int f = openat(rfd, "f", O_RDONLY);
        char b[16] = "";
        res("child: openat f", f);
        if (f >= 0) {
            printf("child: read f: %.*s\n", (int)read(f, b, sizeof b - 1), b);
            close(f);
        }
        write_at(rfd, "made", "by child");
        res("child: mkdirat in2", mkdirat(rfd, "in2", 0700));
        res("child: fchdir", fchdir(rfd));
        struct stat st;
        res("child: stat in (relative)", stat("in", &st));
        res("child: stat made (relative)", stat("made", &st));
        /* the second, through sendmmsg: s/in */
        m.msg_controllen = sizeof u.buf;
        got = recvmsg(sv[1], &m, 0);
        cm = CMSG_FIRSTHDR(&m);
        rfd = -1;
        if (got == 1 && cm && cm->cmsg_type == SCM_RIGHTS)
            memcpy(&rfd, CMSG_DATA(cm), sizeof rfd);
        write_at(rfd, "in-made", "by child");
        list("child: list in", rfd, P("s"));
        fflush(stdout);
        _exit(0);
    }
    close(sv[1]);
    char byte = 'x';
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = {&byte, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    int sent = (int)sendmsg(sv[0], &m, 0), e = errno, st;
    int infd = open(P("s/in"), O_RDONLY | O_DIRECTORY);
    memcpy(CMSG_DATA(cm), &infd, sizeof infd);
    struct mmsghdr mm = {.msg_hdr = m};
    int sent2 = sendmmsg(sv[0], &mm, 1, 0), e2 = errno;
    waitpid(c, &st, 0); /* (the child's lines first, whatever the scheduling) */
    errno = e;
    res("sendmsg s", sent);
    errno = e2;
    res("sendmmsg s/in", sent2 == 1 ? 0 : -1);
    list("parent: list in after", infd, P("s"));
    close(infd);
    printf("child exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    same("parent: fstat after", fd, P("s"));
    list("parent: list after", fd, D);
    close(fd);
    close(sv[0]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    D = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[2], "child") == 0)
        return child(atoi(argv[3]));
    if (argc == 3 && strcmp(argv[2], "getdents") == 0)
        return raw_getdents();
    if (argc == 3 && strcmp(argv[2], "attrs") == 0)
        return attrs(1);
    if (argc == 3 && strcmp(argv[2], "attrs-tools") == 0)
        return attrs(0);
    if (argc == 3 && strcmp(argv[2], "scm") == 0)
        return scm();

    /* open, identity, creates and listings through the fd */
    res("mkdir a", mkdir(P("a"), 0755));
    int fd = open(P("a"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    res("open a", fd);
    same("fstat a", fd, P("a"));
    struct stat st;
    res("fstatat a empty", fstatat(fd, "", &st, AT_EMPTY_PATH));
    printf("fstatat a empty: nlink=%lu size=%ld\n", (unsigned long)st.st_nlink, (long)st.st_size);
    list("list empty", fd, D);
    write_at(fd, "f1", "one");
    res("mkdirat sub", mkdirat(fd, "sub", 0700));
    write_at(fd, "f2", "two");
    same("fstat after creates", fd, P("a"));
    res("fstat", fstat(fd, &st));
    printf("after creates: nlink=%lu size=%ld\n", (unsigned long)st.st_nlink, (long)st.st_size);
    list("list after creates", fd, D);
    /* a copy's stream starts where the last one left the shared position: at the end */
    lseek(fd, 0, SEEK_SET);
    int c1 = dup(fd), n1 = 0, n2 = 0;
    DIR *s1 = fdopendir(c1);
    while (s1 && readdir(s1))
        n1++;
    if (s1)
        closedir(s1);
    int c2 = dup(fd);
    DIR *s2 = fdopendir(c2);
    while (s2 && readdir(s2))
        n2++;
    printf("shared position: first %d, then %d\n", n1, n2);
    if (s2) {
        rewinddir(s2);
        for (n2 = 0; readdir(s2);)
            n2++;
        printf("after rewinddir: %d\n", n2);
        closedir(s2);
    }
    res("fstatat sub", fstatat(fd, "sub", &st, AT_SYMLINK_NOFOLLOW));
    printf("sub: dir=%d mode=%o\n", S_ISDIR(st.st_mode), st.st_mode & 07777);
    res("unlinkat f1", unlinkat(fd, "f1", 0));
    res("unlinkat f1 again", unlinkat(fd, "f1", 0));
    res("renameat sub sub2", renameat(fd, "sub", fd, "sub2"));
    res("renameat f2 to root", renameat(fd, "f2", AT_FDCWD, P("f2moved")));
    show("f2moved");
    res("unlinkat sub2 notdir", unlinkat(fd, "sub2", 0));
    list("list after changes", fd, D);
    int r = openat(fd, "f1", O_RDONLY);
    res("openat f1 missing", r);
    int sub = openat(fd, "sub2", O_RDONLY | O_DIRECTORY);
    res("openat sub2", sub);
    same("fstat sub2", sub, P("a/sub2"));
    list("list sub2", sub, P("a"));
    int dot = openat(fd, ".", O_RDONLY);
    same("fstat a/.", dot, P("a"));
    int dotdot = openat(sub, "..", O_RDONLY | O_DIRECTORY);
    same("fstat sub2/..", dotdot, P("a"));
    close(dot);
    close(dotdot);
    int ps = open(P("a"), O_PATH | O_DIRECTORY);
    same("O_PATH a", ps, P("a"));
    DIR *bad = fdopendir(ps);
    printf("fdopendir O_PATH: %s\n", bad ? "ok" : strerror(errno));
    close(ps);
    int plain = open(P("a"), O_RDONLY);
    same("O_RDONLY a", plain, P("a"));
    char c;
    printf("read dir: %s\n", read(plain, &c, 1) < 0 ? strerror(errno) : "data");
    close(plain);
    printf("open a for writing: %s\n", open(P("a"), O_WRONLY) < 0 ? strerror(errno) : "ok");

    /* copies */
    int d1 = dup(fd), d2 = fcntl(fd, F_DUPFD_CLOEXEC, 40), d3 = dup2(fd, 60), d4 = dup3(fd, 61, O_CLOEXEC);
    same("dup", d1, P("a"));
    same("F_DUPFD_CLOEXEC", d2, P("a"));
    same("dup2", d3, P("a"));
    same("dup3", d4, P("a"));
    printf("cloexec: dup=%d dupfd=%d dup3=%d\n", fcntl(d1, F_GETFD) & FD_CLOEXEC, fcntl(d2, F_GETFD) & FD_CLOEXEC,
           fcntl(d4, F_GETFD) & FD_CLOEXEC);
    write_at(d2, "viadup", "dup");
    close(d2);
    close(d3);
    close(d4);

    /* fork + exec: the child inherits d1 (no FD_CLOEXEC) */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char fdn[16];
        snprintf(fdn, sizeof fdn, "%d", d1);
        execl("/proc/self/exe", argv[0], D, "child", fdn, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("child: status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    show("a/fromchild");
    same("after child", d1, P("a"));
    /* fork without exec: the child's copy of the table */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        write_at(fd, "fromfork", "fork");
        same("forked fstat", fd, P("a"));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    show("a/fromfork");
    close(d1);

    /* fchmod is served in memory (branch twincount); fchdir takes the directory's twin, then the
     * kernel's call */
    res("fchmod a 0750", fchmod(fd, 0750));
    res("stat a", stat(P("a"), &st));
    printf("a: mode=%o\n", st.st_mode & 07777);
    same("after fchmod", fd, P("a"));
    int cwd = open(".", O_RDONLY | O_DIRECTORY);
    res("fchdir a", fchdir(fd));
    write_at(AT_FDCWD, "viacwd", "cwd");
    res("fchdir back", fchdir(cwd));
    close(cwd);
    show("a/viacwd");
    list("list after fallbacks", fd, D);

    /* a stream whose fd is put on the directory's twin while it is open (fchdir of its dirfd) */
    res("mkdir s", mkdir(P("s"), 0755));
    write_at(AT_FDCWD, P("s/one"), "1"); /* (printed with DIR: the harness replaces it) */
    DIR *sd = opendir(P("s"));
    int seen = 0;
    while (sd && readdir(sd))
        seen++;
    cwd = open(".", O_RDONLY | O_DIRECTORY);
    res("fchdir s", sd ? fchdir(dirfd(sd)) : -1);
    write_at(AT_FDCWD, "two", "2");
    res("fchdir back", fchdir(cwd));
    close(cwd);
    if (sd) {
        rewinddir(sd);
        char *nm[8];
        int k = 0;
        struct dirent *de;
        while ((de = readdir(sd)) && k < 8)
            if (de->d_name[0] != '.')
                nm[k++] = strdup(de->d_name);
        qsort(nm, (size_t)k, sizeof nm[0], cmp);
        printf("s: %d entries first, then", seen);
        for (int i = 0; i < k; i++) {
            printf(" %s", nm[i]);
            free(nm[i]);
        }
        printf("\n");
        closedir(sd);
    }
    res("unlink s/one", unlink(P("s/one")));
    res("unlink s/two", unlink(P("s/two")));
    res("rmdir s", rmdir(P("s")));

    /* removed while open: nothing listed, creates fail with ENOENT */
    res("mkdir b", mkdir(P("b"), 0755));
    int b = open(P("b"), O_RDONLY | O_DIRECTORY);
    res("rmdir b", rmdir(P("b")));
    list("list removed", b, D);
    struct stat bs;
    res("fstat removed", fstat(b, &bs));
    printf("removed: nlink=%lu dir=%d\n", (unsigned long)bs.st_nlink, S_ISDIR(bs.st_mode));
    r = openat(b, "x", O_CREAT | O_WRONLY, 0644);
    res("create in removed", r);
    res("mkdirat in removed", mkdirat(b, "y", 0755));
    res("fstatat in removed", fstatat(b, "x", &bs, 0));
    close(b);

    /* renamed while open: the fd stays on the directory */
    res("mkdir c", mkdir(P("c"), 0755));
    int cfd = open(P("c"), O_RDONLY | O_DIRECTORY);
    write_at(cfd, "before", "b");
    res("rename c c2", rename(P("c"), P("c2")));
    write_at(cfd, "after", "a");
    show("c2/before");
    show("c2/after");
    same("renamed", cfd, P("c2"));
    list("list renamed", cfd, D);
    close(cfd);

    /* a directory below one in memory, opened and emptied through fds as rmtree does */
    res("mkdir t", mkdir(P("t"), 0700));
    res("mkdir t/u", mkdir(P("t/u"), 0700));
    write_at(AT_FDCWD, P("t/u/leaf"), "leaf"); /* (printed with DIR: the harness replaces it) */
    int tfd = open(P("t"), O_RDONLY);
    int ufd = openat(tfd, "u", O_RDONLY);
    same("t/u", ufd, P("t/u"));
    list("list t/u", ufd, P("t"));
    res("unlinkat leaf", unlinkat(ufd, "leaf", 0));
    close(ufd);
    res("rmdir u at", unlinkat(tfd, "u", AT_REMOVEDIR));
    close(tfd);
    res("rmdir t", rmdir(P("t")));

    /* glibc's remove (its own unlink, then rmdir): a file and an empty directory made in memory,
     * one of them opened first (std::filesystem::remove_all opens, empties, then removes) */
    res("mkdir r", mkdir(P("r"), 0755));
    write_at(AT_FDCWD, P("r/file"), "f"); /* (printed with DIR: the harness replaces it) */
    int rfd = open(P("r"), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    res("remove r (not empty)", remove(P("r")));
    res("remove r/file", remove(P("r/file")));
    close(rfd);
    res("remove r", remove(P("r")));
    res("remove r again", remove(P("r")));
    res("mkdir r2", mkdir(P("r2"), 0755));
    res("remove r2", remove(P("r2")));
    res("stat r2", stat(P("r2"), &st));

    /* the end: everything through the first fd, then the directory */
    res("unlinkat viadup", unlinkat(fd, "viadup", 0));
    res("unlinkat fromchild", unlinkat(fd, "fromchild", 0));
    res("unlinkat fromfork", unlinkat(fd, "fromfork", 0));
    res("unlinkat viacwd", unlinkat(fd, "viacwd", 0));
    res("rmdir sub2 at", unlinkat(fd, "sub2", AT_REMOVEDIR));
    close(sub);
    list("list at the end", fd, D);
    close(fd);
    res("rmdir a", rmdir(P("a")));
    return 0;
}
