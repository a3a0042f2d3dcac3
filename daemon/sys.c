/*
 * sys.c - the fault build's table of the daemon's real calls (sys.h), and
 * the EPHEMERAD_FAULTS rules put in front of its entries.  The production
 * build has only the check that no rule was asked of it.
 */
#include "sys.h"

#include <stdlib.h>
#include <string.h>

#ifdef EPH_FAULTS
#define DSYS_INIT(name, ret, params, args, need, fault) .name = name,
struct ephd_sys_table dsys = {EPHD_SYSCALLS(DSYS_INIT)};
#undef DSYS_INIT

static struct ephd_sys_table dsys_orig;
static struct eph_faults dsys_faults;

/* on=mem: the memfd of an in-memory file. */
static int dsys_fd_is_mem(int fd)
{
    return eph_fault_fd_is_mem(fd, readlink);
}

#define EPH_FAULT_TABLE dsys_faults
#define EPH_FAULT_ORIG dsys_orig
EPHD_SYSCALLS(EPH_FAULT_WRAPPER)

static const char *const dsys_faultable[] = {EPHD_SYSCALLS(EPH_FAULT_NAME) NULL};
static const char dsys_syntax[] = "CALL:ENOSPC|EIO|EINTR|EDQUOT|EFBIG|ENOMEM|short[:on=mem|disk|any][:after=N][:times=N]";
#endif

int dsys_faults_install(char *err, size_t errlen)
{
    const char *spec = getenv("EPHEMERAD_FAULTS");
    if (!spec || !*spec)
        return 0;
#ifndef EPH_FAULTS
    snprintf(err, errlen,
             "EPHEMERAD_FAULTS is set (\"%.80s\") but this build has no fault injection; unset it, or run "
             "the test build build/test/ephemerad-faults",
             spec);
    return -1;
#else
    const char *bad = NULL;
    if (eph_faults_parse(spec, &dsys_faults, &bad) < 0) {
        snprintf(err, errlen, "EPHEMERAD_FAULTS: cannot read the rule at \"%.80s\"; expected %s", bad, dsys_syntax);
        return -1;
    }
    const struct eph_fault *u = eph_faults_unknown(&dsys_faults, dsys_faultable);
    if (u) {
        snprintf(err, errlen,
                 "EPHEMERAD_FAULTS: no faultable call \"%.40s\": the daemon's are pread, pwrite, sendfile, "
                 "fallocate, ftruncate, sync_file_range and linkat (daemon/sys.h)",
                 u->call);
        return -1;
    }
    dsys_faults.fd_is_mem = dsys_fd_is_mem;
    dsys_orig = dsys;
    EPH_FAULT_INSTALL(EPHD_SYSCALLS, struct ephd_sys_table, dsys, dsys_faults);
    return 0;
#endif
}
