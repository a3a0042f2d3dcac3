/*
 * ledgerrace_test.c - the first references of a fresh process's threads come
 * back when it is SIGKILLed while its fd table is becoming its ledger.
 *
 *   ledgerrace_test       (runs itself under the fault build of the shim: see shimmed.h)
 *
 * A process's fd table starts private and becomes a memfd the daemon holds
 * (its ledger) just before the process takes its first reference; the daemon
 * gives back what a dead process's ledger lists.  The thread that made the
 * table a memfd registered it after letting go of the table's lock, and the
 * other threads, finding the promotion "tried", took references at once:
 * before the daemon held the table, or with their in-flight note written into
 * the private page that the memfd's mapping was about to replace.  A SIGKILL
 * then lost them, and an unlinked file stayed in memory for as long as any
 * other process of the instance lived (killed-refs: nsconc.test.mjs's SIGKILL
 * case with a bystander, one file left in about 1 run of 20).
 *
 * Here a fresh process (forked from one that holds nothing) starts two
 * threads that each create and write a file; the fault build holds the
 * promoting thread back from the daemon for DELAY_MS (EPHEMERA_LEDGER_DELAY_MS),
 * and the process is SIGKILLed as soon as one thread's write is done.  Its
 * names are unlinked: the daemon must then hold no file and no byte, while
 * this process (which maps the region) lives on.  Before the fix every round
 * left a file; after it the other thread waits for the registration, so every
 * reference it takes is in a table the daemon holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

enum { ROUNDS = 6, THREADS = 2, DELAY_MS = 300, LEN = 3000 };

struct shared {
    _Atomic int go;      /* the victim's threads may open */
    _Atomic int written; /* files fully written before the kill */
    _Atomic int failed;  /* opens or writes that failed (the kernel allows none) */
};

static struct shared *sh_words;
static char run_dir[PATH_MAX];

static void name_of(char *out, size_t n, const char *root, int round, int t)
{
    snprintf(out, n, "%s/f%d_%d", root, round, t);
}

struct opener_arg {
    char path[PATH_MAX];
};

static void *opener(void *p)
{
    struct opener_arg *a = p;
    char buf[LEN];
    memset(buf, 'x', sizeof buf);
    while (!atomic_load(&sh_words->go)) {
    }
    int fd = open(a->path, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd >= 0 && write(fd, buf, sizeof buf) == (ssize_t)sizeof buf)
        atomic_fetch_add(&sh_words->written, 1);
    else
        atomic_fetch_add(&sh_words->failed, 1);
    for (;;)
        pause();
    return NULL;
}

/* A fresh process whose two threads take their first references at once; it waits to be killed. */
static pid_t victim(const char *root, int round)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    static struct opener_arg args[THREADS];
    char ms[16];
    snprintf(ms, sizeof ms, "%d", DELAY_MS);
    setenv("EPHEMERA_LEDGER_DELAY_MS", ms, 1);
    for (int i = 0; i < THREADS; i++) {
        pthread_t t;
        name_of(args[i].path, sizeof args[i].path, root, round, i);
        if (pthread_create(&t, NULL, opener, &args[i]) != 0)
            _exit(3);
    }
    atomic_store(&sh_words->go, 1);
    for (;;)
        pause();
}

static long long stat_of(const char *name)
{
    return ephd_stat(run_dir, name);
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    shimmed_run_dir(root, run_dir);
    sh_words = mmap(NULL, sizeof *sh_words, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh_words != MAP_FAILED, "mmap: %s", strerror(errno));
    if (sh_words == MAP_FAILED)
        return 1;
    /* Attached to the daemon (a file made and unlinked), as a function's main process would be; a
     * child forked with no managed fd open starts from a private table of its own. */
    char a[PATH_MAX];
    snprintf(a, sizeof a, "%s/attach", root);
    int afd = open(a, O_RDWR | O_CREAT | O_EXCL, 0644);
    CHECK(afd >= 0 && close(afd) == 0 && unlink(a) == 0, "making and unlinking %s: %s", a, strerror(errno));
    int left_rounds = 0, written = 0;
    for (int round = 0; round < ROUNDS; round++) {
        atomic_store(&sh_words->go, 0);
        atomic_store(&sh_words->written, 0);
        pid_t v = victim(root, round);
        CHECK(v > 0, "fork: %s", strerror(errno));
        if (v <= 0)
            break;
        /* Killed as soon as one thread has written its file (or after 5 s). */
        double give_up = now_s() + 5;
        while (atomic_load(&sh_words->written) == 0 && atomic_load(&sh_words->failed) == 0 && now_s() < give_up) {
        }
        written += atomic_load(&sh_words->written);
        kill(v, SIGKILL);
        waitpid(v, NULL, 0);
        for (int i = 0; i < THREADS; i++) {
            char p[PATH_MAX];
            name_of(p, sizeof p, root, round, i);
            CHECK(unlink(p) == 0 || errno == ENOENT, "unlink %s: %s", p, strerror(errno));
        }
        /* The daemon gives a dead process's ledger back when its pidfd says so: within a few ms. */
        long long files = -1;
        for (double until = now_s() + 10; now_s() < until;) {
            files = stat_of("files_in_memory");
            if (files == 0)
                break;
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (files != 0)
            left_rounds++;
        CHECK(files == 0, "round %d: %lld files still in memory 10 s after the victim was killed and its names unlinked",
              round, files);
    }
    CHECK(atomic_load(&sh_words->failed) == 0, "%d opens or writes of a fresh name failed", atomic_load(&sh_words->failed));
    CHECK(written >= ROUNDS, "only %d files were written before the kills in %d rounds: nothing was tested", written,
          ROUNDS);
    long long bytes = stat_of("file_bytes_memory");
    CHECK(bytes == 0, "file_bytes_memory %lld with no file left", bytes);
    printf("ledgerrace_test: %d rounds, %d files written before the kill, %d rounds left a file in memory\n", ROUNDS,
           written, left_rounds);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    /* EPHEMERA_LEDGER_DELAY_MS is in the fault build of the shim only. */
    return shimmed_main_faulty(argc, argv, "ledgerrace", child, NULL, 1);
}
