/*
 * bytes_in_memory stays exact across a process killed (SIGKILL) inside a
 * home's create or keep (shim/nsfast.c, "homes"): a slot a process kept from
 * a file it unlinked, FREE and lent to it with the file's pages, which its
 * next create makes a file again.  Those two changes move the count by the
 * slot's capacity, and a count moved outside their journal records was left
 * wrong by a kill in between: too high by the home's pages (a create killed
 * before its record committed), or by a whole file (an unlink of a file
 * bigger than a home killed after it emptied the memfd).
 *
 * The fault build of the shim stops the process inside the namespace lock at
 * each point of the home's record (EPHEMERA_NS_STALL=home-<point>: the record
 * before it commits, after its first operation, before its last, after all;
 * and home-emptied, after an unlink emptied a file too big to keep its pages),
 * the test kills it, a create of its own recovers the lock, and the daemon's
 * ns-check then counts the capacity of every file in memory under all their
 * locks: it must equal bytes_in_memory, and the namespace must be consistent.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

#define SMALL 4096          /* a home keeps these pages */
#define BIG (100u << 10)    /* above 64 KiB: emptied at the unlink, kept without pages */

static char run_dir[PATH_MAX];

/* A number after "key": in a reply; -1 for null or absent. */
static long long field(const char *buf, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(buf, k);
    if (!p || strncmp(p + strlen(k), "null", 4) == 0)
        return -1;
    return strtoll(p + strlen(k), NULL, 10);
}

/* ns-check: consistent, and bytes_in_memory equal to what the files in memory hold (asked
 * again while a file's lock is held: the daemon only tries the locks, for 2 s at most). */
static void count_exact(const char *when)
{
    char buf[4096];
    long long counter = -1, files = -1;
    for (int i = 0; i < 200; i++) {
        ephd_control(run_dir, "{\"v\":1,\"id\":1,\"op\":\"ns-check\"}\n", buf, sizeof buf);
        counter = field(buf, "bytes_in_memory");
        files = field(buf, "bytes_in_files");
        if (files >= 0)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK(strstr(buf, "\"consistent\":true") != NULL, "ns-check %s: %s", when, buf);
    CHECK(files >= 0, "ns-check %s: the files' locks stayed held: %s", when, buf);
    CHECK(counter == files, "%s: bytes_in_memory %lld, the files in memory hold %lld (%+lld)", when, counter, files,
          counter - files);
}

/* In the victim: create-write-unlink cycles until its creates come from a home (the first gets
 * a pool and asks for a home, the second keeps an fd of its memfd, its unlink the slot). */
static void warm(const char *root)
{
    char w[PATH_MAX];
    snprintf(w, sizeof w, "%s/warm-%d", root, (int)getpid());
    for (int i = 0; i < 3; i++) {
        if (!file_put(w, 'w', SMALL) || unlink(w) < 0)
            _exit(4);
    }
}

enum op { CREATE, UNLINK, RENAME, UNLINK_BIG };
static const char *op_name[] = {"create", "unlink", "rename-over", "unlink-big"};

/* A victim that makes op from a home (or keeps one), stopped at point inside the lock, killed. */
static void kill_inside(const char *root, enum op op, const char *point)
{
    char a[PATH_MAX], b[PATH_MAX + 8], other[PATH_MAX + 16], stall[64], when[128];
    snprintf(a, sizeof a, "%s/%s-%s", root, op_name[op], point);
    snprintf(b, sizeof b, "%s.src", a);
    snprintf(stall, sizeof stall, "home-%s", point);
    snprintf(when, sizeof when, "a %s killed at %s", op_name[op], stall);
    pid_t v = fork();
    if (v == 0) {
        warm(root);
        if (op != CREATE && !file_put(a, 'a', op == UNLINK_BIG ? BIG : SMALL))
            _exit(5);
        if (op == RENAME && !file_put(b, 'b', SMALL))
            _exit(5);
        setenv("EPHEMERA_NS_STALL", stall, 1);
        int r = op == CREATE ? open(a, O_CREAT | O_WRONLY, 0644) : op == RENAME ? rename(b, a) : unlink(a);
        (void)r;
        _exit(3); /* never reached while stopped; a victim that was not stopped fails below */
    }
    int stopped = killed_when_stopped(v);
    CHECK(stopped, "%s: the victim did not stop there (no home?)", when);
    if (!stopped)
        return;
    /* The next locker recovers the namespace lock: a create of our own. */
    snprintf(other, sizeof other, "%s.after", a);
    CHECK(file_put(other, 'o', SMALL) && file_holds(other, 'o', SMALL), "%s: a file made after it is wrong", when);
    count_exact(when);
    /* What the victim named is whole, whichever side of its change it was left on. */
    struct stat st;
    if (op == RENAME && stat(b, &st) == 0)
        CHECK(file_holds(b, 'b', SMALL), "%s: the source lost its bytes", when);
    if (stat(a, &st) == 0 && op != CREATE) {
        char want = op == RENAME ? (st.st_size == SMALL && file_holds(a, 'b', SMALL) ? 'b' : 'a') : 'a';
        if (op == UNLINK_BIG)
            CHECK(st.st_size == BIG, "%s: the file is %lld bytes", when, (long long)st.st_size);
        else
            CHECK(file_holds(a, want, SMALL), "%s: the file lost its bytes", when);
    }
    unlink(a);
    unlink(b);
    unlink(other);
    snprintf(when + strlen(when), sizeof when - strlen(when), ", its files removed");
    count_exact(when);
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    shimmed_run_dir(root, run_dir);
    count_exact("at the start");
    static const char *points[] = {"building", "applying", "last", "applied"};
    for (int op = CREATE; op <= UNLINK_BIG; op++)
        for (int p = 0; p < 4; p++)
            kill_inside(root, (enum op)op, points[p]);
    kill_inside(root, UNLINK_BIG, "emptied");
    count_exact("at the end");
    printf("homekill_test: %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    /* EPHEMERA_NS_STALL is in the fault build of the shim only. */
    return shimmed_main_faulty(argc, argv, "homekill", child, NULL, 1);
}
