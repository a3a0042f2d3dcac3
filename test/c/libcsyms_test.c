/*
 * The shim's start reads none of libc's symbol tables when libc is the one the shim was built
 * against (docs/ARCHITECTURE.md, "The table of real calls from the build's libc (branch
 * symtab)").  Before, the constructor's one walk over libc's GNU hash table, symbols, names and
 * versions for its ~136 real calls was 45k of the 78k instructions the shim added to every
 * process (callgrind of /bin/true); now libc's answers come from build/gen/libcsyms.h.
 *
 * How it is seen, as a count: this program re-runs itself with the shim preloaded (no daemon: the
 * constructor's work needs none) and LD_BIND_NOW=1 (the loader binds every call before any
 * constructor, so later lazy binding reads nothing).  Its .preinit_array function, which runs
 * before every library's constructor, makes libc's pages from .gnu.hash to the end of
 * .gnu.version unreadable and counts, in a SIGSEGV handler that gives each page back, the pages
 * read until main.  With the shim: 0 pages (on main: the walk read 20 or more).  Controls: without
 * the shim, 0; and the probe does see a read: a dlsym of a libc name in main counts pages.
 * Under ASan the sanitizer's start (the first entry of the same .preinit_array) already calls into
 * the shim, whose table is then filled before the probe is armed: there the count with the shim
 * must only be no more than without it, and the plain run is the test.
 */
#include <dlfcn.h>
#include <elf.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define PG 4096u
static uintptr_t probe_lo, probe_hi;
static volatile sig_atomic_t probe_pages;

static void probe_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    uintptr_t a = (uintptr_t)si->si_addr;
    if (a >= probe_lo && a < probe_hi) {
        probe_pages++;
        mprotect((void *)(a & ~(uintptr_t)(PG - 1)), PG, PROT_READ);
        return;
    }
    signal(sig, SIG_DFL); /* anything else: fault again and die */
}

static int find_libc(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    uintptr_t x = (uintptr_t)gnu_get_libc_version;
    for (int k = 0; k < info->dlpi_phnum; k++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[k];
        if (ph->p_type == PT_LOAD && x >= info->dlpi_addr + ph->p_vaddr && x - info->dlpi_addr - ph->p_vaddr < ph->p_memsz) {
            *(struct dl_phdr_info *)arg = *info;
            return 1;
        }
    }
    return 0;
}

/* libc's symbol tables: from .gnu.hash to the end of .dynsym, .dynstr and .gnu.version, in whole pages. */
static int libc_tables(uintptr_t *lo, uintptr_t *hi)
{
    struct dl_phdr_info l = {0};
    if (!dl_iterate_phdr(find_libc, &l))
        return -1;
    uintptr_t gh = 0, sym = 0, str = 0, strsz = 0, ver = 0;
    for (int k = 0; k < l.dlpi_phnum; k++) {
        if (l.dlpi_phdr[k].p_type != PT_DYNAMIC)
            continue;
        for (const ElfW(Dyn) *d = (const ElfW(Dyn) *)(l.dlpi_addr + l.dlpi_phdr[k].p_vaddr); d->d_tag != DT_NULL; d++) {
            uintptr_t p = d->d_un.d_ptr < l.dlpi_addr ? d->d_un.d_ptr + l.dlpi_addr : d->d_un.d_ptr;
            if (d->d_tag == DT_GNU_HASH)
                gh = p;
            else if (d->d_tag == DT_SYMTAB)
                sym = p;
            else if (d->d_tag == DT_STRTAB)
                str = p;
            else if (d->d_tag == DT_STRSZ)
                strsz = d->d_un.d_val;
            else if (d->d_tag == DT_VERSYM)
                ver = p;
        }
    }
    if (!gh || !sym || !str || !ver)
        return -1;
    const uint32_t *h = (const uint32_t *)gh;
    uint32_t nb = h[0], symoff = h[1], bloom = h[2], last = 0;
    const uint32_t *buckets = h + 4 + bloom * (sizeof(ElfW(Addr)) / 4), *chain = buckets + nb;
    for (uint32_t b = 0; b < nb; b++)
        last = buckets[b] > last ? buckets[b] : last;
    if (last >= symoff)
        while (!(chain[last - symoff] & 1))
            last++;
    uintptr_t start = gh < sym ? gh : sym, end = sym + (last + 1) * sizeof(ElfW(Sym));
    start = str < start ? str : start;
    start = ver < start ? ver : start;
    end = str + strsz > end ? str + strsz : end;
    end = ver + (last + 1) * 2 > end ? ver + (last + 1) * 2 : end;
    *lo = (start + PG - 1) & ~(uintptr_t)(PG - 1); /* a page shared with the ELF header and notes stays readable */
    *hi = (end + PG - 1) & ~(uintptr_t)(PG - 1);
    return 0;
}

