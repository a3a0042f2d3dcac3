/*
 * A process killed (SIGKILL) while it holds the namespace lock (ns_lock,
 * ephemera/nslock.h) leaves the namespace consistent and usable by everyone
 * else: for a create, an unlink and a rename made by the shim itself, stopped
 * at each point of its change (EPHEMERA_NS_STALL in the fault build of the
 * shim: before the record is committed, after its first store, after all of
 * them), the next locker sees exactly the state before (not committed) or
 * after (committed: redone), the daemon's ns_check() finds no violation, and
 * other processes go on creating, renaming and unlinking.  A holder that is
 * stopped and not killed makes a waiter fail with EIO after 5 s, not hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

static char run_dir[PATH_MAX]; /* the daemon's run directory (shimmed.h: beside the root) */

static void ns_consistent(const char *when)
{
    char buf[4096];
    ephd_control(run_dir, "{\"v\":1,\"id\":1,\"op\":\"ns-check\"}\n", buf, sizeof buf);
    CHECK(strstr(buf, "\"consistent\":true") != NULL, "ns-check %s: %s", when, buf);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int has_content(const char *p, const char *content)
{
    char buf[256] = "";
    int fd = open(p, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    return r == (ssize_t)strlen(content) && memcmp(buf, content, (size_t)r) == 0;
}

enum op { CREATE, UNLINK, RENAME };
static const char *op_name[] = {"create", "unlink", "rename"};

/* A victim that makes `op` and is stopped at `point` inside the lock, then killed. */
static void kill_inside(const char *root, enum op op, const char *point, int committed)
{
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof a, "%s/%s-%s", root, op_name[op], point);
    snprintf(b, sizeof b, "%s/%s-%s.renamed", root, op_name[op], point);
    if (op != CREATE)
        file_put_text(a, "payload");
    pid_t v = fork();
    if (v == 0) {
        setenv("EPHEMERA_NS_STALL", point, 1);
        int r = op == CREATE ? open(a, O_CREAT | O_WRONLY, 0644) : op == UNLINK ? unlink(a) : rename(a, b);
        (void)r;
        _exit(3); /* never reached while stopped; a victim that was not stopped fails below */
    }
    int stopped = killed_when_stopped(v);
    CHECK(stopped, "%s at %s: the victim did not stop inside the lock", op_name[op], point);
    if (!stopped)
        return;
    /* The next locker recovers: a create of our own takes the lock. */
    char other[PATH_MAX];
    snprintf(other, sizeof other, "%s/after-%s-%s", root, op_name[op], point);
    file_put_text(other, "other");
    CHECK(has_content(other, "other"), "%s at %s: a file created after the kill is wrong", op_name[op], point);
    switch (op) {
    case CREATE:
        CHECK(exists(a) == committed, "create at %s: the name %s, want %s", point, exists(a) ? "exists" : "is missing",
              committed ? "created (redone)" : "absent (discarded)");
        break;
    case UNLINK:
        CHECK(exists(a) == !committed, "unlink at %s: the name %s", point, exists(a) ? "exists" : "is gone");
        if (!committed)
            CHECK(has_content(a, "payload"), "unlink at %s: the file lost its bytes", point);
        break;
    case RENAME:
        CHECK(exists(a) == !committed && exists(b) == committed, "rename at %s: old %d new %d, committed %d", point,
              exists(a), exists(b), committed);
        CHECK(has_content(committed ? b : a, "payload"), "rename at %s: the file lost its bytes", point);
        break;
    }
    char when[128];
    snprintf(when, sizeof when, "after killing a %s at %s", op_name[op], point);
    ns_consistent(when);
    /* Others keep going: rename and unlink what we made. */
    char moved[PATH_MAX + 8];
    snprintf(moved, sizeof moved, "%s.m", other);
    CHECK(rename(other, moved) == 0 && has_content(moved, "other"), "rename after the kill: %s", strerror(errno));
    CHECK(unlink(moved) == 0 && !exists(moved), "unlink after the kill: %s", strerror(errno));
}

/* A stopped holder: a waiter gets EIO after about 5 s instead of hanging. */
static void stopped_holder(const char *root)
{
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof a, "%s/stopped", root);
    snprintf(b, sizeof b, "%s/waiter", root);
    pid_t v = fork();
    if (v == 0) {
        setenv("EPHEMERA_NS_STALL", "applied", 1);
        int fd = open(a, O_CREAT | O_WRONLY, 0644);
        _exit(fd >= 0 ? 0 : 1);
    }
    if (!wait_stopped(v)) {
        CHECK(0, "the holder did not stop");
        kill(v, SIGKILL);
        waitpid(v, NULL, 0);
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    errno = 0;
    int fd = open(b, O_CREAT | O_WRONLY, 0644);
    int e = errno;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(fd < 0 && e == EIO, "create behind a stopped holder gave %d (%s), want EIO", fd, strerror(e));
    CHECK(s >= 4.5 && s < 30, "the waiter gave up after %.1f s, want about 5", s);
    if (fd >= 0)
        close(fd);
    /* Resumed, it finishes its change and releases the lock. */
    kill(v, SIGCONT);
    int st;
    waitpid(v, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the resumed holder failed (status %#x)", st);
    CHECK(exists(a), "the resumed holder's file is missing");
    file_put_text(b, "w");
    CHECK(has_content(b, "w"), "create after the holder resumed");
    ns_consistent("after a stopped holder resumed");
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    shimmed_run_dir(root, run_dir);
    static const char *points[] = {"building", "applying", "applied"};
    for (int op = CREATE; op <= RENAME; op++)
        for (int p = 0; p < 3; p++)
            kill_inside(root, (enum op)op, points[p], p > 0);
    stopped_holder(root);
    ns_consistent("at the end");
    printf("nslock_kill_test: %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    /* EPHEMERA_NS_STALL is in the fault build of the shim only. */
    return shimmed_main_faulty(argc, argv, "nslock_kill", child, NULL, 1);
}
