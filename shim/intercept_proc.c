/*
 * shim/intercept_proc.c - processes.
 *
 * fork: the child shares every managed description with the parent, so each
 * gets one more reference, taken in the parent before the fork so a racing
 * close in the parent can never free a description the child still names.
 * vfork is served as vfork when the child cannot reach a managed fd (none is
 * open, and none can be made in another thread before the kernel copies the
 * fd table): an entry in assembly (x86_64) asks vfork_target, then calls
 * libc's vfork, and the parent's return clears the child mark (vforkchild.h).
 * Otherwise, and on other machines, it is served by fork.
 *
 * exec: the new image inherits the references of fds that survive exec, and
 * learns about them from EPHEMERA_FDMAP ("fd:desc:gen:flags,..."; fd -1 marks
 * an O_CLOEXEC fd whose reference the new image must drop).  Nothing is
 * released before exec, so a failed exec changes nothing.  LD_PRELOAD and the
 * EPHEMERA_* variables are put back if the caller's environment lost them.  A
 * target that cannot load the shim (static, 32-bit, setuid, or
 * EPHEMERA_NO_PRELOAD set) gets every in-memory file materialised on disk
 * first, and inherited fds synced to the kernel (offset and exact size).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sched.h>
#include <unistd.h>

#include "ephemera/lock.h"
#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "intercept_proc.h"
#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "elfcheck.h"
#include "paths.h"
#include "fdtable.h"
#include "nsdirfd.h"
#include "diskbytes.h"
#include "rpc.h"
#include "nsfast.h"
#include "creds.h"
#include "dircache.h"
#include "fp_desc.h"
#include "fp_size.h"
#include "intercept_names.h"
#include "intercept_stdio.h"
#include "vforkchild.h"

extern char **environ;

/* ---- fork --------------------------------------------------------------- */

static void ref_all(int delta)
{
    uint32_t hwm = atomic_load(&ft_hwm);
    for (uint32_t fd = 0; fd < hwm; fd++) {
        uint32_t d1 = ft_fds[fd].desc1;
        if (!d1)
            continue;
        if (delta > 0)
            fp_desc_ref(d1 - 1);
        else
            fp_desc_unref(d1 - 1);
    }
}

/* The parent flushed this thread's counters just before fork: nothing to reset in sh_tc. */
static void child_reset(void)
{
    ft_after_fork_child();
    rpc_after_fork();
    nsf_after_fork();
    creds_changed();
    dc_after_fork();
    ndf_after_fork();
}

SH_EXPORT pid_t fork(void)
{
    if (unlikely(sh_vfork_child()))
        return sys.fork(); /* our tables are the parent's: the copy keeps the child's mark (vforkchild.h) */
    if (!ft_fds) {
        pid_t pid = REAL(fork)();
        if (pid == 0)
            eph_lock_self_init();
        return pid;
    }
    sh_flush_counters();
    /* Not held across the fork: atfork handlers may close fds through us. */
    struct ft_fork ledger;
    ft_fork_begin(); /* no managed fd changes from the copy until the kernel's own */
    /* the child would share the daemon's descriptions, not only ours; after ft_fork_begin, so that
     * no other thread closes (or opens another file under) a number the walk reopens */
    ft_ddesc_own_all(0);
    ft_lock();
    ref_all(+1);
    ft_ledger_fork_copy(&ledger);
    ft_unlock();
    ndf_fork_prepare(); /* the child's stand-ins' holds on their twins' records */
    pid_t pid = sys.fork();
    if (pid == 0) {
        eph_lock_self_init(); /* our lock words carry our own pid from here on */
        ft_fork_end(1);
        ft_ledger_child(&ledger);
        child_reset();
        ft_ledger_child_late();
        return 0;
    }
    int e = errno;
    ndf_fork_parent(pid);
    ft_fork_end(0);
    ft_ledger_parent(&ledger, pid);
    if (pid < 0)
        ref_all(-1);
    errno = e;
    return pid;
}

/* ---- vfork -------------------------------------------------------------- */


/*
 * vfork as fork: the target when the child could reach shared state, and the whole of vfork on
 * machines without the entry below.
 */
__attribute__((used)) pid_t vfork_by_fork(void);
__attribute__((used)) pid_t vfork_by_fork(void)
{
    return fork();
}

#if defined(__x86_64__)
/* No fd the table knows, but our own private ones (close-on-exec, of no concern to the child). */
static int table_clean(void)
{
    uint32_t hwm = atomic_load(&ft_hwm);
    for (uint32_t fd = 0; fd < hwm; fd++) {
        struct ft_entry e = ft_fds[fd];
        if (e.desc1 || (e.flags && !(e.flags & FT_PRIV)))
            return 0;
    }
    return 1;
}

