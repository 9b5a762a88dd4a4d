/*
 * bench/ws/wsload.c: the one WebSocket load client for bench/ws/run (gchttp, node's ws
 * and python3-websockets servers are driven by the same client in the same run).
 * Loopback only, one thread, epoll, bounded in time. No dependency but libc.
 *
 *   wsload echo  PORT NAME CONNS SIZE SECONDS
 *       CONNS connections, each with one binary message of SIZE bytes in flight (sent,
 *       echoed, sent again) for SECONDS; prints a Go benchmark line with ns/op (wall
 *       time per message over all connections), msgs/s, p50 and p99 round trip in us
 *   wsload bcast PORT NAME CONNS SIZE ROUNDS
 *       CONNS connections; ROUNDS times, one of them sends "bcast" + SIZE bytes and the
 *       server sends that SIZE-byte payload to every connection; time from the send to
 *       the last byte received on the last connection, p50 over rounds (ns/op) and max
 *   wsload idle  PORT NAME CONNS SECONDS
 *       CONNS connections, one round trip on each, then "open N" on stdout; held until
 *       a line arrives on stdin or SECONDS pass; then closed
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
    int fd;
    int64_t sent_at;
    uint64_t need;     /* bytes of the current frame still to read (payload) */
    unsigned char hdr[10];
    int hl;
    int in_payload;
    int got;           /* messages received */
} conn_t;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int open_ws(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("connect");
    static const char hs[] = "GET /bench HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n\r\n";
    if (write(fd, hs, sizeof hs - 1) != (ssize_t)(sizeof hs - 1))
        die("handshake write");
    char buf[1024];
    size_t n = 0;
    while (n < 4 || memcmp(buf + n - 4, "\r\n\r\n", 4) != 0) {
        if (n == sizeof buf || read(fd, buf + n, 1) != 1) {
            fprintf(stderr, "wsload: handshake failed\n");
            exit(1);
        }
        n++;
    }
    if (strncmp(buf, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "wsload: not 101: %.40s\n", buf);
        exit(1);
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* A masked binary (or text) frame of n bytes into out (which holds n + 14). */
static size_t frame(unsigned char *out, int op, const unsigned char *p, size_t n)
{
    static const unsigned char key[4] = {1, 2, 3, 4};
    size_t h = 0;
    out[h++] = (unsigned char)(0x80 | op);
    if (n < 126) {
        out[h++] = (unsigned char)(0x80 | n);
    } else if (n <= 0xffff) {
        out[h++] = 0x80 | 126;
        out[h++] = (unsigned char)(n >> 8);
        out[h++] = (unsigned char)n;
    } else {
        out[h++] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            out[h++] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    }
    memcpy(out + h, key, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        out[h + i] = p[i] ^ key[i & 3];
    return h + n;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pf = {fd, POLLOUT, 0};
            poll(&pf, 1, 1000);
            continue;
        }
        if (k <= 0)
            die("send");
        c += k;
        n -= (size_t)k;
    }
}

/* Read what is there; returns messages completed, -1 on EOF. */
static int pump(conn_t *c)
{
    static unsigned char buf[1 << 16];
    int done = 0;
    for (;;) {
        ssize_t k = recv(c->fd, buf, sizeof buf, 0);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            return done;
        if (k <= 0)
            return -1;
        size_t i = 0;
        while (i < (size_t)k) {
            if (!c->in_payload) {
                c->hdr[c->hl++] = buf[i++];
                if (c->hl < 2)
                    continue;
                int l7 = c->hdr[1] & 0x7f, need = l7 == 126 ? 4 : l7 == 127 ? 10 : 2;
                if (c->hl < need)
                    continue;
                uint64_t len = (uint64_t)l7;
                if (l7 == 126)
                    len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
                else if (l7 == 127)
                    for (int j = 0, s = 2; j < 8; j++)
                        len = (j ? len << 8 : 0) | c->hdr[s + j];
                c->need = len;
                c->hl = 0;
                c->in_payload = 1;
            }
            size_t take = (size_t)k - i < c->need ? (size_t)k - i : (size_t)c->need;
            i += take;
            c->need -= take;
            if (c->need == 0) {
                c->in_payload = 0;
                done++;
                c->got++;
            }
        }
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: see bench/ws/wsload.c\n");
        return 2;
    }
    const char *mode = argv[1], *name = argv[3];
    int port = atoi(argv[2]), nconn = atoi(argv[4]);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    conn_t *cs = calloc((size_t)nconn, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < nconn; i++) {
        cs[i].fd = open_ws(port);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    static struct epoll_event evs[1024];
    if (!strcmp(mode, "echo")) {
        size_t size = (size_t)atol(argv[5]);
        double secs = atof(argv[6]);
        unsigned char *msg = malloc(size), *f = malloc(size + 14);
        for (size_t i = 0; i < size; i++)
            msg[i] = (unsigned char)i;
        size_t fl = frame(f, 2, msg, size);
        size_t cap = 1 << 22, nl = 0;
        int64_t *lat = malloc(cap * sizeof *lat);
        int64_t t0 = now_ns(), end = t0 + (int64_t)(secs * 1e9);
        for (int i = 0; i < nconn; i++) {
            cs[i].sent_at = now_ns();
            send_all(cs[i].fd, f, fl);
        }
        int64_t t = t0;
        while ((t = now_ns()) < end) {
            int n = epoll_wait(ep, evs, 1024, 100);
            for (int j = 0; j < n; j++) {
                conn_t *c = &cs[evs[j].data.u32];
                int k = pump(c);
                if (k < 0) {
                    fprintf(stderr, "wsload: %s closed the connection\n", name);
                    return 1;
                }
                if (k > 0) {
                    int64_t now = now_ns();
                    if (nl < cap)
                        lat[nl++] = now - c->sent_at;
                    c->sent_at = now;
                    send_all(c->fd, f, fl);
                }
            }
        }
        double el = (double)(t - t0);
        qsort(lat, nl, sizeof *lat, cmp64);
        printf("BenchmarkWSEcho%zuB/%s-2\t%zu\t%.0f ns/op\t%.0f msgs/s\t%.1f p50-us\t%.1f p99-us\n",
               size, name, nl, el / (double)nl, (double)nl / (el / 1e9),
               nl ? (double)lat[nl / 2] / 1e3 : 0.0, nl ? (double)lat[nl * 99 / 100] / 1e3 : 0.0);
    } else if (!strcmp(mode, "bcast")) {
        size_t size = (size_t)atol(argv[5]);
        int rounds = atoi(argv[6]);
        unsigned char *msg = malloc(size + 5), *f = malloc(size + 19);
        memcpy(msg, "bcast", 5);
        memset(msg + 5, 'b', size);
        size_t fl = frame(f, 1, msg, size + 5);
        int64_t *t = malloc((size_t)rounds * sizeof *t);
        for (int r = 0; r < rounds; r++) {
            int64_t t0 = now_ns();
            send_all(cs[0].fd, f, fl);
            int left = nconn;
            while (left > 0) {
                int n = epoll_wait(ep, evs, 1024, 10000);
                if (n <= 0) {
                    fprintf(stderr, "wsload: %s: broadcast incomplete (%d left)\n", name, left);
                    return 1;
                }
                for (int j = 0; j < n; j++) {
                    conn_t *c = &cs[evs[j].data.u32];
                    int before = c->got;
                    if (pump(c) < 0)
                        return 1;
                    if (before <= r && c->got > r)
                        left--;
                }
            }
            t[r] = now_ns() - t0;
        }
        qsort(t, (size_t)rounds, sizeof *t, cmp64);
        printf("BenchmarkWSBroadcast%zuBx%d/%s-2\t%d\t%lld ns/op\t%.2f ms-max\n", size, nconn,
               name, rounds, (long long)t[rounds / 2], (double)t[rounds - 1] / 1e6);
    } else if (!strcmp(mode, "idle")) {
        double secs = atof(argv[5]);
        unsigned char f[32];
        size_t fl = frame(f, 2, (const unsigned char *)"x", 1);
        for (int i = 0; i < nconn; i++)
            send_all(cs[i].fd, f, fl);
        int left = nconn;
        int64_t end = now_ns() + (int64_t)(secs * 1e9);
        while (left > 0 && now_ns() < end) {
            int n = epoll_wait(ep, evs, 1024, 1000);
            for (int j = 0; j < n; j++) {
                conn_t *c = &cs[evs[j].data.u32];
                int before = c->got;
                if (pump(c) < 0)
                    return 1;
                if (!before && c->got)
                    left--;
            }
        }
        printf("open %d\n", nconn - left);
        fflush(stdout);
        struct pollfd pf = {0, POLLIN, 0};
        poll(&pf, 1, (int)(secs * 1000));
    } else {
        fprintf(stderr, "wsload: unknown mode %s\n", mode);
        return 2;
    }
    for (int i = 0; i < nconn; i++)
        close(cs[i].fd);
    return 0;
}
