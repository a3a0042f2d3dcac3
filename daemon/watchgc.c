/*
 * watchgc.c - drop the inotify shadows nobody watches any more.
 *
 * A watch on an in-memory file or on a directory under a root lands on a
 * shadow directory in the run directory (shim/inotify.c, docs/ARCHITECTURE.md
 * "inotify"), entered in the region's watch_dirs; every change in that
 * directory is then repeated on a placeholder, and every write pays the look
 * at watch_used.  Watchers leave without saying so (tail -f killed, a dev
 * server restarted), so the daemon looks: at most every 2 s, and only while
 * some directory is shadowed, it collects the inode numbers every inotify fd
 * of every process it may read watches (/proc/<pid>/fdinfo), and a shadow
 * directory that neither itself nor any placeholder in it is among them, at
 * two scans in a row, leaves the table and the disk.  When the last one
 * goes, watch_used drops to 0 and the shims' hooks cost one load again.
 *
 * Entries are removed, and watch_used lowered, under ns_lock, which the shim
 * also holds to enter one (inotify.c reg_add): a shim cannot enter a
 * directory while the count is being lowered below it.  A watcher that
 * entered a directory and had not yet added its watch when the entry went
 * finds it gone afterwards and starts again (ino_add_watch).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "namespace.h"
#include "watchgc.h"

#define WATCHGC_EVERY_NS 2000000000ull
#define WATCHGC_MAX_INODES 8192

static uint64_t last_scan_ns;
static uint64_t unwatched_before[EPH_WATCH_DIRS]; /* the hash found unwatched at the previous scan */
static uint64_t watched[WATCHGC_MAX_INODES];
static size_t nwatched;
static int overflow;

static void note_watches(int fdinfo)
{
    char buf[4096];
    size_t have = 0;
    ssize_t n;
    while ((n = read(fdinfo, buf + have, sizeof buf - 1 - have)) > 0) {
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            unsigned long long ino;
            const char *p = strstr(line, " ino:");
            if (strncmp(line, "inotify ", 8) == 0 && p && sscanf(p, " ino:%llx", &ino) == 1) {
                if (nwatched < WATCHGC_MAX_INODES)
                    watched[nwatched++] = ino;
                else
                    overflow = 1;
            }
            line = nl + 1;
        }
        have = strlen(line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0; /* a line longer than the buffer is no watch line */
    }
}

/* Every inode any readable inotify fd watches; 0, or -1 when the list may be incomplete. */
static int collect(void)
{
    nwatched = 0;
    overflow = 0;
    DIR *proc = opendir("/proc");
    if (!proc)
        return -1;
    struct dirent *pe;
    while ((pe = readdir(proc))) {
        if (pe->d_name[0] < '1' || pe->d_name[0] > '9')
            continue;
        char p[300];
        snprintf(p, sizeof p, "/proc/%s/fd", pe->d_name);
        DIR *fds = opendir(p);
        if (!fds)
            continue; /* gone, or not ours to read: its watches, if any, keep nothing alive */
        struct dirent *fe;
        while ((fe = readdir(fds))) {
            char link[600], target[32];
            snprintf(link, sizeof link, "/proc/%s/fd/%s", pe->d_name, fe->d_name);
            ssize_t n = readlink(link, target, sizeof target - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            if (strcmp(target, "anon_inode:inotify") != 0)
                continue;
            snprintf(link, sizeof link, "/proc/%s/fdinfo/%s", pe->d_name, fe->d_name);
            int fd = open(link, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                note_watches(fd);
                close(fd);
            }
        }
        closedir(fds);
    }
    closedir(proc);
    return overflow ? -1 : 0;
}

static int is_watched(uint64_t ino)
{
    for (size_t i = 0; i < nwatched; i++)
        if (watched[i] == ino)
            return 1;
    return 0;
}

/* The shadow directory, or a placeholder in it, is watched (or cannot be read: keep it). */
static int shadow_watched(const char *sd)
{
    struct stat st;
    if (lstat(sd, &st) < 0)
        return errno != ENOENT;
    if (is_watched(st.st_ino))
        return 1;
    DIR *d = opendir(sd);
    if (!d)
        return 1;
    struct dirent *e;
    int w = 0;
    while (!w && (e = readdir(d)))
        w = e->d_name[0] != '.' && is_watched(e->d_ino);
    closedir(d);
    return w;
}

static void remove_shadow(const char *sd)
{
    int dfd = open(sd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        DIR *d = fdopendir(dfd);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
                    unlinkat(dfd, e->d_name, 0) < 0)
                    unlinkat(dfd, e->d_name, AT_REMOVEDIR); /* a subdirectory's placeholder: empty */
            closedir(d);
        } else {
            close(dfd);
        }
    }
    rmdir(sd);
}

void watch_gc(void)
{
    struct eph_shm_header *h = D.h;
    if (atomic_load_explicit(&h->watch_used, memory_order_relaxed) == 0)
        return;
    uint64_t now = ephd_mono_ns();
    if (now - last_scan_ns < WATCHGC_EVERY_NS)
        return;
    last_scan_ns = now;
    if (collect() < 0)
        return; /* an incomplete list would drop a shadow someone watches */
    uint32_t used = atomic_load(&h->watch_used);
    for (uint32_t i = 0; i < used && i < EPH_WATCH_DIRS; i++) {
        uint64_t hash = atomic_load(&h->watch_dirs[i]);
        char sd[sizeof D.rundir + 32];
        snprintf(sd, sizeof sd, "%s/inotify/%016llx", D.rundir, (unsigned long long)hash);
        if (hash == 0 || shadow_watched(sd)) {
            unwatched_before[i] = 0;
            continue;
        }
        if (unwatched_before[i] != hash) {
            unwatched_before[i] = hash; /* a watcher may be between its entry and its watch */
            continue;
        }
        unwatched_before[i] = 0;
        if (nsl_enter() < 0)
            return;
        uint64_t expect = hash;
        int dropped = atomic_compare_exchange_strong(&h->watch_dirs[i], &expect, 0);
        uint32_t top = 0;
        for (uint32_t j = 0; j < EPH_WATCH_DIRS; j++)
            if (atomic_load(&h->watch_dirs[j]))
                top = j + 1;
        atomic_store(&h->watch_used, top);
        nsl_exit();
        if (dropped) {
            remove_shadow(sd);
            log_msg(LOG_INFO, "inotify: nobody watches shadow %016llx any more; dropped (%u left)",
                    (unsigned long long)hash, top);
        }
    }
}
