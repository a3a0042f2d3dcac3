/*
 * shim/intercept_stdio.c - stdio on managed files.  glibc's FILE code calls
 * its own internal read/write/lseek, which LD_PRELOAD cannot see, so a FILE
 * on a managed fd is a fopencookie stream whose callbacks are our wrappers.
 * _fileno is set so fileno() works.  Standard streams inherited on a managed
 * fd are replaced the same way at start-up.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "ephemera/shm.h"

#include "intercept_stdio.h"
#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "paths.h"
#include "fdtable.h"
#include "nsdirfd.h"
#include "diskbytes.h"
#include "fp_desc.h"
#include "fp_settle.h"
#include "nsview.h"
#include "intercept_names.h"

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
    if (!ft_managed(fd) && !ft_sized(fd)) {
        FILE *f = REAL(fdopen)(fd, mode);
        if (f) {
            ndf_forget_if(fd); /* a stand-in's hold: the mark goes (the FILE cannot say when it closes) */
            ft_unmark_root(fd); /* glibc's fclose closes it */
        }
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
    enum { PG = 4096 };
    char buf[16384];
    /* Only pages already in memory can hold what the open left: a page never touched reads as
     * zeros, and zeroing it would be a page fault of its own (two to four in every fopen of an
     * in-memory file; cc1 and as make one each).  Pages are at least 4 KiB: a larger page size
     * only makes vec longer than needed. */
    uintptr_t lo = (uintptr_t)buf, hi = lo + sizeof buf, first = lo & ~(uintptr_t)(PG - 1);
    unsigned char vec[sizeof buf / PG + 1];
    if (PG != sysconf(_SC_PAGESIZE) || mincore((void *)first, hi - first, vec) != 0) {
        explicit_bzero(buf, sizeof buf);
    } else {
        size_t i = 0;
        for (uintptr_t p = first; p < hi; p += PG, i++)
            if (vec[i] & 1) {
                uintptr_t a = p < lo ? lo : p, b = p + PG < hi ? p + PG : hi;
                explicit_bzero((void *)a, b - a);
            }
    }
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* A name outside every root as spelled (paths.c, path_alias), as open asks: a create ("w", "a")
 * before glibc's open, any other after its ENOENT. */
static __attribute__((noinline)) FILE *fopen_outside(const char *path, const char *mode)
{
    char canon[EPH_PATH_MAX];
    int create = !path_bad_ptr(mode) && (mode[0] == 'w' || mode[0] == 'a');
    if (create && path_alias(AT_FDCWD, path, canon))
        return fopen(canon, mode);
    FILE *f = REAL(fopen)(path, mode);
    if (!f && errno == ENOENT && !create && path_alias(AT_FDCWD, path, canon))
        return fopen(canon, mode);
    return f;
}

SH_EXPORT FILE *fopen(const char *path, const char *mode)
{
    if (likely(!path_maybe_managed(AT_FDCWD, path)) || sh.disabled)
        return sh.disabled ? REAL(fopen)(path, mode) : fopen_outside(path, mode);
    FILE *f = fopen_managed(path, mode);
    int e = errno;
    scrub_stack();
    errno = e;
    return f;
}

SH_EXPORT FILE *fopen64(const char *path, const char *mode) __attribute__((alias("fopen")));

/* A stream on a counted disk file (diskbytes.h) writes through our write(), as glibc's own
 * would not: glibc's checks first, then a cookie stream.  NULL: leave it to glibc. */
static FILE *fdopen_counted(int fd, const char *mode)
{
    int flags, kfl = sys.fcntl(fd, F_GETFL);
    if (kfl < 0 || mode_flags(mode, &flags) < 0)
        return NULL;
    int acc = kfl & O_ACCMODE, want = flags & O_ACCMODE;
    if ((want == O_RDWR && acc != O_RDWR) || (want == O_RDONLY && acc == O_WRONLY) ||
        (want == O_WRONLY && acc == O_RDONLY))
        return NULL;
    if ((flags & O_APPEND) && !(kfl & O_APPEND) && sys.fcntl(fd, F_SETFL, kfl | O_APPEND) < 0)
        return NULL;
    return stdio_cookie_open(fd, mode);
}

