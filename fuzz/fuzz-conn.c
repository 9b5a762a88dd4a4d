/*
 * fuzz/fuzz-conn.c: libFuzzer target for a whole connection, as h2o's fuzz/driver.cc:
 * the input is pushed through a socketpair into the server's real accept path, and the
 * poller (non-blocking head reads), the worker, the handler, keep-alive, pipelining,
 * hijack and close-notify all run as in production.
 *
 * One server is started on first use and kept for the whole run (static). Per input:
 * socketpair(AF_UNIX); the server end is handed to the server's own accept_one(), so
 * the connection goes through exactly what an accepted TCP connection goes through
 * (lib/loop.c is #included below for that: accept_one is static and the public API
 * has no "adopt this descriptor" call). FUZZ_CONN_TCP=1 in the environment uses a
 * loopback TCP connection to a listener on 127.0.0.1 instead.
 *
 * Input: byte 0 is options (bits 0-2: write piece size class; bit 3: wait briefly for
 * the first response bytes before half-closing; bit 4: RST instead of a clean close at
 * the end, TCP only); the rest is written to the connection in pieces. Then the client
 * half-closes and reads until the server closes, bounded by FUZZ_CONN_TIMEOUT_MS
 * (default 5000): a connection the server keeps open that long after a half-close is
 * a hang and aborts the run.
 *
 * Handlers (by request target):
 *   /hijack...  hijack, echo up to 16 bytes read through the returned reader, close
 *   /wait...    wait for close-notify (or 200 ms), then answer
 *   /waitfd...  the same through gh_response_close_notify_fd and poll()
 *   /trailer... chunked response with a trailer
 *   /flush...   flush the header before the body
 *   anything else: echo the request body (at most 64 KiB) with a few request facts
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../lib/loop.c"

#define MAX_BODY (64u << 10)

static gh_server_t *srv;
static int use_tcp;
static int tcp_port;
static int timeout_ms = 5000;

static int has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static void do_hijack(gh_response_t *w)
{
    gh_netconn_t *nc;
    gh_bufrw_t rw;
    if (gh_response_hijack(w, &nc, &rw) != 0)
        return;
    gh_netconn_set_deadline(nc, gh_now() + GH_SEC);
    char buf[16];
    ssize_t k = gh_reader_read(rw.r, buf, sizeof buf);
    gh_writer_puts(rw.w, "HIJACKED ");
    if (k > 0)
        gh_writer_write(rw.w, buf, (size_t)k);
    gh_writer_flush(rw.w);
    gh_netconn_close(nc);
}

static void do_wait(gh_response_t *w, int use_fd)
{
    int reason = 0;
    if (use_fd) {
        int fd = gh_response_close_notify_fd(w);
        if (fd >= 0) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            reason = poll(&p, 1, 200);
        }
    } else {
        gh_ctx_t *ctx = gh_response_close_notify(w);
        if (ctx)
            reason = gh_ctx_wait(ctx, gh_now() + 200 * GH_MSEC);
    }
    gh_response_printf(w, "waited %d\n", reason);
}

static void handler(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    const char *t = gh_request_target(r);
    if (has_prefix(t, "/hijack")) {
        do_hijack(w);
        return;
    }
    if (has_prefix(t, "/waitfd")) {
        do_wait(w, 1);
        return;
    }
    if (has_prefix(t, "/wait")) {
        do_wait(w, 0);
        return;
    }
    char *body = NULL;
    ssize_t n = gh_request_read_all(r, MAX_BODY, &body);
    if (n < 0) {
        gh_response_write_header(w, 400);
        gh_response_printf(w, "body: %s\n", gh_err_name((int)n));
        return;
    }
    gh_response_header_set(w, "X-Method", gh_request_method(r));
    gh_response_header_set(w, "X-Host", gh_request_host(r));
    if (has_prefix(t, "/trailer"))
        gh_response_header_set(w, "Trailer", "X-Sum");
    if (has_prefix(t, "/flush")) {
        gh_response_write_header(w, 200);
        gh_response_flush(w);
    }
    for (size_t i = 0; i < gh_request_header_count(r) && i < 4; i++) {
        const char *hn, *hv;
        if (gh_request_header_at(r, i, &hn, &hv) == 0)
            gh_response_header_add(w, "X-Echo-Name", hn);
    }
    for (size_t i = 0; i < gh_request_trailer_count(r) && i < 4; i++) {
        const char *hn, *hv;
        if (gh_request_trailer_at(r, i, &hn, &hv) == 0)
            gh_response_header_add(w, "X-Echo-Trailer", hn);
    }
    gh_response_write(w, body, (size_t)n);
    if (has_prefix(t, "/trailer")) {
        char sum[32];
        unsigned s = 0;
        for (ssize_t i = 0; i < n; i++)
            s += (unsigned char)body[i];
        snprintf(sum, sizeof sum, "%u", s);
        gh_response_trailer_set(w, "X-Sum", sum);
    }
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz-conn: %s: %s\n", what, strerror(errno));
    abort();
}

static void server_init(void)
{
    const char *e = getenv("FUZZ_CONN_TCP");
    use_tcp = e && *e == '1';
    if ((e = getenv("FUZZ_CONN_TIMEOUT_MS")) != NULL && atoi(e) > 0)
        timeout_ms = atoi(e);
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = handler;
    cfg.read_header_timeout = 2 * GH_SEC;
    cfg.read_timeout = 2 * GH_SEC;
    cfg.write_timeout = 2 * GH_SEC;
    cfg.idle_timeout = 2 * GH_SEC;
    cfg.max_header_bytes = 16 << 10;
    cfg.max_workers = 8;
    cfg.loops = 1; /* accept_one hands every connection to loops[0] */
    if (gh_server_new(&srv, &cfg) != 0)
        die("gh_server_new");
    if (use_tcp) {
        if (gh_server_listen(srv, "127.0.0.1", 0) != 0)
            die("gh_server_listen");
        tcp_port = gh_server_port(srv, 0);
    }
    if (gh_server_start(srv) != 0)
        die("gh_server_start");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    server_init();
    return 0;
}

