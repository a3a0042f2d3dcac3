/*
 * The pages of the shim's zero-initialised data (.bss, .lbss) that a process touches, counted
 * (docs/ARCHITECTURE.md, "The shim's pages in every process (branch shimload)").  Every shimmed
 * process pays a page fault for each one it touches, 13-17 µs on a shadow-paging VM, and a compile
 * is four or five processes.  The shimmed child does what gcc's driver does to the shim's caches:
 * names files in more distinct disk directories under the root than the caches have entries (the
 * canonical-directory cache and the stat cache fill and wrap), realpath of an in-memory file, an
 * fopen of one, a stat of each directory, and opens of names missing in as many directories outside
 * the root (cc1's include search); then it asks the kernel (mincore) which pages of the
 * library's zero-initialised data are mapped.  Before the caches kept their keys apart, a miss read
 * every entry's length, one per page, and the small variables lay between the large arrays: 20
 * pages of 25 here.  The bound below leaves room for a few more small variables.
 * SHIMPAGES_SHOW=1 lists the pages (offsets in the library, in pages) and whether each is mapped.
 *
 * A count, not a time: the same on a loaded machine.  The shim is the production build, plain and
 * under ASan (its runtime does not change the library's layout).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

#define NDIRS 24    /* more than the caches' 16 entries */
#define MAX_PAGES 11 /* 8 of 13 measured (branch shimload); 20 of 25 before */

struct span {
    uintptr_t base;
    uintptr_t lo, hi; /* the zero-initialised part of the writable segment */
};

static int find_bss(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct span *s = arg;
    if (info->dlpi_addr != s->base)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_LOAD && (p->p_flags & PF_W) && p->p_memsz > p->p_filesz) {
            long pg = sysconf(_SC_PAGESIZE);
            s->lo = (info->dlpi_addr + p->p_vaddr + p->p_filesz + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
            s->hi = (info->dlpi_addr + p->p_vaddr + p->p_memsz + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
            return 1;
        }
    }
    return 0;
}

/* Mapped pages of the shim's zero-initialised data, or -1; *total: the pages it spans. */
static int bss_pages(int *total)
{
    void *shim_realpath = dlsym(RTLD_DEFAULT, "realpath"); /* preloaded: the shim's */
    Dl_info di;
    if (!shim_realpath || !dladdr(shim_realpath, &di) || !strstr(di.dli_fname, "libephemera"))
        return -1;
    struct span s = {(uintptr_t)di.dli_fbase, 0, 0};
    if (!dl_iterate_phdr(find_bss, &s) || s.hi <= s.lo)
        return -1;
    long pg = sysconf(_SC_PAGESIZE);
    size_t n = (s.hi - s.lo) / (size_t)pg;
    unsigned char *vec = malloc(n);
    if (!vec || mincore((void *)s.lo, s.hi - s.lo, vec) != 0) {
        free(vec);
        return -1;
    }
    int in = 0;
    for (size_t i = 0; i < n; i++)
        in += vec[i] & 1;
    if (getenv("SHIMPAGES_SHOW"))
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "page %#lx %d\n", (unsigned long)(s.lo - s.base) / (unsigned long)pg + i, vec[i] & 1);
    free(vec);
    *total = (int)n;
    return in;
}

static int child_main(const char *root, const char *disk)
{
    int (*real_mkdir)(const char *, mode_t) = (int (*)(const char *, mode_t))libc_sym("mkdir");
    CHECK(real_mkdir != NULL, "libc's mkdir");
    char path[PATH_MAX], out[PATH_MAX];
    for (int i = 0; i < NDIRS; i++) {
        /* Disk directories (made by libc itself): names in them are canonicalised by a kernel walk. */
        snprintf(path, sizeof path, "%s/d%02d", root, i);
        CHECK(real_mkdir(path, 0755) == 0, "mkdir %s on disk", path);
    }
    for (int i = 0; i < NDIRS; i++) {
        snprintf(path, sizeof path, "%s/d%02d/f.c", root, i);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL, "fopen %s", path);
        if (f) {
            fputs("int x;\n", f);
            fclose(f);
        }
        struct stat st;
        snprintf(path, sizeof path, "%s/d%02d", root, i);
        CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "stat %s", path);
        snprintf(path, sizeof path, "%s/d%02d/./f.c", root, i);
        CHECK(realpath(path, out) != NULL, "realpath %s", path);
        snprintf(path, sizeof path, "%s/d%02d/f.c", root, i);
        CHECK(strcmp(out, path) == 0, "realpath gave %s for %s", out, path);
    }
    /* cc1 looks for each header in every include directory (outside the roots): a name missing
     * outside every root is looked for under a root spelled through a symlink (paths.c,
     * path_alias), and its directory kept in the canonical-directory cache.  Twice: hits too. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < NDIRS; i++) {
            snprintf(path, sizeof path, "%s/i%02d", disk, i);
            CHECK(pass == 1 || mkdir(path, 0755) == 0, "mkdir %s", path);
            snprintf(path, sizeof path, "%s/i%02d/missing.h", disk, i);
            CHECK(open(path, O_RDONLY) < 0 && errno == ENOENT, "open %s: ENOENT", path);
        }
    int total = 0, in = bss_pages(&total);
    CHECK(in >= 0, "the shim's zero-initialised data found");
    printf("shimpages: %d of the shim's %d zero-initialised data pages mapped (at most %d expected)\n", in, total,
           MAX_PAGES);
    CHECK(in <= MAX_PAGES, "%d pages of the shim's zero-initialised data touched, more than %d", in, MAX_PAGES);
    return failures != 0;
}

int main(int argc, char **argv)
{
    return shimmed_main(argc, argv, "shimpages", child_main);
}
