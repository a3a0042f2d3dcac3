/*
 * shim/symres.h - the table of real calls resolved in one walk over the
 * dynamic symbol tables of the objects after ours, as dlsym(RTLD_NEXT) would
 * find each name, without a dlsym call per name (shim/symres.c).
 */
#ifndef SHIM_SYMRES_H
#define SHIM_SYMRES_H

#include <stddef.h>

#include "ephemera/systable.h"

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

#endif
