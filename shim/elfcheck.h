/*
 * shim/elfcheck.h - exec target checks (elfcheck.c).  Pure, unit-tested
 * standalone under ASan/UBSan (test/c/shim_elf_test.c).
 */
#ifndef SHIM_ELFCHECK_H
#define SHIM_ELFCHECK_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Exec target classification from the first bytes of a file.
 *   ELF_DYNAMIC   - ELF with PT_INTERP: the dynamic loader will honour LD_PRELOAD
 *   ELF_STATIC    - ELF without PT_INTERP: cannot load the shim
 *   ELF_SCRIPT    - starts with "#!": *interp gets the interpreter path
 *   ELF_UNKNOWN   - anything else (the kernel will refuse or run it via sh)
 */
enum { ELF_UNKNOWN = 0, ELF_DYNAMIC = 1, ELF_STATIC = 2, ELF_SCRIPT = 3 };
int elf_classify(const unsigned char *buf, size_t n, char *interp, size_t interpsz);

/*
 * The dynamic section of a 64-bit ELF object read through rd (pread-like):
 * its DT_NEEDED names into needed as consecutive NUL-terminated strings ended
 * by an empty one, DT_RPATH and DT_RUNPATH into rpath and runpath ("" if
 * absent).  Returns the number of names, 0 for an object without a dynamic
 * section, -1 if it is not a readable 64-bit ELF object.
 */
typedef ssize_t (*elf_pread_fn)(int fd, void *buf, size_t n, off_t off);
int elf_dynamic(int fd, elf_pread_fn rd, char *needed, size_t needsz, char *rpath, size_t rpsz, char *runpath,
                size_t rusz);

#endif
