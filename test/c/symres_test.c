/*
 * Tests for shim/symres.c: the one walk over the symbol tables of the
 * objects after the caller's gives, for every name of the shim's table of
 * real calls (shim/sys.h), exactly what dlsym(RTLD_NEXT) gives the caller,
 * and decides nearly all of them itself.  Under ASan (make test-c-asan) the
 * sanitizer's runtime comes right after this program and interposes many of
 * the names (read, write, open...), so the walk must find its definitions,
 * not libc's, as RTLD_NEXT does.
 *
 * The build's table of libc's answers (build/gen/libcsyms.h, symres_next_baked): for the libc it
 * was baked from, the baked walk gives every name exactly what the plain walk and dlsym/dlvsym
 * give, versioned names included; a table whose build-id or anchor does not match this libc is
 * not used (the plain walk's answers, nothing more); and the table's hashes are its names'.
 */
// test-tier: unit
// test-sources: shim/symres.c
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sys.h"
#include "symres.h"
#include "libcsyms.h"

#include "check.h"

#define T_SYM(name, ret, params, args, need, fault) EPH_SYS_SYM_ENTRY(struct sys_table, name, need)
static const struct eph_sys_sym t_syms[] = {SHIM_SYSCALLS(T_SYM)};
#undef T_SYM
enum { NSYMS = sizeof t_syms / sizeof t_syms[0] };

/* Names beyond the table's: a data symbol, a weak alias, an IFUNC (memcpy), a default version among
 * hidden ones (realpath@@GLIBC_2.3 beside realpath@GLIBC_2.2.5), and names nobody defines. */
static const struct eph_sys_sym extra_syms[] = {
    {.name = "environ", .optional = 1},          {.name = "__environ", .optional = 1},
    {.name = "memcpy", .optional = 1},           {.name = "realpath", .optional = 1},
    {.name = "pthread_create", .optional = 1},   {.name = "no_such_symbol_anywhere", .optional = 1},
    {.name = "", .optional = 1},                 {.name = "gnu_get_libc_version", .optional = 1},
    {.name = "_dl_find_object", .optional = 1}, {.name = "__libc_start_main", .optional = 1},
};
enum { NEXTRA = sizeof extra_syms / sizeof extra_syms[0] };

static size_t check_against_dlsym(const struct eph_sys_sym *syms, size_t n, const char *what)
{
    void *found[n ? n : 1];
    size_t nfound = symres_next((const void *)check_against_dlsym, syms, n, found);
    size_t counted = 0;
    for (size_t i = 0; i < n; i++) {
        if (!found[i])
            continue;
        counted++;
        void *want = dlsym(RTLD_NEXT, syms[i].name);
        CHECK(found[i] == want, "%s: %s: the walk found %p, dlsym(RTLD_NEXT) %p", what, syms[i].name, found[i], want);
        CHECK(!syms[i].version, "%s: %s has a version (%s): it is dlvsym's", what, syms[i].name, syms[i].version);
    }
    CHECK(counted == nfound, "%s: %zu entries filled, %zu reported", what, counted, nfound);
    return nfound;
}

