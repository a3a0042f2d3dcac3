/*
 * The launcher's side of the control protocol (docs/PROTOCOL.md): one connection to
 * control.sock, one request at a time, every wait bounded.  Failures carry the code and message
 * that src/daemon-client/client.ts gives the same failure.
 */
#ifndef EPHEMERA_LAUNCHER_CONTROL_H
#define EPHEMERA_LAUNCHER_CONTROL_H

#include "json.h"

struct ctl_error {
    const char *code; /* EPH_DAEMON_* */
    struct jbuf msg;
};

struct ctl {
    int fd;
    const char *path;
    int next_id;
    struct jbuf in; /* bytes read past the last line */
    /* Served while a request waits (the keeper's link: the daemon must never block on us). */
    int aux_fd;
    void (*aux)(void *arg);
    void *aux_arg;
};

/* Connect within timeout_ms.  0, or -1 with *err set (EPH_DAEMON_CONNECT). */
int ctl_connect(struct ctl *c, const char *path, int timeout_ms, struct ctl_error *err);

/* Send {fields..., "v":1, "id":N, "op":op} (fields_json: `"mode":"discard"` or "") and wait up to
 * timeout_ms for its answer.  Returns the whole reply (free with jv_free) with *result pointing
 * at its `result` object, or NULL with *err set. */
struct jv *ctl_request(struct ctl *c, const char *op, const char *fields_json, int timeout_ms, const struct jv **result,
                       struct ctl_error *err);

/* ctl_request for a request after which the daemon ends (`shutdown`): once it is sent, the reply
 * is read when gate_fd (the daemon's pidfd) is readable, or every few milliseconds, rather than
 * the moment it arrives, so that the reply and the exit that follows it wake the caller once. */
struct jv *ctl_request_gated(struct ctl *c, const char *op, const char *fields_json, int timeout_ms, int gate_fd,
                             const struct jv **result, struct ctl_error *err);

void ctl_close(struct ctl *c);

#endif