/* AddressSanitizer's runtime, when the program has it: its own vfork (which ours overrides) cleans
 * the shadow of the stack the child used; without that, the parent would find stale poison there. */
extern void __asan_handle_vfork(void *sp) __attribute__((weak));

/* 1 when the thread runs on a shadow stack (CET): the entry's return path would not match it. */
static int shadow_stack_on(void)
{
    unsigned long ssp = 0;
    __asm__ volatile(".byte 0xf3, 0x48, 0x0f, 0x1e, 0xc8" /* rdsspq %rax: a no-op without CET */
                     : "+a"(ssp));
    return ssp != 0;
}

/*
 * Called by the entry, before the vfork: libc's vfork, or vfork_by_fork.  The real vfork needs a
 * child that cannot touch what it shares with us: no managed, counted or stand-in fd open (none
 * to take a reference on for it, no table to copy), and none installed by another thread until
 * the kernel has copied the fd table (ft_vfork_begin, the hold fork takes, let go by the child's
 * first step: vfork_child_start).  Every wrapper the child then reaches steps aside (vforkchild.h).
 */
__attribute__((used)) void *vfork_target(void);
__attribute__((used)) void *vfork_target(void)
{
    void *real = (void *)sys.vfork;
    if (!real || sh_vfork_child() || shadow_stack_on() || __asan_handle_vfork || getenv("EPHEMERA_VFORK_AS_FORK"))
        return (void *)vfork_by_fork;
    vfork_child_forget();
    path_vfork_child_forget();
    if (sh.disabled) {
        sh_vfork_mark = 1;
        return real;
    }
    if (!ft_fds)
        return (void *)vfork_by_fork;
    if (ft_vfork_begin() < 0)
        return (void *)vfork_by_fork;
    if (!table_clean()) {
        ft_vfork_child_end(); /* (no child: let go as the child would) */
        return (void *)vfork_by_fork;
    }
    nsf_vfork_reserve(); /* the child's exec may hand these on (nsfast.c) */
    sh_vfork_mark = 2; /* 2: ft_fork_rw is held */
    return real;
}

/* The child's first step after the kernel copied the fds: other threads may change theirs again. */
__attribute__((used)) void vfork_child_start(void);
__attribute__((used)) void vfork_child_start(void)
{
    if (sh_vfork_mark == 2) {
        ft_vfork_child_end(); /* the parent thread's tid, which took it, is in the TCB we share */
        sh_vfork_mark = 1;
    }
}

/* The parent's return (pid, or -1 with errno): the child has exec'd or exited, or none was made. */
__attribute__((used)) void vfork_parent_return(void);
__attribute__((used)) void vfork_parent_return(void)
{
    int e = errno;
    if (sh_vfork_mark == 2)
        ft_vfork_parent_end(); /* no child, or one killed before its first step */
    sh_vfork_mark = 0;
    nsf_vfork_done();
    errno = e;
}

/*
 * The exported vfork.  A C function cannot be it: the child returns from it first and its calls
 * overwrite the frame the parent would return through.  This entry keeps nothing on the stack
 * across the system call: the caller's return address waits in a thread-local word (the child
 * only reads it; a vfork in the child goes by fork and leaves it alone), and libc's vfork returns
 * here in both processes.
 */
__attribute__((used)) static SH_TLS void *vfork_ret;
__asm__(".pushsection .text.vfork,\"ax\",@progbits\n" /* its own section: shim/hot.ld places it */
        ".globl vfork\n"
        ".type vfork,@function\n"
        "vfork:\n"
        "  .cfi_startproc\n"
        "  subq $8, %rsp\n"
        "  .cfi_adjust_cfa_offset 8\n"
        "  call vfork_target@PLT\n"
        "  addq $8, %rsp\n"
        "  .cfi_adjust_cfa_offset -8\n"
        "  leaq vfork_by_fork(%rip), %rcx\n"
        "  cmpq %rcx, %rax\n"
        "  jne 1f\n"
        "  jmp *%rax\n" /* a tail call: vfork_by_fork returns to our caller */
        "1:\n"
        "  popq %rcx\n"
        "  .cfi_adjust_cfa_offset -8\n"
        "  .cfi_register %rip, %rcx\n"
        "  movq vfork_ret@gottpoff(%rip), %r11\n"
        "  movq %rcx, %fs:(%r11)\n"
        "  .cfi_undefined %rip\n"
        "  call *%rax\n"
        "  testq %rax, %rax\n"
        "  jnz 2f\n"
        "  call vfork_child_start@PLT\n" /* the stack is 16-aligned here: the caller's, less the return */
        "  xorl %eax, %eax\n"
        "  movq vfork_ret@gottpoff(%rip), %rcx\n"
        "  pushq %fs:(%rcx)\n"
        "  ret\n"
        "2:\n"
        "  pushq %rax\n"
        "  subq $8, %rsp\n"
        "  call vfork_parent_return@PLT\n"
        "  addq $8, %rsp\n"
        "  popq %rax\n"
        "  movq vfork_ret@gottpoff(%rip), %rcx\n"
        "  pushq %fs:(%rcx)\n"
        "  ret\n"
        "  .cfi_endproc\n"
        ".size vfork, .-vfork\n"
        ".popsection\n");
