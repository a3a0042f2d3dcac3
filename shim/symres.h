/*
 * shim/symres.h - the table of real calls resolved in one walk over the
 * dynamic symbol tables of the objects after ours, as dlsym(RTLD_NEXT) would
 * find each name, without a dlsym call per name (shim/symres.c).
 */
#ifndef SHIM_SYMRES_H
#define SHIM_SYMRES_H

#include <link.h>
#include <stddef.h>
#include <stdint.h>

#include "ephemera/systable.h"

/*
 * What libc itself answers for each name of a table, worked out at build time for the libc of the
 * build machine (shim/gen/libcsyms.c writes it, as build/gen/libcsyms.h) and used at run time only
 * when the libc the process loaded is that one: same GNU build-id, and gnu_get_libc_version at the
 * same offset.  Then the walk takes libc's answers from here instead of reading libc's hash table,
 * symbols, names and versions (docs/ARCHITECTURE.md, "The table of real calls from the build's
 * libc (branch symtab)").  Entry i is the table's name i; no pointers to relocate.
 */
enum { SYMRES_ABSENT, SYMRES_FOUND, SYMRES_UNDECIDED };
struct symres_bake {
    size_t n;                   /* entries: the table's length */
    size_t id_len;              /* the build-id's length; 0: nothing baked (no libc found at build) */
    const unsigned char *id;    /* libc's NT_GNU_BUILD_ID */
    uintptr_t anchor;           /* gnu_get_libc_version's offset in libc */
    const char *strs;           /* the names, each ended by a NUL */
    const uint16_t *name_off;   /* entry i's name: strs + name_off[i] */
    const unsigned char *versioned; /* 1: a versioned name (dlvsym's) */
    const uint32_t *hash;       /* each name's GNU hash (for the Bloom filters of objects before libc) */
    const uint64_t *value;      /* SYMRES_FOUND: the definition's offset in libc */
    const unsigned char *state; /* SYMRES_*: what libc answers, with dlsym's rules (versioned names: dlvsym's) */
};

/*
 * Fill found[i] with the address dlsym(RTLD_NEXT, syms[i].name) would give
 * to code in the object that contains `self`, for every entry this walk can
 * decide; an entry it cannot (a versioned name, an IFUNC, a TLS or unique
 * symbol, a name that no object up to libc defines, an object without a GNU
 * hash table) is left NULL, for dlsym.  Returns how many entries it filled.
 * Reads only dl_iterate_phdr's view of the loaded objects (under the loader's
 * lock, once) and the objects' own tables; calls nothing that could come back
 * into the shim.
 */
size_t symres_next(const void *self, const struct eph_sys_sym *syms, size_t n, void **found);

/*
 * The same with what libc answers taken from bake (its n equal to n) when the loaded libc is the
 * baked one: libc's tables are then not read at all, and the versioned names are decided too (by
 * the baked dlvsym answer) unless an object between ours and libc may define them (its Bloom
 * filter says maybe: left to dlvsym).  Any other libc: exactly symres_next.  syms may be NULL when
 * bake is given: the names are then the bake's (the same list).  *baked (may be NULL): 1 when the
 * baked answers were used.
 */
size_t symres_next_baked(const void *self, const struct eph_sys_sym *syms, size_t n, void **found,
                         const struct symres_bake *bake, int *baked);

/* For the build-time generator (shim/gen/libcsyms.c) and the tests: a name's GNU hash; the
 * NT_GNU_BUILD_ID of a loaded object (its length, 0 if none; *id points into the object's note);
 * one object's answer for one name with dlsym's rules (SYMRES_*, *out set when found). */
uint32_t symres_gnu_hash(const char *name);
size_t symres_build_id(const struct dl_phdr_info *info, const unsigned char **id);
int symres_lookup_in(const struct dl_phdr_info *info, const char *name, void **out);

#endif
