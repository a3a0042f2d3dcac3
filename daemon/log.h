/*
 * log.h - the daemon's diagnostics go to a file, never to stdout: the
 * daemon shares its terminal with the function it serves.
 */
#ifndef EPHD_LOG_H
#define EPHD_LOG_H

#include <stddef.h>

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERR = 3 };

/* Open (append) path; NULL disables logging.  0 or -1 with err filled. */
int log_open(const char *path, int level, char *err, size_t errlen);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_close(void);
/* While held, messages are counted, not written (a write may need memory
 * the cgroup does not have); releasing reports how many were dropped. */
void log_hold(int on);

#endif
