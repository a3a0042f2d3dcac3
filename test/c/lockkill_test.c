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
 * evicts it, and every byte is what was written.
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
#include "ephemera/lock.h"
#include "shimmed.h"

#define BOUND_S 5.0 /* a waiter must own a dead holder's lock within this */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- the bare lock ------------------------------------------------------ */

struct pair {
    struct eph_inode ino;
    struct eph_desc desc;
};

static _Atomic unsigned recovered_calls; /* this process's calls of the hook */

/* The test's own hook (the shim and the daemon have theirs): count the calls. */
void eph_lock_recovered(eph_lock_t *l, uint32_t dead_pid)
{
    (void)l;
    (void)dead_pid;
    atomic_fetch_add(&recovered_calls, 1);
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
    double t0 = now_s();
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            *took = now_s() - t0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (now_s() - t0 > BOUND_S) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            *took = now_s() - t0;
            return -1;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
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

/* A forked victim that shares fd's description and stops at point inside a call on it, then is killed. */
static int kill_inside(int fd, const char *point, int truncate_to)
{
    pid_t v = fork();
    if (v == 0) {
        setenv("EPHEMERA_LOCK_STALL", point, 1);
        if (truncate_to >= 0)
            (void)!ftruncate(fd, truncate_to);
        else
            (void)!write(fd, "VICTIM", 6);
        _exit(3); /* never reached while stopped */
    }
    int stopped = wait_stopped(v);
    CHECK(stopped, "the victim did not stop inside the lock at %s", point);
    kill(v, SIGKILL);
    waitpid(v, NULL, 0);
    return stopped;
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
    snprintf(a, sizeof a, "%s/killed-writer", root);
    enum { N = 96 * 1024 };
    static unsigned char want[N + 16];
    pattern(want, N, 1);
    int fd = open(a, O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, want, N) == N, "write %s: %s", a, strerror(errno));
    CHECK(lseek(fd, 4096, SEEK_SET) == 4096, "lseek");
    if (!kill_inside(fd, "write", -1)) {
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
    snprintf(a, sizeof a, "%s/killed-truncate", root);
    enum { N = 512 * 1024, CUT = 8192 };
    static unsigned char want[N];
    pattern(want, N, 3);
    int fd = open(a, O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, want, N) == N, "write %s: %s", a, strerror(errno));
    CHECK(pwrite(fd, want, N, 0) == N, "rewrite through the mapping: %s", strerror(errno));
    if (!kill_inside(fd, "shrink", CUT)) {
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

static int child(const char *root, const char *disk)
{
    (void)disk;
    snprintf(run_dir, sizeof run_dir, "%.*s/run", (int)(strrchr(root, '/') - root), root);
    killed_writer(root);
    killed_truncate(root);
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
