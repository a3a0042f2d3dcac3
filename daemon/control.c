/*
 * control.c - the JSON-lines control protocol (docs/PROTOCOL.md).
 *
 * Requests are flat JSON objects (values: string, number, true, false,
 * null, or an array of strings), parsed by the small strict parser below:
 * the daemon links no JSON library.  Each connection has a bounded input
 * buffer (one line, 64 KiB) and a bounded output queue, so a client that
 * never reads or sends endless lines cannot grow the daemon.
 */
#include "control.h"

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "budget.h"
#include "daemon.h"
#include "evict.h"
#include "log.h"
#include "loop.h"
#include "place.h"

#define CTL_MAX_OUT (1u << 20)
#define CTL_MAX_FIELDS 32
#define CTL_MAX_ITEMS 16
#define CTL_WALK_MAX 100000 /* entries visited to measure file_bytes_disk */

struct ctl_conn {
    struct loop_ev ev;
    char *in;             /* CTL_MAX_LINE + 1 bytes */
    size_t inlen;
    int discarding;       /* skipping the rest of an oversized line */
    char *out;            /* pending output */
    size_t outlen, outcap;
    int subscribed;
    int closing;          /* shutdown reply queued: exit once flushed */
    struct ctl_conn *next;
};

static struct loop_ev ctl_listener = {.fd = -1};
static char ctl_path[108];
static struct ctl_conn *ctl_conns;

/* ---- the JSON parser --------------------------------------------------- */

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
    const char *items[CTL_MAX_ITEMS]; /* J_ARR of strings */
    int nitems;
};

struct jobj {
    struct jfield f[CTL_MAX_FIELDS];
    int n;
};

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
            if (f->nitems == CTL_MAX_ITEMS) {
                snprintf(j->msg, sizeof j->msg, "field '%s': more than %d items", f->key,
                         CTL_MAX_ITEMS);
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
            if (o->n == CTL_MAX_FIELDS)
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

static struct jfield *jget(struct jobj *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->f[i].key, key) == 0)
            return &o->f[i];
    return NULL;
}

/* ---- output ----------------------------------------------------------- */

static void ctl_drop(struct ctl_conn *c);

static int ctl_append(struct ctl_conn *c, const char *s, size_t n)
{
    if (c->outlen + n > CTL_MAX_OUT) {
        log_msg(LOG_WARN, "control client does not read its replies; dropping it");
        return -1;
    }
    if (c->outlen + n > c->outcap) {
        size_t cap = c->outcap ? c->outcap : 4096;
        while (cap < c->outlen + n)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (!p)
            return -1;
        c->out = p;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, s, n);
    c->outlen += n;
    return 0;
}

/* Write what we can; 0 ok (maybe pending), -1 the peer is gone. */
static int ctl_flush(struct ctl_conn *c)
{
    while (c->outlen) {
        ssize_t n = send(c->ev.fd, c->out, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            return -1;
        }
        memmove(c->out, c->out + n, c->outlen - (size_t)n);
        c->outlen -= (size_t)n;
    }
    loop_mod(&c->ev, EPOLLIN | (c->outlen ? EPOLLOUT : 0));
    return 0;
}

/* Queue one line and try to send it. */
static int ctl_send(struct ctl_conn *c, const char *line)
{
    if (ctl_append(c, line, strlen(line)) < 0 || ctl_append(c, "\n", 1) < 0)
        return -1;
    return ctl_flush(c);
}

/* JSON string literal of s into buf. */
static void ctl_quote(char *buf, size_t n, const char *s)
{
    size_t k = 0;
    if (n < 3)
        return;
    buf[k++] = '"';
    for (; *s && k + 8 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf[k++] = '\\';
            buf[k++] = (char)ch;
        } else if (ch < 0x20) {
            k += (size_t)snprintf(buf + k, n - k, "\\u%04x", ch);
        } else {
            buf[k++] = (char)ch;
        }
    }
    buf[k++] = '"';
    buf[k] = 0;
}

