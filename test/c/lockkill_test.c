/*
 * A process killed (SIGKILL) while it holds an inode lock or a description
 * lock of the shared region (eph_lock_t, ephemera/lock.h) does not hang the
 * others: the next locker finds the holder gone and takes the lock over
 * within a bound, and what the lock protects is made consistent again.
 *
 * First on a bare shared mapping (no daemon, no shim): a killed holder of
 * both an inode's and a description's lock, one still a zombie, and a live
 * holder that must not be taken over; the repair of an inode's memfd.  Then
 * on real processes under the fault build of the shim (EPHEMERA_LOCK_STALL
 * stops a writer inside its critical section, and a truncation between its
 * ftruncate and the store of the new capacity): the holder is killed, another
 * process writes and reads the file through the same description, the daemon
 * evicts it, and every byte is what was written.  The same for a reader
 * stopped inside its copy (no lock: the inode's count of reads in flight
 * raised), killed there or left stopped, while another process truncates the
 * file: the truncation ends within a bound, a live reader does not fault, and
 * a dead one's count is given back (shim/fp_size.c, fp_drain_reads).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#define EPH_LOCK_REPORT_S 1 /* a live holder's waiter reports after 1 s, not 10 */
#include "ephemera/lock.h"
#include "shimmed.h"

#define BOUND_S 5.0 /* a waiter must own a dead holder's lock within this */

/* ---- the bare lock ------------------------------------------------------ */

struct pair {
    struct eph_inode ino;
    struct eph_desc desc;
    _Atomic uint32_t reported; /* the holder a waiter's long-wait report named (eph_lock_waiting) */
};

static _Atomic unsigned recovered_calls; /* this process's calls of the hook */

/* The test's own hook (the shim and the daemon have theirs): count the calls. */
void eph_lock_recovered(eph_lock_t *l, uint32_t dead_pid)
{
    (void)l;
    (void)dead_pid;
    atomic_fetch_add(&recovered_calls, 1);
}

static struct pair *report_to; /* a locker's: where its report hook writes */

/* The test's report hook: the holder it names, where the test process sees it. */
void eph_lock_waiting(eph_lock_t *l, uint32_t owner, unsigned s)
{
    (void)l;
    (void)s;
    if (report_to)
        atomic_store(&report_to->reported, owner);
}

