/*
 * shim/elfcheck.c - what an exec target is (pure: reads through a callback,
 * no libc state): decides whether it can load the shim or needs its files
 * materialised, and which libraries ld.so will load.
 */
#include "elfcheck.h"

#include "ephemera/elfphdr.h"

#include <elf.h>
#include <string.h>

int elf_classify(const unsigned char *buf, size_t n, char *interp, size_t interpsz)
{
    if (n >= 2 && buf[0] == '#' && buf[1] == '!') {
        size_t i = 2;
        while (i < n && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        size_t j = 0;
        while (i < n && buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n' && buf[i] != '\0') {
            if (j + 1 >= interpsz)
                return ELF_UNKNOWN;
            interp[j++] = (char)buf[i++];
        }
        if (interpsz)
            interp[j] = '\0';
        return j ? ELF_SCRIPT : ELF_UNKNOWN;
    }
    if (n < sizeof(Elf64_Ehdr) || memcmp(buf, ELFMAG, SELFMAG) != 0)
        return ELF_UNKNOWN;
    /* The program headers of real binaries sit right after the ELF header,
     * inside the first page the caller reads; if not, assume dynamic (the
     * common case) rather than materialise needlessly. */
    if (buf[EI_CLASS] == ELFCLASS64) {
        Elf64_Phdr ph;
        switch (eph_elf64_phdr(buf, n, PT_INTERP, &ph)) {
        case EPH_PHDR_NONE:
            return ELF_STATIC;
        case EPH_PHDR_BAD:
            return ELF_UNKNOWN;
        case EPH_PHDR_FOUND:
        case EPH_PHDR_CUT:
            break;
        }
        return ELF_DYNAMIC;
    }
    /* A 32-bit program cannot load our 64-bit shim, interpreter or not. */
    if (buf[EI_CLASS] == ELFCLASS32)
        return ELF_STATIC;
    return ELF_UNKNOWN;
}

/* One string of the dynamic string table (strtab at file offset so, sz bytes). */
static int elf_str(int fd, elf_pread_fn rd, uint64_t so, uint64_t sz, uint64_t v, char *out, size_t outsz)
{
    if (v >= sz || outsz == 0)
        return -1;
    size_t want = outsz - 1;
    if (want > sz - v)
        want = (size_t)(sz - v);
    ssize_t n = rd(fd, out, want, (off_t)(so + v));
    size_t len = n > 0 ? strnlen(out, (size_t)n) : 0;
    if (n <= 0 || (len == (size_t)n && (size_t)n < sz - v)) {
        out[0] = '\0'; /* unreadable, or longer than out: not a name we could use */
        return -1;
    }
    out[len] = '\0';
    return 0;
}

int elf_dynamic(int fd, elf_pread_fn rd, char *needed, size_t needsz, char *rpath, size_t rpsz, char *runpath,
                size_t rusz)
{
    Elf64_Ehdr eh;
    Elf64_Phdr ph[64];
    if (rd(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
        return -1;
    unsigned nph = eh.e_phnum < 64 ? eh.e_phnum : 64;
    if (rd(fd, ph, nph * sizeof ph[0], (off_t)eh.e_phoff) != (ssize_t)(nph * sizeof ph[0]))
        return -1;
    const Elf64_Phdr *dynp = NULL;
    for (unsigned k = 0; k < nph; k++)
        if (ph[k].p_type == PT_DYNAMIC)
            dynp = &ph[k];
    if (!dynp)
        return 0; /* static: needs nothing */
    Elf64_Dyn dyn[512];
    size_t nd = (size_t)(dynp->p_filesz / sizeof dyn[0]);
    if (nd > 512)
        nd = 512;
    ssize_t got = rd(fd, dyn, nd * sizeof dyn[0], (off_t)dynp->p_offset);
    if (got < 0)
        return -1;
    nd = (size_t)got / sizeof dyn[0];
    /* DT_STRTAB is an address: find the file offset of the segment that holds it */
    uint64_t strva = 0, strsz = 0, so = 0;
    int have = 0;
    for (size_t i = 0; i < nd && dyn[i].d_tag != DT_NULL; i++) {
        if (dyn[i].d_tag == DT_STRTAB)
            strva = dyn[i].d_un.d_ptr, have = 1;
        else if (dyn[i].d_tag == DT_STRSZ)
            strsz = dyn[i].d_un.d_val;
    }
    for (unsigned k = 0; have && k < nph; k++)
        if (ph[k].p_type == PT_LOAD && strva >= ph[k].p_vaddr && strva < ph[k].p_vaddr + ph[k].p_filesz) {
            so = strva - ph[k].p_vaddr + ph[k].p_offset;
            have = 2;
        }
    if (have != 2)
        return -1;
    size_t used = 0;
    int count = 0;
    if (needsz)
        needed[0] = '\0';
    if (rpsz)
        rpath[0] = '\0';
    if (rusz)
        runpath[0] = '\0';
    for (size_t i = 0; i < nd && dyn[i].d_tag != DT_NULL; i++) {
        uint64_t v = dyn[i].d_un.d_val;
        if (dyn[i].d_tag == DT_NEEDED) {
            if (used + 2 > needsz || elf_str(fd, rd, so, strsz, v, needed + used, needsz - used - 1) < 0)
                continue;
            used += strlen(needed + used) + 1;
            needed[used] = '\0';
            count++;
        } else if (dyn[i].d_tag == DT_RPATH) {
            elf_str(fd, rd, so, strsz, v, rpath, rpsz);
        } else if (dyn[i].d_tag == DT_RUNPATH) {
            elf_str(fd, rd, so, strsz, v, runpath, rusz);
        }
    }
    return count;
}
