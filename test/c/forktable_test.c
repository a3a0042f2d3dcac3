/*
 * forktable_test.c - a fork child's fd table holds what the parent held at the
 * fork, not what the parent opened after it.
 *
 *   forktable_test       (runs itself under the shim: see shimmed.h)
 *
 * Once a process has held an in-memory file, its fd table is a shared memfd
 * (its ledger).  A child forked while it holds none gets no copy from the
 * parent and made its own private table by copying that shared mapping after
 * fork had returned to both, so an in-memory file the parent opened at once
 * landed in the child's table too, under an fd number that in the child is
 * another file (or none).  The child then served that fd from the parent's
 * description and, when it closed it or exec'd, dropped a reference it never
 * took: the parent's file lost its last reference while still open, and was
 * evicted from under its reader.  That is how `sort --compress-program=gzip`
 * with its temp files under a small budget fed `gzip -d` a punched file
 * ("gzip: stdin: not in gzip format").  Nearly every child saw the parent's
 * file before the fix.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

enum { ROUNDS = 300, SLOT = 100, FULL_SLOT = 90 };

/*
 * The same at the fd limit, where the parent cannot make the memfd copy of its
 * table for the child (memfd_create: EMFILE).  The child used to copy the
 * parent's shared table after fork had returned to both, as above, so it could
 * take the file the parent put on FULL_SLOT just after the fork for its own.
 * The parent now keeps the entries of the fork in private memory for the child.
 */
static void failed_copy(const char *path)
{
    struct rlimit old;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0, "getrlimit: %s", strerror(errno));
    struct rlimit low = {256, old.rlim_max};
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "setrlimit 256: %s", strerror(errno));
    int held = open(path, O_RDONLY); /* a reference to hand over: the copy is due */
    int null = open("/dev/null", O_RDONLY);
    CHECK(held >= 0 && null >= 0 && dup2(null, FULL_SLOT) == FULL_SLOT, "setting up: %s", strerror(errno));
    struct stat null_st;
    CHECK(fstat(null, &null_st) == 0, "fstat /dev/null: %s", strerror(errno));
    int spare = -1, filled = 0;
    for (int fd; (fd = dup(null)) >= 0; filled++)
        spare = fd;
    CHECK(errno == EMFILE && spare >= 0, "filling the fd table stopped with %s after %d", strerror(errno), filled);
    int wrong = 0, rounds = 100;
    for (int i = 0; i < rounds; i++) {
        CHECK(dup2(null, FULL_SLOT) == FULL_SLOT, "/dev/null on fd %d: %s", FULL_SLOT, strerror(errno));
        pid_t pid = fork();
        if (pid == 0) {
            struct stat st;
            int same = fstat(FULL_SLOT, &st) == 0 && st.st_rdev == null_st.st_rdev && st.st_ino == null_st.st_ino;
            _exit(same ? 0 : 1);
        }
        CHECK(pid > 0, "fork at the fd limit: %s", strerror(errno));
        /* the fork is done: a free number for the file, which goes on FULL_SLOT at once */
        close(spare);
        int m = open(path, O_RDONLY);
        CHECK(m >= 0 && dup2(m, FULL_SLOT) == FULL_SLOT, "%s on fd %d: %s", path, FULL_SLOT, strerror(errno));
        close(m);
        spare = dup(null);
        CHECK(spare >= 0, "refilling the table: %s", strerror(errno));
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            wrong++;
    }
    CHECK(wrong == 0, "at the fd limit, %d of %d children took the file the parent opened after fork for their fd %d",
          wrong, rounds, FULL_SLOT);
    for (int fd = 3; fd <= spare; fd++)
        if (fd != held && fd != null && fd != FULL_SLOT)
            close(fd);
    close(FULL_SLOT);
    close(null);
    close(held);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0, "setrlimit back: %s", strerror(errno));
}

