/*
 * shim/intercept_walk.c - glob(3) and nftw(3)/ftw(3).
 *
 * glibc's glob and nftw list directories and stat names through its own
 * internal calls, which an LD_PRELOAD library never sees, so in-memory files
 * were missing from their results.  glob has a hook for exactly this
 * (GLOB_ALTDIRFUNC): we hand it our directory and stat functions.  nftw has
 * none, so we walk ourselves on the interposed calls, keeping glibc's
 * io/ftw.c semantics: the order of callbacks, FTW_PHYS, FTW_DEPTH, FTW_MOUNT,
 * FTW_CHDIR, FTW_ACTIONRETVAL, FTW_SLN for dangling symlinks, a directory
 * reached twice through symlinks visited once, and ftw's coarser type flags.
 * One directory stream stays open per level (glibc's nopenfd limit is not
 * reproduced: it only bounds descriptors, never changes what is reported).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

/* ---- glob ------------------------------------------------------------------ */

static void *glob_opendir(const char *path) { return opendir(path); }
static void glob_closedir(void *d) { closedir(d); }
static struct dirent *glob_readdir(void *d) { return readdir(d); }

SH_EXPORT int glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *g)
{
    if (!REAL(glob)) {
        errno = ENOSYS;
        return GLOB_ABORTED;
    }
    /* A caller with its own directory functions keeps them. */
    if (flags & GLOB_ALTDIRFUNC)
        return sys.glob(pattern, flags, errfunc, g);
    g->gl_opendir = glob_opendir;
    g->gl_readdir = glob_readdir;
    g->gl_closedir = glob_closedir;
    g->gl_lstat = lstat;
    g->gl_stat = stat;
    int r = sys.glob(pattern, flags | GLOB_ALTDIRFUNC, errfunc, g);
    g->gl_flags &= ~GLOB_ALTDIRFUNC;
    return r;
}

/* glob64_t has the same layout on LP64 (dirent64 == dirent, stat64 == stat). */
SH_EXPORT int glob64(const char *pattern, int flags, int (*errfunc)(const char *, int), glob64_t *g)
{
    return glob(pattern, flags, errfunc, (glob_t *)(void *)g);
}

/* ---- nftw / ftw ------------------------------------------------------------ */

struct walk {
    int (*fn)(const char *, const struct stat *, int, struct FTW *); /* nftw */
    int (*ofn)(const char *, const struct stat *, int);              /* ftw */
    int flags;
    dev_t dev;              /* of the start directory, for FTW_MOUNT */
    char *buf;              /* the path reported to the callback */
    size_t cap;
    struct FTW ftw;
    void *seen;             /* directories entered, when symlinks are followed */
};

struct seen_dir {
    dev_t dev;
    ino_t ino;
};