/* A child that takes both locks, says so on the pipe and waits to be killed. */
static pid_t holder(struct pair *p)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        eph_lock_self_init();
        eph_lock(&p->desc.lock);
        eph_lock(&p->ino.lock);
        if (write(fds[1], "h", 1) != 1)
            _exit(2);
        for (int i = 0; i < 600; i++) /* bounded: a test that forgot us ends anyway */
            sleep(1);
        _exit(3);
    }
    close(fds[1]);
    char c;
    ssize_t r = pid > 0 ? read(fds[0], &c, 1) : -1;
    close(fds[0]);
    if (r != 1 && pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

/* In a child: lock the description then the inode, as a write does.  Exit 0
 * when both were taken over (EPH_LOCK_RECOVERED) and the hook ran twice. */
static pid_t locker(struct pair *p)
{
    pid_t pid = fork();
    if (pid == 0) {
        eph_lock_self_init();
        atomic_store(&recovered_calls, 0);
        report_to = p;
        int a = eph_lock(&p->desc.lock), b = eph_lock(&p->ino.lock);
        int ok = a == EPH_LOCK_RECOVERED && b == EPH_LOCK_RECOVERED && atomic_load(&recovered_calls) == 2;
        eph_unlock(&p->ino.lock);
        eph_unlock(&p->desc.lock);
        _exit(ok ? 0 : 1);
    }
    return pid;
}

/* Wait for pid (bounded by BOUND_S): its exit status, or -1 if it is still running. */
static int wait_bounded(pid_t pid, double *took)
{
    return wait_bounded_s(pid, BOUND_S, took);
}

static void bare_locks(void)
{
    struct pair *p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
    if (p == MAP_FAILED)
        return;
    eph_lock_self_init();

    /* Killed and reaped: a fresh process locks both within the bound. */
    pid_t h = holder(p);
    CHECK(h > 0, "the holder did not start");
    CHECK((atomic_load(&p->ino.lock.word) & EPH_LOCK_OWNER) == (uint32_t)h, "the inode lock word %#x names pid %d",
          atomic_load(&p->ino.lock.word), (int)h);
    kill(h, SIGKILL);
    waitpid(h, NULL, 0);
    double took;
    int st = wait_bounded(locker(p), &took);
    CHECK(st == 0, "after a killed holder: the locker exited %d after %.2f s (0: both locks taken over)", st, took);
    if (st != 0)
        return; /* the locks may still be held: anything more would wait too */
    printf("lockkill_test: a killed holder's two locks taken over in %.3f s\n", took);

    /* Killed but not reaped (a zombie whose parent is the locker itself), in a child so that a
     * lock that is never taken over fails this within the bound instead of hanging the test. */
    pid_t z = fork();
    if (z == 0) {
        eph_lock_self_init();
        atomic_store(&recovered_calls, 0);
        pid_t zh = holder(p);
        kill(zh, SIGKILL);
        int a = eph_lock(&p->desc.lock), b = eph_lock(&p->ino.lock);
        int ok = a == EPH_LOCK_RECOVERED && b == EPH_LOCK_RECOVERED && atomic_load(&recovered_calls) == 2;
        eph_unlock(&p->ino.lock);
        eph_unlock(&p->desc.lock);
        waitpid(zh, NULL, 0);
        _exit(ok ? 0 : 1);
    }
    st = wait_bounded(z, &took);
    CHECK(st == 0, "behind a zombie holder (its parent locking): exited %d after %.2f s", st, took);
    if (st != 0)
        return; /* the locks may still be held */

    /* A live holder keeps its locks: the waiter waits, and takes over only once it is killed. */
    h = holder(p);
    pid_t w = locker(p);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(waitpid(w, NULL, WNOHANG) == 0, "a waiter took the locks of a live holder");
    /* ... and says whom it waits for, once EPH_LOCK_REPORT_S (1 s here) has passed. */
    for (int i = 0; i < 500 && atomic_load(&p->reported) != (uint32_t)h; i++) {
        ts.tv_nsec = 10 * 1000 * 1000;
        nanosleep(&ts, NULL);
    }
    CHECK(atomic_load(&p->reported) == (uint32_t)h, "the waiter's report named %u, want the live holder %d",
          atomic_load(&p->reported), (int)h);
    CHECK(waitpid(w, NULL, WNOHANG) == 0, "a waiter took the locks of a live holder after reporting it");
    kill(h, SIGKILL);
    waitpid(h, NULL, 0);
    st = wait_bounded(w, &took);
    CHECK(st == 0, "the waiter behind a holder killed later exited %d after %.2f s", st, took);
    if (st != 0)
        return;

    /* Uncontended: the word holds our pid, and nothing is left behind. */
    CHECK(eph_lock(&p->ino.lock) == 0 && (atomic_load(&p->ino.lock.word) & EPH_LOCK_OWNER) == (uint32_t)getpid(),
          "own lock word %#x", atomic_load(&p->ino.lock.word));
    CHECK(!eph_trylock(&p->ino.lock), "trylock of a held lock succeeded");
    eph_unlock(&p->ino.lock);
    CHECK(eph_trylock(&p->ino.lock) && atomic_load(&p->ino.lock.word) == (uint32_t)getpid(), "trylock");
    eph_unlock(&p->ino.lock);
    munmap(p, sizeof *p);
}

/* eph_inode_lock_repair: the memfd is made as long as capacity again, only if it is the inode's own. */
static void repair(void)
{
    struct eph_inode in;
    memset(&in, 0, sizeof in);
    int fd = memfd_create("lockkill", MFD_CLOEXEC), other = memfd_create("other", MFD_CLOEXEC);
    struct stat sb;
    CHECK(fd >= 0 && other >= 0 && fstat(fd, &sb) == 0, "memfd: %s", strerror(errno));
    in.ino = (uint64_t)sb.st_ino | EPH_INO_TAG;
    atomic_store(&in.state, EPH_MEM);
    atomic_store(&in.size, 4096);
    atomic_store(&in.capacity, 3 * 4096);
    CHECK(ftruncate(fd, 4096) == 0 && pwrite(fd, "keep", 4, 0) == 4, "setup");
    CHECK(eph_inode_lock_repair(&in, other) == 0, "another memfd was changed");
    CHECK(fstat(other, &sb) == 0 && sb.st_size == 0, "another memfd's size %lld", (long long)sb.st_size);
    CHECK(eph_inode_lock_repair(&in, fd) == 1, "a short memfd was not repaired");
    CHECK(fstat(fd, &sb) == 0 && sb.st_size == 3 * 4096, "memfd size %lld, want capacity", (long long)sb.st_size);
    char b[4] = "";
    CHECK(pread(fd, b, 4, 0) == 4 && memcmp(b, "keep", 4) == 0, "bytes below size moved");
    CHECK(atomic_load(&in.holes) == 1, "holes not set");
    atomic_store(&in.capacity, 4096); /* a grow that died before its capacity store */
    CHECK(eph_inode_lock_repair(&in, fd) == 1 && fstat(fd, &sb) == 0 && sb.st_size == 4096, "long memfd: %lld",
          (long long)sb.st_size);
    CHECK(eph_inode_lock_repair(&in, fd) == 0, "a consistent memfd was changed");
    /* A memfd that served files before reports its reuse count in bits 32-43 (eph_file_ino):
     * still the inode's own memfd. */
    in.ino = eph_file_ino((uint64_t)sb.st_ino, 5);
    atomic_store(&in.capacity, 2 * 4096);
    CHECK(eph_inode_lock_repair(&in, fd) == 1 && fstat(fd, &sb) == 0 && sb.st_size == 2 * 4096,
          "a reused memfd was not repaired: size %lld", (long long)sb.st_size);
    close(fd);
    close(other);
}

/* ---- real processes under the shim ------------------------------------------ */

static char run_dir[PATH_MAX];

static void pattern(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed + i * 7 + i / 4096);
}