/* Before every library's constructor (the shim's included): arm the probe in the child. */
static void probe_arm(int argc, char **argv, char **envp)
{
    (void)envp;
    if (argc != 2 || strcmp(argv[1], "--child") != 0 || libc_tables(&probe_lo, &probe_hi) != 0)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = probe_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    if (mprotect((void *)probe_lo, probe_hi - probe_lo, PROT_NONE) != 0)
        probe_lo = probe_hi = 0;
}
__attribute__((section(".preinit_array"), used)) static void (*const probe_preinit)(int, char **, char **) = probe_arm;

/* The child: how many pages were read before main, then a control read. */
static int child(void)
{
    int before = probe_pages;
    if (probe_lo == probe_hi) {
        printf("-1 -1\n");
        return 0;
    }
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    void *p = libc ? dlsym(libc, "renameat2") : NULL;
    int after = probe_pages;
    mprotect((void *)probe_lo, probe_hi - probe_lo, PROT_READ);
    printf("%d %d %d\n", before, after - before, p != NULL);
    return 0;
}

/* Run the child with or without the shim; its counts: pages read before main, pages read by the control. */
static int run_child(const char *shim, int *before, int *control)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t c = fork();
    if (c == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        if (shim)
            setenv("LD_PRELOAD", shim, 1);
        else
            unsetenv("LD_PRELOAD");
        setenv("LD_BIND_NOW", "1", 1);
        unsetenv("EPHEMERA_SOCK");
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[512];
        snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", asan ? asan : "", asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        execl("/proc/self/exe", "libcsyms_test", "--child", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[128] = {0};
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    int st = 0, found = 0;
    waitpid(c, &st, 0);
    if (n <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || sscanf(buf, "%d %d %d", before, control, &found) != 3) {
        fprintf(stderr, "child (%s): status %#x, said '%s'\n", shim ? shim : "no shim", st, buf);
        return -1;
    }
    return found ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--child") == 0)
        return child();
    const char *shim = getenv("EPHEMERA_SHIM") ? getenv("EPHEMERA_SHIM") : "build/libephemera.so";
    int plain_before = -1, plain_control = -1, shim_before = -1, shim_control = -1;
    CHECK(run_child(NULL, &plain_before, &plain_control) == 0, "the child without the shim failed");
    CHECK(run_child(shim, &shim_before, &shim_control) == 0, "the child with the shim failed");
    CHECK(plain_before >= 0, "the probe could not protect libc's symbol tables");
    CHECK(plain_control > 0, "the probe saw no read of a dlsym (%d)", plain_control);
#ifdef __SANITIZE_ADDRESS__
    CHECK(shim_before <= plain_before, "the shim's start read %d pages of libc's symbol tables, %d without it",
          shim_before, plain_before);
#else
    CHECK(plain_before == 0, "without the shim, %d pages of libc's symbol tables were read before main", plain_before);
    CHECK(shim_before == 0, "the shim's start read %d pages of libc's symbol tables", shim_before);
#endif
    printf("libcsyms: pages of libc's symbol tables read before main: %d with the shim, %d without; a dlsym: %d; "
           "%d checks, %d failures\n",
           shim_before, plain_before, plain_control, checks, failures);
    return failures != 0;
}
