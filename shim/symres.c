/*
 * shim/symres.c - the real calls' addresses found in one walk over the
 * dynamic symbol tables of the objects after ours (symres.h).
 *
 * Every process of an instance loads the shim, and its constructor fills the
 * table of real calls eagerly (sys.c).  One dlsym(RTLD_NEXT) costs about 900
 * instructions: the loader's lock, an error-catching frame, the caller's
 * object found again, and a walk of the whole search list from its start for
 * each name.  126 of them were three quarters of what the shim added to a
 * process's start (callgrind: docs/ARCHITECTURE.md, "The shim's start-up in
 * every process").  The lookup itself is cheap: each object's GNU hash table
 * answers "not here" from its Bloom filter in a few instructions, and "here"
 * in one bucket's chain.  So the walk here visits the objects in the order
 * RTLD_NEXT searches them (the objects loaded at start, in load order, which
 * is the list's order up to libc), asks each for every name still missing,
 * and applies dlsym's rules for a name without a version: a definition
 * (global or weak, the first object wins), an unversioned symbol or the one
 * default (not hidden) version.  What it cannot decide exactly it leaves to
 * dlsym: versioned names (dlvsym), IFUNCs (dlsym runs the resolver), TLS and
 * unique symbols, more than one default version, and a name that no object up
 * to libc defines (an object after libc in the list may be one a program
 * dlopen'ed, which RTLD_NEXT sees only when it was opened RTLD_GLOBAL).
 * test/c/symres_test.c checks the answers against dlsym's for the shim's
 * whole list, plain and under ASan (whose runtime interposes many of them).
 */
#include <elf.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <stdint.h>
#include <string.h>

#include "compiler.h"
#include "symres.h"

struct symres_obj {
    ElfW(Addr) base;
    const ElfW(Sym) *symtab;
    const char *strtab;
    const ElfW(Half) *versym;
    const uint32_t *gnu_hash;
};

/* The loader relocates the dynamic section's pointers in place on x86-64, but not every object's
 * (the vDSO's): an address below the load base is still an offset. */
SH_START static const void *dyn_ptr(ElfW(Addr) base, ElfW(Addr) p) { return (const void *)(p < base ? p + base : p); }

/* The object's dynamic section, from its program headers. */
SH_START static int obj_open(const struct dl_phdr_info *info, struct symres_obj *o)
{
    memset(o, 0, sizeof *o);
    o->base = info->dlpi_addr;
    const ElfW(Dyn) *dyn = NULL;
    for (ElfW(Half) k = 0; k < info->dlpi_phnum; k++)
        if (info->dlpi_phdr[k].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(o->base + info->dlpi_phdr[k].p_vaddr);
    if (!dyn)
        return -1;
    for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_SYMTAB: o->symtab = dyn_ptr(o->base, d->d_un.d_ptr); break;
        case DT_STRTAB: o->strtab = dyn_ptr(o->base, d->d_un.d_ptr); break;
        case DT_VERSYM: o->versym = dyn_ptr(o->base, d->d_un.d_ptr); break;
        case DT_GNU_HASH: o->gnu_hash = dyn_ptr(o->base, d->d_un.d_ptr); break;
        default: break;
        }
    }
    return o->symtab && o->strtab && o->gnu_hash ? 0 : -1;
}

SH_START static int obj_contains(const struct dl_phdr_info *info, const void *a)
{
    uintptr_t x = (uintptr_t)a;
    for (ElfW(Half) k = 0; k < info->dlpi_phnum; k++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[k];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && x >= lo && x - lo < ph->p_memsz)
            return 1;
    }
    return 0;
}

SH_START uint32_t symres_gnu_hash(const char *s)
{
    uint32_t h = 5381;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = h * 33 + *p;
    return h;
}

enum { SR_ABSENT = SYMRES_ABSENT, SR_FOUND = SYMRES_FOUND, SR_UNDECIDED = SYMRES_UNDECIDED };

/* The Bloom filter's answer: 0 when the object certainly does not define a symbol of this hash. */
SH_START static int obj_may_have(const struct symres_obj *o, uint32_t hash)
{
    const uint32_t *h = o->gnu_hash;
    uint32_t nbuckets = h[0], bloom_size = h[2], bloom_shift = h[3];
    if (nbuckets == 0 || bloom_size == 0)
        return 0;
    const ElfW(Addr) *bloom = (const ElfW(Addr) *)(const void *)(h + 4);
    const unsigned bits = sizeof(ElfW(Addr)) * 8;
    ElfW(Addr) word = bloom[(hash / bits) & (bloom_size - 1)];
    return (int)((word >> (hash % bits)) & (word >> ((hash >> bloom_shift) % bits)) & 1);
}

