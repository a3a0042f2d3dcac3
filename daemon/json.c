/*
 * json.c - the control protocol's request reader (json.h): a recursive
 * descent over one line, strict about what RFC 8259 allows (UTF-8,
 * escapes, surrogate pairs, number syntax), stricter about shape (flat
 * objects, no duplicate keys, bounded field and item counts).
 */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jp {
    const char *p, *end;
    char *scratch, *sp;       /* decoded strings */
    const char *code;         /* error code when parsing fails */
    char msg[160];
};


static int jp_fail(struct jp *j, const char *code, const char *msg)
{
    j->code = code;
    snprintf(j->msg, sizeof j->msg, "%s", msg);
    return -1;
}

static void jp_ws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static int jp_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static void jp_put_utf8(struct jp *j, unsigned cp)
{
    if (cp < 0x80) {
        *j->sp++ = (char)cp;
    } else if (cp < 0x800) {
        *j->sp++ = (char)(0xc0 | (cp >> 6));
        *j->sp++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *j->sp++ = (char)(0xe0 | (cp >> 12));
        *j->sp++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *j->sp++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *j->sp++ = (char)(0xf0 | (cp >> 18));
        *j->sp++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *j->sp++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *j->sp++ = (char)(0x80 | (cp & 0x3f));
    }
}

/* Length of the valid UTF-8 sequence at p, or 0. */
static int jp_utf8_len(const unsigned char *p, const unsigned char *end)
{
    int n;
    unsigned cp;
    if (p[0] < 0xc2 || p[0] > 0xf4)
        return 0;
    if (p[0] < 0xe0) n = 2, cp = p[0] & 0x1f;
    else if (p[0] < 0xf0) n = 3, cp = p[0] & 0x0f;
    else n = 4, cp = p[0] & 0x07;
    if (end - p < n)
        return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static int jp_string(struct jp *j, const char **out)
{
    if (j->p >= j->end || *j->p != '"')
        return jp_fail(j, "EPH_BAD_JSON", "expected a string");
    j->p++;
    *out = j->sp;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            *j->sp++ = 0;
            return 0;
        }
        if (c < 0x20)
            return jp_fail(j, "EPH_BAD_JSON", "control character inside a string");
        if (c == '\\') {
            if (j->end - j->p < 2)
                break;
            char e = j->p[1];
            j->p += 2;
            switch (e) {
            case '"': *j->sp++ = '"'; break;
            case '\\': *j->sp++ = '\\'; break;
            case '/': *j->sp++ = '/'; break;
            case 'b': *j->sp++ = '\b'; break;
            case 'f': *j->sp++ = '\f'; break;
            case 'n': *j->sp++ = '\n'; break;
            case 'r': *j->sp++ = '\r'; break;
            case 't': *j->sp++ = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (j->end - j->p < 4 || jp_hex4(j->p, &cp) < 0)
                    return jp_fail(j, "EPH_BAD_JSON", "bad \\u escape");
                j->p += 4;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                        jp_hex4(j->p + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                        return jp_fail(j, "EPH_BAD_JSON", "unpaired surrogate in \\u escape");
                    j->p += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return jp_fail(j, "EPH_BAD_JSON", "unpaired surrogate in \\u escape");
                }
                if (cp == 0)
                    return jp_fail(j, "EPH_BAD_REQUEST", "strings may not contain \\u0000");
                jp_put_utf8(j, cp);
                break;
            }
            default:
                return jp_fail(j, "EPH_BAD_JSON", "bad escape in a string");
            }
            continue;
        }
        if (c >= 0x80) {
            int n = jp_utf8_len((const unsigned char *)j->p, (const unsigned char *)j->end);
            if (!n)
                return jp_fail(j, "EPH_BAD_JSON", "invalid UTF-8 in a string");
            memcpy(j->sp, j->p, (size_t)n);
            j->sp += n;
            j->p += n;
            continue;
        }
        *j->sp++ = (char)c;
        j->p++;
    }
    return jp_fail(j, "EPH_BAD_JSON", "unterminated string");
}