#else
SH_EXPORT pid_t vfork(void)
{
    return vfork_by_fork();
}
#endif

/* ---- exec preparation --------------------------------------------------- */

static int file_is_setid(int fd)
{
    struct stat st;
    return sys.fstat(fd, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID));
}

/* 1 if the program at path (or fd) will load LD_PRELOAD libraries. */
static int target_loads_shim(const char *path, int fd_in, int depth)
{
    if (fd_in < 0)
        names_to_disk(AT_FDCWD, path); /* the kernel reads a script's interpreter by path */
    int fd = fd_in >= 0 ? fd_in : sys.open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && fd_in < 0) {
        /* The kernel's ENOENT: a program (or interpreter) in memory named through a symlink outside
         * the roots (paths.c, path_alias_after) goes to disk by its canonical name, as one named
         * under its root does above; the kernel's exec then finds it through the link.  A vfork
         * child has put everything on disk in the look instead (child_alias). */
        char canon[EPH_PATH_MAX];
        int moved = path_alias_after(-1, AT_FDCWD, path, canon);
        if (moved)
            names_to_disk(AT_FDCWD, canon);
        if (moved || sh_vfork_child())
            fd = sys.open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        return 1; /* the exec will fail anyway */
    unsigned char buf[4096];
    ssize_t n = sys.pread(fd, buf, sizeof buf, 0);
    int setid = file_is_setid(fd);
    if (fd_in < 0)
        sys.close(fd);
    if (setid && getuid() != 0)
        return 0;
    if (n <= 0)
        return 1;
    char interp[256];
    switch (elf_classify(buf, (size_t)n, interp, sizeof interp)) {
    case ELF_STATIC:
        return 0;
    case ELF_SCRIPT:
        return depth < 4 ? target_loads_shim(interp, -1, depth + 1) : 1;
    default:
        return 1;
    }
}

static int find_in_path(const char *file, char *out, size_t n)
{
    if (strchr(file, '/')) {
        if (strlen(file) >= n)
            return -1;
        strcpy(out, file);
        return 0;
    }
    const char *p = getenv("PATH");
    if (!p)
        p = "/bin:/usr/bin";
    while (*p) {
        const char *e = strchr(p, ':');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l + 1 + strlen(file) + 1 <= n) {
            memcpy(out, l ? p : ".", l ? l : 1);
            size_t k = l ? l : 1;
            out[k] = '/';
            strcpy(out + k + 1, file);
            if (access(out, X_OK) == 0) /* ours: a program in memory counts */
                return 0;
        }
        p += l;
        if (*p == ':')
            p++;
    }
    return -1;
}

static int env_has(char *const env[], const char *name, size_t nl, const char **val)
{
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], name, nl) == 0 && env[i][nl] == '=') {
            if (val)
                *val = env[i] + nl + 1;
            return 1;
        }
    return 0;
}

/*
 * EPHEMERA_FDMAP for an exec, built in caller-provided storage (no malloc:
 * this runs in children between fork and exec).
 */
static size_t fdmap_build(char *out, size_t cap, int can_load)
{
    size_t len = 0;
    out[0] = '\0';
    if (!ft_fds)
        return 0;
    uint32_t hwm = atomic_load(&ft_hwm);
    for (uint32_t fd = 0; fd < hwm; fd++) {
        struct ft_entry e = ft_fds[fd];
        if (!e.desc1) {
            /* a counted file on disk (diskbytes.h): the new image counts it too */
            int fdfl = (e.flags & FT_SIZED) ? sys.fcntl((int)fd, F_GETFD) : -1;
            char item[32];
            int k = fdfl >= 0 && !(fdfl & FD_CLOEXEC) ? snprintf(item, sizeof item, "%u:%u:0:0,", fd, DB_FDMAP_COUNTED) : 0;
            if (k > 0 && len + (size_t)k + 1 < cap) {
                memcpy(out + len, item, (size_t)k + 1);
                len += (size_t)k;
            }
            continue;
        }
        int fdfl = sys.fcntl((int)fd, F_GETFD);
        if (fdfl < 0) {
            ft_forget((int)fd); /* closed behind our back */
            continue;
        }
        uint32_t desc = e.desc1 - 1;
        int cloexec = fdfl & FD_CLOEXEC;
        if (!cloexec)
            fp_sync_kernel((int)fd, !can_load);
        char item[64];
        int k = snprintf(item, sizeof item, "%d:%u:%u:%u,", cloexec ? -1 : (int)fd, desc,
                         sh.descs[desc].inode_gen, e.flags);
        if (len + (size_t)k + 1 < cap) {
            memcpy(out + len, item, (size_t)k + 1);
            len += (size_t)k;
        }
    }
    return len;
}

