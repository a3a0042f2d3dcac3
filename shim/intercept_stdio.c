/*
 * shim/intercept_stdio.c - stdio on managed files.  glibc's FILE code calls
 * its own internal read/write/lseek, which LD_PRELOAD cannot see, so a FILE
 * on a managed fd is a fopencookie stream whose callbacks are our wrappers.
 * _fileno is set so fileno() works.  Standard streams inherited on a managed
 * fd are replaced the same way at start-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

/*
 * The cookie is a small record rather than the fd itself, so freopen can
 * point an existing stream at another file (glibc's own freopen crashes on a
 * fopencookie stream).  Live streams are listed to find their record.
 */
struct ck {
    int fd;
    FILE *f;
    struct ck *next;
};
static struct ck *ck_list;
static pthread_mutex_t ck_mu = PTHREAD_MUTEX_INITIALIZER;

static ssize_t ck_read(void *c, char *buf, size_t n)
{
    return read(((struct ck *)c)->fd, buf, n);
}

static ssize_t ck_write(void *c, const char *buf, size_t n)
{
    int fd = ((struct ck *)c)->fd;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, buf + done, n - done);
        if (w <= 0)
            return done ? (ssize_t)done : -1;
        done += (size_t)w;
    }
    return (ssize_t)done;
}

static int ck_seek(void *c, off64_t *pos, int whence)
{
    off_t r = lseek(((struct ck *)c)->fd, (off_t)*pos, whence);
    if (r < 0)
        return -1;
    *pos = r;
    return 0;
}

static int ck_close(void *c)
{
    struct ck *k = c;
    pthread_mutex_lock(&ck_mu);
    for (struct ck **p = &ck_list; *p; p = &(*p)->next)
        if (*p == k) {
            *p = k->next;
            break;
        }
    pthread_mutex_unlock(&ck_mu);
    int r = close(k->fd);
    free(k);
    return r;
}

FILE *stdio_cookie_open(int fd, const char *mode)
{
    struct ck *k = malloc(sizeof *k);
    if (!k)
        return NULL;
    k->fd = fd;
    cookie_io_functions_t io = {ck_read, ck_write, ck_seek, ck_close};
    FILE *f = fopencookie(k, mode, io);
    if (!f) {
        free(k);
        return NULL;
    }
    f->_fileno = fd;
    k->f = f;
    pthread_mutex_lock(&ck_mu);
    k->next = ck_list;
    ck_list = k;
    pthread_mutex_unlock(&ck_mu);
    return f;
}

static struct ck *ck_of(FILE *f)
{
    struct ck *k;
    pthread_mutex_lock(&ck_mu);
    for (k = ck_list; k && k->f != f; k = k->next)
        ;
    pthread_mutex_unlock(&ck_mu);
    return k;
}

/* fopen mode string -> open flags, as glibc parses it. */
static int mode_flags(const char *m, int *flags)
{
    int acc, fl = 0;
    switch (m[0]) {
    case 'r': acc = O_RDONLY; break;
    case 'w': acc = O_WRONLY; fl = O_CREAT | O_TRUNC; break;
    case 'a': acc = O_WRONLY; fl = O_CREAT | O_APPEND; break;
    default: return -1;
    }
    for (const char *p = m + 1; *p && p < m + 7; p++) {
        if (*p == '+')
            acc = O_RDWR;
        else if (*p == 'x')
            fl |= O_EXCL;
        else if (*p == 'e')
            fl |= O_CLOEXEC;
        else if (*p == ',')
            break;
    }
    *flags = acc | fl;
    return 0;
}

static FILE *fopen_managed(const char *path, const char *mode)
{
    int flags;
    if (mode_flags(mode, &flags) < 0) {
        errno = EINVAL;
        return NULL;
    }
    int fd = open(path, flags, 0666);
    if (fd < 0)
        return NULL;
    if (!ft_managed(fd)) {
        FILE *f = REAL(fdopen)(fd, mode);
        if (!f) {
            int e = errno;
            sys.close(fd);
            errno = e;
        } else if (mode[0] == 'a' && !strchr(mode, '+')) {
            fseeko(f, 0, SEEK_END); /* as fopen would have */
        }
        return f;
    }
    FILE *f = stdio_cookie_open(fd, mode);
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
    } else if (mode[0] == 'a' && !strchr(mode, '+')) {
        fseeko(f, 0, SEEK_END); /* fopen (not fdopen) puts a write-only append stream at the end */
    }
    return f;
}

/*
 * Zero the stack below the caller's frame that a managed open dirtied (path
 * buffers, the daemon request).  Programs that read uninitialised stack
 * after fopen get the zeros glibc's shallow fopen leaves there: OpenCV 4.6's
 * grey MJPEG encoder reads two never-written Huffman table slots, and ASCII
 * left there by us made it fail an assertion where tmpfs and disk passed.
 */
