/*
 * difftest - differential tester for the Ephemera shim.
 *
 * It runs a pseudo-random sequence of file operations, generated from a seed,
 * inside one directory and prints a canonical trace: every result, errno,
 * digest of the bytes read, and the final tree.  The trace contains nothing
 * that legitimately differs between two correct file systems (fd numbers,
 * absolute paths, inode numbers, timestamps), so a plain run on a real tmpfs
 * directory and a run under LD_PRELOAD=libephemera.so on a managed root must
 * print byte-identical traces.
 *
 * Inode numbers are printed as labels (i0, i1...) in order of first sighting,
 * which keeps "stable across calls" and "same file via path and fd" checkable.
 * Timestamps are checked against a window measured around the operation that
 * last changed the file, and only the verdict is printed.  st_blocks is
 * printed only for files the model knows have no holes.
 *
 * --loose is for runs where files may be evicted to an ordinary disk file
 * mid-sequence: inode labels are dropped (an evicted file gets the disk
 * file's inode) and st_blocks becomes a plausibility verdict.  A --loose
 * trace from tmpfs must also equal one from ext4, which tests the tester.
 *
 * Modes:
 *   single  one process
 *   multi   N children at once, each on its own subtree plus shared files
 *           (a fork-shared description, O_APPEND, disjoint pwrite regions)
 *   fork    parent, child and exec'd helpers take turns on one inherited fd
 *   users   (as root) turns of forked children, each as root or one of two
 *           unprivileged users (setuid), in a tree of shared, sticky, other
 *           users' and private directories; each turn starts its model from
 *           a scan of the tree, and the final tree shows owners
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <grp.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---------------------------------------------------------------- options */

enum {
    F_PATHS = 1 << 0,     /* odd path spellings: ./ // trailing / x/.. */
    F_SYMLINK = 1 << 1,   /* symlinks, O_NOFOLLOW on them, readlink */
    F_LINK = 1 << 2,      /* hard links */
    F_TMPFILE = 1 << 3,   /* O_TMPFILE */
    F_MMAP = 1 << 4,      /* application mmap read and write */
    F_COPY = 1 << 5,      /* sendfile, copy_file_range */
    F_FALLOC = 1 << 6,    /* posix_fallocate */
    F_STDIO = 1 << 7,     /* fopen/fread/fwrite/fclose */
    F_CHMOD = 1 << 8,     /* chmod, fchmod, umask */
    F_RENAME2 = 1 << 9,   /* renameat2 NOREPLACE / EXCHANGE */
    F_DIRFD = 1 << 10,    /* *at calls with directory fds */
    F_SEEKHOLE = 1 << 11, /* SEEK_DATA / SEEK_HOLE (off by default) */
    F_TIMES = 1 << 12,    /* utimensat, futimens with explicit, UTIME_NOW and UTIME_OMIT times */
    F_IOCTL = 1 << 13,    /* isatty, ioctl(FIONREAD) */
};

static const struct {
    const char *name;
    unsigned bit;
} g_features[] = {
    {"paths", F_PATHS},   {"symlink", F_SYMLINK}, {"link", F_LINK},     {"tmpfile", F_TMPFILE},
    {"mmap", F_MMAP},     {"copy", F_COPY},       {"falloc", F_FALLOC}, {"stdio", F_STDIO},
    {"chmod", F_CHMOD},   {"rename2", F_RENAME2}, {"dirfd", F_DIRFD},   {"seekhole", F_SEEKHOLE},
    {"times", F_TIMES},   {"ioctl", F_IOCTL},
};
#define NFEATURES (sizeof g_features / sizeof g_features[0])

static struct {
    const char *dir;     /* directory the sequence runs in */
    char dir_abs[PATH_MAX];
    uint64_t seed;
    long ops;
    int procs;
    int loose;
    int as_given;        /* --as-given: absolute paths spell DIR as given (a symlink kept), not getcwd's answer */
    unsigned feat;
    const char *mode;
    char self_exe[PATH_MAX];
    int selfcheck;       /* DIFFTEST_SELFCHECK=1: report model/kernel disagreements (size, entries) on stderr */
    int paranoid;        /* DIFFTEST_PARANOID=N: offset and size of every open file after each op >= N */
} opt;

/* ------------------------------------------------------------ utilities */

/*
 * snprintf without the compiler's truncation analysis: every buffer here is
 * sized for the short names the generator makes, and a truncated model path
 * only makes the model "not know" a file, which both runs share.
 */
__attribute__((format(printf, 3, 4))) static int sfmt(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(dst, n, fmt, ap);
    va_end(ap);
    return k;
}

static void flush_trace(int fd);

static void die(const char *fmt, ...)
{
    va_list ap;
    flush_trace(1); /* the trace so far shows where it went wrong */
    va_start(ap, fmt);
    fprintf(stderr, "difftest: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (seed %" PRIu64 ")\n", opt.seed);
    va_end(ap);
    exit(2);
}

struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    /* splitmix64: tiny, fast, and every seed is a good seed */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t below(struct rng *r, uint32_t n)
{
    return n ? (uint32_t)(rng_next(r) % n) : 0;
}

static int chance(struct rng *r, int per_mille)
{
    return (int)below(r, 1000) < per_mille;
}

static uint64_t fnv64(const void *p, size_t n, uint64_t h)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

static void fill(struct rng *r, char *buf, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = rng_next(r);
        memcpy(buf + i, &x, 8);
    }
    if (i < n) {
        uint64_t x = rng_next(r);
        memcpy(buf + i, &x, n - i);
    }
}

static const char *en(int e)
{
    const char *s = strerrorname_np(e);
    return s ? s : "E?";
}

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int64_t now_ns(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return ts_ns(&t);
}

/* ---------------------------------------------------------------- trace */

static struct {
    char *p;
    size_t n, cap;
} T;
static long g_opno;
static const char *g_tag = ""; /* "c1:" in multi-mode children */
static int g_owners;            /* users mode: the final tree shows each entry's owner */

static void tr(const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = T.cap - T.n;
        int k = vsnprintf(T.p ? T.p + T.n : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0)
            die("vsnprintf failed");
        if ((size_t)k < room) {
            T.n += (size_t)k;
            return;
        }
        T.cap = T.cap ? T.cap * 2 + (size_t)k : 1 << 20;
        T.p = realloc(T.p, T.cap);
        if (!T.p)
            die("out of memory for the trace");
    }
}

/* Start a trace line for one operation. */
static void op(const char *fmt, ...)
{
    va_list ap;
    char line[512];
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    tr("%s%ld %s", g_tag, g_opno, line);
}

/* End a line with a return value (or -1 and the errno name). */
static void res(long r, int e)
{
    if (r < 0)
        tr(" = -1 %s\n", en(e));
    else
        tr(" = %ld\n", r);
}

/* Evaluate the call first, then read errno: argument order is unspecified in C. */
#define RES(call)                   \
    do {                            \
        long res_r_ = (long)(call); \
        int res_e_ = errno;         \
        res(res_r_, res_e_);        \
    } while (0)

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            die("writing the trace: %s", strerror(errno));
        }
        p += k;
        n -= (size_t)k;
    }
}

static void flush_trace(int fd)
{
    write_all(fd, T.p ? T.p : "", T.n);
    T.n = 0;
}

static char *read_fd_all(int fd, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap);
    if (!p)
        die("out of memory");
    for (;;) {
        if (n == cap) {
            cap *= 2;
            p = realloc(p, cap);
            if (!p)
                die("out of memory");
        }
        ssize_t k = read(fd, p + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            die("reading a pipe: %s", strerror(errno));
        if (k == 0)
            break;
        n += (size_t)k;
    }
    *len = n;
    return p;
}

/* ------------------------------------------------------------ inode labels */

static struct {
    uint64_t ino;
    int label;
} g_inos[8192];
static int g_ninos;

static void ino_label(char *out, size_t n, uint64_t ino)
{
    if (opt.loose) {
        sfmt(out, n, "-");
        return;
    }
    for (int i = 0; i < g_ninos; i++)
        if (g_inos[i].ino == ino) {
            sfmt(out, n, "i%d", g_inos[i].label);
            return;
        }
    if (g_ninos == (int)(sizeof g_inos / sizeof g_inos[0]))
        die("too many distinct inodes");
    g_inos[g_ninos].ino = ino;
    g_inos[g_ninos].label = g_ninos;
    sfmt(out, n, "i%d", g_ninos);
    g_ninos++;
}

/* ---------------------------------------------------------------- model
 *
 * A small model of the namespace and of each file's size, hole-ness and
 * modification window.  It never decides what is printed as a *result*; it
 * only decides which facts are deterministic enough to print (st_blocks of a
 * file without holes) and what window the mtime must fall in.  It is updated
 * from the real results, so both runs update it identically.
 */

#define MAXOBJ 65536
#define MAXNAME 512
#define MAXDIR 256
#define PLEN 160

struct mobj {
    uint64_t size;
    int sparse;         /* may have holes or preallocated blocks: st_blocks not exact */
    int nlink;
    int64_t mt_lo;      /* mtime must be >= this (coarse clock before the last sure change) */
    int64_t mt_hi;      /* and <= this (fine clock after the last possible change) */
    long mt_lo_op;      /* the op that set mt_lo (for the diagnostic of a BAD verdict) */
};
static struct mobj g_obj[MAXOBJ];
static int g_nobj;

struct mname {
    char path[PLEN];    /* canonical, relative to the test dir */
    int obj;            /* >= 0 file, -1 unknown file, -2 symlink */
    char target[64];    /* symlink target */
    long lnk;           /* symlink: which symlink inode (hard links to a symlink share it) */
};
static struct mname g_names[MAXNAME];
static int g_nnames;
static char g_dirs[MAXDIR][PLEN];
static int g_ndirs;
static char g_dir_opaque[MAXDIR]; /* a directory the scan could not list: what is in it is unknown */
static long g_nlnk; /* symlink inodes made so far */

static int obj_new(int64_t lo, int64_t hi)
{
    if (g_nobj == MAXOBJ)
        return -1;
    struct mobj *o = &g_obj[g_nobj];
    memset(o, 0, sizeof *o);
    o->mt_lo = lo;
    o->mt_hi = hi;
    o->mt_lo_op = g_opno;
    o->nlink = 1;
    return g_nobj++;
}

static struct mname *name_find(const char *p)
{
    for (int i = 0; i < g_nnames; i++)
        if (!strcmp(g_names[i].path, p))
            return &g_names[i];
    return NULL;
}

static int dir_find(const char *p)
{
    if (!*p)
        return 1; /* the test dir itself */
    for (int i = 0; i < g_ndirs; i++)
        if (!strcmp(g_dirs[i], p))
            return 1;
    return 0;
}

static void name_add(const char *p, int obj)
{
    struct mname *m = name_find(p);
    if (!m) {
        if (g_nnames == MAXNAME)
            return;
        m = &g_names[g_nnames++];
        sfmt(m->path, PLEN, "%s", p);
    }
    m->obj = obj;
    m->target[0] = 0;
    m->lnk = 0;
}

static void name_del(const char *p)
{
    struct mname *m = name_find(p);
    if (!m)
        return;
    if (m->obj >= 0 && g_obj[m->obj].nlink > 0)
        g_obj[m->obj].nlink--;
    *m = g_names[--g_nnames];
}

/* Whether the model holds directory p but not what is in it (1), or holds it whole (0). */
static int dir_opaque(const char *p)
{
    for (int i = 0; i < g_ndirs; i++)
        if (!strcmp(g_dirs[i], p))
            return g_dir_opaque[i];
    return 0;
}

static void dir_mark_opaque(const char *p)
{
    for (int i = 0; i < g_ndirs; i++)
        if (!strcmp(g_dirs[i], p))
            g_dir_opaque[i] = 1;
}

static void dir_add(const char *p)
{
    if (dir_find(p) || g_ndirs == MAXDIR)
        return;
    g_dir_opaque[g_ndirs] = 0;
    sfmt(g_dirs[g_ndirs++], PLEN, "%s", p);
}

static int has_prefix(const char *p, const char *dir)
{
    size_t n = strlen(dir);
    return !strncmp(p, dir, n) && p[n] == '/';
}

