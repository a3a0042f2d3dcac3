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

#endif
