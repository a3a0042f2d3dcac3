/* Which commands can wait for the daemon inside the shim: see gate.h. */
#include "gate.h"

#include "ephemera/elfphdr.h"

#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#if defined(__x86_64__)
#define GATE_MACHINE EM_X86_64
static const char *const gate_loaders[] = {"/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"};
#elif defined(__aarch64__)
#define GATE_MACHINE EM_AARCH64
static const char *const gate_loaders[] = {"/lib/ld-linux-aarch64.so.1", "/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1"};
#else
#define GATE_MACHINE EM_NONE
static const char *const gate_loaders[] = {""};
#endif

bool gate_elf_loads_shim(const unsigned char *buf, size_t n)
{
    Elf64_Ehdr eh;
    if (GATE_MACHINE == EM_NONE || n < sizeof eh || memcmp(buf, ELFMAG, SELFMAG) != 0 || buf[EI_CLASS] != ELFCLASS64 ||
        buf[EI_DATA] != ELFDATA2LSB)
        return false;
    memcpy(&eh, buf, sizeof eh);
    if (eh.e_machine != GATE_MACHINE || (eh.e_type != ET_EXEC && eh.e_type != ET_DYN))
        return false;
    Elf64_Phdr ph;
    if (eph_elf64_phdr(buf, n, PT_INTERP, &ph) != EPH_PHDR_FOUND)
        return false; /* static, or its headers are not all in the bytes read */
    if (ph.p_offset >= n || ph.p_filesz == 0 || ph.p_filesz > n - ph.p_offset)
        return false;
    const char *interp = (const char *)buf + ph.p_offset;
    size_t len = strnlen(interp, (size_t)ph.p_filesz);
    for (size_t i = 0; i < sizeof gate_loaders / sizeof gate_loaders[0]; i++)
        if (len == strlen(gate_loaders[i]) && memcmp(interp, gate_loaders[i], len) == 0)
            return true;
    return false;
}

/* The first bytes of an executable regular file that runs without a secure exec, or -1. */
static ssize_t gate_head(const char *path, unsigned char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat st;
    ssize_t got = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & (S_ISUID | S_ISGID)) == 0 &&
        fgetxattr(fd, "security.capability", NULL, 0) < 0)
        got = pread(fd, buf, n, 0);
    close(fd);
    return got;
}

bool gate_possible(const char *path)
{
    unsigned char buf[4096];
    if (getuid() != geteuid() || getgid() != getegid())
        return false; /* the command's exec would be a secure one */
    ssize_t got = gate_head(path, buf, sizeof buf);
    if (got < 2)
        return false;
    if (buf[0] == '#' && buf[1] == '!') {
        /* the kernel's rule: the interpreter is the first word after #!, up to the line's end */
        size_t i = 2, j = 0;
        char interp[256];
        while (i < (size_t)got && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        while (i < (size_t)got && buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n' && buf[i] != '\0' && j + 1 < sizeof interp)
            interp[j++] = (char)buf[i++];
        interp[j] = '\0';
        if (j == 0 || i >= (size_t)got || (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n') || interp[0] != '/')
            return false;
        got = gate_head(interp, buf, sizeof buf);
        return got > 0 && gate_elf_loads_shim(buf, (size_t)got);
    }
    return gate_elf_loads_shim(buf, (size_t)got);
}