/* root/name (its path in a, PATH_MAX bytes), made with n bytes of the pattern of seed, also in
 * want: the fd, open O_RDWR. */
static int patterned_file(const char *root, const char *name, char *a, unsigned char *want, size_t n,
                          unsigned seed)
{
    snprintf(a, PATH_MAX, "%s/%s", root, name);
    pattern(want, n, seed);
    int fd = open(a, O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, want, n) == (ssize_t)n, "write %s: %s", a, strerror(errno));
    return fd;
}

/* What a victim does on the description it shares with us (stop_inside). */
enum victim_op { V_WRITE, V_TRUNCATE, V_READ };

#define READ_N (512 * 1024) /* V_READ: the length it reads from offset 0 */

/*
 * A forked victim that shares fd's description and stops (SIGSTOP) at point
 * inside a call on it: its pid, stopped, or -1.  A V_READ victim that is let
 * go on exits 0 when it read READ_N bytes that are the pattern of seed arg,
 * or arg bytes of it when arg > 0 is a length (the read met a shorter file).
 */
static pid_t stop_inside(int fd, const char *point, enum victim_op op, int arg)
{
    pid_t v = fork();
    if (v == 0) {
        setenv("EPHEMERA_LOCK_STALL", point, 1);
        if (op == V_TRUNCATE)
            (void)!ftruncate(fd, arg);
        else if (op == V_WRITE)
            (void)!write(fd, "VICTIM", 6);
        if (op != V_READ)
            _exit(3); /* never reached while stopped */
        static unsigned char got[READ_N], want[READ_N];
        pattern(want, READ_N, 5);
        ssize_t r = pread(fd, got, READ_N, 0);
        _exit(r > 0 && memcmp(got, want, (size_t)r) == 0 ? 0 : 1);
    }
    int stopped = wait_stopped(v);
    CHECK(stopped, "the victim did not stop inside the call at %s", point);
    if (!stopped) {
        kill(v, SIGKILL);
        waitpid(v, NULL, 0);
        return -1;
    }
    return v;
}

/* The same, killed (SIGKILL) where it stopped: 1 if it stopped there. */
static int kill_inside(int fd, const char *point, enum victim_op op, int arg)
{
    pid_t v = stop_inside(fd, point, op, arg);
    if (v < 0)
        return 0;
    kill(v, SIGKILL);
    waitpid(v, NULL, 0);
    return 1;
}

/* write (off < 0) or pwrite from a forked child, which shares fd's description: 1 if it
 * wrote everything within BOUND_S (a lock a dead holder kept would hold it forever). */
