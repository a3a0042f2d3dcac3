/*
 * shim/paths.c - which paths are managed.  Roots come from EPHEMERA_ROOTS
 * (default /tmp) and are matched lexically against the normalised absolute
 * path; symlinks inside a root are not followed (see "Shim" in ARCHITECTURE.md).
 *
 * Pass-through must cost almost nothing, so path_maybe_managed does one prefix
 * compare per root for absolute paths and a flag test for relative ones; only
 * when that says "maybe" do we normalise.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nsdir.h"
#include "nsdirfd.h"
#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "paths.h"
#include "compiler.h"
#include "sys.h"
#include "dircache.h"
#include "init.h"
#include "pathnorm.h"
#include "nsview.h"
#include "vforkchild.h"

#define MAX_ROOTS 16

/* canonical: the kernel's resolution of the root gave exactly this path at start-up (realpath),
 * so a name directly in it needs no canonicalisation (canon_parent).  canon_of: for a root given
 * through a symlink, 1 + the index of its canonical spelling (0: none, or it is canonical). */
static struct { char path[EPH_PATH_MAX]; size_t len; int canonical, canon_of; } roots[MAX_ROOTS] SH_COLD;
SH_STARTDATA static int nroots;
SH_STARTDATA static size_t roots_shortest; /* the length of the shortest root, either spelling (0: none) */
SH_STARTDATA static int naliased; /* roots with a canon_of */

static pthread_mutex_t cwd_mu = PTHREAD_MUTEX_INITIALIZER;
SH_STARTDATA static char cwd[EPH_PATH_MAX];
SH_STARTDATA static _Atomic int cwd_valid;
/* cwd lies under a root, or is an ancestor of one: relative names may be managed */
SH_STARTDATA static _Atomic int cwd_relevant;
/*
 * A vfork child's own working directory (vforkchild.h), once it changed it: 2 when relative names
 * may be in a root (as cwd_relevant), 1 when not; 0 while it is the one the child was born with,
 * whose answer is cwd_relevant.  The child writes it on the TLS of the parent thread that called
 * vfork (the only memory it has), which is suspended until the exec or the exit; that thread
 * reads it only as a child (sh_vfork_child) and clears it before each vfork
 * (path_vfork_child_forget).  A process the child forks keeps the child's, its own cwd too.
 */
static SH_TLS int child_cwd;

SH_START static void add_root(const char *r, size_t n)
{
    char tmp[EPH_PATH_MAX];
    if (n == 0 || n >= sizeof tmp || nroots == MAX_ROOTS || r[0] != '/')
        return;
    memcpy(tmp, r, n);
    tmp[n] = '\0';
    int len = pn_normalize("/", tmp, roots[nroots].path, sizeof roots[nroots].path, NULL);
    if (len <= 0)
        return;
    roots[nroots].len = (size_t)len;
    const char *given = roots[nroots++].path;
    /*
     * The daemon manages the root's canonical path, and a miss is re-checked
     * through the kernel's resolution (path_canon), which yields that path: a
     * root given through a symlink must be known under both spellings, or
     * every file created through the link would land on disk.
     */
    char canon[PATH_MAX];
    int me = nroots - 1;
    if (!REAL(realpath)(given, canon))
        return;
    if (strcmp(canon, given) == 0) {
        roots[me].canonical = 1;
        return;
    }
    for (int i = 0; i < nroots; i++)
        if (strcmp(roots[i].path, canon) == 0) {
            roots[me].canon_of = i + 1;
            naliased++;
            return;
        }
    if (nroots < MAX_ROOTS && strlen(canon) < sizeof roots[nroots].path) {
        strcpy(roots[nroots].path, canon);
        roots[nroots].canonical = 1;
        roots[nroots].len = strlen(canon);
        roots[me].canon_of = ++nroots;
        naliased++;
    }
}

/*
 * A name below a root given through a symlink, in the root's canonical spelling.  The namespace
 * (files, directories in memory, their parents' counts) is keyed by canonical paths, as the daemon
 * manages realpath(--root); a lexical path under the given spelling named another key, so a
 * directory made in memory through the link, and the file created in it, lived under two
 * different parents, and rmdir of the one found the other empty (issue 9: the file was lost).
 * Rewritten here, every spelling of a root names the same entries, with no call to the kernel.
 * The root itself keeps its spelling (an lstat of a symlinked root is the symlink's).
 * 0, or -ENAMETOOLONG.
 */
