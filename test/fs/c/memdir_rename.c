/*
 * test/fs/c/memdir_rename.c - renames of directories made in a root, for memdir_rename.test.mjs:
 * the same output on tmpfs and under the shim, which renames a directory that lives only in
 * memory, with everything below it, in the region (shim/nsdir.c, nsd_rename_dir) instead of
 * giving it a disk twin first.
 *
 *   memdir_rename DIR           the scenarios (no RENAME_EXCHANGE: no twin is needed)
 *   memdir_rename DIR exchange  RENAME_EXCHANGE of directories in memory against each other,
 *                               a file and missing names (in memory since branch exchange)
 *   memdir_rename DIR xtrees    RENAME_EXCHANGE of two directory trees in memory, in memory
 *                               (branch exchange): listings, counts, inodes, ctimes, stand-ins
 *   memdir_rename DIR tree N    a tree of N files in 4 directories renamed 20 times, checked
 *   memdir_rename DIR race N    renames of a directory racing creates and unlinks below it
 *   memdir_rename DIR xrace N   exchanges of two directories racing creates and unlinks below one
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *D;

static const char *P(const char *sub)
{
    static char buf[8][4096];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", D, sub);
    return b;
}

static void res(const char *what, int r)
{
    printf("%s: %s\n", what, r < 0 ? strerror(errno) : "ok");
}

static void mk(const char *sub)
{
    if (mkdir(P(sub), 0755) < 0)
        printf("mkdir %s: %s\n", sub, strerror(errno));
}

static void put(const char *sub, const char *text)
{
    int fd = open(P(sub), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        printf("write %s: %s\n", sub, strerror(errno));
    if (fd >= 0)
        close(fd);
}

static void cat(const char *sub)
{
    char buf[256];
    int fd = open(P(sub), O_RDONLY);
    if (fd < 0) {
        printf("cat %s: %s\n", sub, strerror(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    printf("cat %s: %s\n", sub, buf);
}

/* A directory's counts (tmpfs: st_nlink 2 + subdirectories, st_size 40 + 20 per name). */
static void counts(const char *sub)
{
    struct stat st;
    if (lstat(P(sub), &st) < 0)
        printf("stat %s: %s\n", sub, strerror(errno));
    else
        printf("stat %s: %s mode=%o nlink=%lu size=%lld\n", sub, S_ISDIR(st.st_mode) ? "dir" : "file",
               st.st_mode & 07777, (unsigned long)st.st_nlink, S_ISDIR(st.st_mode) ? (long long)st.st_size : -1LL);
}

/* The root is a disk directory under the shim: its st_nlink only (its st_size is the disk's). */
static void counts_root(void)
{
    struct stat st;
    if (lstat(D, &st) == 0)
        printf("stat root: nlink=%lu\n", (unsigned long)st.st_nlink);
}

