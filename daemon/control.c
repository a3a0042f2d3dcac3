/*
 * control.c - the JSON-lines control protocol (docs/PROTOCOL.md).
 *
 * Requests are flat JSON objects (values: string, number, true, false,
 * null, or an array of strings), read by json.c: the daemon links no JSON
 * library.  Each connection has a bounded input
 * buffer (one line, 64 KiB) and a bounded output queue, so a client that
 * never reads or sends endless lines cannot grow the daemon.
 */
#include "control.h"

#include <errno.h>
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
#include "filebytes.h"
#include "guard.h"
#include "json.h"
#include "ledger.h"
#include "log.h"
#include "loop.h"
#include "namespace.h"
#include "place.h"

#define CTL_MAX_OUT (1u << 20)

/* The events a connection may subscribe to. */
enum { CTL_EV_SHORTFALL = 1, CTL_EV_GUARD = 2 };

struct ctl_conn {
    struct loop_ev ev;
    char *in;             /* CTL_MAX_LINE + 1 bytes */
    size_t inlen;
    int discarding;       /* skipping the rest of an oversized line */
    char *out;            /* pending output */
    size_t outlen, outcap;
    int subscribed;       /* CTL_EV_* bits */
    int closing;          /* shutdown reply queued: exit once flushed */
    struct ctl_conn *next;
};

static struct loop_ev ctl_listener = {.fd = -1};
static void (*ctl_shutdown_fn)(enum ephd_exit_mode mode);
static char ctl_path[108];
static struct ctl_conn *ctl_conns;

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
    uint64_t disk = fbytes_disk_for_stats();
    char own_peak[32];
    ctl_i64(own_peak, sizeof own_peak, s.own_peak);
    snprintf(buf, n,
             "{\"limit\":%s,\"usage\":%s,\"file_bytes_memory\":%llu,\"file_bytes_disk\":%llu,"
             "\"files_in_memory\":%llu,\"budget\":%llu,\"headroom\":%llu,\"evictions\":%llu,"
             "\"bytes_evicted\":%llu,\"fast_reads\":%llu,\"fast_writes\":%llu,"
             "\"files_in_memory_peak\":%llu,\"bytes_in_memory_peak\":%llu,\"cgroup\":%s,"
             "\"cgroup_version\":%s,\"files_created\":%llu,\"files_on_disk\":%llu,"
             "\"materialisations\":%llu,\"slow_ops\":%llu,\"bytes_read\":%llu,"
             "\"bytes_written\":%llu,\"fast_seeks\":%llu,\"fast_stats\":%llu,\"pid\":%d,"
             "\"files_on_disk_predicted\":%llu,\"own_memory_peak\":%s,\"file_bytes_peak\":%llu,"
             "\"eviction_failures\":%llu,\"writeback_failed\":%llu,\"file_bytes_disk_counted\":%llu,"
             "\"dirs_made_in_memory\":%llu,\"dir_twins\":%llu,\"reads_given_back\":%llu,"
             "\"dirs_renamed_in_memory\":%llu,\"dir_slot_walks\":%llu}",
             lim, use, (unsigned long long)atomic_load(&c->bytes_in_memory),
             (unsigned long long)disk, (unsigned long long)ns_files_in_memory(),
             (unsigned long long)s.budget, (unsigned long long)s.headroom,
             (unsigned long long)atomic_load(&c->evictions),
             (unsigned long long)atomic_load(&c->bytes_evicted),
             (unsigned long long)atomic_load(&c->fast_reads),
             (unsigned long long)atomic_load(&c->fast_writes),
             (unsigned long long)atomic_load(&c->files_in_memory_peak),
             (unsigned long long)fbytes_memory_peak(), cg,
             s.version ? (s.version == 1 ? "1" : "2") : "null",
             (unsigned long long)atomic_load(&c->files_created),
             (unsigned long long)atomic_load(&c->files_on_disk),
             (unsigned long long)atomic_load(&c->materialisations),
             (unsigned long long)atomic_load(&c->slow_ops),
             (unsigned long long)atomic_load(&c->bytes_read),
             (unsigned long long)atomic_load(&c->bytes_written),
             (unsigned long long)atomic_load(&c->fast_seeks),
             (unsigned long long)atomic_load(&c->fast_stats), (int)D.pid,
             (unsigned long long)place_predicted(), own_peak, (unsigned long long)fbytes_peak(),
             (unsigned long long)evict_failures(), (unsigned long long)evict_writeback_failed(),
             (unsigned long long)atomic_load(&D.h->disk_bytes), (unsigned long long)atomic_load(&D.h->shim_mkdirs),
             (unsigned long long)atomic_load(&D.h->dir_twins), (unsigned long long)ledger_reads_dropped(),
             (unsigned long long)atomic_load(&D.h->shim_dir_renames),
             (unsigned long long)atomic_load(&D.h->mdir_walks));
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
    struct jfield *f = json_get(o, key);
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

/* The peaks since the last reset (PROTOCOL.md "peaks"); `reset` opens a new
 * window right after they are read. */
