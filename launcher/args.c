/* `ephemera run`'s command line: see args.h. */
#include "args.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SAFE 9007199254740991.0 /* Number.MAX_SAFE_INTEGER */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

long long args_size(const char *text)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {
        {"", 1}, {"b", 1}, {"k", 1024.0}, {"kib", 1024.0}, {"kb", 1e3},
        {"m", 1048576.0}, {"mib", 1048576.0}, {"mb", 1e6}, {"g", 1073741824.0}, {"gib", 1073741824.0},
        {"gb", 1e9}, {"t", 1099511627776.0}, {"tib", 1099511627776.0}, {"tb", 1e12},
    };
    const char *p = text;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == text)
        return -1;
    bool fraction = false;
    if (*p == '.') {
        const char *f = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == f)
            return -1;
        fraction = true;
    }
    size_t digits = (size_t)(p - text);
    double mult = -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(p, units[i].unit) == 0)
            mult = units[i].mult;
    if (mult < 0 || (fraction && mult == 1))
        return -1;
    char *num = xmalloc(digits + 1);
    memcpy(num, text, digits);
    num[digits] = '\0';
    double bytes = strtod(num, NULL) * mult; /* Number(digits) * mult, then Math.floor */
    free(num);
    if (!(bytes <= MAX_SAFE))
        return -1;
    return (long long)bytes;
}

char *args_resolve(const char *cwd, const char *p)
{
    size_t n = strlen(cwd) + strlen(p) + 3;
    char *joined = xmalloc(n), *out = xmalloc(n);
    if (p[0] == '/')
        strcpy(joined, p);
    else {
        strcpy(joined, cwd);
        strcat(joined, "/");
        strcat(joined, p);
    }
    size_t len = 0;
    char *save = NULL;
    for (char *seg = strtok_r(joined, "/", &save); seg != NULL; seg = strtok_r(NULL, "/", &save)) {
        if (strcmp(seg, ".") == 0)
            continue;
        if (strcmp(seg, "..") == 0) {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        out[len++] = '/';
        size_t sl = strlen(seg);
        memcpy(out + len, seg, sl);
        len += sl;
    }
    if (len == 0)
        out[len++] = '/';
    out[len] = '\0';
    free(joined);
    return out;
}

bool args_under(const char *path, const char *root)
{
    size_t rl = strlen(root);
    if (strcmp(root, "/") == 0)
        return path[0] == '/' && strncmp(path + 1, "..", 2) != 0;
    if (strncmp(path, root, rl) != 0)
        return false;
    if (path[rl] == '\0')
        return true;
    /* path.relative(root, path) must not start with `..` (a child named `..x` counts as outside). */
    return path[rl] == '/' && strncmp(path + rl + 1, "..", 2) != 0;
}

enum flag { F_ROOT, F_BUDGET, F_MEMORY, F_HEADROOM, F_STATS, F_LOG, F_KEEP, F_DISCARD, F_COUNT };

static const struct {
    const char *name;
    bool value, repeatable;
} flags[F_COUNT] = {
    [F_ROOT] = {"root", true, true},     [F_BUDGET] = {"budget", true, false}, [F_MEMORY] = {"memory", true, false},
    [F_HEADROOM] = {"headroom", true, false}, [F_STATS] = {"stats", true, false}, [F_LOG] = {"log", true, false},
    [F_KEEP] = {"keep", false, false},   [F_DISCARD] = {"discard", false, false},
};

void args_free(struct run_opts *o)
{
    for (size_t i = 0; i < o->nroots; i++)
        free(o->roots[i]);
    free(o->roots);
    free(o->stats_file);
    free(o->log_file);
    memset(o, 0, sizeof *o);
    o->budget = o->headroom = -1;
}

static const char *fail(struct run_opts *o, const char *why)
{
    args_free(o);
    return why;
}

const char *args_parse(int argc, char **argv, const char *cwd, struct run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->budget = o->headroom = -1;
    const char *single[F_COUNT] = {0};
    int seen[F_COUNT] = {0};
    int rest = -1;
    o->roots = xmalloc(sizeof *o->roots * (size_t)(argc + 1));

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            rest = i + 1;
            break;
        }
        if (strncmp(arg, "--", 2) != 0)
            return fail(o, "an argument before `--` that is not a --flag");
        const char *eq = strchr(arg, '=');
        size_t nl = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        int f = -1;
        for (int k = 0; k < F_COUNT; k++)
            if (strlen(flags[k].name) == nl && strncmp(arg + 2, flags[k].name, nl) == 0)
                f = k;
        if (f < 0)
            return fail(o, "a flag the launcher does not know");
        const char *value = "";
        if (flags[f].value) {
            if (eq != NULL)
                value = eq + 1;
            else {
                if (i + 1 >= argc || strcmp(argv[i + 1], "--") == 0)
                    return fail(o, "a flag without its value");
                value = argv[++i];
            }
        } else if (eq != NULL)
            return fail(o, "a switch with a value");
        if (seen[f] && !flags[f].repeatable)
            return fail(o, "a flag given twice");
        seen[f]++;
        if (f == F_ROOT) {
            char *root = args_resolve(cwd, value);
            bool dup = false;
            for (size_t k = 0; k < o->nroots && !dup; k++)
                dup = strcmp(o->roots[k], root) == 0;
            if (strcmp(root, "/") == 0 || strchr(root, ':') != NULL) {
                free(root);
                return fail(o, "a --root that run.ts refuses");
            }
            if (dup)
                free(root);
            else
                o->roots[o->nroots++] = root;
        } else
            single[f] = value;
    }
    if (rest < 0)
        return fail(o, "no `--` before the command");
    if (rest >= argc || argv[rest][0] == '\0')
        return fail(o, "no command after `--`");
    if (seen[F_KEEP] && seen[F_DISCARD])
        return fail(o, "--keep and --discard together");
    if (seen[F_MEMORY])
        return fail(o, "--memory (a cgroup and the TypeScript watchdog)");
    if (o->nroots == 0)
        o->roots[o->nroots++] = args_resolve("/", "/tmp");
    if (single[F_BUDGET] != NULL && (o->budget = args_size(single[F_BUDGET])) < 0)
        return fail(o, "a --budget that is not a plain size");
    if (single[F_HEADROOM] != NULL && (o->headroom = args_size(single[F_HEADROOM])) < 0)
        return fail(o, "a --headroom that is not a plain size");
    for (int f = F_STATS; f <= F_LOG; f++) {
        if (single[f] == NULL)
            continue;
        if (single[f][0] == '\0')
            return fail(o, "an empty --stats or --log");
        *(f == F_STATS ? &o->stats_file : &o->log_file) = args_resolve(cwd, single[f]);
    }
    o->discard = seen[F_DISCARD] > 0;
    o->command = argv + rest;
    o->ncommand = argc - rest;
    return NULL;
}
