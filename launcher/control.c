/* The control connection: see control.h. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE_BYTES (64 * 1024)
/* With a gate (ctl_request_gated), how often the socket is looked at anyway. */
#define GATE_LOOK_MS 20

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_err(struct ctl_error *err, const char *code)
{
    err->code = code;
    jb_free(&err->msg);
    jb_add(&err->msg, "", 0);
}

int ctl_connect(struct ctl *c, const char *path, int timeout_ms, struct ctl_error *err)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->path = path;
    c->next_id = 1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rc = -1, e = 0;
    if (fd < 0)
        e = errno;
    else if (strlen(path) >= sizeof sa.sun_path)
        e = ENAMETOOLONG;
    else {
        strcpy(sa.sun_path, path);
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        e = rc < 0 ? errno : 0;
        if (rc < 0 && (e == EINPROGRESS || e == EAGAIN)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, timeout_ms) == 1) {
                socklen_t l = sizeof e;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l);
                rc = e == 0 ? 0 : -1;
            } else {
                close(fd);
                set_err(err, "EPH_DAEMON_CONNECT");
                jb_printf(&err->msg, "no answer from control socket %s within %d ms; is the daemon running?", path, timeout_ms);
                return -1;
            }
        }
    }
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        set_err(err, "EPH_DAEMON_CONNECT");
        jb_printf(&err->msg,
                  "cannot connect to control socket %s: %s; check the path (it is DIR/control.sock for ephemerad --rundir DIR) and that the daemon runs",
                  path, strerrorname_np(e) ? strerrorname_np(e) : strerror(e));
        return -1;
    }
    c->fd = fd;
    return 0;
}

static void closed(struct ctl *c, struct ctl_error *err)
{
    set_err(err, "EPH_DAEMON_CLOSED");
    jb_printf(&err->msg, "control connection to %s closed by the daemon; read its log for the reason", c->path);
}

/* line.slice(0, 200) */
static void head(struct jbuf *b, const char *line, size_t len)
{
    jb_add(b, line, len < 200 ? len : 200);
}

/* One line from the daemon.  1: the answer (reply and *result set), 0: not ours (an event), -1: error. */
static int on_line(const char *line, size_t len, int id, const char *op, struct jv **reply,
                   const struct jv **result, struct ctl_error *err)
{
    struct jv *msg = jv_parse(line, len);
    if (msg == NULL) {
        set_err(err, "EPH_DAEMON_PROTOCOL");
        jb_puts(&err->msg, "the daemon sent a line that is not JSON: ");
        js_quote(&err->msg, line, len < 200 ? len : 200);
        return -1;
    }
    const struct jv *v = jv_get(msg, "v");
    if (msg->type != J_OBJ || v == NULL || v->type != J_NUM || v->num != 1) {
        set_err(err, "EPH_DAEMON_PROTOCOL");
        jb_puts(&err->msg, "the daemon sent a message that is not a version-1 object: ");
        head(&err->msg, line, len);
        jv_free(msg);
        return -1;
    }
    const struct jv *ev = jv_get(msg, "event"), *idv = jv_get(msg, "id");
    if (ev != NULL && ev->type == J_STR && idv == NULL) {
        jv_free(msg);
        return 0;
    }
    const struct jv *e = jv_get(msg, "error");
    if (e != NULL && e->type != J_OBJ)
        e = NULL;
    if (idv == NULL || idv->type != J_NUM) {
        set_err(err, "EPH_DAEMON_PROTOCOL");
        jb_puts(&err->msg, "the daemon rejected a request it could not attribute: ");
        const struct jv *m = e ? jv_get(e, "message") : NULL;
        if (e == NULL)
            head(&err->msg, line, len);
        else if (m == NULL)
            jb_puts(&err->msg, "undefined");
        else if (m->type == J_STR)
            jb_add(&err->msg, m->str, m->len);
        else
            jv_stringify(&err->msg, m, 0); /* String(x) of a scalar reads like its JSON */
        jv_free(msg);
        return -1;
    }
    if (idv->num != id) {
        set_err(err, "EPH_DAEMON_PROTOCOL");
        jb_puts(&err->msg, "the daemon answered id ");
        js_number(&err->msg, idv->num);
        jb_puts(&err->msg, ", which no request is waiting for");
        jv_free(msg);
        return -1;
    }
    const struct jv *ok = jv_get(msg, "ok"), *res = jv_get(msg, "result");
    const struct jv *code = e ? jv_get(e, "code") : NULL;
    if (ok != NULL && ok->type == J_TRUE && res != NULL && res->type == J_OBJ) {
        *reply = msg;
        *result = res;
        return 1;
    }
    if (ok != NULL && ok->type == J_FALSE && code != NULL && code->type == J_STR) {
        const struct jv *m = jv_get(e, "message");
        set_err(err, "EPH_DAEMON_REPLY");
        jb_printf(&err->msg, "daemon refused '%s': ", op);
        jb_add(&err->msg, code->str, code->len);
        jb_puts(&err->msg, ": ");
        if (m != NULL && m->type == J_STR)
            jb_add(&err->msg, m->str, m->len);
        else
            jv_stringify(&err->msg, e, 0);
    } else {
        set_err(err, "EPH_DAEMON_PROTOCOL");
        jb_printf(&err->msg, "malformed response to '%s': ", op);
        head(&err->msg, line, len);
    }
    jv_free(msg);
    return -1;
}

