/*
 * shim/vforkchild.h - "this code runs in a vfork child" (intercept_proc.c serves vfork as
 * vfork when that is safe; docs/ARCHITECTURE.md, "vfork served as vfork").
 *
 * A vfork child runs in its parent's memory, on the stack and the thread-local storage of the
 * parent thread that called vfork, while that thread waits for the exec or the exit.  So the mark
 * is a thread-local word, set by that thread just before the vfork system call and cleared by it
 * when the call returns: the child sees it set, every other thread of the parent sees its own
 * word, clear.  In the child the shim's tables describe the parent's fds, not the child's, and
 * nothing of the shim's per-process state may change: each wrapper the child reaches steps aside
 * (the kernel's call), the fd table reads "not ours", and a path in a root is first put on disk
 * whole (MATERIALISE_ALL over a connection of the child's own), so that the kernel's answer is
 * the file system's.
 */
#ifndef SHIM_VFORKCHILD_H
#define SHIM_VFORKCHILD_H

#include "compiler.h"

extern SH_TLS int sh_vfork_mark;     /* init.c */

static inline int sh_vfork_child(void)
{
    return unlikely(sh_vfork_mark != 0);
}

/* In a vfork child: have the daemon put every in-memory file and directory on disk (once per
 * child), so that the kernel serves the child's calls on paths in a root as the shim would. */
void vfork_child_materialise(void);   /* rpc.c */
/* In a vfork child, a chdir the kernel answered ENOENT: its in-memory directories get disk twins
 * (or, for a name with "..", everything goes to disk); 1 when the kernel should be asked again. */
int vfork_child_twin(const char *path); /* rpc.c */
void vfork_child_forget(void);        /* before a vfork: a pid noted by an earlier child is stale */

#endif
