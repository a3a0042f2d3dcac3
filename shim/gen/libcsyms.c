/*
 * shim/gen/libcsyms.c - build tool: writes build/gen/libcsyms.h, what the libc of the build machine
 * answers for every name of the shim's table of real calls (shim/sys.h), for symres_next_baked
 * (shim/symres.h).  At run time a process whose libc has the same GNU build-id (and the same
 * offset of gnu_get_libc_version) takes libc's answers from that table instead of reading libc's
 * hash table, symbols, names and versions; any other libc is walked as before.
 *
 * Unversioned names: exactly the walk's answer for libc (symres_lookup_in, the walk's own code:
 * found at an offset, absent, or undecided, i.e. left to dlsym).  Versioned names (dlvsym's):
 * dlvsym on libc's own handle, kept only when the address is in libc and is the value of a symbol
 * of that name that is not an IFUNC (an IFUNC's address depends on the CPU: left to dlvsym).
 * Without a libc that has a build-id, it writes a table with nothing baked (id_len 0): the
 * shim then always walks.  Usage: libcsyms OUT.h
 */
#include <dlfcn.h>
#include <elf.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sys.h"
#include "symres.h"

#define G_SYM(name, ret, params, args, need, fault) EPH_SYS_SYM_ENTRY(struct sys_table, name, need)
static const struct eph_sys_sym g_syms[] = {SHIM_SYSCALLS(G_SYM)};
#define G_NAME(name, ret, params, args, need, fault) " " #name
enum { N = sizeof g_syms / sizeof g_syms[0] };

struct libc_info {
    struct dl_phdr_info info;
    int found;
};

static int find_libc(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct libc_info *l = arg;
    uintptr_t x = (uintptr_t)gnu_get_libc_version;
    for (ElfW(Half) k = 0; k < info->dlpi_phnum; k++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[k];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && x >= lo && x - lo < ph->p_memsz) {
            l->info = *info;
            l->found = 1;
            return 1;
        }
    }
    return 0;
}

