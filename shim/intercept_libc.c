/*
 * shim/intercept_libc.c - realpath(3), the temporary-file makers, popen(3).
 *
 * These glibc functions reach the file system through glibc's internal calls,
 * which an LD_PRELOAD library never sees:
 *
 *   - realpath (and canonicalize_file_name, __realpath_chk) asks readlink of
 *     every component.  The kernel has never heard of an in-memory file, so
 *     the last step failed with ENOENT, and with it Node's
 *     fs.realpathSync.native and every C program that canonicalises a name.
 *     glibc's answer stands whenever it succeeds or fails for another reason
 *     (an in-memory file is never a directory or a symlink, so it can only be
 *     the step glibc could not take); on ENOENT or ENOTDIR the same algorithm
 *     runs again here on the interposed readlink and faccessat.
 *
 *   - mkstemp and its relatives, and tmpfile, create their file with glibc's
 *     internal open: the file went to disk, though it lives in a managed root
 *     and is exactly the scratch data the roots are for.  mkdtemp makes its
 *     directory with glibc's internal mkdir, which cannot see a directory in
 *     memory.  When the template
 *     (or P_tmpdir) is managed, the same loop runs here on the interposed
 *     open; otherwise glibc's own function runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "paths.h"
#include "fdtable.h"

/* ---- realpath ----------------------------------------------------------------- */

#define RP_MAXLINKS 40 /* glibc's MAXSYMLINKS */

/* Does what follows a component ("/", "/.", "/..", "//" ...) require it to be a directory? */
static int rp_suffix_needs_dir(const char *end)
{
    while (*end == '/') {
        do
            end++;
        while (*end == '/');
        switch (*end++) {
        default:
            return 0;
        case '\0':
            return 1;
        case '.':
            break;
        }
        if (!*end || (*end == '.' && (!end[1] || end[1] == '/')))
            return 1;
    }
    return 0;
}

/*
 * Not inlined: its 20 KiB of buffers would sit in realpath's frame on the common path too, and
 * glibc's realpath below it would then write stack pages 20 KiB deeper, five or six page faults
 * more in every process that canonicalises a name (gcc's driver and cc1 do).
 *
 * glibc's algorithm (stdlib/canonicalize.c) on the interposed calls.  out has
 * room for PATH_MAX bytes.  Returns 0, or -1 with errno set and out holding
 * the prefix that failed (as glibc leaves it).
 */
static __attribute__((noinline)) int rp_resolve(const char *name, char *out)
{
    char rname[2 * PATH_MAX], link[PATH_MAX], rest[2 * PATH_MAX];
    char *const lim = rname + sizeof rname - 1;
    char *dest;
    const char *start, *end;
    int links = 0, err = 0;

    if (name[0] != '/') {
        if (!getcwd(rname, PATH_MAX))
            return -1;
        dest = rname + strlen(rname);
    } else {
        rname[0] = '/';
        dest = rname + 1;
    }
    for (start = name; *start; start = end) {
        while (*start == '/')
            start++;
        for (end = start; *end && *end != '/'; end++)
            ;
        size_t len = (size_t)(end - start);
        if (len == 0)
            break;
        if (len == 1 && start[0] == '.')
            continue;
        if (len == 2 && start[0] == '.' && start[1] == '.') {
            if (dest > rname + 1)
                for (--dest; dest > rname && dest[-1] != '/'; --dest)
                    ;
            continue;
        }
        if (dest[-1] != '/')
            *dest++ = '/';
        if ((size_t)(lim - dest) < len) {
            err = ENAMETOOLONG;
            goto fail;
        }
        memcpy(dest, start, len);
        dest += len;
        *dest = '\0';
        ssize_t n = readlink(rname, link, sizeof link - 1);
        if (n >= 0) {
            if (++links > RP_MAXLINKS) {
                err = ELOOP;
                goto fail;
            }
            link[n] = '\0';
            size_t tail = strlen(end);
            if ((size_t)n + tail >= sizeof rest) {
                err = ENAMETOOLONG;
                goto fail;
            }
            /* The link's text, then what was left of the name: resolve that next. */
            memmove(rest + n, end, tail + 1);
            memcpy(rest, link, (size_t)n);
            end = rest;
            if (link[0] == '/')
                dest = rname + 1;
            else if (dest > rname + 1)
                for (--dest; dest > rname && dest[-1] != '/'; --dest)
                    ;
        } else {
            int e = errno;
            if (rp_suffix_needs_dir(end)) {
                /* "x/" or "x/..": x must be a directory, as glibc checks with access("x/"). */
                dest[0] = '/';
                dest[1] = '\0';
                int ok = faccessat(AT_FDCWD, rname, F_OK, AT_EACCESS) == 0;
                dest[0] = '\0';
                if (!ok) {
                    err = errno;
                    goto fail;
                }
            } else if (e != EINVAL) {
                err = e;
                goto fail;
            }
        }
    }
    if (dest > rname + 1 && dest[-1] == '/')
        --dest;
    *dest = '\0';
    if ((size_t)(dest - rname) >= PATH_MAX) {
        err = ENAMETOOLONG;
        goto fail;
    }
    memcpy(out, rname, (size_t)(dest - rname) + 1);
    return 0;
fail:
    *dest = '\0';
    if ((size_t)(dest - rname) < PATH_MAX)
        memcpy(out, rname, (size_t)(dest - rname) + 1);
    errno = err;
    return -1;
}

