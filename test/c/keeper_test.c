// test-sources: launcher/keeper.c launcher/json.c
/*
 * keeper_test.c - the pieces of the keeper (launcher/keeper.c, include/ephemera/rescue.h) that a
 * killed daemon relies on, on real fds: the copies kept from the link's HOLD and DROP messages,
 * the manifest, every copy placed at its daemon's number in a child (numbers that collide with
 * the keeper's own included), and the bytes of a file whose eviction died half way put back
 * together (rescue.h), which the e2e test (test/fs/keeper.test.mjs) cannot aim at.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../launcher/keeper.h"
#include "check.h"
#include "ephemera/rescue.h"

static void send_msg(int sock, uint32_t op, const struct eph_keeper_entry *e, int n, const int *fds)
{
    ssize_t w = eph_keeper_send(sock, op, e, n, fds, 0);
    CHECK(w == (ssize_t)(sizeof(struct eph_keeper_msg) + sizeof *e * (size_t)n), "sendmsg: %s", strerror(errno));
}

static ino_t ino_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static void test_link_and_place(void)
{
    struct keeper k;
    keeper_init(&k);
    int daemon_end = -1;
    CHECK(keeper_link(&k, &daemon_end) == 0, "keeper_link");
    /* The daemon's numbers: small ones that the keeper's own fds are sure to use too. */
    int files[4];
    for (int i = 0; i < 4; i++)
        files[i] = memfd_create("keeper-test", MFD_CLOEXEC);
    struct eph_keeper_entry e[4] = {
        {.fd = 3, .kind = EPH_KEEP_REGION},
        {.fd = 4, .kind = EPH_KEEP_MEM},
        {.fd = 9, .kind = EPH_KEEP_DISK, .arg = 17, .gen = 2},
        {.fd = 300, .kind = EPH_KEEP_LEDGER, .arg = 1234},
    };
    send_msg(daemon_end, EPH_KEEPER_HOLD, e, 4, files);
    struct eph_keeper_entry d = {.fd = 4};
    send_msg(daemon_end, EPH_KEEPER_DROP, &d, 1, NULL);
    /* A number held again replaces the copy (the daemon closed and reused it). */
    int again = memfd_create("keeper-test-again", MFD_CLOEXEC);
    struct eph_keeper_entry e2 = {.fd = 9, .kind = EPH_KEEP_MEM};
    send_msg(daemon_end, EPH_KEEPER_HOLD, &e2, 1, &again);
    keeper_pump(&k);
    CHECK(!k.broken, "a well-formed stream broke the keeper");
    CHECK(k.region == 3, "region number %d", k.region);
    CHECK(k.cap > 300 && k.held[300].fd >= 0 && ino_of(k.held[300].fd) == ino_of(files[3]), "ledger copy");
    CHECK(k.held[4].fd < 0, "dropped number 4 still held");
    CHECK(k.held[9].fd >= 0 && k.held[9].kind == EPH_KEEP_MEM && ino_of(k.held[9].fd) == ino_of(again),
          "number 9 not replaced by the second hold");

    /* A message that lies about its fds marks the copies as not faithful. */
    send_msg(daemon_end, EPH_KEEPER_HOLD, e, 2, NULL);
    keeper_pump(&k);
    CHECK(k.broken, "a HOLD without fds was accepted");
    k.broken = false;

    int mf = keeper_manifest(&k);
    CHECK(mf >= 0, "keeper_manifest: %s", strerror(-mf));
    struct eph_keeper_entry got[8];
    ssize_t n = pread(mf, got, sizeof got, 0);
    CHECK(n == 3 * (ssize_t)sizeof got[0], "manifest of %zd bytes", n);
    CHECK(got[0].fd == 3 && got[0].kind == EPH_KEEP_REGION && got[1].fd == 9 && got[2].fd == 300 &&
              got[2].arg == 1234,
          "manifest entries");

    /* Extras go to the lowest numbers that no held fd needs; in a child every copy lands on its
     * number and the extra on its own. */
    int pipefd[2];
    CHECK(pipe2(pipefd, O_CLOEXEC) == 0, "pipe");
    int at[1];
    struct keeper_plan plan;
    CHECK(keeper_plan(&k, &pipefd[1], at, 1, &plan) == 0, "keeper_plan");
    CHECK(at[0] == 4, "extra placed at %d, expected 4 (3 is the region's)", at[0]);
    ino_t want3 = ino_of(files[0]), want9 = ino_of(again), want300 = ino_of(files[3]), wantp = ino_of(pipefd[1]);
    pid_t pid = fork();
    if (pid == 0) {
        int keep = pipefd[0];
        if (keeper_place(&plan, &keep) < 0)
            _exit(10);
        if (ino_of(3) != want3 || ino_of(9) != want9 || ino_of(300) != want300 || ino_of(4) != wantp)
            _exit(11);
        if (fcntl(3, F_GETFD) != 0 || fcntl(300, F_GETFD) != 0)
            _exit(12); /* placed fds must survive exec */
        if (ino_of(keep) != ino_of(pipefd[0]) && keep < plan.high)
            _exit(13);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's placement failed (%d)", WEXITSTATUS(st));
    keeper_plan_free(&plan);
    close(pipefd[0]);
    close(pipefd[1]);
    close(mf);
    for (int i = 0; i < 4; i++)
        close(files[i]);
    close(again);
    close(daemon_end);
    keeper_pump(&k);
    CHECK(k.eof, "the closed link was not noticed");
    keeper_fini(&k);
}