#define ENV_EXTRA 10

/*
 * Fill env (room for n_in + ENV_EXTRA pointers) from in, replacing our
 * variables (EPHEMERA_POOL: only this exec's own, when pool).  Strings live in bufs (one per variable).
 */
struct env_bufs {
    char preload[2 * EPH_PATH_MAX + 32];
    char sock[160];
    char roots[EPH_PATH_MAX + 32];
    char log[EPH_PATH_MAX + 32];
    char lib[EPH_PATH_MAX + 32];
    char region[96];
    char pool[256];
};

static void env_build(char **env, char *const in[], const char *fdmap_var, int pool, struct env_bufs *b)
{
    size_t k = 0;
    const char *pre = NULL;
    for (size_t i = 0; in && in[i]; i++) {
        if (strncmp(in[i], "EPHEMERA_FDMAP=", 15) == 0 || strncmp(in[i], "EPHEMERA_POOL=", 14) == 0)
            continue;
        /* ours replaces it once we are attached; before, it goes on as the program passes it */
        if (strncmp(in[i], "EPHEMERA_REGION=", 16) == 0 && atomic_load(&sh.attached))
            continue;
        if (strncmp(in[i], "LD_PRELOAD=", 11) == 0) {
            pre = in[i] + 11;
            continue;
        }
        env[k++] = in[i];
    }
    if (sh.lib_path[0]) {
        if (pre && strstr(pre, sh.lib_path))
            snprintf(b->preload, sizeof b->preload, "LD_PRELOAD=%s", pre);
        else if (pre && *pre)
            snprintf(b->preload, sizeof b->preload, "LD_PRELOAD=%s %s", sh.lib_path, pre);
        else
            snprintf(b->preload, sizeof b->preload, "LD_PRELOAD=%s", sh.lib_path);
        env[k++] = b->preload;
        if (!env_has(in, "EPHEMERA_LIB", 12, NULL)) {
            snprintf(b->lib, sizeof b->lib, "EPHEMERA_LIB=%s", sh.lib_path);
            env[k++] = b->lib;
        }
    } else if (pre) {
        snprintf(b->preload, sizeof b->preload, "LD_PRELOAD=%s", pre);
        env[k++] = b->preload;
    }
    if (!env_has(in, "EPHEMERA_SOCK", 13, NULL)) {
        snprintf(b->sock, sizeof b->sock, "EPHEMERA_SOCK=%s", sh.sock_path);
        env[k++] = b->sock;
    }
    if (sh.roots_env[0] && !env_has(in, "EPHEMERA_ROOTS", 14, NULL)) {
        snprintf(b->roots, sizeof b->roots, "EPHEMERA_ROOTS=%s", sh.roots_env);
        env[k++] = b->roots;
    }
    if (sh.log_env[0] && !env_has(in, "EPHEMERA_LOG", 12, NULL)) {
        snprintf(b->log, sizeof b->log, "EPHEMERA_LOG=%s", sh.log_env);
        env[k++] = b->log;
    }
    if (atomic_load(&sh.attached) && sh.region_fd >= 0 && sh.region_ino) {
        /* The daemon that serves the region now: one that took it over has the same fd numbers. */
        snprintf(b->region, sizeof b->region, "EPHEMERA_REGION=%d:%d:%llu:%llx", sh_daemon_pid(), sh.region_fd,
                 (unsigned long long)sh.region_ino, (unsigned long long)sh_sock_hash());
        env[k++] = b->region;
    }
    if (fdmap_var && fdmap_var[15])
        env[k++] = (char *)fdmap_var;
    /* pool: a vfork child's exec of an image that loads us, which may claim the slots handed on */
    if (pool && sh_vfork_child() && atomic_load(&sh.attached) && nsf_exec_pool_env(b->pool, sizeof b->pool))
        env[k++] = b->pool;
    env[k] = NULL;
}

static size_t env_count(char *const e[])
{
    size_t n = 0;
    while (e && e[n])
        n++;
    return n;
}