static int root_canonical(char out[EPH_PATH_MAX])
{
    for (int i = 0; i < nroots; i++) {
        size_t len = roots[i].len;
        if (!roots[i].canon_of || strncmp(out, roots[i].path, len) != 0 || out[len] != '/')
            continue;
        const char *c = roots[roots[i].canon_of - 1].path;
        size_t clen = roots[roots[i].canon_of - 1].len, rest = strlen(out + len);
        if (clen + rest >= EPH_PATH_MAX)
            return -ENAMETOOLONG;
        memmove(out + clen, out + len, rest + 1);
        memcpy(out, c, clen);
        return 0;
    }
    return 0;
}

/* Is dir (n bytes) exactly a root that was canonical at start-up? */
static int is_canonical_root(const char *dir, size_t n)
{
    for (int i = 0; i < nroots; i++)
        if (roots[i].canonical && roots[i].len == n && memcmp(roots[i].path, dir, n) == 0)
            return 1;
    return 0;
}

static int under_canonical_root(const char *abs)
{
    for (int i = 0; i < nroots; i++)
        if (roots[i].canonical && pn_under(abs, roots[i].path, roots[i].len))
            return 1;
    return 0;
}

static int under_root(const char *abs)
{
    for (int i = 0; i < nroots; i++)
        if (pn_under(abs, roots[i].path, roots[i].len))
            return 1;
    return 0;
}

/* Names relative to dir (absolute, normalised) may be in a root: it is under one, or above one. */
SH_START static int dir_relevant(const char *dir)
{
    int rel = 0;
    for (int i = 0; i < nroots && !rel; i++)
        rel = pn_under(dir, roots[i].path, roots[i].len) || pn_is_ancestor(dir, roots[i].path);
    return rel;
}

static void cwd_classify(void)
{
    atomic_store(&cwd_relevant, dir_relevant(cwd));
}

SH_START void path_init(void)
{
    const char *env = getenv("EPHEMERA_ROOTS");
    if (!env || !*env)
        env = "/tmp";
    for (const char *s = env; *s;) {
        const char *e = strchr(s, ':');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        add_root(s, n);
        s += n;
        if (*s == ':')
            s++;
    }
    for (int i = 0; i < nroots; i++)
        if (roots_shortest == 0 || roots[i].len < roots_shortest)
            roots_shortest = roots[i].len;
    if (REAL(syscall)(SYS_getcwd, cwd, sizeof cwd) > 0 && cwd[0] == '/') { /* libc's: not our wrapper's page */
        atomic_store(&cwd_valid, 1);
        cwd_classify();
    }
}

void path_set_cwd(const char *abs)
{
    pthread_mutex_lock(&cwd_mu);
    size_t n = strlen(abs);
    if (n < sizeof cwd && abs[0] == '/') {
        memcpy(cwd, abs, n + 1);
        atomic_store(&cwd_valid, 1);
        cwd_classify();
    } else {
        atomic_store(&cwd_valid, 0);
        atomic_store(&cwd_relevant, 1);
    }
    pthread_mutex_unlock(&cwd_mu);
}

int path_is_root(const char *abs)
{
    for (int i = 0; i < nroots; i++)
        if (strcmp(abs, roots[i].path) == 0)
            return 1;
    return 0;
}

/*
 * Does p start with root r (len bytes)?  Eight bytes at a time while they lie
 * in one page of p (r is a full EPH_PATH_MAX array), so a path outside the
 * roots costs a few word compares and no libc call, even a sibling with a
 * long common prefix.  Bytes of p past its NUL may be loaded (never past its
 * page, so never a fault) but only decide a mismatch the byte loop confirms:
 * hence no ASan on this function.
 */
__attribute__((no_sanitize_address)) static inline size_t common_prefix(const char *p, const char *r, size_t len)
{
    size_t i = 0;
    while (i + 8 <= len && ((uintptr_t)(p + i) & 4095) <= 4096 - 8) {
        uint64_t a, b;
        memcpy(&a, p + i, 8);
        memcpy(&b, r + i, 8);
        if (a != b)
            break;
        i += 8;
    }
    while (i < len && p[i] == r[i])
        i++;
    return i;
}

size_t path_roots_shortest(void)
{
    return roots_shortest;
}

size_t path_outer_root(const char *abs)
{
    size_t best = 0;
    for (int i = 0; i < nroots; i++) {
        size_t len = roots[i].len;
        if (len > 1 && (best == 0 || len < best) && strncmp(abs, roots[i].path, len) == 0 && abs[len] == '/')
            best = len;
    }
    return best;
}

static int maybe_managed(int dirfd, const char *p);

int path_maybe_managed(int dirfd, const char *p)
{
    int m = maybe_managed(dirfd, p);
    if (unlikely(m) && sh_vfork_child()) {
        /* The shim's state is the parent's: the kernel serves the child, on a file system put on disk */
        vfork_child_materialise();
        return 0;
    }
    if (unlikely(m) && unlikely(pn_has_dotdot(p)))
        nsd_dotdot(); /* the kernel's walk of "x/.." must find x on disk */
    return m;
}

