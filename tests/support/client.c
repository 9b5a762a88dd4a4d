/* tests/support/client.c: the Check suites' loopback HTTP client (tests/support/client.h):
 * response framing, pipelining stash, bounded reads. Connecting and sending are the
 * tree's one small client, examples/httpc.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../examples/httpc.h"
#include "../test-common.h"

/* Per-fd stash of bytes read past the end of a response (pipelining). Plain memory:
 * it holds bytes, never GC pointers. */
#define STASH_FDS 4096
static struct {
    char *buf;
    size_t len;
} stash[STASH_FDS];

int th_connect(int port)
{
    int fd = hc_connect(port);
    if (fd >= 0 && fd < STASH_FDS) {
        free(stash[fd].buf);
        stash[fd].buf = NULL;
        stash[fd].len = 0;
    }
    return fd;
}

int th_send(int fd, const void *buf, size_t n) { return hc_send_all(fd, buf, n); }

int th_sends(int fd, const char *s) { return th_send(fd, s, strlen(s)); }

static int wait_readable(int fd, gh_time_t deadline)
{
    for (;;) {
        gh_time_t left = deadline - gh_now();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, POLLIN, 0};
        int rc = poll(&p, 1, (int)(left / GH_MSEC) + 1);
        if (rc < 0 && errno == EINTR)
            continue;
        return rc > 0 ? 1 : (rc == 0 ? 0 : -1);
    }
}

ssize_t th_read_all(int fd, char *buf, size_t cap, int timeout_ms, int *closed)
{
    gh_time_t deadline = gh_now() + (gh_time_t)timeout_ms * GH_MSEC;
    size_t len = 0;
    if (closed)
        *closed = 0;
    if (fd < STASH_FDS && stash[fd].len) {
        size_t k = stash[fd].len < cap ? stash[fd].len : cap;
        memcpy(buf, stash[fd].buf, k);
        len = k;
        stash[fd].len = 0;
    }
    while (len < cap) {
        int w = wait_readable(fd, deadline);
        if (w <= 0)
            break;
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == ECONNRESET) {
            if (closed)
                *closed = 1;
            break;
        }
        if (r < 0)
            return -1;
        if (r == 0) {
            if (closed)
                *closed = 1;
            break;
        }
        len += (size_t)r;
    }
    buf[len] = 0;
    return (ssize_t)len;
}