static int client_connect(void)
{
    if (!use_tcp) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            die("socketpair");
        if (fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0)
            die("fcntl");
        struct sockaddr_storage peer;
        memset(&peer, 0, sizeof peer);
        peer.ss_family = AF_UNIX;
        accept_one(srv->loops[0], sv[1], &peer, (socklen_t)sizeof peer);
        return sv[0];
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tcp_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    return fd;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const size_t pieces[8] = {1 << 20, 1 << 20, 1 << 20, 1 << 20, 1, 3, 17, 200};
    size_t piece = pieces[data[0] & 7];
    int wait_first = (data[0] >> 3) & 1;
    int rst = (data[0] >> 4) & 1;
    const uint8_t *in = data + 1;
    size_t n = size - 1;

    int fd = client_connect();
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
        die("fcntl");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t off = 0, got = 0;
    int wr_open = 1, eof = 0;
    char buf[16384];
    while (!eof) {
        long left = timeout_ms - ms_since(&t0);
        if (left <= 0) {
            fprintf(stderr, "fuzz-conn: server kept the connection %d ms after the "
                            "client's half-close (sent %zu of %zu bytes, got %zu)\n",
                    timeout_ms, off, n, got);
            abort();
        }
        if (wr_open && off == n && (!wait_first || got > 0 || ms_since(&t0) > 10)) {
            shutdown(fd, SHUT_WR);
            wr_open = 0;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (wr_open && off < n)
            p.events |= POLLOUT;
        int timeout = wr_open && off == n ? 2 : (int)left;
        if (poll(&p, 1, timeout) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (p.revents & POLLOUT) {
            size_t k = n - off < piece ? n - off : piece;
            ssize_t w = send(fd, in + off, k, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                off = n; /* the server closed: stop writing, read what it said */
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r > 0)
                got += (size_t)r;
            else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                eof = 1;
        }
    }
    if (rst && use_tcp) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(fd);
    return 0;
}
