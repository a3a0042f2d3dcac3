/*
 * trace.h - the text trace the walk tests compare: lines appended with
 * emit(), the same lines sorted when two directory orders may differ, and the
 * tree both walk tests start from.  Include after shimmed.h (file_put_text).
 */
#ifndef EPH_TEST_TRACE_H
#define EPH_TEST_TRACE_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char trace[1 << 18];
static size_t tlen;

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(trace + tlen, sizeof trace - tlen, fmt, ap);
    va_end(ap);
    if (n > 0 && tlen + (size_t)n < sizeof trace)
        tlen += (size_t)n;
}

static int trace_cmp_lines(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* t with its lines sorted (readdir orders differ between memory and disk); malloc'ed. */
static char *sorted(const char *t)
{
    char *copy = strdup(t), **lines = malloc((strlen(t) / 2 + 1) * sizeof *lines);
    size_t n = 0;
    for (char *s = strtok(copy, "\n"); s; s = strtok(NULL, "\n"))
        lines[n++] = s;
    qsort(lines, n, sizeof lines[0], trace_cmp_lines);
    char *out = malloc(strlen(t) + 2);
    out[0] = '\0';
    for (size_t i = 0, len = 0; i < n; i++) {
        size_t k = strlen(lines[i]);
        memcpy(out + len, lines[i], k);
        out[len + k] = '\n';
        out[len += k + 1] = '\0';
    }
    free(lines);
    free(copy);
    return out;
}

/* A path built in one static buffer, for the tree builders: TP("%s/b/c", t). */
static char tp_buf[PATH_MAX];
#define TP(...) (snprintf(tp_buf, sizeof tp_buf, __VA_ARGS__), tp_buf)

/* The tree both walk tests start from: files, directories, a symlink to a file, a dangling one
 * and a loop (skipsub is the directory their callbacks tell the walk to skip). */
static void tree_common(const char *t)
{
    mkdir(t, 0755);
    file_put_text(TP("%s/a", t), "a-data");
    mkdir(TP("%s/b", t), 0755);
    file_put_text(TP("%s/b/c", t), "cc");
    mkdir(TP("%s/b/d", t), 0755);
    file_put_text(TP("%s/b/d/e", t), "eee");
    mkdir(TP("%s/b/skipsub", t), 0755);
    file_put_text(TP("%s/b/skipsub/f", t), "f");
    CHECK(symlink("../a", TP("%s/b/lnk", t)) == 0, "symlink: %s", strerror(errno));
    CHECK(symlink("nowhere", TP("%s/b/dang", t)) == 0, "symlink: %s", strerror(errno));
    CHECK(symlink("..", TP("%s/b/loop", t)) == 0, "symlink: %s", strerror(errno));
    mkdir(TP("%s/z", t), 0755);
    file_put_text(TP("%s/z/y", t), "yy");
    file_put_text(TP("%s/z/x", t), "xxx");
}

#endif
