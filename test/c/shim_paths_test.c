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

int main(void)
{
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
