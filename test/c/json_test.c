// test-tier: unit
/*
 * json_test.c - the control protocol's request reader (daemon/json.c) on
 * its own: what it accepts, what it decodes, and the code and message of
 * every refusal.
 */
// test-sources: daemon/json.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"

static char scratch[4096];
static struct jobj obj;
static struct json_err err;

static int parse(const char *line)
{
    memset(&err, 0, sizeof err);
    return json_parse(line, strlen(line), scratch, &obj, &err);
}

/* line must be refused with code, and a message containing msg. */
static void refuse(const char *line, const char *code, const char *msg)
{
    int rc = parse(line);
    CHECK(rc == -1, "accepted %s", line);
    CHECK(rc == -1 && err.code && strcmp(err.code, code) == 0, "%s: code %s, want %s", line,
          err.code ? err.code : "(none)", code);
    CHECK(rc == -1 && strstr(err.msg, msg), "%s: message '%s', want '%s'", line, err.msg, msg);
}

static void test_values(void)
{
    const char *line = " {\"v\":1, \"id\":\"a\\\"b\", \"n\":-12, \"f\":1.5e3, \"t\":true,"
                       "\"no\":false, \"z\":null, \"e\":[], \"arr\":[\"x\", \"y\"] } ";
    CHECK(parse(line) == 0, "%s: %s", line, err.msg);
    CHECK(obj.n == 9, "fields: %d", obj.n);
    struct jfield *f = json_get(&obj, "v");
    CHECK(f && f->type == J_NUM && f->is_int && f->i == 1, "v");
    f = json_get(&obj, "id");
    CHECK(f && f->type == J_STR && strcmp(f->s, "a\"b") == 0, "id decoded: %s", f ? f->s : "");
    CHECK(f && f->rawlen == 6 && strncmp(f->raw, "\"a\\\"b\"", 6) == 0, "id raw kept for echo");
    f = json_get(&obj, "n");
    CHECK(f && f->is_int && f->i == -12, "n");
    f = json_get(&obj, "f");
    CHECK(f && f->type == J_NUM && !f->is_int, "a fraction is a number but not an integer");
    f = json_get(&obj, "t");
    CHECK(f && f->type == J_BOOL && f->b == 1, "t");
    f = json_get(&obj, "no");
    CHECK(f && f->type == J_BOOL && f->b == 0, "no");
    f = json_get(&obj, "z");
    CHECK(f && f->type == J_NULL, "z");
    f = json_get(&obj, "e");
    CHECK(f && f->type == J_ARR && f->nitems == 0, "empty array");
    f = json_get(&obj, "arr");
    CHECK(f && f->type == J_ARR && f->nitems == 2 && strcmp(f->items[0], "x") == 0 &&
              strcmp(f->items[1], "y") == 0,
          "array of strings");
    CHECK(json_get(&obj, "missing") == NULL, "absent key");
    CHECK(parse("{}") == 0 && obj.n == 0, "empty object");
}