static int ctl_error(struct ctl_conn *c, const char *id, const char *code, const char *msg,
                     const char *detail)
{
    char q[512], line[1024 + CTL_MAX_LINE / 64];
    ctl_quote(q, sizeof q, msg);
    snprintf(line, sizeof line,
             "{\"v\":1,\"id\":%s,\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":%s%s%s}}",
             id, code, q, detail ? ",\"detail\":" : "", detail ? detail : "");
    return ctl_send(c, line);
}

static void ctl_i64(char *buf, size_t n, int64_t v)
{
    if (v < 0)
        snprintf(buf, n, "null");
    else
        snprintf(buf, n, "%lld", (long long)v);
}

static uint64_t ctl_walk_bytes;
static long ctl_walk_entries;

static int ctl_walk_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)path;
    (void)f;
    if (type == FTW_F && S_ISREG(st->st_mode))
        ctl_walk_bytes += (uint64_t)st->st_size;
    return ++ctl_walk_entries >= CTL_WALK_MAX;
}

/* Bytes of regular files on disk under the managed roots (the function's
 * file usage that is not in memory).  A bounded walk, cached for a second:
 * the Manager may poll stats often. */
static uint64_t ctl_disk_bytes(void)
{
    static uint64_t cached, at;
    uint64_t now = ephd_mono_ns();
    if (at && now - at < 1000000000ull)
        return cached;
    ctl_walk_bytes = 0;
    ctl_walk_entries = 0;
    for (int i = 0; i < D.nroots && ctl_walk_entries < CTL_WALK_MAX; i++)
        nftw(D.roots[i], ctl_walk_one, 16, FTW_PHYS | FTW_MOUNT);
    cached = ctl_walk_bytes;
    at = now;
    return cached;
}

/* The stats object (PROTOCOL.md "stats"). */
static void ctl_stats_json(char *buf, size_t n)
{
    struct budget_snapshot s;
    budget_snapshot(&s);
    struct eph_counters *c = &D.h->c;
    char lim[32], use[32], cg[4200];
    ctl_i64(lim, sizeof lim, s.limit);
    ctl_i64(use, sizeof use, s.usage);
    if (s.cgroup)
        ctl_quote(cg, sizeof cg, s.cgroup);
    else
        snprintf(cg, sizeof cg, "null");
    uint64_t disk = ctl_disk_bytes();
    snprintf(buf, n,
             "{\"limit\":%s,\"usage\":%s,\"file_bytes_memory\":%llu,\"file_bytes_disk\":%llu,"
             "\"files_in_memory\":%llu,\"budget\":%llu,\"headroom\":%llu,\"evictions\":%llu,"
             "\"bytes_evicted\":%llu,\"fast_reads\":%llu,\"fast_writes\":%llu,"
             "\"files_in_memory_peak\":%llu,\"bytes_in_memory_peak\":%llu,\"cgroup\":%s,"
             "\"cgroup_version\":%s,\"files_created\":%llu,\"files_on_disk\":%llu,"
             "\"materialisations\":%llu,\"slow_ops\":%llu,\"bytes_read\":%llu,"
             "\"bytes_written\":%llu,\"fast_seeks\":%llu,\"fast_stats\":%llu,\"pid\":%d,"
             "\"files_on_disk_predicted\":%llu}",
             lim, use, (unsigned long long)atomic_load(&c->bytes_in_memory),
             (unsigned long long)disk, (unsigned long long)atomic_load(&c->files_in_memory),
             (unsigned long long)s.budget, (unsigned long long)s.headroom,
             (unsigned long long)atomic_load(&c->evictions),
             (unsigned long long)atomic_load(&c->bytes_evicted),
             (unsigned long long)atomic_load(&c->fast_reads),
             (unsigned long long)atomic_load(&c->fast_writes),
             (unsigned long long)atomic_load(&c->files_in_memory_peak),
             (unsigned long long)atomic_load(&c->bytes_in_memory_peak), cg,
             s.version ? (s.version == 1 ? "1" : "2") : "null",
             (unsigned long long)atomic_load(&c->files_created),
             (unsigned long long)atomic_load(&c->files_on_disk),
             (unsigned long long)atomic_load(&c->materialisations),
             (unsigned long long)atomic_load(&c->slow_ops),
             (unsigned long long)atomic_load(&c->bytes_read),
             (unsigned long long)atomic_load(&c->bytes_written),
             (unsigned long long)atomic_load(&c->fast_seeks),
             (unsigned long long)atomic_load(&c->fast_stats), (int)D.pid,
             (unsigned long long)place_predicted());
}