static int maybe_managed(int dirfd, const char *p)
{
    if (unlikely(path_bad_ptr(p) || sh.disabled))
        return 0;
    if (unlikely(!p[0])) {
        ndf_settle_if(dirfd); /* AT_EMPTY_PATH on a stand-in: the kernel's call, on the twin */
        return 0;
    }
    if (p[0] == '/') {
        if (p[1] == '/' || p[1] == '.')
            return 1;
        for (int i = 0; i < nroots; i++) {
            size_t len = roots[i].len;
            if (common_prefix(p, roots[i].path, len) == len && (p[len] == '/' || p[len] == '\0' || len == 1))
                return 1;
        }
        return 0;
    }
    if (dirfd != AT_FDCWD)
        return 1;
    if (unlikely(sh_vfork_child()) && child_cwd) /* it changed directory: its own, not the cache's */
        return child_cwd == 2 || pn_has_dotdot(p);
    return atomic_load_explicit(&cwd_relevant, memory_order_relaxed) || pn_has_dotdot(p);
}

int path_absolute(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing_slash)
{
    char base[EPH_PATH_MAX];
    if (!p || !p[0])
        return 0;
    if (p[0] != '/') {
        if (dirfd == AT_FDCWD) {
            pthread_mutex_lock(&cwd_mu);
            int ok = atomic_load(&cwd_valid);
            if (ok)
                memcpy(base, cwd, strlen(cwd) + 1);
            pthread_mutex_unlock(&cwd_mu);
            if (!ok && (syscall(SYS_getcwd, base, sizeof base) <= 0 || base[0] != '/'))
                return 0;
        } else if (ft_mdirfd(dirfd) ? ndf_path(dirfd, base) < 0 : dc_fd_path(dirfd, base, sizeof base) < 0) {
            return 0; /* not a directory fd we can name: the kernel decides */
        }
    } else {
        base[0] = '/';
        base[1] = '\0';
    }
    if (pn_normalize(base, p, out, EPH_PATH_MAX, trailing_slash) < 0)
        return -ENAMETOOLONG;
    if (unlikely(naliased) && root_canonical(out) < 0)
        return -ENAMETOOLONG;
    return 1;
}

/*
 * The kernel resolves ".." physically: "x/.." needs x to be a directory.  For
 * the rare path with "..", check each component that is followed by ".."; if
 * one is not a directory, leave the whole call to the kernel, which fails it.
 */
int path_dotdot_error(int dirfd, const char *p)
{
    char pre[EPH_PATH_MAX];
    nsd_dotdot();
    size_t n = strlen(p);
    if (n >= sizeof pre)
        return -ENAMETOOLONG;
    for (size_t i = 0; i + 2 <= n; i++) {
        if (p[i] == '.' && p[i + 1] == '.' && (i == 0 || p[i - 1] == '/') && (p[i + 2] == '/' || p[i + 2] == '\0')) {
            if (i == 0)
                continue;
            memcpy(pre, p, i);
            pre[i] = '\0';
            char abs[EPH_PATH_MAX];
            uint32_t inode, gen;
            struct stat st;
            if (path_absolute(dirfd, pre, abs, NULL) <= 0)
                return -ENOENT;
            int e = sh.hdr ? nsv_walk_error(abs) : 0;
            if (e < 0)
                return e;
            if (sh.hdr && nsv_lookup(abs, &inode, &gen) == 0)
                return -ENOTDIR;
            if (REAL(fstatat)(dirfd, pre, &st, 0) < 0) {
                int e2 = -errno;
                /* a symlink that leads to an in-memory file */
                if (e2 == -ENOENT && sh.hdr && path_canon(abs, 1) > 0 &&
                    (nsv_lookup(abs, &inode, &gen) == 0 || nsv_walk_error(abs) == -ENOTDIR))
                    return -ENOTDIR;
                return e2;
            }
            if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        }
    }
    return 0;
}

static int path_resolve_lex(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing_slash);

int path_resolve(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing_slash)
{
    int r = path_resolve_lex(dirfd, p, out, trailing_slash);
    if (r > 0)
        nsd_resolved(out, p); /* in-memory directories on the way get a disk twin */
    return r;
}

