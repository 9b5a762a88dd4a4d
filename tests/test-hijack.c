/* tests/test-hijack.c: taking over a connection and close-notify (lib/hijack.c, the
 * hijack path of lib/conn.c), mirroring Go's serve_test.go (docs/DESIGN.md §6), and what
 * the collector can reclaim once a hijacking handler returned (the retention study). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"
/* For the probes on conn and connReader only: the collection tests watch objects the
 * public API does not expose. Struct layouts only; no internal function is called. */
#include "../lib/internal.h"

#define WAIT_MS 10000 /* bound of every wait for the other side */
#define NCONN 50      /* connections per collection round */

/* ---- the server under test ---------------------------------------------------------- */

static void server_start(gh_handler_fn h, void *data, gh_hijack_stage_t stage, int no_keepalive,
                         gh_conn_state_fn cs)
{
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = h;
    cfg.handler_data = data;
    cfg.hijack_stage = stage;
    cfg.disable_keepalive = no_keepalive;
    cfg.conn_state = cs;
    th_server_start(&cfg);
}

/* Wait until the server saw `hijacked` hijacks and every worker is back waiting for work
 * (its handler returned and it scrubbed its stack). Returns 1, or 0 on timeout. */
static int wait_workers_idle(unsigned long hijacked)
{
    gh_time_t deadline = gh_now() + (gh_time_t)WAIT_MS * GH_MSEC;
    while (gh_now() < deadline) {
        gh_server_stats_t st = th_stats();
        if (st.hijacked >= hijacked && st.idle_workers == st.workers && st.active_conns == 0)
            return 1;
        struct timespec ts = {0, 1000000}; /* polling a condition, bounded above */
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* ---- events: handlers post, the test thread (or a handler) waits, bounded ---------- */

enum { EV_IN, EV_DONE, EV_GO, EV_COUNT };
static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cv = PTHREAD_COND_INITIALIZER;
static int ev_n[EV_COUNT];

static void ev_post(int k)
{
    pthread_mutex_lock(&ev_mu);
    ev_n[k]++;
    pthread_cond_broadcast(&ev_cv);
    pthread_mutex_unlock(&ev_mu);
}

/* Wait until event k was posted n times; 1, or 0 after WAIT_MS. */
static int ev_wait(int k, int n)
{
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&ev_mu);
    int rc = 0;
    while (ev_n[k] < n && rc == 0)
        rc = pthread_cond_timedwait(&ev_cv, &ev_mu, &at);
    int ok = ev_n[k] >= n;
    pthread_mutex_unlock(&ev_mu);
    return ok;
}

/* ---- what handlers record (GC-visible statics; asserted on the test thread) -------- */

static struct {
    int rc, rc2;
    ssize_t k, k0, k1;
    int done_during, done_after, cn_done;
    int ok, cnfd, polled;
    int wait_ms; /* on_cn_wait: how long to wait for close-notify (0: WAIT_MS) */
    char text[256], addr1[64], addr2[64];
} res;

/* What a "user" keeps of hijacked connections: statics are roots. */
static gh_netconn_t *kept_nc[NCONN];
static gh_reader_t *kept_r[NCONN];
static gh_writer_t *kept_w[NCONN];
static int kept_rc[NCONN];
static gh_ctx_t *kept_ctx;
static gh_response_t *kept_resp;
static gh_request_t *kept_req;

enum { P_RESP, P_REQ, P_CTX, P_CONN, P_CREADER, P_KINDS };
static const char *const p_names[P_KINDS] = {"response", "request", "request ctx", "conn",
                                             "connReader"};
static gh_probe_t *probes[NCONN][P_KINDS];

static struct {
    unsigned long id[64];
    int state[64];
    int n;
} states;

static void setup(void)
{
    memset(&res, 0, sizeof res);
    memset(ev_n, 0, sizeof ev_n);
    memset(kept_nc, 0, sizeof kept_nc);
    memset(kept_r, 0, sizeof kept_r);
    memset(kept_w, 0, sizeof kept_w);
    memset(kept_rc, 0, sizeof kept_rc);
    memset(probes, 0, sizeof probes);
    memset(&states, 0, sizeof states);
    kept_ctx = NULL;
    kept_resp = NULL;
    kept_req = NULL;
    th_srv = NULL;
}

static void teardown(void) { th_server_close(); }

/* ---- small client-side helpers ------------------------------------------------------ */

static int connect_send(const char *s)
{
    int fd = th_connect(th_port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(th_sends(fd, s), 0);
    return fd;
}

/* Read exactly n bytes (NUL-terminated into buf) within WAIT_MS. */
static ssize_t read_n(int fd, char *buf, size_t n)
{
    int closed;
    return th_read_all(fd, buf, n, WAIT_MS, &closed);
}

/* Decode the chunked body of a complete response into out (cap bytes); -1 if bad. */
static ssize_t dechunk(const char *resp, char *out, size_t cap)
{
    const char *p = th_body(resp);
    size_t len = 0;
    if (!p)
        return -1;
    for (;;) {
        char *end;
        unsigned long sz = strtoul(p, &end, 16);
        if (end == p || strncmp(end, "\r\n", 2) != 0)
            return -1;
        p = end + 2;
        if (sz == 0)
            break;
        if (len + sz > cap || strlen(p) < sz + 2 || strncmp(p + sz, "\r\n", 2) != 0)
            return -1;
        memcpy(out + len, p, sz);
        len += sz;
        p += sz + 2;
    }
    out[len < cap ? len : cap - 1] = 0;
    return (ssize_t)len;
}

/* poll(fd, POLLIN) for up to ms, through EINTR (the collector's signals). */
static int poll_in(int fd, int ms)
{
    gh_time_t deadline = gh_now() + (gh_time_t)ms * GH_MSEC;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        gh_time_t left = deadline - gh_now();
        int rc = poll(&p, 1, left > 0 ? (int)(left / GH_MSEC) + 1 : 0);
        if (rc < 0 && errno == EINTR && gh_now() < deadline)
            continue;
        return rc > 0 && (p.revents & POLLIN) ? 1 : rc;
    }
}

static const char *const GET = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";

/* ---- Hijack (Go: TestDoubleHijack, TestWriteAfterHijack, ...) ------------------------ */

static void on_double_hijack(gh_response_t *w, gh_request_t *r, void *data)
{
    gh_netconn_t *nc, *nc2 = (gh_netconn_t *)&res; /* must come back NULL */
    gh_bufrw_t rw, rw2 = {(gh_reader_t *)&res, (gh_writer_t *)&res}; /* and these */
    (void)r, (void)data;
    res.rc = gh_response_hijack(w, &nc, &rw);
    res.rc2 = gh_response_hijack(w, &nc2, &rw2);
    res.ok = nc2 == NULL && rw2.r == NULL && rw2.w == NULL;
    if (res.rc == 0) {
        gh_writer_puts(rw.w, "Hello");
        res.k = gh_writer_flush(rw.w);
        gh_netconn_close(nc);
    }
    ev_post(EV_DONE);
}

START_TEST(test_hijack_double_fails_and_first_conn_works)
{
    server_start(on_double_hijack, NULL, GH_HIJACK_RELEASE, 0, NULL);
    int fd = connect_send(GET);
    char buf[64];
    int closed;
    ck_assert_int_eq(th_read_all(fd, buf, sizeof buf - 1, WAIT_MS, &closed), 5);
    ck_assert_str_eq(buf, "Hello");
    ck_assert_int_eq(closed, 1);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.rc2, GH_EHIJACKED);
    ck_assert_int_eq(res.ok, 1);
    ck_assert_int_eq(res.k, 0);
    close(fd);
}
END_TEST

