/*
 * control.h - the JSON-lines control socket (docs/PROTOCOL.md) for the
 * Tenant Manager and `ephemera ctl`.
 */
#ifndef EPHD_CONTROL_H
#define EPHD_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#define CTL_MAX_LINE 65536

#include "daemon.h"

/* Listen at path.  A "shutdown" request calls on_shutdown (main carries it
 * out) before its reply; shortfall events are registered with the budget
 * here.  0, or -1 with err filled. */
int ctl_listen(const char *path, void (*on_shutdown)(enum ephd_exit_mode mode), char *err,
               size_t errlen);
void ctl_close(void);

#endif