static void ctl_peaks_json(char *res, size_t n, int reset)
{
    int64_t own = budget_own_window(reset);
    struct fbytes_window w;
    fbytes_window(reset, &w);
    char own_s[32], ms_s[32];
    ctl_i64(own_s, sizeof own_s, own);
    ctl_i64(ms_s, sizeof ms_s, w.ms);
    snprintf(res, n,
             "{\"own_memory_peak\":%s,\"file_bytes_peak\":%llu,\"file_bytes_memory_peak\":%llu,"
             "\"file_bytes_counted_peak\":%llu,\"file_bytes_memory\":%llu,\"file_bytes_disk\":%llu,"
             "\"file_bytes_disk_counted\":%llu,\"window_ms\":%s,\"reset\":%s}",
             own_s, (unsigned long long)w.peak, (unsigned long long)w.memory_peak,
             (unsigned long long)w.counted_peak, (unsigned long long)w.memory,
             (unsigned long long)w.disk, (unsigned long long)w.disk_counted, ms_s,
             reset ? "true" : "false");
}

/* `stats-peaks` (PROTOCOL.md): the counters, then the window's peaks, in one
 * answer: what the node agent reads after every activation. */
static int ctl_stats_peaks(struct ctl_conn *c, const char *id, int reset)
{
    char st[8192], pk[640], res[sizeof st + sizeof pk + 32];
    ctl_stats_json(st, sizeof st);
    ctl_peaks_json(pk, sizeof pk, reset);
    snprintf(res, sizeof res, "{\"stats\":%s,\"peaks\":%s}", st, pk);
    return ctl_ok(c, id, res);
}

static int ctl_dispatch(struct ctl_conn *c, char *line, size_t len)
{
    static char scratch[CTL_MAX_LINE + 8];
    static struct jobj o;
    struct json_err je;
    if (json_parse(line, len, scratch, &o, &je) < 0)
        return ctl_error(c, "null", je.code, je.msg, NULL);
    /* Echo the id as it came (any scalar); anything else is an error. */
    char id[96] = "null";
    struct jfield *fid = json_get(&o, "id");
    if (fid) {
        if (fid->type == J_ARR || fid->rawlen >= sizeof id)
            return ctl_error(c, "null", "EPH_BAD_REQUEST",
                             "field 'id' must be a number, a string or null (at most 95 bytes)",
                             NULL);
        snprintf(id, sizeof id, "%.*s", (int)fid->rawlen, fid->raw);
    }
    struct jfield *v = json_get(&o, "v");
    if (!v || v->type != J_NUM || !v->is_int || v->i != 1) {
        char msg[160];
        snprintf(msg, sizeof msg, "field 'v' must be 1 (protocol version 1), got %.*s",
                 v ? (int)(v->rawlen > 40 ? 40 : v->rawlen) : 7, v ? v->raw : "nothing");
        return ctl_error(c, id, "EPH_BAD_VERSION", msg, NULL);
    }
    struct jfield *op = json_get(&o, "op");
    if (!op || op->type != J_STR)
        return ctl_error(c, id, "EPH_BAD_REQUEST", "field 'op' is required and must be a string",
                         NULL);
    const char *name = op->s;
    int sent = 0;
    if (strcmp(name, "stats") == 0)
        return ctl_ok_stats(c, id);
    if (strcmp(name, "peaks") == 0 || strcmp(name, "stats-peaks") == 0) {
        struct jfield *r = json_get(&o, "reset");
        if (r && r->type != J_BOOL) {
            char msg[160];
            snprintf(msg, sizeof msg, "field 'reset' must be true or false, got %.*s",
                     (int)(r->rawlen > 40 ? 40 : r->rawlen), r->raw);
            return ctl_error(c, id, "EPH_BAD_REQUEST", msg, NULL);
        }
        if (name[0] == 's')
            return ctl_stats_peaks(c, id, r && r->b);
        char pk[640];
        ctl_peaks_json(pk, sizeof pk, r && r->b);
        return ctl_ok(c, id, pk);
    }
    if (strcmp(name, "ns-check") == 0) {
        /* The namespace's invariants (namespace.c, ns_check), for tests and operators. */
        char first[EPH_PATH_MAX + 200], q[2 * sizeof first + 8], res[sizeof q + 200];
        struct ns_bytes b = {0, 0, 0};
        int bad = ns_check(first, sizeof first, &b);
        ctl_quote(q, sizeof q, first);
        /* bytes_in_memory against the files' capacities, counted together (ns_bytes_recount): null
         * when a file's lock was held at that moment. */
        char bytes[96] = "\"bytes_in_memory\":null,\"bytes_in_files\":null";
        if (b.ok)
            snprintf(bytes, sizeof bytes, "\"bytes_in_memory\":%llu,\"bytes_in_files\":%llu",
                     (unsigned long long)b.counter, (unsigned long long)b.files);
        snprintf(res, sizeof res, "{\"consistent\":%s,\"violations\":%d,\"first\":%s,\"recoveries\":%u,%s}",
                 bad ? "false" : "true", bad, q, atomic_load(&D.h->ns_recoveries), bytes);
        return ctl_ok(c, id, res);
    }
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
        struct jfield *ev = json_get(&o, "events");
        if (!ev || ev->type != J_ARR || ev->nitems == 0)
            return ctl_error(c, id, "EPH_BAD_REQUEST",
                             "field 'events' must be a non-empty array of event names, e.g. "
                             "[\"shortfall\"]",
                             NULL);
        int bits = 0;
        for (int i = 0; i < ev->nitems; i++) {
            if (strcmp(ev->items[i], "shortfall") == 0)
                bits |= CTL_EV_SHORTFALL;
            else if (strcmp(ev->items[i], "guard") == 0)
                bits |= CTL_EV_GUARD;
            else {
                char msg[200], q[120];
                ctl_quote(q, sizeof q, ev->items[i]);
                snprintf(msg, sizeof msg, "unknown event %s (known: \"shortfall\", \"guard\")", q);
                return ctl_error(c, id, "EPH_BAD_REQUEST", msg, NULL);
            }
        }
        c->subscribed |= bits;
        char list[64];
        snprintf(list, sizeof list, "{\"events\":[%s%s%s]}",
                 c->subscribed & CTL_EV_SHORTFALL ? "\"shortfall\"" : "",
                 (c->subscribed & CTL_EV_SHORTFALL) && (c->subscribed & CTL_EV_GUARD) ? "," : "",
                 c->subscribed & CTL_EV_GUARD ? "\"guard\"" : "");
        if (ctl_ok(c, id, list) < 0)
            return -1;
        /* The guard's subscriber learns the wish in force now; later, each change. */
        int want = guard_wanted();
        if ((bits & CTL_EV_GUARD) && want >= 0)
            return ctl_send(c, want ? "{\"v\":1,\"event\":\"guard\",\"want\":true}"
                                    : "{\"v\":1,\"event\":\"guard\",\"want\":false}");
        return 0;
    }
    if (strcmp(name, "shutdown") == 0) {
        struct jfield *m = json_get(&o, "mode");
        enum ephd_exit_mode mode = EPHD_EXIT_WRITEBACK;
        if (m && (m->type != J_STR ||
                  (strcmp(m->s, "writeback") != 0 && strcmp(m->s, "discard") != 0)))
            return ctl_error(c, id, "EPH_BAD_REQUEST",
                             "field 'mode' must be \"writeback\" or \"discard\"", NULL);
        if (m && strcmp(m->s, "discard") == 0)
            mode = EPHD_EXIT_DISCARD;
        ctl_shutdown_fn(mode);
        c->closing = 1;
        return ctl_ok_stats(c, id);
    }
    char msg[240], q[120];
    ctl_quote(q, sizeof q, name);
    snprintf(msg, sizeof msg,
             "unknown op %s (known: stats, peaks, stats-peaks, shrink, set-limit, grow, subscribe, "
             "shutdown)",
             q);
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

