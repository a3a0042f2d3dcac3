/*
 * ephd.h - for the C tests: start an ephemerad on a scratch root and wait
 * until it reports ready, and remove a scratch tree.
 */
#ifndef EPH_TEST_EPHD_H
#define EPH_TEST_EPHD_H

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Start bin --rundir RUNDIR --root ROOT --ready-fd 3 EXTRA... and wait (10 s
 * at most) for its "ready\n".  The daemon's pid, or -1 (it is then killed).
 */
static inline pid_t ephd_start(const char *bin, const char *rundir, const char *root, const char *const *extra)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 3);
        const char *argv[24] = {bin, "--rundir", rundir, "--root", root, "--ready-fd", "3"};
        int n = 7;
        for (int i = 0; extra && extra[i] && n < 23; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        execv(bin, (char **)argv);
        perror(bin);
        _exit(127);
    }
    close(p[1]);
    char buf[16] = "";
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    int ok = pid > 0 && poll(&pf, 1, 10000) == 1 && read(p[0], buf, sizeof buf - 1) == 6 && !strcmp(buf, "ready\n");
    close(p[0]);
    if (!ok && pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return ok ? pid : -1;
}

/* One request on the control socket of the daemon whose run directory is run;
 * the reply line in buf (empty on failure, with a line on stderr). */
static inline void ephd_control(const char *run, const char *req, char *buf, size_t n)
{
    buf[0] = 0;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/control.sock", run);
    if (strlen(path) >= sizeof a.sun_path) {
        fprintf(stderr, "control socket path too long for AF_UNIX: %s\n", path);
        return;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {30, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0 || write(s, req, strlen(req)) != (ssize_t)strlen(req)) {
        fprintf(stderr, "control %s: %s\n", a.sun_path, strerror(errno));
        if (s >= 0)
            close(s);
        return;
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (got == 0 || buf[got - 1] != '\n') && (r = read(s, buf + got, n - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = 0;
    close(s);
}

/* A number field of the daemon's stats (-1 when absent). */
static inline long long ephd_stat(const char *run, const char *name)
{
    char buf[8192], key[64];
    ephd_control(run, "{\"v\":1,\"id\":1,\"op\":\"stats\"}\n", buf, sizeof buf);
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(buf, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

/* 1 once the stats field name reads want, within 5 s (the daemon frees an unlinked small file
 * within its reclaim tick, not at once). */
static inline int ephd_stat_becomes(const char *run, const char *name, long long want)
{
    for (int i = 0; i < 500; i++) {
        if (ephd_stat(run, name) == want)
            return 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static inline int rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return 0;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    DIR *dir = opendir(path);
    struct dirent *e;
    char sub[PATH_MAX + 256];
    while (dir && (e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
            rm_rf(sub);
    }
    if (dir)
        closedir(dir);
    return rmdir(path);
}

#endif