static int seen_cmp(const void *a, const void *b)
{
    const struct seen_dir *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int seen_before(struct walk *w, const struct stat *st)
{
    struct seen_dir k = {st->st_dev, st->st_ino};
    return tfind(&k, &w->seen, seen_cmp) != NULL;
}

static int remember(struct walk *w, const struct stat *st)
{
    struct seen_dir *k = malloc(sizeof *k);
    if (!k)
        return -1;
    k->dev = st->st_dev;
    k->ino = st->st_ino;
    if (!tsearch(k, &w->seen, seen_cmp)) {
        free(k);
        return -1;
    }
    return 0;
}

static int report(struct walk *w, const struct stat *st, int flag)
{
    if (w->fn)
        return w->fn(w->buf, st, flag, &w->ftw);
    /* ftw's callback knows no symlinks and no post-order */
    if (flag == FTW_SL)
        flag = FTW_F;
    else if (flag == FTW_DP)
        flag = FTW_D;
    else if (flag == FTW_SLN)
        flag = FTW_NS;
    return w->ofn(w->buf, st, flag);
}

static int reserve(struct walk *w, size_t need)
{
    if (need <= w->cap)
        return 0;
    size_t cap = w->cap * 2 > need ? w->cap * 2 : need + 256;
    char *b = realloc(w->buf, cap);
    if (!b)
        return -1;
    w->buf = b;
    w->cap = cap;
    return 0;
}

static int walk_dir(struct walk *w, const struct stat *st, DIR *parent);

static int walk_entry(struct walk *w, DIR *dir, const char *name)
{
    if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
        return 0;
    size_t nl = strlen(name);
    if (reserve(w, (size_t)w->ftw.base + nl + 1) < 0)
        return -1;
    memcpy(w->buf + w->ftw.base, name, nl + 1);
    /* with FTW_CHDIR we stand in the directory already */
    const char *path = (w->flags & FTW_CHDIR) ? name : w->buf;
    struct stat st;
    int flag = FTW_F, result = 0;
    if (((w->flags & FTW_PHYS) ? lstat(path, &st) : stat(path, &st)) < 0) {
        if (errno != EACCES && errno != ENOENT)
            result = -1;
        else if (w->flags & FTW_PHYS)
            flag = FTW_NS;
        else if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
            flag = FTW_SLN;
        else
            flag = FTW_NS;
    } else {
        flag = S_ISDIR(st.st_mode) ? FTW_D : S_ISLNK(st.st_mode) ? FTW_SL : FTW_F;
    }
    if (result == 0 && (flag == FTW_NS || !(w->flags & FTW_MOUNT) || st.st_dev == w->dev)) {
        if (flag == FTW_D) {
            if ((w->flags & FTW_PHYS) || (!seen_before(w, &st) && (result = remember(w, &st)) == 0))
                result = walk_dir(w, &st, dir);
        } else {
            result = report(w, &st, flag);
        }
    }
    if ((w->flags & FTW_ACTIONRETVAL) && result == FTW_SKIP_SUBTREE)
        result = 0;
    return result;
}

static int walk_dir(struct walk *w, const struct stat *st, DIR *parent)
{
    const char *name = (w->flags & FTW_CHDIR) ? w->buf + w->ftw.base : w->buf;
    DIR *d = opendir(*name ? name : ".");
    if (!d)
        return errno == EACCES ? report(w, st, FTW_DNR) : -1;
    int result = 0;
    if (!(w->flags & FTW_DEPTH)) {
        result = report(w, st, FTW_D);
        if (result != 0) {
            int e = errno;
            closedir(d);
            errno = e;
            return result;
        }
    }
    if ((w->flags & FTW_CHDIR) && fchdir(dirfd(d)) < 0) {
        int e = errno;
        closedir(d);
        errno = e;
        return -1;
    }
    int prev_base = w->ftw.base;
    size_t len = strlen(w->buf);
    if (reserve(w, len + 2) < 0) {
        closedir(d);
        errno = ENOMEM;
        return -1;
    }
    if (w->buf[len - 1] != '/')
        w->buf[len++] = '/';
    w->buf[len] = '\0';
    w->ftw.level++;
    w->ftw.base = (int)len;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        result = walk_entry(w, d, e->d_name);
        if (result != 0)
            break;
    }
    int err = errno;
    closedir(d);
    errno = err;
    w->buf[w->ftw.base - 1] = '\0';
    w->ftw.level--;
    w->ftw.base = prev_base;
    if ((w->flags & FTW_ACTIONRETVAL) && result == FTW_SKIP_SIBLINGS)
        result = 0;
    if (result == 0 && (w->flags & FTW_DEPTH))
        result = report(w, st, FTW_DP);
    if (parent && (w->flags & FTW_CHDIR) &&
        (result == 0 || ((w->flags & FTW_ACTIONRETVAL) && result != -1 && result != FTW_STOP))) {
        if (fchdir(dirfd(parent)) < 0 && chdir(w->ftw.base == 1 ? "/" : "..") < 0)
            result = -1;
    }
    return result;
}

