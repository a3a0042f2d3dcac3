/*
 * json.h - the strict reader of the control protocol's requests: one flat
 * JSON object per line, whose values are strings, numbers, true, false,
 * null or arrays of strings (docs/PROTOCOL.md).  No I/O and no allocation:
 * decoded strings go to a scratch buffer the caller provides.  The daemon
 * links no JSON library (docs/ARCHITECTURE.md says why).
 */
#ifndef EPHD_JSON_H
#define EPHD_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_FIELDS 32
#define JSON_MAX_ITEMS 16

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR };

struct jfield {
    const char *key;          /* decoded, in the scratch buffer */
    enum jtype type;
    const char *raw;          /* the value's text in the line, for messages and echo */
    size_t rawlen;
    int is_int;               /* J_NUM without fraction or exponent, fits int64 */
    int64_t i;
    int b;
    const char *s;            /* J_STR decoded */
    const char *items[JSON_MAX_ITEMS]; /* J_ARR of strings */
    int nitems;
};

struct jobj {
    struct jfield f[JSON_MAX_FIELDS];
    int n;
};

/* Why a line was refused: a protocol error code (EPH_BAD_JSON for malformed
 * JSON, EPH_BAD_REQUEST for valid JSON the protocol does not accept) and a
 * message naming what was wrong. */
struct json_err {
    const char *code;
    char msg[160];
};

/* Parse line[0..len) as one object into *o.  scratch must hold len + 1
 * bytes and outlive *o (the keys and strings point into it).  0, or -1
 * with *e filled. */
int json_parse(const char *line, size_t len, char *scratch, struct jobj *o, struct json_err *e);
/* The field named key, or NULL. */
struct jfield *json_get(struct jobj *o, const char *key);

#endif