/* Send a shortfall event to every subscriber (the budget's callback). */
static void ctl_emit_shortfall(uint64_t bytes, int64_t limit, int64_t usage, uint64_t file_bytes)
{
    char line[256];
    snprintf(line, sizeof line,
             "{\"v\":1,\"event\":\"shortfall\",\"bytes\":%llu,\"limit\":%lld,\"usage\":%lld,"
             "\"file_bytes_memory\":%llu}",
             (unsigned long long)bytes, (long long)limit, (long long)usage,
             (unsigned long long)file_bytes);
    for (struct ctl_conn *c = ctl_conns, *next; c; c = next) {
        next = c->next;
        if ((c->subscribed & CTL_EV_SHORTFALL) && ctl_send(c, line) < 0)
            ctl_drop(c);
    }
}

/* Follow mode: the daemon's wish for the OOM guard changed (guard.h); its host sets it. */
static void ctl_emit_guard(int want)
{
    const char *line = want ? "{\"v\":1,\"event\":\"guard\",\"want\":true}"
                            : "{\"v\":1,\"event\":\"guard\",\"want\":false}";
    for (struct ctl_conn *c = ctl_conns, *next; c; c = next) {
        next = c->next;
        if ((c->subscribed & CTL_EV_GUARD) && ctl_send(c, line) < 0)
            ctl_drop(c);
    }
}

int ctl_listen(const char *path, void (*on_shutdown)(enum ephd_exit_mode mode), char *err,
               size_t errlen)
{
    /* The control socket resizes memory: only the daemon's owner. */
    ctl_listener.fn = ctl_on_accept;
    if (loop_listen_unix(&ctl_listener, path, SOCK_STREAM, 0600, 16, err, errlen) < 0)
        return -1;
    snprintf(ctl_path, sizeof ctl_path, "%s", path);
    ctl_shutdown_fn = on_shutdown;
    budget_on_shortfall(ctl_emit_shortfall);
    guard_on_want(ctl_emit_guard);
    return 0;
}

void ctl_close(void)
{
    budget_on_shortfall(NULL);
    guard_on_want(NULL);
    while (ctl_conns)
        ctl_drop(ctl_conns);
    if (ctl_listener.fd >= 0) {
        loop_del(&ctl_listener);
        close(ctl_listener.fd);
        unlink(ctl_path);
    }
    ctl_listener.fd = -1;
}