static void fill(char *b, size_t n, int seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)((i * 31 + (size_t)seed) % 251);
}

/* An eviction killed after it had copied and punched the first part: the bytes come back from
 * the disk file, the rest stays, and a hole of the file stays a hole. */
static void test_rescue(void)
{
    const size_t size = 5 * 65536 + 123;
    char *want = malloc(size), *got = malloc(size);
    fill(want, size, 7);
    memset(want + 65536, 0, 65536); /* a hole of the file itself */
    int mem = memfd_create("rescue-mem", 0);
    CHECK(pwrite(mem, want, 65536, 0) == 65536, "pwrite");
    CHECK(pwrite(mem, want + 131072, size - 131072, 131072) == (ssize_t)(size - 131072), "pwrite");
    char dir[] = "build/keeper-rescue-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    int disk = open(dir, O_TMPFILE | O_RDWR, 0600);
    CHECK(disk >= 0, "O_TMPFILE: %s", strerror(errno));
    /* The copy reached 3 * 64 KiB: on disk (holes skipped), punched from the memfd. */
    CHECK(pwrite(disk, want, 65536, 0) == 65536, "pwrite");
    CHECK(pwrite(disk, want + 131072, 65536, 131072) == 65536, "pwrite");
    CHECK(fallocate(mem, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 3 * 65536) == 0, "punch");
    CHECK(eph_rescue_merge(mem, disk, size) == 0, "eph_rescue_merge");
    CHECK(pread(mem, got, size, 0) == (ssize_t)size && memcmp(got, want, size) == 0,
          "the merged memfd differs from the file");
    off_t hole = lseek(mem, 65536, SEEK_HOLE);
    CHECK(hole == 65536, "the file's own hole was filled (SEEK_HOLE from 64 KiB gives %lld)", (long long)hole);

    /* The keeper's write-back: the bytes at a path, holes kept, cut to size. */
    int out = openat(AT_FDCWD, dir, O_TMPFILE | O_RDWR, 0600);
    CHECK(ftruncate(out, (off_t)size * 2) == 0, "ftruncate");
    CHECK(eph_rescue_copy(mem, out, size) == 0, "eph_rescue_copy");
    struct stat st;
    CHECK(fstat(out, &st) == 0 && (size_t)st.st_size == size, "written size %lld", (long long)st.st_size);
    memset(got, 0x55, size);
    CHECK(pread(out, got, size, 0) == (ssize_t)size && memcmp(got, want, size) == 0, "the written file differs");
    close(out);
    close(disk);
    close(mem);
    rmdir(dir);
    free(want);
    free(got);
}

int main(void)
{
    test_link_and_place();
    test_rescue();
    printf("keeper_test: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