SH_EXPORT char *realpath(const char *name, char *resolved)
{
    /* glibc's answer goes to a buffer of ours: a retry must not see what it left in resolved. */
    char buf[PATH_MAX];
    int saved = errno;
    buf[0] = '\0';
    int ok = REAL(realpath)(name, buf) != NULL;
    /* On ENOENT glibc leaves the canonical prefix up to the component it could not find: only
     * one under a root can be an in-memory file (cpp looks for every missing include directory). */
    if (!ok && (errno == ENOENT || errno == ENOTDIR) && name && *name && !sh_busy &&
        (errno == ENOTDIR || buf[0] != '/' || path_maybe_managed(AT_FDCWD, buf))) {
        errno = saved;
        buf[0] = '\0';
        ok = rp_resolve(name, buf) == 0;
    }
    if (!ok) {
        /* As glibc: the prefix that failed is left only for a name missing or not searchable. */
        int e = errno;
        if (resolved && (e == ENOENT || e == EACCES) && buf[0])
            memcpy(resolved, buf, strlen(buf) + 1);
        errno = e;
        return NULL;
    }
    if (resolved)
        return memcpy(resolved, buf, strlen(buf) + 1);
    char *r = strdup(buf);
    if (!r)
        errno = ENOMEM;
    return r;
}

SH_EXPORT char *canonicalize_file_name(const char *name)
{
    return realpath(name, NULL);
}

/* The _FORTIFY_SOURCE entry: glibc aborts when the buffer is smaller than PATH_MAX. */
SH_EXPORT char *__realpath_chk(const char *name, char *resolved, size_t resolvedlen)
{
    if (resolvedlen < PATH_MAX)
        abort();
    return realpath(name, resolved);
}

/* ---- mkstemp and tmpfile ----------------------------------------------------------- */

#define TMP_ATTEMPTS (62 * 62 * 62) /* glibc's TMP_MAX-like bound */

static uint64_t tmp_random(void)
{
    static _Atomic uint64_t counter;
    uint64_t v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16);
    v += atomic_fetch_add(&counter, 0x9e3779b97f4a7c15ull);
    v ^= v >> 31;
    v *= 0xbf58476d1ce4e5b9ull;
    return v ^ (v >> 29);
}

/* Make one candidate name: a file (flags are open's extra flags) or, with flags -1, a directory. */
static int tmp_make(const char *name, int flags)
{
    if (flags == -1)
        return mkdir(name, 0700);
    return open(name, (flags & ~O_ACCMODE) | O_RDWR | O_CREAT | O_EXCL, 0600);
}

