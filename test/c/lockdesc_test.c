/*
 * lockdesc_test.c - an F_SETLK through a desc number that was used before, by another file, lands
 * on its own file's home.
 *
 * sh_fcntl (shim/intercept_misc.c) takes the inode of an fd from the fd's word in the shim's own
 * data (ft_hot.fdw, shim/fdtable.h), written with the fd's entry, and not from the desc in the
 * region; before that (branch locks) from a cache by desc number, ft_desc_inode.  A desc is freed
 * at its last close and allocated again for another file; what the shim kept of its number must not
 * be taken for the new file's inode.  If it were, a lock on the new file after an eviction would be
 * checked against the old file (still in memory here: another process holds a lock on it, so the
 * daemon keeps it) and go to the new file's stale memfd, where no other process sees it.  Each lock
 * here is also one on a file already moved through an fd not yet swapped to the disk file: the
 * lock path makes it on the memfd left behind first, sees the state after the call, and takes it
 * again on the disk file (branch locks2).
 *
 * The daemon has 16 inodes, so 64 descs: the loop opens a file a desc at a time until the numbers
 * wrap past the first file's desc (descs are handed out in rotation).  Each round: a fresh file, an
 * eviction of everything unlocked, a write lock on the fresh file's fd, and a process without the
 * shim (libc's own open and fcntl on the disk file) must see that lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

enum { INODES = 16, ROUNDS = 4 * INODES + 16 };

static int lock_range(int fd, short type, off_t start)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1};
    return fcntl(fd, F_SETLK, &fl);
}

/* In a child that bypasses the shim: the lock another process holds on byte 0 of path's disk
 * file, as F_GETLK reports it (F_UNLCK: none); -1 on an error. */
static int lock_seen_on_disk(const char *path)
{
    int (*l_open)(const char *, int, ...) = (int (*)(const char *, int, ...))libc_sym("open");
    int (*l_fcntl)(int, int, ...) = (int (*)(int, int, ...))libc_sym("fcntl");
    int p[2];
    if (!l_open || !l_fcntl || pipe(p) != 0)
        return -1;
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        int fd = l_open(path, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
        short got = fd >= 0 && l_fcntl(fd, F_GETLK, &fl) == 0 ? fl.l_type : -1;
        _exit(write(p[1], &got, sizeof got) == sizeof got ? 0 : 1);
    }
    close(p[1]);
    short got = -1;
    if (c < 0 || read(p[0], &got, sizeof got) != sizeof got)
        got = -1;
    close(p[0]);
    double took;
    if (c > 0 && wait_bounded_s(c, 20, &took) != 0)
        got = -1;
    return got;
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    char run[PATH_MAX], a[PATH_MAX], b[PATH_MAX], buf[8192];
    shimmed_run_dir(root, run);
    snprintf(a, sizeof a, "%s/a", root);

    /* The first file: a lock through our fd (twice: the second by the fast path), then closed, so
     * its desc is free again; another process's lock keeps the file in memory. */
    int fd = open(a, O_RDWR | O_CREAT, 0644);
    CHECK(fd >= 0 && write(fd, "aaaa", 4) == 4, "create %s: %s", a, strerror(errno));
    close(fd); /* before the fork: the holder must not share the desc we free below */
    int go[2], ready[2];
    CHECK(pipe(go) == 0 && pipe(ready) == 0, "pipe");
    pid_t holder = fork();
    if (holder == 0) {
        int h = open(a, O_RDWR);
        char c = h >= 0 && lock_range(h, F_WRLCK, 0) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    char c = 0;
    CHECK(read(ready[0], &c, 1) == 1 && c == 'y', "the holder's lock on %s", a);
    fd = open(a, O_RDWR);
    CHECK(fd >= 0, "open %s: %s", a, strerror(errno));
    for (int i = 0; i < 2; i++) {
        CHECK(lock_range(fd, F_WRLCK, 2) == 0, "lock %s: %s", a, strerror(errno));
        CHECK(lock_range(fd, F_UNLCK, 2) == 0, "unlock %s: %s", a, strerror(errno));
    }
    close(fd);

    int bad = 0;
    for (int k = 0; k < ROUNDS && !bad; k++) {
        snprintf(b, sizeof b, "%s/b%d", root, k);
        int f = open(b, O_RDWR | O_CREAT | O_TRUNC, 0644);
        CHECK(f >= 0 && write(f, "b", 1) == 1, "create %s: %s", b, strerror(errno));
        if (f < 0)
            break;
        ephd_control(run, "{\"v\":1,\"id\":2,\"op\":\"shrink\",\"bytes\":0}\n", buf, sizeof buf);
        CHECK(ephd_stat(run, "files_in_memory") == 1, "round %d: the shrink left %lld files in memory, not the "
              "locked one alone: %s", k, ephd_stat(run, "files_in_memory"), buf);
        CHECK(lock_range(f, F_WRLCK, 0) == 0, "round %d: lock %s: %s", k, b, strerror(errno));
        int seen = lock_seen_on_disk(b);
        if (seen != F_WRLCK)
            bad = 1;
        CHECK(seen == F_WRLCK, "round %d: another process sees %s on %s's disk file, not our write lock", k,
              seen == F_UNLCK ? "no lock" : "an error", b);
        CHECK(lock_range(f, F_UNLCK, 0) == 0, "round %d: unlock %s: %s", k, b, strerror(errno));
        close(f);
        CHECK(unlink(b) == 0, "unlink %s: %s", b, strerror(errno));
        ephd_control(run, "{\"v\":1,\"id\":3,\"op\":\"grow\",\"bytes\":1073741824}\n", buf, sizeof buf);
    }
    CHECK(write(go[1], "x", 1) == 1, "release the holder");
    double took;
    CHECK(wait_bounded_s(holder, 20, &took) == 0, "the holder's exit");
    printf("lockdesc_test: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}

int main(int argc, char **argv)
{
    static const char *const args[] = {"--inodes", "16", NULL};
    return shimmed_main_args(argc, argv, "lockdesc", child, args);
}
