/*
 * shim/shim.h - internal interfaces of libephemera.so.  Nothing here is
 * exported: the library is built with -fvisibility=hidden and only the libc
 * names listed in shim/exports.map leave it.
 *
 * Module prefixes: sys_ (syscall table, init.c), sh_ (global state, init.c),
 * pn_ (pure path helpers, pathnorm.c), path_ (root checks and resolution,
 * paths.c), ft_ (fd table and mapping cache, fdtable.c), fp_ (fast path,
 * fastpath.c), rpc_ (daemon client, rpc.c), ns_ (shared namespace lookups,
 * fastpath.c), elf_ (exec target check, elfcheck.c), proc_ (fork/exec, intercept_proc.c),
 * stdio_ (cookie streams, intercept_stdio.c).
 */
#ifndef SHIM_SHIM_H
#define SHIM_SHIM_H

#include <dirent.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "ephemera/lock.h"
#include "ephemera/proto.h"
#include "ephemera/shm.h"
#include "pathnorm.h"

#define SH_EXPORT __attribute__((visibility("default")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

struct statx;
struct dirent64;

/*
 * Every real call goes through this one table (SQLite os_unix aSyscall
 * style), resolved once with dlsym(RTLD_NEXT).  Tests may overwrite an entry
 * to inject ENOSPC, EINTR or short transfers.
 */
struct sys_table {
    int (*open)(const char *, int, ...);
    int (*openat)(int, const char *, int, ...);
    int (*close)(int);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*pread)(int, void *, size_t, off_t);
    ssize_t (*pwrite)(int, const void *, size_t, off_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*preadv)(int, const struct iovec *, int, off_t);
    ssize_t (*pwritev)(int, const struct iovec *, int, off_t);
    ssize_t (*preadv2)(int, const struct iovec *, int, off_t, int);
    ssize_t (*pwritev2)(int, const struct iovec *, int, off_t, int);
    off_t (*lseek)(int, off_t, int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*isatty)(int);
    int (*ftruncate)(int, off_t);
    int (*truncate)(const char *, off_t);
    int (*fsync)(int);
    int (*fdatasync)(int);
    int (*fallocate)(int, int, off_t, off_t);
    int (*posix_fallocate)(int, off_t, off_t);
    int (*posix_fadvise)(int, off_t, off_t, int);
    int (*stat)(const char *, struct stat *);
    int (*lstat)(const char *, struct stat *);
    int (*fstat)(int, struct stat *);
    int (*fstatat)(int, const char *, struct stat *, int);
    int (*statx)(int, const char *, int, unsigned, struct statx *);
    int (*__xstat)(int, const char *, struct stat *);
    int (*__lxstat)(int, const char *, struct stat *);
    int (*__fxstat)(int, int, struct stat *);
    int (*__fxstatat)(int, int, const char *, struct stat *, int);
    int (*access)(const char *, int);
    int (*faccessat)(int, const char *, int, int);
    int (*euidaccess)(const char *, int);
    int (*unlink)(const char *);
    int (*unlinkat)(int, const char *, int);
    int (*rename)(const char *, const char *);
    int (*renameat)(int, const char *, int, const char *);
    int (*renameat2)(int, const char *, int, const char *, unsigned);
    int (*mkdir)(const char *, mode_t);
    int (*mkdirat)(int, const char *, mode_t);
    int (*rmdir)(const char *);
    int (*link)(const char *, const char *);
    int (*linkat)(int, const char *, int, const char *, int);
    int (*symlink)(const char *, const char *);
    int (*symlinkat)(const char *, int, const char *);
    ssize_t (*readlink)(const char *, char *, size_t);
    ssize_t (*readlinkat)(int, const char *, char *, size_t);
    int (*chmod)(const char *, mode_t);
    int (*fchmod)(int, mode_t);
    int (*fchmodat)(int, const char *, mode_t, int);
    int (*chown)(const char *, uid_t, gid_t);
    int (*lchown)(const char *, uid_t, gid_t);
    int (*fchown)(int, uid_t, gid_t);
    int (*fchownat)(int, const char *, uid_t, gid_t, int);
    int (*utimensat)(int, const char *, const struct timespec *, int);
    int (*futimens)(int, const struct timespec *);
    int (*utimes)(const char *, const struct timeval *);
    int (*utime)(const char *, const void *);
    int (*chdir)(const char *);
    int (*fchdir)(int);
    DIR *(*opendir)(const char *);
    DIR *(*fdopendir)(int);
    struct dirent *(*readdir)(DIR *);
    struct dirent64 *(*readdir64)(DIR *);
    int (*readdir_r)(DIR *, struct dirent *, struct dirent **);
    int (*closedir)(DIR *);
    void (*rewinddir)(DIR *);
    long (*telldir)(DIR *);
    void (*seekdir)(DIR *, long);
    int (*dirfd)(DIR *);
    FILE *(*fopen)(const char *, const char *);
    FILE *(*fdopen)(int, const char *);
    FILE *(*freopen)(const char *, const char *, FILE *);
    pid_t (*fork)(void);
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
    int (*posix_spawn)(pid_t *, const char *, const void *, const void *, char *const[],
                       char *const[]);
    int (*posix_spawnp)(pid_t *, const char *, const void *, const void *, char *const[],
                        char *const[]);
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    ssize_t (*sendfile)(int, int, off_t *, size_t);
    ssize_t (*copy_file_range)(int, off_t *, int, off_t *, size_t, unsigned);
    ssize_t (*splice)(int, off_t *, int, off_t *, size_t, unsigned);
    int (*close_range)(unsigned, unsigned, int);
    long (*syscall)(long, ...);
    int (*glob)(const char *, int, int (*)(const char *, int), void *); /* glob_t */
    int (*flock)(int, int);
    void *(*dlopen)(const char *, int);
    char *(*realpath)(const char *, char *);
    int (*mkostemps)(char *, int, int);
    FILE *(*tmpfile)(void);
    FILE *(*popen)(const char *, const char *);
    int (*pclose)(FILE *);
};
extern struct sys_table sys;
void sys_resolve(void);
/* A wrapper may run before our constructor (another library's constructor): resolve then. */
#define REAL(f) (likely(sys.f != NULL) ? sys.f : (sys_resolve(), sys.f))

