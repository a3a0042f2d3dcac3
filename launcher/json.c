/* JSON with JavaScript's reading and printing rules: see json.h. */
#include "json.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 256

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fputs("ephemera run: out of memory\n", stderr);
        abort();
    }
    return q;
}

void jb_add(struct jbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void jb_puts(struct jbuf *b, const char *s)
{
    jb_add(b, s, strlen(s));
}

void jb_printf(struct jbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        jb_add(b, small, (size_t)n);
        return;
    }
    char *big = xrealloc(NULL, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    jb_add(b, big, (size_t)n);
    free(big);
}

void jb_free(struct jbuf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

/* ---- printing ---- */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not valid; *bad is then the
 * length of its maximal subpart (the bytes one U+FFFD replaces, WHATWG's decoder). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

/* `surrogates`: bytes ED A0-BF xx are a lone UTF-16 surrogate kept by the parser (WTF-8), which
 * JSON.stringify writes as \udXXX. */
static void quote(struct jbuf *b, const char *str, size_t n, bool surrogates)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    jb_add(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            const char *esc = NULL;
            switch (c) {
            case '"': esc = "\\\""; break;
            case '\\': esc = "\\\\"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            default: break;
            }
            if (esc != NULL)
                jb_puts(b, esc);
            else if (c < 0x20) {
                char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
                jb_add(b, u, 6);
            } else
                jb_add(b, (const char *)s + i, 1);
            i++;
            continue;
        }
        if (surrogates && c == 0xED && i + 2 < n && s[i + 1] >= 0xA0 && s[i + 1] <= 0xBF && (s[i + 2] & 0xC0) == 0x80) {
            unsigned cp = ((unsigned)(c & 0x0F) << 12) | ((unsigned)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
            char u[7] = {'\\', 'u', hex[cp >> 12], hex[(cp >> 8) & 15], hex[(cp >> 4) & 15], hex[cp & 15], 0};
            jb_add(b, u, 6);
            i += 3;
            continue;
        }
        size_t bad = 0, len = utf8_seq(s + i, n - i, &bad);
        if (len > 0) {
            jb_add(b, (const char *)s + i, len);
            i += len;
        } else {
            jb_add(b, "\xEF\xBF\xBD", 3);
            i += bad;
        }
    }
    jb_add(b, "\"", 1);
}

void js_quote(struct jbuf *b, const char *s, size_t n)
{
    quote(b, s, n, false);
}

void js_number(struct jbuf *b, double x)
{
    if (x != x) {
        jb_puts(b, "NaN");
        return;
    }
    if (x == 0) {
        jb_puts(b, "0");
        return;
    }
    if (x < 0) {
        jb_puts(b, "-");
        x = -x;
    }
    if (x > 1.7976931348623157e308) {
        jb_puts(b, "Infinity");
        return;
    }
    /* The fewest significant digits that read back as x, rounded to nearest: what ECMAScript's
     * Number::toString picks. */
    char tmp[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, x);
        if (strtod(tmp, NULL) == x)
            break;
    }
    char digits[24];
    int k = 0;
    const char *t = tmp;
    for (; *t != 'e'; t++)
        if (*t >= '0' && *t <= '9')
            digits[k++] = *t;
    int e = atoi(t + 1);
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    int n = e + 1;
    if (k <= n && n <= 21) {
        jb_add(b, digits, (size_t)k);
        for (int i = k; i < n; i++)
            jb_add(b, "0", 1);
    } else if (0 < n && n <= 21) {
        jb_add(b, digits, (size_t)n);
        jb_add(b, ".", 1);
        jb_add(b, digits + n, (size_t)(k - n));
    } else if (-6 < n && n <= 0) {
        jb_add(b, "0.", 2);
        for (int i = 0; i < -n; i++)
            jb_add(b, "0", 1);
        jb_add(b, digits, (size_t)k);
    } else {
        jb_add(b, digits, 1);
        if (k > 1) {
            jb_add(b, ".", 1);
            jb_add(b, digits + 1, (size_t)(k - 1));
        }
        jb_printf(b, "e%c%d", n - 1 < 0 ? '-' : '+', n - 1 < 0 ? 1 - n : n - 1);
    }
}

static void newline(struct jbuf *b, int indent, int level)
{
    if (indent == 0)
        return;
    jb_add(b, "\n", 1);
    for (int i = 0; i < indent * level; i++)
        jb_add(b, " ", 1);
}

static bool same_key(const struct jv *o, size_t a, size_t b)
{
    return o->key_lens[a] == o->key_lens[b] && memcmp(o->keys[a], o->keys[b], o->key_lens[a]) == 0;
}

static void stringify(struct jbuf *b, const struct jv *v, int indent, int level)
{
    switch (v->type) {
    case J_NULL: jb_puts(b, "null"); return;
    case J_FALSE: jb_puts(b, "false"); return;
    case J_TRUE: jb_puts(b, "true"); return;
    case J_NUM:
        if (v->num != v->num || v->num > 1.7976931348623157e308 || v->num < -1.7976931348623157e308)
            jb_puts(b, "null");
        else
            js_number(b, v->num);
        return;
    case J_STR: quote(b, v->str, v->len, true); return;
    case J_ARR:
        if (v->n == 0) {
            jb_puts(b, "[]");
            return;
        }
        jb_add(b, "[", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                jb_add(b, ",", 1);
            newline(b, indent, level + 1);
            stringify(b, v->items[i], indent, level + 1);
        }
        newline(b, indent, level);
        jb_add(b, "]", 1);
        return;
    case J_OBJ: {
        if (v->n == 0) {
            jb_puts(b, "{}");
            return;
        }
        jb_add(b, "{", 1);
        bool first = true;
        for (size_t i = 0; i < v->n; i++) {
            /* A repeated key keeps its first place and its last value, as JSON.parse leaves it. */
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = same_key(v, i, j);
            if (seen)
                continue;
            size_t last = i;
            for (size_t j = i + 1; j < v->n; j++)
                if (same_key(v, i, j))
                    last = j;
            if (!first)
                jb_add(b, ",", 1);
            first = false;
            newline(b, indent, level + 1);
            quote(b, v->keys[i], v->key_lens[i], true);
            jb_add(b, indent ? ": " : ":", indent ? 2 : 1);
            stringify(b, v->items[last], indent, level + 1);
        }
        newline(b, indent, level);
        jb_add(b, "}", 1);
        return;
    }
    }
}

void jv_stringify(struct jbuf *b, const struct jv *v, int indent)
{
    stringify(b, v, indent, 0);
}

/* ---- parsing ---- */

struct parser {
    const char *s;
    size_t n, i;
};

static void skip_ws(struct parser *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static struct jv *new_jv(enum jtype t)
{
    struct jv *v = xrealloc(NULL, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = t;
    return v;
}

static int hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

static void put_utf8(struct jbuf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    jb_add(b, u, n);
}

/* A string at p->i (the opening quote); its decoded bytes go to out. */
static bool parse_string(struct parser *p, struct jbuf *out)
{
    p->i++;
    jb_add(out, "", 0);
    while (p->i < p->n) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c != '\\') {
            jb_add(out, p->s + p->i, 1);
            p->i++;
            continue;
        }
        if (p->i + 1 >= p->n)
            return false;
        char e = p->s[p->i + 1];
        p->i += 2;
        switch (e) {
        case '"': jb_add(out, "\"", 1); break;
        case '\\': jb_add(out, "\\", 1); break;
        case '/': jb_add(out, "/", 1); break;
        case 'b': jb_add(out, "\b", 1); break;
        case 'f': jb_add(out, "\f", 1); break;
        case 'n': jb_add(out, "\n", 1); break;
        case 'r': jb_add(out, "\r", 1); break;
        case 't': jb_add(out, "\t", 1); break;
        case 'u': {
            if (p->i + 4 > p->n)
                return false;
            int cp = hex4(p->s + p->i);
            if (cp < 0)
                return false;
            p->i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && p->i + 6 <= p->n && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
                int lo = hex4(p->s + p->i + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p->i += 6;
                }
            }
            put_utf8(out, (unsigned)cp); /* a lone surrogate stays as its 3 bytes (WTF-8) */
            break;
        }
        default: return false;
        }
    }
    return false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static struct jv *parse_value(struct parser *p, int depth);

static struct jv *parse_container(struct parser *p, int depth, bool object)
{
    struct jv *v = new_jv(object ? J_OBJ : J_ARR);
    char close = object ? '}' : ']';
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        return v;
    }
    for (;;) {
        struct jbuf key = {0};
        if (object) {
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != '"' || !parse_string(p, &key))
                goto fail_key;
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':')
                goto fail_key;
            p->i++;
        }
        struct jv *item = parse_value(p, depth + 1);
        if (item == NULL)
            goto fail_key;
        v->items = xrealloc(v->items, (v->n + 1) * sizeof *v->items);
        v->items[v->n] = item;
        if (object) {
            v->keys = xrealloc(v->keys, (v->n + 1) * sizeof *v->keys);
            v->key_lens = xrealloc(v->key_lens, (v->n + 1) * sizeof *v->key_lens);
            v->keys[v->n] = key.s;
            v->key_lens[v->n] = key.len;
        }
        v->n++;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->n && p->s[p->i] == close) {
            p->i++;
            return v;
        }
        jv_free(v);
        return NULL;
    fail_key:
        jb_free(&key);
        jv_free(v);
        return NULL;
    }
}