static int cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Every name below sub, sorted, with a file's bytes: the tree as a program sees it. */
static void walk(const char *sub, int depth)
{
    DIR *d = opendir(P(sub));
    if (!d) {
        printf("opendir %s: %s\n", sub, strerror(errno));
        return;
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp);
    for (int i = 0; i < n; i++) {
        char child[2048];
        snprintf(child, sizeof child, "%s/%s", sub, names[i]);
        struct stat st;
        if (lstat(P(child), &st) < 0) {
            printf("%*s%s: %s\n", depth * 2, "", names[i], strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            printf("%*s%s/ nlink=%lu size=%lld\n", depth * 2, "", names[i], (unsigned long)st.st_nlink,
                   (long long)st.st_size);
            walk(child, depth + 1);
        } else {
            char buf[128];
            int fd = open(P(child), O_RDONLY);
            ssize_t r = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
            if (fd >= 0)
                close(fd);
            buf[r > 0 ? r : 0] = '\0';
            printf("%*s%s nlink=%lu [%s]\n", depth * 2, "", names[i], (unsigned long)st.st_nlink, buf);
        }
        free(names[i]);
    }
}

static void scenarios(void)
{
    struct stat before, after;
    /* a tree moves with its directory: names, bytes, counts */
    mk("d");
    mk("d/sub");
    mk("d/sub/deep");
    put("d/f1", "one");
    put("d/sub/f2", "two");
    put("d/sub/deep/f3", "three");
    mk("p");
    mk("pq"); /* a sibling whose name starts with the moved one's: must stay */
    put("pq/keep", "kept");
    counts_root();
    lstat(P("d"), &before);
    /* an fd of a file below, open across the rename */
    int ffd = open(P("d/sub/f2"), O_RDWR | O_APPEND);
    res("rename d e", rename(P("d"), P("e")));
    lstat(P("e"), &after);
    printf("e: same inode %s, ctime %s\n", before.st_ino == after.st_ino ? "yes" : "no",
           after.st_ctim.tv_sec > before.st_ctim.tv_sec ||
                   (after.st_ctim.tv_sec == before.st_ctim.tv_sec && after.st_ctim.tv_nsec >= before.st_ctim.tv_nsec)
               ? "not earlier"
               : "EARLIER");
    counts_root();
    counts_root();
    counts_root();
    cat("e/sub/deep/f3");
    cat("d/sub/deep/f3");
    if (ffd >= 0) {
        res("write through the fd opened before", (int)write(ffd, "+", 1) - 1);
        close(ffd);
    }
    cat("e/sub/f2");
    /* creates, unlinks, mkdirs and renames at the new names and misses at the old */
    put("e/sub/new", "new");
    res("create in d/sub", open(P("d/sub/x"), O_CREAT | O_WRONLY, 0644));
    res("unlink e/f1", unlink(P("e/f1")));
    res("mkdir e/sub/m", mkdir(P("e/sub/m"), 0700));
    res("rename e/sub/new e/sub/m/new", rename(P("e/sub/new"), P("e/sub/m/new")));
    /* the prefix sibling */
    res("rename p r", rename(P("p"), P("r")));
    cat("pq/keep");
    counts("pq");
    /* into another directory in memory, one level deeper, and back */
    res("rename e/sub r/sub", rename(P("e/sub"), P("r/sub")));
    counts_root();
    counts_root();
    counts("r/sub");
    res("rename r/sub e/sub2", rename(P("r/sub"), P("e/sub2")));
    counts_root();
    counts_root();
    /* the kernel's errors */
    res("rename e into its own subtree", rename(P("e"), P("e/sub2/deep/x")));
    res("rename e onto itself below", rename(P("e"), P("e/sub2")));
    res("rename e/sub2 onto e (an ancestor)", rename(P("e/sub2"), P("e")));
    res("rename e/sub2/deep onto e (an ancestor, non-empty)", rename(P("e/sub2/deep"), P("e")));
    res("rename e onto itself", rename(P("e"), P("e")));
    res("rename e onto e/", rename(P("e"), P("e/")));
    put("file", "f");
    res("rename e onto a file", rename(P("e"), P("file")));
    res("rename e onto file/", rename(P("e"), P("file/")));
    res("rename a file onto e", rename(P("file"), P("e")));
    res("rename a file onto e/", rename(P("file"), P("e/")));
    res("renameat2 a file NOREPLACE onto e/", renameat2(AT_FDCWD, P("file"), AT_FDCWD, P("e/"), RENAME_NOREPLACE));
    put("e/sub2/f", "f");
    res("rename a file onto its own directory (an ancestor)", rename(P("e/sub2/f"), P("e/sub2")));
    res("rename a file onto a higher ancestor", rename(P("e/sub2/f"), P("e")));
    res("rename e onto a missing parent", rename(P("e"), P("missing/e")));
    res("rename e below a file", rename(P("e"), P("file/e")));
    res("rename missing", rename(P("nothere"), P("e9")));
    mk("full");
    put("full/x", "x");
    res("rename e onto a non-empty directory", rename(P("e"), P("full")));
    res("renameat2 e NOREPLACE onto full", renameat2(AT_FDCWD, P("e"), AT_FDCWD, P("full"), RENAME_NOREPLACE));
    res("renameat2 e NOREPLACE onto r (empty)", renameat2(AT_FDCWD, P("e"), AT_FDCWD, P("r"), RENAME_NOREPLACE));
    res("renameat2 e NOREPLACE onto a free name", renameat2(AT_FDCWD, P("e"), AT_FDCWD, P("g"), RENAME_NOREPLACE));
    counts_root();
    res("rename g onto r (empty)", rename(P("g"), P("r")));
    counts_root();
    counts_root();
    counts_root();
    res("rename r/ h/", rename(P("r/"), P("h/")));
    /* an empty directory, into another and onto an empty one there */
    mk("lone");
    mk("full/lone");
    res("rename lone full/lone", rename(P("lone"), P("full/lone")));
    counts("full");
    counts("full/lone");
    /* a hard link out of the tree and one into it keep their counts */
    res("link h/sub2/f2 l2", link(P("h/sub2/f2"), P("l2")));
    res("link pq/keep h/lk", link(P("pq/keep"), P("h/lk")));
    res("rename h k", rename(P("h"), P("k")));
    counts("l2");
    counts("k/sub2/f2");
    counts("k/lk");
    cat("l2");
    res("unlink k/sub2/f2", unlink(P("k/sub2/f2")));
    counts("l2");
    /* a directory fd opened before the rename follows it */
    int dfd = open(P("k/sub2"), O_RDONLY | O_DIRECTORY);
    res("rename k/sub2 k/sub3", rename(P("k/sub2"), P("k/sub3")));
    if (dfd >= 0) {
        struct stat a, b;
        printf("dirfd after rename: %s\n",
               fstat(dfd, &a) == 0 && lstat(P("k/sub3"), &b) == 0 && a.st_ino == b.st_ino ? "same" : "DIFFERENT");
        int f = openat(dfd, "deep/f3", O_RDONLY);
        res("openat dirfd deep/f3", f);
        if (f >= 0)
            close(f);
        close(dfd);
    }
    /* another process sees the new names */
    pid_t c = fork();
    if (c == 0) {
        cat("k/sub3/deep/f3");
        counts("h");
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("--- the tree ---\n");
    walk(".", 0);
}

static void exchange(void)
{
    mk("x");
    mk("x/in");
    put("x/in/f", "x");
    mk("y");
    put("y/g", "y");
    put("file", "f");
    res("exchange x y", renameat2(AT_FDCWD, P("x"), AT_FDCWD, P("y"), RENAME_EXCHANGE));
    res("exchange y file", renameat2(AT_FDCWD, P("y"), AT_FDCWD, P("file"), RENAME_EXCHANGE));
    res("exchange x missing", renameat2(AT_FDCWD, P("x"), AT_FDCWD, P("missing"), RENAME_EXCHANGE));
    res("exchange x x/g", renameat2(AT_FDCWD, P("x"), AT_FDCWD, P("x/g"), RENAME_EXCHANGE));
    walk(".", 0);
}

/* Did t move past before (strictly: the caller slept first)? */
static const char *later(const struct timespec *before, const struct timespec *t)
{
    return t->tv_sec > before->tv_sec || (t->tv_sec == before->tv_sec && t->tv_nsec > before->tv_nsec) ? "later" : "NOT LATER";
}

/* Read name through the directory fd dfd (a stand-in of a directory in memory under the shim). */
static void cat_at(int dfd, const char *what, const char *name)
{
    char buf[128];
    int fd = openat(dfd, name, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    printf("%s: %s\n", what, n < 0 ? strerror(errno) : buf);
}

/* Two trees exchanged, in one parent and across two, and back; the kernel's errors. */
static void xtrees(void)
{
    struct timespec pause = {0, 20 * 1000 * 1000};
    struct stat bx, by, ax, ay, bp, bq, ap, aq;
    mk("x");
    mk("x/in");
    mk("x/in/deep");
    put("x/in/f", "xf");
    put("x/g", "xg");
    put("x/in/deep/h", "xh");
    mk("y");
    put("y/k", "yk");
    mk("y/sub");
    mk("y/sub/s2");
    mk("xy"); /* a sibling whose name starts with one of them: stays */
    put("xy/keep", "kept");
    mk("p");
    mk("p/w");
    put("p/w/ww", "ww");
    mk("p/w/w2");
    mk("q");
    mk("q/z");
    put("q/z/zz", "zz");
    res("link x/g y/lg", link(P("x/g"), P("y/lg"))); /* a file with a name in each tree */
    counts_root();
    lstat(P("x"), &bx);
    lstat(P("y"), &by);
    int xfd = open(P("x/in"), O_RDONLY | O_DIRECTORY), yfd = open(P("y"), O_RDONLY | O_DIRECTORY);
    nanosleep(&pause, NULL);
    res("exchange x y", renameat2(AT_FDCWD, P("x"), AT_FDCWD, P("y"), RENAME_EXCHANGE));
    lstat(P("x"), &ax);
    lstat(P("y"), &ay);
    printf("x holds y's inode: %s, y holds x's: %s\n", ax.st_ino == by.st_ino ? "yes" : "no",
           ay.st_ino == bx.st_ino ? "yes" : "no");
    printf("ctime of x %s, of y %s\n", later(&by.st_ctim, &ax.st_ctim), later(&bx.st_ctim, &ay.st_ctim));
    counts("x");
    counts("y");
    counts("y/in");
    counts("x/sub");
    counts("y/g");
    counts_root();
    cat("y/in/deep/h");
    cat("x/k");
    cat("x/lg");
    cat("x/in/f");
    cat_at(xfd, "through the fd of x/in, f", "f");
    cat_at(yfd, "through the fd of y, k", "k");
    if (xfd >= 0) {
        int fd = openat(xfd, "new", O_CREAT | O_WRONLY, 0644);
        res("create through the fd of x/in", fd);
        if (fd >= 0)
            close(fd);
        close(xfd);
    }
    counts("y/in/new");
    if (yfd >= 0)
        close(yfd);
    /* across two parents: their link counts stay, their times move */
    lstat(P("p"), &bp);
    lstat(P("q"), &bq);
    nanosleep(&pause, NULL);
    res("exchange p/w q/z", renameat2(AT_FDCWD, P("p/w"), AT_FDCWD, P("q/z"), RENAME_EXCHANGE));
    lstat(P("p"), &ap);
    lstat(P("q"), &aq);
    printf("mtime of p %s, of q %s\n", later(&bp.st_mtim, &ap.st_mtim), later(&bq.st_mtim, &aq.st_mtim));
    counts("p");
    counts("q");
    counts("p/w");
    counts("q/z");
    res("exchange x/ y/ (back)", renameat2(AT_FDCWD, P("x/"), AT_FDCWD, P("y/"), RENAME_EXCHANGE));
    /* two empty directories, and one with a tree against an empty one */
    mk("e1");
    mk("e2");
    res("exchange e1 e2", renameat2(AT_FDCWD, P("e1"), AT_FDCWD, P("e2"), RENAME_EXCHANGE));
    res("exchange e1 q/z", renameat2(AT_FDCWD, P("e1"), AT_FDCWD, P("q/z"), RENAME_EXCHANGE));
    counts("e1");
    counts("q/z");
    /* a directory against a file (with a second name), in one parent and across two: each kind in
     * the other's place, the parents' link counts move */
    struct stat bf, be, af, ae;
    put("fl", "file");
    res("link fl p/fl2", link(P("fl"), P("p/fl2")));
    lstat(P("fl"), &bf);
    lstat(P("e2"), &be);
    nanosleep(&pause, NULL);
    res("exchange e2 fl", renameat2(AT_FDCWD, P("e2"), AT_FDCWD, P("fl"), RENAME_EXCHANGE));
    lstat(P("fl"), &af);
    lstat(P("e2"), &ae);
    printf("e2 holds fl's inode: %s, fl holds e2's: %s\n", ae.st_ino == bf.st_ino ? "yes" : "no",
           af.st_ino == be.st_ino ? "yes" : "no");
    printf("ctime of e2 %s, of fl %s\n", later(&bf.st_ctim, &ae.st_ctim), later(&be.st_ctim, &af.st_ctim));
    counts("e2");
    counts("fl");
    counts("p/fl2");
    counts_root();
    cat("e2");
    res("exchange fl/ e2 (back)", renameat2(AT_FDCWD, P("fl/"), AT_FDCWD, P("e2"), RENAME_EXCHANGE));
    res("exchange e2 fl/", renameat2(AT_FDCWD, P("e2"), AT_FDCWD, P("fl/"), RENAME_EXCHANGE));
    res("exchange fl/ e2", renameat2(AT_FDCWD, P("fl/"), AT_FDCWD, P("e2"), RENAME_EXCHANGE));
    res("exchange p/fl2 e1", renameat2(AT_FDCWD, P("p/fl2"), AT_FDCWD, P("e1"), RENAME_EXCHANGE));
    counts("p");
    counts_root();
    counts("p/fl2");
    counts("e1");
    cat("e1");
    cat("p/fl2/ww");
    res("exchange p p/fl2/w2", renameat2(AT_FDCWD, P("p"), AT_FDCWD, P("p/fl2/w2"), RENAME_EXCHANGE));
    res("exchange p/fl2 fl/x", renameat2(AT_FDCWD, P("p/fl2"), AT_FDCWD, P("fl/x"), RENAME_EXCHANGE));
    /* the kernel's errors */
    res("exchange x x", renameat2(AT_FDCWD, P("x"), AT_FDCWD, P("x"), RENAME_EXCHANGE));
    res("exchange x missing", renameat2(AT_FDCWD, P("x"), AT_FDCWD, P("missing"), RENAME_EXCHANGE));
    res("exchange x y/missing", renameat2(AT_FDCWD, P("x"), AT_FDCWD, P("y/missing"), RENAME_EXCHANGE));
    res("exchange x missing/y", renameat2(AT_FDCWD, P("x"), AT_FDCWD, P("missing/y"), RENAME_EXCHANGE));
    res("exchange x x/g/z", renameat2(AT_FDCWD, P("x"), AT_FDCWD, P("x/g/z"), RENAME_EXCHANGE));
    res("exchange x x/in", renameat2(AT_FDCWD, P("x"), AT_FDCWD, P("x/in"), RENAME_EXCHANGE));
    res("exchange x/in/deep x", renameat2(AT_FDCWD, P("x/in/deep"), AT_FDCWD, P("x"), RENAME_EXCHANGE));
    res("exchange x y NOREPLACE", renameat2(AT_FDCWD, P("x"), AT_FDCWD, P("y"), RENAME_EXCHANGE | RENAME_NOREPLACE));
    printf("--- the tree ---\n");
    walk(".", 0);
}

static void tree(int n)
{
    mk("t0");
    mk("t0/a");
    mk("t0/a/b");
    mk("t0/c");
    static const char *dirs[] = {"", "/a", "/a/b", "/c"};
    for (int i = 0; i < n; i++) {
        char name[64], text[32];
        snprintf(name, sizeof name, "t0%s/f%d", dirs[i % 4], i);
        snprintf(text, sizeof text, "%d", i);
        put(name, text);
    }
    char from[16], to[16];
    for (int r = 0; r < 20; r++) {
        snprintf(from, sizeof from, "t%d", r);
        snprintf(to, sizeof to, "t%d", r + 1);
        if (rename(P(from), P(to)) < 0)
            printf("rename %s %s: %s\n", from, to, strerror(errno));
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char name[64], text[32];
        snprintf(name, sizeof name, "t20%s/f%d", dirs[i % 4], i);
        snprintf(text, sizeof text, "%d", i);
        char buf[32] = "";
        int fd = open(P(name), O_RDONLY);
        ssize_t got = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0)
            close(fd);
        bad += got != (ssize_t)strlen(text) || memcmp(buf, text, strlen(text)) != 0;
    }
    struct stat st;
    printf("tree of %d files renamed 20 times: %d wrong, t0 %s\n", n, bad, lstat(P("t0"), &st) < 0 ? "gone" : "STILL THERE");
}

/* Try path under "a" then under "b" (the renamers move one to the other meanwhile). */
static int either(const char *rest, int (*op)(const char *, void *), void *arg)
{
    for (int tries = 0; tries < 100000; tries++) {
        for (int k = 0; k < 2; k++) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%c/%s", D, k ? 'b' : 'a', rest);
            int r = op(p, arg);
            if (r >= 0 || errno != ENOENT)
                return r;
        }
    }
    errno = ETIMEDOUT;
    return -1;
}

static int op_create(const char *p, void *arg)
{
    int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0)
        return -1;
    const char *text = arg;
    ssize_t w = write(fd, text, strlen(text));
    close(fd);
    return w == (ssize_t)strlen(text) ? 0 : -1;
}