static int jp_number(struct jp *j, struct jfield *f)
{
    const char *s = j->p;
    int is_int = 1;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return jp_fail(j, "EPH_BAD_JSON", "bad number");
    if (*j->p == '0')
        j->p++;
    else
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    if (j->p < j->end && *j->p == '.') {
        is_int = 0;
        j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return jp_fail(j, "EPH_BAD_JSON", "bad number");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        is_int = 0;
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return jp_fail(j, "EPH_BAD_JSON", "bad number");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    f->type = J_NUM;
    if (is_int) {
        char buf[32];
        size_t n = (size_t)(j->p - s);
        if (n < sizeof buf) {
            memcpy(buf, s, n);
            buf[n] = 0;
            errno = 0;
            char *e;
            long long v = strtoll(buf, &e, 10);
            if (!errno && !*e) {
                f->is_int = 1;
                f->i = v;
            }
        }
    }
    return 0;
}

static int jp_literal(struct jp *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return jp_fail(j, "EPH_BAD_JSON", "unexpected character");
    j->p += n;
    return 0;
}

static int jp_value(struct jp *j, struct jfield *f)
{
    const char *start = j->p;
    if (j->p >= j->end)
        return jp_fail(j, "EPH_BAD_JSON", "missing value");
    int rc = 0;
    switch (*j->p) {
    case '"': f->type = J_STR; rc = jp_string(j, &f->s); break;
    case 't': f->type = J_BOOL; f->b = 1; rc = jp_literal(j, "true"); break;
    case 'f': f->type = J_BOOL; f->b = 0; rc = jp_literal(j, "false"); break;
    case 'n': f->type = J_NULL; rc = jp_literal(j, "null"); break;
    case '{':
        snprintf(j->msg, sizeof j->msg, "field '%s': nested objects are not accepted", f->key);
        j->code = "EPH_BAD_REQUEST";
        return -1;
    case '[':
        f->type = J_ARR;
        j->p++;
        jp_ws(j);
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            break;
        }
        for (;;) {
            jp_ws(j);
            if (j->p < j->end && *j->p != '"') {
                snprintf(j->msg, sizeof j->msg, "field '%s': only arrays of strings are accepted",
                         f->key);
                j->code = "EPH_BAD_REQUEST";
                return -1;
            }
            if (f->nitems == JSON_MAX_ITEMS) {
                snprintf(j->msg, sizeof j->msg, "field '%s': more than %d items", f->key,
                         JSON_MAX_ITEMS);
                j->code = "EPH_BAD_REQUEST";
                return -1;
            }
            if (jp_string(j, &f->items[f->nitems]) < 0)
                return -1;
            f->nitems++;
            jp_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == ']') {
                j->p++;
                break;
            }
            return jp_fail(j, "EPH_BAD_JSON", "expected ',' or ']' in an array");
        }
        break;
    default:
        if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))
            rc = jp_number(j, f);
        else
            return jp_fail(j, "EPH_BAD_JSON", "unexpected character");
    }
    f->raw = start;
    f->rawlen = (size_t)(j->p - start);
    return rc;
}

static int jp_object(struct jp *j, struct jobj *o)
{
    o->n = 0;
    jp_ws(j);
    if (j->p >= j->end || *j->p != '{')
        return jp_fail(j, "EPH_BAD_JSON", "the line is not a JSON object");
    j->p++;
    jp_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
    } else {
        for (;;) {
            jp_ws(j);
            if (o->n == JSON_MAX_FIELDS)
                return jp_fail(j, "EPH_BAD_REQUEST", "too many fields");
            struct jfield *f = &o->f[o->n];
            memset(f, 0, sizeof *f);
            if (jp_string(j, &f->key) < 0)
                return -1;
            for (int i = 0; i < o->n; i++)
                if (strcmp(o->f[i].key, f->key) == 0) {
                    snprintf(j->msg, sizeof j->msg, "field '%.64s' appears twice", f->key);
                    j->code = "EPH_BAD_REQUEST";
                    return -1;
                }
            jp_ws(j);
            if (j->p >= j->end || *j->p != ':')
                return jp_fail(j, "EPH_BAD_JSON", "expected ':' after a key");
            j->p++;
            jp_ws(j);
            if (jp_value(j, f) < 0)
                return -1;
            o->n++;
            jp_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == '}') {
                j->p++;
                break;
            }
            return jp_fail(j, "EPH_BAD_JSON", "expected ',' or '}' in an object");
        }
    }
    jp_ws(j);
    if (j->p != j->end)
        return jp_fail(j, "EPH_BAD_JSON", "trailing characters after the object");
    return 0;
}

struct jfield *json_get(struct jobj *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->f[i].key, key) == 0)
            return &o->f[i];
    return NULL;
}

int json_parse(const char *line, size_t len, char *scratch, struct jobj *o, struct json_err *e)
{
    struct jp j = {.p = line, .end = line + len, .scratch = scratch, .sp = scratch};
    if (jp_object(&j, o) < 0) {
        e->code = j.code;
        snprintf(e->msg, sizeof e->msg, "%s", j.msg);
        return -1;
    }
    return 0;
}
