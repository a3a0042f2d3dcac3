/*
 * nsjournal_test.c - the crash-recovery protocol of issue 15's design (docs/ARCHITECTURE.md,
 * "Design: metadata at memory speed ...", "The lock: order, journal, and a holder that dies
 * inside it"), checked on a small model before the region's real namespace is built on it.
 *
 * The model: a flat directory of dentries and inodes in MAP_SHARED memory, changed by several
 * processes under one PTHREAD_MUTEX_ROBUST | PTHREAD_PROCESS_SHARED mutex.  Every change is built
 * as a redo record (offset, width, value) before any of it is applied; the holder commits the
 * record, applies it with the seqlock odd, and clears it.  A locker that gets EOWNERDEAD re-applies
 * a committed record and discards any other.  The design's claims checked here:
 *  1. a holder killed (SIGKILL, raised by the holder itself at a chosen point) before the commit,
 *     or after any number of the record's stores, leaves the namespace exactly as before the
 *     change or exactly as after it, never in between;
 *  2. after every recovery the invariants hold: an inode's nlink is the number of names that
 *     refer to it, no name refers to a free inode, names are unique, the seqlock is even and the
 *     record empty;
 *  3. several processes doing random create/link/rename/unlink, some killed inside the lock at
 *     random points, leave a namespace that satisfies the invariants, and the kernel reported
 *     EOWNERDEAD for every killed holder.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define NJ_NAMES 16
#define NJ_INODES 16
#define NJ_W 8
#define NJ_NO_CRASH (-2)
#define NJ_BEFORE_COMMIT (-1)

enum { NJ_EMPTY, NJ_BUILDING, NJ_COMMITTED };

struct nj_dentry {
    uint32_t used;
    uint32_t inode;
    char name[8];
};

struct nj_inode {
    uint32_t used;
    uint32_t nlink;
};

struct nj_region {
    pthread_mutex_t lock;
    _Atomic uint64_t seq;
    struct {
        _Atomic uint32_t state;
        uint32_t n;
        struct { uint32_t off, width; uint64_t val; } w[NJ_W];
    } j;
    struct nj_dentry d[NJ_NAMES];
    struct nj_inode in[NJ_INODES];
    _Atomic uint32_t recoveries;
    _Atomic uint32_t changes; /* changes completed by the random run's workers */
};

static struct nj_region *R;
static int crash_at = NJ_NO_CRASH; /* this process's injection point for its next change */

static void nj_store(struct nj_region *r, uint32_t k)
{
    char *p = (char *)r + r->j.w[k].off;
    if (r->j.w[k].width == 4) {
        uint32_t v = (uint32_t)r->j.w[k].val;
        memcpy(p, &v, 4);
    } else {
        memcpy(p, &r->j.w[k].val, 8);
    }
}

/*
 * What a locker does on EOWNERDEAD: finish a committed change, forget any other.  Built with
 * -DNJ_NO_REDO it only forgets, and the every-point check must fail (the test of this test).
 */
static void nj_recover(struct nj_region *r)
{
#ifndef NJ_NO_REDO
    if (atomic_load(&r->j.state) == NJ_COMMITTED)
        for (uint32_t k = 0; k < r->j.n; k++) nj_store(r, k);
#endif
    if (atomic_load(&r->seq) % 2) atomic_fetch_add(&r->seq, 1);
    atomic_store(&r->j.state, NJ_EMPTY);
    atomic_fetch_add(&r->recoveries, 1);
    pthread_mutex_consistent(&r->lock);
}

/* Take the lock; returns 1 when the previous holder had died in it (and was recovered). */
static int nj_lock(struct nj_region *r)
{
    int rc = pthread_mutex_lock(&r->lock);
    if (rc == EOWNERDEAD) {
        nj_recover(r);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "pthread_mutex_lock: %s\n", strerror(rc));
        exit(2);
    }
    return 0;
}

static void nj_begin(struct nj_region *r)
{
    r->j.n = 0;
    atomic_store(&r->j.state, NJ_BUILDING);
}

static void nj_put32(struct nj_region *r, uint32_t *field, uint32_t val)
{
    uint32_t k = r->j.n++;
    r->j.w[k].off = (uint32_t)((char *)field - (char *)r);
    r->j.w[k].width = 4;
    r->j.w[k].val = val;
}

