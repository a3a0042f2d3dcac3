/*
 * include/ephemera/elfphdr.h - the walk of a 64-bit ELF program's headers in the first bytes of
 * its file, shared by the shim's exec check (shim/elfcheck.c, elf_classify) and the launcher's
 * start gate (launcher/gate.c, gate_elf_loads_shim).  Pure: each caller reads the bytes itself.
 */
#ifndef EPHEMERA_ELFPHDR_H
#define EPHEMERA_ELFPHDR_H

#include <elf.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum eph_phdr {
    EPH_PHDR_FOUND, /* *out is the first program header of the type asked for */
    EPH_PHDR_NONE,  /* no program header has that type */
    EPH_PHDR_CUT,   /* a program header before any of that type lies beyond the n bytes read */
    EPH_PHDR_BAD,   /* fewer bytes than an ELF header, or program headers not of Elf64_Phdr's size */
};

/* The first program header of type `type` of the 64-bit ELF file whose first n bytes are buf (the
 * caller has checked its magic and class). */
static inline enum eph_phdr eph_elf64_phdr(const unsigned char *buf, size_t n, uint32_t type, Elf64_Phdr *out)
{
    Elf64_Ehdr eh;
    if (n < sizeof eh)
        return EPH_PHDR_BAD;
    memcpy(&eh, buf, sizeof eh);
    if (eh.e_phentsize != sizeof(Elf64_Phdr))
        return EPH_PHDR_BAD;
    for (unsigned k = 0; k < eh.e_phnum; k++) {
        size_t o = (size_t)eh.e_phoff + (size_t)k * sizeof(Elf64_Phdr);
        if (o < (size_t)eh.e_phoff || o > n || n - o < sizeof(Elf64_Phdr)) /* n - o: o + size wraps near 2^64 */
            return EPH_PHDR_CUT;
        memcpy(out, buf + o, sizeof *out);
        if (out->p_type == type)
            return EPH_PHDR_FOUND;
    }
    return EPH_PHDR_NONE;
}

#endif
