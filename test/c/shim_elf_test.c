// test-tier: unit
/*
 * Unit tests for elf_classify (shim/elfcheck.c): the check that decides
 * whether an exec target can load the shim or needs the files materialised;
 * the walk of the program headers it shares with the launcher's start gate
 * (include/ephemera/elfphdr.h); and elf_dynamic, which lists the libraries
 * ld.so will load.
 */
// test-sources: shim/elfcheck.c
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../shim/elfcheck.h"
#include "ephemera/elfphdr.h"

#include "check.h"

/* An ELF64 image with the given program header types. */
static size_t make_elf64(unsigned char *buf, size_t cap, const uint32_t *types, int n)
{
    Elf64_Ehdr eh;
    memset(&eh, 0, sizeof eh);
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_type = ET_DYN;
    eh.e_phoff = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = (uint16_t)n;
    memset(buf, 0, cap);
    memcpy(buf, &eh, sizeof eh);
    for (int i = 0; i < n; i++) {
        Elf64_Phdr ph;
        memset(&ph, 0, sizeof ph);
        ph.p_type = types[i];
        memcpy(buf + sizeof eh + (size_t)i * sizeof ph, &ph, sizeof ph);
    }
    return sizeof eh + (size_t)n * sizeof(Elf64_Phdr);
}

