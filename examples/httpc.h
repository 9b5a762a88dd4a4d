/*
 * examples/httpc.h: the one small plain-socket HTTP/1.1 loopback client of the tree.
 *
 * Used by the examples that drive their own server (retention, graph), by the
 * benchmarks (bench/bench-server.c, and bench/peers/loadc.c, which bench/peers/run
 * builds alone, without libgchttp), and under the Check suites' client
 * (tests/support/client.c). Header-only, so that loadc needs nothing else. It
 * allocates nothing from the collector or the heap: stack buffers and descriptors
 * only, so a client thread in a server's process leaves that server's allocation
 * counters untouched. Loopback only; every wait is bounded; EINTR is retried and
 * sends never raise SIGPIPE.
 */
#ifndef GH_EXAMPLES_HTTPC_H
#define GH_EXAMPLES_HTTPC_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline int64_t hc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Blocking connect to 127.0.0.1:port with TCP_NODELAY. -1 on failure. */
static inline int hc_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* latency only */
    return fd;
}

/* Send all n bytes (no SIGPIPE). 0, or -1 on error. */
static inline int hc_send_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Wait up to ms for fd to become readable. 1 readable, 0 timeout, -1 error. */
static inline int hc_wait_readable(int fd, int ms)
{
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int rc = poll(&p, 1, ms);
        if (rc < 0 && errno == EINTR)
            continue;
        return rc < 0 ? -1 : rc > 0;
    }
}

/*
 * Read one response with a Content-Length body (what every hello server here sends)
 * into buf[cap]. Returns the status code, or -1 on error/EOF/timeout. Bytes past the
 * response (none with a sequential client) are dropped.
 */
static inline int hc_read_response(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t have = 0, need = 0;
    char *eoh = NULL;
    for (;;) {
        if (!eoh || have < need) {
            if (have == cap - 1)
                return -1;
            ssize_t k = recv(fd, buf + have, cap - 1 - have, MSG_DONTWAIT);
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (hc_wait_readable(fd, timeout_ms) <= 0)
                    return -1;
                continue;
            }
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return -1;
            have += (size_t)k;
            buf[have] = 0;
        }
        if (!eoh) {
            eoh = strstr(buf, "\r\n\r\n");
            if (!eoh)
                continue;
            size_t clen = 0;
            for (char *p = strstr(buf, "\r\n"); p && p < eoh; p = strstr(p + 2, "\r\n"))
                if (!strncasecmp(p + 2, "content-length:", 15))
                    clen = strtoul(p + 17, NULL, 10);
            need = (size_t)(eoh + 4 - buf) + clen;
        }
        if (have >= need)
            return atoi(buf + 9);
    }
}

/* Read until the peer closes (EOF or reset). 0 closed, -1 timeout/error. */
static inline int hc_wait_close(int fd, int timeout_ms)
{
    char tmp[512];
    int64_t end = hc_now() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        ssize_t k = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno == ECONNRESET))
            return 0;
        if (k > 0 || (k < 0 && errno == EINTR))
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        int64_t left = end - hc_now();
        if (left <= 0 || hc_wait_readable(fd, (int)(left / 1000000) + 1) < 0)
            return -1;
    }
}

#endif