static int ctl_ok(struct ctl_conn *c, const char *id, const char *result)
{
    size_t n = strlen(result) + strlen(id) + 64;
    char *line = malloc(n);
    if (!line)
        return -1;
    snprintf(line, n, "{\"v\":1,\"id\":%s,\"ok\":true,\"result\":%s}", id, result);
    int rc = ctl_send(c, line);
    free(line);
    return rc;
}

static int ctl_ok_stats(struct ctl_conn *c, const char *id)
{
    char st[8192];
    ctl_stats_json(st, sizeof st);
    return ctl_ok(c, id, st);
}

/* ---- operations -------------------------------------------------------- */

/* A non-negative integer field; -1 and an error sent otherwise. */
static int64_t ctl_bytes_field(struct ctl_conn *c, const char *id, struct jobj *o,
                               const char *key, int *sent)
{
    struct jfield *f = jget(o, key);
    char msg[256];
    if (!f) {
        snprintf(msg, sizeof msg, "field '%s' is required (a non-negative integer of bytes)", key);
    } else if (f->type != J_NUM || !f->is_int || f->i < 0) {
        snprintf(msg, sizeof msg, "field '%s' must be a non-negative integer, got %.*s", key,
                 (int)(f->rawlen > 80 ? 80 : f->rawlen), f->raw);
    } else {
        return f->i;
    }
    *sent = ctl_error(c, id, "EPH_BAD_REQUEST", msg, NULL);
    return -1;
}

static int ctl_shrink(struct ctl_conn *c, const char *id, int64_t target)
{
    int64_t old = budget_override();
    budget_set_override(target);
    budget_refresh();
    /* Shrink acks only once the memory is really free: evicted pages are
     * dropped from the page cache too. */
    evict_down_to(atomic_load(&D.h->budget), EVICT_DROP_CACHE);
    int64_t excess;
    if (!budget_fits(target, &excess)) {
        /* Last resort before refusing: every evictable file goes. */
        evict_down_to(0, EVICT_DROP_CACHE);
        if (!budget_fits(target, &excess)) {
            budget_set_override(old);
            budget_refresh();
            char msg[256], detail[256];
            snprintf(msg, sizeof msg,
                     "cannot shrink to %lld bytes: %lld bytes more would be needed even with every "
                     "evictable file on disk",
                     (long long)target, (long long)excess);
            snprintf(detail, sizeof detail,
                     "{\"target\":%lld,\"excess\":%lld,\"file_bytes_memory\":%llu}",
                     (long long)target, (long long)excess,
                     (unsigned long long)atomic_load(&D.h->c.bytes_in_memory));
            return ctl_error(c, id, "EPH_CANNOT_SHRINK", msg, detail);
        }
    }
    budget_refresh();
    log_msg(LOG_INFO, "shrink to %lld done", (long long)target);
    return ctl_ok_stats(c, id);
}

static int ctl_grow(struct ctl_conn *c, const char *id, int64_t limit)
{
    budget_set_override(limit);
    budget_refresh();
    log_msg(LOG_INFO, "grow to %lld", (long long)limit);
    return ctl_ok_stats(c, id);
}

