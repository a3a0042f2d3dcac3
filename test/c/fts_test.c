/*
 * fts_test.c - fts(3) under the shim.
 *
 *   fts_test             (runs itself under the shim: see shimmed.h)
 *
 * 1. The shim's fts against glibc's (looked up in libc.so.6) on a disk tree
 *    with symlinks, a loop, a dangling link and a link to another file
 *    system: for each option set, comparison function and set of roots, the
 *    traces of fts_read (info, path, accpath, name, level, lengths, errno,
 *    cwd, st_size, the cycle's name) must be identical, with fts_set
 *    (FTS_SKIP, FTS_AGAIN, FTS_FOLLOW, also on children listed ahead) and
 *    fts_children (all, names only) called along the way, and the working
 *    directory must be back at the end.
 * 2. The same tree under a managed root, files in memory, against its copy on
 *    disk: identical traces (sorted by name); glibc's own fts, which cannot
 *    see the in-memory files, must differ (the check has teeth).
 */
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"
#include "trace.h"

struct fts_api {
    FTS *(*open)(char *const *, int, int (*)(const FTSENT **, const FTSENT **));
    FTSENT *(*read)(FTS *);
    FTSENT *(*children)(FTS *, int);
    int (*set)(FTS *, FTSENT *, int);
    int (*close)(FTS *);
};

static const char *strip; /* prefix hidden in reported paths (the scratch directory) */

static const char *rel(const char *p)
{
    size_t n = strlen(strip);
    return p && strncmp(p, strip, n) == 0 ? p + n : p ? p : "(null)";
}

static void build_tree(const char *t, const char *other_fs)
{
    tree_common(t);
    file_put_text(TP("%s/b/again", t), "again!");
    mkdir(TP("%s/b/d/deeper", t), 0755);
    file_put_text(TP("%s/b/d/deeper/f", t), "ffff");
    CHECK(symlink("d", TP("%s/b/followdir", t)) == 0, "symlink: %s", strerror(errno));
    if (other_fs)
        CHECK(symlink(other_fs, TP("%s/b/otherfs", t)) == 0, "symlink: %s", strerror(errno));
    mkdir(TP("%s/empty", t), 0755);
    CHECK(mkfifo(TP("%s/z/fifo", t), 0644) == 0, "mkfifo: %s", strerror(errno)); /* FTS_DEFAULT */
}

static int by_name(const FTSENT **a, const FTSENT **b) { return strcmp((*a)->fts_name, (*b)->fts_name); }
static int by_name_rev(const FTSENT **a, const FTSENT **b) { return strcmp((*b)->fts_name, (*a)->fts_name); }

static void emit_list(const char *what, FTSENT *c)
{
    emit("  %s errno=%d:", what, c ? 0 : errno);
    for (; c; c = c->fts_link)
        emit(" %s/%d/%s", rel(c->fts_name), c->fts_info, rel(c->fts_accpath));
    emit("\n");
}

static void walk(const struct fts_api *api, char *const *roots, int opts,
                 int (*cmp)(const FTSENT **, const FTSENT **), int actions)
{
    tlen = 0;
    trace[0] = '\0';
    errno = 0;
    FTS *fs = api->open(roots, opts, cmp);
    if (!fs) {
        emit("open: NULL errno=%d\n", errno);
        return;
    }
    if (actions)
        emit_list("roots", api->children(fs, 0));
    FTSENT *e;
    int n = 0;
    while ((e = api->read(fs)) != NULL && n++ < 2000) {
        char cwd[PATH_MAX] = "-";
        if (!(opts & (FTS_NOCHDIR | FTS_LOGICAL)) && !getcwd(cwd, sizeof cwd))
            strcpy(cwd, "?");
        emit("%d %s acc=%s name=%s lvl=%d nl=%d pl=%d/%zu err=%d cwd=%s", e->fts_info, rel(e->fts_path),
             rel(e->fts_accpath), e->fts_name, e->fts_level, e->fts_namelen, e->fts_pathlen, strlen(e->fts_path),
             e->fts_errno, rel(cwd));
        if (e->fts_info == FTS_F && !(opts & FTS_NOSTAT))
            emit(" size=%lld", (long long)e->fts_statp->st_size);
        if (e->fts_info == FTS_DC)
            emit(" cycle=%s", e->fts_cycle->fts_name);
        emit("\n");
        if (!actions)
            continue;
        if (e->fts_info == FTS_D && strcmp(e->fts_name, "skipsub") == 0)
            api->set(fs, e, FTS_SKIP);
        if (e->fts_info == FTS_F && strcmp(e->fts_name, "again") == 0 && e->fts_number++ == 0)
            api->set(fs, e, FTS_AGAIN);
        if ((e->fts_info == FTS_SL || e->fts_info == FTS_SLNONE) && strncmp(e->fts_name, "follow", 6) == 0)
            api->set(fs, e, FTS_FOLLOW);
        if (e->fts_info == FTS_D && strcmp(e->fts_name, "b") == 0) {
            FTSENT *c = api->children(fs, 0);
            emit_list("children", c);
            for (; c; c = c->fts_link) {
                if (strcmp(c->fts_name, "c") == 0)
                    api->set(fs, c, FTS_SKIP);
                if (strcmp(c->fts_name, "lnk") == 0)
                    api->set(fs, c, FTS_FOLLOW);
            }
        }
        if (e->fts_info == FTS_D && strcmp(e->fts_name, "d") == 0)
            emit_list("names", api->children(fs, FTS_NAMEONLY));
        if (e->fts_info == FTS_D && strcmp(e->fts_name, "z") == 0) {
            api->children(fs, 0);
            emit_list("z again", api->children(fs, 0));
        }
        if (e->fts_info == FTS_F)
            emit_list("children of a file", api->children(fs, 0));
    }
    emit("end errno=%d\n", errno);
    emit("close %d\n", api->close(fs));
}

