/*
 * ledgerqueue_test.c - a process's first reference does not wait for the daemon, and a process
 * killed before the daemon read its fd table's registration still gets its references given back.
 *
 *   ledgerqueue_test       (runs itself under the shim: see shimmed.h)
 *
 * A process registers its fd table (its ledger) with the daemon just before its first reference,
 * so that the daemon gives back what the table lists when the process dies, however it died.  The
 * registration used to wait for the daemon's answer: a round trip in every short process of a
 * build (gcc's driver, cc1, as), each waiting for the daemon to be scheduled.  It is now sent and
 * not waited for, which is safe only if the daemon reads what a dead process left queued on its
 * connection and finds that process's end after it (shim/fdtable.c, ledger_register).
 *
 * Here the daemon is stopped (SIGSTOP); a fresh process (forked from one that holds no managed fd,
 * so its table starts private) opens an in-memory file, which takes its first reference and
 * registers its table, and reads a byte of it; it is then SIGKILLed, reaped or left a zombie, and
 * the daemon continued.  The open must not wait for the stopped daemon (before, it waited in the
 * registration's answer until the daemon ran again), and once the file's name is unlinked the
 * daemon must hold no file and no byte: it read the dead process's table and gave its reference
 * back, the pidfd naming the dead process (SO_PEERPIDFD) and not whoever has its number now.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

enum { ROUNDS = 4, LEN = 5000 };

struct shared {
    _Atomic int opened; /* 1: the victim holds the file open and read it; -1: its open or read failed */
};

static struct shared *words;
static char run_dir[PATH_MAX];

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A fresh process that opens path, reads its first byte, says so and waits to be killed. */
static pid_t victim(const char *path)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(path, O_RDONLY);
    char c = 0;
    atomic_store(&words->opened, fd >= 0 && read(fd, &c, 1) == 1 && c == 'q' ? 1 : -1);
    for (;;)
        pause();
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    snprintf(run_dir, sizeof run_dir, "%.*s/run", (int)(strrchr(root, '/') - root), root);
    words = mmap(NULL, sizeof *words, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(words != MAP_FAILED, "mmap: %s", strerror(errno));
    if (words == MAP_FAILED)
        return 1;
    pid_t daemon = (pid_t)ephd_stat(run_dir, "pid");
    CHECK(daemon > 0, "the daemon's pid from stats: %d", (int)daemon);
    if (daemon <= 0)
        return 1;
    int waited = 0;
    for (int round = 0; round < ROUNDS; round++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/held%d", root, round);
        CHECK(file_put(path, 'q', LEN), "writing %s: %s", path, strerror(errno));
        CHECK(ephd_stat(run_dir, "files_in_memory") == 1, "round %d: %s is not the one file in memory", round, path);
        atomic_store(&words->opened, 0);
        CHECK(kill(daemon, SIGSTOP) == 0 && stopped_within(daemon), "stopping the daemon");
        pid_t v = victim(path);
        CHECK(v > 0, "fork: %s", strerror(errno));
        if (v <= 0) {
            kill(daemon, SIGCONT);
            break;
        }
        /* The open takes the victim's first reference: with the daemon stopped, it must not wait. */
        for (double until = now_s() + 3; atomic_load(&words->opened) == 0 && now_s() < until;)
            nap_ms(1);
        int opened = atomic_load(&words->opened);
        if (opened == 0)
            waited++;
        CHECK(opened == 1, "round %d: the victim's open %s with the daemon stopped", round,
              opened == 0 ? "waited for the daemon (3 s)" : "or read failed");
        kill(v, SIGKILL);
        int reaped_first = round % 2 == 0; /* else a zombie while the daemon reads its registration */
        if (reaped_first)
            waitpid(v, NULL, 0);
        kill(daemon, SIGCONT);
        if (!reaped_first) {
            nap_ms(50);
            waitpid(v, NULL, 0);
        }
        CHECK(unlink(path) == 0, "unlink %s: %s", path, strerror(errno));
        int freed = ephd_stat_becomes(run_dir, "files_in_memory", 0);
        CHECK(freed, "round %d (%s): %lld files in memory 5 s after the victim was killed and the name unlinked: its "
              "reference was not given back", round, reaped_first ? "reaped" : "a zombie",
              ephd_stat(run_dir, "files_in_memory"));
    }
    long long bytes = ephd_stat(run_dir, "file_bytes_memory");
    CHECK(bytes == 0, "file_bytes_memory %lld with no file left", bytes);
    printf("ledgerqueue_test: %d rounds, %d opens waited for the stopped daemon\n", ROUNDS, waited);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    return shimmed_main(argc, argv, "ledgerqueue", child);
}