static void on_write_after_hijack(gh_response_t *w, gh_request_t *r, void *data)
{
    gh_netconn_t *nc;
    gh_bufrw_t rw;
    (void)r, (void)data;
    res.rc = gh_response_hijack(w, &nc, &rw);
    res.k = gh_response_write(w, "x", 1);
    res.k0 = gh_response_write(w, "", 0);
    res.rc2 = gh_response_write_header(w, 200);
    kept_nc[0] = nc;
    kept_r[0] = rw.r;
    kept_w[0] = rw.w;
    ev_post(EV_DONE);
}

/* Go's goroutine that writes after the handler returned. */
static void *late_writer(void *arg)
{
    (void)arg;
    gh_writer_puts(kept_w[0], "Hello, ");
    res.k1 = gh_writer_flush(kept_w[0]);
    if (gh_netconn_write(kept_nc[0], "world", 5) != 5)
        res.k1 = -1;
    gh_writer_puts(kept_w[0], "!");
    if (gh_writer_flush(kept_w[0]) != 0)
        res.k1 = -1;
    gh_netconn_close(kept_nc[0]);
    return NULL;
}

START_TEST(test_hijack_write_after_hijack)
{
    server_start(on_write_after_hijack, NULL, GH_HIJACK_RELEASE, 0, NULL);
    int fd = connect_send(GET);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert(wait_workers_idle(1));
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.k, GH_EHIJACKED);
    ck_assert_int_eq(res.k0, GH_EHIJACKED);
    ck_assert_int_eq(res.rc2, GH_EHIJACKED);
    pthread_t t;
    ck_assert_int_eq(gh_thread_start(&t, late_writer, NULL), 0);
    ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    ck_assert_int_eq(res.k1, 0);
    char buf[64];
    int closed;
    ck_assert_int_eq(th_read_all(fd, buf, sizeof buf - 1, WAIT_MS, &closed), 13);
    ck_assert_str_eq(buf, "Hello, world!");
    ck_assert_int_eq(closed, 1);
    close(fd);
}
END_TEST

static void on_zero_bytes(gh_response_t *w, gh_request_t *r, void *data)
{
    gh_netconn_t *nc;
    (void)r, (void)data;
    res.rc2 = gh_response_flush(w);
    res.rc = gh_response_hijack(w, &nc, NULL);
    res.k0 = gh_response_write(w, NULL, 0);
    if (res.rc == 0)
        gh_netconn_close(nc);
    ev_post(EV_DONE);
}

START_TEST(test_hijack_write_zero_bytes_after_flush)
{
    server_start(on_zero_bytes, NULL, GH_HIJACK_RELEASE, 0, NULL);
    int fd = connect_send(GET);
    char buf[1024];
    int closed;
    /* A flushed chunked head, then the handler closed the hijacked conn. */
    ck_assert_int_gt(th_read_all(fd, buf, sizeof buf - 1, WAIT_MS, &closed), 0);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(th_status(buf), 200);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_int_eq(res.rc2, 0);
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.k0, GH_EHIJACKED);
    close(fd);
}
END_TEST

static void on_unflushed_body_and_hijack(gh_response_t *w, gh_request_t *r, void *data)
{
    gh_netconn_t *nc;
    (void)r, (void)data;
    res.k0 = gh_response_puts(w, "unflushed"); /* in the pre-chunking buffer */
    res.rc = gh_response_hijack(w, &nc, NULL);
    if (res.rc == 0) {
        res.k = gh_netconn_write(nc, "raw", 3);
        gh_netconn_close(nc);
    }
    ev_post(EV_DONE);
}

/* Go 1.19's Hijack flushes the header the handler wrote (cw.flush) but drops body bytes
 * still in the response's buffer: the client gets the chunked head, then the raw bytes. */
START_TEST(test_hijack_drops_an_unflushed_body_as_go_does)
{
    server_start(on_unflushed_body_and_hijack, NULL, GH_HIJACK_RELEASE, 0, NULL);
    int fd = connect_send(GET);
    char buf[1024];
    int closed;
    ck_assert_int_gt(th_read_all(fd, buf, sizeof buf - 1, WAIT_MS, &closed), 0);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(th_status(buf), 200);
    ck_assert(th_has_header(buf, "Transfer-Encoding", "chunked"));
    ck_assert_ptr_nonnull(th_body(buf));
    ck_assert_str_eq(th_body(buf), "raw");
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_int_eq(res.k0, 9);
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.k, 3);
    close(fd);
}
END_TEST

static void on_flush_and_hijack(gh_response_t *w, gh_request_t *r, void *data)
{
    gh_netconn_t *nc;
    gh_bufrw_t rw;
    (void)r, (void)data;
    gh_response_puts(w, "Hello, ");
    res.rc2 = gh_response_flush(w);
    res.rc = gh_response_hijack(w, &nc, &rw);
    if (res.rc == 0) {
        /* Finish the chunked body the server started. */
        gh_writer_puts(rw.w, "6\r\nworld!\r\n0\r\n\r\n");
        res.k = gh_writer_flush(rw.w);
        gh_netconn_close(nc);
    }
    ev_post(EV_DONE);
}

START_TEST(test_hijack_after_flush_finishes_chunked_body)
{
    server_start(on_flush_and_hijack, NULL, GH_HIJACK_RELEASE, 0, NULL);
    int fd = connect_send(GET);
    char buf[1024], body[64];
    ck_assert_int_gt(th_read_response(fd, buf, sizeof buf - 1, WAIT_MS), 0);
    ck_assert_int_eq(th_status(buf), 200);
    ck_assert(th_has_header(buf, "Transfer-Encoding", "chunked"));
    ck_assert_int_eq(dechunk(buf, body, sizeof body), 13);
    ck_assert_str_eq(body, "Hello, world!");
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_int_eq(res.rc2, 0);
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.k, 0);
    close(fd);
}
END_TEST