static const int OPTS[] = {
    FTS_PHYSICAL, FTS_PHYSICAL | FTS_NOCHDIR, FTS_LOGICAL, FTS_PHYSICAL | FTS_COMFOLLOW,
    FTS_PHYSICAL | FTS_SEEDOT, FTS_PHYSICAL | FTS_NOSTAT, FTS_PHYSICAL | FTS_NOSTAT | FTS_NOCHDIR,
    FTS_LOGICAL | FTS_NOSTAT, FTS_PHYSICAL | FTS_XDEV, FTS_LOGICAL | FTS_XDEV, FTS_LOGICAL | FTS_SEEDOT,
    FTS_PHYSICAL | FTS_COMFOLLOW | FTS_NOCHDIR | FTS_SEEDOT, 0, FTS_NOSTAT | FTS_SEEDOT,
};
#define NOPTS (sizeof OPTS / sizeof OPTS[0])
static int (*const CMPS[])(const FTSENT **, const FTSENT **) = {NULL, by_name, by_name_rev};

/* 1. ours against glibc's on a disk tree */
static void check_against_glibc(const struct fts_api *real, const struct fts_api *ours, const char *disk)
{
    char t[PATH_MAX], shm[64], cwd0[PATH_MAX];
    snprintf(t, sizeof t, "%s/tree", disk);
    snprintf(shm, sizeof shm, "/dev/shm/fts_test-%d", (int)getpid());
    mkdir(shm, 0755);
    snprintf(cwd0, sizeof cwd0, "%s/inside", shm);
    file_put_text(cwd0, "on another file system");
    build_tree(t, shm);
    strip = disk;
    CHECK(getcwd(cwd0, sizeof cwd0) != NULL, "getcwd");
    char r1[PATH_MAX + 16], r2[PATH_MAX + 16], r3[PATH_MAX + 16], r4[PATH_MAX + 16];
    char *sets[][5] = {
        {t, NULL},
        {strcat(strcpy(r1, t), "/"), NULL},
        {strcat(strcpy(r2, t), "/z"), strcat(strcpy(r3, t), "/b"), strcat(strcpy(r4, t), "/a"), NULL},
        {"tree", NULL},          /* relative: from disk */
        {"tree/b/lnk", "tree/b/followdir", "tree/missing", "tree/b/dang", NULL},
        {".", NULL},
    };
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
        for (size_t o = 0; o < NOPTS; o++) {
            /* glibc reads an uninitialised fts_dev for a root that is a symlink (FTS_XDEV) */
            if (s == 4 && (OPTS[o] & FTS_XDEV))
                continue;
            for (size_t c = 0; c < 3; c++) {
                for (int act = 0; act < 2; act++) {
                    if (chdir(sets[s][0][0] == '/' ? cwd0 : disk) < 0)
                        CHECK(0, "chdir: %s", strerror(errno));
                    char here[PATH_MAX];
                    CHECK(getcwd(here, sizeof here) != NULL, "getcwd");
                    walk(real, sets[s], OPTS[o], CMPS[c], act);
                    char *want = strdup(trace);
                    char c1[PATH_MAX];
                    CHECK(getcwd(c1, sizeof c1) && strcmp(c1, here) == 0, "glibc left the cwd at %s", c1);
                    walk(ours, sets[s], OPTS[o], CMPS[c], act);
                    CHECK(strcmp(want, trace) == 0, "fts(%s..., options %#x, compar %zu, actions %d): glibc\n%s-- shim\n%s",
                          sets[s][0], OPTS[o], c, act, want, trace);
                    CHECK(getcwd(c1, sizeof c1) && strcmp(c1, here) == 0, "fts left the cwd at %s", c1);
                    free(want);
                }
            }
        }
    }
    if (chdir(cwd0) < 0)
        CHECK(0, "chdir back");
    /* argument errors */
    char *bad[] = {t, "", NULL};
    errno = 0;
    CHECK(ours->open(bad, FTS_PHYSICAL, NULL) == NULL && errno == ENOENT, "empty root: ENOENT (%d)", errno);
    char *good[] = {t, NULL};
    errno = 0;
    CHECK(ours->open(good, 0x4000, NULL) == NULL && errno == EINVAL, "unknown option: EINVAL (%d)", errno);
    FTS *fs = ours->open(good, FTS_PHYSICAL, NULL);
    CHECK(fs != NULL, "fts_open");
    if (fs) {
        FTSENT *e = ours->read(fs);
        errno = 0;
        CHECK(ours->set(fs, e, 99) == 1 && errno == EINVAL, "fts_set 99: 1, EINVAL");
        errno = 0;
        CHECK(ours->children(fs, 99) == NULL && errno == EINVAL, "fts_children 99: EINVAL");
        CHECK(ours->close(fs) == 0, "fts_close in the middle");
    }
    CHECK(rm_rf(shm) == 0, "rm %s", shm);
}