/* Commit and apply the record, dying where the test asked; then unlock. */
static void nj_commit(struct nj_region *r)
{
    if (crash_at == NJ_BEFORE_COMMIT) raise(SIGKILL);
    atomic_store_explicit(&r->j.state, NJ_COMMITTED, memory_order_release);
    atomic_fetch_add(&r->seq, 1);
    for (uint32_t k = 0; k < r->j.n; k++) {
        if (crash_at == (int)k) raise(SIGKILL);
        nj_store(r, k);
    }
    if (crash_at == (int)r->j.n) raise(SIGKILL);
    atomic_fetch_add(&r->seq, 1);
    atomic_store_explicit(&r->j.state, NJ_EMPTY, memory_order_release);
}

static int nj_find(struct nj_region *r, const char *name)
{
    for (int i = 0; i < NJ_NAMES; i++)
        if (r->d[i].used && !strcmp(r->d[i].name, name)) return i;
    return -1;
}

static int nj_free_dentry(struct nj_region *r)
{
    for (int i = 0; i < NJ_NAMES; i++)
        if (!r->d[i].used) return i;
    return -1;
}

/* The namespace changes; each returns 0 or -errno and is made under the lock by the caller. */
static int nj_create(struct nj_region *r, const char *name)
{
    if (nj_find(r, name) >= 0) return -EEXIST;
    int d = nj_free_dentry(r), i = -1;
    for (int k = 0; k < NJ_INODES && i < 0; k++)
        if (!r->in[k].used) i = k;
    if (d < 0 || i < 0) return -ENOSPC;
    snprintf(r->d[d].name, sizeof r->d[d].name, "%s", name); /* a free dentry: invisible, not journaled */
    nj_begin(r);
    nj_put32(r, &r->in[i].used, 1);
    nj_put32(r, &r->in[i].nlink, 1);
    nj_put32(r, &r->d[d].inode, (uint32_t)i);
    nj_put32(r, &r->d[d].used, 1);
    nj_commit(r);
    return 0;
}

static int nj_link(struct nj_region *r, const char *from, const char *to)
{
    int s = nj_find(r, from);
    if (s < 0) return -ENOENT;
    if (nj_find(r, to) >= 0) return -EEXIST;
    int d = nj_free_dentry(r);
    if (d < 0) return -ENOSPC;
    uint32_t i = r->d[s].inode;
    snprintf(r->d[d].name, sizeof r->d[d].name, "%s", to);
    nj_begin(r);
    nj_put32(r, &r->d[d].inode, i);
    nj_put32(r, &r->in[i].nlink, r->in[i].nlink + 1);
    nj_put32(r, &r->d[d].used, 1);
    nj_commit(r);
    return 0;
}

/* Drop one name of inode i in the record being built. */
static void nj_put_unref(struct nj_region *r, uint32_t i)
{
    nj_put32(r, &r->in[i].nlink, r->in[i].nlink - 1);
    if (r->in[i].nlink == 1) nj_put32(r, &r->in[i].used, 0);
}

static int nj_rename(struct nj_region *r, const char *from, const char *to)
{
    int s = nj_find(r, from), t = nj_find(r, to);
    if (s < 0) return -ENOENT;
    if (t == s || (t >= 0 && r->d[t].inode == r->d[s].inode)) return 0; /* rename(2): nothing to do */
    int fresh = t < 0;
    if (fresh && (t = nj_free_dentry(r)) < 0) return -ENOSPC;
    nj_begin(r);
    if (!fresh) {
        nj_put_unref(r, r->d[t].inode);
        nj_put32(r, &r->d[t].inode, r->d[s].inode);
    } else {
        snprintf(r->d[t].name, sizeof r->d[t].name, "%s", to);
        nj_put32(r, &r->d[t].inode, r->d[s].inode);
        nj_put32(r, &r->d[t].used, 1);
    }
    nj_put32(r, &r->d[s].used, 0);
    nj_commit(r);
    return 0;
}