/*
 * A thread puts an in-memory file on MT_SLOT and /dev/null back, over and over,
 * while another forks: each child must find on MT_SLOT what its kernel fd table
 * holds, as the shim serves it.  The kernel's dup2 and the shim's table entry
 * are two steps, and a fork between them gave the child a managed entry over a
 * /dev/null fd, or a memfd the shim did not know (read raw, past the file's size).
 */
enum { MT_SLOT = 110, MT_FORKS = 400 };
static atomic_int mt_stop;
static const char *mt_path;

static void *mt_flipper(void *arg)
{
    int null = *(int *)arg;
    while (!atomic_load(&mt_stop)) {
        int m = open(mt_path, O_RDONLY);
        if (m >= 0) {
            dup2(m, MT_SLOT);
            close(m);
        }
        dup2(null, MT_SLOT);
    }
    return NULL;
}

/* In a child: does the shim serve MT_SLOT as what the kernel has there? 0 yes, 1 no. */
static int mt_child_check(const struct stat *null_st, const struct stat *file_st)
{
    struct stat k, s;
    long (*raw)(long, ...) = (long (*)(long, ...))libc_sym("syscall"); /* the kernel's view, past the shim */
    if (raw(SYS_fstat, MT_SLOT, &k) != 0)
        return fstat(MT_SLOT, &s) == 0; /* closed in the kernel: the shim must say EBADF too */
    if (fstat(MT_SLOT, &s) != 0)
        return 1;
    if (k.st_rdev == null_st->st_rdev && k.st_ino == null_st->st_ino)
        return !(s.st_rdev == null_st->st_rdev && s.st_ino == null_st->st_ino);
    /* the kernel holds the memfd: the shim must serve the file, with its size */
    char buf[64];
    ssize_t n = pread(MT_SLOT, buf, sizeof buf, 0);
    return !(s.st_ino == file_st->st_ino && s.st_size == file_st->st_size && n == file_st->st_size);
}

static void mt_window(const char *path)
{
    mt_path = path;
    int null = open("/dev/null", O_RDONLY);
    struct stat null_st, file_st;
    CHECK(null >= 0 && fstat(null, &null_st) == 0 && stat(path, &file_st) == 0, "setting up: %s", strerror(errno));
    pthread_t th;
    CHECK(pthread_create(&th, NULL, mt_flipper, &null) == 0, "pthread_create");
    int wrong = 0;
    for (int i = 0; i < MT_FORKS; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(mt_child_check(&null_st, &file_st));
        CHECK(pid > 0, "fork: %s", strerror(errno));
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            wrong++;
    }
    atomic_store(&mt_stop, 1);
    pthread_join(th, NULL);
    CHECK(wrong == 0, "%d of %d children forked while another thread moved a file on and off fd %d served it "
          "as something other than what their kernel fd table held", wrong, MT_FORKS, MT_SLOT);
    close(MT_SLOT);
    close(null);
}

/*
 * exec: the new image takes over the fds the old one listed (EPHEMERA_FDMAP).  An fd
 * whose file had moved to disk (FT_DISK) was taken over without a look at what the fd
 * is now; a memory one is checked against the file's identity.  When something put
 * another file on that number past the shim (a raw dup2, a spawn action glibc ran
 * itself), the new image served it as the moved file: F_GETFL said O_RDWR|O_APPEND for
 * /dev/null opened read-only, and a close gave back a reference of the old file.
 */
enum { DISK_SLOT = 120 };

static int disk_inherit_helper(void)
{
    int fl = fcntl(DISK_SLOT, F_GETFL);
    return fl >= 0 && (fl & (O_ACCMODE | O_APPEND)) == O_RDONLY ? 0 : 1;
}

/*
 * counted: the same for a moved file whose size changes are counted (diskbytes.c).
 * A size change marks its entry with the slot of its count (FT_SIZED), in the
 * flags word that also holds the disk file's inode bits: the mark must keep them.
 */