/*
 * glibc's __gen_tempname: fill the six X's before the suffix and create the
 * name (a file with O_EXCL, or with flags -1 a directory) until it is new.
 * The template is left as the last name tried, as glibc leaves it.  Returns
 * the fd, 0 for a directory, or -1.
 */
static int tmp_create(char *tmpl, int suffixlen, int flags)
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t len = strlen(tmpl);
    if (suffixlen < 0 || len < 6 + (size_t)suffixlen || memcmp(&tmpl[len - 6 - (size_t)suffixlen], "XXXXXX", 6) != 0) {
        errno = EINVAL;
        return -1;
    }
    char *x = &tmpl[len - 6 - (size_t)suffixlen];
    int saved = errno;
    for (unsigned attempt = 0; attempt < TMP_ATTEMPTS; attempt++) {
        uint64_t v = tmp_random();
        for (int i = 0; i < 6; i++, v /= 62)
            x[i] = letters[v % 62];
        int fd = tmp_make(tmpl, flags);
        if (fd >= 0) {
            errno = saved;
            return fd;
        }
        if (errno != EEXIST)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

static int tmp_mkostemps(char *tmpl, int suffixlen, int flags)
{
    if (!tmpl || !path_maybe_managed(AT_FDCWD, tmpl) || sh_busy)
        return REAL(mkostemps)(tmpl, suffixlen, flags);
    return tmp_create(tmpl, suffixlen, flags);
}

SH_EXPORT int mkstemp(char *tmpl) { return tmp_mkostemps(tmpl, 0, 0); }
SH_EXPORT int mkstemp64(char *tmpl) { return tmp_mkostemps(tmpl, 0, 0); }
SH_EXPORT int mkostemp(char *tmpl, int flags) { return tmp_mkostemps(tmpl, 0, flags); }
SH_EXPORT int mkostemp64(char *tmpl, int flags) { return tmp_mkostemps(tmpl, 0, flags); }
SH_EXPORT int mkstemps(char *tmpl, int suffixlen) { return tmp_mkostemps(tmpl, suffixlen, 0); }
SH_EXPORT int mkstemps64(char *tmpl, int suffixlen) { return tmp_mkostemps(tmpl, suffixlen, 0); }
SH_EXPORT int mkostemps(char *tmpl, int suffixlen, int flags) { return tmp_mkostemps(tmpl, suffixlen, flags); }
SH_EXPORT int mkostemps64(char *tmpl, int suffixlen, int flags) { return tmp_mkostemps(tmpl, suffixlen, flags); }

/*
 * mkdtemp: glibc's makes its directory with its internal mkdir, which the
 * kernel answers alone: a template below a directory in memory (nothing of it
 * on disk) failed with ENOENT, and one in a disk directory made a directory
 * the shim never heard of.  npm's cache (`_cacache/tmp/XXXXXX`, through
 * Node's fs.mkdtemp) met the first.  The same loop runs on the interposed
 * mkdir when the template is managed.
 */
static char *tmp_mkdtemp(char *tmpl)
{
    if (!tmpl || !path_maybe_managed(AT_FDCWD, tmpl) || sh_busy)
        return REAL(mkdtemp)(tmpl);
    return tmp_create(tmpl, 0, -1) < 0 ? NULL : tmpl;
}

SH_EXPORT char *mkdtemp(char *tmpl) { return tmp_mkdtemp(tmpl); }

/*
 * tmpfile: glibc creates an O_TMPFILE in P_tmpdir, or failing that a name it
 * unlinks at once, and wraps the fd in a "w+" stream.  Ours does the same
 * through the interposed calls when P_tmpdir is managed, so the stream is
 * one of our cookie streams over a memfd.
 */
SH_EXPORT FILE *tmpfile(void)
{
    if (!path_maybe_managed(AT_FDCWD, P_tmpdir) || sh_busy)
        return REAL(tmpfile)();
    int fd = open(P_tmpdir, O_RDWR | O_TMPFILE | O_EXCL, 0600);
    if (fd < 0) {
        char name[] = P_tmpdir "/tmpfXXXXXX";
        fd = tmp_create(name, 0, 0);
        if (fd < 0)
            return NULL;
        unlink(name);
    }
    FILE *f = fdopen(fd, "w+");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return f;
}

SH_EXPORT FILE *tmpfile64(void) { return tmpfile(); }

/* ---- popen ---------------------------------------------------------------------- */

/*
 * glibc's popen starts its shell with its internal posix_spawn, which the
 * interposer never sees: a managed fd the child inherits arrived without its
 * EPHEMERA_FDMAP entry, so the child read the memfd through the kernel (its
 * whole capacity, zeros past the file's end, and its own offset).  With a
 * managed fd open, popen runs here on the interposed posix_spawn, which
 * passes them on; the streams it makes are closed by our pclose.
 */
struct po_stream {
    FILE *f;
    pid_t pid;
    struct po_stream *next;
};
static struct po_stream *po_list;
static pthread_mutex_t po_mu = PTHREAD_MUTEX_INITIALIZER;

extern char **environ;

SH_EXPORT FILE *popen(const char *cmd, const char *mode)
{
    if (!ft_any_managed() || sh_busy)
        return REAL(popen)(cmd, mode);
    int rd = 0, wr = 0, cloexec = 0;
    for (const char *m = mode; *m; m++) {
        if (*m == 'r')
            rd = 1;
        else if (*m == 'w')
            wr = 1;
        else if (*m == 'e')
            cloexec = 1;
        else
            rd = wr = 1; /* invalid, as glibc sees it */
    }
    if (rd == wr) {
        errno = EINVAL;
        return NULL;
    }
    struct po_stream *ps = malloc(sizeof *ps);
    int p[2];
    if (!ps || pipe2(p, O_CLOEXEC) < 0) {
        free(ps);
        return NULL;
    }
    int mine = rd ? p[0] : p[1], theirs = rd ? p[1] : p[0], target = rd ? 1 : 0;
    if (theirs == target) {
        /* fd 0 or 1 was closed: the dup2 below would leave it close-on-exec. */
        int moved = fcntl(theirs, F_DUPFD_CLOEXEC, 3);
        close(theirs);
        theirs = moved;
    }
    posix_spawn_file_actions_t fa;
    int err = theirs < 0 ? errno : posix_spawn_file_actions_init(&fa);
    if (err) {
        close(mine);
        if (theirs >= 0)
            close(theirs);
        free(ps);
        errno = err;
        return NULL;
    }
    pthread_mutex_lock(&po_mu);
    err = posix_spawn_file_actions_adddup2(&fa, theirs, target);
    /* POSIX: the child does not keep the streams of earlier popen calls. */
    for (struct po_stream *o = po_list; o && !err; o = o->next)
        if (fileno(o->f) != target)
            err = posix_spawn_file_actions_addclose(&fa, fileno(o->f));
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"--", (char *)cmd, NULL};
    int spawned = 0;
    if (!err)
        spawned = (err = posix_spawn(&ps->pid, "/bin/sh", &fa, NULL, argv, environ)) == 0;
    posix_spawn_file_actions_destroy(&fa);
    close(theirs);
    FILE *f = NULL;
    if (!err) {
        if (!cloexec)
            fcntl(mine, F_SETFD, 0);
        f = fdopen(mine, rd ? "r" : "w");
        err = f ? 0 : errno;
    }
    if (f) {
        ps->f = f;
        ps->next = po_list;
        po_list = ps;
    }
    pthread_mutex_unlock(&po_mu);
    if (!f) {
        close(mine);
        while (spawned && waitpid(ps->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        free(ps);
        errno = err;
    }
    return f;
}

SH_EXPORT int pclose(FILE *f)
{
    pthread_mutex_lock(&po_mu);
    struct po_stream **pp = &po_list, *ps = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->f == f) {
            ps = *pp;
            *pp = ps->next;
            break;
        }
    pthread_mutex_unlock(&po_mu);
    if (!ps)
        return REAL(pclose)(f);
    pid_t pid = ps->pid;
    free(ps);
    fclose(f);
    int status;
    pid_t r;
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    return r < 0 ? -1 : status;
}