/* ---- bytes after the head (Go: TestServerHijackGetsBackgroundByte{,_big}, ...FullBody) */

static void on_read_after_head(gh_response_t *w, gh_request_t *r, void *data)
{
    size_t want = (size_t)(uintptr_t)data;
    gh_netconn_t *nc;
    gh_bufrw_t rw;
    ev_post(EV_IN); /* tell the client to send more */
    res.rc = gh_response_hijack(w, &nc, &rw);
    if (res.rc == 0) {
        gh_netconn_set_deadline(nc, gh_now() + (gh_time_t)WAIT_MS * GH_MSEC);
        char *buf = malloc(want);
        res.k = gh_reader_read_full(rw.r, buf, want);
        res.ok = res.k == (ssize_t)want;
        for (size_t i = 0; res.ok && i < want; i++)
            res.ok = buf[i] == (want == 3 ? "foo"[i] : (char)('a' + i % 26));
        free(buf);
        res.done_during = gh_request_done(r);
        gh_netconn_close(nc);
    }
    ev_post(EV_DONE);
}

static char *pattern(size_t n)
{
    char *p = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + i % 26);
    p[n] = 0;
    return p;
}

/* _i: 0 "foo" with the head, 1 "foo" after the handler started then a half-close (Go's
 * order), 2 8 KiB after the handler started then a half-close. */
START_TEST(test_hijack_reader_has_bytes_after_head)
{
    size_t want = _i == 2 ? 8192 : 3;
    server_start(on_read_after_head, (void *)(uintptr_t)want, GH_HIJACK_RELEASE, 0, NULL);

    int fd;
    if (_i == 0) {
        fd = connect_send("GET / HTTP/1.1\r\nHost: example.com\r\n\r\nfoo");
    } else {
        fd = connect_send(GET);
        ck_assert(ev_wait(EV_IN, 1));
        char *more = _i == 1 ? strdup("foo") : pattern(want);
        ck_assert_int_eq(th_send(fd, more, want), 0);
        free(more);
        shutdown(fd, SHUT_WR);
    }
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.k, (ssize_t)want);
    ck_assert_int_eq(res.ok, 1);
    ck_assert_int_eq(res.done_during, 0); /* those bytes are not "client gone" */
    close(fd);
}
END_TEST

#define BIG_BODY (100 * 1024)

START_TEST(test_hijack_reader_has_full_body)
{
    server_start(on_read_after_head, (void *)(uintptr_t)BIG_BODY, GH_HIJACK_RELEASE, 0, NULL);

    char head[128];
    int hl = snprintf(head, sizeof head,
                      "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: %d\r\n\r\n", BIG_BODY);
    char *req = malloc((size_t)hl + BIG_BODY);
    char *body = pattern(BIG_BODY);
    memcpy(req, head, (size_t)hl);
    memcpy(req + hl, body, BIG_BODY);
    free(body);
    int fd = th_connect(th_port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(th_send(fd, req, (size_t)hl + BIG_BODY), 0);
    free(req);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.k, BIG_BODY);
    ck_assert_int_eq(res.ok, 1);
    ck_assert_int_eq(res.done_during, 0);
    close(fd);
}
END_TEST

/* ---- 101 Switching Protocols (Go: TestDisableKeepAliveUpgrade) ---------------------- */

static void on_upgrade(gh_response_t *w, gh_request_t *r, void *data)
{
    gh_netconn_t *nc;
    gh_bufrw_t rw;
    (void)r, (void)data;
    gh_response_header_set(w, "Connection", "Upgrade");
    gh_response_header_set(w, "Upgrade", "someProto");
    res.rc2 = gh_response_write_header(w, 101);
    res.rc = gh_response_hijack(w, &nc, &rw);
    if (res.rc == 0) {
        /* Echo from the buffered reader (it may hold data) to the raw conn. */
        gh_netconn_set_deadline(nc, gh_now() + (gh_time_t)WAIT_MS * GH_MSEC);
        char buf[256];
        ssize_t k;
        while ((k = gh_reader_read(rw.r, buf, sizeof buf)) > 0) {
            if (gh_netconn_write(nc, buf, (size_t)k) != k)
                break;
            res.k += k;
        }
        res.k1 = k;
        gh_netconn_close(nc);
    }
    ev_post(EV_DONE);
}

/* _i: disable_keepalive. */
START_TEST(test_hijack_switching_protocols_echo)
{
    server_start(on_upgrade, NULL, GH_HIJACK_RELEASE, _i, NULL);
    int fd = connect_send("GET / HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n"
                          "Upgrade: someProto\r\n\r\n");
    char buf[1024];
    ck_assert_int_gt(th_read_response(fd, buf, sizeof buf - 1, WAIT_MS), 0);
    ck_assert_int_eq(th_status(buf), 101);
    ck_assert(th_has_header(buf, "Upgrade", "someProto"));
    ck_assert_int_eq(th_sends(fd, "hello"), 0);
    ck_assert_int_eq(read_n(fd, buf, 5), 5);
    ck_assert_str_eq(buf, "hello");
    ck_assert_int_eq(th_sends(fd, ", world"), 0);
    ck_assert_int_eq(read_n(fd, buf, 7), 7);
    ck_assert_str_eq(buf, ", world");
    shutdown(fd, SHUT_WR);
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_int_eq(res.rc2, 0);
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.k, 12);
    ck_assert_int_eq(res.k1, 0);
    close(fd);
}
END_TEST

/* ---- Go: TestHijackAfterCloseNotifier ----------------------------------------------- */