static void disk_inherit(const char *root, const char *self, int counted)
{
    char path[4096], other[4200];
    const char *want = counted ? "diskcounted" : "disk";
    snprintf(path, sizeof path, "%s/%s", root, counted ? "counted" : "moved");
    snprintf(other, sizeof other, "%s-link", path);
    int fd = open(path, O_CREAT | O_RDWR | O_APPEND, 0644);
    CHECK(fd >= 0 && write(fd, "disk", 4) == 4 && dup2(fd, DISK_SLOT) == DISK_SLOT, "creating %s: %s", path,
          strerror(errno));
    close(fd);
    /* a hard link moves the file to disk; the next look at the fd follows it there */
    CHECK(link(path, other) == 0 && unlink(other) == 0, "link: %s", strerror(errno));
    /* a size change on disk: the entry takes its count's slot */
    CHECK(!counted || write(DISK_SLOT, "counted", 7) == 7, "write to the moved file: %s", strerror(errno));
    struct stat st;
    CHECK(fstat(DISK_SLOT, &st) == 0 && st.st_size == (off_t)strlen(want), "fstat of the moved file: %s",
          strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        long (*raw)(long, ...) = (long (*)(long, ...))libc_sym("syscall");
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || raw(SYS_dup2, null, DISK_SLOT) != DISK_SLOT) /* past the shim */
            _exit(3);
        execl(self, self, "--disk-inherit", (char *)NULL);
        _exit(4);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork/waitpid: %s", strerror(errno));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "an exec'd image served /dev/null, put on fd %d past the shim, as the moved file%s (status %#x)", DISK_SLOT,
          counted ? " (counted)" : "", status);
    char buf[16] = {0};
    CHECK(pread(DISK_SLOT, buf, sizeof buf, 0) == (ssize_t)strlen(want) && memcmp(buf, want, strlen(want)) == 0,
          "the moved file holds [%s]", buf);
    close(DISK_SLOT);
}

static const char *self_exe;

static int child_main(const char *root, const char *disk)
{
    (void)disk;
    char path[4096];
    snprintf(path, sizeof path, "%s/f", root);
    /* the first in-memory file: the table becomes the shared ledger */
    int fd = open(path, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0 && write(fd, "hello", 5) == 5, "create %s: %s", path, strerror(errno));
    close(fd);
    struct stat null_st;
    CHECK(stat("/dev/null", &null_st) == 0, "stat /dev/null: %s", strerror(errno));
    int wrong = 0;
    for (int i = 0; i < ROUNDS; i++) {
        int z = open("/dev/null", O_RDONLY);
        CHECK(z >= 0 && dup2(z, SLOT) == SLOT, "/dev/null on fd %d: %s", SLOT, strerror(errno));
        close(z);
        pid_t pid = fork();
        if (pid == 0) {
            struct stat st;
            int same = fstat(SLOT, &st) == 0 && st.st_rdev == null_st.st_rdev && st.st_ino == null_st.st_ino;
            _exit(same ? 0 : 1);
        }
        CHECK(pid > 0, "fork: %s", strerror(errno));
        /* at once, while the child is starting: the slot becomes the in-memory file */
        int m = open(path, O_RDONLY);
        CHECK(m >= 0 && dup2(m, SLOT) == SLOT, "%s on fd %d: %s", path, SLOT, strerror(errno));
        close(m);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            wrong++;
        close(SLOT);
    }
    CHECK(wrong == 0, "%d of %d children took the file the parent opened after fork for their fd %d",
          wrong, ROUNDS, SLOT);
    /* the parent's file is intact and still in memory */
    char buf[8] = {0};
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0, "f holds [%s]", buf);
    close(fd);
    failed_copy(path);
    mt_window(path);
    disk_inherit(root, self_exe, 0);
    disk_inherit(root, self_exe, 1);
    fprintf(stderr, "forktable_test: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--disk-inherit") == 0)
        return disk_inherit_helper();
    static char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    self_exe = exe;
    return shimmed_main(argc, argv, "forktable_test", child_main);
}
