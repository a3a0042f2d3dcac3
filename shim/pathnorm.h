/*
 * shim/pathnorm.h - pure helpers for lexical path handling and for deciding
 * whether an exec target can load the shim.  No libc state, no syscalls:
 * unit-tested standalone under ASan/UBSan (test/c/shim_paths_test.c,
 * test/c/shim_elf_test.c).
 */
#ifndef SHIM_PATHNORM_H
#define SHIM_PATHNORM_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Join base (absolute, already normal) with p and normalise lexically: no
 * "//", no "." and ".." components (".." at "/" stays "/"), no trailing '/'.
 * If p is absolute, base is ignored.  *trailing (may be NULL) is set when p
 * ends in '/' or "/." or "/..", which makes the kernel demand a directory.
 * Returns the length of out, or -1 if the result does not fit in outsz.
 */
int pn_normalize(const char *base, const char *p, char *out, size_t outsz, int *trailing);

/* 1 if path is root or lies below it (root normalised; "/" covers everything). */
int pn_under(const char *path, const char *root, size_t rootlen);

/* 1 if path's parent directory is exactly dir (both normalised). */
int pn_parent_is(const char *path, const char *dir, size_t dirlen);

/* 1 if dir is an ancestor of (or equal to) root, so relative names from dir may reach it. */
int pn_is_ancestor(const char *dir, const char *root);

/* 1 if p contains a ".." component. */
int pn_has_dotdot(const char *p);

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