static int classify_file(const char *path)
{
    unsigned char buf[4096];
    char interp[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n > 0 ? elf_classify(buf, (size_t)n, interp, sizeof interp) : -1;
}

int main(void)
{
    unsigned char buf[1024];
    char interp[64];

    uint32_t dyn[] = {PT_PHDR, PT_INTERP, PT_LOAD, PT_DYNAMIC};
    size_t n = make_elf64(buf, sizeof buf, dyn, 4);
    CHECK(elf_classify(buf, n, interp, sizeof interp) == ELF_DYNAMIC, "PT_INTERP means dynamic");

    uint32_t stat_[] = {PT_LOAD, PT_LOAD, PT_NOTE, PT_TLS};
    n = make_elf64(buf, sizeof buf, stat_, 4);
    CHECK(elf_classify(buf, n, interp, sizeof interp) == ELF_STATIC, "no PT_INTERP means static");

    /* program headers cut off by the read: assume dynamic rather than materialise needlessly */
    n = make_elf64(buf, sizeof buf, stat_, 4);
    CHECK(elf_classify(buf, n - 8, interp, sizeof interp) == ELF_DYNAMIC, "truncated headers");

    /* the walk itself (include/ephemera/elfphdr.h; launcher/gate.c walks with it too) */
    Elf64_Phdr ph;
    n = make_elf64(buf, sizeof buf, dyn, 4);
    CHECK(eph_elf64_phdr(buf, n, PT_DYNAMIC, &ph) == EPH_PHDR_FOUND && ph.p_type == PT_DYNAMIC, "the walk finds PT_DYNAMIC");
    CHECK(eph_elf64_phdr(buf, n, PT_NOTE, &ph) == EPH_PHDR_NONE, "the walk: no PT_NOTE");
    CHECK(eph_elf64_phdr(buf, n - 1, PT_NOTE, &ph) == EPH_PHDR_CUT, "the walk: the last header cut off");
    CHECK(eph_elf64_phdr(buf, n - 1, PT_INTERP, &ph) == EPH_PHDR_FOUND, "the walk: PT_INTERP before the cut");
    CHECK(eph_elf64_phdr(buf, sizeof(Elf64_Ehdr) - 1, PT_INTERP, &ph) == EPH_PHDR_BAD, "the walk: no whole ELF header");
    /* a table offset near 2^64: its end wraps past zero, and must not pass for inside the buffer */
    uint64_t far = UINT64_MAX - 7;
    uint16_t one = 1; /* one header: no second one whose offset wraps the other way */
    memcpy(buf + offsetof(Elf64_Ehdr, e_phoff), &far, sizeof far);
    memcpy(buf + offsetof(Elf64_Ehdr, e_phnum), &one, sizeof one);
    CHECK(eph_elf64_phdr(buf, n, PT_INTERP, &ph) == EPH_PHDR_CUT, "the walk: a table offset whose end wraps");
    CHECK(elf_classify(buf, n, interp, sizeof interp) == ELF_DYNAMIC, "a table offset whose end wraps: cut, so dynamic");
    n = make_elf64(buf, sizeof buf, dyn, 4);
    buf[offsetof(Elf64_Ehdr, e_phentsize)] = 32;
    CHECK(eph_elf64_phdr(buf, n, PT_INTERP, &ph) == EPH_PHDR_BAD, "the walk: headers of another size");
    CHECK(elf_classify(buf, n, interp, sizeof interp) == ELF_UNKNOWN, "headers of another size: unknown");

    /* 32-bit: cannot load a 64-bit shim either way */
    unsigned char e32[64] = {0x7f, 'E', 'L', 'F', ELFCLASS32, ELFDATA2LSB};
    CHECK(elf_classify(e32, sizeof e32, interp, sizeof interp) == ELF_STATIC, "32-bit ELF");

    const char *sh = "#!/bin/sh -e\necho hi\n";
    CHECK(elf_classify((const unsigned char *)sh, strlen(sh), interp, sizeof interp) == ELF_SCRIPT &&
              strcmp(interp, "/bin/sh") == 0, "script interpreter: %s", interp);
    const char *sp = "#!  /usr/bin/python3\n";
    CHECK(elf_classify((const unsigned char *)sp, strlen(sp), interp, sizeof interp) == ELF_SCRIPT &&
              strcmp(interp, "/usr/bin/python3") == 0, "spaces after #!: %s", interp);
    const char *empty = "#!\n";
    CHECK(elf_classify((const unsigned char *)empty, strlen(empty), interp, sizeof interp) == ELF_UNKNOWN,
          "empty interpreter");
    char longi[300] = "#!/";
    memset(longi + 3, 'a', 250);
    CHECK(elf_classify((const unsigned char *)longi, strlen(longi), interp, 16) == ELF_UNKNOWN,
          "interpreter longer than the buffer");
    CHECK(elf_classify((const unsigned char *)"\x7f" "EL", 3, interp, sizeof interp) == ELF_UNKNOWN,
          "short garbage");
    CHECK(elf_classify((const unsigned char *)"hello", 5, interp, sizeof interp) == ELF_UNKNOWN, "text");

    /* real binaries of this system */
    CHECK(classify_file("/bin/sh") == ELF_DYNAMIC || classify_file("/bin/sh") == ELF_SCRIPT,
          "/bin/sh is dynamic");
    if (access("build/test/static_reader", R_OK) == 0)
        CHECK(classify_file("build/test/static_reader") == ELF_STATIC, "static_reader is static");

    /* elf_dynamic: what ld.so will load (the exec path moves in-memory libraries to disk) */
    char needed[2048], rpath[256], runpath[256];
    int fd = open("/bin/sh", O_RDONLY);
    int nn = fd >= 0 ? elf_dynamic(fd, pread, needed, sizeof needed, rpath, sizeof rpath, runpath, sizeof runpath) : -2;
    int libc = 0;
    for (const char *p = needed; nn > 0 && *p; p += strlen(p) + 1)
        libc |= strcmp(p, "libc.so.6") == 0;
    CHECK(nn >= 1 && libc && rpath[0] == '\0' && runpath[0] == '\0', "/bin/sh needs libc.so.6, no search path");
    if (fd >= 0)
        close(fd);
    CHECK(elf_dynamic(fd, pread, needed, 4, rpath, sizeof rpath, runpath, sizeof runpath) == -1, "a closed fd");
    fd = open("/bin/sh", O_RDONLY);
    CHECK(fd >= 0 && elf_dynamic(fd, pread, needed, 4, rpath, sizeof rpath, runpath, sizeof runpath) == 0 &&
              needed[0] == '\0',
          "names longer than the buffer are left out");
    close(fd);
    if (access("build/test/static_reader", R_OK) == 0) {
        fd = open("build/test/static_reader", O_RDONLY);
        CHECK(elf_dynamic(fd, pread, needed, sizeof needed, rpath, sizeof rpath, runpath, sizeof runpath) == 0,
              "a static program needs nothing");
        close(fd);
    }
    fd = open("test/c/shim_elf_test.c", O_RDONLY);
    CHECK(fd < 0 || elf_dynamic(fd, pread, needed, sizeof needed, rpath, sizeof rpath, runpath, sizeof runpath) == -1,
          "a text file is not ELF");
    if (fd >= 0)
        close(fd);

    if (failures) {
        fprintf(stderr, "shim_elf_test: %d failure(s)\n", failures);
        return 1;
    }
    printf("shim_elf_test: ok\n");
    return 0;
}
