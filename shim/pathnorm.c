/*
 * shim/pathnorm.c - pure lexical path helpers (see pathnorm.h).
 */
#include "compiler.h"
#include "pathnorm.h"

#include <string.h>

/* p's length if it is its own normal form below a directory: no empty, "." or ".." component and
 * no trailing '/' (what every intercept is handed nearly always); 0 if not.  One strchrnul a
 * component, where the general loop below copies each one on its own. */
SH_START static size_t pn_plain(const char *p)
{
    const char *c = p + (p[0] == '/');
    for (;;) {
        const char *e = strchrnul(c, '/');
        size_t cl = (size_t)(e - c);
        if (cl == 0 || (c[0] == '.' && (cl == 1 || (cl == 2 && c[1] == '.'))))
            return 0;
        if (!*e)
            return (size_t)(e - p);
        c = e + 1;
    }
}

SH_START int pn_normalize(const char *base, const char *p, char *out, size_t outsz, int *trailing)
{
    size_t len = 0;
    if (outsz < 2)
        return -1;
    if (p[0] != '/') {
        size_t bl = strlen(base);
        if (bl + 1 > outsz)
            return -1;
        memcpy(out, base, bl);
        len = bl;
        if (len == 1) /* base is "/" */
            len = 0;
    }
    size_t pl = pn_plain(p);
    if (pl) {
        /* The general loop's answer in one copy: p joined to the base by a '/' (an absolute p brings
         * its own); too long exactly where its last component's check would fail. */
        size_t join = p[0] != '/';
        if (len + join + pl + 1 > outsz)
            return -1;
        if (join)
            out[len++] = '/';
        memcpy(out + len, p, pl + 1);
        if (trailing)
            *trailing = 0;
        return (int)(len + pl);
    }
    out[len] = '\0';
    if (trailing) {
        size_t pl = strlen(p);
        *trailing = pl > 0 && (p[pl - 1] == '/' || (p[pl - 1] == '.' &&
                    (pl == 1 || p[pl - 2] == '/' || (p[pl - 2] == '.' && (pl == 2 || p[pl - 3] == '/')))));
    }
    const char *s = p;
    while (*s) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        const char *e = s;
        while (*e && *e != '/')
            e++;
        size_t cl = (size_t)(e - s);
        if (cl == 1 && s[0] == '.') {
            /* nothing */
        } else if (cl == 2 && s[0] == '.' && s[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--; /* drop the '/' too */
            out[len] = '\0';
        } else {
            if (len + 1 + cl + 1 > outsz)
                return -1;
            out[len++] = '/';
            memcpy(out + len, s, cl);
            len += cl;
            out[len] = '\0';
        }
        s = e;
    }
    if (len == 0) {
        out[0] = '/';
        out[1] = '\0';
        len = 1;
    }
    return (int)len;
}

SH_START int pn_under(const char *path, const char *root, size_t rootlen)
{
    if (rootlen == 1 && root[0] == '/')
        return path[0] == '/';
    return strncmp(path, root, rootlen) == 0 && (path[rootlen] == '\0' || path[rootlen] == '/');
}

int pn_parent_is(const char *path, const char *dir, size_t dirlen)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash[1] == '\0')
        return 0;
    size_t plen = (size_t)(slash - path);
    if (dirlen == 1 && dir[0] == '/')
        return plen == 0;
    return plen == dirlen && memcmp(path, dir, dirlen) == 0;
}

SH_START int pn_is_ancestor(const char *dir, const char *root)
{
    size_t dl = strlen(dir);
    if (dl == 1 && dir[0] == '/')
        return 1;
    return strncmp(root, dir, dl) == 0 && (root[dl] == '\0' || root[dl] == '/');
}

int pn_has_dotdot(const char *p)
{
    for (const char *s = p; (s = strstr(s, "..")) != NULL; s += 2)
        if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
            return 1;
    return 0;
}
