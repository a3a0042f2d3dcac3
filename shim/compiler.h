/*
 * shim/compiler.h - the few compiler annotations every shim module uses.
 */
#ifndef SHIM_COMPILER_H
#define SHIM_COMPILER_H

/* Nothing leaves libephemera.so but what is marked so (and listed in shim/exports.map). */
#define SH_EXPORT __attribute__((visibility("default")))
/* On the declaration of a variable of ours that a fast path reads: the compiler then addresses it
 * from %rip itself, as it does a definition under -fvisibility=hidden, not through the GOT. */
#define SH_HIDDEN __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/*
 * Our thread-locals use the initial-exec model: the library is loaded at
 * start-up (LD_PRELOAD), so they live in static TLS and an access is one
 * %fs-relative load, where the default model for a shared library calls
 * __tls_get_addr on every read and write of the fast path.
 */
#define SH_TLS __thread __attribute__((tls_model("initial-exec")))

/*
 * On a zero-initialised array that most processes never touch, or touch a page of: it goes to
 * .lbss, which the x86-64 linker script places after all of .bss, so that the small variables
 * every shimmed process writes share two or three pages instead of lying between the arrays (each
 * first touch of a page is a page fault, 13-17 µs on a shadow-paging VM: "The shim's pages in
 * every process (branch shimload)" in docs/ARCHITECTURE.md).  Elsewhere an ordinary variable.
 */
/*
 * On a function every process runs at start (the constructor's path): it goes to .text.startup,
 * which the linker puts at the head of .text beside the constructors, .init and the PLT, so that
 * the start faults in one window of code (the kernel maps up to 16 pages around a faulting one)
 * instead of one window per place the functions happened to land: four windows before (branch
 * symtab, docs/ARCHITECTURE.md).  Placement only.
 */
#define SH_START __attribute__((section(".text.startup")))

/*
 * On a small zero-initialised variable that every process writes at start: it goes to .data,
 * whose pages the loader writes anyway (relocations, the end of the file's part), instead of one
 * of the .bss pages it would otherwise be the only reason to fault in (branch symtab).
 */
#define SH_STARTDATA __attribute__((section(".data")))

#if defined(__x86_64__)
#define SH_COLD __attribute__((section(".lbss")))
#else
#define SH_COLD
#endif

#endif
