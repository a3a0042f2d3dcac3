/* The --stats report: see report.h. */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const COUNTERS[] = {
    "file_bytes_memory", "file_bytes_disk", "files_in_memory", "budget", "headroom", "evictions", "bytes_evicted",
    "fast_reads", "fast_writes", "files_in_memory_peak", "bytes_in_memory_peak", "files_created", "files_on_disk",
    "files_on_disk_predicted", "materialisations", "slow_ops", "bytes_read", "bytes_written", "fast_seeks",
    "fast_stats", "pid",
};

static bool bad(struct jbuf *msg, const char *source, const struct jv *stats, const char *field, const char *expected)
{
    const struct jv *v = jv_get(stats, field);
    jb_printf(msg, "%s: field '%s' is ", source, field);
    if (v == NULL)
        jb_puts(msg, "missing");
    else
        jv_stringify(msg, v, 0);
    jb_printf(msg, ", expected %s; the daemon and the CLI may come from different builds: run make", expected);
    return false;
}

bool report_check_stats(const struct jv *stats, const char *source, struct jbuf *msg)
{
    for (size_t i = 0; i < sizeof COUNTERS / sizeof COUNTERS[0]; i++) {
        const struct jv *v = jv_get(stats, COUNTERS[i]);
        if (!jv_is_safe_int(v) || v->num < 0)
            return bad(msg, source, stats, COUNTERS[i], "a non-negative integer");
    }
    static const char *const nullable[] = {"limit", "usage"};
    for (size_t i = 0; i < 2; i++) {
        const struct jv *v = jv_get(stats, nullable[i]);
        if (!(v != NULL && v->type == J_NULL) && !jv_is_safe_int(v))
            return bad(msg, source, stats, nullable[i], "an integer or null");
    }
    /* A missing `cgroup` is undefined, which is neither null nor a string. */
    const struct jv *cg = jv_get(stats, "cgroup");
    if (cg == NULL || (cg->type != J_NULL && cg->type != J_STR))
        return bad(msg, source, stats, "cgroup", "a string or null");
    const struct jv *cv = jv_get(stats, "cgroup_version");
    if (cv == NULL || (cv->type != J_NULL && !(cv->type == J_NUM && (cv->num == 1 || cv->num == 2))))
        return bad(msg, source, stats, "cgroup_version", "1, 2 or null");
    return true;
}

void report_signal_name(int sig, char *buf, size_t n)
{
    const char *abbrev = sig == 29 ? "IO" : sigabbrev_np(sig);
    if (abbrev != NULL)
        snprintf(buf, n, "SIG%s", abbrev);
    else
        snprintf(buf, n, "SIG%d", sig);
}

enum { K_COMMAND, K_EXIT, K_SIGNAL, K_ELAPSED, K_ON_EXIT, K_ROOTS, K_CGROUP_LIMIT, K_COUNT };
static const char *const RUN_KEYS[K_COUNT] = {"command", "exit_status", "signal", "elapsed_ms", "on_exit", "roots", "cgroup_limit"};

static void str_list(struct jbuf *out, char *const *items, size_t n)
{
    if (n == 0) {
        jb_puts(out, "[]");
        return;
    }
    jb_puts(out, "[");
    for (size_t i = 0; i < n; i++) {
        jb_puts(out, i ? ",\n    " : "\n    ");
        js_quote(out, items[i], strlen(items[i]));
    }
    jb_puts(out, "\n  ]");
}

static void run_value(struct jbuf *out, int k, const struct run_report *r)
{
    switch (k) {
    case K_COMMAND: str_list(out, r->command, (size_t)r->ncommand); break;
    case K_EXIT: jb_printf(out, "%d", r->exit_status); break;
    case K_SIGNAL:
        if (r->signal == NULL)
            jb_puts(out, "null");
        else
            js_quote(out, r->signal, strlen(r->signal));
        break;
    case K_ELAPSED: /* Math.round(ms * 1000) / 1000, for a time that is never negative */
        js_number(out, (double)(long long)(r->elapsed_ms * 1000 + 0.5) / 1000);
        break;
    case K_ON_EXIT: js_quote(out, r->on_exit, strlen(r->on_exit)); break;
    case K_ROOTS: str_list(out, r->roots, r->nroots); break;
    default: jb_puts(out, "null"); break;
    }
}

static int run_key(const char *key, size_t len)
{
    for (int k = 0; k < K_COUNT; k++)
        if (strlen(RUN_KEYS[k]) == len && memcmp(RUN_KEYS[k], key, len) == 0)
            return k;
    return -1;
}

void report_json(struct jbuf *out, const struct jv *stats, const struct run_report *r)
{
    /* The spread keeps the daemon's fields in their order; a run field of the same name takes the
     * daemon's place, the others follow in the order run.ts writes them. */
    bool written[K_COUNT] = {false};
    bool first = true;
    jb_puts(out, "{");
    for (size_t i = 0; i < stats->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = stats->key_lens[j] == stats->key_lens[i] && memcmp(stats->keys[j], stats->keys[i], stats->key_lens[i]) == 0;
        if (seen)
            continue;
        jb_puts(out, first ? "\n  " : ",\n  ");
        first = false;
        js_quote(out, stats->keys[i], stats->key_lens[i]);
        jb_puts(out, ": ");
        int k = run_key(stats->keys[i], stats->key_lens[i]);
        if (k >= 0) {
            run_value(out, k, r);
            written[k] = true;
            continue;
        }
        /* The last value of a repeated key, indented one level as JSON.stringify would. */
        const struct jv *v = stats->items[i];
        for (size_t j = i + 1; j < stats->n; j++)
            if (stats->key_lens[j] == stats->key_lens[i] && memcmp(stats->keys[j], stats->keys[i], stats->key_lens[i]) == 0)
                v = stats->items[j];
        struct jbuf tmp = {0};
        jv_stringify(&tmp, v, 2);
        for (size_t c = 0; c < tmp.len; c++) {
            jb_add(out, tmp.s + c, 1);
            if (tmp.s[c] == '\n')
                jb_puts(out, "  ");
        }
        jb_free(&tmp);
    }
    for (int k = 0; k < K_COUNT; k++) {
        if (written[k])
            continue;
        jb_puts(out, first ? "\n  " : ",\n  ");
        first = false;
        js_quote(out, RUN_KEYS[k], strlen(RUN_KEYS[k]));
        jb_puts(out, ": ");
        run_value(out, k, r);
    }
    jb_puts(out, "\n}\n");
}
