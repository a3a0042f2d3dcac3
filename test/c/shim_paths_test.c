// test-tier: unit
/*
 * Unit tests for the shim's lexical path helpers (shim/pathnorm.c): the
 * normalisation every managed path goes through, and root matching.
 */
// test-sources: shim/pathnorm.c
#include <stdio.h>
#include <string.h>

#include "../../shim/pathnorm.h"

#include "check.h"

static void norm(const char *base, const char *p, const char *want, int want_trailing)
{
    char out[64];
    int tr = -1;
    int n = pn_normalize(base, p, out, sizeof out, &tr);
    CHECK(n >= 0 && strcmp(out, want) == 0 && (size_t)n == strlen(want),
          "normalize(%s, %s) = %s (%d), want %s", base, p, n >= 0 ? out : "-", n, want);
    CHECK(tr == want_trailing, "normalize(%s, %s) trailing = %d, want %d", base, p, tr, want_trailing);
}

/* The component-by-component normalisation pn_normalize made for every path before its one-copy
 * way for names that are already normal (branch gitcost4): the answer it must keep giving. */
static int reference_normalize(const char *base, const char *p, char *out, size_t outsz, int *trailing)
{
    size_t len = 0;
    if (outsz < 2)
        return -1;
    if (p[0] != '/') {
        size_t bl = strlen(base);
        if (bl + 1 > outsz)
            return -1;
        memcpy(out, base, bl);
        len = bl == 1 ? 0 : bl;
    }
    out[len] = '\0';
    if (trailing) {
        size_t pl = strlen(p);
        *trailing = pl > 0 && (p[pl - 1] == '/' || (p[pl - 1] == '.' &&
                    (pl == 1 || p[pl - 2] == '/' || (p[pl - 2] == '.' && (pl == 2 || p[pl - 3] == '/')))));
    }
    for (const char *s = p; *s;) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        const char *e = s;
        while (*e && *e != '/')
            e++;
        size_t cl = (size_t)(e - s);
        if (cl == 1 && s[0] == '.') {
        } else if (cl == 2 && s[0] == '.' && s[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            out[len] = '\0';
        } else {
            if (len + 1 + cl + 1 > outsz)
                return -1;
            out[len++] = '/';
            memcpy(out + len, s, cl);
            len += cl;
            out[len] = '\0';
        }
        s = e;
    }
    if (len == 0) {
        out[0] = '/';
        out[1] = '\0';
        len = 1;
    }
    return (int)len;
}

/* Random names over '/', '.', 'a' and 'b' against random bases and buffer sizes: the same length,
 * name and trailing flag as the reference, overflow included. */
static void normalize_matches_reference(void)
{
    static const char *bases[] = {"/", "/t", "/tmp", "/tmp/d.x", "/a/b/c/d/e", "x", ""};
    static const char alphabet[] = "/.ab";
    unsigned seed = 12345, mismatches = 0, plain = 0;
    for (int round = 0; round < 200000; round++) {
        char p[16];
        seed = seed * 1103515245u + 12345u;
        int n = (int)((seed >> 16) % 15);
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            p[i] = alphabet[(seed >> 16) % 4];
        }
        p[n] = '\0';
        seed = seed * 1103515245u + 12345u;
        const char *base = bases[(seed >> 16) % (sizeof bases / sizeof bases[0])];
        seed = seed * 1103515245u + 12345u;
        size_t outsz = (seed >> 16) % 4 == 0 ? 64 : (size_t)((seed >> 16) % 24);
        char got[64], want[64];
        int tg = -1, tw = -1;
        memset(got, 'Z', sizeof got);
        int g = pn_normalize(base, p, got, outsz, &tg);
        int w = reference_normalize(base, p, want, outsz, &tw);
        plain += w >= 0 && strcmp(want, p) == 0;
        if (g != w || (w >= 0 && (strcmp(got, want) != 0 || tg != tw)) || (outsz < sizeof got && got[outsz] != 'Z')) {
            if (mismatches++ < 5)
                CHECK(0, "normalize(%s, %s, %zu) = %d %s %d, reference %d %s %d", base, p, outsz, g,
                      g >= 0 ? got : "-", tg, w, w >= 0 ? want : "-", tw);
        }
    }
    CHECK(mismatches == 0, "%u names normalised otherwise than the reference", mismatches);
    CHECK(plain > 1000, "only %u names were already normal: the fast way was hardly tried", plain);
}

