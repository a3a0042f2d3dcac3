/*
 * Which commands can wait for the daemon inside the shim (include/ephemera/gate.h): those that
 * will surely run the shim's constructor.
 */
#ifndef EPHEMERA_LAUNCHER_GATE_H
#define EPHEMERA_LAUNCHER_GATE_H

#include <stdbool.h>
#include <stddef.h>

/* From the first bytes of an ELF file (n of them): true when it is a 64-bit program of this
 * machine that glibc's dynamic loader starts (its PT_INTERP names it).  Pure. */
bool gate_elf_loads_shim(const unsigned char *buf, size_t n);

/* True when exec'ing `path` surely runs the shim's constructor: a program gate_elf_loads_shim
 * accepts, or a `#!` script whose interpreter is one, and neither set-id nor with file
 * capabilities (a secure exec ignores LD_PRELOAD).  Anything else (a static, 32-bit or musl
 * program, a script of a script, a file we cannot read) keeps the wait in the launcher's child. */
bool gate_possible(const char *path);

#endif