static int nj_unlink(struct nj_region *r, const char *name)
{
    int s = nj_find(r, name);
    if (s < 0) return -ENOENT;
    nj_begin(r);
    nj_put32(r, &r->d[s].used, 0);
    nj_put_unref(r, r->d[s].inode);
    nj_commit(r);
    return 0;
}

/* The invariants (claim 2); returns the number of violations and says what they are. */
static int nj_check(struct nj_region *r, const char *when)
{
    int bad = 0;
    for (int i = 0; i < NJ_INODES; i++) {
        uint32_t names = 0;
        for (int d = 0; d < NJ_NAMES; d++) names += r->d[d].used && r->d[d].inode == (uint32_t)i;
        if (r->in[i].used && (r->in[i].nlink != names || names == 0)) {
            fprintf(stderr, "%s: inode %d has nlink %u but %u names\n", when, i, r->in[i].nlink, names);
            bad++;
        }
        if (!r->in[i].used && names) {
            fprintf(stderr, "%s: free inode %d has %u names\n", when, i, names);
            bad++;
        }
    }
    for (int a = 0; a < NJ_NAMES; a++)
        for (int b = a + 1; b < NJ_NAMES; b++)
            if (r->d[a].used && r->d[b].used && !strcmp(r->d[a].name, r->d[b].name)) {
                fprintf(stderr, "%s: name %s twice\n", when, r->d[a].name);
                bad++;
            }
    if (atomic_load(&r->seq) % 2 || atomic_load(&r->j.state) != NJ_EMPTY) {
        fprintf(stderr, "%s: seq %llu, journal state %u\n", when, (unsigned long long)atomic_load(&r->seq), atomic_load(&r->j.state));
        bad++;
    }
    return bad;
}

static int nj_cmp_line(const void *a, const void *b) { return strcmp(a, b); }

/* The namespace as names -> (inode, nlink), sorted: what a program could observe. */
static void nj_snapshot(struct nj_region *r, char *out, size_t len)
{
    char lines[NJ_NAMES][48];
    int n = 0;
    for (int d = 0; d < NJ_NAMES; d++)
        if (r->d[d].used)
            snprintf(lines[n++], sizeof lines[0], "%s=%u/%u ", r->d[d].name, r->d[d].inode, r->in[r->d[d].inode].nlink);
    qsort(lines, (size_t)n, sizeof lines[0], nj_cmp_line);
    out[0] = 0;
    for (int i = 0; i < n; i++) strncat(out, lines[i], len - strlen(out) - 1);
}

static void nj_reset(struct nj_region *r)
{
    memset(r->d, 0, sizeof r->d);
    memset(r->in, 0, sizeof r->in);
    /* a base state with a hard link, so that unlink and rename meet nlink 2 */
    nj_lock(r);
    nj_create(r, "a");
    nj_create(r, "b");
    nj_link(r, "b", "c");
    pthread_mutex_unlock(&r->lock);
}

enum nj_op { NJ_CREATE, NJ_LINK, NJ_RENAME, NJ_RENAME_OVER, NJ_UNLINK, NJ_UNLINK_LAST, NJ_OPS };
static const char *const nj_op_names[] = {"create", "link", "rename", "rename over", "unlink of a hard link", "unlink of the last name"};

static int nj_do(struct nj_region *r, enum nj_op op)
{
    switch (op) {
    case NJ_CREATE: return nj_create(r, "n");
    case NJ_LINK: return nj_link(r, "a", "l");
    case NJ_RENAME: return nj_rename(r, "a", "m");
    case NJ_RENAME_OVER: return nj_rename(r, "a", "b");
    case NJ_UNLINK: return nj_unlink(r, "c");
    case NJ_UNLINK_LAST: return nj_unlink(r, "a");
    default: return -EINVAL;
    }
}