/* 2. in-memory files against the same tree on disk */
static void check_memory_vs_disk(const struct fts_api *real, const struct fts_api *ours, const char *root, const char *disk,
                                 const char *sub)
{
    char mt[PATH_MAX], dt[PATH_MAX];
    snprintf(mt, sizeof mt, "%s/%s", root, sub);
    snprintf(dt, sizeof dt, "%s/%s", disk, sub);
    build_tree(mt, NULL);
    build_tree(dt, NULL);
    char probe[PATH_MAX + 8];
    snprintf(probe, sizeof probe, "%s/b/c", mt);
    int (*real_stat)(const char *, struct stat *) = (int (*)(const char *, struct stat *))libc_sym("stat");
    struct stat st;
    CHECK(real_stat && real_stat(probe, &st) < 0, "%s is on disk: the shim did not keep it in memory", probe);
    for (size_t o = 0; o < NOPTS; o++) {
        if (OPTS[o] & FTS_XDEV)
            continue; /* no other file system in this tree */
        for (size_t c = 0; c < 3; c++) {
            char *rm[] = {mt, NULL}, *rd[] = {dt, NULL};
            /* in directory order (no compar) the lines are compared as a set, without the
             * actions, whose children lists and skips follow that order */
            strip = root;
            walk(ours, rm, OPTS[o], CMPS[c], c != 0);
            char *m = c ? strdup(trace) : sorted(trace);
            strip = disk;
            walk(ours, rd, OPTS[o], CMPS[c], c != 0);
            char *d = c ? strdup(trace) : sorted(trace);
            CHECK(strcmp(m, d) == 0, "options %#x compar %zu: memory\n%s-- disk\n%s", OPTS[o], c, m, d);
            free(m);
            free(d);
        }
    }
    char *rm[] = {mt, NULL}, *rd[] = {dt, NULL};
    strip = root;
    walk(real, rm, FTS_PHYSICAL, by_name, 0);
    char *m = strdup(trace);
    strip = disk;
    walk(ours, rd, FTS_PHYSICAL, by_name, 0);
    CHECK(strcmp(m, trace) != 0, "glibc's fts saw the in-memory files too");
    free(m);
}

static int child_main(const char *root, const char *disk)
{
    struct fts_api real = {
        (FTS * (*)(char *const *, int, int (*)(const FTSENT **, const FTSENT **))) libc_sym("fts_open"),
        (FTSENT * (*)(FTS *)) libc_sym("fts_read"),
        (FTSENT * (*)(FTS *, int)) libc_sym("fts_children"),
        (int (*)(FTS *, FTSENT *, int))libc_sym("fts_set"),
        (int (*)(FTS *))libc_sym("fts_close"),
    };
    struct fts_api ours = {fts_open, fts_read, fts_children, fts_set, fts_close};
    struct fts_api ours64 = {
        (FTS * (*)(char *const *, int, int (*)(const FTSENT **, const FTSENT **))) fts64_open,
        (FTSENT * (*)(FTS *)) fts64_read,
        (FTSENT * (*)(FTS *, int)) fts64_children,
        (int (*)(FTS *, FTSENT *, int))fts64_set,
        (int (*)(FTS *))fts64_close,
    };
    CHECK(real.open && real.read && real.children && real.set && real.close, "glibc's fts not found");
    CHECK((void *)ours.open != (void *)real.open, "fts_open is glibc's: the shim does not export it");
    if (failures)
        return 1;
    check_against_glibc(&real, &ours, disk);
    check_memory_vs_disk(&real, &ours, root, disk, "t");
    check_memory_vs_disk(&real, &ours64, root, disk, "t64");
    printf("fts_test: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}

int main(int argc, char **argv)
{
    return shimmed_main(argc, argv, "fts_test", child_main);
}