int main(void)
{
    normalize_matches_reference();

    /* absolute paths ignore the base */
    norm("/x", "/tmp/a", "/tmp/a", 0);
    norm("/x", "//tmp///a", "/tmp/a", 0);
    norm("/x", "/tmp/./a/.", "/tmp/a", 1);
    norm("/x", "/tmp/a/", "/tmp/a", 1);
    norm("/x", "/tmp/a/../b", "/tmp/b", 0);
    norm("/x", "/tmp/a/..", "/tmp", 1);
    norm("/x", "/..", "/", 1);
    norm("/x", "/../../tmp", "/tmp", 0);
    norm("/x", "/", "/", 1);
    norm("/x", "/tmp/..a/.b", "/tmp/..a/.b", 0);
    /* relative paths join the base */
    norm("/tmp", "a", "/tmp/a", 0);
    norm("/tmp", "./a/b", "/tmp/a/b", 0);
    norm("/tmp", "../tmp/a", "/tmp/a", 0);
    norm("/", "tmp/a", "/tmp/a", 0);
    norm("/", "..", "/", 1);
    norm("/tmp/d", ".", "/tmp/d", 1);
    norm("/tmp/d", "..", "/tmp", 1);
    norm("/tmp/d", "a..", "/tmp/d/a..", 0);

    /* overflow is reported, never written past the buffer */
    char small[8];
    CHECK(pn_normalize("/", "/abcdefghijk", small, sizeof small, NULL) < 0, "overflow not detected");
    CHECK(pn_normalize("/abcdefghij", "x", small, sizeof small, NULL) < 0, "base overflow not detected");
    CHECK(pn_normalize("/", "/abcdef", small, sizeof small, NULL) == 7, "exact fit rejected");

    /* root matching is per component */
    CHECK(pn_under("/tmp", "/tmp", 4), "root itself");
    CHECK(pn_under("/tmp/a", "/tmp", 4), "below root");
    CHECK(!pn_under("/tmpx/a", "/tmp", 4), "sibling with common prefix");
    CHECK(!pn_under("/tm", "/tmp", 4), "shorter");
    CHECK(pn_under("/anything", "/", 1), "root /");

    /* parent test for directory listings */
    CHECK(pn_parent_is("/tmp/a", "/tmp", 4), "direct child");
    CHECK(!pn_parent_is("/tmp/d/a", "/tmp", 4), "grandchild");
    CHECK(!pn_parent_is("/tmpx/a", "/tmp", 4), "other dir");
    CHECK(pn_parent_is("/a", "/", 1), "child of /");
    CHECK(!pn_parent_is("/tmp", "/tmp", 4), "itself");

    /* can relative names from a directory reach a root? */
    CHECK(pn_is_ancestor("/", "/tmp"), "/ is an ancestor");
    CHECK(pn_is_ancestor("/var", "/var/tmp"), "/var");
    CHECK(!pn_is_ancestor("/va", "/var/tmp"), "component boundary");
    CHECK(!pn_is_ancestor("/home", "/tmp"), "unrelated");

    CHECK(pn_has_dotdot(".."), "..");
    CHECK(pn_has_dotdot("a/../b"), "a/../b");
    CHECK(pn_has_dotdot("a/.."), "a/..");
    CHECK(!pn_has_dotdot("a..b/c"), "a..b");
    CHECK(!pn_has_dotdot("..a"), "..a");

    if (failures) {
        fprintf(stderr, "shim_paths_test: %d failure(s)\n", failures);
        return 1;
    }
    printf("shim_paths_test: ok\n");
    return 0;
}