static int bounded_write(int fd, const void *b, size_t n, off_t off, double *took)
{
    pid_t pid = fork();
    if (pid == 0) {
        ssize_t w = off < 0 ? write(fd, b, n) : pwrite(fd, b, n, off);
        _exit(w == (ssize_t)n ? 0 : 1);
    }
    return wait_bounded(pid, took) == 0;
}

static int file_is(const char *path, const unsigned char *want, size_t n)
{
    unsigned char *got = malloc(n + 1);
    int fd = open(path, O_RDONLY);
    ssize_t r = fd >= 0 && got ? pread(fd, got, n + 1, 0) : -1;
    int ok = r == (ssize_t)n && memcmp(got, want, n) == 0;
    if (!ok && r > 0)
        for (size_t i = 0; i < (size_t)r && i < n; i++)
            if (got[i] != want[i]) {
                fprintf(stderr, "%s: byte %zu is %#x, want %#x (read %zd of %zu)\n", path, i, got[i], want[i], r, n);
                break;
            }
    if (fd >= 0)
        close(fd);
    free(got);
    return ok;
}

/* The same check from a fresh process. */
static int file_is_elsewhere(const char *path, const unsigned char *want, size_t n)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(file_is(path, want, n) ? 0 : 1);
    double took;
    return wait_bounded(pid, &took) == 0;
}

static void evict_all(const char *when)
{
    char buf[8192];
    ephd_control(run_dir, "{\"v\":1,\"id\":2,\"op\":\"shrink\",\"bytes\":0}\n", buf, sizeof buf);
    CHECK(ephd_stat(run_dir, "files_in_memory") == 0, "%s: still in memory after the shrink: %s", when, buf);
    ephd_control(run_dir, "{\"v\":1,\"id\":3,\"op\":\"grow\",\"bytes\":1073741824}\n", buf, sizeof buf);
}

/* A writer killed inside write() on a description it shares with us: both locks held. */
static void killed_writer(const char *root)
{
    char a[PATH_MAX];
    enum { N = 96 * 1024 };
    static unsigned char want[N + 16];
    int fd = patterned_file(root, "killed-writer", a, want, N, 1);
    CHECK(lseek(fd, 4096, SEEK_SET) == 4096, "lseek");
    if (!kill_inside(fd, "write", V_WRITE, 0)) {
        close(fd);
        return;
    }
    /* The same description (its lock) and the same inode (its lock): a write at the shared offset. */
    double took;
    int ok = bounded_write(fd, "after", 5, -1, &took);
    CHECK(ok, "the write behind the killed holder failed or waited %.2f s", took);
    if (!ok) {
        close(fd); /* the locks are still held: anything more would wait too */
        return;
    }
    printf("lockkill_test: write behind a writer killed inside write(): %.3f s\n", took);
    memcpy(want + 4096, "after", 5); /* the victim's write never happened: the offset stayed */
    CHECK(lseek(fd, 0, SEEK_CUR) == 4096 + 5, "offset %lld", (long long)lseek(fd, 0, SEEK_CUR));
    CHECK(file_is(a, want, N), "the file after the kill");
    CHECK(file_is_elsewhere(a, want, N), "the file in a fresh process");
    evict_all("killed writer");
    CHECK(file_is_elsewhere(a, want, N), "the file after eviction");
    CHECK(pwrite(fd, "disk", 4, 8) == 4, "write on disk: %s", strerror(errno));
    memcpy(want + 8, "disk", 4);
    CHECK(file_is_elsewhere(a, want, N), "the file written on disk");
    close(fd);
    unlink(a);
}

/*
 * A truncation killed between the memfd's ftruncate and the store of the new
 * capacity: the memfd is shorter than capacity says.  A write through our
 * mapping below that capacity would fault (SIGBUS) unless the next locker
 * made the memfd as long as capacity again.
 */
