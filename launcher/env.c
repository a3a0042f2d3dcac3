/* The command's environment: see env.h. */
#include "env.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ephemera/gate.h"

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        abort();
    return d;
}

/* JavaScript's /[:\s]+/ for the separators that can appear in a path list. */
static bool separator(char c)
{
    return c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

char *env_preload_with(const char *lib, const char *existing)
{
    if (existing == NULL)
        existing = "";
    size_t ll = strlen(lib), n = ll + strlen(existing) + 2;
    char *out = malloc(n);
    if (out == NULL)
        abort();
    memcpy(out, lib, ll + 1);
    size_t len = ll;
    const char *p = existing;
    while (*p) {
        while (*p && separator(*p))
            p++;
        const char *start = p;
        while (*p && !separator(*p))
            p++;
        size_t wl = (size_t)(p - start);
        if (wl == 0 || (wl == ll && memcmp(start, lib, ll) == 0))
            continue;
        out[len++] = ':';
        memcpy(out + len, start, wl);
        len += wl;
        out[len] = '\0';
    }
    return out;
}

static char *pair(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *s = malloc(n);
    if (s == NULL)
        abort();
    snprintf(s, n, "%s=%s", name, value);
    return s;
}

static bool named(const char *entry, const char *name)
{
    size_t nl = strlen(name);
    return strncmp(entry, name, nl) == 0 && entry[nl] == '=';
}

char **env_for_command(char *const *base, const char *lib, const char *rundir, char *const *roots, size_t nroots,
                       const char *log)
{
    size_t nbase = 0, rl = 0;
    while (base[nbase] != NULL)
        nbase++;
    for (size_t i = 0; i < nroots; i++)
        rl += strlen(roots[i]) + 1;
    char *rootlist = calloc(1, rl + 1);
    char *sock = malloc(strlen(rundir) + sizeof "/shim.sock");
    if (rootlist == NULL || sock == NULL)
        abort();
    for (size_t i = 0; i < nroots; i++) {
        if (i)
            strcat(rootlist, ":");
        strcat(rootlist, roots[i]);
    }
    strcpy(sock, rundir);
    strcat(sock, "/shim.sock");
    const char *preload_old = NULL;
    for (size_t i = 0; i < nbase; i++)
        if (named(base[i], "LD_PRELOAD"))
            preload_old = base[i] + sizeof "LD_PRELOAD";
    char *preload = env_preload_with(lib, preload_old);

    const char *names[] = {"LD_PRELOAD", "EPHEMERA_SOCK", "EPHEMERA_ROOTS", "EPHEMERA_LIB", "EPHEMERA_LOG"};
    const char *values[] = {preload, sock, rootlist, lib, log};
    bool placed[5] = {false};
    char **env = malloc(sizeof *env * (nbase + 6));
    if (env == NULL)
        abort();
    size_t n = 0;
    for (size_t i = 0; i < nbase; i++) {
        /* the shim's own hand-overs across exec, about the run that started us, not this one */
        if (strchr(base[i], '=') == NULL || named(base[i], "EPHEMERA_FDMAP") || named(base[i], "EPHEMERA_REGION") ||
            named(base[i], EPH_GATE_ENV))
            continue;
        int k = -1;
        for (int j = 0; j < 5; j++)
            if (named(base[i], names[j]))
                k = j;
        if (k < 0)
            env[n++] = xstrdup(base[i]);
        else if (!placed[k] && values[k] != NULL) {
            env[n++] = pair(names[k], values[k]);
            placed[k] = true;
        } else
            placed[k] = true; /* a repeated name, or EPHEMERA_LOG without a log: dropped */
    }
    for (int j = 0; j < 5; j++)
        if (!placed[j] && values[j] != NULL)
            env[n++] = pair(names[j], values[j]);
    env[n] = NULL;
    free(preload);
    free(sock);
    free(rootlist);
    return env;
}

char **env_add(char **env, const char *entry)
{
    size_t n = 0;
    while (env[n] != NULL)
        n++;
    char **out = realloc(env, sizeof *out * (n + 2));
    if (out == NULL)
        abort();
    out[n] = xstrdup(entry);
    out[n + 1] = NULL;
    return out;
}

void env_free(char **env)
{
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        free(env[i]);
    free(env);
}
