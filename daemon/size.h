/*
 * size.h - byte sizes on the daemon's command line, read as the CLI reads
 * them (src/core/size.ts): K, M, G, T and KiB, MiB, GiB, TiB are powers of
 * 1024; KB, MB, GB, TB powers of 1000; B or no unit bytes; units in any
 * case; a fraction with a unit (1.5G) rounded down to a whole byte.
 */
#ifndef EPHD_SIZE_H
#define EPHD_SIZE_H

#include <stdint.h>

/* Bytes, or -1 if s is not a size or exceeds 2^62. */
int64_t size_parse(const char *s);

#endif