static void killed_truncate(const char *root)
{
    char a[PATH_MAX];
    enum { N = 512 * 1024, CUT = 8192 };
    static unsigned char want[N];
    int fd = patterned_file(root, "killed-truncate", a, want, N, 3);
    CHECK(pwrite(fd, want, N, 0) == N, "rewrite through the mapping: %s", strerror(errno));
    if (!kill_inside(fd, "shrink", V_TRUNCATE, CUT)) {
        close(fd);
        return;
    }
    /* Rewrite past the cut, as far as the old size: a memcpy through our mapping (pages we filled). */
    double took;
    int ok = bounded_write(fd, want + CUT, N - CUT, CUT, &took);
    CHECK(ok, "the rewrite after the killed truncation failed or waited %.2f s", took);
    if (!ok) {
        close(fd);
        return;
    }
    printf("lockkill_test: rewrite behind a truncation killed inside ftruncate(): %.3f s\n", took);
    CHECK(file_is(a, want, N), "the file after the killed truncation");
    CHECK(file_is_elsewhere(a, want, N), "the file in a fresh process");
    evict_all("killed truncate");
    CHECK(file_is_elsewhere(a, want, N), "the file after eviction");
    close(fd);
    unlink(a);
}

/* In a forked child, which shares fd's description: ftruncate(fd, len), or open(path, O_RDWR | O_TRUNC)
 * when path is given.  1 if it succeeded within BOUND_S (a drain of reads that never end would not). */
static int bounded_truncate(int fd, const char *path, off_t len, double *took)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (path) {
            int t = open(path, O_RDWR | O_TRUNC);
            struct stat sb;
            _exit(t >= 0 && fstat(t, &sb) == 0 && sb.st_size == 0 ? 0 : 1);
        }
        _exit(ftruncate(fd, len) == 0 ? 0 : 1);
    }
    return wait_bounded(pid, took) == 0;
}

/*
 * A reader killed inside its copy (a fast-path read: no lock, the inode's
 * count of reads in flight raised) never lowers that count.  The truncation
 * that waits for reads of the cut tail to drain must still end, and a second
 * one must not pay for the dead reader again; nothing written is lost.
 */
static void killed_reader(const char *root)
{
    char a[PATH_MAX];
    enum { N = READ_N, CUT = 8192 };
    static unsigned char want[N];
    int fd = patterned_file(root, "killed-reader", a, want, N, 5);
    if (!kill_inside(fd, "read", V_READ, 0)) {
        close(fd);
        return;
    }
    double took;
    int ok = bounded_truncate(fd, NULL, CUT, &took);
    CHECK(ok, "the truncation behind a reader killed inside its copy failed or waited %.2f s", took);
    if (!ok) {
        close(fd); /* the count is still raised: anything that drains would wait too */
        return;
    }
    printf("lockkill_test: truncation behind a reader killed inside read(): %.3f s\n", took);
    CHECK(file_is(a, want, CUT), "the file after the truncation");
    ok = bounded_write(fd, want + CUT, N - CUT, CUT, &took);
    CHECK(ok, "the rewrite after the truncation failed or waited %.2f s", took);
    CHECK(file_is_elsewhere(a, want, N), "the file rewritten, in a fresh process");
    /* The daemon dropped the dead reader's count (its ledger named the read), so the next
     * truncation has nothing to wait for. */
    CHECK(ephd_stat(run_dir, "reads_given_back") == 1, "the daemon gave back %lld counts of reads in flight, want 1",
          ephd_stat(run_dir, "reads_given_back"));
    ok = bounded_truncate(fd, NULL, CUT, &took);
    CHECK(ok, "a second truncation failed or waited %.2f s", took);
    CHECK(file_is_elsewhere(a, want, CUT), "the file truncated again");
    evict_all("killed reader");
    CHECK(file_is_elsewhere(a, want, CUT), "the file after eviction");
    close(fd);
    unlink(a);
}

/*
 * A reader stopped (SIGSTOP, alive) inside its copy of the whole file, while
 * another process cuts the file short.  The truncation may not wait for it
 * forever, and the reader, let go on, must not fault (SIGBUS) on pages the
 * truncation freed: it ends with the bytes it was reading.  mapped: and then
 * the file is mapped while the reader is still stopped; handing the file to
 * the kernel for the mapping (fp_sync_kernel) would cut the memfd to the new
 * size, under the reader's copy.  It keeps the pages, as zeros, so the reader
 * must still not die of SIGBUS (it may read zeros where the file was cut: its
 * read raced the truncation).
 */
