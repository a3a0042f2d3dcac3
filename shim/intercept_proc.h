/*
 * shim/intercept_proc.h - what fork/exec (intercept_proc.c) offers the other modules.
 */
#ifndef SHIM_INTERCEPT_PROC_H
#define SHIM_INTERCEPT_PROC_H

void proc_init_inherited(void);         /* EPHEMERA_FDMAP and std streams at start */

#endif