static int ctl_dispatch(struct ctl_conn *c, char *line, size_t len)
{
    static char scratch[CTL_MAX_LINE + 8];
    static struct jobj o;
    struct jp j = {.p = line, .end = line + len, .scratch = scratch, .sp = scratch};
    if (jp_object(&j, &o) < 0)
        return ctl_error(c, "null", j.code, j.msg, NULL);
    /* Echo the id as it came (any scalar); anything else is an error. */
    char id[96] = "null";
    struct jfield *fid = jget(&o, "id");
    if (fid) {
        if (fid->type == J_ARR || fid->rawlen >= sizeof id)
            return ctl_error(c, "null", "EPH_BAD_REQUEST",
                             "field 'id' must be a number, a string or null (at most 95 bytes)",
                             NULL);
        snprintf(id, sizeof id, "%.*s", (int)fid->rawlen, fid->raw);
    }
    struct jfield *v = jget(&o, "v");
    if (!v || v->type != J_NUM || !v->is_int || v->i != 1) {
        char msg[160];
        snprintf(msg, sizeof msg, "field 'v' must be 1 (protocol version 1), got %.*s",
                 v ? (int)(v->rawlen > 40 ? 40 : v->rawlen) : 7, v ? v->raw : "nothing");
        return ctl_error(c, id, "EPH_BAD_VERSION", msg, NULL);
    }
    struct jfield *op = jget(&o, "op");
    if (!op || op->type != J_STR)
        return ctl_error(c, id, "EPH_BAD_REQUEST", "field 'op' is required and must be a string",
                         NULL);
    const char *name = op->s;
    int sent = 0;
    if (strcmp(name, "stats") == 0)
        return ctl_ok_stats(c, id);
    if (strcmp(name, "shrink") == 0 || strcmp(name, "shrink-to") == 0) {
        int64_t n = ctl_bytes_field(c, id, &o, "bytes", &sent);
        return n < 0 ? sent : ctl_shrink(c, id, n);
    }
    if (strcmp(name, "grow") == 0) {
        int64_t n = ctl_bytes_field(c, id, &o, "bytes", &sent);
        return n < 0 ? sent : ctl_grow(c, id, n);
    }
    if (strcmp(name, "set-limit") == 0) {
        int64_t n = ctl_bytes_field(c, id, &o, "limit", &sent);
        if (n < 0)
            return sent;
        struct budget_snapshot s;
        budget_snapshot(&s);
        /* Without a known limit, any new limit may be lower than what is used. */
        return s.limit < 0 || n < s.limit ? ctl_shrink(c, id, n) : ctl_grow(c, id, n);
    }
    if (strcmp(name, "subscribe") == 0) {
        struct jfield *ev = jget(&o, "events");
        if (!ev || ev->type != J_ARR || ev->nitems == 0)
            return ctl_error(c, id, "EPH_BAD_REQUEST",
                             "field 'events' must be a non-empty array of event names, e.g. "
                             "[\"shortfall\"]",
                             NULL);
        for (int i = 0; i < ev->nitems; i++)
            if (strcmp(ev->items[i], "shortfall") != 0) {
                char msg[200], q[120];
                ctl_quote(q, sizeof q, ev->items[i]);
                snprintf(msg, sizeof msg, "unknown event %s (known: \"shortfall\")", q);
                return ctl_error(c, id, "EPH_BAD_REQUEST", msg, NULL);
            }
        c->subscribed = 1;
        return ctl_ok(c, id, "{\"events\":[\"shortfall\"]}");
    }
    if (strcmp(name, "shutdown") == 0) {
        struct jfield *m = jget(&o, "mode");
        enum ephd_exit_mode mode = EPHD_EXIT_WRITEBACK;
        if (m && (m->type != J_STR ||
                  (strcmp(m->s, "writeback") != 0 && strcmp(m->s, "discard") != 0)))
            return ctl_error(c, id, "EPH_BAD_REQUEST",
                             "field 'mode' must be \"writeback\" or \"discard\"", NULL);
        if (m && strcmp(m->s, "discard") == 0)
            mode = EPHD_EXIT_DISCARD;
        ephd_finish(mode);
        c->closing = 1;
        return ctl_ok_stats(c, id);
    }
    char msg[200], q[120];
    ctl_quote(q, sizeof q, name);
    snprintf(msg, sizeof msg,
             "unknown op %s (known: stats, shrink, set-limit, grow, subscribe, shutdown)", q);
    return ctl_error(c, id, "EPH_UNKNOWN_OP", msg, NULL);
}

/* ---- connections ------------------------------------------------------- */

