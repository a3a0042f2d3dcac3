/*
 * test/fs/c/dirfd_names.c - calls relative to directory fds whose numbers and names change under
 * them, for dirfd.test.mjs (same output on tmpfs and under the shim, which keeps the names of
 * directory fds it looked up; shim/dircache.c):
 *
 *   dirfd_names DIR          the scenarios, printing where each file landed
 *   dirfd_names DIR loop N   N create + unlink cycles relative to one directory fd
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void make_at(int dfd, const char *name, const char *text)
{
    int fd = openat(dfd, name, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) {
        printf("openat(%s): error\n", name);
        return;
    }
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        printf("write %s: short\n", name);
    close(fd);
}

/* The names in DIR/sub, sorted, with their contents. */
static void list(const char *dir, const char *sub)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    struct dirent **ents;
    int n = scandir(p, &ents, NULL, alphasort);
    if (n < 0) {
        printf("%s: gone\n", sub);
        return;
    }
    printf("%s:", sub);
    for (int i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.') {
            char f[8192], buf[64] = "";
            snprintf(f, sizeof f, "%s/%s", p, ents[i]->d_name);
            int fd = open(f, O_RDONLY);
            ssize_t r = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
            buf[r > 0 ? r : 0] = '\0';
            if (fd >= 0)
                close(fd);
            printf(" %s=%s", ents[i]->d_name, buf);
        }
        free(ents[i]);
    }
    free(ents);
    printf("\n");
}

static int opendir_fd(const char *dir, const char *sub)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    return open(p, O_RDONLY | O_DIRECTORY);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *d = argv[1];
    char p[4096], q[4096];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[2], "loop") == 0) {
        int dfd = open(d, O_RDONLY | O_DIRECTORY);
        for (int i = 0, n = atoi(argv[3]); i < n; i++) {
            char name[32];
            snprintf(name, sizeof name, "f%d", i);
            make_at(dfd, name, "x");
            if (unlinkat(dfd, name, 0) < 0)
                printf("unlinkat %s: error\n", name);
        }
        close(dfd);
        printf("loop done\n");
        return 0;
    }
    for (const char *s = "a\0b\0e\0"; *s; s += strlen(s) + 1) {
        snprintf(p, sizeof p, "%s/%s", d, s);
        mkdir(p, 0755);
    }
    /* 1. a closed fd's number given to another directory: the new one is meant */
    int fa = opendir_fd(d, "a");
    make_at(fa, "one", "1");
    close(fa);
    int fb = opendir_fd(d, "b");
    printf("same number %d\n", fa == fb);
    make_at(fb, "two", "2");
    /* 2. the directory renamed: its fd follows it */
    snprintf(p, sizeof p, "%s/b", d);
    snprintf(q, sizeof q, "%s/c", d);
    printf("rename %d\n", rename(p, q));
    make_at(fb, "three", "3");
    /* 3. another directory dup2'd over the fd */
    int fe = opendir_fd(d, "e");
    printf("dup2 %d\n", dup2(fe, fb) == fb);
    make_at(fb, "four", "4");
    /* 4. the directory removed and made again under the same name: the old fd names nothing */
    int fa2 = opendir_fd(d, "a");
    make_at(fa2, "five", "5");
    snprintf(p, sizeof p, "%s/a/one", d);
    unlink(p);
    snprintf(p, sizeof p, "%s/a/five", d);
    unlink(p);
    snprintf(p, sizeof p, "%s/a", d);
    int rd = rmdir(p);
    printf("rmdir %d mkdir %d\n", rd, mkdir(p, 0755));
    int fd6 = openat(fa2, "six", O_CREAT | O_WRONLY, 0644);
    printf("create in the removed directory: %s\n", fd6 < 0 ? "refused" : "made");
    if (fd6 >= 0)
        close(fd6);
    close(fa2);
    close(fb);
    close(fe);
    list(d, "a");
    list(d, "b");
    list(d, "c");
    list(d, "e");
    return 0;
}