static void test_strings(void)
{
    CHECK(parse("{\"s\":\"\\n\\t\\\\\\/\\b\\f\\r\"}") == 0 &&
              strcmp(json_get(&obj, "s")->s, "\n\t\\/\b\f\r") == 0,
          "escapes");
    /* \u escapes to UTF-8, a surrogate pair to one 4-byte sequence. */
    CHECK(parse("{\"s\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}") == 0 &&
              strcmp(json_get(&obj, "s")->s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") == 0,
          "\\u escapes");
    CHECK(parse("{\"s\":\"\xc3\xa9\xf0\x9f\x98\x80\"}") == 0 &&
              strcmp(json_get(&obj, "s")->s, "\xc3\xa9\xf0\x9f\x98\x80") == 0,
          "raw UTF-8 kept");
    refuse("{\"s\":\"\\ud83d\"}", "EPH_BAD_JSON", "unpaired surrogate");
    refuse("{\"s\":\"\\ude00\"}", "EPH_BAD_JSON", "unpaired surrogate");
    refuse("{\"s\":\"\\u12\"}", "EPH_BAD_JSON", "bad \\u escape");
    refuse("{\"s\":\"\\u0000\"}", "EPH_BAD_REQUEST", "\\u0000");
    refuse("{\"s\":\"\\x\"}", "EPH_BAD_JSON", "bad escape");
    refuse("{\"s\":\"a\tb\"}", "EPH_BAD_JSON", "control character");
    refuse("{\"s\":\"\xc0\xaf\"}", "EPH_BAD_JSON", "invalid UTF-8");       /* overlong */
    refuse("{\"s\":\"\xed\xa0\x80\"}", "EPH_BAD_JSON", "invalid UTF-8");   /* a surrogate */
    refuse("{\"s\":\"\xf4\x90\x80\x80\"}", "EPH_BAD_JSON", "invalid UTF-8"); /* past U+10FFFF */
    refuse("{\"s\":\"\xe2\x82\"}", "EPH_BAD_JSON", "invalid UTF-8");       /* cut short */
    refuse("{\"s\":\"abc", "EPH_BAD_JSON", "unterminated string");
}

static void test_numbers(void)
{
    CHECK(parse("{\"a\":0,\"b\":-0,\"c\":9223372036854775807}") == 0 &&
              json_get(&obj, "c")->is_int && json_get(&obj, "c")->i == INT64_MAX,
          "int64 max");
    CHECK(parse("{\"big\":9223372036854775808}") == 0 && !json_get(&obj, "big")->is_int,
          "past int64: a number, not an integer");
    refuse("{\"a\":01}", "EPH_BAD_JSON", "expected ',' or '}'");
    refuse("{\"a\":1.}", "EPH_BAD_JSON", "bad number");
    refuse("{\"a\":1e}", "EPH_BAD_JSON", "bad number");
    refuse("{\"a\":-}", "EPH_BAD_JSON", "bad number");
    refuse("{\"a\":+1}", "EPH_BAD_JSON", "unexpected character");
    refuse("{\"a\":.5}", "EPH_BAD_JSON", "unexpected character");
}

static void test_shape(void)
{
    refuse("", "EPH_BAD_JSON", "not a JSON object");
    refuse("[1,2]", "EPH_BAD_JSON", "not a JSON object");
    refuse("{\"a\":1} x", "EPH_BAD_JSON", "trailing characters");
    refuse("{\"a\" 1}", "EPH_BAD_JSON", "expected ':'");
    refuse("{\"a\":1 \"b\":2}", "EPH_BAD_JSON", "expected ',' or '}'");
    refuse("{a:1}", "EPH_BAD_JSON", "expected a string");
    refuse("{\"a\":}", "EPH_BAD_JSON", "unexpected character");
    refuse("{\"a\":tru}", "EPH_BAD_JSON", "unexpected character");
    refuse("{\"a\":{\"b\":1}}", "EPH_BAD_REQUEST", "field 'a': nested objects");
    refuse("{\"a\":[1]}", "EPH_BAD_REQUEST", "field 'a': only arrays of strings");
    refuse("{\"a\":[\"x\" \"y\"]}", "EPH_BAD_JSON", "expected ',' or ']'");
    refuse("{\"a\":1,\"a\":2}", "EPH_BAD_REQUEST", "field 'a' appears twice");
    /* Bounded: JSON_MAX_FIELDS fields, JSON_MAX_ITEMS items. */
    char line[2048];
    size_t k = (size_t)snprintf(line, sizeof line, "{");
    for (int i = 0; i < JSON_MAX_FIELDS; i++)
        k += (size_t)snprintf(line + k, sizeof line - k, "%s\"f%d\":%d", i ? "," : "", i, i);
    snprintf(line + k, sizeof line - k, "}");
    CHECK(parse(line) == 0 && obj.n == JSON_MAX_FIELDS, "%d fields accepted", JSON_MAX_FIELDS);
    snprintf(line + k, sizeof line - k, ",\"one_more\":1}");
    refuse(line, "EPH_BAD_REQUEST", "too many fields");
    k = (size_t)snprintf(line, sizeof line, "{\"a\":[");
    for (int i = 0; i < JSON_MAX_ITEMS; i++)
        k += (size_t)snprintf(line + k, sizeof line - k, "%s\"%d\"", i ? "," : "", i);
    snprintf(line + k, sizeof line - k, "]}");
    CHECK(parse(line) == 0 && json_get(&obj, "a")->nitems == JSON_MAX_ITEMS, "%d items accepted",
          JSON_MAX_ITEMS);
    snprintf(line + k, sizeof line - k, ",\"x\"]}");
    refuse(line, "EPH_BAD_REQUEST", "more than 16 items");
}

/* The reader only looks at line[0..len): no NUL needed, nothing read past. */
static void test_bounds(void)
{
    const char *text = "{\"op\":\"stats\"}";
    size_t n = strlen(text);
    char *exact = malloc(n); /* ASan flags any read past the end */
    if (!exact)
        return;
    memcpy(exact, text, n);
    CHECK(json_parse(exact, n, scratch, &obj, &err) == 0 &&
              strcmp(json_get(&obj, "op")->s, "stats") == 0,
          "unterminated buffer");
    for (size_t cut = 0; cut < n; cut++)
        CHECK(json_parse(exact, cut, scratch, &obj, &err) == -1, "prefix of %zu bytes accepted", cut);
    free(exact);
}

int main(void)
{
    test_values();
    test_strings();
    test_numbers();
    test_shape();
    test_bounds();
    if (failures) {
        fprintf(stderr, "json_test: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("json_test: all %d checks passed\n", checks);
    return 0;
}