static void ctl_drop(struct ctl_conn *c)
{
    for (struct ctl_conn **pp = &ctl_conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    loop_del(&c->ev);
    close(c->ev.fd);
    free(c->in);
    free(c->out);
    free(c);
}

/* After a shutdown reply: give the client up to a second to take it. */
static void ctl_finish_shutdown(struct ctl_conn *c)
{
    for (int i = 0; i < 100 && c->outlen; i++) {
        struct pollfd p = {.fd = c->ev.fd, .events = POLLOUT};
        poll(&p, 1, 10);
        if (ctl_flush(c) < 0)
            break;
    }
    D.stop = 1;
}

static void ctl_on_conn(struct loop_ev *ev, uint32_t events)
{
    struct ctl_conn *c = (struct ctl_conn *)ev;
    if (events & EPOLLOUT) {
        if (ctl_flush(c) < 0) {
            ctl_drop(c);
            return;
        }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t n = recv(ev->fd, c->in + c->inlen, CTL_MAX_LINE + 1 - c->inlen, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        /* Gone, possibly in the middle of a line: that line is dropped. */
        ctl_drop(c);
        return;
    }
    size_t scan = c->inlen;
    c->inlen += (size_t)n;
    for (;;) {
        char *nl = memchr(c->in + scan, '\n', c->inlen - scan);
        if (!nl)
            break;
        size_t len = (size_t)(nl - c->in);
        int rc = 0;
        if (c->discarding) {
            c->discarding = 0;
        } else {
            if (len && c->in[len - 1] == '\r')
                len--;
            rc = ctl_dispatch(c, c->in, len);
        }
        size_t used = (size_t)(nl - c->in) + 1;
        memmove(c->in, c->in + used, c->inlen - used);
        c->inlen -= used;
        scan = 0;
        if (rc < 0) {
            ctl_drop(c);
            return;
        }
        if (c->closing) {
            ctl_finish_shutdown(c);
            return;
        }
    }
    if (c->inlen > CTL_MAX_LINE) {
        if (!c->discarding) {
            char msg[96];
            snprintf(msg, sizeof msg, "line longer than %d bytes; it was skipped", CTL_MAX_LINE);
            if (ctl_error(c, "null", "EPH_BAD_JSON", msg, NULL) < 0) {
                ctl_drop(c);
                return;
            }
        }
        c->discarding = 1;
        c->inlen = 0;
    }
}

static void ctl_on_accept(struct loop_ev *ev, uint32_t events)
{
    (void)events;
    int fd = accept4(ev->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    struct ctl_conn *c = calloc(1, sizeof *c);
    if (c)
        c->in = malloc(CTL_MAX_LINE + 1);
    if (!c || !c->in) {
        free(c);
        close(fd);
        return;
    }
    c->ev.fd = fd;
    c->ev.fn = ctl_on_conn;
    if (loop_add(&c->ev, EPOLLIN) < 0) {
        free(c->in);
        free(c);
        close(fd);
        return;
    }
    c->next = ctl_conns;
    ctl_conns = c;
}

void ctl_emit_shortfall(uint64_t bytes, int64_t limit, int64_t usage, uint64_t file_bytes)
{
    char line[256];
    snprintf(line, sizeof line,
             "{\"v\":1,\"event\":\"shortfall\",\"bytes\":%llu,\"limit\":%lld,\"usage\":%lld,"
             "\"file_bytes_memory\":%llu}",
             (unsigned long long)bytes, (long long)limit, (long long)usage,
             (unsigned long long)file_bytes);
    for (struct ctl_conn *c = ctl_conns, *next; c; c = next) {
        next = c->next;
        if (c->subscribed && ctl_send(c, line) < 0)
            ctl_drop(c);
    }
}

int ctl_listen(const char *path, char *err, size_t errlen)
{
    /* The control socket resizes memory: only the daemon's owner. */
    ctl_listener.fn = ctl_on_accept;
    if (loop_listen_unix(&ctl_listener, path, SOCK_STREAM, 0600, 16, err, errlen) < 0)
        return -1;
    snprintf(ctl_path, sizeof ctl_path, "%s", path);
    return 0;
}

void ctl_close(void)
{
    while (ctl_conns)
        ctl_drop(ctl_conns);
    if (ctl_listener.fd >= 0) {
        loop_del(&ctl_listener);
        close(ctl_listener.fd);
        unlink(ctl_path);
    }
    ctl_listener.fd = -1;
}