static void on_cn_then_hijack(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    if (strcmp(gh_request_target(r), "/first") == 0) {
        res.ok = gh_response_close_notify(w) != NULL;
        snprintf(res.addr1, sizeof res.addr1, "%s", gh_request_remote_addr(r));
        gh_response_puts(w, "one");
    } else {
        gh_netconn_t *nc;
        gh_bufrw_t rw;
        res.rc = gh_response_hijack(w, &nc, &rw);
        if (res.rc == 0) {
            snprintf(res.addr2, sizeof res.addr2, "%s", gh_netconn_remote_addr(nc));
            res.cnfd = gh_fd_fileno(gh_netconn_fd(nc));
            gh_writer_puts(rw.w, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\ntwo");
            res.k = gh_writer_flush(rw.w);
            gh_netconn_close(nc);
        }
    }
    ev_post(EV_DONE);
}

START_TEST(test_hijack_after_close_notify_on_earlier_request)
{
    server_start(on_cn_then_hijack, NULL, GH_HIJACK_RELEASE, 0, NULL);
    int fd = connect_send("GET /first HTTP/1.1\r\nHost: example.com\r\n\r\n");
    char buf[1024];
    ck_assert_int_gt(th_read_response(fd, buf, sizeof buf - 1, WAIT_MS), 0);
    ck_assert_str_eq(th_body(buf), "one");
    ck_assert_int_eq(th_sends(fd, "GET /second HTTP/1.1\r\nHost: example.com\r\n\r\n"), 0);
    ck_assert_int_gt(th_read_response(fd, buf, sizeof buf - 1, WAIT_MS), 0);
    ck_assert_str_eq(th_body(buf), "two");
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    ck_assert(ev_wait(EV_DONE, 2));
    ck_assert_int_eq(res.ok, 1);
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.k, 0);
    ck_assert_int_ge(res.cnfd, 0); /* the raw descriptor */
    ck_assert_str_ne(res.addr1, "");
    ck_assert_str_eq(res.addr1, res.addr2);
    close(fd);
}
END_TEST

/* ---- Go: TestServerConnState -------------------------------------------------------- */

static pthread_mutex_t states_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_state(gh_conn_t *c, gh_conn_state_t st, void *data)
{
    (void)data;
    pthread_mutex_lock(&states_mu);
    if (states.n < 64) {
        states.id[states.n] = gh_conn_id(c);
        states.state[states.n] = (int)st;
        states.n++;
    }
    pthread_mutex_unlock(&states_mu);
}

/* The states recorded for connection id, into out (at most cap); returns the count. */
static int states_of(unsigned long id, int *out, int cap)
{
    int n = 0;
    pthread_mutex_lock(&states_mu);
    for (int i = 0; i < states.n && n < cap; i++)
        if (states.id[i] == id)
            out[n++] = states.state[i];
    pthread_mutex_unlock(&states_mu);
    return n;
}

static void on_state_handler(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    if (strcmp(gh_request_target(r), "/hijack") == 0) {
        gh_netconn_t *nc;
        res.rc = gh_response_hijack(w, &nc, NULL);
        kept_nc[0] = nc;
    } else {
        gh_response_puts(w, "ok");
    }
    ev_post(EV_DONE);
}

START_TEST(test_hijack_conn_state_new_active_hijacked)
{
    server_start(on_state_handler, NULL, GH_HIJACK_RELEASE, 0, on_state);
    int fd = connect_send("GET /hijack HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert(wait_workers_idle(1));
    ck_assert_int_eq(res.rc, 0);
    gh_netconn_close(kept_nc[0]);
    kept_nc[0] = NULL;
    close(fd);

    /* A second connection, served and closed, as a barrier: its Closed comes after
     * anything the server would have said about the first. */
    int fd2 = connect_send("GET /plain HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
    ck_assert_int_eq(th_wait_closed(fd2, WAIT_MS), 1);
    close(fd2);
    int st[8], n = 0;
    gh_time_t deadline = gh_now() + (gh_time_t)WAIT_MS * GH_MSEC;
    while (gh_now() < deadline) {
        n = states_of(2, st, 8);
        if (n > 0 && st[n - 1] == GH_STATE_CLOSED)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(st[n - 1], GH_STATE_CLOSED);

    n = states_of(1, st, 8);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(st[0], GH_STATE_NEW);
    ck_assert_int_eq(st[1], GH_STATE_ACTIVE);
    ck_assert_int_eq(st[2], GH_STATE_HIJACKED);
}
END_TEST

/* ---- Go: TestServerHandlersCanHandleH2PRI, TestHTTP2UpgradeClosesConnection --------- */

static void on_pri(gh_response_t *w, gh_request_t *r, void *data)
{
    snprintf(res.text, sizeof res.text, "%s %s %d.%d", gh_request_method(r), gh_request_target(r),
             gh_request_proto_major(r), gh_request_proto_minor(r));
    if (data) {
        gh_netconn_t *nc;
        gh_bufrw_t rw;
        res.rc = gh_response_hijack(w, &nc, &rw);
        if (res.rc == 0) {
            gh_netconn_set_deadline(nc, gh_now() + (gh_time_t)WAIT_MS * GH_MSEC);
            char buf[8] = {0};
            res.k = gh_reader_read_full(rw.r, buf, 6);
            res.ok = memcmp(buf, "SM\r\n\r\n", 6) == 0;
            gh_netconn_write(nc, "bye", 3);
            gh_netconn_close(nc);
        }
    }
    ev_post(EV_DONE);
}

static const char *const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

START_TEST(test_hijack_h2_preface)
{
    server_start(on_pri, &res, GH_HIJACK_RELEASE, 0, NULL);

    int fd = connect_send(PREFACE);
    char buf[64];
    int closed;
    ck_assert_int_eq(th_read_all(fd, buf, sizeof buf - 1, WAIT_MS, &closed), 3);
    ck_assert_str_eq(buf, "bye");
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_str_eq(res.text, "PRI * 2.0");
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.k, 6);
    ck_assert_int_eq(res.ok, 1);
    close(fd);
}
END_TEST

START_TEST(test_hijack_h2_preface_not_hijacked_closes)
{
    server_start(on_pri, NULL, GH_HIJACK_RELEASE, 0, NULL);
    int fd = connect_send(PREFACE);
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_str_eq(res.text, "PRI * 2.0");
    close(fd);
}
END_TEST

/* ---- close-notify (Go: TestCloseNotifier*, TestHijackBeforeRequestBodyRead) --------- */

static void on_cn_wait(gh_response_t *w, gh_request_t *r, void *data)
{
    gh_ctx_t *cn = gh_response_close_notify(w);
    res.cnfd = gh_response_close_notify_fd(w);
    if (data) {
        /* Read the whole body first (Go: TestHijackBeforeRequestBodyRead). */
        char *buf = malloc(65536);
        ssize_t k;
        while ((k = gh_request_read(r, buf, 65536)) > 0)
            res.k += k;
        res.k1 = k;
        free(buf);
    }
    ev_post(EV_IN);
    int ms = res.wait_ms ? res.wait_ms : WAIT_MS;
    res.rc = cn ? gh_ctx_wait(cn, gh_now() + (gh_time_t)ms * GH_MSEC) : -1;
    res.polled = res.cnfd >= 0 ? poll_in(res.cnfd, res.rc ? WAIT_MS : 0) : -1;
    res.done_during = gh_request_done(r);
    ev_post(EV_DONE);
}

START_TEST(test_close_notify_fires_on_client_close)
{
    server_start(on_cn_wait, NULL, GH_HIJACK_RELEASE, 0, NULL);
    int fd = connect_send(GET);
    ck_assert(ev_wait(EV_IN, 1));
    close(fd);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_int_ge(res.cnfd, 0);
    ck_assert_int_eq(res.rc, GH_ECONNRESET);
    ck_assert_int_eq(res.polled, 1);
    ck_assert_int_eq(res.done_during, GH_ECONNRESET);
}
END_TEST

/* A small body that came with the head and that the handler never reads. */
START_TEST(test_close_notify_fires_with_unread_body)
{
    server_start(on_cn_wait, NULL, GH_HIJACK_RELEASE, 0, NULL);
    int fd = connect_send("POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello");
    ck_assert(ev_wait(EV_IN, 1));
    close(fd);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_int_eq(res.rc, GH_ECONNRESET);
    ck_assert_int_eq(res.polled, 1);
}
END_TEST

#define MIB (1024 * 1024)

START_TEST(test_close_notify_fires_after_body_read)
{
    server_start(on_cn_wait, &res, GH_HIJACK_RELEASE, 0, NULL);

    char head[128];
    snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: %d\r\n\r\n",
             MIB);
    int fd = connect_send(head);
    char *body = pattern(MIB);
    ck_assert_int_eq(th_send(fd, body, MIB), 0);
    free(body);
    ck_assert(ev_wait(EV_IN, 1));
    close(fd);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_int_eq(res.k, MIB);
    ck_assert_int_eq(res.k1, 0);
    ck_assert_int_eq(res.rc, GH_ECONNRESET);
    ck_assert_int_eq(res.polled, 1);
}
END_TEST

/* The client sends a body larger than what the poller buffers with the head, then
 * leaves before the handler reads it; the handler reads it all, then waits. Go fires
 * here: the background read starts when the body hits EOF (onHitEOF) and sees the EOF. */
START_TEST(test_close_notify_fires_when_client_left_before_body_read)
{
    res.wait_ms = 1000;
    server_start(on_cn_wait, &res, GH_HIJACK_RELEASE, 0, NULL);
    char head[128];
    snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: %d\r\n\r\n",
             65536);
    int fd = connect_send(head);
    char *body = pattern(65536);
    ck_assert_int_eq(th_send(fd, body, 65536), 0);
    free(body);
    shutdown(fd, SHUT_WR);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_int_eq(res.k, 65536);
    ck_assert_int_eq(res.k1, 0);
    /* The poller saw the FIN while body bytes were pending and stopped watching; the
     * body reader re-arms the watch at the body's end (as Go restarts its background
     * read), so the departure is seen then. */
    ck_assert_int_eq(res.rc, GH_ECONNRESET);
    close(fd);
}
END_TEST