SH_EXPORT FILE *fdopen(int fd, const char *mode)
{
    if (likely(!ft_managed(fd))) {
        FILE *f = unlikely(ft_sized(fd)) ? fdopen_counted(fd, mode) : NULL;
        if (f)
            return f;
        f = REAL(fdopen)(fd, mode);
        if (f) {
            ndf_forget_if(fd); /* a stand-in's hold: the mark goes (the FILE cannot say when it closes) */
            ft_unmark_root(fd); /* glibc's fclose closes it */
        }
        return f;
    }
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
 * freopen must keep the FILE object the caller holds.  A glibc stream (not
 * one of our cookie streams) on an in-memory file would read and write the
 * memfd behind the shim's back, so it becomes a cookie stream in place: glibc
 * first closes and resets it (by reopening /dev/null), then the fields of a
 * fresh cookie stream on our fd - vtable, mangled callbacks, lock pointer -
 * are copied over it.  Every heap FILE glibc makes has room for that after
 * its _IO_FILE_plus (its lock and wide-data block, which a byte stream no
 * longer uses); the fresh stream stays allocated for the lock.  The standard
 * streams are static objects with no such room, and must stay the streams
 * (to_disk): their file moves to disk and glibc reopens it there.  Otherwise
 * the file moves to disk only if any of this fails, so that glibc can open it.
 */
extern char _IO_2_1_stdin_[], _IO_2_1_stdout_[], _IO_2_1_stderr_[];

static int std_slot(FILE *f)
{
    return f == (FILE *)(void *)_IO_2_1_stdin_ ? 0 : f == (FILE *)(void *)_IO_2_1_stdout_ ? 1
         : f == (FILE *)(void *)_IO_2_1_stderr_ ? 2 : -1;
}

/* Open path for freopen through our open(), so an in-memory file stays there: the fd, or -1. */
static int freopen_open(const char *path, const char *mode)
{
    int flags;
    if (mode_flags(mode, &flags) < 0) {
        errno = EINVAL;
        return -1;
    }
    return open(path, flags, 0666);
}

/* A stream of glibc's plain file kind (fopen, fdopen): the vtable the static stdin has. */
static int plain_file_stream(FILE *f)
{
    void *vt, *file_vt;
    memcpy(&vt, (char *)f + sizeof(FILE), sizeof vt);
    memcpy(&file_vt, _IO_2_1_stdin_ + sizeof(FILE), sizeof file_vt);
    return vt == file_vt;
}

/*
 * Move the file open on fd to disk and swap fd onto the disk copy.  For a
 * static standard stream: glibc's _IO_2_1_stdout_ and friends must stay the
 * stream (a pointer copied before freopen, C++'s std::cout, and the order of
 * their buffered bytes against printf's all depend on one FILE), and that
 * object writes through glibc's internal syscalls, which land in a memfd
 * without moving the logical size.  On disk the kernel's size is the truth.
 */
static void to_disk(int fd)
{
    struct eph_desc *d = fp_desc(fd);
    int e = names_evict(d->inode, d->inode_gen);
    if (e < 0)
        sh_log("standard stream: moving inode %u to disk failed: %s", d->inode, strerror(-e));
    fp_settle(fd);
}

static FILE *freopen_into_cookie(FILE *stream, int fd, const char *mode)
{
    int oldfd = stream->_fileno;
    fflush(stream);
    /* glibc's own close and reset of the stream (buffer freed, list kept) */
    if (!REAL(freopen)("/dev/null", "r", stream)) {
        int e = errno;
        close(fd);
        errno = e;
        return NULL; /* glibc closed it: the caller's stream is gone either way */
    }
    sys.close(stream->_fileno);
    if (oldfd >= 0 && oldfd != fd && fcntl(oldfd, F_GETFD) < 0 && dup2(fd, oldfd) == oldfd) {
        close(fd); /* glibc keeps the fd number of the stream */
        fd = oldfd;
    }
    FILE *c = stdio_cookie_open(fd, mode);
    if (!c) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    /* after the FILE: the vtable pointer, then the cookie and its callbacks */
    const size_t cookie = sizeof(void *) + sizeof(cookie_io_functions_t);
    FILE *chain = stream->_chain;
    memcpy(stream, c, sizeof(FILE));
    stream->_chain = chain;            /* its place in glibc's list of streams */
    memcpy((char *)stream + sizeof(FILE), (char *)c + sizeof(FILE), sizeof(void *) + cookie);
    struct ck *k = ck_of(c);
    if (k) {
        pthread_mutex_lock(&ck_mu);
        k->f = stream;
        pthread_mutex_unlock(&ck_mu);
    }
    /* c stays allocated (stream's lock lives in it) and empty: nothing to flush at exit */
    if (mode[0] == 'a' && !strchr(mode, '+'))
        fseeko(stream, 0, SEEK_END);
    return stream;
}

static FILE *freopen_impl(const char *path, const char *mode, FILE *stream)
{
    /* Through a symlink outside the roots, asked first (paths.c, path_alias_name): a failed open
     * closes the stream, so there is no second try after the kernel's ENOENT. */
    char canon[EPH_PATH_MAX];
    int dirfd = AT_FDCWD;
    if (path && !path_bad_ptr(path) && !sh.disabled && !sh_busy)
        path = path_alias_name(&dirfd, path, canon);
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
        int oldfd = k->fd;
        close(k->fd);
        int fd = open(path, flags, 0666);
        if (fd >= 0 && oldfd >= 0 && fd != oldfd && dup2(fd, oldfd) == oldfd) {
            close(fd); /* the stream keeps its fd number, as glibc's freopen does */
            fd = oldfd;
        }
        k->fd = fd < 0 ? -1 : fd;
        stream->_fileno = k->fd;
        if (fd < 0) {
            int e = errno;
            fclose(stream); /* freopen closes the stream when the open fails */
            errno = e;
            return NULL;
        }
        /* the new mode: glibc's _IO_NO_READS, _IO_NO_WRITES and _IO_IS_APPENDING
         * bits, as its own fopen sets them (stable libio values) */
        int acc = flags & O_ACCMODE;
        stream->_flags = (stream->_flags & ~(0x0004 | 0x0008 | 0x1000)) |
                         (acc == O_WRONLY ? 0x0004 : 0) | (acc == O_RDONLY ? 0x0008 : 0) |
                         ((flags & O_APPEND) ? 0x1000 : 0);
        clearerr(stream);
        fseeko(stream, 0, SEEK_SET);
        if (mode[0] == 'a' && !strchr(mode, '+'))
            fseeko(stream, 0, SEEK_END);
        return stream;
    }
    int fd = -1;
    if (stream && path && path_maybe_managed(AT_FDCWD, path) && !sh.disabled && sh_attach() == 0) {
        fd = freopen_open(path, mode);
        if (fd < 0) {
            int e = errno;
            fflush(stream);
            if (REAL(freopen)("/dev/null", "r", stream))
                fclose(stream); /* freopen closes the stream when the open fails */
            errno = e;
            return NULL;
        }
        int slot = std_slot(stream);
        if (slot >= 0 && ft_managed(fd))
            to_disk(fd);
        if (!ft_managed(fd) || (ft_fds[fd].flags & FT_DISK)) {
            /* on disk (by placement, or moved there for a static stream):
             * glibc reopens what we opened (created, truncated) */
            char p[64], m[8];
            size_t j = 0;
            for (const char *q = mode; *q && j < sizeof m - 1; q++)
                if (*q != 'x')
                    m[j++] = *q;
            m[j] = '\0';
            snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
            int oldfd = stream->_fileno;
            if (oldfd >= 0 && oldfd != fd && ft_managed(oldfd)) {
                fflush(stream);
                ft_forget(oldfd); /* glibc closes it internally */
            }
            FILE *f = REAL(freopen)(p, m, stream);
            int e = errno;
            close(fd);
            errno = e;
            return f;
        }
        /* other kinds (popen's) may lack the room the cookie fields need */
        if (plain_file_stream(stream))
            return freopen_into_cookie(stream, fd, mode);
        close(fd);
    }
    /* in memory but not reopened above: on disk, glibc can open it */
    if (!sh.disabled)
        names_to_disk(AT_FDCWD, path);
    /* glibc closes the old fd internally: forget it first if it was ours. */
    int oldfd = stream ? stream->_fileno : -1;
    if (oldfd >= 0 && ft_managed(oldfd)) {
        fflush(stream);
        ft_forget(oldfd);
    }
    FILE *f = REAL(freopen)(path, mode, stream);
    if (!f && errno == ENOENT && path)
        nsv_enoent(AT_FDCWD, path);
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
 * The C++ runtime binds std::cin/cout/cerr to glibc's static streams when it
 * starts, so once a C++ program points fd 0-2 at a file itself (open, dup2),
 * those keep writing through glibc's internal calls whatever the stdin/
 * stdout/stderr variables say.  Such a file moves to disk, and every local fd
 * of its description becomes one plain kernel description at the shared
 * offset (with the access mode asked for): the kernel then keeps the offset,
 * the size and the order of the bytes for printf and std::cout alike.
 */
static int std_fd_to_disk(int fd)
{
    struct eph_desc *d = fp_desc(fd);
    uint32_t desc1 = ft_fds[fd].desc1;
    uint32_t fl = atomic_load(&d->flags);
    to_disk(fd);
    if (!(ft_fds[fd].flags & FT_DISK))
        return -1;
    char p[32];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    int nfd = sys.open(p, (int)(fl & (O_ACCMODE | O_APPEND)) | O_CLOEXEC);
    if (nfd < 0)
        return -1;
    if (sys.lseek(nfd, (off_t)atomic_load(&d->offset), SEEK_SET) < 0) {
        sys.close(nfd);
        return -1;
    }
    uint32_t hwm = atomic_load(&ft_hwm);
    for (uint32_t i = 0; i < hwm && i < ft_nfds; i++) {
        if (ft_fds[i].desc1 != desc1)
            continue;
        ft_forget((int)i);
        ft_dup_over(nfd, (int)i);
    }
    sys.close(nfd);
    return 0;
}

/* The process this image started as: a forked child that redirects fd 0-2 is
 * about to exec (spawns from C++ programs such as Node.js); its streams stay. */
SH_STARTDATA static pid_t std_image_pid;

__attribute__((constructor)) static void std_note_image(void)
{
    std_image_pid = getpid();
}

static void std_managed(int fd, int at_start)
{
    FILE **slot = fd == 0 ? &stdin : fd == 1 ? &stdout : &stderr;
    if (fd < 0 || fd > 2 || (*slot && *slot == std_cookie[fd]))
        return;
    if (!at_start && *slot == (FILE *)(void *)(fd == 0 ? _IO_2_1_stdin_ : fd == 1 ? _IO_2_1_stdout_ : _IO_2_1_stderr_) &&
        dlsym(RTLD_DEFAULT, "_ZSt4cout") && getpid() == std_image_pid && std_fd_to_disk(fd) == 0)
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

/*
 * fd (0, 1 or 2) now names a managed file: its standard stream must stop
 * writing through glibc's internal syscalls.  Called when a dup2 or open
 * lands on a standard fd (sort -o, shells built on stdio).
 */
void stdio_std_managed(int fd)
{
    std_managed(fd, 0);
}

/* At start-up, before any C++ stream exists: the cookie streams serve them too. */
void stdio_replace_std(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (ft_managed(fd))
            std_managed(fd, 1);
}