/*
 * Our thread-locals use the initial-exec model: the library is loaded at
 * start-up (LD_PRELOAD), so they live in static TLS and an access is one
 * %fs-relative load, where the default model for a shared library calls
 * __tls_get_addr on every read and write of the fast path.
 */
#define SH_TLS __thread __attribute__((tls_model("initial-exec")))

/* Re-entrancy guard: set while the shim itself runs libc code that may call back in. */
extern SH_TLS int sh_busy;

/* ---- global state (init.c) ---------------------------------------------- */
struct sh_global {
    _Atomic int attached;              /* 1 once the shared region is mapped */
    int disabled;                      /* no EPHEMERA_SOCK or attach failed: pass everything */
    struct eph_shm_header *hdr;        /* the shared region */
    struct eph_inode *inodes;
    struct eph_desc *descs;
    _Atomic uint32_t *buckets;
    int daemon_pid;
    char sock_path[108];
    char lib_path[EPH_PATH_MAX];       /* EPHEMERA_LIB, to restore LD_PRELOAD across exec */
    int log_fd;                        /* EPHEMERA_LOG or -1 */
    char roots_env[EPH_PATH_MAX];      /* EPHEMERA_ROOTS as we got it, restored across exec */
    char log_env[EPH_PATH_MAX];        /* EPHEMERA_LOG as we got it */
};
extern struct sh_global sh;

int sh_attach(void);                   /* 0, or -errno; idempotent and thread-safe */
void sh_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint32_t sh_umask(void);
int64_t sh_now_ns(void);               /* CLOCK_REALTIME, for file times */
int64_t sh_coarse_ns(void);            /* CLOCK_REALTIME_COARSE: cheap, for comparisons at day scale */
uint64_t sh_lru_ns(void);              /* CLOCK_MONOTONIC_COARSE, for inode last_use (the daemon's clock) */