/* Claim 1 and 2: every operation killed at every point. */
static void nj_every_point(void)
{
    char before[512], after[512], got[512];
    for (int op = 0; op < NJ_OPS; op++) {
        nj_reset(R);
        nj_snapshot(R, before, sizeof before);
        nj_lock(R);
        CHECK(nj_do(R, (enum nj_op)op) == 0, "%s failed in the model", nj_op_names[op]);
        uint32_t stores = R->j.n;
        pthread_mutex_unlock(&R->lock);
        nj_snapshot(R, after, sizeof after);
        CHECK(strcmp(before, after) != 0, "%s changed nothing", nj_op_names[op]);
        for (int k = NJ_BEFORE_COMMIT; k <= (int)stores; k++) {
            nj_reset(R);
            pid_t kid = fork();
            if (kid == 0) {
                crash_at = k;
                nj_lock(R);
                nj_do(R, (enum nj_op)op);
                _exit(3); /* not reached: the change raised SIGKILL */
            }
            int st;
            waitpid(kid, &st, 0);
            CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s, kill point %d: the holder was not killed", nj_op_names[op], k);
            CHECK(nj_lock(R) == 1, "%s, kill point %d: no EOWNERDEAD", nj_op_names[op], k);
            CHECK(nj_check(R, nj_op_names[op]) == 0, "%s, kill point %d: invariants broken", nj_op_names[op], k);
            nj_snapshot(R, got, sizeof got);
            const char *want = k == NJ_BEFORE_COMMIT ? before : after;
            CHECK(!strcmp(got, want), "%s, kill point %d: namespace [%s], expected [%s]", nj_op_names[op], k, got, want);
            pthread_mutex_unlock(&R->lock);
        }
    }
}

/* Claim 3: random changes by several processes, some killed inside the lock. */
static void nj_random(void)
{
    enum { WORKERS = 3, OPS_EACH = 3000 };
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    nj_reset(R);
    atomic_store(&R->recoveries, 0);
    int killed = 0, done = 0;
    pid_t kids[WORKERS];
    for (int w = 0; w < WORKERS; w++) kids[w] = -1;
    unsigned seed = 12345;
    for (int round = 0; done < WORKERS * OPS_EACH; round++) {
        for (int w = 0; w < WORKERS; w++) {
            if (kids[w] > 0) continue;
            unsigned s = seed += 7919;
            kids[w] = fork();
            if (kids[w] == 0) {
                srand(s);
                for (int i = 0; i < OPS_EACH / 10; i++) {
                    crash_at = rand() % 150 == 0 ? rand() % 6 - 1 : NJ_NO_CRASH;
                    const char *x = names[rand() % 8], *y = names[rand() % 8];
                    nj_lock(R);
                    int rc;
                    switch (rand() % 4) {
                    case 0: rc = nj_create(R, x); break;
                    case 1: rc = nj_link(R, x, y); break;
                    case 2: rc = nj_rename(R, x, y); break;
                    default: rc = nj_unlink(R, x); break;
                    }
                    if (rc == 0) atomic_fetch_add(&R->changes, 1);
                    if (nj_check(R, "worker") != 0) _exit(4);
                    pthread_mutex_unlock(&R->lock);
                }
                _exit(0);
            }
        }
        int st;
        pid_t dead = wait(&st);
        for (int w = 0; w < WORKERS; w++)
            if (kids[w] == dead) kids[w] = -1;
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) killed++;
        else CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a worker found the invariants broken (status %d)", st);
        done += OPS_EACH / 10; /* a killed worker counts its slice as done: the run stays bounded */
    }
    for (int w = 0; w < WORKERS; w++) {
        int st;
        if (kids[w] > 0 && waitpid(kids[w], &st, 0) == kids[w] && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) killed++;
    }
    int last = nj_lock(R);
    CHECK(nj_check(R, "after the random run") == 0, "invariants broken after the random run");
    pthread_mutex_unlock(&R->lock);
    CHECK(killed > 0, "no holder was killed: the random run tested nothing");
    CHECK(atomic_load(&R->recoveries) == (uint32_t)killed, "%d holders killed, %u recoveries (last lock %d)", killed, atomic_load(&R->recoveries), last);
    printf("random run: %u changes by %d worker processes, %d holders killed inside the lock, %u recoveries\n",
           atomic_load(&R->changes), done / (OPS_EACH / 10), killed, atomic_load(&R->recoveries));
}

int main(void)
{
    R = mmap(NULL, sizeof *R, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (R == MAP_FAILED) return perror("mmap"), 2;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(&R->lock, &a) != 0) return perror("pthread_mutex_init"), 2;
    nj_every_point();
    nj_random();
    printf("%d checks, %d failed\n", checks, failures);
    return failures != 0;
}
