/*
 * The daemon's `stats` as `ephemera run` checks and reports them (pure: no I/O): the checks of
 * src/daemon-client/stats.ts parseStats, and the JSON that --stats FILE receives.
 */
#ifndef EPHEMERA_LAUNCHER_REPORT_H
#define EPHEMERA_LAUNCHER_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"

/* Whether `stats` (a `stats` or `shutdown` result object) carries every counter with the right
 * type; when not, *msg gets parseStats's message, naming `source` and the first bad field. */
bool report_check_stats(const struct jv *stats, const char *source, struct jbuf *msg);

struct run_report {
    char *const *command;     /* the command as given, argv style */
    int ncommand;
    int exit_status;
    const char *signal;       /* "SIGTERM" or NULL */
    double elapsed_ms;
    const char *on_exit;      /* "writeback" or "discard" */
    char *const *roots;
    size_t nroots;
};

/* JSON.stringify({...stats, command, exit_status, signal, elapsed_ms, on_exit, roots,
 * cgroup_limit: null}, null, 2) + "\n", appended to out. */
void report_json(struct jbuf *out, const struct jv *stats, const struct run_report *r);

/* Node's name of a signal ("SIGIO" for 29, as process.on and ChildProcess report it). */
void report_signal_name(int sig, char *buf, size_t n);

#endif