/* Thread-local operation counters, added to hdr->c in batches. */
struct sh_tcount {
    uint64_t reads, writes, seeks, stats, bytes_read, bytes_written, slow;
    uint32_t pending;
    uint32_t registered;                /* thread-exit flush registered */
};
extern SH_TLS struct sh_tcount sh_tc;
void sh_flush_counters(void);
void sh_register_thread_flush(void);
static inline void sh_count_tick(void)
{
    if (unlikely(++sh_tc.pending >= 1024))
        sh_flush_counters();
    else if (unlikely(!sh_tc.registered))
        sh_register_thread_flush();
}

/* ---- paths (paths.c) ---------------------------------------------------- */
void path_init(void);                   /* reads EPHEMERA_ROOTS and the cwd */
void path_set_cwd(const char *abs);     /* after a successful chdir */
/*
 * Resolve (dirfd, p) lexically.  Returns 1 if the result lies under a managed
 * root (out holds it, *trailing_slash tells whether p ended in '/'), 0 if not
 * managed (caller passes through), or -errno (ENAMETOOLONG: also pass through).
 */
int path_resolve(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing_slash);
/* Normalise (dirfd, p) to an absolute path whether managed or not: 1, 0 (cannot name it), -errno. */
int path_absolute(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing_slash);
/* The cheap pre-check: can p (relative to dirfd) possibly be managed? */
int path_maybe_managed(int dirfd, const char *p);
int path_is_root(const char *abs);
/*
 * On a namespace miss: resolve abs's parent through the kernel (symlinked
 * directories) and, if follow, a final symlink (which may name an in-memory
 * file).  1 changed and still managed, 0 unchanged, -1 now unmanaged.
 */
int path_canon(char abs[EPH_PATH_MAX], int follow);
/* For a path with "..": the error the kernel's physical walk gives (0, -ENOTDIR, -ENOENT...). */
int path_dotdot_error(int dirfd, const char *p);
int path_physical_error(int dirfd, const char *p);      /* abs is exactly a managed root */

/* ---- fd table (fdtable.c) ----------------------------------------------- */
struct ft_entry {
    uint32_t desc1;                     /* desc index + 1; 0 = fd not managed */
    uint32_t flags;                     /* FT_DISK once swapped to the disk file */
};
#define FT_DISK 1u                      /* the fd was swapped to the evicted file's disk copy */
#define FT_PRIV 2u                      /* desc1 == 0: one of our own cached memfd fds */
#define FT_PRIV_SHIFT 2                 /* ...whose inode index is flags >> FT_PRIV_SHIFT */
extern struct ft_entry *ft_fds;         /* flat array indexed by fd, NULL before init */
extern uint32_t ft_nfds;
extern _Atomic uint32_t ft_hwm;         /* 1 + highest fd ever installed: bounds scans */

static inline int ft_managed(int fd)
{
    struct ft_entry *t = ft_fds;
    return t && (unsigned)fd < ft_nfds && t[fd].desc1 != 0;
}

/* Does this process hold any managed fd (one a child could inherit)? */
static inline int ft_any_managed(void)
{
    uint32_t hwm = ft_fds ? atomic_load(&ft_hwm) : 0;
    for (uint32_t fd = 0; fd < hwm; fd++)
        if (ft_fds[fd].desc1 != 0)
            return 1;
    return 0;
}

/* per-process view of one inode: the mapping of its memfd */
struct ft_map {
    _Atomic(char *) base;               /* current mapping (NULL if none) */
    _Atomic uint64_t len;               /* bytes reserved by that mapping */
    _Atomic uint64_t filled;            /* hint: memfd pages below this are populated (write picks memcpy or pwrite) */
    uint32_t gen;                       /* inode gen the mapping belongs to */
    int refs;                           /* local fds using this inode, under ft_lock */
    int kfd1;                           /* private O_CLOEXEC fd on the memfd + 1, 0 = none */
    int cached;                         /* mapping valid (in use or idle) */
    uint32_t inode;
    char *old_base[8];                  /* superseded mappings, unmapped on last close */
    uint64_t old_len[8];
};

