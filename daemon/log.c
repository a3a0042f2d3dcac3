/*
 * log.c - one line per message, written with a single write(2) so lines
 * from a daemon that is killed mid-way are never interleaved or torn.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -1;
static int log_level = LOG_INFO;
static int log_held;
static unsigned long log_dropped;
static struct timespec log_held_at; /* CLOCK_MONOTONIC, when the hold began */

void log_hold(int on)
{
    if (log_held == on)
        return;
    log_held = on;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (on) {
        log_held_at = now;
        return;
    }
    /* Every hold is told once it is over (a stall seen by the daemon, which tests look for). */
    long long ms = (now.tv_sec - log_held_at.tv_sec) * 1000LL + (now.tv_nsec - log_held_at.tv_nsec) / 1000000;
    unsigned long n = log_dropped;
    log_dropped = 0;
    if (n)
        log_msg(LOG_WARN, "%lu messages dropped while the cgroup was at its limit (log held %lld ms)", n, ms);
    else
        log_msg(LOG_INFO, "log held %lld ms while the cgroup was at its limit; nothing dropped", ms);
}

int log_open(const char *path, int level, char *err, size_t errlen)
{
    log_level = level;
    if (!path)
        return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open log file '%s': %s", path, strerror(errno));
        return -1;
    }
    log_fd = fd;
    return 0;
}

void log_msg(int level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (log_fd < 0 || level < log_level)
        return;
    if (log_held) {
        log_dropped++;
        return;
    }
    int saved = errno;
    char buf[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03ld ephemerad[%d] %s: ", tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, (int)getpid(), names[level & 3]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof buf - 2)
        len = sizeof buf - 2;
    buf[len++] = '\n';
    ssize_t w = write(log_fd, buf, len);
    (void)w;
    errno = saved;
}

void log_close(void)
{
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
}
