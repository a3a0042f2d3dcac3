/*
 * Unit tests for ephemera/systable.h: the table generated from one X-macro
 * list, resolution through dlsym, and the EPHEMERA_FAULTS rules and wrappers
 * (pure parts; test/c/shim_faults_test.c runs them in the shim).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ephemera/systable.h"

#include "check.h"

#define T_SYSCALLS(X)                                                                         \
    X(write, ssize_t, (int fd, const void *b, size_t n), (fd, b, n), EPH_SYS_REQ, XFER)         \
    X(writev, ssize_t, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt), EPH_SYS_REQ, XFERV) \
    X(fsync, int, (int fd), (fd), EPH_SYS_REQ, ERR)                                             \
    X(close, int, (int), (), EPH_SYS_REQ, NONE)                                                 \
    X(__xstat, int, (int, const char *, void *), (), EPH_SYS_V("GLIBC_2.2.5"), NONE)            \
    X(no_such_call_here, int, (void), (), EPH_SYS_OPT, NONE)

struct t_table {
    T_SYSCALLS(EPH_SYS_MEMBER)
};
#define T_SYM(name, ret, params, args, need, fault) EPH_SYS_SYM_ENTRY(struct t_table, name, need)
static const struct eph_sys_sym t_syms[] = {T_SYSCALLS(T_SYM)};

static struct t_table t, t_orig;
static struct eph_faults t_faults;
static int t_mem_fd = -1;
static int t_is_mem(int fd) { return fd == t_mem_fd; }

#define EPH_FAULT_TABLE t_faults
#define EPH_FAULT_ORIG t_orig
T_SYSCALLS(EPH_FAULT_WRAPPER)
static const char *const t_faultable[] = {T_SYSCALLS(EPH_FAULT_NAME) NULL};

static int parse(const char *spec)
{
    const char *bad = NULL;
    int n = eph_faults_parse(spec, &t_faults, &bad);
    t_faults.fd_is_mem = t_is_mem;
    return n;
}

static void install(void)
{
    t_orig = t;
#define EPH_FAULT_INSTALL_TARGET t
    T_SYSCALLS(EPH_FAULT_SWAP)
#undef EPH_FAULT_INSTALL_TARGET
}

int main(void)
{
    /* the table: every required symbol resolved, a missing optional one left NULL */
    CHECK(eph_systable_resolve(&t, t_syms, sizeof t_syms / sizeof t_syms[0], RTLD_DEFAULT) == NULL, "resolve failed");
    CHECK(t.write == (void *)write && t.fsync == (void *)fsync && t.close == (void *)close, "wrong addresses");
    CHECK(t.no_such_call_here == NULL, "an absent optional symbol must stay NULL");
    CHECK(t.__xstat != NULL, "the versioned compat symbol was not found with dlvsym");
    static const struct eph_sys_sym need_missing[] = {{.name = "no_such_call_here", .off = 0, EPH_SYS_REQ}};
    struct t_table tmp;
    const char *m = eph_systable_resolve(&tmp, need_missing, 1, RTLD_DEFAULT);
    CHECK(m && strcmp(m, "no_such_call_here") == 0, "a missing required symbol is not reported");

    /* rules */
    CHECK(parse("write:ENOSPC") == 1 && t_faults.rule[0].err == ENOSPC && t_faults.rule[0].on == EPH_FAULT_ON_ANY &&
              t_faults.rule[0].after == 0 && t_faults.rule[0].times == 0, "plain rule");
    CHECK(parse("write:short:on=mem:after=2:times=3,fsync:EIO:on=disk") == 2 &&
              t_faults.rule[0].err == EPH_FAULT_SHORT && t_faults.rule[0].on == EPH_FAULT_ON_MEM &&
              t_faults.rule[0].after == 2 && t_faults.rule[0].times == 3 && strcmp(t_faults.rule[1].call, "fsync") == 0 &&
              t_faults.rule[1].err == EIO && t_faults.rule[1].on == EPH_FAULT_ON_DISK,
          "two rules with options");
    CHECK(parse("") == 0, "empty spec");
    const char *bad = NULL;
    CHECK(eph_faults_parse("write:ENOSPC,fsync:EWHAT", &t_faults, &bad) < 0 && bad && strcmp(bad, "fsync:EWHAT") == 0,
          "unknown effect not pointed at");
    CHECK(eph_faults_parse("write", &t_faults, &bad) < 0, "rule without an effect accepted");
    CHECK(eph_faults_parse("write:EIO:on=tape", &t_faults, &bad) < 0, "bad on= accepted");
    CHECK(eph_faults_parse("write:EIO:after=x", &t_faults, &bad) < 0, "bad after= accepted");
    CHECK(eph_faults_parse("write:EIO:sometimes", &t_faults, &bad) < 0, "unknown option accepted");
    CHECK(parse("close:EIO") == 1 && eph_faults_unknown(&t_faults, t_faultable) == &t_faults.rule[0],
          "a rule on a call that cannot be faulted is not reported");
    CHECK(parse("write:EIO,writev:EIO,fsync:EIO") == 3 && eph_faults_unknown(&t_faults, t_faultable) == NULL,
          "faultable calls reported unknown");

    /* the wrappers, on a pipe */
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    char buf[64];
    install();
    parse("write:ENOSPC:after=1:times=2");
    CHECK(t.write(p[1], "a", 1) == 1, "after=1: the first call must go through");
    errno = 0;
    CHECK(t.write(p[1], "b", 1) == -1 && errno == ENOSPC, "second call not faulted (errno %d)", errno);
    errno = 0;
    CHECK(t.write(p[1], "c", 1) == -1 && errno == ENOSPC, "third call not faulted");
    CHECK(t.write(p[1], "d", 1) == 1, "times=2: the fourth call must go through");
    CHECK(read(p[0], buf, sizeof buf) == 2 && memcmp(buf, "ad", 2) == 0, "bytes through the wrapper");

    parse("write:short");
    CHECK(t.write(p[1], "0123456789", 10) == 5, "short write of 10 bytes must write 5");
    CHECK(read(p[0], buf, sizeof buf) == 5 && memcmp(buf, "01234", 5) == 0, "short write wrote the wrong bytes");
    errno = 0;
    CHECK(t.write(p[1], "x", 1) == -1 && errno == EIO, "a short write of 1 byte must fail with EIO");

    parse("writev:short");
    struct iovec iov[3] = {{(void *)"", 0}, {(void *)"abcd", 4}, {(void *)"efgh", 4}};
    CHECK(t.writev(p[1], iov, 3) == 4, "short writev of 8 bytes must write 4");
    CHECK(read(p[0], buf, sizeof buf) == 4 && memcmp(buf, "abcd", 4) == 0, "short writev wrote the wrong bytes");

    parse("fsync:EINTR:on=mem");
    t_mem_fd = p[1];
    errno = 0;
    CHECK(t.fsync(p[1]) == -1 && errno == EINTR, "on=mem: the mem fd not faulted");
    CHECK(t.fsync(p[0]) == -1 && errno == EINVAL, "on=mem: another fd faulted (errno %d, want the pipe's EINVAL)", errno);
    parse("fsync:EINTR:on=disk");
    CHECK(t.fsync(p[0]) == -1 && errno == EINTR, "on=disk: a non-mem fd not faulted");
    errno = 0;
    CHECK(t.fsync(p[1]) == -1 && errno == EINVAL, "on=disk: the mem fd faulted");
    close(p[0]);
    close(p[1]);

    printf("systable_test: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