static void on_cn_pipelined(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    if (strcmp(gh_request_target(r), "/1") == 0) {
        gh_ctx_t *cn = gh_response_close_notify(w);
        ev_post(EV_IN);
        /* A bounded wait that must time out: no notification for pipelined bytes. */
        res.rc = cn ? gh_ctx_wait(cn, gh_now() + 300 * GH_MSEC) : -1;
        res.done_during = gh_request_done(r);
        gh_response_puts(w, "one");
    } else {
        gh_response_puts(w, "two");
    }
    ev_post(EV_DONE);
}

/* _i: 0 both requests in one segment (Go), 1 the second while the first's handler runs. */
START_TEST(test_close_notify_not_fired_by_pipelined_request)
{
    static const char *const R1 = "GET /1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
    static const char *const R2 = "GET /2 HTTP/1.1\r\nHost: example.com\r\n\r\n";
    server_start(on_cn_pipelined, NULL, GH_HIJACK_RELEASE, 0, NULL);
    int fd;
    if (_i == 0) {
        char both[256];
        snprintf(both, sizeof both, "%s%s", R1, R2);
        fd = connect_send(both);
    } else {
        fd = connect_send(R1);
        ck_assert(ev_wait(EV_IN, 1));
        ck_assert_int_eq(th_sends(fd, R2), 0);
    }
    char buf[1024];
    ck_assert_int_gt(th_read_response(fd, buf, sizeof buf - 1, WAIT_MS), 0);
    ck_assert_str_eq(th_body(buf), "one");
    ck_assert_int_gt(th_read_response(fd, buf, sizeof buf - 1, WAIT_MS), 0);
    ck_assert_str_eq(th_body(buf), "two");
    ck_assert(ev_wait(EV_DONE, 2));
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.done_during, 0);
    close(fd);
}
END_TEST

#define NLEAK 20

static void on_cn_ignored(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)r, (void)data;
    int i = __atomic_fetch_add(&res.k, 1, __ATOMIC_RELAXED);
    gh_ctx_t *cn = gh_response_close_notify(w);
    if (i % 2)
        (void)gh_response_close_notify_fd(w); /* the eventfd too, for odd ones */
    if (i < NCONN)
        probes[i][P_CTX] = gh_probe_new(cn);
    gh_response_puts(w, "ok");
    ev_post(EV_DONE);
}

static int count_unreachable(int n, int kind)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += probes[i][kind] != NULL && gh_probe_unreachable(probes[i][kind]);
    return c;
}

/* Collect until the probes of every kind in kinds (a bit set) report unreachable, at most
 * 4 rounds with churn after the first. Returns the rounds used (5: some never were). */
static void *collect_on_fresh_thread(void *arg)
{
    (void)arg;
    gh_gc_collect(2);
    return NULL;
}

__attribute__((noinline)) static int collect_eventually(int n, unsigned kinds)
{
    for (int a = 0; a < 4; a++) {
        if (a)
            th_churn(a);
        if (a >= 2) {
            /* Later rounds collect from a new thread: stale words left in the
             * collector's frames on this thread's stack (docs/DESIGN.md §3.2) are then
             * below a shallow stack pointer and no longer scanned. */
            pthread_t t;
            if (gh_thread_start(&t, collect_on_fresh_thread, NULL) == 0)
                gh_thread_join(t, NULL);
        } else {
            gh_gc_collect(2);
        }
        int all = 1;
        for (int k = 0; k < P_KINDS; k++)
            if ((kinds & (1u << k)) && count_unreachable(n, k) < n)
                all = 0;
        if (all)
            return a + 1;
    }
    return 5;
}

static int count_open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