int th_read_exact(int fd, void *buf, size_t n, int timeout_ms)
{
    gh_time_t deadline = gh_now() + (gh_time_t)timeout_ms * GH_MSEC;
    char *p = buf;
    while (n > 0) {
        if (wait_readable(fd, deadline) <= 0)
            return -1;
        ssize_t k = recv(fd, p, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static const char *find_crlfcrlf(const char *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
            return p + i;
    return NULL;
}

/* Returns the total length of a complete response in buf[0..n), 0 if incomplete,
 * (size_t)-1 if it runs until close. */
static size_t response_length(const char *buf, size_t n, int *until_close)
{
    const char *end = find_crlfcrlf(buf, n);
    *until_close = 0;
    if (!end)
        return 0;
    size_t hlen = (size_t)(end - buf) + 4;
    int status = th_status(buf);
    /* Interim 1xx responses are returned on their own. */
    if ((status >= 100 && status < 200) || status == 204 || status == 304)
        return hlen;
    /* HEAD is not known here; tests that send HEAD use th_read_all or look at headers. */
    char *h = strndup(buf, hlen);
    size_t total = 0;
    char *cl = NULL;
    for (char *line = strstr(h, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "content-length:", 15) == 0)
            cl = line + 17;
        if (strncasecmp(line + 2, "transfer-encoding:", 18) == 0 && strcasestr(line, "chunked") &&
            (size_t)(strcasestr(line, "chunked") - line) < (size_t)(strstr(line + 2, "\r\n") - line)) {
            /* Walk chunks. */
            size_t pos = hlen;
            for (;;) {
                const char *le = NULL;
                for (size_t i = pos; i + 1 < n; i++)
                    if (buf[i] == '\r' && buf[i + 1] == '\n') {
                        le = buf + i;
                        break;
                    }
                if (!le) {
                    free(h);
                    return 0;
                }
                unsigned long sz = strtoul(buf + pos, NULL, 16);
                pos = (size_t)(le - buf) + 2;
                if (sz == 0) {
                    /* trailers until empty line */
                    for (;;) {
                        const char *te = NULL;
                        for (size_t i = pos; i + 1 < n; i++)
                            if (buf[i] == '\r' && buf[i + 1] == '\n') {
                                te = buf + i;
                                break;
                            }
                        if (!te) {
                            free(h);
                            return 0;
                        }
                        int empty = te == buf + pos;
                        pos = (size_t)(te - buf) + 2;
                        if (empty) {
                            free(h);
                            return pos;
                        }
                    }
                }
                if (pos + sz + 2 > n) {
                    free(h);
                    return 0;
                }
                pos += sz + 2;
            }
        }
    }
    if (cl) {
        total = hlen + strtoul(cl, NULL, 10);
        free(h);
        return total <= n ? total : 0;
    }
    free(h);
    *until_close = 1;
    return 0;
}

ssize_t th_read_response(int fd, char *buf, size_t cap, int timeout_ms)
{
    gh_time_t deadline = gh_now() + (gh_time_t)timeout_ms * GH_MSEC;
    size_t len = 0;
    if (fd < STASH_FDS && stash[fd].len) {
        size_t k = stash[fd].len < cap ? stash[fd].len : cap;
        memcpy(buf, stash[fd].buf, k);
        memmove(stash[fd].buf, stash[fd].buf + k, stash[fd].len - k);
        stash[fd].len -= k;
        len = k;
    }
    for (;;) {
        int until_close = 0;
        size_t total = len ? response_length(buf, len, &until_close) : 0;
        if (total > 0) {
            if (total < len && fd < STASH_FDS) {
                size_t extra = len - total;
                char *nb = realloc(stash[fd].buf, stash[fd].len + extra);
                if (!nb)
                    return -1;
                memmove(nb + extra, nb, stash[fd].len);
                memcpy(nb, buf + total, extra);
                stash[fd].buf = nb;
                stash[fd].len += extra;
            }
            buf[total] = 0;
            return (ssize_t)total;
        }
        if (len >= cap)
            return -1;
        int w = wait_readable(fd, deadline);
        if (w <= 0)
            return -1;
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            buf[len] = 0;
            if (until_close || (r == 0 && len == 0))
                return (ssize_t)len;
            return -1;
        }
        len += (size_t)r;
    }
}

int th_status(const char *resp)
{
    if (strncmp(resp, "HTTP/1.", 7) != 0 || strlen(resp) < 12)
        return -1;
    return atoi(resp + 9);
}

const char *th_body(const char *resp)
{
    const char *e = strstr(resp, "\r\n\r\n");
    return e ? e + 4 : NULL;
}

int th_has_header(const char *resp, const char *name, const char *value)
{
    const char *end = strstr(resp, "\r\n\r\n");
    size_t nl = strlen(name);
    for (const char *line = strstr(resp, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        const char *p = line + 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ')
                p++;
            const char *le = strstr(p, "\r\n");
            if (!value)
                return 1;
            if ((size_t)(le - p) == strlen(value) && strncmp(p, value, (size_t)(le - p)) == 0)
                return 1;
        }
    }
    return 0;
}

int th_wait_closed(int fd, int timeout_ms)
{
    gh_time_t deadline = gh_now() + (gh_time_t)timeout_ms * GH_MSEC;
    char tmp[4096];
    for (;;) {
        int w = wait_readable(fd, deadline);
        if (w <= 0)
            return 0;
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return 1;
        if (r < 0)
            return 0;
    }
}

int th_run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t len = 0;
    size_t r;
    while (len < cap && (r = fread(out + len, 1, cap - len, p)) > 0)
        len += r;
    out[len < cap ? len : cap - 1] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *th_tool(const char *envname, const char *fallback)
{
    const char *v = getenv(envname);
    if (v && *v && access(v, X_OK) == 0)
        return v;
    static char path[4][256];
    static int slot;
    const char *dirs[] = {"/usr/bin", "/usr/local/bin", "/bin"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char *p = path[slot++ & 3];
        snprintf(p, sizeof path[0], "%s/%s", dirs[i], fallback);
        if (access(p, X_OK) == 0)
            return p;
    }
    return NULL;
}

static int clients_missing;

int th_clients_required(void)
{
    const char *v = getenv("GH_REQUIRE_CLIENTS");
    return v && *v && strcmp(v, "0") != 0;
}

const char *th_client(const char *envname, const char *prog, const char *probe)
{
    const char *p = th_tool(envname, prog);
    char cmd[512], out[256] = "";
    if (p) {
        snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", p, probe);
        if (th_run(cmd, out, sizeof out) == 0)
            return p;
        out[strcspn(out, "\n")] = 0; /* its first line says why */
    }
    clients_missing++;
    fprintf(stderr, "SKIP: %s %s failed (%s): the tests that need it do not run%s\n",
            p ? p : prog, probe, p ? out : "not found",
            th_clients_required() ? " (GH_REQUIRE_CLIENTS: the suite fails)"
                                  : "; the suite ends SKIP (77)");
    return NULL;
}

int th_clients_missing(void) { return clients_missing; }

void th_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl); /* best effort: the limit stays as it was */
    }
}

int th_wait_count(pthread_mutex_t *mu, pthread_cond_t *cv, const int *counter, int want, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(mu);
    int rc = 0;
    while (*counter < want && rc == 0)
        rc = pthread_cond_timedwait(cv, mu, &ts);
    int ok = *counter >= want;
    pthread_mutex_unlock(mu);
    return ok;
}