static int op_unlink(const char *p, void *arg)
{
    (void)arg;
    return unlink(p);
}

static int op_mkdir(const char *p, void *arg)
{
    (void)arg;
    return mkdir(p, 0755);
}

/*
 * Processes rename a directory holding a subtree back and forth (a <-> b, plain and with
 * RENAME_NOREPLACE) while others create, write, unlink and mkdir below it: at the end exactly one
 * of the two names is there and holds exactly the names the workers made and did not remove,
 * each with its bytes.  Prints only what must match tmpfs.
 */
static void race(int files)
{
    mk("a");
    mk("a/sub");
    enum { RENAMERS = 2, WORKERS = 3, RENAMES = 300 };
    pid_t kids[RENAMERS + WORKERS];
    for (int k = 0; k < RENAMERS + WORKERS; k++) {
        kids[k] = fork();
        if (kids[k] != 0)
            continue;
        if (k < RENAMERS) {
            int done = 0;
            for (int n = 0; done < RENAMES && n < 100 * RENAMES * 1000; n++) {
                unsigned fl = (n & 1) ? RENAME_NOREPLACE : 0;
                if (renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("b"), fl) == 0 ||
                    renameat2(AT_FDCWD, P("b"), AT_FDCWD, P("a"), fl) == 0)
                    done++;
                else if (errno != ENOENT && errno != EEXIST)
                    _exit(10 + errno);
            }
            _exit(done == RENAMES ? 0 : 9);
        }
        int w = k - RENAMERS, bad = 0;
        char rest[64], dir[64];
        snprintf(dir, sizeof dir, "sub/w%d", w);
        bad += either(dir, op_mkdir, NULL) < 0;
        for (int i = 0; i < files; i++) {
            snprintf(rest, sizeof rest, "sub/w%d/f%d", w, i);
            bad += either(rest, op_create, rest) < 0;
            if (i % 3 == 0)
                bad += either(rest, op_unlink, NULL) < 0;
        }
        _exit(bad ? 8 : 0);
    }
    int failed = 0;
    for (int k = 0; k < RENAMERS + WORKERS; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("process %d: status %d\n", k, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            failed++;
        }
    }
    struct stat st;
    int at_a = lstat(P("a"), &st) == 0, at_b = lstat(P("b"), &st) == 0;
    const char *top = at_a ? "a" : "b";
    int wrong = 0, found = 0;
    for (int w = 0; w < WORKERS; w++)
        for (int i = 0; i < files; i++) {
            char name[128], want[64], buf[64] = "";
            snprintf(want, sizeof want, "sub/w%d/f%d", w, i);
            snprintf(name, sizeof name, "%s/%s", top, want);
            int fd = open(P(name), O_RDONLY);
            ssize_t got = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
            if (fd >= 0)
                close(fd);
            found += fd >= 0;
            wrong += (i % 3 == 0) ? fd >= 0 : (got != (ssize_t)strlen(want) || memcmp(buf, want, strlen(want)) != 0);
        }
    int listed = 0;
    for (int w = 0; w < WORKERS; w++) {
        char sub[64];
        snprintf(sub, sizeof sub, "%s/sub/w%d", top, w);
        DIR *d = opendir(P(sub));
        for (struct dirent *e; d && (e = readdir(d)) != NULL;)
            listed += e->d_name[0] != '.';
        if (d)
            closedir(d);
    }
    printf("race: %d processes failed, one name: %s, files expected %s, listed %s, wrong %d\n", failed,
           at_a != at_b ? "yes" : "NO", found == WORKERS * (files - (files + 2) / 3) ? "found" : "MISSING",
           listed == found ? "same" : "DIFFERENT", wrong);
}