/* Move everything under directory `from` to `to`. */
static void model_move_tree(const char *from, const char *to)
{
    char tmp[PLEN * 2];
    size_t n = strlen(from);
    for (int i = 0; i < g_nnames; i++)
        if (has_prefix(g_names[i].path, from)) {
            sfmt(tmp, sizeof tmp, "%s%s", to, g_names[i].path + n);
            sfmt(g_names[i].path, PLEN, "%s", tmp);
        }
    for (int i = 0; i < g_ndirs; i++)
        if (!strcmp(g_dirs[i], from) || has_prefix(g_dirs[i], from)) {
            sfmt(tmp, sizeof tmp, "%s%s", to, g_dirs[i] + n);
            sfmt(g_dirs[i], PLEN, "%s", tmp);
        }
}

static void model_drop_tree(const char *d)
{
    for (int i = 0; i < g_nnames;)
        if (has_prefix(g_names[i].path, d))
            name_del(g_names[i].path);
        else
            i++;
    for (int i = 0; i < g_ndirs;)
        if (!strcmp(g_dirs[i], d) || has_prefix(g_dirs[i], d)) {
            memcpy(g_dirs[i], g_dirs[--g_ndirs], PLEN);
            g_dir_opaque[i] = g_dir_opaque[g_ndirs];
        } else {
            i++;
        }
}

static void obj_touch_sure(int o, int64_t lo, int64_t hi)
{
    if (o < 0)
        return;
    g_obj[o].mt_lo = lo;
    g_obj[o].mt_hi = hi;
    g_obj[o].mt_lo_op = g_opno;
}

static void obj_touch_maybe(int o, int64_t hi)
{
    if (o >= 0)
        g_obj[o].mt_hi = hi;
}

static void obj_write(int o, uint64_t start, uint64_t n, int64_t lo, int64_t hi)
{
    if (o < 0)
        return;
    struct mobj *m = &g_obj[o];
    if (n == 0) {
        obj_touch_maybe(o, hi);
        return;
    }
    if (start > m->size)
        m->sparse = 1;
    if (start + n > m->size)
        m->size = start + n;
    obj_touch_sure(o, lo, hi);
}

static void obj_truncate(int o, uint64_t len, int64_t lo, int64_t hi)
{
    if (o < 0)
        return;
    struct mobj *m = &g_obj[o];
    if (len > m->size)
        m->sparse = 1;
    if (len == 0)
        m->sparse = 0;
    if (len != m->size)
        obj_touch_sure(o, lo, hi);
    else
        obj_touch_maybe(o, hi);
    m->size = len;
}

/* ---------------------------------------------------------------- handles */

#define MAXH 24
#define MAXDESC 256

struct mdesc {
    int refs;
    int obj;            /* file object, -1 unknown */
    uint64_t off;
    int append;
};
static struct mdesc g_desc[MAXDESC];

enum { H_ANY = -1, H_FREE = 0, H_FILE, H_DIR };

struct handle {
    int kind;
    int fd;
    int acc;            /* O_RDONLY, O_WRONLY, O_RDWR */
    int desc;           /* index into g_desc (files) */
    char path[PLEN];    /* canonical path of a directory handle; "" for the test dir */
    int dead;           /* directory handle whose directory was removed */
};
static struct handle g_h[MAXH];

static int desc_new(int obj, int append)
{
    for (int i = 0; i < MAXDESC; i++)
        if (!g_desc[i].refs) {
            g_desc[i].refs = 1;
            g_desc[i].obj = obj;
            g_desc[i].off = 0;
            g_desc[i].append = append;
            return i;
        }
    die("model ran out of descriptions");
    return -1;
}

static void handle_forget(int h)
{
    if (g_h[h].kind == H_FILE && g_desc[g_h[h].desc].refs > 0)
        g_desc[g_h[h].desc].refs--;
    g_h[h].kind = H_FREE;
    g_h[h].fd = -1;
}

static int handle_free_slot(void)
{
    for (int i = 0; i < MAXH; i++)
        if (g_h[i].kind == H_FREE)
            return i;
    return -1;
}

static int handle_by_fd(int fd)
{
    for (int i = 0; i < MAXH; i++)
        if (g_h[i].kind != H_FREE && g_h[i].fd == fd)
            return i;
    return -1;
}

static int pick_handle(struct rng *r, int kind)
{
    int c[MAXH], n = 0;
    for (int i = 0; i < MAXH; i++)
        if (g_h[i].kind == kind || (kind == H_ANY && g_h[i].kind != H_FREE))
            c[n++] = i;
    return n ? c[below(r, (uint32_t)n)] : -1;
}

static int hobj(int h)
{
    return g_h[h].kind == H_FILE ? g_desc[g_h[h].desc].obj : -1;
}

/* ---------------------------------------------------------------- paths */

/*
 * Every path the sequence makes lies under g_base ("w/", or "p2/w/" in a
 * multi-mode child): a symlink to "../x" at its top then still stays inside
 * the test directory and inside this process's own subtree.
 */
static const char *g_base = "w/";

struct pth {
    char canon[PLEN];   /* canonical relative path for the model (without g_base for dirfd-relative) */
    char show[PLEN];    /* what the trace prints */
    char use[PATH_MAX]; /* what is passed to the call */
    int dirfd;          /* AT_FDCWD or a directory handle's fd */
};

static const char *g_fnames[] = {"f0", "f1", "f2", "f3", "f4"};
static const char *g_dnames[] = {"a", "b", "c"};
static const char *g_parents[] = {"", "", "", "a", "a", "b", "a/c", "b/c"};

static const char *pick_name(struct rng *r, int want_dir)
{
    if (want_dir ? chance(r, 650) : chance(r, 800))
        return want_dir ? g_dnames[below(r, 3)] : g_fnames[below(r, 5)];
    return want_dir ? g_fnames[below(r, 5)] : g_dnames[below(r, 3)];
}

/*
 * Build a path to an entry.  The spelling varies (relative to the cwd,
 * absolute, relative to a directory fd, odd forms) but the model sees one
 * canonical name.
 */
static void make_path(struct rng *r, struct pth *p, int want_dir)
{
    const char *parent = g_parents[below(r, 8)];
    const char *name = pick_name(r, want_dir);
    char rel[PLEN];
    p->dirfd = AT_FDCWD;

    if (chance(r, 15))
        parent = "f0";      /* a file used as a directory: ENOTDIR */
    else if (chance(r, 15))
        parent = "zz";      /* missing parent: ENOENT */
    if (*parent)
        sfmt(rel, sizeof rel, "%s/%s", parent, name);
    else
        sfmt(rel, sizeof rel, "%s", name);

    int dh = -1;
    if ((opt.feat & F_DIRFD) && chance(r, 150))
        dh = pick_handle(r, H_DIR);
    if (dh >= 0 && !g_h[dh].dead) {
        /* relative to an open directory */
        p->dirfd = g_h[dh].fd;
        if (*g_h[dh].path)
            sfmt(p->canon, PLEN, "%s/%s", g_h[dh].path, rel);
        else
            sfmt(p->canon, PLEN, "%s", rel);
        sfmt(p->use, sizeof p->use, "%s", rel);
        sfmt(p->show, PLEN, "h%d:%s", dh, rel);
        return;
    }
    sfmt(p->canon, PLEN, "%s%s", g_base, rel);
    sfmt(p->show, PLEN, "%s", rel);
    int form = (int)below(r, 1000);
    if (form < 200) {
        sfmt(p->use, sizeof p->use, "%s/%s", opt.dir_abs, p->canon);
        sfmt(p->show, PLEN, "/%s", rel);
    } else if ((opt.feat & F_PATHS) && form < 230) {
        sfmt(p->use, sizeof p->use, "./%s", p->canon);
        sfmt(p->show, PLEN, "./%s", rel);
    } else if ((opt.feat & F_PATHS) && form < 260 && *parent) {
        sfmt(p->use, sizeof p->use, "%s%s//./%s", g_base, parent, name);
        sfmt(p->show, PLEN, "%s//./%s", parent, name);
    } else if ((opt.feat & F_PATHS) && form < 280 && *parent) {
        /* ".." after the parent: the kernel walks it, so a missing or
         * non-directory parent still fails even though the spelling
         * normalises to a valid-looking name */
        sfmt(p->use, sizeof p->use, "%s%s/../%s/%s", g_base, parent, parent, name);
        sfmt(p->show, PLEN, "%s/../%s/%s", parent, parent, name);
        /* the model walks it too: when the parent is a symlink, ".." leaves its target */
        sfmt(p->canon, PLEN, "%s", p->use);
    } else if ((opt.feat & F_PATHS) && form < 290) {
        sfmt(p->use, sizeof p->use, "%s/", p->canon);
        sfmt(p->show, PLEN, "%s/", rel);
        strcat(p->canon, "/"); /* the model treats trailing-slash paths as unknown */
    } else {
        sfmt(p->use, sizeof p->use, "%s", p->canon);
    }
}

/* The canonical path without a trailing slash (for calls where the kernel accepts one on a directory). */
static void canon_strip(const struct pth *p, char *out)
{
    sfmt(out, PLEN, "%s", p->canon);
    size_t n = strlen(out);
    if (n && out[n - 1] == '/')
        out[n - 1] = 0;
}

/*
 * Resolve the model's symlinks in a canonical path the way the kernel walks
 * it; `follow` also follows a symlink in the last component.  -1 when the
 * model cannot tell (trailing slash, link loops, leaving the test dir).
 */
static int model_resolve(const char *canon, int follow, char *out)
{
    char work[PLEN * 2], cur[PLEN * 2] = "", cand[PLEN * 2], comp[PLEN];
    size_t n = strlen(canon);
    if (n == 0 || canon[n - 1] == '/')
        return -1;
    sfmt(work, sizeof work, "%s", canon);
    char *rest = work;
    int links = 0;
    while (*rest) {
        char *slash = strchr(rest, '/');
        size_t cl = slash ? (size_t)(slash - rest) : strlen(rest);
        if (cl >= PLEN)
            return -1;
        memcpy(comp, rest, cl);
        comp[cl] = 0;
        rest = slash ? slash + 1 : rest + cl;
        int last = !*rest;
        if (!*comp || !strcmp(comp, "."))
            continue;
        if (dir_opaque(cur))
            return -1;
        if (!strcmp(comp, "..")) {
            if (!dir_find(cur))
                return -1; /* the kernel fails (ENOENT, ENOTDIR) where a lexical ".." would not */
            char *s = strrchr(cur, '/');
            if (s)
                *s = 0;
            else if (*cur)
                cur[0] = 0;
            else
                return -1;
            continue;
        }
        sfmt(cand, sizeof cand, "%s%s%s", cur, *cur ? "/" : "", comp);
        struct mname *m = name_find(cand);
        if (m && m->obj == -2 && (!last || follow)) {
            char nw[PLEN * 3];
            if (++links > 8 || m->target[0] == '/')
                return -1;
            sfmt(nw, sizeof nw, "%s%s%s", m->target, *rest ? "/" : "", rest);
            sfmt(work, sizeof work, "%s", nw);
            rest = work;
            continue;
        }
        sfmt(cur, sizeof cur, "%s", cand);
    }
    if (strlen(cur) >= PLEN)
        return -1;
    sfmt(out, PLEN, "%s", cur);
    return 0;
}

enum { K_NONE = 0, K_FILE, K_LINK, K_DIR, K_UNKNOWN };

/* What the model holds at a path; *obj is the file object (or -1), res the resolved path. */
static int model_kind(const char *canon, int follow, int *obj, char *res)
{
    char tmp[PLEN];
    if (!res)
        res = tmp;
    *obj = -1;
    if (model_resolve(canon, follow, res) < 0)
        return K_UNKNOWN;
    struct mname *m = name_find(res);
    if (m) {
        *obj = m->obj;
        return m->obj == -2 ? K_LINK : K_FILE;
    }
    return dir_find(res) ? K_DIR : K_NONE;
}

/* ------------------------------------------------------------ stat output */

static void mt_verdict(int o, int64_t mt, char *out, size_t n)
{
    int64_t hi_now = now_ns(CLOCK_REALTIME);
    if (o < 0) {
        out[0] = 0;
        return;
    }
    const struct mobj *m = &g_obj[o];
    /* the upper bound is the last *possible* change; nothing after it may move mtime */
    if (mt >= m->mt_lo && mt <= m->mt_hi && mt <= hi_now)
        sfmt(out, n, " mt=ok");
    else {
        /* only the verdict goes into the trace: the numbers differ from run to run */
        sfmt(out, n, " mt=BAD");
        fprintf(stderr, "difftest: op %ld: mtime outside its window: %+" PRId64 "ns after lo (set by op %ld), %+" PRId64
                        "ns after hi\n", g_opno, mt - m->mt_lo, m->mt_lo_op, mt - m->mt_hi);
    }
}

