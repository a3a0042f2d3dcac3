/*
 * `ephemera run`'s command line as the launcher reads it (pure: no I/O).
 *
 * The TypeScript CLI (src/cli/run.ts, src/cli/flags.ts, src/core/size.ts) is the reference: the
 * launcher accepts only command lines that it reads exactly the same way, and for everything else
 * (any mistake, --memory, --help, a value it would have to guess about) says why and leaves the
 * run to Node, so every message about a bad command line is the TypeScript one.
 */
#ifndef EPHEMERA_LAUNCHER_ARGS_H
#define EPHEMERA_LAUNCHER_ARGS_H

#include <stdbool.h>
#include <stddef.h>

struct run_opts {
    char **roots;            /* absolute, normalised, duplicates dropped; malloc'd */
    size_t nroots;
    long long budget, headroom; /* -1 when not given */
    char *stats_file;        /* absolute, or NULL; malloc'd */
    char *log_file;          /* absolute, or NULL; malloc'd */
    bool discard;
    char **command;          /* points into argv; NULL-terminated there */
    int ncommand;
};

/* Read the arguments after `run`.  NULL when the launcher can run them natively (o filled in;
 * free it with args_free), otherwise a short reason for handing them to Node (o is then empty).
 * `cwd` resolves relative paths as path.resolve does. */
const char *args_parse(int argc, char **argv, const char *cwd, struct run_opts *o);
void args_free(struct run_opts *o);

/* parseSize: bytes, or -1 when the text is not a size the launcher reads as Node does. */
long long args_size(const char *text);
/* path.resolve(cwd, p): absolute, no `.`, `..`, empty or trailing components.  malloc'd. */
char *args_resolve(const char *cwd, const char *p);
/* Whether `path` is `root` or inside it, as run.ts's isUnder (both absolute and normalised). */
bool args_under(const char *path, const char *root);

#endif