/* One name in one object, with dlsym's rules (glibc elf/dl-lookup.c, check_match and do_lookup_x). */
SH_START static int obj_lookup(const struct symres_obj *o, const char *name, uint32_t hash, void **out)
{
    if (!obj_may_have(o, hash))
        return SR_ABSENT;
    const uint32_t *h = o->gnu_hash;
    uint32_t nbuckets = h[0], symoffset = h[1], bloom_size = h[2];
    const ElfW(Addr) *bloom = (const ElfW(Addr) *)(const void *)(h + 4);
    const uint32_t *buckets = (const uint32_t *)(const void *)(bloom + bloom_size);
    const uint32_t *chain = buckets + nbuckets;
    uint32_t i = buckets[hash % nbuckets];
    if (i < symoffset)
        return SR_ABSENT;
    const ElfW(Sym) *versioned = NULL;
    int nversioned = 0;
    for (;; i++) {
        uint32_t h2 = chain[i - symoffset];
        const ElfW(Sym) *s = &o->symtab[i];
        if (((h2 ^ hash) >> 1) == 0 && strcmp(o->strtab + s->st_name, name) == 0) {
            /* ELF{32,64}_ST_TYPE and _ST_BIND: the same in both classes */
            unsigned type = (unsigned)(s->st_info & 0xf), bind = (unsigned)(s->st_info >> 4);
            if (s->st_shndx == SHN_UNDEF) {
                if (s->st_value != 0)
                    return SR_UNDECIDED; /* an executable's canonical PLT address: leave it to dlsym */
            } else if (type == STT_TLS || type == STT_GNU_IFUNC || bind == STB_GNU_UNIQUE) {
                return SR_UNDECIDED;
            } else if (s->st_value != 0 && (bind == STB_GLOBAL || bind == STB_WEAK) &&
                       (type == STT_FUNC || type == STT_OBJECT || type == STT_NOTYPE || type == STT_COMMON)) {
                ElfW(Half) v = o->versym ? o->versym[i] : 0;
                if ((v & 0x7fff) < 2) { /* local or global: no version */
                    *out = (void *)(o->base + s->st_value);
                    return SR_FOUND;
                }
                if (!(v & 0x8000) && nversioned++ == 0) /* the default version, not a hidden one */
                    versioned = s;
            }
        }
        if (h2 & 1)
            break;
    }
    if (nversioned == 1) {
        *out = (void *)(o->base + versioned->st_value);
        return SR_FOUND;
    }
    return nversioned > 1 ? SR_UNDECIDED : SR_ABSENT;
}

SH_START int symres_lookup_in(const struct dl_phdr_info *info, const char *name, void **out)
{
    struct symres_obj o;
    if (obj_open(info, &o) < 0)
        return SR_UNDECIDED;
    return obj_lookup(&o, name, symres_gnu_hash(name), out);
}

SH_START size_t symres_build_id(const struct dl_phdr_info *info, const unsigned char **id)
{
    for (ElfW(Half) k = 0; k < info->dlpi_phnum; k++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[k];
        if (ph->p_type != PT_NOTE)
            continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) { /* notes: 4-byte aligned name and descriptor */
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
            size_t name = (nh->n_namesz + 3u) & ~(size_t)3, desc = (nh->n_descsz + 3u) & ~(size_t)3;
            if ((size_t)(end - p) - sizeof *nh < name || (size_t)(end - p) - sizeof *nh - name < desc)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(p + sizeof *nh, "GNU", 4) == 0 &&
                nh->n_descsz > 0) {
                *id = p + sizeof *nh + name;
                return nh->n_descsz;
            }
            p += sizeof *nh + name + desc;
        }
    }
    return 0;
}

struct symres_walk {
    const void *self, *in_libc;
    const struct eph_sys_sym *syms;
    size_t n, nfound, ndecided;
    void **found;
    unsigned char *decided;
    const struct symres_bake *bake;
    int baked;
    enum { W_BEFORE, W_AFTER, W_DONE, W_FAILED } state;
};

/* Entry i's name, and whether it is a versioned one (dlvsym's): from the caller's list, or from the bake's. */
SH_START static const char *w_name(const struct symres_walk *w, size_t i)
{
    return w->syms ? w->syms[i].name : w->bake->strs + w->bake->name_off[i];
}