START_TEST(test_close_notify_ignored_leaks_nothing)
{
    server_start(on_cn_ignored, NULL, GH_HIJACK_RELEASE, 0, NULL);
    unsigned long leaked0 = gh_fd_leaked();
    int fds0 = count_open_fds();
    for (int i = 0; i < NLEAK; i++) {
        int fd = connect_send("GET / HTTP/1.0\r\n\r\n");
        char buf[1024];
        int closed;
        ck_assert_int_gt(th_read_all(fd, buf, sizeof buf - 1, WAIT_MS, &closed), 0);
        ck_assert_int_eq(closed, 1);
        ck_assert_str_eq(th_body(buf), "ok");
        close(fd);
    }
    ck_assert(ev_wait(EV_DONE, NLEAK));
    ck_assert(wait_workers_idle(0));
    ck_assert_int_eq(res.k, NLEAK);
    collect_eventually(NLEAK, 1u << P_CTX);
    ck_assert_int_ge(count_unreachable(NLEAK, P_CTX), NLEAK - 1);
    ck_assert_uint_eq(gh_fd_leaked(), leaked0);
    ck_assert_int_eq(count_open_fds(), fds0); /* every eventfd and socket closed */
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

/* ---- after the handler returned ----------------------------------------------------- */

static void on_keep_response(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)r, (void)data;
    kept_resp = w;
    gh_response_puts(w, "ok");
    ev_post(EV_DONE);
}

/* Only call, then drop: the response stays out of the test thread's frames. */
__attribute__((noinline)) static void call_on_kept_response(void)
{
    gh_netconn_t *nc = (gh_netconn_t *)&res;
    gh_bufrw_t rw = {NULL, NULL};
    res.rc = gh_response_hijack(kept_resp, &nc, &rw);
    res.ok = nc == NULL && rw.r == NULL && rw.w == NULL;
    res.rc2 = gh_response_close_notify(kept_resp) == NULL;
    res.k = gh_response_write(kept_resp, "x", 1);
    res.cnfd = gh_response_close_notify_fd(kept_resp);
    kept_resp = NULL;
}

START_TEST(test_hijack_after_handler_returned_fails)
{
    server_start(on_keep_response, NULL, GH_HIJACK_RELEASE, 0, NULL);
    int fd = connect_send(GET);
    char buf[1024];
    ck_assert_int_gt(th_read_response(fd, buf, sizeof buf - 1, WAIT_MS), 0);
    ck_assert_str_eq(th_body(buf), "ok");
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert(wait_workers_idle(0));
    call_on_kept_response();
    ck_assert_int_eq(res.rc, GH_EHANDLERDONE);
    ck_assert_int_eq(res.ok, 1);
    ck_assert_int_eq(res.rc2, 1);
    ck_assert_int_eq(res.k, GH_EHANDLERDONE);
    ck_assert_int_eq(res.cnfd, GH_EHANDLERDONE);
    /* The connection is still the server's and still works. */
    ck_assert_int_eq(th_sends(fd, GET), 0);
    ck_assert_int_gt(th_read_response(fd, buf, sizeof buf - 1, WAIT_MS), 0);
    ck_assert_str_eq(th_body(buf), "ok");
    close(fd);
}
END_TEST

static void on_hijack_keep_response(gh_response_t *w, gh_request_t *r, void *data)
{
    gh_netconn_t *nc;
    gh_bufrw_t rw;
    (void)data;
    res.rc = gh_response_hijack(w, &nc, &rw);
    res.done_during = gh_request_done(r); /* live until the handler returns */
    kept_resp = w;
    kept_req = r;
    kept_nc[0] = nc;
    ev_post(EV_DONE);
}

/* Only call, then drop: the response and request stay out of the test thread's frames. */
__attribute__((noinline)) static void call_on_kept_hijacked_response(void)
{
    gh_netconn_t *nc = (gh_netconn_t *)&res;
    gh_bufrw_t rw = {(gh_reader_t *)&res, (gh_writer_t *)&res};
    char tmp[8];
    res.k = gh_response_write(kept_resp, "x", 1);
    res.k0 = gh_response_flush(kept_resp);
    res.k1 = gh_request_read(kept_req, tmp, sizeof tmp);
    res.rc2 = gh_response_hijack(kept_resp, &nc, &rw);
    res.ok = nc == NULL && rw.r == NULL && rw.w == NULL;
    res.cnfd = gh_response_header_set(kept_resp, "X-Late", "1");
    res.done_after = gh_request_done(kept_req);
    gh_ctx_t *ctx = gh_request_context(kept_req); /* made only now */
    res.cn_done = ctx ? gh_ctx_done(ctx) : 1;
    kept_resp = NULL;
    kept_req = NULL;
}

/* One rule (response.h, request.h, hijack.h): once the handler returned, every call on
 * its response and request fails with GH_EHANDLERDONE, hijacked or not, and the request
 * and its context (even one made afterwards) say GH_EHANDLERDONE. */
START_TEST(test_hijack_calls_after_return_fail_with_handler_done)
{
    server_start(on_hijack_keep_response, NULL, GH_HIJACK_RELEASE, 0, NULL);
    int fd = connect_send("POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc");
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert(wait_workers_idle(1));
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.done_during, 0);
    call_on_kept_hijacked_response();
    ck_assert_int_eq(res.k, GH_EHANDLERDONE);
    ck_assert_int_eq(res.k0, GH_EHANDLERDONE);
    ck_assert_int_eq(res.k1, GH_EHANDLERDONE);
    ck_assert_int_eq(res.rc2, GH_EHANDLERDONE);
    ck_assert_int_eq(res.ok, 1);
    ck_assert_int_eq(res.cnfd, GH_EHANDLERDONE);
    ck_assert_int_eq(res.done_after, GH_EHANDLERDONE);
    ck_assert_int_eq(res.cn_done, GH_EHANDLERDONE);
    ck_assert_int_eq(gh_netconn_close(kept_nc[0]), 0);
    close(fd);
}
END_TEST

static const gh_hijack_stage_t all_stages[] = {GH_HIJACK_RELEASE, GH_HIJACK_BEFORE,
                                               GH_HIJACK_WRITER, GH_HIJACK_LAZY_NOTIFY,
                                               GH_HIJACK_READER};

static void on_hijack_keep(gh_response_t *w, gh_request_t *r, void *data)
{
    gh_netconn_t *nc;
    gh_bufrw_t rw;
    (void)data;
    gh_ctx_t *ctx = gh_request_context(r);
    res.rc = gh_response_hijack(w, &nc, &rw);
    res.done_during = gh_ctx_done(ctx); /* Go: valid until ServeHTTP returns */
    kept_ctx = ctx;
    kept_nc[0] = nc;
    kept_r[0] = rw.r;
    kept_w[0] = rw.w;
    ev_post(EV_DONE);
}

/* _i: the stage. Go's Hijacker doc: the request context stays live until the handler
 * returns; then it is cancelled. A read error through the reader afterwards touches
 * nothing (docs/DESIGN.md §6 "C-only"). */
