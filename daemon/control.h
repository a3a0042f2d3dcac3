/*
 * control.h - the JSON-lines control socket (docs/PROTOCOL.md) for the
 * Tenant Manager and `ephemera ctl`.
 */
#ifndef EPHD_CONTROL_H
#define EPHD_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#define CTL_MAX_LINE 65536

int ctl_listen(const char *path, char *err, size_t errlen);
void ctl_close(void);
/* Send a shortfall event to every subscriber. */
void ctl_emit_shortfall(uint64_t bytes, int64_t limit, int64_t usage, uint64_t file_bytes);

#endif