extern struct ft_map *ft_maps;          /* indexed by inode slot */

int ft_init(void);
/* Put nfd's open file description under fd, keeping fd's close-on-exec flag: dup3's result. */
int ft_dup_over(int nfd, int fd);
static inline struct ft_map *ft_map_of(uint32_t inode) { return &ft_maps[inode]; }
/* Install fd -> desc (new reference already held on desc); maps the memfd on first use. */
int ft_install(int fd, uint32_t desc, int kfd_for_map);
/* Install an fd that already refers to the evicted file's disk copy. */
int ft_install_disk(int fd, uint32_t desc);
void ft_after_fork_child(void);
/* Fork: a copy of the fd table for the child (before fork, under ft_lock), adopted by the
 * child and registered with the daemon by the parent (see EPH_OP_LEDGER). */
#define FT_LEDGER_NONE (-2)             /* ft_ledger_fork_copy: no reference to hand over */
int ft_ledger_fork_copy(void);
void ft_ledger_child(int copy_fd);
void ft_ledger_parent(int copy_fd, pid_t child);
void ft_ledger_exec(void);         /* a new image with inherited references: replace the old image's ledger first */
void ft_priv_lost(int fd);
int ft_cached_dup(uint32_t inode, uint32_t gen, int cloexec);
/* The fd is managed or one of our private fds: close/dup2 must look. */
static inline int ft_touched(int fd)
{
    struct ft_entry *t = ft_fds;
    return t && (unsigned)fd < ft_nfds && (t[fd].desc1 | t[fd].flags) != 0;
}
/* Forget fd locally and drop its desc reference (does not close the kernel fd). */
void ft_forget(int fd);
/* Grow the local mapping so it covers at least need bytes. */
char *ft_map_grow(struct ft_map *m, int fd, uint64_t need);
/* The mapping covering [0, need): every fast read and write asks, so the common case is inline. */
static inline char *ft_map_covering(struct ft_map *m, int fd, uint64_t need)
{
    if (likely(atomic_load_explicit(&m->len, memory_order_acquire) >= need))
        return atomic_load_explicit(&m->base, memory_order_acquire);
    return ft_map_grow(m, fd, need);
}
void ft_mark_disk(int fd);
int ft_install_dup(int newfd, int oldfd);
void ft_lock(void);
void ft_unlock(void);

/* ---- descriptions and inodes (fastpath.c) ------------------------------- */
static inline struct eph_desc *fp_desc(int fd) { return &sh.descs[ft_fds[fd].desc1 - 1]; }
static inline struct eph_inode *fp_inode_of(struct eph_desc *d) { return &sh.inodes[d->inode]; }
int fp_desc_alloc(uint32_t inode, uint32_t gen, int flags, uint32_t *out);
void fp_desc_ref(uint32_t desc);
void fp_desc_unref(uint32_t desc);      /* drops the open_count on the inode at 0 */

ssize_t fp_read(int fd, void *buf, size_t n);
ssize_t fp_pread(int fd, void *buf, size_t n, off_t off);
ssize_t fp_write(int fd, const void *buf, size_t n);
ssize_t fp_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t fp_readv(int fd, const struct iovec *iov, int cnt, off_t off, int use_off);
ssize_t fp_writev(int fd, const struct iovec *iov, int cnt, off_t off, int use_off);
off_t fp_lseek(int fd, off_t off, int whence);
int fp_fstat(int fd, struct stat *st);
int fp_ftruncate(int fd, off_t len);
int fp_truncate_inode(uint32_t inode, uint32_t gen, off_t len);
int fp_fallocate(int fd, int mode, off_t off, off_t len);
/* Make the kernel's view match: kernel offset and memfd size = logical size. */
int fp_sync_kernel(int fd, int trim);
int fp_pin(int fd);
void fp_trim_on_close(int fd);
/* Truncate through an fd regardless of its access mode (O_TRUNC at open). */
int fp_set_size_fd(int fd, uint64_t len);
void fp_open_trunc(int fd);
void fp_inode_release(uint32_t inode, uint32_t gen);
/* For swapping: make sure fd is usable for kernel I/O (evicted files). */
int fp_settle(int fd);
/* Keep reporting the in-memory identity of files this process had open when they moved. */
void fp_idmap_translate(struct stat *st);
void fp_idmap_translate_x(struct statx *stx);
void fp_idmap_forget(uint32_t inode);
void fp_idmap_remember(uint64_t ddev, uint64_t dino, uint64_t mdev, uint64_t mino);
void fp_settle_moved(void);