static void materialise_all(void)
{
    struct eph_req req;
    struct eph_resp resp;
    int fd;
    if (sh_attach() < 0)
        return;
    rpc_req_init(&req, EPH_OP_MATERIALISE_ALL);
    if (rpc_call(&req, &resp, &fd) == 0 && fd >= 0)
        sys.close(fd);
    sh_log("materialised in-memory files before exec of a program that cannot load the shim");
}

/* The exec itself.  kind: 0 execve(path), 1 execvpe(file), 2 fexecve(fd), 3 execveat(fd, file, flags). */
static int exec_call(int kind, const char *file, int fd, int flags, char *const argv[], char *const envp[])
{
    if (kind == 0)
        return REAL(execve)(file, argv, envp);
    if (kind == 1)
        return REAL(execvpe)(file, argv, envp);
    if (kind == 2)
        return REAL(fexecve)(fd, argv, envp);
    return (int)REAL(syscall)(SYS_execveat, fd, file, argv, envp, flags);
}

/* Run the exec with the prepared environment (exec_call's kinds). */
static int exec_prepared(int kind, const char *file, int fd, int flags, char *const argv[], char *const envp[])
{
    if (sh.disabled || sh_busy)
        return exec_call(kind, file, fd, flags, argv, envp);
    char target[EPH_PATH_MAX];
    /* A vfork child has no fd of ours to hand on (vfork_target) and must change nothing of ours. */
    int child = sh_vfork_child();
    if (!child) {
        ndf_before_exec(); /* the new image knows no stand-in fd: those it keeps are put on twins */
        ft_ddesc_own_all(1); /* fds it keeps lose the close-on-exec flag pidfd_getfd set */
    }
    int can_load = !env_has(envp, "EPHEMERA_NO_PRELOAD", 19, NULL);
    if (can_load) {
        if (kind == 2)
            can_load = target_loads_shim(NULL, fd, 0);
        else if (kind == 3 ? path_absolute(fd, file, target, NULL) > 0 : find_in_path(file, target, sizeof target) == 0) {
            /* the kernel and ld.so read the program and its libraries by path */
            names_exec_to_disk(target, envp);
            can_load = target_loads_shim(target, -1, 0);
        }
    }
    if (!can_load && child)
        vfork_child_materialise();
    else if (!can_load)
        materialise_all();
    uint32_t nm = ft_fds && !child ? atomic_load(&ft_hwm) : 0;
    size_t cap = 16 + (size_t)(nm < 4096 ? nm : 4096) * 40;
    char fdmap[cap];
    memcpy(fdmap, "EPHEMERA_FDMAP=", 16);
    if (!child)
        fdmap_build(fdmap + 15, cap - 15, can_load);
    size_t n = env_count(envp);
    char *env[n + ENV_EXTRA];
    struct env_bufs bufs;
    env_build(env, envp, fdmap, child && can_load, &bufs);
    if (!child) {
        sh_flush_counters();
        ft_ledger_before_exec();
    }
    int rc = exec_call(kind, file, fd, flags, argv, env);
    if (child)
        nsf_exec_pool_failed(); /* the exec failed: the entries go back to the parent's pool */
    return rc;
}

SH_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    return exec_prepared(0, path, -1, 0, argv, envp);
}

SH_EXPORT int execv(const char *path, char *const argv[])
{
    return exec_prepared(0, path, -1, 0, argv, environ);
}

SH_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    return exec_prepared(1, file, -1, 0, argv, envp);
}

SH_EXPORT int execvp(const char *file, char *const argv[])
{
    return exec_prepared(1, file, -1, 0, argv, environ);
}

SH_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    return exec_prepared(2, NULL, fd, 0, argv, envp);
}

/* execveat(2) (glibc's wrapper, and the raw call through syscall()): a name, relative to a directory
 * fd or not, the fd itself (AT_EMPTY_PATH), as execve and fexecve prepare them. */
SH_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
    if (path_bad_ptr(path))
        return (int)REAL(syscall)(SYS_execveat, dirfd, path, argv, envp, flags); /* the kernel's EFAULT */
    if (!path[0] && (flags & AT_EMPTY_PATH))
        return exec_prepared(2, NULL, dirfd, 0, argv, envp);
    if ((path[0] == '/' || dirfd == AT_FDCWD) && !(flags & AT_SYMLINK_NOFOLLOW))
        return exec_prepared(0, path, -1, 0, argv, envp);
    return exec_prepared(3, path, dirfd, flags, argv, envp);
}