static __attribute__((noinline)) void scrub_stack(void)
{
    char buf[16384];
    explicit_bzero(buf, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

SH_EXPORT FILE *fopen(const char *path, const char *mode)
{
    if (likely(!path_maybe_managed(AT_FDCWD, path)) || sh.disabled)
        return REAL(fopen)(path, mode);
    FILE *f = fopen_managed(path, mode);
    int e = errno;
    scrub_stack();
    errno = e;
    return f;
}

SH_EXPORT FILE *fopen64(const char *path, const char *mode) __attribute__((alias("fopen")));

SH_EXPORT FILE *fdopen(int fd, const char *mode)
{
    if (likely(!ft_managed(fd)))
        return REAL(fdopen)(fd, mode);
    int flags;
    if (mode_flags(mode, &flags) < 0) {
        errno = EINVAL;
        return NULL;
    }
    struct eph_desc *d = fp_desc(fd);
    uint32_t acc = atomic_load(&d->flags) & O_ACCMODE;
    int want = flags & O_ACCMODE;
    /* like glibc: the stream may not ask for more access than the fd has */
    if ((want == O_RDWR && acc != O_RDWR) || (want == O_RDONLY && acc == O_WRONLY) ||
        (want == O_WRONLY && acc == O_RDONLY)) {
        errno = EINVAL;
        return NULL;
    }
    if ((flags & O_APPEND) && !(atomic_load(&d->flags) & O_APPEND))
        atomic_fetch_or(&d->flags, O_APPEND);
    return stdio_cookie_open(fd, mode);
}

/*
 * freopen must keep the FILE object the caller holds, which a cookie stream
 * cannot take over.  For an in-memory file we move it to disk first and let
 * glibc reopen the real path: slower, but every byte stays coherent.
 */
static FILE *freopen_impl(const char *path, const char *mode, FILE *stream)
{
    struct ck *k = stream ? ck_of(stream) : NULL;
    if (k) {
        /* one of our streams: point its record at the new file (any file: the
         * callbacks are our wrappers, which pass unmanaged fds through) */
        int flags;
        fflush(stream);
        if (!path) {
            clearerr(stream);
            return stream; /* a mode change of the same file: nothing to reopen */
        }
        if (mode_flags(mode, &flags) < 0) {
            errno = EINVAL;
            return NULL;
        }
        close(k->fd);
        int fd = open(path, flags, 0666);
        k->fd = fd < 0 ? -1 : fd;
        stream->_fileno = k->fd;
        if (fd < 0) {
            int e = errno;
            fclose(stream); /* freopen closes the stream when the open fails */
            errno = e;
            return NULL;
        }
        clearerr(stream);
        fseeko(stream, 0, SEEK_SET);
        if (mode[0] == 'a' && !strchr(mode, '+'))
            fseeko(stream, 0, SEEK_END);
        return stream;
    }
    if (path && path_maybe_managed(AT_FDCWD, path) && !sh.disabled) {
        char abs[EPH_PATH_MAX];
        int t;
        uint32_t inode, gen;
        if (path_resolve(AT_FDCWD, path, abs, &t) > 0 && sh_attach() == 0 &&
            (ns_lookup(abs, &inode, &gen) == 0 || (path_canon(abs, 1) > 0 && ns_lookup(abs, &inode, &gen) == 0))) {
            struct eph_req req;
            struct eph_resp resp;
            int fd;
            rpc_req_init(&req, EPH_OP_EVICT);
            req.inode = inode;
            req.gen = gen;
            int rc = rpc_call(&req, &resp, &fd);
            if (fd >= 0)
                sys.close(fd);
            if (rc < 0 || resp.status < 0)
                sh_log("freopen %s: moving it to disk failed (%d/%d)", abs, rc, rc < 0 ? 0 : resp.status);
        }
    }
    /* glibc closes the old fd internally: forget it first if it was ours. */
    int oldfd = stream ? stream->_fileno : -1;
    if (oldfd >= 0 && ft_managed(oldfd)) {
        fflush(stream);
        ft_forget(oldfd);
    }
    FILE *f = REAL(freopen)(path, mode, stream);
    if (!f && errno == ENOENT && path)
        sh_enoent(AT_FDCWD, path);
    return f;
}

SH_EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
    return freopen_impl(path, mode, stream);
}

SH_EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
    return freopen_impl(path, mode, stream);
}

/* The cookie streams we installed as stdin/stdout/stderr, so each is replaced once. */
static FILE *std_cookie[3];

/*
 * fd (0, 1 or 2) now names a managed file: its standard stream must stop
 * writing through glibc's internal syscalls.  Called at start-up and when a
 * dup2 or open lands on a standard fd (sort -o, shells built on stdio).
 */
void stdio_std_managed(int fd)
{
    FILE **slot = fd == 0 ? &stdin : fd == 1 ? &stdout : &stderr;
    if (fd < 0 || fd > 2 || (*slot && *slot == std_cookie[fd]))
        return;
    if (*slot && fd > 0)
        fflush(*slot);
    FILE *f = stdio_cookie_open(fd, fd == 0 ? "r" : "w");
    if (!f)
        return;
    if (fd == 2)
        setvbuf(f, NULL, _IONBF, 0);
    std_cookie[fd] = f;
    *slot = f;
}

void stdio_replace_std(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (ft_managed(fd))
            stdio_std_managed(fd);
}
