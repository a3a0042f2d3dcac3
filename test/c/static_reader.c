/*
 * static_reader - a statically linked program, which cannot load the shim.
 * It prints the size and FNV-1a digest of FILE as the kernel shows it, and
 * with TEXT appends that text to FILE.  The shim must make in-memory files
 * visible on disk before exec'ing it, and see what it appended afterwards.
 *
 * usage: static_reader FILE [TEXT]
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: static_reader FILE [TEXT]\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    static char buf[1 << 16];
    uint64_t h = 0xcbf29ce484222325ull, n = 0;
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < k; i++) {
            h ^= (unsigned char)buf[i];
            h *= 0x100000001b3ull;
        }
        n += (uint64_t)k;
    }
    close(fd);
    if (k < 0) {
        perror("read");
        return 1;
    }
    printf("bytes=%" PRIu64 " fnv=%016" PRIx64 "\n", n, h);
    if (argc > 2) {
        fd = open(argv[1], O_WRONLY | O_APPEND);
        if (fd < 0 || write(fd, argv[2], strlen(argv[2])) != (ssize_t)strlen(argv[2])) {
            perror("append");
            return 1;
        }
        close(fd);
    }
    return 0;
}