/* execl*: collect the variadic list on the stack (no malloc after vfork/fork). */
#define COLLECT_ARGS(first, ap, extra_env)                        \
    size_t argc = 1;                                              \
    va_list cnt;                                                  \
    va_copy(cnt, ap);                                             \
    while (va_arg(cnt, char *))                                   \
        argc++;                                                   \
    va_end(cnt);                                                  \
    char *argv[argc + 1];                                         \
    argv[0] = (char *)(first);                                    \
    for (size_t i = 1; i <= argc; i++)                            \
        argv[i] = va_arg(ap, char *);                             \
    char *const *extra_env = (char *const *)va_arg(ap, char **);

SH_EXPORT int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, unused_env);
    (void)unused_env;
    va_end(ap);
    return exec_prepared(0, path, -1, 0, argv, environ);
}

SH_EXPORT int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, unused_env);
    (void)unused_env;
    va_end(ap);
    return exec_prepared(1, file, -1, 0, argv, environ);
}

SH_EXPORT int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, envp);
    va_end(ap);
    return exec_prepared(0, path, -1, 0, argv, envp);
}

/* ---- posix_spawn -------------------------------------------------------- */

/*
 * glibc runs spawn file actions in a CLONE_VM child with its internal calls,
 * so a dup2 of a managed fd, or an open of an in-memory path, would bypass
 * the shim.  When either could happen we run the spawn ourselves: fork (our
 * wrapper), the file actions through our wrappers, the attributes through
 * their public getters, exec (our wrapper), and the exec errno back over a
 * pipe.  The file actions have no public reader: this is glibc's layout
 * (stable since 2.x), checked for sanity before use.
 */
struct spawn_action {
    enum { SA_CLOSE, SA_DUP2, SA_OPEN, SA_CHDIR, SA_FCHDIR, SA_CLOSEFROM, SA_TCSETPGRP } tag;
    union {
        struct { int fd; } close_action;
        struct { int fd; int newfd; } dup2_action;
        struct { int fd; char *path; int oflag; mode_t mode; } open_action;
        struct { char *path; } chdir_action;
        struct { int fd; } fchdir_action;
        struct { int from; } closefrom_action;
        struct { int fd; } setpgrp_action;
    } action;
};

struct spawn_fa {
    int allocated;
    int used;
    struct spawn_action *actions;
    int pad[16];
};

/*
 * Could a path action name a managed path?  Relative ones resolve in the child's directory at that
 * action: the parent's, joined with the chdir actions before it (at), or unknown after an fchdir
 * (at == NULL): then, and when the join would not fit, say "maybe".
 */
static int spawn_path_managed(const char *at, const char *p)
{
    if (!p)
        return 1;
    if (p[0] == '/')
        return path_maybe_managed(AT_FDCWD, p);
    if (!at)
        return 1;
    if (!at[0])
        return path_maybe_managed(AT_FDCWD, p);
    char joined[EPH_PATH_MAX];
    int n = snprintf(joined, sizeof joined, "%s/%s", at, p);
    return n < 0 || (size_t)n >= sizeof joined || path_maybe_managed(AT_FDCWD, joined);
}

/* 0: glibc may spawn; 1: we must; -1: the actions are not in the layout we know. */
static int spawn_needs_us(const posix_spawn_file_actions_t *fa)
{
    int managed = ft_any_managed();
    if (!fa)
        return managed;
    const struct spawn_fa *f = (const void *)fa;
    if (f->used < 0 || f->used > f->allocated || (f->used && !f->actions))
        return -1;
    /* glibc's child changes directory and opens with calls we cannot see: the kernel would miss a
     * directory or file in memory (ENOENT), or an O_CREAT would make a disk file the in-memory name
     * hides.  Such actions are run through our wrappers (spawn_ourselves). */
    char cwd_buf[EPH_PATH_MAX];
    const char *at = ""; /* "": the parent's directory */
    for (int i = 0; i < f->used; i++) {
        const struct spawn_action *a = &f->actions[i];
        if ((unsigned)a->tag > SA_TCSETPGRP)
            return -1;
        if (managed)
            continue; /* (the layout of the rest is still checked) */
        if (a->tag == SA_OPEN && spawn_path_managed(at, a->action.open_action.path))
            managed = 1;
        else if (a->tag == SA_CHDIR) {
            const char *d = a->action.chdir_action.path;
            if (spawn_path_managed(at, d))
                managed = 1;
            else if (d[0] == '/' || !at[0])
                at = d;
            else {
                size_t al = strlen(at), dl = strlen(d);
                if (al + 1 + dl >= sizeof cwd_buf) {
                    managed = 1;
                } else {
                    memmove(cwd_buf, at, al); /* (at may be cwd_buf) */
                    cwd_buf[al] = '/';
                    memcpy(cwd_buf + al + 1, d, dl + 1);
                    at = cwd_buf;
                }
            }
        } else if (a->tag == SA_FCHDIR) {
            if (ft_mdirfd(a->action.fchdir_action.fd))
                managed = 1; /* a stand-in: glibc's fchdir would land on no directory of ours */
            at = NULL; /* unknown from here: relative names are "maybe" */
        }
    }
    return managed;
}