struct jv *ctl_request(struct ctl *c, const char *op, const char *fields_json, int timeout_ms, const struct jv **result,
                       struct ctl_error *err)
{
    return ctl_request_gated(c, op, fields_json, timeout_ms, -1, result, err);
}

struct jv *ctl_request_gated(struct ctl *c, const char *op, const char *fields_json, int timeout_ms, int gate_fd,
                             const struct jv **result, struct ctl_error *err)
{
    int id = c->next_id++;
    struct jbuf req = {0};
    jb_printf(&req, "{%s%s\"v\":1,\"id\":%d,\"op\":\"%s\"}\n", fields_json, fields_json[0] ? "," : "", id, op);
    long long deadline = now_ms() + timeout_ms;
    size_t sent = 0;
    struct jv *reply = NULL;
    int state = 0;
    while (state == 0) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            set_err(err, "EPH_DAEMON_TIMEOUT");
            jb_printf(&err->msg, "request '%s' (id %d) got no answer from %s within %d ms", op, id, c->path, timeout_ms);
            state = -1;
            break;
        }
        /* Sent, and gated: the socket is not polled (not even its hang-up wakes us), the gate and
         * the clock are, and the socket is read without waiting after each. */
        bool hold = gate_fd >= 0 && sent == req.len;
        struct pollfd pa[3] = {{.fd = hold ? -1 : c->fd, .events = POLLIN | (sent < req.len ? POLLOUT : 0)},
                               {.fd = c->aux != NULL ? c->aux_fd : -1, .events = POLLIN},
                               {.fd = hold ? gate_fd : -1, .events = POLLIN}};
        int n = poll(pa, 3, hold && left > GATE_LOOK_MS ? GATE_LOOK_MS : (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (n == 0 && !hold))
            continue;
        if (pa[1].revents != 0)
            c->aux(c->aux_arg);
        if (pa[2].revents != 0)
            gate_fd = -1; /* open: from now on the socket is polled as usual */
        struct pollfd p = pa[0];
        if (hold)
            p.revents = POLLIN;
        if (sent < req.len && (p.revents & POLLOUT)) {
            ssize_t w = send(c->fd, req.s + sent, req.len - sent, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN && errno != EINTR) {
                closed(c, err);
                state = -1;
                break;
            }
            if (w > 0)
                sent += (size_t)w;
        }
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        char chunk[16384];
        ssize_t r = recv(c->fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0) {
            closed(c, err);
            state = -1;
            break;
        }
        jb_add(&c->in, chunk, (size_t)r);
        char *nl;
        while (state == 0 && c->in.len > 0 && (nl = memchr(c->in.s, '\n', c->in.len)) != NULL) {
            size_t len = (size_t)(nl - c->in.s);
            if (len > 0)
                state = on_line(c->in.s, len, id, op, &reply, result, err);
            memmove(c->in.s, nl + 1, c->in.len - len - 1);
            c->in.len -= len + 1;
            c->in.s[c->in.len] = '\0';
        }
        if (state == 0 && c->in.len > MAX_LINE_BYTES) {
            set_err(err, "EPH_DAEMON_PROTOCOL");
            jb_printf(&err->msg, "a line from the daemon exceeds %d bytes without a newline", MAX_LINE_BYTES);
            state = -1;
        }
    }
    jb_free(&req);
    return state == 1 ? reply : NULL;
}

void ctl_close(struct ctl *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    jb_free(&c->in);
}