static void blocks_str(int o, uint64_t size, uint64_t blocks, char *out, size_t n)
{
    if (o < 0 || g_obj[o].sparse) {
        out[0] = 0;
        return;
    }
    uint64_t pages = (size + 4095) / 4096;
    if (!opt.loose) {
        sfmt(out, n, " blk=%" PRIu64, blocks);
        return;
    }
    /* an evicted file lives on some disk file system: allow its allocation slack */
    if (blocks * 512 >= size && blocks <= pages * 8 + 64)
        sfmt(out, n, " blk=ok");
    else
        sfmt(out, n, " blk=BAD(%" PRIu64 ")", blocks);
}

static void selfcheck_size(int o, uint64_t real)
{
    if (opt.selfcheck && o >= 0 && g_obj[o].size != real)
        fprintf(stderr, "difftest: selfcheck op %s%ld: model size %" PRIu64 " kernel %" PRIu64 "\n",
                g_tag, g_opno, g_obj[o].size, real);
}

/* DIFFTEST_SELFCHECK: what the model holds at a path (its kind before the op) against what the
 * kernel found there (rc, errno, st_mode).  Only ENOENT and success are compared: other errors
 * (EACCES, ENOTDIR, ELOOP) the model does not try to predict. */
static void selfcheck_kind(int kind, const char *canon, int rc, int err, mode_t mode)
{
    static const char *names[] = {"no entry", "a file", "a symlink", "a directory", "?"};
    int real = rc < 0 ? (err == ENOENT ? K_NONE : K_UNKNOWN)
               : S_ISREG(mode) ? K_FILE : S_ISDIR(mode) ? K_DIR : S_ISLNK(mode) ? K_LINK : K_UNKNOWN;
    if (!opt.selfcheck || kind == K_UNKNOWN || real == K_UNKNOWN || kind == real)
        return;
    fprintf(stderr, "difftest: model lost track, op %s%ld: it has %s at %s, the kernel %s\n", g_tag, g_opno,
            names[kind], canon, names[real]);
}

/* Print the deterministic part of a stat result.  o: model object or -1. */
static void print_stat(const struct stat *st, int o)
{
    char ino[32], blk[64], mt[96];
    /* Directories and symlinks stay on the disk under the shim, and disk
     * file systems reuse inode numbers at once: label regular files only. */
    if (S_ISDIR(st->st_mode)) {
        tr(" dir mode=%o nlink=%lu\n", st->st_mode, (unsigned long)st->st_nlink);
        return;
    }
    if (S_ISLNK(st->st_mode)) {
        tr(" lnk size=%ld\n", (long)st->st_size);
        return;
    }
    ino_label(ino, sizeof ino, (uint64_t)st->st_ino);
    selfcheck_size(o, (uint64_t)st->st_size);
    blocks_str(o, (uint64_t)st->st_size, (uint64_t)st->st_blocks, blk, sizeof blk);
    mt_verdict(o, ts_ns(&st->st_mtim), mt, sizeof mt);
    tr(" mode=%o size=%ld nlink=%lu ino=%s%s%s\n", st->st_mode, (long)st->st_size,
       (unsigned long)st->st_nlink, ino, blk, mt);
}

static void print_statx(const struct statx *sx, int o)
{
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_mode = sx->stx_mode;
    st.st_size = (off_t)sx->stx_size;
    st.st_nlink = sx->stx_nlink;
    st.st_ino = sx->stx_ino;
    st.st_blocks = (blkcnt_t)sx->stx_blocks;
    st.st_mtim.tv_sec = sx->stx_mtime.tv_sec;
    st.st_mtim.tv_nsec = sx->stx_mtime.tv_nsec;
    /* the basic fields must all be reported */
    if ((sx->stx_mask & STATX_BASIC_STATS) != STATX_BASIC_STATS)
        tr(" mask=%x", sx->stx_mask & STATX_BASIC_STATS);
    print_stat(&st, o);
}

/* ---------------------------------------------------------------- ops */

static char *g_buf;
#define BUFMAX (1 << 20)

static size_t pick_len(struct rng *r)
{
    int k = (int)below(r, 100);
    if (k < 55)
        return below(r, 513);
    if (k < 82)
        return 513 + below(r, 8192 - 512);
    if (k < 97)
        return 8193 + below(r, 65536 - 8192);
    return 65537 + below(r, 200000 - 65536);
}

static off_t pick_off(struct rng *r, int h)
{
    int o = h >= 0 ? hobj(h) : -1;
    uint64_t size = o >= 0 ? g_obj[o].size : 4096;
    int k = (int)below(r, 1000);
    if (k < 350)
        return below(r, 4097);
    if (k < 600)
        return below(r, 65537);
    if (k < 900)
        return (off_t)(size + below(r, 9)) - 4;
    if (k < 996)
        return below(r, 400000);
    return below(r, 8 << 20);
}