static int spawn_child(const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at)
{
    short fl = 0;
    if (at && posix_spawnattr_getflags(at, &fl) != 0)
        return EINVAL;
    if (fl & POSIX_SPAWN_SETSID && setsid() < 0)
        return errno;
    if (fl & POSIX_SPAWN_SETPGROUP) {
        pid_t pg = 0;
        posix_spawnattr_getpgroup(at, &pg);
        if (setpgid(0, pg) < 0)
            return errno;
    }
    if (fl & POSIX_SPAWN_SETSIGDEF) {
        sigset_t def;
        posix_spawnattr_getsigdefault(at, &def);
        struct sigaction sa = {.sa_handler = SIG_DFL};
        for (int sig = 1; sig < NSIG; sig++)
            if (sigismember(&def, sig) == 1)
                sigaction(sig, &sa, NULL);
    }
    if (fl & POSIX_SPAWN_SETSIGMASK) {
        sigset_t mask;
        posix_spawnattr_getsigmask(at, &mask);
        sigprocmask(SIG_SETMASK, &mask, NULL);
    }
    if (fl & POSIX_SPAWN_RESETIDS && (setgid(getgid()) < 0 || setuid(getuid()) < 0))
        return errno;
    if (fl & (POSIX_SPAWN_SETSCHEDULER | POSIX_SPAWN_SETSCHEDPARAM)) {
        struct sched_param sp;
        int pol = 0;
        posix_spawnattr_getschedparam(at, &sp);
        posix_spawnattr_getschedpolicy(at, &pol);
        int r = (fl & POSIX_SPAWN_SETSCHEDULER) ? sched_setscheduler(0, pol, &sp) : sched_setparam(0, &sp);
        if (r < 0)
            return errno;
    }
    const struct spawn_fa *f = (const void *)fa;
    for (int i = 0; f && i < f->used; i++) {
        const struct spawn_action *a = &f->actions[i];
        switch (a->tag) {
        case SA_CLOSE:
            close(a->action.close_action.fd); /* EBADF is ignored, as glibc does */
            break;
        case SA_DUP2:
            if (a->action.dup2_action.fd == a->action.dup2_action.newfd) {
                int fdf = fcntl(a->action.dup2_action.fd, F_GETFD);
                if (fdf < 0 || fcntl(a->action.dup2_action.fd, F_SETFD, fdf & ~FD_CLOEXEC) < 0)
                    return errno;
            } else if (dup2(a->action.dup2_action.fd, a->action.dup2_action.newfd) < 0) {
                return errno;
            }
            break;
        case SA_OPEN: {
            int nfd = open(a->action.open_action.path, a->action.open_action.oflag, a->action.open_action.mode);
            if (nfd < 0)
                return errno;
            if (nfd != a->action.open_action.fd) {
                if (dup2(nfd, a->action.open_action.fd) < 0)
                    return errno;
                close(nfd);
            }
            break;
        }
        case SA_CHDIR:
            if (chdir(a->action.chdir_action.path) < 0)
                return errno;
            break;
        case SA_FCHDIR:
            if (fchdir(a->action.fchdir_action.fd) < 0)
                return errno;
            break;
        case SA_CLOSEFROM:
            closefrom(a->action.closefrom_action.from);
            break;
        case SA_TCSETPGRP:
            if (tcsetpgrp(a->action.setpgrp_action.fd, getpgrp()) < 0)
                return errno;
            break;
        }
    }
    return 0;
}