/* The baked walk against the plain walk and dlsym/dlvsym, with the build's table and with forged ones. */
static void check_baked(size_t nplain)
{
    const struct symres_bake bake = libcsyms_bake();
    CHECK(bake.n == NSYMS, "the baked table has %zu entries, the shim's list %zu", bake.n, (size_t)NSYMS);
    for (size_t i = 0; i < NSYMS && bake.n == NSYMS; i++)
        CHECK(bake.hash[i] == symres_gnu_hash(t_syms[i].name), "entry %zu's hash is not %s's: a stale table", i,
              t_syms[i].name);

    void *plain[NSYMS], *baked[NSYMS];
    symres_next((const void *)check_baked, t_syms, NSYMS, plain);
    int used = -1;
    size_t nb = symres_next_baked((const void *)check_baked, t_syms, NSYMS, baked, &bake, &used);
    CHECK(bake.id_len > 0, "nothing was baked at build time (no libc with a build-id found)");
    CHECK(used == 1, "the table baked from this machine's libc was not used");
    size_t nver = 0;
    for (size_t i = 0; i < NSYMS; i++) {
        void *want = t_syms[i].version ? dlvsym(RTLD_NEXT, t_syms[i].name, t_syms[i].version)
                                       : dlsym(RTLD_NEXT, t_syms[i].name);
        if (!t_syms[i].version) {
            CHECK(baked[i] == plain[i], "%s: baked %p, the walk %p", t_syms[i].name, baked[i], plain[i]);
        } else {
            nver += baked[i] != NULL;
            CHECK(!plain[i], "%s: the plain walk decided a versioned name", t_syms[i].name);
        }
        CHECK(!baked[i] || baked[i] == want, "%s: baked %p, dlsym/dlvsym(RTLD_NEXT) %p", t_syms[i].name, baked[i],
              want);
    }
    /* The names from the bake itself (sys_resolve's way): the same answers. */
    void *named[NSYMS];
    used = -1;
    CHECK(symres_next_baked((const void *)check_baked, NULL, NSYMS, named, &bake, &used) == nb && used == 1,
          "with the bake's names: a different count, or the bake not used");
    for (size_t i = 0; i < NSYMS; i++)
        CHECK(named[i] == baked[i], "%s: with the bake's names %p, with the list's %p", t_syms[i].name, named[i],
              baked[i]);
    for (size_t i = 0; i < NSYMS; i++) {
        CHECK(strcmp(bake.strs + bake.name_off[i], t_syms[i].name) == 0, "entry %zu's name is %s, not %s", i,
              bake.strs + bake.name_off[i], t_syms[i].name);
        CHECK(bake.versioned[i] == (t_syms[i].version != NULL), "entry %zu (%s): versioned flag", i, t_syms[i].name);
    }

    /* Plain: libc's definitions; under ASan its runtime interposes the compat stat calls, so those go to dlvsym. */
    CHECK(nb >= nplain && nb == nplain + nver, "baked %zu, plain %zu + %zu versioned", nb, nplain, nver);

    /* Another libc (another build-id, or the same id with gnu_get_libc_version elsewhere): not used, the
     * plain walk's answers exactly. */
    unsigned char other_id[64];
    memcpy(other_id, bake.id, bake.id_len < sizeof other_id ? bake.id_len : sizeof other_id);
    other_id[0] ^= 1;
    struct symres_bake forged[3] = {bake, bake, bake};
    forged[0].id = other_id;
    forged[1].anchor += 16;
    forged[2].id_len = 0;
    for (int f = 0; f < 3; f++) {
        void *got[NSYMS];
        used = -1;
        size_t ng = symres_next_baked((const void *)check_baked, t_syms, NSYMS, got, &forged[f], &used);
        CHECK(used == 0, "forged table %d was used", f);
        CHECK(ng == nplain, "forged table %d: %zu found, the plain walk %zu", f, ng, nplain);
        for (size_t i = 0; i < NSYMS; i++)
            CHECK(got[i] == plain[i], "forged table %d: %s: %p, the plain walk %p", f, t_syms[i].name, got[i], plain[i]);
        /* with the bake's names: the same (another libc's walk needs no list either) */
        used = -1;
        CHECK(symres_next_baked((const void *)check_baked, NULL, NSYMS, got, &forged[f], &used) == nplain && used == 0,
              "forged table %d with the bake's names: a different count, or used", f);
        for (size_t i = 0; i < NSYMS; i++)
            CHECK(got[i] == plain[i], "forged table %d, the bake's names: %s: %p, the plain walk %p", f,
                  t_syms[i].name, got[i], plain[i]);
    }
    printf("symres: baked from build-id of %zu bytes: %zu names, %zu of them versioned\n", bake.id_len, nb, nver);
}

int main(void)
{
    size_t nver = 0;
    for (size_t i = 0; i < NSYMS; i++)
        nver += t_syms[i].version != NULL;
    size_t n = check_against_dlsym(t_syms, NSYMS, "the shim's table");
    /* Everything but the versioned compat names (dlvsym's) and names this libc lacks. */
    size_t absent = 0;
    for (size_t i = 0; i < NSYMS; i++)
        absent += !t_syms[i].version && !dlsym(RTLD_NEXT, t_syms[i].name);
    CHECK(n == NSYMS - nver - absent, "the walk decided %zu of %zu names (%zu versioned, %zu absent)", n,
          (size_t)NSYMS, nver, absent);

    check_against_dlsym(extra_syms, NEXTRA, "other names");
    void *found[NEXTRA];
    symres_next((const void *)main, extra_syms, NEXTRA, found);
    for (size_t i = 0; i < NEXTRA; i++) {
        const char *nm = extra_syms[i].name;
        if (strcmp(nm, "no_such_symbol_anywhere") == 0 || nm[0] == '\0')
            CHECK(!found[i], "%s: found %p where nothing defines it", nm, found[i]);
        if (strcmp(nm, "realpath") == 0)
            CHECK(found[i] != NULL, "realpath (one default version beside a hidden one) was not found");
    }

    /* An address in no object: nothing is decided, everything is left to dlsym. */
    void *none[NSYMS];
    CHECK(symres_next((const void *)(uintptr_t)4096, t_syms, NSYMS, none) == 0, "a caller in no object got answers");
    for (size_t i = 0; i < NSYMS; i++)
        CHECK(!none[i], "a caller in no object: %s filled", t_syms[i].name);

    check_baked(n);

    printf("symres: %zu of %zu names found in one walk (%zu versioned left to dlvsym); %d checks, %d failures\n", n,
           (size_t)NSYMS, nver, checks, failures);
    return failures != 0;
}
