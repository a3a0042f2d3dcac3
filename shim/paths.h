/*
 * shim/paths.h - managed roots and path resolution (paths.c): which paths
 * the shim serves, and what the kernel's walk would make of them.
 */
#ifndef SHIM_PATHS_H
#define SHIM_PATHS_H

#include "ephemera/proto.h"

#include <stdint.h>

#include "compiler.h"

/*
 * A pointer no call may read: the zero page, or past the top of the user
 * address space (x86-64: 47 bits; (char *)-1, kernel addresses).  The kernel
 * answers EFAULT for these, so the wrappers pass them straight through rather
 * than read them.  (A user page mapped without read access is not caught:
 * telling it apart costs a system call per path.)
 */
static inline int path_bad_ptr(const void *p)
{
    return unlikely((uintptr_t)p < 4096 || (uintptr_t)p >= (1ull << 47));
}

void path_init(void);                   /* reads EPHEMERA_ROOTS and the cwd */
void path_set_cwd(const char *abs);     /* after a successful chdir */
/*
 * Resolve (dirfd, p) lexically.  Returns 1 if the result lies under a managed
 * root (out holds it, *trailing_slash tells whether p ended in '/'), 0 if not
 * managed (caller passes through), or -errno (ENAMETOOLONG: also pass through).
 */
int path_resolve(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing_slash);
/* Normalise (dirfd, p) to an absolute path whether managed or not: 1, 0 (cannot name it), -errno. */
int path_absolute(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing_slash);
/* The cheap pre-check: can p (relative to dirfd) possibly be managed?  0 for a bad pointer. */
int path_maybe_managed(int dirfd, const char *p);
int path_is_root(const char *abs);
/* The length of the shortest root (0: none).  Only names strictly below a root are in the region,
 * so a normalised path no longer than this (a root itself, or a directory above the roots) is not. */
size_t path_roots_shortest(void);
/* The length of the shortest root (not "/") that abs (absolute, normalised) is strictly below, 0 if
 * none: its proper ancestors are below no root, so nothing of them is in memory. */
size_t path_outer_root(const char *abs);
/*
 * On a namespace miss: resolve abs's parent through the kernel (symlinked
 * directories) and, if follow, a final symlink (which may name an in-memory
 * file).  1 changed and still managed, 0 unchanged, -1 now unmanaged.
 */
int path_canon(char abs[EPH_PATH_MAX], int follow);
/* Set by path_canon: 1 if, following, its final lstat found no entry at the
 * (canonical) abs it returned; the creator then needs no lstat of its own. */
extern SH_TLS int path_canon_absent;
/*
 * A name path_maybe_managed left to the kernel (paths.c): while anything is in memory, its directory
 * resolved by the kernel.  1 with out the canonical name under a root (a symlink outside the roots
 * led there: the managed call must make it), else 0.  For the calls that remove, move or create a
 * name (before the kernel's call) and the lookups (after its ENOENT).  errno is kept.
 */
int path_alias(int dirfd, const char *p, char out[EPH_PATH_MAX]);
/* In a vfork child, after its chdir or fchdir: notes whether names relative to its new working
 * directory may be in a root (the parent's cached one no longer answers for the child). */
void path_vfork_child_cwd(void);
/* Before a vfork, in the parent: the next child starts in the parent's working directory. */
void path_vfork_child_forget(void);
/* (dirfd, p) lies outside every root as spelled (from the cwd too: one that is an ancestor of a
 * root makes relative names "maybe managed"); a name relative to a directory fd counts as inside
 * while nothing is in memory, else by the fd's name (dc_fd_path).  For the callers of path_alias. */
int path_outside(int dirfd, const char *p);
/*
 * The two rules every by-path call follows for a name outside the roots as spelled (path_outside)
 * that a symlink outside them may lead under one (path_alias); one place, so that each call is a
 * line.  A lookup or a change of an existing name asks after the kernel's ENOENT, its answer for a
 * name that lives only in memory: path_alias_after(r, ...) is 1 with canon the canonical name when
 * r failed so and the name is under a root (the call is made again as a managed one).  A call that
 * makes a name, or whose kernel answer would be wrong without failing (a watch, an exec, a library
 * moved to disk first), asks before: path_alias_name gives canon (and *dirfd AT_FDCWD) when the
 * name is under a root, else p.  Both cost nothing while nothing is in memory.
 */
int path_alias_after(long r, int dirfd, const char *p, char canon[EPH_PATH_MAX]);
const char *path_alias_name(int *dirfd, const char *p, char canon[EPH_PATH_MAX]);
/* Anything in memory that a name outside the roots might reach (no call; see path_alias). */
int path_alias_on(void);
/* A directory fd the kernel opened from such a name: 1 with its canonical name when it is under a
 * root (its listing must merge the names in memory), else 0.  errno is kept. */
int path_alias_dir(int fd, int dirfd, const char *p, char out[EPH_PATH_MAX]);
/* For a path with "..": the error the kernel's physical walk gives (0, -ENOTDIR, -ENOENT...). */
int path_dotdot_error(int dirfd, const char *p);
int path_physical_error(int dirfd, const char *p);      /* abs is exactly a managed root */

#endif