static int spawn_ourselves(int p, pid_t *pidp, const char *file, const posix_spawn_file_actions_t *fa,
                           const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        sys.close(pfd[0]);
        sys.close(pfd[1]);
        return e;
    }
    if (pid == 0) {
        sys.close(pfd[0]);
        int e = spawn_child(fa, at);
        if (e == 0) {
            if (p)
                execvpe(file, argv, envp);
            else
                execve(file, argv, envp);
            e = errno;
        }
        ssize_t w = sys.write(pfd[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    sys.close(pfd[1]);
    int e = 0;
    ssize_t n;
    do
        n = sys.read(pfd[0], &e, sizeof e);
    while (n < 0 && errno == EINTR);
    sys.close(pfd[0]);
    if (n == (ssize_t)sizeof e && e != 0) {
        waitpid(pid, NULL, 0); /* the child failed before exec: reap it, as glibc does */
        return e;
    }
    if (pidp)
        *pidp = pid;
    return 0;
}

static int spawn_common(int p, pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
    if (sh.disabled || sh_busy || sh_vfork_child())
        return p ? REAL(posix_spawnp)(pid, file, fa, at, argv, envp)
                 : REAL(posix_spawn)(pid, file, fa, at, argv, envp);
    ndf_before_exec(); /* the child's image knows no stand-in fd */
    ft_ddesc_own_all(1);
    int need = spawn_needs_us(fa);
    if (need > 0)
        return spawn_ourselves(p, pid, file, fa, at, argv, envp);
    if (need < 0)
        sh_log("posix_spawn file actions in an unknown layout; letting glibc run them");
    /* No managed fd can reach the child: glibc's fast spawn, with our environment. */
    char target[EPH_PATH_MAX];
    ndf_before_exec(); /* the new image knows no stand-in fd: those it keeps are put on twins */
    int can_load = !env_has(envp, "EPHEMERA_NO_PRELOAD", 19, NULL);
    if (can_load && find_in_path(file, target, sizeof target) == 0 && (p || strchr(file, '/')))
        can_load = target_loads_shim(target, -1, 0);
    if (!can_load)
        materialise_all();
    size_t n = env_count(envp);
    char *env[n + ENV_EXTRA];
    struct env_bufs bufs;
    env_build(env, envp, NULL, 0, &bufs);
    return p ? REAL(posix_spawnp)(pid, file, fa, at, argv, env)
             : REAL(posix_spawn)(pid, file, fa, at, argv, env);
}

SH_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                          const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
    return spawn_common(0, pid, path, fa, at, argv, envp);
}

SH_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                           const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
    return spawn_common(1, pid, file, fa, at, argv, envp);
}

/* glibc's system() spawns internally, past our exec wrapper: redo it with fork+exec. */
SH_EXPORT int system(const char *cmd)
{
    if (!cmd)
        return 1;
    struct sigaction ign = {.sa_handler = SIG_IGN}, oint, oquit;
    sigset_t block, omask;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &oint);
    sigaction(SIGQUIT, &ign, &oquit);
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &omask);
    int status = -1;
    pid_t pid = fork();
    if (pid == 0) {
        sigaction(SIGINT, &oint, NULL);
        sigaction(SIGQUIT, &oquit, NULL);
        sigprocmask(SIG_SETMASK, &omask, NULL);
        execl("/bin/sh", "sh", "-c", "--", cmd, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) {
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                status = -1;
                break;
            }
        }
    }
    int e = errno;
    sigaction(SIGINT, &oint, NULL);
    sigaction(SIGQUIT, &oquit, NULL);
    sigprocmask(SIG_SETMASK, &omask, NULL);
    errno = e;
    return status;
}

/* ---- start of a new image ----------------------------------------------- */

SH_START void proc_init_inherited(void)
{
    nsf_init_inherited();
    const char *map = getenv("EPHEMERA_FDMAP");
    if (!map || !*map)
        return;
    if (sh_attach() < 0)
        return;
    ft_ledger_exec();
    for (const char *p = map; *p;) {
        int fd;
        unsigned desc, gen, fl;
        int got = sscanf(p, "%d:%u:%u:%u", &fd, &desc, &gen, &fl);
        if (got == 4 && desc == DB_FDMAP_COUNTED && fd >= 0)
            db_opened(fd);
        else if (got == 4 && desc < sh.hdr->ndescs) {
            struct eph_desc *d = &sh.descs[desc];
            struct eph_inode *ino = &sh.inodes[d->inode];
            int valid = atomic_load(&d->refs) > 0 && d->inode_gen == gen;
            if (!valid) {
                sh_log("FDMAP entry %d:%u:%u is stale; ignored", fd, desc, gen);
            } else if (fd < 0) {
                fp_desc_unref(desc); /* it was O_CLOEXEC: the kernel closed it */
            } else {
                struct stat st;
                int open_ok = sys.fcntl(fd, F_GETFD) >= 0 && sys.fstat(fd, &st) == 0;
                /* the fd must still be the file it was, not one a raw dup2 or a spawn action put there
                 * (an in-memory file: the memfd's own number, its low 32 bits; daemon/namespace.c) */
                if (open_ok && (fl & FT_DISK) && ft_disk_same(fl, &st))
                    ft_install_disk(fd, desc, fl);
                else if (open_ok && (uint32_t)st.st_ino == (uint32_t)ino->ino)
                    ft_install_inherited(fd, desc);
                else
                    fp_desc_unref(desc); /* a spawn file action closed or replaced it */
            }
        }
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    /* Our children get a fresh map; do not let a stale one leak into them. */
    unsetenv("EPHEMERA_FDMAP");
    stdio_replace_std();
}