START_TEST(test_hijack_context_cancelled_when_handler_returns)
{
    server_start(on_hijack_keep, NULL, all_stages[_i], 0, NULL);
    int fd = connect_send(GET);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert(wait_workers_idle(1));
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.done_during, 0);
    ck_assert_int_eq(gh_ctx_done(kept_ctx), GH_EHANDLERDONE);

    close(fd);
    gh_gc_collect(2); /* let the weak link to the response clear where there is one */
    gh_netconn_set_deadline(kept_nc[0], gh_now() + (gh_time_t)WAIT_MS * GH_MSEC);
    char buf[16];
    ssize_t k = gh_reader_read(kept_r[0], buf, sizeof buf);
    ck_assert_int_le(k, 0);
    ck_assert_int_ne(k, GH_ETIMEDOUT);
    ck_assert_int_eq(gh_ctx_done(kept_ctx), GH_EHANDLERDONE);
    ck_assert_int_eq(gh_netconn_close(kept_nc[0]), 0);
}
END_TEST

/* The default stage: the returned reader and writer hold a buffer only while bytes are
 * in it. A read that leaves bytes keeps them (and so a buffer); the read that drains it
 * gives the buffer back; the next read works without one; a write holds a buffer until
 * it is flushed. _i: 0 the default stage, 1 the reader stage (buffers are kept). */
START_TEST(test_hijack_buffers_are_released_after_a_drain_and_come_back_on_next_read)
{
    int release = _i == 0;
    server_start(on_hijack_keep, NULL, release ? GH_HIJACK_RELEASE : GH_HIJACK_READER, 0, NULL);
    int fd = connect_send(GET);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert(wait_workers_idle(1));
    ck_assert_int_eq(res.rc, 0);
    gh_reader_t *r = kept_r[0];
    gh_writer_t *w = kept_w[0];
    gh_netconn_set_deadline(kept_nc[0], gh_now() + (gh_time_t)WAIT_MS * GH_MSEC);
    if (release) {
        ck_assert_uint_eq(gh_reader_size(r), 0);
        ck_assert_uint_eq(gh_writer_size(w), 0);
    }
    char buf[16];
    for (int round = 0; round < 3; round++) {
        /* Three bytes arrive; the first read takes one: two stay buffered. */
        ck_assert_int_eq(th_sends(fd, "abc"), 0);
        ck_assert_int_eq(gh_reader_read(r, buf, 1), 1);
        ck_assert_int_eq(buf[0], 'a');
        ck_assert_uint_eq(gh_reader_buffered(r, NULL), 2);
        ck_assert_uint_gt(gh_reader_size(r), 0);
        /* The read that drains it: released (default stage) or kept (reader stage). */
        ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 2);
        ck_assert_int_eq(memcmp(buf, "bc", 2), 0);
        if (release)
            ck_assert_uint_eq(gh_reader_size(r), 0);
        else
            ck_assert_uint_gt(gh_reader_size(r), 0);
        /* A read that takes all the source gives needs no buffer at all. */
        ck_assert_int_eq(th_sends(fd, "de"), 0);
        ck_assert_int_eq(gh_reader_read_full(r, buf, 2), 2);
        ck_assert_int_eq(memcmp(buf, "de", 2), 0);
        if (release)
            ck_assert_uint_eq(gh_reader_size(r), 0);
        /* A write holds a buffer until it is flushed. */
        ck_assert_int_eq(gh_writer_puts(w, "ok"), 2);
        ck_assert_uint_gt(gh_writer_size(w), 0);
        ck_assert_int_eq(gh_writer_flush(w), 0);
        if (release)
            ck_assert_uint_eq(gh_writer_size(w), 0);
        else
            ck_assert_uint_gt(gh_writer_size(w), 0);
        ck_assert_int_eq(read_n(fd, buf, 2), 2);
        ck_assert_str_eq(buf, "ok");
    }
    ck_assert_int_eq(gh_netconn_close(kept_nc[0]), 0);
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    close(fd);
}
END_TEST

static void on_hijack_read_until_eof(gh_response_t *w, gh_request_t *r, void *data)
{
    gh_netconn_t *nc;
    gh_bufrw_t rw;
    (void)data;
    gh_ctx_t *cn = gh_response_close_notify(w);
    res.rc = gh_response_hijack(w, &nc, &rw);
    if (res.rc == 0) {
        ev_post(EV_IN);
        gh_netconn_set_deadline(nc, gh_now() + (gh_time_t)WAIT_MS * GH_MSEC);
        char buf[16];
        res.k = gh_reader_read(rw.r, buf, sizeof buf);
        res.cn_done = cn ? gh_ctx_done(cn) : -1;
        res.done_during = gh_request_done(r);
        gh_netconn_close(nc);
    }
    ev_post(EV_DONE);
}

/* _i: the stage. While the handler runs, a failed read through the hijacked reader means
 * the client is gone: close-notify fires and the request context is cancelled. */
START_TEST(test_hijack_reader_eof_fires_close_notify)
{
    server_start(on_hijack_read_until_eof, NULL, all_stages[_i], 0, NULL);
    int fd = connect_send(GET);
    ck_assert(ev_wait(EV_IN, 1));
    close(fd);
    ck_assert(ev_wait(EV_DONE, 1));
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.k, 0);
    ck_assert_int_eq(res.cn_done, GH_ECONNRESET);
    ck_assert_int_eq(res.done_during, GH_ECONNRESET);
}
END_TEST

/* ---- collection: what a hijacked connection retains -------------------------------- */

static void on_hijack_probed(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    const char *idx = gh_request_header(r, "X-Idx");
    int i = idx ? atoi(idx) : -1;
    if (i < 0 || i >= NCONN) {
        ev_post(EV_DONE);
        return;
    }
    gh_ctx_t *ctx = gh_request_context(r);
    probes[i][P_RESP] = gh_probe_new(w);
    probes[i][P_REQ] = gh_probe_new(r);
    probes[i][P_CTX] = gh_probe_new(ctx);
    probes[i][P_CONN] = gh_probe_new(w->conn);
    probes[i][P_CREADER] = gh_probe_new(w->conn->r);
    gh_netconn_t *nc;
    gh_bufrw_t rw;
    kept_rc[i] = gh_response_hijack(w, &nc, &rw);
    kept_nc[i] = nc;
    kept_r[i] = rw.r;
    kept_w[i] = rw.w;
    ev_post(EV_DONE);
}

static const struct {
    gh_hijack_stage_t stage;
    int collected; /* 1: conn, response, request... unreachable; 0: retained */
} collect_cases[] = {
    {GH_HIJACK_RELEASE, 1}, {GH_HIJACK_READER, 1}, {GH_HIJACK_BEFORE, 0},
    {GH_HIJACK_WRITER, 0},  {GH_HIJACK_LAZY_NOTIFY, 0},
};

