/*
 * The command's environment: the contract of docs/ARCHITECTURE.md ("Environment contract"), built
 * as run.ts's shimEnv builds it (pure: no I/O).
 */
#ifndef EPHEMERA_LAUNCHER_ENV_H
#define EPHEMERA_LAUNCHER_ENV_H

#include <stddef.h>

/* LD_PRELOAD with the shim first, keeping what the caller preloads, never twice.  malloc'd. */
char *env_preload_with(const char *lib, const char *existing);

/* The command's environment from `base` (an environ-style array): LD_PRELOAD, EPHEMERA_SOCK,
 * EPHEMERA_ROOTS and EPHEMERA_LIB set, EPHEMERA_FDMAP, EPHEMERA_REGION and EPHEMERA_START_GATE dropped, EPHEMERA_LOG set to `log` or dropped
 * when it is NULL.  Names already there keep their place; new ones follow in that order.  The
 * array and every string in it are malloc'd: free with env_free. */
char **env_for_command(char *const *base, const char *lib, const char *rundir, char *const *roots, size_t nroots,
                       const char *log);
/* env with `entry` ("NAME=value", copied) appended; env is reallocated. */
char **env_add(char **env, const char *entry);
void env_free(char **env);

#endif
