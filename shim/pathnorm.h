/*
 * shim/pathnorm.h - pure helpers for lexical path handling (pathnorm.c).  No
 * libc state, no syscalls: unit-tested standalone under ASan/UBSan
 * (test/c/shim_paths_test.c).
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

#endif