static int client_fd[NCONN];

/* _i: a collect_cases index. 50 connections hijacked by handlers that return at once;
 * the "user" keeps each netconn and its reader and writer in statics. */
START_TEST(test_hijack_collection)
{
    gh_hijack_stage_t stage = collect_cases[_i].stage;
    server_start(on_hijack_probed, NULL, stage, 0, NULL);
    for (int i = 0; i < NCONN; i++) {
        char req[128];
        snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: example.com\r\nX-Idx: %d\r\n\r\n", i);
        client_fd[i] = connect_send(req);
    }
    ck_assert(ev_wait(EV_DONE, NCONN));
    ck_assert(wait_workers_idle(NCONN));
    for (int i = 0; i < NCONN; i++) {
        ck_assert_int_eq(kept_rc[i], 0);
        for (int k = 0; k < P_KINDS; k++)
            ck_assert_ptr_nonnull(probes[i][k]);
        if (stage == GH_HIJACK_RELEASE) {
            /* Nothing buffered: both 4 KiB buffers were released. */
            ck_assert_uint_eq(gh_reader_size(kept_r[i]), 0);
            ck_assert_uint_eq(gh_writer_size(kept_w[i]), 0);
        }
    }

    if (collect_cases[_i].collected) {
        /* At most one never collected per kind: the collector's own frames may pin one
         * object graph (docs/DESIGN.md §3.2). */
        int rounds = collect_eventually(NCONN, (1u << P_KINDS) - 1);
        if (getenv("GH_TEST_VERBOSE"))
            fprintf(stderr, "stage %d: collected in %d round(s)\n", (int)stage, rounds);
    } else {
        /* The user's reader goes through connReader -> conn -> curReq -> response ->
         * request (Go before PR #70756). */
        gh_gc_collect(2);
    }
    int n[P_KINDS], short_ = 0;
    for (int k = 0; k < P_KINDS; k++) {
        int u = count_unreachable(NCONN, k);
        n[k] = collect_cases[_i].collected ? u : NCONN - u;
        short_ |= n[k] < NCONN - 1;
    }
    for (int k = 0; k < P_KINDS && (short_ || getenv("GH_TEST_VERBOSE")); k++)
        fprintf(stderr, "stage %d: %s %s %d/%d\n", (int)stage, p_names[k],
                collect_cases[_i].collected ? "unreachable" : "reachable", n[k], NCONN);
    /* At most one never collected per kind (docs/DESIGN.md §3.2). Two measures made this
     * bound hold: gh_gc_collect scrubs 128 KiB around each collection (bdwgc's 64 KiB
     * local mark stack left object addresses on the collecting thread's stack: 3 to 7
     * whole graphs survived about 1 run in 100-300), and the later rounds of
     * collect_eventually collect from a fresh thread (2 graphs in 1 of 300 runs before,
     * 0 of 300 after). */
    for (int k = 0; k < P_KINDS; k++)
        ck_assert_int_ge(n[k], NCONN - 1);

    /* What the user kept still works, both ways. */
    for (int i = 0; i < NCONN; i++) {
        char buf[8];
        gh_netconn_set_deadline(kept_nc[i], gh_now() + (gh_time_t)WAIT_MS * GH_MSEC);
        ck_assert_int_eq(gh_writer_puts(kept_w[i], "ok"), 2);
        ck_assert_int_eq(gh_writer_flush(kept_w[i]), 0);
        ck_assert_int_eq(read_n(client_fd[i], buf, 2), 2);
        ck_assert_str_eq(buf, "ok");
        ck_assert_int_eq(th_sends(client_fd[i], "x"), 0);
        ck_assert_int_eq(gh_reader_read(kept_r[i], buf, 1), 1);
        ck_assert_int_eq(buf[0], 'x');
        if (stage == GH_HIJACK_RELEASE) {
            /* Used and empty again: released again. */
            ck_assert_uint_eq(gh_reader_size(kept_r[i]), 0);
            ck_assert_uint_eq(gh_writer_size(kept_w[i]), 0);
        }
    }
    for (int i = 0; i < NCONN; i++) {
        ck_assert_int_eq(gh_netconn_close(kept_nc[i]), 0);
        ck_assert_int_eq(th_wait_closed(client_fd[i], WAIT_MS), 1);
        close(client_fd[i]);
        kept_nc[i] = NULL;
        kept_r[i] = NULL;
        kept_w[i] = NULL;
    }
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("hijack");

    TCase *tc = tcase_create("hijack");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_hijack_double_fails_and_first_conn_works);
    tcase_add_test(tc, test_hijack_write_after_hijack);
    tcase_add_test(tc, test_hijack_write_zero_bytes_after_flush);
    tcase_add_test(tc, test_hijack_after_flush_finishes_chunked_body);
    tcase_add_test(tc, test_hijack_drops_an_unflushed_body_as_go_does);
    tcase_add_loop_test(tc, test_hijack_reader_has_bytes_after_head, 0, 3);
    tcase_add_test(tc, test_hijack_reader_has_full_body);
    tcase_add_loop_test(tc, test_hijack_switching_protocols_echo, 0, 2);
    tcase_add_test(tc, test_hijack_after_close_notify_on_earlier_request);
    tcase_add_test(tc, test_hijack_conn_state_new_active_hijacked);
    tcase_add_test(tc, test_hijack_h2_preface);
    tcase_add_test(tc, test_hijack_h2_preface_not_hijacked_closes);
    suite_add_tcase(s, tc);

    tc = tcase_create("close-notify");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_close_notify_fires_on_client_close);
    tcase_add_test(tc, test_close_notify_fires_with_unread_body);
    tcase_add_test(tc, test_close_notify_fires_after_body_read);
    tcase_add_test(tc, test_close_notify_fires_when_client_left_before_body_read);
    tcase_add_loop_test(tc, test_close_notify_not_fired_by_pipelined_request, 0, 2);
    tcase_add_test(tc, test_close_notify_ignored_leaks_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetime");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_hijack_after_handler_returned_fails);
    tcase_add_test(tc, test_hijack_calls_after_return_fail_with_handler_done);
    tcase_add_loop_test(tc, test_hijack_buffers_are_released_after_a_drain_and_come_back_on_next_read, 0, 2);
    tcase_add_loop_test(tc, test_hijack_context_cancelled_when_handler_returns, 0, 5);
    tcase_add_loop_test(tc, test_hijack_reader_eof_fires_close_notify, 0, 5);
    suite_add_tcase(s, tc);

    tc = tcase_create("collection");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_loop_test(tc, test_hijack_collection, 0, 5);
    suite_add_tcase(s, tc);
    return s;
}