static int path_resolve_lex(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing_slash)
{
    if (!path_maybe_managed(dirfd, p))
        return 0;
    int r = path_absolute(dirfd, p, out, trailing_slash);
    if (r <= 0 || !under_root(out))
        return r <= 0 ? r : 0;
    if (unlikely(pn_has_dotdot(p))) {
        if (path_dotdot_error(dirfd, p) < 0)
            return 0;
        /* ".." after a symlink goes to the target's parent: let the kernel resolve the directory part */
        char dir[EPH_PATH_MAX], real[EPH_PATH_MAX], link[64];
        const char *last = strrchr(p, '/');
        size_t dl = last ? (size_t)(last - p) : 0;
        if (last && dl < sizeof dir && last[1] && strcmp(last + 1, "..") != 0 && strcmp(last + 1, ".") != 0) {
            memcpy(dir, p, dl);
            dir[dl ? dl : 1] = '\0';
            if (dl == 0)
                dir[0] = '/';
            int fd = REAL(openat)(dirfd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0)
                return 0; /* the kernel fails the walk; nsv_enoent refines its errno */
            {
                snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
                ssize_t n = sys.readlink(link, real, sizeof real - 1);
                sys.close(fd);
                if (n > 0 && real[0] == '/') {
                    real[n] = '\0';
                    if (pn_normalize(real, last + 1, out, EPH_PATH_MAX, NULL) < 0)
                        return -ENAMETOOLONG;
                    return under_root(out);
                }
            }
        }
    }
    return 1;
}

/*
 * Roots are matched lexically, but a directory under a root may be reached
 * through a symlink.  The namespace keys files by their canonical parent, so
 * before a miss is believed (or a file is created) the parent is resolved by
 * the kernel: open O_PATH, read back its name.  Returns 1 if abs changed and
 * is still managed, 0 if unchanged, -1 if it now lies outside every root.
 */