SH_START static int w_versioned(const struct symres_walk *w, size_t i)
{
    return w->syms ? w->syms[i].version != NULL : w->bake->versioned[i];
}

/* This libc is the one the table was baked from: its build-id, and an anchor symbol where the table says. */
SH_START static int bake_matches(const struct dl_phdr_info *info, const struct symres_bake *b, const void *in_libc)
{
    const unsigned char *id;
    size_t len = symres_build_id(info, &id);
    return b->id_len > 0 && len == b->id_len && memcmp(id, b->id, len) == 0 &&
           (uintptr_t)in_libc - info->dlpi_addr == b->anchor;
}

/* libc's answers from the baked table; the walk ends here, as it ends at libc. */
SH_START static void walk_libc_baked(struct symres_walk *w, ElfW(Addr) base)
{
    const struct symres_bake *b = w->bake;
    for (size_t i = 0; i < w->n; i++) {
        if (w->decided[i])
            continue;
        w->decided[i] = 1;
        w->ndecided++;
        if (b->state[i] == SR_FOUND) {
            w->found[i] = (void *)(base + b->value[i]);
            w->nfound++;
        }
    }
    w->baked = 1;
}

/* dl_iterate_phdr visits the objects in the loader's list order (under its lock): skip up to and
 * including ours, then ask each object for every name not yet decided, up to and including libc. */
SH_START static int walk_one(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct symres_walk *w = arg;
    if (w->state == W_BEFORE) {
        if (obj_contains(info, w->in_libc))
            w->state = W_FAILED; /* libc before us: not the list this walk understands */
        else if (obj_contains(info, w->self))
            w->state = W_AFTER;
        return w->state == W_FAILED;
    }
    int is_libc = obj_contains(info, w->in_libc);
    if (is_libc && w->bake && bake_matches(info, w->bake, w->in_libc)) {
        walk_libc_baked(w, info->dlpi_addr);
        w->state = W_DONE;
        return 1;
    }
    struct symres_obj o;
    if (obj_open(info, &o) < 0) {
        if (info->dlpi_name && info->dlpi_name[0]) {
            w->state = W_FAILED; /* an object without a GNU hash table: dlsym for all, not a guess */
            return 1;
        }
    } else {
        for (size_t i = 0; i < w->n; i++) {
            if (w->decided[i])
                continue;
            uint32_t hash = w->bake ? w->bake->hash[i] : symres_gnu_hash(w->syms[i].name);
            int r;
            if (w_versioned(w, i)) /* only with a bake: an object that may define it leaves it to dlvsym */
                r = obj_may_have(&o, hash) ? SR_UNDECIDED : SR_ABSENT;
            else
                r = obj_lookup(&o, w_name(w, i), hash, &w->found[i]);
            if (r != SR_ABSENT) {
                w->decided[i] = 1;
                w->ndecided++;
                w->nfound += r == SR_FOUND;
            }
        }
    }
    if (is_libc || w->ndecided == w->n) {
        w->state = W_DONE;
        return 1;
    }
    return 0;
}

SH_START size_t symres_next_baked(const void *self, const struct eph_sys_sym *syms, size_t n, void **found,
                         const struct symres_bake *bake, int *baked)
{
    unsigned char decided[n ? n : 1];
    if (bake && bake->n != n)
        bake = NULL; /* a table of another list: the plain walk (nothing baked, id_len 0: never matches) */
    struct symres_walk w = {.self = self, .in_libc = (const void *)gnu_get_libc_version, .syms = syms, .n = n,
                            .found = found, .decided = decided, .bake = bake, .state = W_BEFORE};
    for (size_t i = 0; i < n; i++) {
        found[i] = NULL;
        /* without a bake, dlvsym's version rules are left to it; without names, everything to dlsym */
        decided[i] = !syms && !bake ? 1 : !bake && syms[i].version != NULL;
        w.ndecided += decided[i];
    }
    if (w.ndecided < n)
        dl_iterate_phdr(walk_one, &w);
    if (baked)
        *baked = w.baked && w.state == W_DONE;
    if (w.state != W_DONE) {
        for (size_t i = 0; i < n; i++)
            found[i] = NULL;
        return 0;
    }
    return w.nfound;
}

SH_START size_t symres_next(const void *self, const struct eph_sys_sym *syms, size_t n, void **found)
{
    return symres_next_baked(self, syms, n, found, NULL, NULL);
}
