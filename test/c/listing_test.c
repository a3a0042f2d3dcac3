/*
 * Listings of names in memory (shim/intercept_dir.c's snapshot, branch readdirlock), against what
 * a listing must show whatever the scan does inside:
 *
 * - a directory in memory (a stand-in stream) lists ".", "..", its files and its subdirectory,
 *   each once, with d_type and with d_ino equal to stat's st_ino; not the files of a sibling
 *   whose name starts with its own ("a" and "ab"), nor a grandchild; a name of 255 bytes whole;
 * - a disk directory (the root) lists the files made in memory in it once each, beside the kernel's;
 * - a slot freed by an unlink and reused by a file elsewhere (its path's old bytes past the new
 *   name's end) lists under neither directory by those old bytes;
 * - two listings of an unchanged directory come in the same order; telldir/seekdir go back to
 *   the same name; rewinddir shows a file made and hides one removed since the open;
 * - a directory of 300 names lists all of them (the snapshot grows past its first allocation).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

#define NFILES 300
#define MAXN 400

struct listing {
    int n;
    char name[MAXN][256];
    unsigned char type[MAXN];
    ino_t ino[MAXN];
};

static void list(const char *dir, struct listing *l)
{
    l->n = 0;
    DIR *d = opendir(dir);
    CHECK(d != NULL, "opendir %s: %s", dir, strerror(errno));
    if (!d)
        return;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL && l->n < MAXN) {
        snprintf(l->name[l->n], sizeof l->name[0], "%s", de->d_name);
        l->type[l->n] = de->d_type;
        l->ino[l->n] = de->d_ino;
        l->n++;
    }
    CHECK(errno == 0, "readdir %s: %s", dir, strerror(errno));
    closedir(d);
}

/* How many times name is listed; its d_type and d_ino in *type, *ino. */
static int count(const struct listing *l, const char *name, unsigned char *type, ino_t *ino)
{
    int c = 0;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->name[i], name) == 0) {
            c++;
            if (type)
                *type = l->type[i];
            if (ino)
                *ino = l->ino[i];
        }
    return c;
}

