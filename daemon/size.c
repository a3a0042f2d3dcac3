/*
 * size.c - "500MB" -> 500000000, "1.5GiB" -> 1610612736 (see size.h).
 */
#include "size.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define SIZE_MAX_BYTES (1ull << 62)
#define SIZE_FRAC_DIGITS 18 /* exact with __int128: 10^18 * 2^40 < 2^128 */

static const struct {
    const char *unit;
    uint64_t mult;
} size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1ull << 10}, {"kib", 1ull << 10}, {"kb", 1000ull},
    {"m", 1ull << 20}, {"mib", 1ull << 20}, {"mb", 1000000ull},
    {"g", 1ull << 30}, {"gib", 1ull << 30}, {"gb", 1000000000ull},
    {"t", 1ull << 40}, {"tib", 1ull << 40}, {"tb", 1000000000000ull},
};

int64_t size_parse(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    unsigned __int128 whole = 0, frac = 0, scale = 1;
    for (; isdigit((unsigned char)*s); s++) {
        whole = whole * 10 + (unsigned)(*s - '0');
        if (whole > SIZE_MAX_BYTES)
            return -1;
    }
    int fraction = 0;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return -1;
        fraction = 1;
        for (int n = 0; isdigit((unsigned char)*s); s++, n++)
            if (n < SIZE_FRAC_DIGITS) {
                frac = frac * 10 + (unsigned)(*s - '0');
                scale *= 10;
            }
    }
    while (*s == ' ' || *s == '\t')
        s++;
    const char *unit = s;
    size_t ulen = strlen(unit);
    while (ulen && isspace((unsigned char)unit[ulen - 1]))
        ulen--;
    uint64_t mult = 0;
    for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++)
        if (strlen(size_units[i].unit) == ulen && strncasecmp(unit, size_units[i].unit, ulen) == 0)
            mult = size_units[i].mult;
    /* No unit, or an unknown one; a fraction of a byte is not a size. */
    if (!mult || (fraction && mult == 1))
        return -1;
    unsigned __int128 bytes = whole * mult + frac * mult / scale;
    if (bytes > SIZE_MAX_BYTES)
        return -1;
    return (int64_t)bytes;
}
