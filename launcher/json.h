/*
 * JSON as the TypeScript CLI reads and writes it (pure: no I/O).
 *
 * The launcher must write the same bytes that `JSON.stringify` writes in `ephemera run` (the
 * --stats report, the values quoted in messages), so values are parsed into a small tree and
 * printed again by JavaScript's rules: shortest round-trip numbers, `\u00XX` for control
 * characters, invalid UTF-8 replaced by U+FFFD, keys in the order they came.
 */
#ifndef EPHEMERA_LAUNCHER_JSON_H
#define EPHEMERA_LAUNCHER_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* A growable string, always NUL-terminated.  An allocation failure aborts: the launcher has
 * nothing sensible to do with half a message. */
struct jbuf {
    char *s;
    size_t len, cap;
};

void jb_add(struct jbuf *b, const char *s, size_t n);
void jb_puts(struct jbuf *b, const char *s);
void jb_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jb_free(struct jbuf *b);

enum jtype { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
    enum jtype type;
    double num;
    char *str;           /* J_STR: UTF-8, may contain NUL (len) */
    size_t len;
    size_t n;            /* J_ARR / J_OBJ: number of items */
    char **keys;         /* J_OBJ */
    size_t *key_lens;    /* J_OBJ */
    struct jv **items;
};

/* Parse one JSON text (RFC 8259, as JSON.parse accepts it).  NULL when it is not JSON. */
struct jv *jv_parse(const char *text, size_t len);
void jv_free(struct jv *v);
/* The value of `key` in an object (the last one if repeated, as JSON.parse), or NULL. */
const struct jv *jv_get(const struct jv *obj, const char *key);
bool jv_is_safe_int(const struct jv *v);

/* JSON.stringify(value, null, indent); indent 0 is the compact form. */
void jv_stringify(struct jbuf *b, const struct jv *v, int indent);
/* JSON.stringify of a JavaScript string made from these bytes (decoded as UTF-8, as Node decodes
 * argv and file names). */
void js_quote(struct jbuf *b, const char *s, size_t n);
/* String(x) for a JavaScript number. */
void js_number(struct jbuf *b, double x);

#endif