static void make_file(const char *p)
{
    int fd = open(p, O_CREAT | O_WRONLY | O_EXCL, 0644);
    CHECK(fd >= 0, "create %s: %s", p, strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* name is listed once in l, with type and the d_ino that stat gives path. */
static void listed_once(const struct listing *l, const char *name, const char *path, unsigned char want_type)
{
    unsigned char type = 0;
    ino_t ino = 0;
    struct stat st;
    int c = count(l, name, &type, &ino);
    CHECK(c == 1, "%s listed %d times", name, c);
    CHECK(c != 1 || type == want_type, "%s: d_type %u, want %u", name, type, want_type);
    CHECK(stat(path, &st) == 0 && (c != 1 || ino == st.st_ino), "%s: d_ino %llu, st_ino %llu", name,
          (unsigned long long)ino, (unsigned long long)st.st_ino);
}

static struct listing l1, l2;

static int child(const char *root, const char *disk)
{
    (void)disk;
    char a[PATH_MAX], ab[PATH_MAX], sub[PATH_MAX], p[PATH_MAX + 300];
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(ab, sizeof ab, "%s/ab", root);
    snprintf(sub, sizeof sub, "%s/a/sub", root);
    CHECK(mkdir(a, 0755) == 0 && mkdir(ab, 0755) == 0 && mkdir(sub, 0755) == 0, "mkdir: %s", strerror(errno));
    for (int i = 0; i < NFILES; i++) {
        snprintf(p, sizeof p, "%s/f%d", a, i);
        make_file(p);
    }
    char longname[256];
    memset(longname, 'L', 255);
    longname[255] = '\0';
    snprintf(p, sizeof p, "%s/%s", a, longname);
    make_file(p);
    snprintf(p, sizeof p, "%s/x1", ab);
    make_file(p);
    snprintf(p, sizeof p, "%s/g", sub);
    make_file(p);
    snprintf(p, sizeof p, "%s/top", root);
    make_file(p);

    /* ---- the directory in memory ---- */
    list(a, &l1);
    CHECK(l1.n == NFILES + 4, "a lists %d names, want %d (. .. sub, the files, the long name)", l1.n, NFILES + 4);
    listed_once(&l1, ".", a, DT_DIR);
    listed_once(&l1, "..", root, DT_DIR);
    listed_once(&l1, "sub", sub, DT_DIR);
    for (int i = 0; i < NFILES; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%d", i);
        snprintf(p, sizeof p, "%s/%s", a, name);
        listed_once(&l1, name, p, DT_REG);
    }
    snprintf(p, sizeof p, "%s/%s", a, longname);
    listed_once(&l1, longname, p, DT_REG);
    CHECK(count(&l1, "x1", NULL, NULL) == 0 && count(&l1, "g", NULL, NULL) == 0 && count(&l1, "top", NULL, NULL) == 0,
          "a lists a name of ab, of a/sub or of the root");
    CHECK(strcmp(l1.name[0], ".") == 0 && strcmp(l1.name[1], "..") == 0, "a stand-in lists . and .. first: %s %s",
          l1.name[0], l1.name[1]);

    /* ---- the same order twice ---- */
    list(a, &l2);
    int same = l1.n == l2.n;
    for (int i = 0; same && i < l1.n; i++)
        same = strcmp(l1.name[i], l2.name[i]) == 0;
    CHECK(same, "two listings of an unchanged a differ in order");

    /* ---- the disk root: its files in memory, once each ---- */
    list(root, &l2);
    snprintf(p, sizeof p, "%s/top", root);
    listed_once(&l2, "top", p, DT_REG);
    listed_once(&l2, "a", a, DT_DIR);
    listed_once(&l2, "ab", ab, DT_DIR);
    CHECK(count(&l2, "f0", NULL, NULL) == 0 && count(&l2, "x1", NULL, NULL) == 0, "the root lists a grandchild");
    list(ab, &l2);
    CHECK(l2.n == 3 && count(&l2, "x1", NULL, NULL) == 1, "ab lists %d names, want . .. x1", l2.n);

    /* ---- a freed slot reused elsewhere: its old bytes list nowhere ---- */
    for (int i = 0; i < 20; i++) {
        snprintf(p, sizeof p, "%s/%s-%d", a, "a-rather-long-name-that-leaves-old-bytes", i);
        make_file(p);
        CHECK(unlink(p) == 0, "unlink %s: %s", p, strerror(errno));
        snprintf(p, sizeof p, "%s/s%d", ab, i);
        make_file(p);
    }
    list(a, &l2);
    CHECK(l2.n == NFILES + 4, "after reuse a lists %d names, want %d", l2.n, NFILES + 4);
    list(ab, &l2);
    CHECK(l2.n == 3 + 20, "after reuse ab lists %d names, want %d", l2.n, 3 + 20);

    /* ---- telldir/seekdir and rewinddir ---- */
    DIR *d = opendir(a);
    CHECK(d != NULL, "opendir a: %s", strerror(errno));
    if (d) {
        struct dirent *de;
        for (int i = 0; i < 100 && (de = readdir(d)) != NULL; i++)
            ;
        long pos = telldir(d);
        char here[3][256];
        for (int i = 0; i < 3; i++) {
            de = readdir(d);
            snprintf(here[i], sizeof here[i], "%s", de ? de->d_name : "(end)");
        }
        seekdir(d, pos);
        for (int i = 0; i < 3; i++) {
            de = readdir(d);
            CHECK(de && strcmp(de->d_name, here[i]) == 0, "after seekdir: %s, want %s", de ? de->d_name : "(end)",
                  here[i]);
        }
        snprintf(p, sizeof p, "%s/new", a);
        make_file(p);
        snprintf(p, sizeof p, "%s/f7", a);
        CHECK(unlink(p) == 0, "unlink f7: %s", strerror(errno));
        rewinddir(d);
        int n = 0, seen_new = 0, seen_f7 = 0;
        while ((de = readdir(d)) != NULL) {
            n++;
            seen_new += strcmp(de->d_name, "new") == 0;
            seen_f7 += strcmp(de->d_name, "f7") == 0;
        }
        CHECK(n == NFILES + 4 && seen_new == 1 && seen_f7 == 0, "after rewinddir: %d names, new %d, f7 %d", n,
              seen_new, seen_f7);
        closedir(d);
    }
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    return shimmed_main(argc, argv, "listing", child);
}