static int walk_start(const char *dir, struct walk *w)
{
    if (!dir || dir[0] == '\0') {
        errno = ENOENT;
        return -1;
    }
    size_t n = strlen(dir);
    w->cap = n + 256;
    w->buf = malloc(w->cap);
    if (!w->buf) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(w->buf, dir, n + 1);
    char *cp = w->buf + n;
    while (cp > w->buf + 1 && cp[-1] == '/')
        cp--;
    *cp = '\0';
    while (cp > w->buf && cp[-1] != '/')
        cp--;
    w->ftw.base = (int)(cp - w->buf);
    w->ftw.level = 0;
    int result = 0, cwdfd = -1;
    char *cwd = NULL;
    if (w->flags & FTW_CHDIR) {
        cwdfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cwdfd < 0 && (errno != EACCES || !(cwd = getcwd(NULL, 0))))
            result = -1;
        else if (w->ftw.base > 0) {
            if (w->ftw.base == 1) {
                result = chdir("/");
            } else {
                char ch = w->buf[w->ftw.base - 1];
                w->buf[w->ftw.base - 1] = '\0';
                result = chdir(w->buf);
                w->buf[w->ftw.base - 1] = ch;
            }
        }
    }
    if (result == 0) {
        const char *name = (w->flags & FTW_CHDIR) ? w->buf + w->ftw.base : w->buf;
        if (!*name)
            name = ".";
        struct stat st;
        if (((w->flags & FTW_PHYS) ? lstat(name, &st) : stat(name, &st)) < 0) {
            if (!(w->flags & FTW_PHYS) && errno == ENOENT && lstat(name, &st) == 0 && S_ISLNK(st.st_mode))
                result = report(w, &st, FTW_SLN);
            else
                result = -1;
        } else if (S_ISDIR(st.st_mode)) {
            w->dev = st.st_dev;
            if (!(w->flags & FTW_PHYS))
                result = remember(w, &st);
            if (result == 0)
                result = walk_dir(w, &st, NULL);
        } else {
            result = report(w, &st, S_ISLNK(st.st_mode) ? FTW_SL : FTW_F);
        }
        if ((w->flags & FTW_ACTIONRETVAL) && (result == FTW_SKIP_SUBTREE || result == FTW_SKIP_SIBLINGS))
            result = 0;
    }
    int e = errno;
    if (cwdfd >= 0) {
        if (fchdir(cwdfd) < 0 && result == 0)
            result = -1;
        close(cwdfd);
    } else if (cwd) {
        if (chdir(cwd) < 0 && result == 0)
            result = -1;
        free(cwd);
    }
    tdestroy(w->seen, free);
    free(w->buf);
    errno = e;
    return result;
}

SH_EXPORT int nftw(const char *dir, int (*fn)(const char *, const struct stat *, int, struct FTW *),
                   int nopenfd, int flags)
{
    (void)nopenfd;
    if (flags & ~(FTW_PHYS | FTW_MOUNT | FTW_CHDIR | FTW_DEPTH | FTW_ACTIONRETVAL)) {
        errno = EINVAL;
        return -1;
    }
    struct walk w = {.fn = fn, .flags = flags};
    return walk_start(dir, &w);
}

/* struct stat64 == struct stat on LP64 */
SH_EXPORT int nftw64(const char *dir, int (*fn)(const char *, const struct stat64 *, int, struct FTW *),
                     int nopenfd, int flags)
{
    return nftw(dir, (int (*)(const char *, const struct stat *, int, struct FTW *))(void *)fn, nopenfd, flags);
}

SH_EXPORT int ftw(const char *dir, int (*fn)(const char *, const struct stat *, int), int nopenfd)
{
    (void)nopenfd;
    struct walk w = {.ofn = fn};
    return walk_start(dir, &w);
}

SH_EXPORT int ftw64(const char *dir, int (*fn)(const char *, const struct stat64 *, int), int nopenfd)
{
    return ftw(dir, (int (*)(const char *, const struct stat *, int))(void *)fn, nopenfd);
}