static void op_open(struct rng *r, int use_creat)
{
    static const int accs[] = {O_RDONLY, O_WRONLY, O_RDWR, O_RDWR, O_RDWR};
    static const mode_t modes[] = {0644, 0600, 0666, 0755, 0400, 0640};
    struct pth p;
    int slot = handle_free_slot();
    if (slot < 0)
        return;
    int want_dir = chance(r, 100);
    make_path(r, &p, want_dir);
    int fl = accs[below(r, 5)];
    if (want_dir && chance(r, 700))
        fl = O_RDONLY;
    if (chance(r, 500))
        fl |= O_CREAT;
    if (chance(r, 120))
        fl |= O_EXCL;
    if (chance(r, 150))
        fl |= O_TRUNC;
    if (chance(r, 200))
        fl |= O_APPEND;
    if (chance(r, want_dir ? 600 : 40))
        fl |= O_DIRECTORY;
    if (chance(r, 100))
        fl |= O_NOFOLLOW;
    if (chance(r, 200))
        fl |= O_CLOEXEC;
    if ((opt.feat & F_TMPFILE) && chance(r, 25)) {
        /* an anonymous file in a directory */
        make_path(r, &p, 1);
        fl = (chance(r, 900) ? O_RDWR : O_WRONLY) | O_TMPFILE | (chance(r, 200) ? O_EXCL : 0);
    }
    mode_t mode = modes[below(r, 6)];

    int64_t lo = now_ns(CLOCK_REALTIME_COARSE);
    int fd, e;
    if (use_creat) {
        fl = O_CREAT | O_WRONLY | O_TRUNC;
        op("creat %s %o", p.show, mode);
        fd = p.dirfd == AT_FDCWD ? creat(p.use, mode) : openat(p.dirfd, p.use, fl, mode);
    } else {
        op("open %s 0x%x %o", p.show, fl, mode);
        if (p.dirfd == AT_FDCWD && chance(r, 700))
            fd = open(p.use, fl, mode);
        else
            fd = openat(p.dirfd, p.use, fl, mode);
    }
    e = errno;
    int64_t hi = now_ns(CLOCK_REALTIME);
    int o_pre = -1;
    /* the model's view before the open (O_CREAT may add the entry; O_TMPFILE names a directory) */
    int k_pre = (fl & O_TMPFILE) == O_TMPFILE ? K_UNKNOWN : model_kind(p.canon, !(fl & O_NOFOLLOW), &o_pre, NULL);
    if (fd < 0) {
        selfcheck_kind(k_pre, p.canon, -1, e, 0);
        res(-1, e);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        die("fstat of a fresh fd failed: %s", strerror(errno));
    if (!(fl & O_CREAT))
        selfcheck_kind(k_pre, p.canon, 0, 0, st.st_mode);
    tr(" = h%d", slot);
    g_h[slot].fd = fd;
    g_h[slot].acc = fl & O_ACCMODE;
    g_h[slot].dead = 0;
    if (S_ISDIR(st.st_mode)) {
        char c[PLEN];
        canon_strip(&p, c);
        g_h[slot].kind = H_DIR;
        if (model_resolve(c, 1, g_h[slot].path) < 0)
            g_h[slot].dead = 1; /* the model cannot name it: do not use it as a dirfd */
        tr(" dir\n");
        return;
    }
    g_h[slot].kind = H_FILE;

    /* model: which object did we get? */
    int obj = -1;
    if ((fl & O_TMPFILE) == O_TMPFILE) {
        obj = obj_new(lo, hi);
        if (obj >= 0)
            g_obj[obj].nlink = 0;
    } else {
        int o2 = -1;
        char rp[PLEN];
        int kind = model_kind(p.canon, !(fl & O_NOFOLLOW), &o2, rp);
        if (kind == K_NONE) {
            obj = obj_new(lo, hi);
            name_add(rp, obj);
        } else if (kind == K_FILE) {
            obj = o2;
            if ((fl & O_TRUNC) && obj >= 0)
                obj_truncate(obj, 0, lo, hi);
        }
    }
    g_h[slot].desc = desc_new(obj, !!(fl & O_APPEND));
    tr(" size=%ld\n", (long)st.st_size);
    selfcheck_size(obj, (uint64_t)st.st_size);
}

static void op_close(struct rng *r)
{
    int h = pick_handle(r, H_ANY);
    if (h < 0)
        return;
    op("close h%d", h);
    int rc = close(g_h[h].fd);
    res(rc, errno);
    handle_forget(h);
}

static void print_data(ssize_t n)
{
    if (n < 0)
        return;
    tr(" #%016" PRIx64, fnv64(g_buf, (size_t)n, FNV_INIT));
}

/* g_buf's first len bytes as 1 to 4 iovecs, their lengths added to the op's line: the count. */
static int iov_split(struct rng *r, struct iovec *iov, size_t len)
{
    int cnt = 1 + (int)below(r, 4);
    size_t used = 0;
    for (int i = 0; i < cnt; i++) {
        size_t l = len / (size_t)cnt + (i == 0 ? len % (size_t)cnt : 0);
        iov[i].iov_base = g_buf + used;
        iov[i].iov_len = l;
        used += l;
        tr(" %zu", l);
    }
    return cnt;
}

static void op_read(struct rng *r, int kind)
{
    int h = pick_handle(r, chance(r, 950) ? H_FILE : H_ANY);
    if (h < 0)
        return;
    size_t len = pick_len(r);
    struct mdesc *d = g_h[h].kind == H_FILE ? &g_desc[g_h[h].desc] : NULL;
    ssize_t n;
    int e;
    if (kind == 0) {
        op("read h%d %zu", h, len);
        n = read(g_h[h].fd, g_buf, len);
        e = errno;
        if (n > 0 && d)
            d->off += (uint64_t)n;
    } else if (kind == 1) {
        off_t off = pick_off(r, h);
        if (chance(r, 10))
            off = -1 - (off_t)below(r, 10);
        op("pread h%d %zu @%ld", h, len, (long)off);
        n = pread(g_h[h].fd, g_buf, len, off);
        e = errno;
    } else {
        struct iovec iov[4];
        op("readv h%d", h);
        int cnt = iov_split(r, iov, len);
        n = readv(g_h[h].fd, iov, cnt);
        e = errno;
        if (n > 0 && d)
            d->off += (uint64_t)n;
    }
    res(n, e);
    if (n >= 0) {
        T.n--; /* append the digest to the same line */
        print_data(n);
        tr("\n");
    }
}

static void op_write(struct rng *r, int kind)
{
    int h = pick_handle(r, chance(r, 970) ? H_FILE : H_ANY);
    if (h < 0)
        return;
    size_t len = pick_len(r);
    fill(r, g_buf, len);
    int o = hobj(h);
    struct mdesc *d = g_h[h].kind == H_FILE ? &g_desc[g_h[h].desc] : NULL;
    ssize_t n;
    int e;
    int64_t lo = now_ns(CLOCK_REALTIME_COARSE);
    uint64_t start = 0;
    if (d)
        start = d->append && o >= 0 ? g_obj[o].size : d->off;
    if (kind == 0) {
        op("write h%d %zu", h, len);
        n = write(g_h[h].fd, g_buf, len);
        e = errno;
    } else if (kind == 1) {
        off_t off = pick_off(r, h);
        if (chance(r, 10))
            off = -1;
        op("pwrite h%d %zu @%ld", h, len, (long)off);
        n = pwrite(g_h[h].fd, g_buf, len, off);
        e = errno;
        /* Linux: pwrite on an O_APPEND description appends */
        if (d && !d->append)
            start = (uint64_t)off;
    } else {
        struct iovec iov[4];
        op("writev h%d", h);
        int cnt = iov_split(r, iov, len);
        n = writev(g_h[h].fd, iov, cnt);
        e = errno;
    }
    int64_t hi = now_ns(CLOCK_REALTIME);
    res(n, e);
    if (n >= 0 && d) {
        obj_write(o, start, (uint64_t)n, lo, hi);
        if (kind != 1)
            d->off = start + (uint64_t)n;
    }
}

static void op_lseek(struct rng *r)
{
    int h = pick_handle(r, chance(r, 970) ? H_FILE : H_ANY);
    if (h < 0 || g_h[h].kind == H_DIR)
        return; /* directory offsets are file-system specific */
    int wh = (int)below(r, 3);
    static const int whs[] = {SEEK_SET, SEEK_CUR, SEEK_END};
    static const char *whn[] = {"SET", "CUR", "END"};
    off_t off;
    if (wh == 0)
        off = pick_off(r, h);
    else
        off = (off_t)below(r, 20000) - 8000;
    if (chance(r, 20))
        off = -1 - (off_t)below(r, 100);
    int whence = whs[wh];
    const char *wn = whn[wh];
    if ((opt.feat & F_SEEKHOLE) && chance(r, 60)) {
        whence = chance(r, 500) ? SEEK_DATA : SEEK_HOLE;
        wn = whence == SEEK_DATA ? "DATA" : "HOLE";
        off = pick_off(r, h);
    }
    op("lseek h%d %ld %s", h, (long)off, wn);
    off_t rc = lseek(g_h[h].fd, off, whence);
    res(rc, errno);
    if (rc >= 0)
        g_desc[g_h[h].desc].off = (uint64_t)rc;
}

static void op_ftruncate(struct rng *r, int bypath)
{
    off_t len;
    int k = (int)below(r, 100);
    int h = -1;
    struct pth p;
    int o = -1;
    if (bypath) {
        make_path(r, &p, 0);
        if (model_kind(p.canon, 1, &o, NULL) != K_FILE)
            o = -1;
    } else {
        h = pick_handle(r, chance(r, 970) ? H_FILE : H_ANY);
        if (h < 0)
            return;
        o = hobj(h);
    }
    uint64_t size = o >= 0 ? g_obj[o].size : 0;
    if (k < 30)
        len = (off_t)(size ? below(r, (uint32_t)size) : 0);
    else if (k < 60)
        len = (off_t)(size + below(r, 70000));
    else if (k < 75)
        len = 0;
    else if (k < 97)
        len = pick_off(r, h);
    else
        len = -1;
    int64_t lo = now_ns(CLOCK_REALTIME_COARSE);
    int rc;
    if (bypath) {
        op("truncate %s %ld", p.show, (long)len);
        if (p.dirfd != AT_FDCWD)
            { tr(" skipped\n"); return; } /* there is no truncateat */
        rc = truncate(p.use, len);
    } else {
        op("ftruncate h%d %ld", h, (long)len);
        rc = ftruncate(g_h[h].fd, len);
    }
    int e = errno;
    int64_t hi = now_ns(CLOCK_REALTIME);
    res(rc, e);
    if (rc == 0)
        obj_truncate(o, (uint64_t)len, lo, hi);
}

static void op_dup(struct rng *r, int two)
{
    int h = pick_handle(r, H_ANY);
    int slot = handle_free_slot();
    if (h < 0 || slot < 0)
        return;
    int fd;
    if (!two) {
        int how = (int)below(r, 3);
        op("dup%s h%d", how == 0 ? "" : how == 1 ? "fcntl" : "fcntlcx", h);
        if (how == 0)
            fd = dup(g_h[h].fd);
        else
            fd = fcntl(g_h[h].fd, how == 1 ? F_DUPFD : F_DUPFD_CLOEXEC, 3);
    } else {
        /* onto a fixed free number, onto another handle, or onto itself */
        int k = (int)below(r, 10);
        int target, th = -1;
        if (k < 5) {
            target = 700;
            while (handle_by_fd(target) >= 0)
                target++;
            op("dup2 h%d new", h);
        } else if (k < 9 && (th = pick_handle(r, H_ANY)) >= 0) {
            target = g_h[th].fd;
            op("dup2 h%d h%d", h, th);
        } else {
            target = g_h[h].fd;
            th = h;
            op("dup2 h%d self", h);
        }
        if (k % 2 && th != h)
            fd = dup3(g_h[h].fd, target, O_CLOEXEC);
        else
            fd = dup2(g_h[h].fd, target);
        if (fd >= 0 && th >= 0 && th != h) {
            /* the old handle on target was closed by dup2 */
            handle_forget(th);
            slot = th;
        } else if (fd >= 0 && th == h) {
            tr(" = same\n");
            return;
        }
    }
    int e = errno;
    if (fd < 0) {
        res(-1, e);
        return;
    }
    tr(" = h%d\n", slot);
    g_h[slot] = g_h[h];
    g_h[slot].fd = fd;
    if (g_h[h].kind == H_FILE)
        g_desc[g_h[h].desc].refs++;
}

static void op_fcntl(struct rng *r)
{
    int h = pick_handle(r, H_ANY);
    if (h < 0)
        return;
    int fd = g_h[h].fd;
    if (chance(r, 500)) {
        op("getfl h%d", h);
        int fl = fcntl(fd, F_GETFL);
        int e = errno;
        if (fl < 0)
            res(-1, e);
        else
            tr(" = 0x%x\n", fl);
        int fdfl = fcntl(fd, F_GETFD);
        (void)fdfl;
        return;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        die("F_GETFL failed on a live fd");
    int want = chance(r, 500) ? (fl | O_APPEND) : (fl & ~O_APPEND);
    if (chance(r, 100))
        want |= O_NONBLOCK;
    op("setfl h%d 0x%x", h, want);
    int rc = fcntl(fd, F_SETFL, want);
    res(rc, errno);
    if (rc == 0 && g_h[h].kind == H_FILE)
        g_desc[g_h[h].desc].append = !!(want & O_APPEND);
}

static void op_fstat(struct rng *r)
{
    int h = pick_handle(r, H_ANY);
    if (h < 0)
        return;
    struct stat st;
    if (chance(r, 300)) {
        struct statx sx;
        op("fstatx h%d", h);
        int rc = statx(g_h[h].fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx);
        if (rc < 0)
            { res(-1, errno); return; }
        tr(" = 0");
        print_statx(&sx, hobj(h));
        return;
    }
    op("fstat h%d", h);
    int rc = fstat(g_h[h].fd, &st);
    if (rc < 0)
        { res(-1, errno); return; }
    tr(" = 0");
    print_stat(&st, hobj(h));
}

static void op_stat(struct rng *r)
{
    struct pth p;
    make_path(r, &p, chance(r, 200));
    int how = (int)below(r, 5);
    int nofollow = chance(r, 500) ? AT_SYMLINK_NOFOLLOW : 0;
    struct stat st;
    int rc, o = -1;
    if (how == 1 && p.dirfd == AT_FDCWD)
        nofollow = AT_SYMLINK_NOFOLLOW; /* lstat */
    else if (how != 4 && how != 2 && p.dirfd == AT_FDCWD)
        nofollow = 0; /* stat */
    int kind = model_kind(p.canon, !nofollow, &o, NULL);
    if (kind != K_FILE)
        o = -1;
    if (how == 4) {
        struct statx sx = {0};
        op("statx %s 0x%x", p.show, nofollow);
        rc = statx(p.dirfd, p.use, nofollow, STATX_BASIC_STATS, &sx);
        int e = errno;
        selfcheck_kind(kind, p.canon, rc, e, sx.stx_mode);
        if (rc < 0) {
            res(-1, e);
            return;
        }
        tr(" = 0");
        print_statx(&sx, o);
        return;
    }
    if (p.dirfd != AT_FDCWD || how == 2) {
        op("fstatat %s 0x%x", p.show, nofollow);
        rc = fstatat(p.dirfd, p.use, &st, nofollow);
    } else if (nofollow) {
        op("lstat %s", p.show);
        rc = lstat(p.use, &st);
    } else {
        op("stat %s", p.show);
        rc = stat(p.use, &st);
    }
    int e = errno;
    selfcheck_kind(kind, p.canon, rc, e, rc < 0 ? 0 : st.st_mode);
    if (rc < 0) {
        res(-1, e);
        return;
    }
    tr(" = 0");
    print_stat(&st, o);
}

static void dirhandles_kill(const char *d)
{
    for (int i = 0; i < MAXH; i++)
        if (g_h[i].kind == H_DIR && (!strcmp(g_h[i].path, d) || has_prefix(g_h[i].path, d)))
            g_h[i].dead = 1;
}

static void op_unlink(struct rng *r)
{
    struct pth p;
    make_path(r, &p, chance(r, 100));
    int rc;
    int flags = (p.dirfd != AT_FDCWD && chance(r, 200)) ? AT_REMOVEDIR : 0;
    char rp[PLEN], c[PLEN];
    int o;
    canon_strip(&p, c);
    int kind = model_kind(flags ? c : p.canon, 0, &o, rp);
    if (p.dirfd != AT_FDCWD || chance(r, 200)) {
        op("unlinkat %s 0x%x", p.show, flags);
        rc = unlinkat(p.dirfd, p.use, flags);
    } else {
        op("unlink %s", p.show);
        rc = unlink(p.use);
    }
    res(rc, errno);
    if (rc == 0 && kind != K_UNKNOWN) {
        if (flags & AT_REMOVEDIR) {
            model_drop_tree(rp);
            dirhandles_kill(rp);
        } else {
            name_del(rp);
        }
    }
}

/* Move one entry (file, symlink or directory tree) in the model; `to` must be free. */
static void model_move(const char *from, const char *to)
{
    struct mname *m = name_find(from);
    if (m) {
        sfmt(m->path, PLEN, "%s", to);
        return;
    }
    if (!dir_find(from))
        return;
    model_move_tree(from, to);
    for (int i = 0; i < MAXH; i++)
        if (g_h[i].kind == H_DIR && (!strcmp(g_h[i].path, from) || has_prefix(g_h[i].path, from))) {
            char tmp[PLEN * 2];
            sfmt(tmp, sizeof tmp, "%s%s", to, g_h[i].path + strlen(from));
            sfmt(g_h[i].path, PLEN, "%s", tmp);
        }
}

static void model_rename(const char *from, const char *to, int exchange)
{
    int ofrom, oto;
    int kf = model_kind(from, 0, &ofrom, NULL);
    int kt = model_kind(to, 0, &oto, NULL);
    if (kf == K_NONE || kf == K_UNKNOWN || kt == K_UNKNOWN || !strcmp(from, to))
        return;
    if (exchange) {
        const char *tmp = "\001xchg";
        model_move(from, tmp);
        model_move(to, from);
        model_move(tmp, to);
        return;
    }
    if (kf == K_FILE && kt == K_FILE && ofrom == oto && ofrom >= 0)
        return; /* two links to one file: rename does nothing */
    if (kf == K_LINK && kt == K_LINK && name_find(from)->lnk == name_find(to)->lnk)
        return; /* two links to one symlink: the same (seed 305686565, op 30143) */
    if (kt == K_DIR) {
        dirhandles_kill(to);
        model_drop_tree(to);
    } else if (kt != K_NONE) {
        name_del(to);
    }
    model_move(from, to);
}

static void op_rename(struct rng *r)
{
    struct pth a, b;
    int dirs = chance(r, 250);
    make_path(r, &a, dirs);
    make_path(r, &b, chance(r, 500) ? dirs : !dirs);
    if (chance(r, 30))
        b = a;
    if (dirs && chance(r, 80)) {
        /* into its own subtree: EINVAL */
        sfmt(b.canon, PLEN, "%s/c", a.canon);
        sfmt(b.use, sizeof b.use, "%s/c", a.use);
        sfmt(b.show, PLEN, "%s/c", a.show);
        b.dirfd = a.dirfd;
    }
    int rc;
    unsigned flags = 0;
    if ((opt.feat & F_RENAME2) && chance(r, 150))
        flags = chance(r, 500) ? RENAME_NOREPLACE : RENAME_EXCHANGE;
    char ca[PLEN], cb[PLEN], ra[PLEN], rb[PLEN];
    canon_strip(&a, ca);
    canon_strip(&b, cb);
    int ok = model_resolve(ca, 0, ra) == 0 && model_resolve(cb, 0, rb) == 0;
    if (flags || a.dirfd != AT_FDCWD || b.dirfd != AT_FDCWD) {
        op("renameat2 %s %s %u", a.show, b.show, flags);
        rc = renameat2(a.dirfd, a.use, b.dirfd, b.use, flags);
    } else {
        op("rename %s %s", a.show, b.show);
        rc = rename(a.use, b.use);
    }
    res(rc, errno);
    if (rc == 0 && ok)
        model_rename(ra, rb, flags == RENAME_EXCHANGE);
}

static void op_mkdir(struct rng *r)
{
    static const mode_t modes[] = {0755, 0700, 0777, 0750};
    struct pth p;
    make_path(r, &p, chance(r, 900));
    mode_t m = modes[below(r, 4)];
    int rc;
    if (p.dirfd != AT_FDCWD || chance(r, 200)) {
        op("mkdirat %s %o", p.show, m);
        rc = mkdirat(p.dirfd, p.use, m);
    } else {
        op("mkdir %s %o", p.show, m);
        rc = mkdir(p.use, m);
    }
    res(rc, errno);
    char c[PLEN], rp[PLEN];
    canon_strip(&p, c);
    if (rc == 0 && model_resolve(c, 0, rp) == 0)
        dir_add(rp);
}

static void op_rmdir(struct rng *r)
{
    struct pth p;
    make_path(r, &p, chance(r, 900));
    op("rmdir %s", p.show);
    int rc = p.dirfd == AT_FDCWD ? rmdir(p.use) : unlinkat(p.dirfd, p.use, AT_REMOVEDIR);
    res(rc, errno);
    char c[PLEN], rp[PLEN];
    canon_strip(&p, c);
    if (rc == 0 && model_resolve(c, 0, rp) == 0) {
        model_drop_tree(rp);
        dirhandles_kill(rp);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *dtype_name(unsigned char t)
{
    switch (t) {
    case DT_REG: return "f";
    case DT_DIR: return "d";
    case DT_LNK: return "l";
    case DT_UNKNOWN: return "?";
    default: return "o";
    }
}

/* List a directory through opendir/readdir (or fdopendir), sorted. */
static void list_dir(DIR *d)
{
    char *names[512];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == 512)
            break;
        size_t l = strlen(de->d_name);
        names[n] = malloc(l + 3);
        sfmt(names[n], l + 3, "%s:%s", de->d_name, dtype_name(de->d_type));
        n++;
    }
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    tr(" [");
    for (int i = 0; i < n; i++) {
        tr("%s%s", i ? " " : "", names[i]);
        free(names[i]);
    }
    tr("]\n");
}

static void op_listdir(struct rng *r)
{
    struct pth p;
    make_path(r, &p, 1);
    DIR *d;
    if (p.dirfd != AT_FDCWD || chance(r, 200)) {
        op("fdopendir %s", p.show);
        int fd = openat(p.dirfd, p.use, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
            { res(-1, errno); return; }
        d = fdopendir(fd);
        if (!d) {
            int e = errno;
            close(fd);
            { res(-1, e); return; }
        }
    } else {
        op("opendir %s", p.show);
        d = opendir(p.use);
        if (!d)
            { res(-1, errno); return; }
    }
    tr(" = ok");
    list_dir(d);
    closedir(d);
}

static void op_access(struct rng *r)
{
    static const int modes[] = {F_OK, R_OK, W_OK, X_OK, R_OK | W_OK};
    struct pth p;
    make_path(r, &p, chance(r, 200));
    int m = modes[below(r, 5)];
    int rc;
    if (p.dirfd != AT_FDCWD || chance(r, 200)) {
        op("faccessat %s %d", p.show, m);
        rc = faccessat(p.dirfd, p.use, m, 0);
    } else {
        op("access %s %d", p.show, m);
        rc = access(p.use, m);
    }
    res(rc, errno);
}

static void op_fsync(struct rng *r)
{
    int h = pick_handle(r, H_ANY);
    if (h < 0)
        return;
    int data = chance(r, 500);
    op("%s h%d", data ? "fdatasync" : "fsync", h);
    RES(data ? fdatasync(g_h[h].fd) : fsync(g_h[h].fd));
}

static void op_link(struct rng *r)
{
    struct pth a, b;
    make_path(r, &a, chance(r, 50));
    make_path(r, &b, 0);
    int rc;
    if (a.dirfd != AT_FDCWD || b.dirfd != AT_FDCWD) {
        op("linkat %s %s", a.show, b.show);
        rc = linkat(a.dirfd, a.use, b.dirfd, b.use, 0);
    } else {
        op("link %s %s", a.show, b.show);
        rc = link(a.use, b.use);
    }
    res(rc, errno);
    char rb[PLEN];
    int o = -1;
    int kind = model_kind(a.canon, 0, &o, NULL);
    if (rc == 0 && kind != K_UNKNOWN && model_resolve(b.canon, 0, rb) == 0) {
        struct mname *src = NULL;
        char ra[PLEN];
        if (model_resolve(a.canon, 0, ra) == 0)
            src = name_find(ra);
        name_add(rb, o);
        if (src) {
            sfmt(name_find(rb)->target, sizeof src->target, "%s", src->target);
            name_find(rb)->lnk = src->lnk;
        }
        if (o >= 0)
            g_obj[o].nlink++;
    }
}

static void op_symlink(struct rng *r)
{
    static const char *targets[] = {"f0", "f1", "a", "../f2", "a/f3", "zz/f0", "b/c"};
    struct pth p;
    make_path(r, &p, 0);
    const char *t = targets[below(r, 7)];
    op("symlink %s -> %s", p.show, t);
    int rc = p.dirfd == AT_FDCWD ? symlink(t, p.use) : symlinkat(t, p.dirfd, p.use);
    res(rc, errno);
    char rp[PLEN];
    if (rc == 0 && model_resolve(p.canon, 0, rp) == 0) {
        name_add(rp, -2);
        sfmt(name_find(rp)->target, sizeof name_find(rp)->target, "%s", t);
        name_find(rp)->lnk = ++g_nlnk;
    }
    if (chance(r, 300)) {
        char buf[256];
        make_path(r, &p, 0);
        op("readlink %s", p.show);
        ssize_t n = p.dirfd == AT_FDCWD ? readlink(p.use, buf, sizeof buf - 1)
                                        : readlinkat(p.dirfd, p.use, buf, sizeof buf - 1);
        int e = errno;
        if (n < 0)
            { res(-1, e); return; }
        buf[n] = 0;
        tr(" = %s\n", buf);
    }
}

static void op_chmod(struct rng *r)
{
    static const mode_t modes[] = {0644, 0600, 0755, 0400, 0000, 04755, 0666};
    static const mode_t umasks[] = {022, 077, 002, 0};
    mode_t m = modes[below(r, 7)];
    int k = (int)below(r, 10);
    if (k < 2) {
        mode_t u = umasks[below(r, 4)];
        op("umask %o", u);
        tr(" = %o\n", umask(u));
        return;
    }
    if (k < 6) {
        int h = pick_handle(r, H_ANY);
        if (h < 0)
            return;
        op("fchmod h%d %o", h, m);
        RES(fchmod(g_h[h].fd, m));
        return;
    }
    struct pth p;
    make_path(r, &p, chance(r, 150));
    op("chmod %s %o", p.show, m);
    RES(p.dirfd == AT_FDCWD ? chmod(p.use, m) : fchmodat(p.dirfd, p.use, m, 0));
}

static void op_mmap(struct rng *r)
{
    int h = pick_handle(r, H_FILE);
    if (h < 0)
        return;
    int o = hobj(h);
    struct stat st;
    if (fstat(g_h[h].fd, &st) < 0)
        die("fstat failed on a live fd");
    size_t len = (size_t)st.st_size;
    if (len == 0 || len > (8u << 20))
        return;
    int wr = chance(r, 400);
    op("mmap h%d %s %zu", h, wr ? "rw" : "r", len);
    char *m = mmap(NULL, len, PROT_READ | (wr ? PROT_WRITE : 0), MAP_SHARED, g_h[h].fd, 0);
    if (m == MAP_FAILED)
        { res(-1, errno); return; }
    tr(" = ok #%016" PRIx64, fnv64(m, len, FNV_INIT));
    if (wr) {
        size_t off = below(r, (uint32_t)len), n = below(r, (uint32_t)(len - off) + 1);
        if (n > BUFMAX)
            n = BUFMAX;
        fill(r, g_buf, n);
        memcpy(m + off, g_buf, n);
        tr(" wrote %zu@%zu", n, off);
        obj_touch_maybe(o, INT64_MAX); /* mtime from a mapped write is lazy */
    }
    tr("\n");
    munmap(m, len);
    if (wr && o >= 0)
        g_obj[o].mt_hi = INT64_MAX;
}

static void op_copy(struct rng *r)
{
    int in = pick_handle(r, H_FILE), out = pick_handle(r, H_FILE);
    if (in < 0 || out < 0)
        return;
    size_t len = pick_len(r);
    int oo = hobj(out);
    struct mdesc *dout = &g_desc[g_h[out].desc], *din = &g_desc[g_h[in].desc];
    int64_t lo = now_ns(CLOCK_REALTIME_COARSE);
    ssize_t n;
    uint64_t start = dout->off; /* both calls refuse an O_APPEND target */
    int use_off = chance(r, 400), po = 0;
    loff_t off_in = pick_off(r, in), off_out = pick_off(r, out);
    int e;
    if (chance(r, 500)) {
        off_t o2 = (off_t)off_in;
        /* sendfile within one file over overlapping ranges reads bytes it has
         * just written, in the file system's own chunks: tmpfs and ext4 give
         * different bytes, so no trace of it is canonical (an evicted file is
         * on ext4).  copy_file_range refuses the case with EINVAL everywhere. */
        uint64_t src = use_off ? (uint64_t)off_in : din->off;
        if (hobj(in) >= 0 && hobj(in) == oo && src < start + len && start < src + len)
            return;
        op("sendfile h%d h%d %zu", out, in, len);
        if (use_off)
            tr(" @%ld", (long)off_in);
        n = sendfile(g_h[out].fd, g_h[in].fd, use_off ? &o2 : NULL, len);
        e = errno;
        if (n >= 0 && use_off)
            tr(" off=%ld", (long)o2);
    } else {
        po = chance(r, 400);
        op("copy_file_range h%d h%d %zu (%ld,%ld)", in, out, len, use_off ? (long)off_in : -1L,
           po ? (long)off_out : -1L);
        if (po)
            start = (uint64_t)off_out;
        n = copy_file_range(g_h[in].fd, use_off ? &off_in : NULL, g_h[out].fd, po ? &off_out : NULL,
                            len, 0);
        e = errno;
        if (n >= 0 && (use_off || po))
            tr(" offs=%ld,%ld", (long)off_in, (long)off_out);
    }
    int64_t hi = now_ns(CLOCK_REALTIME);
    res(n, e);
    if (n > 0) {
        if (!use_off)
            din->off += (uint64_t)n;
        if (!po)
            dout->off = start + (uint64_t)n;
    }
    if (n >= 0)
        obj_write(oo, start, (uint64_t)n, lo, hi);
}

static void op_falloc(struct rng *r)
{
    int h = pick_handle(r, H_FILE);
    if (h < 0)
        return;
    off_t off = pick_off(r, h), len = (off_t)below(r, 100000);
    if (chance(r, 30))
        len = 0;
    op("posix_fallocate h%d %ld %ld", h, (long)off, (long)len);
    int64_t lo = now_ns(CLOCK_REALTIME_COARSE);
    int rc = posix_fallocate(g_h[h].fd, off, len);
    int64_t hi = now_ns(CLOCK_REALTIME);
    if (rc)
        tr(" = %s\n", en(rc));
    else
        tr(" = 0\n");
    int o = hobj(h);
    if (rc == 0 && o >= 0) {
        if ((uint64_t)(off + len) > g_obj[o].size)
            obj_write(o, g_obj[o].size, (uint64_t)(off + len) - g_obj[o].size, lo, hi);
        g_obj[o].sparse = 1; /* allocated blocks beyond what was written */
        obj_touch_maybe(o, hi);
    }
}

/* Streams a failed freopen left closed but allocated; kept reachable for the leak checker. */
FILE *g_dead_streams[4096];
static int g_ndead;

static void op_stdio(struct rng *r)
{
    static const char *modes[] = {"r", "w", "a", "r+", "w+", "a+", "wx", "re"};
    struct pth p;
    make_path(r, &p, 0);
    if (p.dirfd != AT_FDCWD)
        return;
    const char *m = modes[below(r, 8)];
    int how = (int)below(r, 10); /* 0-5 fopen, 6-7 open+fdopen, 8-9 freopen */
    static const char *hown[] = {"fopen", "fopen", "fopen", "fopen", "fopen", "fopen", "fdopen", "fdopen", "freopen", "freopen"};
    op("%s %s %s", hown[how], p.show, m);
    int o = -1;
    char rp[PLEN];
    int kind = model_kind(p.canon, 1, &o, rp);
    int64_t lo = now_ns(CLOCK_REALTIME_COARSE);
    FILE *f;
    if (how < 6) {
        f = fopen(p.use, m);
    } else if (how < 8) {
        /* the open(2) flags fopen would use, then a stream on the fd */
        int fl = m[0] == 'r' ? O_RDONLY : O_WRONLY | O_CREAT | (m[0] == 'w' ? O_TRUNC : O_APPEND);
        if (m[1] == '+')
            fl = (fl & ~O_ACCMODE) | O_RDWR;
        if (m[1] == 'x')
            fl |= O_EXCL;
        if (m[1] == 'e')
            fl |= O_CLOEXEC;
        int fd = open(p.use, fl, 0666);
        if (fd < 0) {
            res(-1, errno);
            return;
        }
        char fm[4] = {m[0], m[1] == '+' ? '+' : 0, 0, 0};
        f = fdopen(fd, fm);
        if (!f) {
            int e = errno;
            close(fd);
            res(-1, e);
            return;
        }
    } else {
        FILE *old = fopen("/dev/null", "r");
        if (!old)
            die("fopen /dev/null: %s", strerror(errno));
        f = freopen(p.use, m, old);
        if (!f && g_ndead < 4096)
            g_dead_streams[g_ndead++] = old; /* glibc closed it but cannot free it */
    }
    if (!f) {
        res(-1, errno);
        return;
    }
    tr(" = ok");
    if (kind == K_NONE && m[0] != 'r') {
        o = obj_new(lo, now_ns(CLOCK_REALTIME));
        name_add(rp, o);
    } else if (kind != K_FILE) {
        o = -1;
    }
    if (m[0] == 'w' && o >= 0)
        obj_truncate(o, 0, lo, now_ns(CLOCK_REALTIME));
    if (m[0] != 'r' || m[1] == '+') {
        size_t len = pick_len(r);
        fill(r, g_buf, len);
        if (m[0] == 'r' && chance(r, 500))
            fseek(f, (long)below(r, 5000), SEEK_SET);
        long pos = ftell(f);
        size_t n = fwrite(g_buf, 1, len, f);
        tr(" fwrite=%zu@%ld", n, pos);
        uint64_t start = m[0] == 'a' && o >= 0 ? g_obj[o].size : (uint64_t)(pos < 0 ? 0 : pos);
        if (fflush(f) != 0)
            tr(" fflush=%s", en(errno));
        obj_write(o, start, n, lo, now_ns(CLOCK_REALTIME));
        if (m[1] == '+')
            rewind(f);
    }
    if (m[0] == 'r' || m[1] == '+') {
        size_t n = fread(g_buf, 1, 200000, f);
        tr(" fread=%zu", n);
        print_data((ssize_t)n);
    }
    int rc = fclose(f);
    tr(" fclose=%d\n", rc);
}

static void op_times(struct rng *r)
{
    /* whole seconds in 2001: far from "now", so a lost update cannot pass for a fresh one */
    struct timespec ts[2];
    int64_t want = 1000000000LL + (int64_t)below(r, 1000000) * 1000000000LL + below(r, 1000000000);
    ts[0].tv_sec = 1000000000 + (time_t)below(r, 1000000);
    ts[0].tv_nsec = (long)below(r, 1000000000);
    ts[1].tv_sec = (time_t)(want / 1000000000);
    ts[1].tv_nsec = (long)(want % 1000000000);
    int k = (int)below(r, 10);
    if (k == 0)
        ts[1].tv_nsec = UTIME_NOW;
    else if (k == 1)
        ts[1].tv_nsec = UTIME_OMIT;
    const char *what = k == 0 ? "now" : k == 1 ? "omit" : "set";
    int64_t lo = now_ns(CLOCK_REALTIME_COARSE);
    int rc, o = -1;
    if (chance(r, 500)) {
        int h = pick_handle(r, H_ANY);
        if (h < 0)
            return;
        o = hobj(h);
        op("futimens h%d %s", h, what);
        rc = futimens(g_h[h].fd, ts);
    } else {
        struct pth p;
        make_path(r, &p, chance(r, 150));
        int fl = chance(r, 300) ? AT_SYMLINK_NOFOLLOW : 0;
        if (model_kind(p.canon, !fl, &o, NULL) != K_FILE)
            o = -1;
        op("utimensat %s 0x%x %s", p.show, fl, what);
        rc = utimensat(p.dirfd, p.use, ts, fl);
    }
    int e = errno;
    int64_t hi = now_ns(CLOCK_REALTIME);
    res(rc, e);
    if (rc == 0 && o >= 0) {
        if (k == 0)
            obj_touch_sure(o, lo, hi);
        else if (k > 1)
            obj_touch_sure(o, want, want);
    }
}

static void op_ioctl(struct rng *r)
{
    int h = pick_handle(r, H_ANY);
    if (h < 0)
        return;
    if (chance(r, 400)) {
        op("isatty h%d", h);
        errno = 0;
        int t = isatty(g_h[h].fd);
        int e = errno;
        tr(" = %d %s\n", t, t ? "" : en(e));
        return;
    }
    /* bytes between the offset and the end, from the kernel's answer or the shim's */
    int n = -1;
    op("ioctl h%d FIONREAD", h);
    int rc = ioctl(g_h[h].fd, FIONREAD, &n);
    int e = errno;
    if (rc < 0)
        res(-1, e);
    else
        tr(" = %d n=%d\n", rc, n);
}

static void op_readall(struct rng *r)
{
    int h = pick_handle(r, H_FILE);
    if (h < 0)
        return;
    /* the whole file via pread, the strongest content check */
    op("readall h%d", h);
    uint64_t hsh = FNV_INIT;
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(g_h[h].fd, g_buf, BUFMAX, off);
        if (n < 0) {
            res(-1, errno);
            return;
        }
        if (n == 0)
            break;
        hsh = fnv64(g_buf, (size_t)n, hsh);
        off += n;
        if (off > (64 << 20))
            break;
    }
    tr(" = %ld #%016" PRIx64 "\n", (long)off, hsh);
}

/* ---------------------------------------------------------------- tree */

static void walk(const char *rel, int depth)
{
    char *names[512];
    int n = 0;
    DIR *d = opendir(*rel ? rel : ".");
    if (!d) {
        tr("%s? opendir %s = %s\n", g_tag, rel, en(errno));
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) && n < 512) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    for (int i = 0; i < n; i++) {
        char p[PATH_MAX];
        sfmt(p, sizeof p, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        free(names[i]);
        struct stat st;
        if (lstat(p, &st) < 0) {
            tr("? %s lstat %s\n", p, en(errno));
            continue;
        }
        if (g_owners)
            tr("O %s %u:%u\n", p, (unsigned)st.st_uid, (unsigned)st.st_gid);
        if (S_ISDIR(st.st_mode)) {
            tr("D %s %o nlink=%lu\n", p, st.st_mode, (unsigned long)st.st_nlink);
            if (depth < 8)
                walk(p, depth + 1);
        } else if (S_ISLNK(st.st_mode)) {
            char t[PATH_MAX];
            ssize_t k = readlink(p, t, sizeof t - 1);
            t[k < 0 ? 0 : k] = 0;
            tr("L %s -> %s\n", p, t);
        } else {
            int fd = open(p, O_RDONLY | O_NOFOLLOW);
            uint64_t h = FNV_INIT;
            long total = 0;
            if (fd < 0) {
                tr("F %s open=%s\n", p, en(errno));
                continue;
            }
            ssize_t k;
            while ((k = read(fd, g_buf, BUFMAX)) > 0) {
                h = fnv64(g_buf, (size_t)k, h);
                total += k;
            }
            if (k < 0)
                tr("F %s read=%s\n", p, en(errno));
            close(fd);
            tr("F %s %o size=%ld nlink=%lu read=%ld #%016" PRIx64 "\n", p, st.st_mode,
               (long)st.st_size, (unsigned long)st.st_nlink, total, h);
        }
    }
}

/* ---------------------------------------------------------------- driver */

struct weights {
    int w;
    void (*fn)(struct rng *);
    unsigned need;
};

static void w_open(struct rng *r) { op_open(r, 0); }
static void w_creat(struct rng *r) { op_open(r, 1); }
static void w_read(struct rng *r) { op_read(r, 0); }
static void w_pread(struct rng *r) { op_read(r, 1); }
static void w_readv(struct rng *r) { op_read(r, 2); }
static void w_write(struct rng *r) { op_write(r, 0); }
static void w_pwrite(struct rng *r) { op_write(r, 1); }
static void w_writev(struct rng *r) { op_write(r, 2); }
static void w_ftrunc(struct rng *r) { op_ftruncate(r, 0); }
static void w_trunc(struct rng *r) { op_ftruncate(r, 1); }
static void w_dup(struct rng *r) { op_dup(r, 0); }
static void w_dup2(struct rng *r) { op_dup(r, 1); }
static void w_tick(struct rng *r)
{
    /* let the coarse clock move so mtime windows can tell "changed" from "not changed" */
    (void)r;
    struct timespec ts = {0, 6 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static const struct weights g_ops[] = {
    {140, w_open, 0},       {10, w_creat, 0},     {70, op_close, 0},   {80, w_read, 0},
    {40, w_pread, 0},       {20, w_readv, 0},     {100, w_write, 0},   {45, w_pwrite, 0},
    {20, w_writev, 0},      {50, op_lseek, 0},    {25, w_ftrunc, 0},   {15, w_trunc, 0},
    {15, w_dup, 0},         {15, w_dup2, 0},      {20, op_fcntl, 0},   {40, op_fstat, 0},
    {40, op_stat, 0},       {35, op_unlink, 0},   {35, op_rename, 0},  {30, op_mkdir, 0},
    {20, op_rmdir, 0},      {15, op_listdir, 0},  {15, op_access, 0},  {8, op_fsync, 0},
    {15, op_readall, 0},    {8, op_link, F_LINK}, {8, op_symlink, F_SYMLINK},
    {10, op_chmod, F_CHMOD}, {8, op_mmap, F_MMAP}, {12, op_copy, F_COPY},
    {6, op_falloc, F_FALLOC}, {12, op_stdio, F_STDIO}, {2, w_tick, 0},
    {8, op_times, F_TIMES}, {6, op_ioctl, F_IOCTL},
};
#define NOPS (sizeof g_ops / sizeof g_ops[0])

/* Debugging aid: makes a divergence show at the operation that caused it. */
static void paranoid_dump(void)
{
    for (int i = 0; i < MAXH; i++) {
        if (g_h[i].kind != H_FILE)
            continue;
        struct stat st;
        off_t off = lseek(g_h[i].fd, 0, SEEK_CUR);
        int rc = fstat(g_h[i].fd, &st);
        tr("%s  . h%d off=%ld size=%ld\n", g_tag, i, (long)off, rc == 0 ? (long)st.st_size : -1L);
    }
}

static void run_sequence(struct rng *r, long n)
{
    int total = 0;
    for (size_t i = 0; i < NOPS; i++)
        if ((g_ops[i].need & opt.feat) == g_ops[i].need)
            total += g_ops[i].w;
    for (long k = 0; k < n; k++) {
        int x = (int)below(r, (uint32_t)total);
        for (size_t i = 0; i < NOPS; i++) {
            if ((g_ops[i].need & opt.feat) != g_ops[i].need)
                continue;
            if (x < g_ops[i].w) {
                g_opno++;
                g_ops[i].fn(r);
                if (opt.paranoid && g_opno >= opt.paranoid)
                    paranoid_dump();
                break;
            }
            x -= g_ops[i].w;
        }
    }
}

static void close_all(void)
{
    for (int i = 0; i < MAXH; i++)
        if (g_h[i].kind != H_FREE) {
            close(g_h[i].fd);
            handle_forget(i);
        }
}

static void reset_model(void)
{
    g_nobj = 0;
    g_nnames = 0;
    g_ndirs = 0;
    memset(g_desc, 0, sizeof g_desc);
    for (int i = 0; i < MAXH; i++) {
        g_h[i].kind = H_FREE;
        g_h[i].fd = -1;
    }
}

static void header(void)
{
    tr("# difftest mode=%s seed=%" PRIu64 " ops=%ld procs=%d loose=%d features=", opt.mode, opt.seed,
       opt.ops, opt.procs, opt.loose);
    int first = 1;
    for (size_t i = 0; i < NFEATURES; i++)
        if (opt.feat & g_features[i].bit) {
            tr("%s%s", first ? "" : ",", g_features[i].name);
            first = 0;
        }
    tr("\n");
}

static void mode_single(void)
{
    struct rng r = {opt.seed};
    if (mkdir("w", 0755) < 0)
        die("mkdir w: %s", strerror(errno));
    dir_add("w");
    run_sequence(&r, opt.ops);
    close_all();
}

/*
 * multi: children run at once.  Each owns p<i>/ and also hits three shared
 * files whose final state does not depend on the interleaving:
 *   shared/rec   one description inherited from the parent: 64-byte records
 *                through the shared offset must neither overlap nor get lost;
 *   shared/app   each child's own O_APPEND description: same property;
 *   shared/grid  each child pwrites its own disjoint region.
 */
#define REC 64
#define GRID_REGION 40000

static void make_record(char *rec, int child, long seq)
{
    memset(rec, '.', REC);
    int k = sfmt(rec, REC, "child %d record %ld", child, seq);
    rec[k] = ' ';
    rec[REC - 1] = '\n';
}

static int cmp_rec(const void *a, const void *b)
{
    return memcmp(a, b, REC);
}

static void check_records(const char *name, int nchild, long per_child)
{
    int fd = open(name, O_RDONLY);
    if (fd < 0) {
        tr("check %s open = %s\n", name, en(errno));
        return;
    }
    size_t len;
    char *p = read_fd_all(fd, &len);
    close(fd);
    long expect = nchild * per_child;
    tr("check %s size=%zu expect=%ld", name, len, expect * REC);
    if (len % REC == 0) {
        qsort(p, len / REC, REC, cmp_rec);
        char *want = malloc((size_t)expect * REC);
        long k = 0;
        for (int c = 0; c < nchild; c++)
            for (long s = 0; s < per_child; s++)
                make_record(want + (k++) * REC, c, s);
        qsort(want, (size_t)expect, REC, cmp_rec);
        tr(" records=%s", len == (size_t)expect * REC && !memcmp(p, want, len) ? "ok" : "MISMATCH");
        free(want);
        /* put the records in order so the final tree does not depend on the interleaving */
        fd = open(name, O_WRONLY | O_TRUNC);
        if (fd >= 0) {
            write_all(fd, p, len);
            close(fd);
        }
    }
    tr(" #%016" PRIx64 "\n", fnv64(p, len, FNV_INIT));
    free(p);
}

/* A child whose trace comes back through pf[0] (the child has only pf[1]). */
static pid_t fork_traced(int pf[2])
{
    if (pipe(pf) < 0)
        die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0)
        close(pf[0]);
    return pid;
}

static void mode_multi(void)
{
    int nproc = opt.procs;
    long per = opt.ops / nproc;
    long nrec = per / 50 + 1;
    mkdir("shared", 0755);
    int rec = open("shared/rec", O_RDWR | O_CREAT | O_TRUNC, 0644);
    int app = open("shared/app", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int grid = open("shared/grid", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (rec < 0 || app < 0 || grid < 0)
        die("creating shared files: %s", strerror(errno));
    close(app);
    close(grid);
    tr("multi procs=%d per=%ld records=%ld\n", nproc, per, nrec);
    int pipes[64];
    pid_t pids[64];
    for (int c = 0; c < nproc; c++) {
        int pf[2];
        pid_t pid = fork_traced(pf);
        if (pid == 0) {
            for (int j = 0; j < c; j++)
                close(pipes[j]);
            T.n = 0;
            static char tag[16], base[16];
            sfmt(tag, sizeof tag, "c%d:", c);
            sfmt(base, sizeof base, "p%d/w/", c);
            g_tag = tag;
            g_base = base;
            g_ninos = 0;
            reset_model();
            struct rng r = {opt.seed * 1000003u + (uint64_t)c};
            char dir[16];
            sfmt(dir, sizeof dir, "p%d", c);
            op("mkdir %s", dir);
            RES(mkdir(dir, 0755));
            dir_add(dir);
            sfmt(dir, sizeof dir, "p%d/w", c);
            op("mkdir %s", dir);
            RES(mkdir(dir, 0755));
            dir_add(dir);
            int myapp = open("shared/app", O_WRONLY | O_APPEND);
            int mygrid = open("shared/grid", O_RDWR);
            if (myapp < 0 || mygrid < 0)
                die("child %d opening shared files: %s", c, strerror(errno));
            long done = 0, seq = 0;
            char recbuf[REC];
            struct rng gr = {opt.seed ^ (0xabcdefull * (uint64_t)(c + 1))};
            while (done < per) {
                long chunk = per - done < 50 ? per - done : 50;
                run_sequence(&r, chunk);
                done += chunk;
                if (seq < nrec) {
                    make_record(recbuf, c, seq);
                    ssize_t a = write(rec, recbuf, REC);
                    ssize_t b = write(myapp, recbuf, REC);
                    size_t glen = 1 + below(&gr, 4000);
                    off_t goff = (off_t)below(&gr, GRID_REGION - (uint32_t)glen);
                    fill(&gr, g_buf, glen);
                    ssize_t g = pwrite(mygrid, g_buf, glen, (off_t)c * GRID_REGION + goff);
                    tr("%sshared %ld rec=%zd app=%zd grid=%zd\n", g_tag, seq, a, b, g);
                    seq++;
                }
            }
            while (seq < nrec) {
                make_record(recbuf, c, seq);
                ssize_t a = write(rec, recbuf, REC), b = write(myapp, recbuf, REC);
                tr("%sshared %ld rec=%zd app=%zd\n", g_tag, seq, a, b);
                seq++;
            }
            close_all();
            close(myapp);
            close(mygrid);
            close(rec);
            flush_trace(pf[1]);
            close(pf[1]);
            _exit(0);
        }
        close(pf[1]);
        pipes[c] = pf[0];
        pids[c] = pid;
    }
    for (int c = 0; c < nproc; c++) {
        size_t len;
        char *p = read_fd_all(pipes[c], &len);
        close(pipes[c]);
        tr("%.*s", (int)len, p);
        free(p);
        int st;
        waitpid(pids[c], &st, 0);
        tr("child %d exit=%d\n", c, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    tr("rec offset=%ld\n", (long)lseek(rec, 0, SEEK_CUR));
    close(rec);
    check_records("shared/rec", nproc, nrec);
    check_records("shared/app", nproc, nrec);
    g_tag = "";
}

/*
 * users: strict turns, each a forked child that becomes root or one of two
 * unprivileged users and runs a chunk of the sequence under w/.  The tree
 * has a 0777 directory, a sticky 1777 one, a sticky one owned by user 2 and a
 * 0755 one owned by root, so unlink, rename, open, chmod, truncate and times
 * meet the kernel's permission rules (sticky deletion, set-id clearing, owner
 * checks).  A turn cannot hand its model back, so each starts from a scan
 * of the whole test directory: a symlink such as w/f0 -> ../f2 lets a turn
 * create files beside w/, and a scan of w/ alone left the next turns
 * believing them absent - an open of one then took the file for a new one,
 * and the mtime verdict of a file from an earlier turn depended on whether
 * that turn had written it within the same clock tick (seeds 774409167 and
 * 138495297 differed between tmpfs and the shim only by that timing).
 */
#define USER1 1000
#define USER2 1001
#define NTURN_OPS 40

/* rel "" is the test directory itself (its entries are named without a prefix). */
static void scan_model(const char *rel, int depth)
{
    DIR *d = opendir(*rel ? rel : ".");
    if (!d) {
        /* the turn's user may not list it (seed 7919000: turn 199 could not see into a/, then took
         * a/f2 for a new file, its mtime window starting at the open): its entries are unknown */
        dir_mark_opaque(rel);
        return;
    }
    struct dirent *de;
    char *names[256];
    int n = 0;
    while ((de = readdir(d)) && n < 256)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            names[n++] = strdup(de->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str); /* the model's order must not be the directory's */
    for (int i = 0; i < n; i++) {
        char p[PLEN];
        struct stat st;
        sfmt(p, sizeof p, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        free(names[i]);
        if (lstat(p, &st) < 0) {
            dir_mark_opaque(rel); /* listed but not searchable: an entry unknown */
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            dir_add(p);
            if (depth < 7)
                scan_model(p, depth + 1);
            else
                dir_mark_opaque(p);
        } else if (S_ISLNK(st.st_mode)) {
            char t[64];
            ssize_t k = readlink(p, t, sizeof t - 1);
            t[k < 0 ? 0 : k] = 0;
            name_add(p, -2);
            struct mname *m = name_find(p);
            if (m) {
                sfmt(m->target, sizeof m->target, "%s", t);
                m->lnk = -1 - (long)st.st_ino; /* apart from op_symlink's numbers */
            }
        } else {
            name_add(p, -1);
        }
    }
}

static void mode_users(void)
{
    if (geteuid() != 0)
        die("--mode users needs root (it switches to uids %d and %d)", USER1, USER2);
    g_owners = 1;
    /* the other users must reach the test directory: every ancestor searchable */
    if (chmod(".", 0755) < 0)
        die("chmod %s: %s", opt.dir, strerror(errno));
    struct {
        const char *p;
        mode_t mode;
        uid_t uid;
    } dirs[] = {{"w", 0777, 0}, {"w/s", 01777, 0}, {"w/u", 01777, USER2}, {"w/r", 0755, 0}, {"w/m", 0755, USER1}};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        op("mkdir %s %o uid=%d", dirs[i].p, dirs[i].mode, (int)dirs[i].uid);
        RES(mkdir(dirs[i].p, 0755));
        if (chmod(dirs[i].p, dirs[i].mode) < 0 || chown(dirs[i].p, dirs[i].uid, dirs[i].uid) < 0)
            die("setting up %s: %s", dirs[i].p, strerror(errno));
    }
    static const uid_t uids[] = {0, USER1, USER2};
    struct rng turns = {opt.seed ^ 0x5eedull};
    long nturns = (opt.ops + NTURN_OPS - 1) / NTURN_OPS;
    for (long t = 0; t < nturns; t++) {
        uid_t uid = uids[below(&turns, 3)];
        int pf[2];
        pid_t pid = fork_traced(pf);
        if (pid == 0) {
            T.n = 0;
            if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
                die("turn %ld: becoming uid %d: %s", t, (int)uid, strerror(errno));
            static char tag[24];
            sfmt(tag, sizeof tag, "t%ld/u%d:", t, (int)uid);
            g_tag = tag;
            g_ninos = 0;
            reset_model();
            scan_model("", 0);
            struct rng r = {opt.seed * 1000003u + (uint64_t)t};
            run_sequence(&r, NTURN_OPS);
            close_all();
            flush_trace(pf[1]);
            _exit(0);
        }
        close(pf[1]);
        size_t len;
        char *p = read_fd_all(pf[0], &len);
        close(pf[0]);
        tr("%.*s", (int)len, p);
        free(p);
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            tr("turn %ld exit=%d\n", t, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    g_tag = "";
}

/*
 * fork: a parent and a child (and exec'd helpers) take strict turns on one
 * inherited description, so every offset the other side left behind is
 * visible and the trace stays deterministic.
 */
static void turn_ops(struct rng *r, int fd, const char *who, int nops)
{
    tr("%s turn off=%ld fl=0x%x\n", who, (long)lseek(fd, 0, SEEK_CUR), fcntl(fd, F_GETFL));
    for (int i = 0; i < nops; i++) {
        int k = (int)below(r, 100);
        g_opno++;
        if (k < 40) {
            size_t len = pick_len(r) % 20000;
            fill(r, g_buf, len);
            op("%s write %zu", who, len);
            RES(write(fd, g_buf, len));
        } else if (k < 55) {
            size_t len = pick_len(r);
            op("%s read %zu", who, len);
            ssize_t n = read(fd, g_buf, len);
            res(n, errno);
            if (n >= 0) {
                T.n--;
                print_data(n);
                tr("\n");
            }
        } else if (k < 70) {
            off_t off = (off_t)below(r, 30000) - 10000;
            int wh = (int)below(r, 3);
            op("%s lseek %ld %d", who, (long)off, wh);
            RES(lseek(fd, off, wh == 0 ? SEEK_SET : wh == 1 ? SEEK_CUR : SEEK_END));
        } else if (k < 78) {
            struct stat st;
            op("%s fstat", who);
            if (fstat(fd, &st) < 0)
                res(-1, errno);
            else
                tr(" = size %ld nlink %lu\n", (long)st.st_size, (unsigned long)st.st_nlink);
        } else if (k < 83) {
            off_t len = (off_t)below(r, 60000);
            op("%s ftruncate %ld", who, (long)len);
            RES(ftruncate(fd, len));
        } else if (k < 88) {
            int fl = fcntl(fd, F_GETFL);
            fl = chance(r, 500) ? fl | O_APPEND : fl & ~O_APPEND;
            op("%s setfl 0x%x", who, fl);
            RES(fcntl(fd, F_SETFL, fl));
        } else if (k < 93) {
            size_t len = pick_len(r);
            off_t off = (off_t)below(r, 70000);
            op("%s pread %zu @%ld", who, len, (long)off);
            ssize_t n = pread(fd, g_buf, len, off);
            res(n, errno);
            if (n >= 0) {
                T.n--;
                print_data(n);
                tr("\n");
            }
        } else {
            op("%s readall", who);
            uint64_t h = FNV_INIT;
            off_t off = 0;
            ssize_t n;
            while ((n = pread(fd, g_buf, BUFMAX, off)) > 0) {
                h = fnv64(g_buf, (size_t)n, h);
                off += n;
            }
            tr(" = %ld #%016" PRIx64 "\n", (long)off, h);
        }
    }
}

static void send_token(int fd, const char *p, size_t n)
{
    uint64_t len = n;
    write_all(fd, (const char *)&len, sizeof len);
    write_all(fd, p, n);
}

static char *recv_token(int fd, size_t *n)
{
    uint64_t len;
    size_t got = 0;
    while (got < sizeof len) {
        ssize_t k = read(fd, (char *)&len + got, sizeof len - got);
        if (k <= 0)
            return NULL;
        got += (size_t)k;
    }
    char *p = malloc(len + 1);
    got = 0;
    while (got < len) {
        ssize_t k = read(fd, p + got, len - got);
        if (k <= 0)
            die("short token");
        got += (size_t)k;
    }
    *n = len;
    return p;
}

/* Run an exec'd helper that takes a turn on fd (fd is inherited across exec). */
static void helper_turn(struct rng *r, int fd, int how)
{
    int pf[2];
    if (pipe(pf) < 0)
        die("pipe: %s", strerror(errno));
    char sfd[16], sseed[32], sops[16], sopno[32];
    sfmt(sfd, sizeof sfd, "%d", fd);
    sfmt(sseed, sizeof sseed, "%" PRIu64, rng_next(r));
    sfmt(sops, sizeof sops, "%u", 3 + below(r, 10));
    sfmt(sopno, sizeof sopno, "%ld", g_opno);
    char *argv[] = {opt.self_exe, "--helper", sfd, sseed, sops, sopno, NULL};
    static const char *hows[] = {"fork+execv", "posix_spawn", "vfork+execve"};
    tr("helper via %s\n", hows[how]);
    pid_t pid;
    fflush(NULL);
    if (how == 1) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pf[1], 1);
        posix_spawn_file_actions_addclose(&fa, pf[0]);
        int rc = posix_spawn(&pid, opt.self_exe, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc)
            die("posix_spawn: %s", strerror(rc));
    } else if (how == 0) {
        pid = fork();
        if (pid == 0) {
            dup2(pf[1], 1);
            close(pf[0]);
            execv(opt.self_exe, argv);
            _exit(127);
        }
    } else {
        pid = vfork();
        if (pid == 0) {
            dup2(pf[1], 1);
            execve(opt.self_exe, argv, environ);
            _exit(127);
        }
    }
    if (pid < 0)
        die("spawning the helper: %s", strerror(errno));
    close(pf[1]);
    size_t len;
    char *p = read_fd_all(pf[0], &len);
    close(pf[0]);
    int st;
    waitpid(pid, &st, 0);
    tr("%.*s", (int)len, p);
    tr("helper exit=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    free(p);
    g_opno += 100;
}

static void mode_fork(void)
{
    long rounds = opt.ops / 12 + 1;
    struct rng r = {opt.seed};
    mkdir("fk", 0755);
    int round = 0;
    long done = 0;
    int file_no = 0;
    while (done < rounds) {
        char name[32];
        sfmt(name, sizeof name, "fk/file%d", file_no++);
        int fl = O_RDWR | O_CREAT | (chance(&r, 300) ? O_APPEND : 0);
        int fd = open(name, fl, 0644);
        if (fd < 0)
            die("open %s: %s", name, strerror(errno));
        tr("file %s fl=0x%x\n", name, fl);
        int to_child[2], to_parent[2];
        if (pipe(to_child) < 0 || pipe(to_parent) < 0)
            die("pipe: %s", strerror(errno));
        long batch = rounds - done < 60 ? rounds - done : 60;
        uint64_t child_seed = rng_next(&r);
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            close(to_child[1]);
            close(to_parent[0]);
            struct rng cr = {child_seed};
            for (;;) {
                size_t n;
                char *tok = recv_token(to_child[0], &n);
                if (!tok)
                    break;
                free(tok);
                T.n = 0;
                if (chance(&cr, 200))
                    helper_turn(&cr, fd, (int)below(&cr, 3));
                else
                    turn_ops(&cr, fd, "child", 1 + (int)below(&cr, 8));
                send_token(to_parent[1], T.p ? T.p : "", T.n);
            }
            close(fd);
            _exit(0);
        }
        close(to_child[0]);
        close(to_parent[1]);
        for (long i = 0; i < batch; i++, round++) {
            turn_ops(&r, fd, "parent", 1 + (int)below(&r, 8));
            send_token(to_child[1], "", 0);
            size_t n;
            char *tok = recv_token(to_parent[0], &n);
            if (!tok)
                die("child died in round %d", round);
            tr("%.*s", (int)n, tok);
            free(tok);
        }
        done += batch;
        close(to_child[1]);
        int st;
        waitpid(pid, &st, 0);
        close(to_parent[0]);
        tr("child exit=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        /* the child closed its copy; ours still works */
        turn_ops(&r, fd, "after", 3);
        close(fd);
    }
}

static int helper_main(int argc, char **argv)
{
    if (argc < 6)
        die("--helper FD SEED OPS OPNO");
    int fd = atoi(argv[2]);
    struct rng r = {strtoull(argv[3], NULL, 10)};
    int n = atoi(argv[4]);
    g_opno = atol(argv[5]);
    g_buf = malloc(BUFMAX);
    turn_ops(&r, fd, "helper", n);
    flush_trace(1);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: difftest --dir DIR [--seed N] [--ops N] [--mode single|multi|fork|users]\n"
            "                [--procs N] [--loose] [--features LIST] [--without LIST] [--as-given]\n"
            "       difftest --scan DIR      print only the final-tree listing of DIR\n"
            "features (comma separated, 'all' = default set):");
    for (size_t i = 0; i < NFEATURES; i++)
        fprintf(stderr, " %s", g_features[i].name);
    fprintf(stderr, "\n");
    exit(2);
}

static unsigned parse_features(const char *s)
{
    unsigned f = 0;
    char buf[512];
    sfmt(buf, sizeof buf, "%s", s);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        if (!strcmp(t, "all")) {
            f |= ~(unsigned)F_SEEKHOLE & ((1u << NFEATURES) - 1);
            continue;
        }
        if (!strcmp(t, "none"))
            continue;
        size_t i;
        for (i = 0; i < NFEATURES; i++)
            if (!strcmp(t, g_features[i].name))
                break;
        if (i == NFEATURES) {
            fprintf(stderr, "difftest: unknown feature '%s'\n", t);
            usage();
        }
        f |= g_features[i].bit;
    }
    return f;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--helper"))
        return helper_main(argc, argv);
    opt.seed = 1;
    opt.ops = 10000;
    opt.procs = 3;
    opt.mode = "single";
    opt.feat = parse_features("all");
    unsigned without = 0;
    const char *scan = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--loose")) {
            opt.loose = 1;
            continue;
        }
        if (!strcmp(a, "--as-given")) {
            opt.as_given = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--dir"))
            opt.dir = v;
        else if (!strcmp(a, "--scan"))
            scan = v;
        else if (!strcmp(a, "--seed"))
            opt.seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--ops"))
            opt.ops = atol(v);
        else if (!strcmp(a, "--procs"))
            opt.procs = atoi(v);
        else if (!strcmp(a, "--mode"))
            opt.mode = v;
        else if (!strcmp(a, "--features"))
            opt.feat = parse_features(v);
        else if (!strcmp(a, "--without"))
            without |= parse_features(v);
        else
            usage();
    }
    opt.feat &= ~without;
    if (opt.procs < 1 || opt.procs > 64)
        die("--procs must be 1..64");
    opt.selfcheck = getenv("DIFFTEST_SELFCHECK") != NULL;
    /* DIFFTEST_PARANOID=N: from operation N on (a dump perturbs the shim's state less when late) */
    opt.paranoid = getenv("DIFFTEST_PARANOID") ? atoi(getenv("DIFFTEST_PARANOID")) : 0;
    g_buf = malloc(BUFMAX);
    if (!g_buf)
        die("out of memory");
    ssize_t k = readlink("/proc/self/exe", opt.self_exe, sizeof opt.self_exe - 1);
    if (k < 0)
        die("readlink /proc/self/exe: %s", strerror(errno));
    opt.self_exe[k] = 0;

    if (scan) {
        if (chdir(scan) < 0)
            die("chdir %s: %s", scan, strerror(errno));
        walk("", 0);
        flush_trace(1);
        return 0;
    }
    if (!opt.dir)
        usage();
    if (chdir(opt.dir) < 0)
        die("chdir %s: %s", opt.dir, strerror(errno));
    if (!getcwd(opt.dir_abs, sizeof opt.dir_abs))
        die("getcwd: %s", strerror(errno));
    /* a root reached through a symlink: the relative names take the kernel's (canonical) cwd, the
     * absolute ones this spelling, so both name the same entries in one sequence */
    if (opt.as_given) {
        if (opt.dir[0] != '/')
            die("--as-given needs an absolute --dir, not %s", opt.dir);
        sfmt(opt.dir_abs, sizeof opt.dir_abs, "%s", opt.dir);
    }
    DIR *d = opendir(".");
    if (!d)
        die("opendir %s: %s", opt.dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            die("%s must be empty", opt.dir);
    closedir(d);
    umask(022);
    reset_model();
    header();
    if (!strcmp(opt.mode, "single"))
        mode_single();
    else if (!strcmp(opt.mode, "multi"))
        mode_multi();
    else if (!strcmp(opt.mode, "fork"))
        mode_fork();
    else if (!strcmp(opt.mode, "users"))
        mode_users();
    else
        usage();
    umask(022);
    tr("# final tree\n");
    walk("", 0);
    tr("# end\n");
    flush_trace(1);
    return 0;
}
