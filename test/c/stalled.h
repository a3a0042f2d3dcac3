/*
 * Helpers of the tests that stop a shimmed caller at a fault-build stall point
 * (EPHEMERA_NS_STALL) and change the namespace under it: the disk's own answer
 * past the shim, and every file moved to disk through the daemon's control socket.
 */
#ifndef EPH_TEST_STALLED_H
#define EPH_TEST_STALLED_H

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "shimmed.h"

#define INO_IN_MEMORY (1ull << 44) /* EPH_INO_TAG (include/ephemera/shm.h) */

/* The disk's own answer, past the shim (which serves syscall(2) too): glibc's fstatat. */
static inline int disk_has(const char *path)
{
    struct stat st;
    int (*real_fstatat)(int, const char *, struct stat *, int) =
        (int (*)(int, const char *, struct stat *, int))libc_sym("fstatat");
    return real_fstatat && real_fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Every file to disk (the budget shrunk to nothing), then the budget back; run_dir is the
 * daemon's (shimmed_run_dir).  The shrink's answer is EPH_CANNOT_SHRINK, the daemon's own memory
 * being more than 0 bytes, once every file it can move is on disk: the caller checks its files. */
static inline void evict_everything(const char *run_dir)
{
    char buf[4096];
    ephd_control(run_dir, "{\"v\":1,\"id\":1,\"op\":\"shrink\",\"bytes\":0}\n", buf, sizeof buf);
    CHECK(buf[0] != 0, "shrink: no answer");
    ephd_control(run_dir, "{\"v\":1,\"id\":2,\"op\":\"grow\",\"bytes\":1073741824}\n", buf, sizeof buf);
    CHECK(strstr(buf, "\"ok\":true") != NULL, "grow: %s", buf);
}

#endif
