// test-tier: unit
/*
 * size_test.c - the daemon's size parser (daemon/size.c) reads sizes as the
 * CLI does (src/core/size.ts): K/M/G/T and KiB... in powers of 1024, KB/MB/
 * GB/TB in powers of 1000, fractions with a unit rounded down.
 */
// test-sources: daemon/size.c
#include <stdint.h>

#include "check.h"
#include "size.h"

int main(void)
{
    static const struct {
        const char *in;
        int64_t want;
    } cases[] = {
        {"0", 0},
        {"123", 123},
        {"123B", 123},
        {"123b", 123},
        {"1K", 1024},
        {"1k", 1024},
        {"1KiB", 1024},
        {"1kib", 1024},
        {"1KB", 1000},
        {"1kb", 1000},
        {"256M", 256ll << 20},
        {"256MiB", 256ll << 20},
        {"500MB", 500000000},
        {"500mb", 500000000},
        {"2G", 2ll << 30},
        {"2GiB", 2ll << 30},
        {"2GB", 2000000000},
        {"1T", 1ll << 40},
        {"1TB", 1000000000000ll},
        {"1.5G", 3ll << 29},
        {"1.5GiB", 3ll << 29},
        {"0.5MB", 500000},
        {"1.0000001K", 1024},   /* 1024.0001024: rounded down */
        {"0.3333333333333333333333M", 349525}, /* floor(1048576 / 3) */
        {" 64M ", 64ll << 20},
        {"64 M", 64ll << 20},   /* the CLI allows a space before the unit */
        {"4611686018427387904", 4611686018427387904ll}, /* 2^62 */
        {"4194304T", 4611686018427387904ll}, /* 2^62 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = size_parse(cases[i].in);
        CHECK(got == cases[i].want, "size_parse(\"%s\") = %lld, want %lld", cases[i].in,
              (long long)got, (long long)cases[i].want);
    }
    static const char *const bad[] = {
        "", " ", "M", "-1", "+1", "12x", "1.5", "1.5B", "1.", ".5M", "1e6", "0x10",
        "1KK", "1 K B", "1Mi", "1MBB", "4611686018427387905", "4194305T",
        "99999999999999999999999999", "1,5G",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(size_parse(bad[i]) == -1, "size_parse(\"%s\") = %lld, want -1 (not a size)", bad[i],
              (long long)size_parse(bad[i]));
    if (failures) {
        fprintf(stderr, "size_test: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("size_test: all %d checks passed\n", checks);
    return 0;
}