/*
 * Two processes exchange a and b (RENAME_EXCHANGE) 300 times each while three create files below
 * tree A's sub/wN (and remove every third) through whichever name holds it (tree B has no sub):
 * tree A whole at one name with exactly the workers' files, tree B's files whole at the other.
 */
static void xrace(int files)
{
    mk("a");
    mk("a/sub");
    mk("b");
    mk("b/keep");
    enum { EXCHANGERS = 2, WORKERS = 3, EXCHANGES = 300, KEPT = 20 };
    for (int i = 0; i < KEPT; i++) {
        char name[64];
        snprintf(name, sizeof name, "b/keep/k%d", i);
        put(name, name + 2);
    }
    pid_t kids[EXCHANGERS + WORKERS];
    for (int k = 0; k < EXCHANGERS + WORKERS; k++) {
        kids[k] = fork();
        if (kids[k] != 0)
            continue;
        if (k < EXCHANGERS) {
            for (int n = 0; n < EXCHANGES; n++)
                if (renameat2(AT_FDCWD, P(n & 1 ? "a" : "b"), AT_FDCWD, P(n & 1 ? "b" : "a"), RENAME_EXCHANGE) < 0)
                    _exit(10 + errno);
            _exit(0);
        }
        int w = k - EXCHANGERS, bad = 0;
        char rest[64], dir[64];
        snprintf(dir, sizeof dir, "sub/w%d", w);
        bad += either(dir, op_mkdir, NULL) < 0; /* only tree A has a sub: under whichever name holds it */
        for (int i = 0; i < files; i++) {
            snprintf(rest, sizeof rest, "sub/w%d/f%d", w, i);
            bad += either(rest, op_create, rest) < 0;
            if (i % 3 == 0)
                bad += either(rest, op_unlink, NULL) < 0;
        }
        _exit(bad ? 8 : 0);
    }
    int failed = 0;
    for (int k = 0; k < EXCHANGERS + WORKERS; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("process %d: status %d\n", k, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            failed++;
        }
    }
    struct stat st;
    const char *ta = lstat(P("a/keep"), &st) == 0 ? "b" : "a", *tb = ta[0] == 'a' ? "b" : "a";
    int wrong = 0, found = 0, kept = 0, listed = 0;
    for (int w = 0; w < WORKERS; w++)
        for (int i = 0; i < files; i++) {
            char name[128], want[64], buf[64] = "";
            snprintf(want, sizeof want, "sub/w%d/f%d", w, i);
            snprintf(name, sizeof name, "%s/%s", ta, want);
            int fd = open(P(name), O_RDONLY);
            ssize_t got = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
            if (fd >= 0)
                close(fd);
            found += fd >= 0;
            wrong += (i % 3 == 0) ? fd >= 0 : (got != (ssize_t)strlen(want) || memcmp(buf, want, strlen(want)) != 0);
        }
    for (int i = 0; i < KEPT; i++) {
        char name[128], want[64], buf[64] = "";
        snprintf(want, sizeof want, "keep/k%d", i);
        snprintf(name, sizeof name, "%s/%s", tb, want);
        int fd = open(P(name), O_RDONLY);
        ssize_t got = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0)
            close(fd);
        kept += got == (ssize_t)strlen(want) && memcmp(buf, want, strlen(want)) == 0;
    }
    for (int w = 0; w < WORKERS; w++) {
        char sub[64];
        snprintf(sub, sizeof sub, "%s/sub/w%d", ta, w);
        DIR *d = opendir(P(sub));
        for (struct dirent *e; d && (e = readdir(d)) != NULL;)
            listed += e->d_name[0] != '.';
        if (d)
            closedir(d);
    }
    char other[64];
    snprintf(other, sizeof other, "%s/sub/w0", tb);
    printf("xrace: %d processes failed, files expected %s, listed %s, wrong %d, tree B kept %d of %d, w0 in B: %s\n",
           failed, found == WORKERS * (files - (files + 2) / 3) ? "found" : "MISSING", listed == found ? "same" : "DIFFERENT",
           wrong, kept, KEPT, lstat(P(other), &st) == 0 ? "YES" : "no");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    D = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && strcmp(argv[2], "exchange") == 0)
        exchange();
    else if (argc > 2 && strcmp(argv[2], "xtrees") == 0)
        xtrees();
    else if (argc > 3 && strcmp(argv[2], "tree") == 0)
        tree(atoi(argv[3]));
    else if (argc > 3 && strcmp(argv[2], "race") == 0)
        race(atoi(argv[3]));
    else if (argc > 3 && strcmp(argv[2], "xrace") == 0)
        xrace(atoi(argv[3]));
    else
        scenarios();
    return 0;
}
