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
 * Entries are stat'ed and subdirectories opened relative to their directory's
 * descriptor, so a tree deeper than PATH_MAX is walked as glibc walks it, and
 * at most nopenfd streams are open at once, with glibc's ring (open_stream):
 * which names are then reached by full path, and so which fail with
 * ENAMETOOLONG in a deep tree, is the same.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler.h"
#include "sys.h"

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

/* One directory being listed: its stream, or (once its descriptor was taken back) its remaining names. */
struct wdir {
    DIR *stream;
    int fd;                 /* dirfd(stream), -1 once closed */
    char *content;          /* the names left when the stream was closed, each NUL-ended, then a NUL */
};

struct walk {
    int (*fn)(const char *, const struct stat *, int, struct FTW *); /* nftw */
    int (*ofn)(const char *, const struct stat *, int);              /* ftw */
    int flags;
    dev_t dev;              /* of the start directory, for FTW_MOUNT */
    char *buf;              /* the path reported to the callback */
    size_t cap;
    struct FTW ftw;
    void *seen;             /* directories entered, when symlinks are followed */
    struct wdir **streams;  /* the nopenfd open streams, a ring as in glibc */
    int maxdir, actdir;
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

/* "." or "..": never reported by a walk. */
#define IS_DOT(n) ((n)[0] == '.' && (!(n)[1] || ((n)[1] == '.' && !(n)[2])))

/* The working directory, to come back to: an fd no exec'd child of the program inherits. */
static int open_cwd(void)
{
    return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/*
 * Open the directory named at w->buf + base (relative to parent's descriptor
 * while it has one, so depth is never limited by PATH_MAX).  Like glibc, at
 * most nopenfd streams are open: the oldest one in the ring is read to the
 * end into memory and closed first, and its directory's remaining entries are
 * then named by their full path.
 */
static int open_stream(struct walk *w, struct wdir *parent, struct wdir *d)
{
    struct wdir *old = w->streams[w->actdir];
    if (old) {
        size_t cap = 1024, len = 0;
        char *buf = malloc(cap);
        struct dirent *e;
        while (buf && (e = readdir(old->stream)) != NULL) {
            size_t n = strlen(e->d_name);
            if (len + n + 2 >= cap) {
                char *nb = realloc(buf, cap = (cap + n) * 2);
                if (!nb) {
                    free(buf);
                    buf = NULL;
                    break;
                }
                buf = nb;
            }
            memcpy(buf + len, e->d_name, n + 1);
            len += n + 1;
        }
        if (!buf) {
            errno = ENOMEM;
            return -1;
        }
        buf[len] = '\0';
        closedir(old->stream);
        old->stream = NULL;
        old->fd = -1;
        old->content = buf;
        w->streams[w->actdir] = NULL;
    }
    if (parent && parent->fd != -1) {
        int fd = openat(parent->fd, w->buf + w->ftw.base, O_RDONLY | O_DIRECTORY | O_NDELAY | O_CLOEXEC);
        d->stream = NULL;
        if (fd != -1 && (d->stream = fdopendir(fd)) == NULL) {
            int e = errno;
            close(fd);
            errno = e;
        }
    } else {
        const char *name = (w->flags & FTW_CHDIR) ? w->buf + w->ftw.base : w->buf;
        d->stream = opendir(*name ? name : ".");
    }
    if (!d->stream)
        return -1;
    d->fd = dirfd(d->stream);
    d->content = NULL;
    w->streams[w->actdir] = d;
    if (++w->actdir == w->maxdir)
        w->actdir = 0;
    return 0;
}

static int walk_dir(struct walk *w, const struct stat *st, struct wdir *parent);

static int walk_entry(struct walk *w, struct wdir *dir, const char *name)
{
    if (IS_DOT(name))
        return 0;
    size_t nl = strlen(name);
    if (reserve(w, (size_t)w->ftw.base + nl + 2) < 0)
        return -1;
    memcpy(w->buf + w->ftw.base, name, nl + 1);
    struct stat st;
    int flag = FTW_F, result = 0, r;
    /* relative to the directory's descriptor while it is open, else by name (from the cwd with FTW_CHDIR) */
    const char *path = (w->flags & FTW_CHDIR) ? name : w->buf;
    if (dir->fd != -1)
        r = fstatat(dir->fd, name, &st, (w->flags & FTW_PHYS) ? AT_SYMLINK_NOFOLLOW : 0);
    else
        r = (w->flags & FTW_PHYS) ? lstat(path, &st) : stat(path, &st);
    if (r < 0) {
        if (errno != EACCES && errno != ENOENT)
            result = -1;
        else if (w->flags & FTW_PHYS)
            flag = FTW_NS;
        else if ((dir->fd != -1 ? fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) : lstat(path, &st)) == 0 &&
                 S_ISLNK(st.st_mode))
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

/* The ring slot just before actdir: the stream opened last. */
static void forget_last(struct walk *w)
{
    if (w->actdir-- == 0)
        w->actdir = w->maxdir - 1;
    w->streams[w->actdir] = NULL;
}

static int walk_dir(struct walk *w, const struct stat *st, struct wdir *parent)
{
    struct wdir d;
    if (open_stream(w, parent, &d) < 0)
        return errno == EACCES ? report(w, st, FTW_DNR) : -1;
    int result = 0;
    if (!(w->flags & FTW_DEPTH)) {
        result = report(w, st, FTW_D);
        if (result != 0) {
            int e = errno;
            closedir(d.stream);
            forget_last(w);
            errno = e;
            return result;
        }
    }
    if ((w->flags & FTW_CHDIR) && fchdir(d.fd) < 0) {
        int e = errno;
        closedir(d.stream);
        forget_last(w);
        errno = e;
        return -1;
    }
    int prev_base = w->ftw.base;
    size_t len = strlen(w->buf);
    if (reserve(w, len + 2) < 0) {
        closedir(d.stream);
        forget_last(w);
        errno = ENOMEM;
        return -1;
    }
    if (w->buf[len - 1] != '/')
        w->buf[len++] = '/';
    w->buf[len] = '\0';
    w->ftw.level++;
    w->ftw.base = (int)len;
    struct dirent *e;
    /* a deeper level may take the stream back (d.stream becomes NULL, the rest in d.content) */
    while (d.stream && (e = readdir(d.stream)) != NULL) {
        result = walk_entry(w, &d, e->d_name);
        if (result != 0)
            break;
    }
    if (d.stream) {
        int err = errno;
        closedir(d.stream);
        forget_last(w);
        errno = err;
    } else {
        for (char *p = d.content; result == 0 && *p; p += strlen(p) + 1)
            result = walk_entry(w, &d, p);
        int err = errno;
        free(d.content);
        errno = err;
    }
    w->buf[w->ftw.base - 1] = '\0';
    w->ftw.level--;
    w->ftw.base = prev_base;
    if ((w->flags & FTW_ACTIONRETVAL) && result == FTW_SKIP_SIBLINGS)
        result = 0;
    if (result == 0 && (w->flags & FTW_DEPTH))
        result = report(w, st, FTW_DP);
    if (parent && (w->flags & FTW_CHDIR) &&
        (result == 0 || ((w->flags & FTW_ACTIONRETVAL) && result != -1 && result != FTW_STOP))) {
        if ((parent->stream == NULL || fchdir(parent->fd) < 0) && chdir(w->ftw.base == 1 ? "/" : "..") < 0)
            result = -1;
    }
    return result;
}

static int walk_start(const char *dir, struct walk *w, int nopenfd)
{
    if (!dir || dir[0] == '\0') {
        errno = ENOENT;
        return -1;
    }
    w->maxdir = nopenfd < 1 ? 1 : nopenfd;
    w->streams = calloc((size_t)w->maxdir, sizeof *w->streams);
    size_t n = strlen(dir);
    w->cap = n + 256;
    w->buf = malloc(w->cap);
    if (!w->buf || !w->streams) {
        free(w->buf);
        free(w->streams);
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
        cwdfd = open_cwd();
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
    free(w->streams);
    errno = e;
    return result;
}

SH_EXPORT int nftw(const char *dir, int (*fn)(const char *, const struct stat *, int, struct FTW *),
                   int nopenfd, int flags)
{
    if (flags & ~(FTW_PHYS | FTW_MOUNT | FTW_CHDIR | FTW_DEPTH | FTW_ACTIONRETVAL)) {
        errno = EINVAL;
        return -1;
    }
    struct walk w = {.fn = fn, .flags = flags};
    return walk_start(dir, &w, nopenfd);
}

/* struct stat64 == struct stat on LP64 */
SH_EXPORT int nftw64(const char *dir, int (*fn)(const char *, const struct stat64 *, int, struct FTW *),
                     int nopenfd, int flags)
{
    return nftw(dir, (int (*)(const char *, const struct stat *, int, struct FTW *))(void *)fn, nopenfd, flags);
}

SH_EXPORT int ftw(const char *dir, int (*fn)(const char *, const struct stat *, int), int nopenfd)
{
    struct walk w = {.ofn = fn};
    return walk_start(dir, &w, nopenfd);
}

SH_EXPORT int ftw64(const char *dir, int (*fn)(const char *, const struct stat64 *, int), int nopenfd)
{
    return ftw(dir, (int (*)(const char *, const struct stat *, int))(void *)fn, nopenfd);
}

/* ---- fts -------------------------------------------------------------------- */

/*
 * glibc's fts (io/fts.c, the 4.4BSD walker) also reads directories and stats
 * names through internal calls.  This is our own walker over the interposed
 * calls with the same observable behaviour: entry order (directory order, or
 * the caller's compar), fts_info codes, fts_path/fts_accpath/fts_name, the
 * working directory while FTS_NOCHDIR is off (entered by fchdir on the
 * directory read, checked by dev/ino, left by "..", the saved start fd or a
 * followed symlink's fd), fts_set's instructions, fts_children, and the
 * FTS_NOSTAT shortcut (entries whose d_type says "not a directory" are
 * FTS_NSOK, and so is everything once st_nlink says no subdirectory is left).
 * gnulib's fts (find, du, rm -r) is compiled into those programs and already
 * calls the interposed functions.
 */
#include <fts.h>
#include <stddef.h>

#define FW_ON(sp, opt) ((sp)->fts_options & (opt))
/* where a child's name starts in fts_path: after the parent's path, one '/' between */
#define FW_APPEND(p) ((p)->fts_path[(p)->fts_pathlen - 1] == '/' ? (p)->fts_pathlen - 1 : (p)->fts_pathlen)

enum { FW_CHILDREN = 1, FW_NAMES, FW_READ }; /* what fw_build lists for */

/* An entry, its name and its stat buffer in one block (freed with the entry). */
static FTSENT *fw_alloc(FTS *sp, const char *name, size_t len)
{
    size_t al = _Alignof(struct stat);
    size_t off = (offsetof(FTSENT, fts_name) + len + 1 + al - 1) & ~(al - 1);
    FTSENT *p = malloc(off + sizeof(struct stat));
    if (!p)
        return NULL;
    memset(p, 0, offsetof(FTSENT, fts_name));
    memcpy(p->fts_name, name, len);
    p->fts_name[len] = '\0';
    p->fts_namelen = (unsigned short)len;
    p->fts_statp = (struct stat *)(void *)((char *)p + off);
    p->fts_path = sp->fts_path;
    p->fts_instr = FTS_NOINSTR;
    return p;
}

static void fw_lfree(FTSENT *p)
{
    while (p) {
        FTSENT *next = p->fts_link;
        free(p);
        p = next;
    }
}

/* Grow the path buffer by more (+256); fts_pathlen in an entry is 16 bits, so that is the limit. */
static int fw_palloc(FTS *sp, size_t more)
{
    size_t want = (size_t)sp->fts_pathlen + more + 256;
    if (want >= USHRT_MAX) {
        free(sp->fts_path);
        sp->fts_path = NULL;
        errno = ENAMETOOLONG;
        return -1;
    }
    char *p = realloc(sp->fts_path, want);
    if (!p) {
        free(sp->fts_path);
        sp->fts_path = NULL;
        return -1;
    }
    sp->fts_path = p;
    sp->fts_pathlen = (int)want;
    return 0;
}

/* The path buffer moved: every live entry that points into it follows. */
static void fw_padjust(FTS *sp, FTSENT *head)
{
    char *base = sp->fts_path;
#define FW_ADJUST(p)                                                      \
    do {                                                                  \
        if ((p)->fts_accpath != (p)->fts_name)                            \
            (p)->fts_accpath = base + ((p)->fts_accpath - (p)->fts_path); \
        (p)->fts_path = base;                                             \
    } while (0)
    for (FTSENT *p = sp->fts_child; p; p = p->fts_link)
        FW_ADJUST(p);
    for (FTSENT *p = head; p->fts_level >= FTS_ROOTLEVEL;) {
        FW_ADJUST(p);
        p = p->fts_link ? p->fts_link : p->fts_parent;
    }
#undef FW_ADJUST
}

static unsigned short fw_stat(FTS *sp, FTSENT *p, int follow)
{
    struct stat *sb = p->fts_statp;
    if (FW_ON(sp, FTS_LOGICAL) || follow) {
        if (stat(p->fts_accpath, sb) < 0) {
            int e = errno;
            if (lstat(p->fts_accpath, sb) == 0) {
                errno = 0;
                return FTS_SLNONE;
            }
            p->fts_errno = e;
            memset(sb, 0, sizeof *sb);
            return FTS_NS;
        }
    } else if (lstat(p->fts_accpath, sb) < 0) {
        p->fts_errno = errno;
        memset(sb, 0, sizeof *sb);
        return FTS_NS;
    }
    /* glibc fills these for directories only (a root that is a symlink leaves
     * fts_dev, which FTS_XDEV compares with, unset); any stat'ed entry's here */
    p->fts_dev = sb->st_dev;
    p->fts_ino = sb->st_ino;
    p->fts_nlink = sb->st_nlink;
    if (S_ISDIR(sb->st_mode)) {
        if (IS_DOT(p->fts_name))
            return FTS_DOT;
        /* a cycle: the same directory further up this branch */
        for (FTSENT *t = p->fts_parent; t->fts_level >= FTS_ROOTLEVEL; t = t->fts_parent)
            if (t->fts_ino == p->fts_ino && t->fts_dev == p->fts_dev) {
                p->fts_cycle = t;
                return FTS_DC;
            }
        return FTS_D;
    }
    return S_ISLNK(sb->st_mode) ? FTS_SL : S_ISREG(sb->st_mode) ? FTS_F : FTS_DEFAULT;
}

static FTSENT *fw_sort(FTS *sp, FTSENT *head, int n)
{
    if (n > sp->fts_nitems) {
        FTSENT **a = realloc(sp->fts_array, (size_t)(n + 40) * sizeof *a);
        if (!a) {
            free(sp->fts_array);
            sp->fts_array = NULL;
            sp->fts_nitems = 0;
            return head; /* unsorted rather than nothing */
        }
        sp->fts_array = a;
        sp->fts_nitems = n + 40;
    }
    FTSENT **a = sp->fts_array;
    int i = 0;
    for (FTSENT *p = head; p; p = p->fts_link)
        a[i++] = p;
    qsort(a, (size_t)n, sizeof *a, sp->fts_compar);
    for (i = 0; i < n - 1; i++)
        a[i]->fts_link = a[i + 1];
    a[n - 1]->fts_link = NULL;
    return a[0];
}

static int fw_fchdir(FTS *sp, int fd)
{
    return !FW_ON(sp, FTS_NOCHDIR) && fchdir(fd) != 0;
}

/*
 * Enter p's directory through fd (or path opened here), refusing a
 * directory that is not the one p was stat'ed as (replaced meanwhile).
 */
static int fw_changedir(FTS *sp, FTSENT *p, int fd, const char *path)
{
    if (FW_ON(sp, FTS_NOCHDIR))
        return 0;
    int dfd = fd;
    if (fd < 0 && (dfd = open(path, O_RDONLY)) < 0)
        return -1;
    struct stat sb;
    int r;
    if (fstat(dfd, &sb) < 0) {
        r = -1;
    } else if (sb.st_dev != p->fts_dev || sb.st_ino != p->fts_ino) {
        errno = ENOENT;
        r = -1;
    } else {
        r = fchdir(dfd);
    }
    int e = errno;
    if (fd < 0)
        close(dfd);
    errno = e;
    return r;
}

/* List the current directory's entries (stat'ed unless FW_NAMES or FTS_NOSTAT allow not to). */
static FTSENT *fw_build(FTS *sp, int type)
{
    FTSENT *cur = sp->fts_cur;
    DIR *dir = opendir(cur->fts_accpath);
    if (!dir) {
        if (type == FW_READ) {
            cur->fts_info = FTS_DNR;
            cur->fts_errno = errno;
        }
        return NULL;
    }
    /* subdirectories possibly left to find when cheating on stats; 0: stat none; -1: stat all */
    long nlinks = -1;
    int nostat = 0;
    if (type == FW_NAMES) {
        nlinks = 0;
    } else if (FW_ON(sp, FTS_NOSTAT) && FW_ON(sp, FTS_PHYSICAL)) {
        nlinks = (long)cur->fts_nlink - (FW_ON(sp, FTS_SEEDOT) ? 0 : 2);
        nostat = 1;
    }
    int descend = 0;
    if (nlinks || type == FW_READ) {
        if (fw_changedir(sp, cur, dirfd(dir), NULL)) {
            if (nlinks && type == FW_READ)
                cur->fts_errno = errno;
            cur->fts_flags |= FTS_DONTCHDIR;
            closedir(dir);
            dir = NULL;
        } else {
            descend = 1;
        }
    }
    size_t len = FW_APPEND(cur);
    char *cp = NULL;
    if (FW_ON(sp, FTS_NOCHDIR)) {
        cp = sp->fts_path + len;
        *cp++ = '/';
    }
    len++;
    size_t maxlen = (size_t)sp->fts_pathlen - len;
    FTSENT *head = NULL, *tail = NULL;
    int n = 0, adjust = 0;
    struct dirent *d;
    while (dir && (d = readdir(dir)) != NULL) {
        if (!FW_ON(sp, FTS_SEEDOT) && IS_DOT(d->d_name))
            continue;
        size_t nl = strlen(d->d_name);
        FTSENT *p = fw_alloc(sp, d->d_name, nl);
        if (!p)
            goto fail;
        if (nl >= maxlen) {
            char *old = sp->fts_path;
            if (fw_palloc(sp, nl + len + 1) < 0) {
                free(p);
                goto fail;
            }
            if (old != sp->fts_path) {
                adjust = 1;
                if (FW_ON(sp, FTS_NOCHDIR))
                    cp = sp->fts_path + len;
            }
            maxlen = (size_t)sp->fts_pathlen - len;
        }
        if (len + nl >= USHRT_MAX) { /* an entry's fts_pathlen is 16 bits */
            free(p);
            errno = ENAMETOOLONG;
            goto fail;
        }
        p->fts_level = (short)(cur->fts_level + 1);
        p->fts_parent = sp->fts_cur;
        p->fts_pathlen = (unsigned short)(len + nl);
        if (nlinks == 0 || (nostat && d->d_type != DT_DIR && d->d_type != DT_UNKNOWN)) {
            p->fts_accpath = FW_ON(sp, FTS_NOCHDIR) ? p->fts_path : p->fts_name;
            p->fts_info = FTS_NSOK;
        } else {
            if (FW_ON(sp, FTS_NOCHDIR)) {
                p->fts_accpath = p->fts_path;
                memmove(cp, p->fts_name, nl + 1);
            } else {
                p->fts_accpath = p->fts_name;
            }
            p->fts_info = fw_stat(sp, p, 0);
            if (nlinks > 0 && (p->fts_info == FTS_D || p->fts_info == FTS_DC || p->fts_info == FTS_DOT))
                nlinks--;
        }
        if (tail)
            tail->fts_link = p;
        else
            head = p;
        tail = p;
        n++;
    }
    if (dir)
        closedir(dir);
    if (adjust)
        fw_padjust(sp, head);
    if (FW_ON(sp, FTS_NOCHDIR)) {
        if (len == (size_t)sp->fts_pathlen || n == 0)
            cp--;
        *cp = '\0';
    }
    /* listed for fts_children, or nothing to visit: back to where we were */
    if (descend && (type == FW_CHILDREN || n == 0) &&
        (cur->fts_level == FTS_ROOTLEVEL ? fw_fchdir(sp, sp->fts_rfd) : fw_changedir(sp, cur->fts_parent, -1, ".."))) {
        cur->fts_info = FTS_ERR;
        sp->fts_options |= FTS_STOP;
        fw_lfree(head);
        return NULL;
    }
    if (n == 0) {
        if (type == FW_READ)
            cur->fts_info = FTS_DP;
        return NULL;
    }
    return sp->fts_compar && n > 1 ? fw_sort(sp, head, n) : head;

fail: {
        int e = errno;
        fw_lfree(head);
        closedir(dir);
        cur->fts_info = FTS_ERR;
        sp->fts_options |= FTS_STOP;
        errno = e;
        return NULL;
    }
}

SH_EXPORT FTS *fts_open(char *const *argv, int options, int (*compar)(const FTSENT **, const FTSENT **))
{
    if (options & ~FTS_OPTIONMASK) {
        errno = EINVAL;
        return NULL;
    }
    FTS *sp = calloc(1, sizeof *sp);
    if (!sp)
        return NULL;
    sp->fts_compar = (int (*)(const void *, const void *))compar;
    sp->fts_options = options;
    if (options & FTS_LOGICAL)
        sp->fts_options |= FTS_NOCHDIR; /* symlinks make ".." ambiguous */
    size_t maxarg = 0;
    for (char *const *a = argv; *a; a++)
        if (strlen(*a) > maxarg)
            maxarg = strlen(*a);
    if (fw_palloc(sp, maxarg + 1 > 1024 ? maxarg + 1 : 1024) < 0) {
        free(sp);
        return NULL;
    }
    FTSENT *parent = NULL, *root = NULL, *tail = NULL;
    if (*argv) {
        if (!(parent = fw_alloc(sp, "", 0)))
            goto fail;
        parent->fts_level = FTS_ROOTPARENTLEVEL;
    }
    int n = 0;
    for (; *argv; argv++, n++) {
        size_t len = strlen(*argv);
        if (len == 0) {
            errno = ENOENT;
            goto fail;
        }
        FTSENT *p = fw_alloc(sp, *argv, len);
        if (!p)
            goto fail;
        p->fts_level = FTS_ROOTLEVEL;
        p->fts_parent = parent;
        p->fts_accpath = p->fts_name;
        p->fts_info = fw_stat(sp, p, FW_ON(sp, FTS_COMFOLLOW));
        if (p->fts_info == FTS_DOT)
            p->fts_info = FTS_D; /* "." and ".." named by the caller are directories to walk */
        if (compar) {
            p->fts_link = root; /* sorted below */
            root = p;
        } else {
            if (tail)
                tail->fts_link = p;
            else
                root = p;
            tail = p;
        }
    }
    if (compar && n > 1)
        root = fw_sort(sp, root, n);
    /* the node "before" the roots: fts_read moves on from it */
    if (!(sp->fts_cur = fw_alloc(sp, "", 0)))
        goto fail;
    sp->fts_cur->fts_link = root;
    sp->fts_cur->fts_info = FTS_INIT;
    if (!FW_ON(sp, FTS_NOCHDIR) && (sp->fts_rfd = open_cwd()) < 0)
        sp->fts_options |= FTS_NOCHDIR;
    return sp;

fail: {
        int e = errno;
        fw_lfree(root);
        free(parent);
        free(sp->fts_path);
        free(sp);
        errno = e;
        return NULL;
    }
}

/* A root becomes current: its path is the buffer, its name the last component. */
static void fw_load(FTS *sp, FTSENT *p)
{
    size_t len = p->fts_namelen;
    p->fts_pathlen = (unsigned short)len;
    memmove(sp->fts_path, p->fts_name, len + 1);
    char *cp = strrchr(p->fts_name, '/');
    if (cp && (cp != p->fts_name || cp[1])) {
        len = strlen(++cp);
        memmove(p->fts_name, cp, len + 1);
        p->fts_namelen = (unsigned short)len;
    }
    p->fts_accpath = p->fts_path = sp->fts_path;
    sp->fts_dev = p->fts_dev;
}

/* FTS_FOLLOW on a symlink: stat through it, and keep a way back if it is a directory we will enter. */
static void fw_follow(FTS *sp, FTSENT *p)
{
    p->fts_info = fw_stat(sp, p, 1);
    if (p->fts_info == FTS_D && !FW_ON(sp, FTS_NOCHDIR)) {
        if ((p->fts_symfd = open_cwd()) < 0) {
            p->fts_errno = errno;
            p->fts_info = FTS_ERR;
        } else {
            p->fts_flags |= FTS_SYMFOLLOW;
        }
    }
}

SH_EXPORT FTSENT *fts_read(FTS *sp)
{
    if (!sp->fts_cur || FW_ON(sp, FTS_STOP))
        return NULL;
    FTSENT *p = sp->fts_cur;
    int instr = p->fts_instr;
    p->fts_instr = FTS_NOINSTR;
    if (instr == FTS_AGAIN) {
        p->fts_info = fw_stat(sp, p, 0);
        return p;
    }
    if (instr == FTS_FOLLOW && (p->fts_info == FTS_SL || p->fts_info == FTS_SLNONE)) {
        fw_follow(sp, p);
        return p;
    }
    if (p->fts_info == FTS_D) {
        /* skipped, or another file system under FTS_XDEV: straight to its post-order visit */
        if (instr == FTS_SKIP || (FW_ON(sp, FTS_XDEV) && p->fts_dev != sp->fts_dev)) {
            if (p->fts_flags & FTS_SYMFOLLOW)
                close(p->fts_symfd);
            if (sp->fts_child) {
                fw_lfree(sp->fts_child);
                sp->fts_child = NULL;
            }
            p->fts_info = FTS_DP;
            return p;
        }
        /* fts_children listed names only: list again, with stats */
        if (sp->fts_child && FW_ON(sp, FTS_NAMEONLY)) {
            sp->fts_options &= ~FTS_NAMEONLY;
            fw_lfree(sp->fts_child);
            sp->fts_child = NULL;
        }
        if (sp->fts_child) {
            /* listed by fts_children: only enter it; failing that, children keep the parent's path */
            if (fw_changedir(sp, p, -1, p->fts_accpath)) {
                p->fts_errno = errno;
                p->fts_flags |= FTS_DONTCHDIR;
                for (FTSENT *c = sp->fts_child; c; c = c->fts_link)
                    c->fts_accpath = c->fts_parent->fts_accpath;
            }
        } else if (!(sp->fts_child = fw_build(sp, FW_READ))) {
            return FW_ON(sp, FTS_STOP) ? NULL : p;
        }
        p = sp->fts_child;
        sp->fts_child = NULL;
        goto name;
    }
    /* the next sibling, skipping those the caller skipped */
    for (;;) {
        FTSENT *prev = p;
        if (!(p = p->fts_link)) {
            p = prev;
            break;
        }
        sp->fts_cur = p;
        free(prev);
        if (p->fts_level == FTS_ROOTLEVEL) {
            /* the next root: from the starting directory */
            if (fw_fchdir(sp, sp->fts_rfd)) {
                sp->fts_options |= FTS_STOP;
                return NULL;
            }
            fw_load(sp, p);
            return p;
        }
        if (p->fts_instr == FTS_SKIP)
            continue;
        if (p->fts_instr == FTS_FOLLOW) {
            fw_follow(sp, p);
            p->fts_instr = FTS_NOINSTR;
        }
        goto name;
    }
    /* no sibling left: the parent's post-order visit */
    {
        FTSENT *done = p;
        p = done->fts_parent;
        sp->fts_cur = p;
        free(done);
    }
    if (p->fts_level == FTS_ROOTPARENTLEVEL) {
        free(p);
        errno = 0; /* the end, not an error */
        return sp->fts_cur = NULL;
    }
    sp->fts_path[p->fts_pathlen] = '\0';
    if (p->fts_level == FTS_ROOTLEVEL) {
        if (fw_fchdir(sp, sp->fts_rfd)) {
            sp->fts_options |= FTS_STOP;
            return NULL;
        }
    } else if (p->fts_flags & FTS_SYMFOLLOW) {
        if (fw_fchdir(sp, p->fts_symfd)) {
            int e = errno;
            close(p->fts_symfd);
            errno = e;
            sp->fts_options |= FTS_STOP;
            return NULL;
        }
        close(p->fts_symfd);
    } else if (!(p->fts_flags & FTS_DONTCHDIR) && fw_changedir(sp, p->fts_parent, -1, "..")) {
        sp->fts_options |= FTS_STOP;
        return NULL;
    }
    p->fts_info = p->fts_errno ? FTS_ERR : FTS_DP;
    return p;

name:
    sp->fts_cur = p;
    {
        char *t = sp->fts_path + FW_APPEND(p->fts_parent);
        *t++ = '/';
        memmove(t, p->fts_name, (size_t)p->fts_namelen + 1);
    }
    return p;
}

SH_EXPORT int fts_set(FTS *sp, FTSENT *p, int instr)
{
    (void)sp;
    if (instr != 0 && instr != FTS_AGAIN && instr != FTS_FOLLOW && instr != FTS_NOINSTR && instr != FTS_SKIP) {
        errno = EINVAL;
        return 1;
    }
    p->fts_instr = (unsigned short)instr;
    return 0;
}

SH_EXPORT FTSENT *fts_children(FTS *sp, int instr)
{
    if (instr != 0 && instr != FTS_NAMEONLY) {
        errno = EINVAL;
        return NULL;
    }
    FTSENT *p = sp->fts_cur;
    errno = 0; /* an empty directory is not an error */
    if (FW_ON(sp, FTS_STOP))
        return NULL;
    if (p->fts_info == FTS_INIT)
        return p->fts_link; /* the roots */
    if (p->fts_info != FTS_D)
        return NULL;
    if (sp->fts_child)
        fw_lfree(sp->fts_child);
    int type = FW_CHILDREN;
    if (instr == FTS_NAMEONLY) {
        sp->fts_options |= FTS_NAMEONLY;
        type = FW_NAMES;
    }
    /* A relative root before fts_read entered it: come back to where we are now. */
    if (p->fts_level != FTS_ROOTLEVEL || p->fts_accpath[0] == '/' || FW_ON(sp, FTS_NOCHDIR))
        return sp->fts_child = fw_build(sp, type);
    int fd = open_cwd();
    if (fd < 0)
        return sp->fts_child = NULL;
    sp->fts_child = fw_build(sp, type);
    int r = fchdir(fd);
    close(fd);
    return r < 0 ? NULL : sp->fts_child;
}

SH_EXPORT int fts_close(FTS *sp)
{
    if (sp->fts_cur) {
        /* the current node, its siblings after it, then up: the root list ends at the root parent */
        FTSENT *p = sp->fts_cur;
        while (p->fts_level >= FTS_ROOTLEVEL) {
            FTSENT *f = p;
            p = p->fts_link ? p->fts_link : p->fts_parent;
            free(f);
        }
        free(p);
    }
    fw_lfree(sp->fts_child);
    free(sp->fts_array);
    free(sp->fts_path);
    if (!FW_ON(sp, FTS_NOCHDIR)) {
        int e = fchdir(sp->fts_rfd) < 0 ? errno : 0;
        close(sp->fts_rfd);
        if (e) {
            free(sp);
            errno = e;
            return -1;
        }
    }
    free(sp);
    return 0;
}

/* FTS64/FTSENT64 have the same layout on LP64 (ino64_t == ino_t, stat64 == stat). */
SH_EXPORT FTS64 *fts64_open(char *const *argv, int options, int (*compar)(const FTSENT64 **, const FTSENT64 **))
{
    return (FTS64 *)(void *)fts_open(argv, options, (int (*)(const FTSENT **, const FTSENT **))(void *)compar);
}

SH_EXPORT FTSENT64 *fts64_read(FTS64 *sp) { return (FTSENT64 *)(void *)fts_read((FTS *)(void *)sp); }

SH_EXPORT FTSENT64 *fts64_children(FTS64 *sp, int instr)
{
    return (FTSENT64 *)(void *)fts_children((FTS *)(void *)sp, instr);
}

SH_EXPORT int fts64_set(FTS64 *sp, FTSENT64 *p, int instr)
{
    return fts_set((FTS *)(void *)sp, (FTSENT *)(void *)p, instr);
}

SH_EXPORT int fts64_close(FTS64 *sp) { return fts_close((FTS *)(void *)sp); }