/* A symbol of this name, defined at this offset, that is not an IFUNC: libc's dynamic symbols, one by one. */
static int plain_definition(const struct dl_phdr_info *info, const char *name, uintptr_t off)
{
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const uint32_t *gh = NULL;
    for (ElfW(Half) k = 0; k < info->dlpi_phnum; k++) {
        if (info->dlpi_phdr[k].p_type != PT_DYNAMIC)
            continue;
        for (const ElfW(Dyn) *d = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[k].p_vaddr); d->d_tag != DT_NULL;
             d++) {
            uintptr_t p = d->d_un.d_ptr < info->dlpi_addr ? d->d_un.d_ptr + info->dlpi_addr : d->d_un.d_ptr;
            if (d->d_tag == DT_SYMTAB)
                symtab = (const ElfW(Sym) *)p;
            else if (d->d_tag == DT_STRTAB)
                strtab = (const char *)p;
            else if (d->d_tag == DT_GNU_HASH)
                gh = (const uint32_t *)p;
        }
    }
    if (!symtab || !strtab || !gh)
        return 0;
    /* The symbol count: past the last bucket's chain (the GNU hash table has no count of its own). */
    uint32_t nbuckets = gh[0], symoffset = gh[1], bloom_size = gh[2];
    const uint32_t *buckets = gh + 4 + bloom_size * (sizeof(ElfW(Addr)) / 4), *chain = buckets + nbuckets;
    uint32_t last = 0;
    for (uint32_t b = 0; b < nbuckets; b++)
        if (buckets[b] > last)
            last = buckets[b];
    if (last >= symoffset)
        while (!(chain[last - symoffset] & 1))
            last++;
    for (uint32_t i = 0; i <= last; i++) {
        const ElfW(Sym) *s = &symtab[i];
        if (s->st_shndx != SHN_UNDEF && s->st_value == off && strcmp(strtab + s->st_name, name) == 0 &&
            ELF64_ST_TYPE(s->st_info) != STT_GNU_IFUNC && ELF64_ST_TYPE(s->st_info) != STT_TLS)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: libcsyms OUT.h\n");
        return 2;
    }
    struct libc_info l = {0};
    dl_iterate_phdr(find_libc, &l);
    const unsigned char *id = NULL;
    size_t id_len = l.found ? symres_build_id(&l.info, &id) : 0;
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (!libc || id_len > 64)
        id_len = 0;
    uint64_t value[N];
    unsigned char state[N];
    for (size_t i = 0; i < N; i++) {
        value[i] = 0;
        state[i] = SYMRES_UNDECIDED;
        if (!id_len)
            continue;
        void *p = NULL;
        if (!g_syms[i].version) {
            state[i] = (unsigned char)symres_lookup_in(&l.info, g_syms[i].name, &p);
            if (state[i] == SYMRES_FOUND)
                value[i] = (uintptr_t)p - l.info.dlpi_addr;
            continue;
        }
        p = dlvsym(libc, g_syms[i].name, g_syms[i].version);
        Dl_info di;
        if (p && dladdr(p, &di) && (uintptr_t)di.dli_fbase == l.info.dlpi_addr &&
            plain_definition(&l.info, g_syms[i].name, (uintptr_t)p - l.info.dlpi_addr)) {
            state[i] = SYMRES_FOUND;
            value[i] = (uintptr_t)p - l.info.dlpi_addr;
        }
    }

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        perror(tmp);
        return 1;
    }
    fprintf(f, "/* build/gen/libcsyms.h: written by shim/gen/libcsyms.c for %s (glibc %s); do not edit. */\n",
            l.found && l.info.dlpi_name ? l.info.dlpi_name : "no libc", gnu_get_libc_version());
    fprintf(f, "#define LIBCSYMS_N %zu\n#define LIBCSYMS_NAMES \"%s\"\n", (size_t)N, "" SHIM_SYSCALLS(G_NAME));
    fprintf(f, "#define LIBCSYMS_ID_LEN %zu\nstatic const unsigned char libcsyms_id[] = {", id_len);
    for (size_t i = 0; i < id_len; i++)
        fprintf(f, "%s0x%02x", i ? ", " : "", id[i]);
    fprintf(f, "%s};\n", id_len ? "" : "0");
    fprintf(f, "#define LIBCSYMS_ANCHOR 0x%llxu\n",
            id_len ? (unsigned long long)((uintptr_t)gnu_get_libc_version - l.info.dlpi_addr) : 0ull);
    fprintf(f, "static const char libcsyms_strs[] =");
    for (size_t i = 0; i < N; i++)
        fprintf(f, "%s\"%s\\0\"", i % 8 ? " " : "\n    ", g_syms[i].name);
    fprintf(f, ";\nstatic const uint16_t libcsyms_name[LIBCSYMS_N] = {");
    size_t off = 0;
    for (size_t i = 0; i < N; i++) {
        fprintf(f, "%s%zu", i % 12 ? ", " : (i ? ",\n    " : "\n    "), off);
        off += strlen(g_syms[i].name) + 1;
    }
    fprintf(f, "};\nstatic const unsigned char libcsyms_versioned[LIBCSYMS_N] = {");
    for (size_t i = 0; i < N; i++)
        fprintf(f, "%s%d", i % 20 ? ", " : (i ? ",\n    " : "\n    "), g_syms[i].version != NULL);
    fprintf(f, "};\n");
    fprintf(f, "static const uint32_t libcsyms_hash[LIBCSYMS_N] = {");
    for (size_t i = 0; i < N; i++)
        fprintf(f, "%s0x%08xu", i % 6 ? ", " : (i ? ",\n    " : "\n    "), symres_gnu_hash(g_syms[i].name));
    fprintf(f, "};\nstatic const uint64_t libcsyms_value[LIBCSYMS_N] = {");
    for (size_t i = 0; i < N; i++)
        fprintf(f, "%s0x%llx", i % 6 ? ", " : (i ? ",\n    " : "\n    "), (unsigned long long)value[i]);
    fprintf(f, "};\nstatic const unsigned char libcsyms_state[LIBCSYMS_N] = {");
    for (size_t i = 0; i < N; i++)
        fprintf(f, "%s%u", i % 20 ? ", " : (i ? ",\n    " : "\n    "), state[i]);
    fprintf(f, "};\n\n/* The table as symres_next_baked takes it: built by code, so nothing to relocate. */\n"
               "static inline struct symres_bake libcsyms_bake(void)\n{\n"
               "    return (struct symres_bake){.n = LIBCSYMS_N, .id_len = LIBCSYMS_ID_LEN, .id = libcsyms_id,\n"
               "                                .anchor = LIBCSYMS_ANCHOR, .strs = libcsyms_strs,\n"
               "                                .name_off = libcsyms_name, .versioned = libcsyms_versioned,\n"
               "                                .hash = libcsyms_hash,\n"
               "                                .value = libcsyms_value, .state = libcsyms_state};\n}\n");
    if (fclose(f) != 0 || rename(tmp, argv[1]) != 0) {
        perror(argv[1]);
        return 1;
    }
    return 0;
}