/* stat helpers */
void fp_fill_stat(struct eph_inode *ino, struct stat *st);
int fp_fill_statx(struct eph_inode *ino, unsigned mask, struct statx *stx);

/* namespace lookups in the shared hash (seqlock readers) */
int ns_lookup(const char *abs, uint32_t *inode, uint32_t *gen);
int ns_backoff(unsigned tries); /* seqlock reader wait: 0 retry, -EAGAIN give up */
void fp_wait_moving(struct eph_inode *ino, uint32_t gen); /* until a move to disk is over */
int ns_stat(const char *abs, struct stat *st);    /* 0, -ENOENT if not in memory */

/* 1 if a proper ancestor of abs is an in-memory file (the kernel would say ENOTDIR). */
int ns_ancestor_is_file(const char *abs);
int ns_walk_error(const char *abs);
/* After a real call on a managed path failed with ENOENT: make it ENOTDIR where tmpfs would. */
void sh_enoent(int dirfd, const char *path);
#define ENOENT_FIX(dirfd, path, call)                                \
    ({                                                               \
        __typeof__(call) r_ = (call);                                \
        if (r_ < 0 && errno == ENOENT)                               \
            sh_enoent(dirfd, path);                                  \
        r_;                                                          \
    })

/* ---- daemon client (rpc.c) ---------------------------------------------- */
/* Send req (version/pid filled in), wait for resp; *fd_out gets a received fd or -1. */
int rpc_call(struct eph_req *req, struct eph_resp *resp, int *fd_out);
/* A request about one inode (RELEASE, EVICT): the daemon's status; 0 if it could not be asked (logged). */
int rpc_inode_call(uint32_t op, uint32_t inode, uint32_t gen);
int rpc_call_fd(struct eph_req *req, struct eph_resp *resp, int *fd_out, int send_fd); /* also sends send_fd */
void rpc_send_fd(struct eph_req *req, int send_fd); /* a request the daemon does not answer */
void rpc_after_fork(void);
void rpc_req_init(struct eph_req *req, uint32_t op);

/* ---- exec (intercept_proc.c, elfcheck.c) -------------------------------- */
void proc_init_inherited(void);         /* EPHEMERA_FDMAP and std streams at start */

/* ---- stdio (intercept_stdio.c) ------------------------------------------ */
FILE *stdio_cookie_open(int fd, const char *mode);
void stdio_replace_std(void);
void stdio_std_managed(int fd);

/* ---- access checks (intercept_names.c) ---------------------------------- */
int names_access_ok(struct eph_inode *ino, int amode, int effective);
/* The kernel is about to read path by itself (exec, ld.so): an in-memory file moves to disk. */
void names_to_disk(int dirfd, const char *path);
/* Move an in-memory inode to disk (EVICT): 0, or the daemon's -errno (-ESTALE counts as 0). */
int names_evict(uint32_t inode, uint32_t gen);
/* Before a lock that belongs to the open file description (flock, OFD): give fd one of its own (intercept_io.c). */
void io_own_description(int fd);
/*
 * A lock call on a managed fd, made on the file's current home (settled first
 * if it is not in memory); with recheck, taken again there if the file moved
 * while the call ran (intercept_misc.c: the daemon probes for locks after
 * draining inflight, so a lock that saw MEM with inflight raised is seen).
 */
int lock_on_home(int fd, int (*call)(int, int, unsigned long), int cmd, unsigned long arg, int recheck);
/* Before exec of prog with envp: the program and the libraries ld.so will load from roots go to disk. */
void names_exec_to_disk(const char *prog, char *const envp[]);

#endif
