/*
 * daemon.c - the daemon's shared state, its clocks and the root lookup:
 * the helpers every other module uses and that use nothing but D.
 */
#include "daemon.h"

#include <string.h>
#include <time.h>

struct ephd D = {.region_fd = -1};

uint64_t ephd_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t ephd_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
    /* A file time: the shim's coarse stamps must not fall below it (shm.h time_floor). */
    if (D.h)
        eph_atomic_max(&D.h->time_floor, (uint64_t)now);
    return now;
}

int ephd_root_of(const char *path)
{
    for (int i = 0; i < D.nroots; i++) {
        size_t n = D.rootlen[i];
        if (strncmp(path, D.roots[i], n) == 0 && path[n] == '/' && path[n + 1])
            return i;
    }
    return -1;
}