static int canon_parent(char abs[EPH_PATH_MAX])
{
    char *slash = strrchr(abs, '/');
    if (!slash || slash == abs)
        return 0;
    /* A name directly in a root: the root was canonical when we started, and a
     * root is the daemon's, not replaced by a symlink while the instance runs. */
    if (is_canonical_root(abs, (size_t)(slash - abs)))
        return 0;
    /* No symlink under a root (nsdir.c counts them): below a canonical root the lexical path is
     * the kernel's walk (".." was resolved before), so nothing to ask.  git's object names in
     * fan-out directories not made yet asked openat2 for each (884 of them in bench tools' git). */
    if (nsd_no_symlinks() && under_canonical_root(abs))
        return 0;
    /* A parent found canonical recently, with no directory moved or removed
     * through any shim since (dircache.c's rules): no call at all. */
    if (dc_canonical(abs, (size_t)(slash - abs)))
        return 0;
    uint64_t gen = dc_generation();
    *slash = '\0';
    /* A directory in memory is named by its canonical path (made so, and kept so: no symlink
     * under a root while any is in memory, nsdir.c), and the kernel cannot walk it. */
    if (nsd_is_dir(abs)) {
        *slash = '/';
        return 0;
    }
    /* The common case costs two calls, not three: a parent the kernel walks
     * without meeting a symlink is already canonical (".." was resolved
     * lexically before), so no readlink of /proc/self/fd is needed. */
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, abs, &how, sizeof how);
    if (fd >= 0 || (errno != ELOOP && errno != ENOSYS && errno != EPERM && errno != EINVAL)) {
        *slash = '/';
        if (fd >= 0) {
            sys.close(fd);
            dc_canonical_seen(abs, (size_t)(slash - abs), gen);
        }
        return 0;
    }
    fd = REAL(open)(abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    *slash = '/';
    if (fd < 0)
        return 0;
    char link[64], real[EPH_PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = sys.readlink(link, real, sizeof real - 1);
    sys.close(fd);
    if (n <= 0 || real[0] != '/')
        return 0;
    real[n] = '\0';
    size_t plen = (size_t)(slash - abs), blen = strlen(slash);
    if ((size_t)n == plen && memcmp(real, abs, plen) == 0)
        return 0;
    if ((size_t)n + blen + 1 > EPH_PATH_MAX)
        return -1;
    memmove(abs + n, slash, blen + 1);
    memcpy(abs, real, (size_t)n);
    return 1;
}

/*
 * A name the lexical check put outside every root (issue 9: never lose a byte, match the kernel).
 * A symlink outside the roots may lead into one (l -> r, the root r/root, the program using
 * l/root/d): the kernel alone answers such a path, and a directory on disk there may hold names
 * that live only in memory.  Its rmdir found it empty and removed it, and the files in it were
 * lost at exit; a rename moved it away from them; an open or a stat of a name in memory got ENOENT;
 * a create made a second file on disk under a name in memory.  So the callers (the removes and
 * moves before their call, the creates before theirs, the lookups after the kernel's ENOENT) ask
 * here where the kernel puts the name's directory, and a name that lands under a root is handed
 * to the managed call in its canonical spelling.
 *
 * Only while something is in memory (two loads of the region), or for the first
 * ALIAS_LOOKS_UNATTACHED such calls of a process that has not attached to the region and so cannot
 * tell (after those it attaches, once).  Then: nothing, when the directory's spelling was walked
 * without meeting a symlink recently (dircache.c's rules: the region's dir_gen and 1 s); else one
 * openat2 and a close; when a symlink is on the way, an open, a readlink of /proc/self/fd and a
 * close, and one more open for each component missing on disk at the end (a directory in memory:
 * l/root/memdir/f is found as r/root/memdir/f).
 * 1 with out the canonical absolute name (its trailing slash kept), or 0: the kernel's call.
 * errno is kept.
 */
#define ALIAS_LOOKS_UNATTACHED 4

/* path_alias_on's answer without its count of looks (no attach): for a test made before the look. */
static int alias_maybe(void)
{
    if (sh.disabled || sh_busy)
        return 0;
    return !atomic_load_explicit(&sh.attached, memory_order_acquire) ||
           atomic_load_explicit(&sh.hdr->c.files_in_memory, memory_order_relaxed) ||
           atomic_load_explicit(&sh.hdr->mdirs_live, memory_order_relaxed);
}

int path_alias_on(void)
{
    static _Atomic int unattached_looks;
    if (sh.disabled || sh_busy)
        return 0;
    /* A process that never touched a root has not mapped the region: its first few such calls
     * ask the kernel, then it attaches once, so that a loop of them costs nothing per call. */
    if (!atomic_load_explicit(&sh.attached, memory_order_acquire) &&
        atomic_fetch_add_explicit(&unattached_looks, 1, memory_order_relaxed) >= ALIAS_LOOKS_UNATTACHED &&
        sh_attach_try() < 0) {
        /* No daemon yet (or none at all): no alias check now, another try after as many looks.  A
         * failed sh_attach() here turned the shim off for the process's life: the action runtime,
         * started beside its daemon, then kept every file on disk (CI: up-e2e, views-e2e). */
        atomic_store_explicit(&unattached_looks, 0, memory_order_relaxed);
        return 0;
    }
    return !atomic_load_explicit(&sh.attached, memory_order_acquire) ||
           atomic_load_explicit(&sh.hdr->c.files_in_memory, memory_order_relaxed) ||
           atomic_load_explicit(&sh.hdr->mdirs_live, memory_order_relaxed);
}

/* The lexical (dirfd, p) names a directory the kernel reaches without a symlink: out its name, under
 * a root and not a root itself (1), or 0. */
static int alias_lexical(int dirfd, const char *p, char out[EPH_PATH_MAX])
{
    int t;
    if (path_absolute(dirfd, p, out, &t) <= 0 || !under_root(out) || path_is_root(out))
        return 0;
    size_t len = strlen(out);
    if (t && len + 1 < EPH_PATH_MAX)
        memcpy(out + len, "/", 2);
    return 1;
}

/*
 * The spelling by which the kernel's walk of p's first t bytes (a directory) is remembered
 * (dircache.c): an absolute one as written (a walk that met no symlink resolved its ".." as the
 * lexical normalisation does; one that met some is kept with the kernel's answer), a relative one
 * from the cwd when it has no ".." (the cwd is the kernel's own name of it).  Its length, or 0.
 */
static size_t alias_key(int dirfd, const char *p, size_t t, char key[EPH_PATH_MAX])
{
    if (p[0] == '/') {
        size_t k = t;
        while (k > 1 && p[k - 1] == '/')
            k--;
        memcpy(key, p, k);
        key[k] = '\0';
        return k;
    }
    char rel[EPH_PATH_MAX];
    memcpy(rel, p, t);
    rel[t] = '\0';
    if (t == 0)
        memcpy(rel, ".", 2);
    if (pn_has_dotdot(rel) || path_absolute(dirfd, rel, key, NULL) <= 0)
        return 0;
    return strlen(key);
}

/*
 * p[0..*t) names what the kernel did not find: dir (a copy of p's first *t bytes at least) becomes
 * the directory above it, "." for none, and *t its length; 1.  0 when there is nothing above to try,
 * or the last component is a ".." (the kernel resolves it after a missing name).
 */
static int climb(const char *p, size_t *t, char *dir)
{
    size_t e = *t;
    while (e > 0 && p[e - 1] == '/')
        e--;
    size_t b = e;
    while (b > 0 && p[b - 1] != '/')
        b--;
    if (e == 0 || (e - b == 2 && p[b] == '.' && p[b + 1] == '.'))
        return 0;
    *t = b;
    if (b == 0)
        memcpy(dir, ".", 2);
    else
        dir[b] = '\0';
    return 1;
}

static int alias_look(int dirfd, const char *p, char out[EPH_PATH_MAX])
{
    if (path_bad_ptr(p) || !p[0] || !path_alias_on())
        return 0;
    size_t n = strlen(p), end = n;
    while (end > 1 && p[end - 1] == '/')
        end--;
    size_t s = end;
    while (s > 0 && p[s - 1] != '/')
        s--;
    size_t nlen = end - s;
    /* "x/.", "x/..", "/": the kernel's own errors, nothing moves */
    if (nlen == 0 || (nlen == 1 && p[s] == '.') || (nlen == 2 && p[s] == '.' && p[s + 1] == '.') || n >= EPH_PATH_MAX)
        return 0;
    char dir[EPH_PATH_MAX];
    if (s == 0) {
        dir[0] = '.';
        dir[1] = '\0';
    } else {
        memcpy(dir, p, s);
        dir[s] = '\0';
    }
    char key[EPH_PATH_MAX], real[EPH_PATH_MAX];
    size_t klen = alias_key(dirfd, p, s, key);
    if (klen && dc_canonical(key, klen))
        return alias_lexical(dirfd, p, out);
    size_t t = s; /* p[0..t): the directory the kernel names; p + t: the rest */
    if (!(klen && dc_alias(key, klen, real))) {
        uint64_t gen = dc_generation();
        struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
        int fd = (int)syscall(SYS_openat2, dirfd, dir, &how, sizeof how);
        if (fd >= 0 || (errno != ELOOP && errno != ENOSYS && errno != EPERM && errno != EINVAL)) {
            /* No symlink on the way, or a name missing (or a file) before any: the lexical name is
             * the kernel's, and only an odd spelling of a root ("/r//root/d") can have hidden it.
             * A missing directory is kept too: cc1 looks for "bits/x.h" in every include directory
             * that has no bits/ (gcc: 165 looks of 30 directories).  A symlink made there later
             * moves the generation (symlink_impl), as a rename does. */
            int e = errno;
            if (fd >= 0)
                sys.close(fd);
            else if (e != ENOENT && e != ENOTDIR)
                return 0;
            if (klen)
                dc_canonical_seen(key, klen, gen);
            return fd >= 0 ? alias_lexical(dirfd, p, out) : 0;
        }
        /* A symlink on the way.  The deepest directory of the path that is on disk (those below
         * it can only be in memory: no symlink there), then the rest below its kernel name. */
        for (;;) {
            fd = REAL(openat)(dirfd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (fd >= 0)
                break;
            if (errno != ENOENT || !climb(p, &t, dir))
                return 0;
            klen = alias_key(dirfd, p, t, key);
            if (klen && dc_alias(key, klen, real))
                goto found;
        }
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t k = sys.readlink(link, real, sizeof real - 1);
        sys.close(fd);
        if (k <= 0 || real[0] != '/')
            return 0;
        real[k] = '\0';
        if (klen)
            dc_alias_seen(key, klen, real, gen);
    }
found:;
    int trailing = 0;
    if (pn_normalize(real, p + t, out, EPH_PATH_MAX, &trailing) <= 0)
        return 0;
    size_t len = strlen(out);
    if (trailing && len + 1 < EPH_PATH_MAX)
        memcpy(out + len, "/", 2);
    return under_root(out) && !path_is_root(out);
}

int path_outside(int dirfd, const char *p)
{
    char abs[EPH_PATH_MAX];
    if (!path_maybe_managed(dirfd, p))
        return 1;
    /* Named from a directory fd: the fd's name is the kernel's, but the relative part may go
     * through a symlink outside the roots ("l/root/f" from a directory above l).  Its name costs a
     * look (dc_fd_path), so it is asked only while something is in memory, as path_alias would. */
    if (p[0] != '/' && dirfd != AT_FDCWD && !alias_maybe())
        return 0;
    return path_absolute(dirfd, p, abs, NULL) > 0 && !under_root(abs);
}

int path_alias_after(long r, int dirfd, const char *p, char canon[EPH_PATH_MAX])
{
    return unlikely(r < 0) && errno == ENOENT && path_outside(dirfd, p) && path_alias(dirfd, p, canon);
}

const char *path_alias_name(int *dirfd, const char *p, char canon[EPH_PATH_MAX])
{
    if (!path_outside(*dirfd, p) || !path_alias(*dirfd, p, canon))
        return p;
    *dirfd = AT_FDCWD;
    return canon;
}

/*
 * A vfork child (vforkchild.h) must not fill the caches above, its parent's: a name outside every
 * root is placed by the kernel, the object it names (or else its directory) opened O_PATH and read
 * back through /proc/self/fd.  Under a root (a symlink on the way), everything goes to disk first.
 * The kernel then serves the call: 0.
 */
static int child_alias(int dirfd, const char *p)
{
    if (path_bad_ptr(p) || !p[0] || strlen(p) >= EPH_PATH_MAX)
        return 0;
    /* nothing in memory (path_alias_on's test, read only): the kernel's answer is right already */
    if (atomic_load_explicit(&sh.attached, memory_order_acquire) &&
        !atomic_load_explicit(&sh.hdr->c.files_in_memory, memory_order_relaxed) &&
        !atomic_load_explicit(&sh.hdr->mdirs_live, memory_order_relaxed))
        return 0;
    int e = errno;
    int fd = REAL(openat)(dirfd, p, O_PATH | O_CLOEXEC);
    size_t t = strlen(p); /* p + t: the part below what fd names */
    char dir[EPH_PATH_MAX];
    strcpy(dir, p);
    /* The deepest directory on disk: those below it can only be in memory (a directory in memory
     * holding the name: no disk entry, the kernel's walk stops above it). */
    while (fd < 0 && errno == ENOENT && climb(p, &t, dir))
        fd = REAL(openat)(dirfd, dir, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        errno = e;
        return 0;
    }
    char link[64], real[EPH_PATH_MAX], out[EPH_PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t k = sys.readlink(link, real, sizeof real - 1);
    sys.close(fd);
    if (k > 0 && real[0] == '/') {
        real[k] = '\0';
        if (pn_normalize(real, p + t, out, EPH_PATH_MAX, NULL) > 0 && under_root(out))
            vfork_child_materialise();
    }
    errno = e;
    return 0;
}

/*
 * A vfork child changed directory (the kernel's chdir, onto the disk twin of a directory in
 * memory): the cache above is the parent's, so the child notes in child_cwd whether names relative
 * to its new one may be in a root.  Nothing moves to disk for the change itself: a program it
 * execs that loads the shim finds the files in memory from that working directory; one that cannot
 * has everything put on disk by the exec (exec_prepared); a relative name the child itself uses is
 * "maybe managed" (maybe_managed), so on disk before the kernel's call (path_maybe_managed).
 * A working directory the kernel cannot name counts as in a root.
 */
void path_vfork_child_cwd(void)
{
    char buf[EPH_PATH_MAX];
    int e = errno;
    long n = syscall(SYS_getcwd, buf, sizeof buf);
    child_cwd = n > 0 && buf[0] == '/' && !dir_relevant(buf) ? 1 : 2;
    errno = e;
}

void path_vfork_child_forget(void)
{
    child_cwd = 0;
}

int path_alias(int dirfd, const char *p, char out[EPH_PATH_MAX])
{
    if (sh_vfork_child())
        return child_alias(dirfd, p);
    int e = errno, r = alias_look(dirfd, p, out);
    errno = e;
    return r;
}

/*
 * A directory opened by the kernel from (dirfd, p), a name outside every root: 1 with its canonical
 * name when it is under a root (or is one), its listing must show the names in memory; else 0.
 * While something is in memory only: nothing when its spelling was named recently (dircache.c),
 * else a readlink of /proc/self/fd.
 */
int path_alias_dir(int fd, int dirfd, const char *p, char out[EPH_PATH_MAX])
{
    if (sh_vfork_child())
        return child_alias(dirfd, p);
    int e = errno, r = 0;
    char key[EPH_PATH_MAX];
    size_t klen = 0;
    if (path_bad_ptr(p) || !p[0] || !path_alias_on())
        goto out;
    if (!pn_has_dotdot(p) && path_absolute(dirfd, p, key, NULL) > 0) {
        klen = strlen(key);
        if (dc_canonical(key, klen)) {
            r = under_root(key);
            if (r)
                memcpy(out, key, klen + 1);
            goto out;
        }
        if (dc_alias(key, klen, out)) {
            r = under_root(out);
            goto out;
        }
    }
    uint64_t gen = dc_generation();
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t k = sys.readlink(link, out, EPH_PATH_MAX - 1);
    if (k <= 0 || out[0] != '/')
        goto out;
    out[k] = '\0';
    if (klen == (size_t)k && memcmp(key, out, klen) == 0)
        dc_canonical_seen(key, klen, gen); /* the same name: no symlink on the way */
    else if (klen)
        dc_alias_seen(key, klen, out, gen);
    r = under_root(out);
out:
    errno = e;
    return r;
}

SH_TLS int path_canon_absent;

int path_canon(char abs[EPH_PATH_MAX], int follow)
{
    int changed = 0;
    path_canon_absent = 0;
    for (int hops = 0; hops < 40; hops++) {
        int c = canon_parent(abs);
        if (c < 0)
            return -1;
        changed |= c;
        struct stat st;
        if (nsd_mem_parent(abs, NULL, NULL)) {
            path_canon_absent = 1; /* nothing under a directory in memory is on disk */
            return changed ? (under_root(abs) ? 1 : -1) : 0;
        }
        /* No symlink under a root (nsd_no_symlinks): the name cannot be one, and whether it
         * exists is for the caller's own call to find out. */
        int look = follow && !nsd_no_symlinks();
        int lr = look ? REAL(lstat)(abs, &st) : 1;
        if (!look || lr < 0 || !S_ISLNK(st.st_mode)) {
            path_canon_absent = lr < 0 && errno == ENOENT;
            return changed ? (under_root(abs) ? 1 : -1) : 0;
        }
        /* a symlink on disk may point at an in-memory file: follow it by hand */
        char target[EPH_PATH_MAX], parent[EPH_PATH_MAX];
        ssize_t n = sys.readlink(abs, target, sizeof target - 1);
        if (n <= 0)
            return -1;
        target[n] = '\0';
        size_t plen = (size_t)(strrchr(abs, '/') - abs);
        memcpy(parent, abs, plen);
        parent[plen ? plen : 1] = '\0';
        if (plen == 0)
            parent[0] = '/';
        if (pn_normalize(parent, target, abs, EPH_PATH_MAX, NULL) < 0)
            return -1;
        changed = 1;
    }
    return -1; /* ELOOP: let the kernel say so */
}

/*
 * The error the kernel's physical walk of p's directory part would give,
 * one component at a time (".." after a symlink included), counting
 * in-memory files (and symlinks to them) as files: 0, -ENOTDIR, -ENOENT...
 */
int path_physical_error(int dirfd, const char *p)
{
    char comp[256], cur[EPH_PATH_MAX], link[64], abs[EPH_PATH_MAX];
    nsd_dotdot();
    int fd = REAL(openat)(p[0] == '/' ? AT_FDCWD : dirfd, p[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int err = 0;
    const char *s = p;
    for (;;) {
        while (*s == '/')
            s++;
        const char *e = s;
        while (*e && *e != '/')
            e++;
        const char *rest = e;
        while (*rest == '/')
            rest++;
        if (!*rest)
            break; /* s..e is the last component: the walk of the directories is done */
        size_t n = (size_t)(e - s);
        if (n >= sizeof comp)
            break;
        memcpy(comp, s, n);
        comp[n] = '\0';
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t k = sys.readlink(link, cur, sizeof cur - 1);
        if (k <= 0)
            break;
        cur[k] = '\0';
        uint32_t inode, gen;
        if (strcmp(comp, ".") && strcmp(comp, "..") && pn_normalize(cur, comp, abs, sizeof abs, NULL) > 0 &&
            sh.hdr && (nsv_lookup(abs, &inode, &gen) == 0 || (path_canon(abs, 1) > 0 && nsv_lookup(abs, &inode, &gen) == 0))) {
            err = -ENOTDIR;
            break;
        }
        int nfd = REAL(openat)(fd, comp, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (nfd < 0) {
            err = -errno;
            /* a symlink whose target runs into or through an in-memory file:
             * the kernel, which would know the file, says ENOTDIR */
            char tgt[EPH_PATH_MAX];
            ssize_t t;
            if (err == -ENOENT && sh.hdr && (t = sys.readlinkat(fd, comp, tgt, sizeof tgt - 1)) > 0 &&
                (size_t)t < sizeof tgt - 1) {
                tgt[t] = '\0';
                if (pn_normalize(cur, tgt, abs, sizeof abs, NULL) > 0 &&
                    (nsv_lookup(abs, &inode, &gen) == 0 || nsv_ancestor_is_file(abs)))
                    err = -ENOTDIR;
            }
            /* ...also at the end of a chain of symlinks (b -> f1 -> a/f3, a in memory) */
            if (err == -ENOENT && sh.hdr && pn_normalize(cur, comp, abs, sizeof abs, NULL) > 0 &&
                path_canon(abs, 1) > 0 && (nsv_lookup(abs, &inode, &gen) == 0 || nsv_walk_error(abs) == -ENOTDIR))
                err = -ENOTDIR;
            break;
        }
        sys.close(fd);
        fd = nfd;
        s = rest;
    }
    sys.close(fd);
    return err;
}