static struct jv *parse_value(struct parser *p, int depth)
{
    if (depth > MAX_DEPTH)
        return NULL;
    skip_ws(p);
    if (p->i >= p->n)
        return NULL;
    const char *s = p->s + p->i;
    size_t left = p->n - p->i;
    switch (*s) {
    case '{': return parse_container(p, depth, true);
    case '[': return parse_container(p, depth, false);
    case '"': {
        struct jbuf str = {0};
        if (!parse_string(p, &str)) {
            jb_free(&str);
            return NULL;
        }
        struct jv *v = new_jv(J_STR);
        v->str = str.s;
        v->len = str.len;
        return v;
    }
    case 'n':
        if (left >= 4 && memcmp(s, "null", 4) == 0) {
            p->i += 4;
            return new_jv(J_NULL);
        }
        return NULL;
    case 't':
        if (left >= 4 && memcmp(s, "true", 4) == 0) {
            p->i += 4;
            return new_jv(J_TRUE);
        }
        return NULL;
    case 'f':
        if (left >= 5 && memcmp(s, "false", 5) == 0) {
            p->i += 5;
            return new_jv(J_FALSE);
        }
        return NULL;
    default: break;
    }
    size_t j = 0;
    if (j < left && s[j] == '-')
        j++;
    if (j < left && s[j] == '0')
        j++;
    else if (j < left && is_digit(s[j]))
        while (j < left && is_digit(s[j]))
            j++;
    else
        return NULL;
    if (j < left && s[j] == '.') {
        j++;
        if (j >= left || !is_digit(s[j]))
            return NULL;
        while (j < left && is_digit(s[j]))
            j++;
    }
    if (j < left && (s[j] == 'e' || s[j] == 'E')) {
        j++;
        if (j < left && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j >= left || !is_digit(s[j]))
            return NULL;
        while (j < left && is_digit(s[j]))
            j++;
    }
    char *tok = xrealloc(NULL, j + 1);
    memcpy(tok, s, j);
    tok[j] = '\0';
    struct jv *v = new_jv(J_NUM);
    v->num = strtod(tok, NULL);
    free(tok);
    p->i += j;
    return v;
}

struct jv *jv_parse(const char *text, size_t len)
{
    struct parser p = {text, len, 0};
    struct jv *v = parse_value(&p, 0);
    if (v == NULL)
        return NULL;
    skip_ws(&p);
    if (p.i != p.n) {
        jv_free(v);
        return NULL;
    }
    return v;
}

void jv_free(struct jv *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++) {
        jv_free(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->key_lens);
    free(v->str);
    free(v);
}

const struct jv *jv_get(const struct jv *obj, const char *key)
{
    if (obj == NULL || obj->type != J_OBJ)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = obj->n; i-- > 0;)
        if (obj->key_lens[i] == kl && memcmp(obj->keys[i], key, kl) == 0)
            return obj->items[i];
    return NULL;
}

bool jv_is_safe_int(const struct jv *v)
{
    return v != NULL && v->type == J_NUM && v->num <= 9007199254740991.0 && v->num >= -9007199254740991.0 &&
           v->num == (double)(int64_t)v->num;
}