static void stopped_reader(const char *root, int mapped)
{
    char a[PATH_MAX];
    enum { N = READ_N, CUT = 8192 };
    static unsigned char want[N];
    int fd = patterned_file(root, mapped ? "stopped-reader-mapped" : "stopped-reader", a, want, N, 5);
    pid_t v = stop_inside(fd, "read", V_READ, 0);
    if (v < 0) {
        close(fd);
        return;
    }
    double took;
    int ok = bounded_truncate(fd, NULL, CUT, &took);
    CHECK(ok, "the truncation beside a stopped reader failed or waited %.2f s", took);
    if (!mapped)
        printf("lockkill_test: truncation beside a reader stopped inside read(): %.3f s\n", took);
    if (mapped) {
        void *map = mmap(NULL, CUT, PROT_READ, MAP_SHARED, fd, 0);
        CHECK(map != MAP_FAILED && memcmp(map, want, CUT) == 0, "mmap after the truncation: %s",
              map == MAP_FAILED ? strerror(errno) : "the bytes differ");
        if (map != MAP_FAILED)
            munmap(map, CUT);
    }
    kill(v, SIGCONT);
    int st = wait_bounded(v, &took);
    if (mapped)
        CHECK(st == 0 || st == 1, "the stopped reader, let go on after the file was mapped, exited %d (%d: SIGBUS)",
              st, 128 + SIGBUS);
    else
        CHECK(st == 0, "the stopped reader, let go on, exited %d (0: it read the file's bytes; %d: SIGBUS)", st,
              128 + SIGBUS);
    if (!ok) {
        close(fd);
        return;
    }
    CHECK(file_is(a, want, CUT), "the file after the truncation%s", mapped ? " and the mapping" : "");
    if (!mapped) {
        ok = bounded_truncate(fd, NULL, CUT / 2, &took);
        CHECK(ok, "a truncation after the reader ended failed or waited %.2f s", took);
        CHECK(ephd_stat(run_dir, "reads_given_back") == 1,
              "a live reader's count was given back: %lld, want 1 (the dead one's)",
              ephd_stat(run_dir, "reads_given_back"));
        CHECK(file_is_elsewhere(a, want, CUT / 2), "the file truncated again");
    }
    close(fd);
    unlink(a);
}

/*
 * The same drain at O_TRUNC of a mapped (pinned) file, whose memfd is cut at
 * open (shim/fp_size.c, fp_open_trunc): behind a reader killed in its copy.
 */
static void killed_reader_open_trunc(const char *root)
{
    char a[PATH_MAX];
    enum { N = READ_N };
    static unsigned char want[N];
    int fd = patterned_file(root, "killed-reader-mapped", a, want, N, 5);
    void *map = mmap(NULL, N, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(map != MAP_FAILED, "mmap: %s", strerror(errno));
    if (map == MAP_FAILED || !kill_inside(fd, "read", V_READ, 0)) {
        close(fd);
        return;
    }
    double took;
    int ok = bounded_truncate(-1, a, 0, &took);
    CHECK(ok, "open(O_TRUNC) of a mapped file behind a killed reader failed or waited %.2f s", took);
    munmap(map, N);
    if (!ok) {
        close(fd);
        return;
    }
    printf("lockkill_test: open(O_TRUNC) of a mapped file behind a reader killed inside read(): %.3f s\n", took);
    CHECK(pwrite(fd, want, 4096, 0) == 4096, "write after O_TRUNC: %s", strerror(errno));
    CHECK(file_is_elsewhere(a, want, 4096), "the file rewritten after O_TRUNC");
    close(fd);
    unlink(a);
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    shimmed_run_dir(root, run_dir);
    killed_writer(root);
    killed_truncate(root);
    killed_reader(root);
    stopped_reader(root, 0);
    stopped_reader(root, 1);
    killed_reader_open_trunc(root);
    printf("lockkill_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return shimmed_main(argc, argv, "lockkill", child);
    bare_locks();
    repair();
    printf("lockkill_test (bare): %d checks, %d failures\n", checks, failures);
    if (failures)
        return 1;
    /* EPHEMERA_LOCK_STALL is in the fault build of the shim only. */
    if (shimmed_use_faults_build("lockkill_test"))
        return 1;
    return shimmed_main(argc, argv, "lockkill", child);
}
