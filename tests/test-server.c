/* tests/test-server.c: timeouts, connection states, shutdown, request-context
 * cancellation, slowloris and the worker pool of a real server on loopback
 * (lib/server.c, lib/connset.c, lib/loop.c, lib/conn.c). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"

/* Everything the handler and the test share lives in statics: GC-visible, and never a
 * pointer to a connection, request or response. Check forks per test, so each test
 * starts from the values the fixture sets. The server is tests/support's th_srv. */

/* Signals between handler threads and the test thread: contexts, waited on with a
 * deadline. */
static gh_ctx_t *entered;  /* cancelled once want_entered handlers have started */
static gh_ctx_t *release;  /* /block handlers wait for it */
static gh_ctx_t *recorded; /* cancelled once a handler has recorded its result */
static gh_ctx_t *closed_sig; /* cancelled when the state hook sees Closed */
static int n_entered, want_entered;

static int rec_reason;       /* what a handler saw */
static gh_time_t rec_took;   /* how long it took */
static int rec_request_done; /* gh_request_done after the event */
static gh_ctx_t *kept_req_ctx;

/* The ConnState hook's record: (conn id, state) pairs, in order. */
#define MAX_STATES 64
static pthread_mutex_t states_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    unsigned long id;
    gh_conn_state_t st;
} states[MAX_STATES];
static int n_states;

/* ---- the handler -------------------------------------------------------------------- */

static long query_ms(const gh_request_t *r, long dflt)
{
    const char *q = strstr(gh_request_target(r), "ms=");
    return q ? strtol(q + 3, NULL, 10) : dflt;
}

static void signal_entered(void)
{
    if (__atomic_add_fetch(&n_entered, 1, __ATOMIC_SEQ_CST) >= want_entered)
        gh_ctx_cancel(entered, 0);
}

static void record(int reason, gh_time_t took, int request_done)
{
    rec_reason = reason;
    rec_took = took;
    rec_request_done = request_done;
    gh_ctx_cancel(recorded, 0);
}

static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    gh_time_t t0 = gh_now();
    if (th_path_is(r, "/hello")) {
        gh_response_puts(w, "hello");
    } else if (th_path_is(r, "/seq")) {
        gh_response_puts(w, gh_request_target(r));
    } else if (th_path_is(r, "/addr")) {
        gh_response_puts(w, gh_request_remote_addr(r));
    } else if (th_path_is(r, "/block")) {
        /* Holds its worker until the test releases it (bounded). */
        signal_entered();
        int rc = gh_ctx_wait(release, t0 + 10 * GH_SEC);
        gh_response_printf(w, "released %s", gh_err_name(rc));
    } else if (th_path_is(r, "/ctxwait")) {
        /* Waits for its request context to be cancelled (bounded by ms=). */
        gh_ctx_t *ctx = gh_request_context(r);
        signal_entered();
        int reason = gh_ctx_wait(ctx, t0 + query_ms(r, 5000) * GH_MSEC);
        record(reason, gh_now() - t0, gh_request_done(r));
        gh_response_printf(w, "reason %d", reason);
    } else if (th_path_is(r, "/keepctx")) {
        kept_req_ctx = gh_request_context(r);
        gh_response_puts(w, "kept");
    } else if (th_path_is(r, "/readbody")) {
        char buf[4096];
        ssize_t k, total = 0;
        while ((k = gh_request_read(r, buf, sizeof buf)) > 0 && gh_now() - t0 < 10 * GH_SEC)
            total += k;
        record((int)k, gh_now() - t0, gh_request_done(r));
        gh_response_printf(w, "%s after %zd", gh_err_name((int)k), total);
    } else if (th_path_is(r, "/flood")) {
        /* Writes to a client that does not read, until the write deadline. */
        static char chunk[64 * 1024];
        memset(chunk, 'f', sizeof chunk);
        ssize_t k = 0;
        for (long i = 0; i < 16384 && gh_now() - t0 < 10 * GH_SEC; i++)
            if ((k = gh_response_write(w, chunk, sizeof chunk)) < 0)
                break;
        record((int)k, gh_now() - t0, gh_request_done(r));
    } else {
        gh_response_write_header(w, 404);
    }
}

static void on_state(gh_conn_t *c, gh_conn_state_t st, void *data)
{
    (void)data;
    pthread_mutex_lock(&states_mu);
    if (n_states < MAX_STATES) {
        states[n_states].id = gh_conn_id(c);
        states[n_states].st = st;
        n_states++;
    }
    pthread_mutex_unlock(&states_mu);
    if (st == GH_STATE_CLOSED)
        gh_ctx_cancel(closed_sig, 0);
}

/* ---- fixtures and helpers ------------------------------------------------------------ */

static void setup(void)
{
    entered = gh_ctx_new(NULL);
    release = gh_ctx_new(NULL);
    recorded = gh_ctx_new(NULL);
    closed_sig = gh_ctx_new(NULL);
    n_entered = 0;
    want_entered = 1;
    rec_reason = 1; /* "not recorded": every real value is <= 0 */
    rec_took = 0;
    rec_request_done = 1;
    kept_req_ctx = NULL;
    n_states = 0;
}

static void teardown(void)
{
    /* Let blocked handlers go, so that close can join their workers. */
    gh_ctx_cancel(release, GH_ECLOSED);
    th_server_close();
}

static void config(gh_server_config_t *cfg)
{
    gh_server_config_init(cfg);
    cfg->handler = on_request;
}

static void start_default(void)
{
    gh_server_config_t cfg;
    config(&cfg);
    th_server_start(&cfg);
}

/* ---- timeouts -------------------------------------------------------------------------- */

START_TEST(test_server_read_header_timeout_closes_a_partial_head)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.read_header_timeout = 300 * GH_MSEC;
    th_server_start(&cfg);
    gh_time_t t0 = gh_now();
    int fd = th_connect_srv();
    th_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    int closed = 0;
    ssize_t n = th_read_all(fd, th_rbuf, sizeof th_rbuf - 1, 3000, &closed);
    long took = th_ms_since(t0);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(n, 0); /* closed silently, as Go does */
    ck_assert_int_ge(took, 300);
    ck_assert_int_le(took, 2300);
    close(fd);
}
END_TEST

START_TEST(test_server_read_header_timeout_is_not_extended_by_trickled_bytes)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.read_header_timeout = 300 * GH_MSEC;
    th_server_start(&cfg);
    gh_time_t t0 = gh_now();
    int fd = th_connect_srv();
    const char *head = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int closed = 0;
    /* One byte per 50 ms; the wait for the close is the pause. */
    for (size_t i = 0; head[i] && !closed && th_ms_since(t0) < 3000; i++) {
        if (th_send(fd, head + i, 1) < 0)
            break;
        closed = th_wait_closed(fd, 50);
    }
    if (!closed)
        closed = th_wait_closed(fd, 3000);
    long took = th_ms_since(t0);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_ge(took, 300);
    ck_assert_int_le(took, 2300);
    close(fd);
}
END_TEST

START_TEST(test_server_idle_timeout_closes_an_idle_keepalive_connection)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.idle_timeout = 300 * GH_MSEC;
    th_server_start(&cfg);
    int fd = th_connect_srv();
    th_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert(!th_has_header(th_rbuf, "Connection", "close"));
    gh_time_t t0 = gh_now();
    ck_assert_int_eq(th_wait_closed(fd, 3000), 1);
    long took = th_ms_since(t0);
    /* The idle clock starts once the response is out, a moment before we read it. */
    ck_assert_int_ge(took, 200);
    ck_assert_int_le(took, 2300);
    ck_assert_int_eq(th_wait_stats(th_no_open_conns, 2000), 1);
    close(fd);
}
END_TEST

START_TEST(test_server_idle_connection_serves_again_before_its_timeout)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.idle_timeout = 2 * GH_SEC;
    th_server_start(&cfg);
    int fd = th_connect_srv();
    for (int i = 0; i < 3; i++) {
        th_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        ck_assert_int_eq(th_read_status(fd), 200);
    }
    ck_assert_uint_eq(th_stats().accepted, 1);
    close(fd);
}
END_TEST

START_TEST(test_server_read_timeout_on_a_slow_body_frees_the_worker)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.read_timeout = 300 * GH_MSEC;
    cfg.max_workers = 1;
    th_server_start(&cfg);
    int fd = th_connect_srv();
    th_send_str(fd, "POST /readbody HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
    th_wait_sig(recorded, 5000);
    ck_assert_int_eq(rec_reason, GH_ETIMEDOUT);
    ck_assert_int_ge(rec_took / GH_MSEC, 250);
    ck_assert_int_le(rec_took / GH_MSEC, 2300);
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "GH_ETIMEDOUT after 10");
    /* The only worker serves the next client promptly (one thread more per loop, at
     * most, held a poller's role while the first handler blocked). */
    int fd2 = th_connect_srv();
    gh_time_t t0 = gh_now();
    th_send_str(fd2, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd2), 200);
    ck_assert_int_lt(th_ms_since(t0), 1000);
    ck_assert_int_le(th_stats().threads, 1 + gh_server_loops(th_srv));
    close(fd);
    close(fd2);
}
END_TEST

START_TEST(test_server_write_timeout_fails_writes_to_a_client_that_does_not_read)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.write_timeout = 300 * GH_MSEC;
    th_server_start(&cfg);
    int fd = th_connect_srv();
    int small = 4096;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    th_send_str(fd, "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n");
    th_wait_sig(recorded, 5000);
    ck_assert_int_eq(rec_reason, GH_ETIMEDOUT);
    ck_assert_int_le(rec_took / GH_MSEC, 2300);
    /* A failed write cancels the request. */
    ck_assert_int_eq(rec_request_done, GH_ETIMEDOUT);
    close(fd);
    ck_assert_int_eq(th_wait_stats(th_no_open_conns, 3000), 1);
}
END_TEST

/* ---- connection states ------------------------------------------------------------------ */

static void assert_states(const gh_conn_state_t *want, int n)
{
    pthread_mutex_lock(&states_mu);
    int got = n_states;
    char seen[256] = "";
    for (int i = 0; i < got; i++) {
        strncat(seen, gh_conn_state_name(states[i].st), sizeof seen - strlen(seen) - 2);
        strncat(seen, " ", sizeof seen - strlen(seen) - 1);
    }
    int same = got == n;
    for (int i = 0; same && i < n; i++)
        same = states[i].st == want[i] && states[i].id == states[0].id;
    pthread_mutex_unlock(&states_mu);
    ck_assert_msg(same, "states: %s", seen);
}

START_TEST(test_server_conn_states_of_two_keepalive_requests)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.conn_state = on_state;
    th_server_start(&cfg);
    int fd = th_connect_srv();
    for (int i = 0; i < 2; i++) {
        th_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        ck_assert_int_eq(th_read_status(fd), 200);
    }
    close(fd);
    th_wait_sig(closed_sig, 5000);
    static const gh_conn_state_t want[] = {GH_STATE_NEW,    GH_STATE_ACTIVE, GH_STATE_IDLE,
                                           GH_STATE_ACTIVE, GH_STATE_IDLE,   GH_STATE_CLOSED};
    assert_states(want, 6);
}
END_TEST

START_TEST(test_server_conn_states_of_a_silent_connection)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.conn_state = on_state;
    th_server_start(&cfg);
    int fd = th_connect_srv();
    close(fd);
    th_wait_sig(closed_sig, 5000);
    static const gh_conn_state_t want[] = {GH_STATE_NEW, GH_STATE_CLOSED};
    assert_states(want, 2);
}
END_TEST

START_TEST(test_server_conn_states_of_a_connection_close_request)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.conn_state = on_state;
    th_server_start(&cfg);
    int fd = th_connect_srv();
    th_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    th_wait_sig(closed_sig, 5000);
    static const gh_conn_state_t want[] = {GH_STATE_NEW, GH_STATE_ACTIVE, GH_STATE_CLOSED};
    assert_states(want, 3);
    close(fd);
}
END_TEST

/* ---- shutdown and close ----------------------------------------------------------------- */

static int shutdown_rc;
static gh_ctx_t *shutdown_done;

static void *shutdown_thread(void *arg)
{
    shutdown_rc = gh_server_shutdown(arg, 5 * GH_SEC);
    gh_ctx_cancel(shutdown_done, 0);
    return NULL;
}

START_TEST(test_server_shutdown_waits_for_the_active_handler_and_closes_idle_ones)
{
    start_default();
    shutdown_done = gh_ctx_new(NULL);
    int idle = th_connect_srv();
    th_send_str(idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(idle), 200);
    int slow = th_connect_srv();
    th_send_str(slow, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    th_wait_sig(entered, 5000);

    pthread_t t;
    shutdown_rc = 1;
    ck_assert_int_eq(gh_thread_start(&t, shutdown_thread, th_srv), 0);
    /* The idle connection is closed at once... */
    ck_assert_int_eq(th_wait_closed(idle, 3000), 1);
    /* ...the listener is gone (it closes before idle connections do)... */
    int fd = th_connect(th_port);
    ck_assert_int_lt(fd, 0);
    /* ...and shutdown still waits for the handler. */
    ck_assert_int_eq(gh_ctx_done(shutdown_done), 0);
    ck_assert_int_eq(th_stats().active_conns, 1);

    gh_ctx_cancel(release, 0);
    th_wait_sig(shutdown_done, 5000);
    ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    ck_assert_int_eq(shutdown_rc, 0);
    ck_assert_int_eq(th_read_status(slow), 200);
    ck_assert_str_eq(th_rbody(), "released GH_ECANCELED");
    ck_assert_int_eq(th_wait_closed(slow, 3000), 1);
    close(idle);
    close(slow);
}
END_TEST

START_TEST(test_server_shutdown_times_out_when_a_handler_outlives_it)
{
    start_default();
    int fd = th_connect_srv();
    /* This handler waits on its request context, which the final close cancels. */
    th_send_str(fd, "GET /ctxwait?ms=10000 HTTP/1.1\r\nHost: x\r\n\r\n");
    th_wait_sig(entered, 5000);
    gh_time_t t0 = gh_now();
    int rc = gh_server_shutdown(th_srv, 200 * GH_MSEC);
    long took = th_ms_since(t0);
    ck_assert_int_eq(rc, GH_ETIMEDOUT);
    ck_assert_int_ge(took, 200);
    /* What was left was closed, and the handler learnt it at once. */
    ck_assert_int_le(took, 2200);
    th_wait_sig(recorded, 1000);
    ck_assert_int_lt(rec_reason, 0);
    ck_assert_int_eq(th_wait_closed(fd, 3000), 1);
    close(fd);
}
END_TEST

START_TEST(test_server_shutdown_of_an_idle_server_returns_at_once)
{
    start_default();
    int fd = th_connect_srv();
    th_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    gh_time_t t0 = gh_now();
    ck_assert_int_eq(gh_server_shutdown(th_srv, 5 * GH_SEC), 0);
    ck_assert_int_lt(th_ms_since(t0), 1000);
    ck_assert_int_eq(th_wait_closed(fd, 3000), 1);
    ck_assert_int_eq(th_stats().open_conns, 0);
    close(fd);
}
END_TEST

START_TEST(test_server_close_is_immediate_and_cancels_running_requests)
{
    start_default();
    int idle = th_connect_srv();
    th_send_str(idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(idle), 200);
    int busy = th_connect_srv();
    th_send_str(busy, "GET /ctxwait?ms=10000 HTTP/1.1\r\nHost: x\r\n\r\n");
    th_wait_sig(entered, 5000);
    gh_time_t t0 = gh_now();
    ck_assert_int_eq(gh_server_close(th_srv), 0);
    ck_assert_int_lt(th_ms_since(t0), 2000);
    th_wait_sig(recorded, 1000);
    ck_assert_int_lt(rec_reason, 0);
    ck_assert_int_eq(th_wait_closed(idle, 3000), 1);
    ck_assert_int_eq(th_wait_closed(busy, 3000), 1);
    ck_assert_int_lt(th_connect(th_port), 0);
    ck_assert_int_eq(gh_server_close(th_srv), 0); /* idempotent */
    close(idle);
    close(busy);
}
END_TEST

/* ---- the request context ------------------------------------------------------------------ */

START_TEST(test_server_client_disconnect_cancels_the_request_context)
{
    start_default();
    int fd = th_connect_srv();
    th_send_str(fd, "GET /ctxwait HTTP/1.1\r\nHost: x\r\n\r\n");
    th_wait_sig(entered, 5000);
    gh_time_t t0 = gh_now();
    close(fd);
    th_wait_sig(recorded, 5000);
    ck_assert_int_eq(rec_reason, GH_ECONNRESET);
    ck_assert_int_eq(rec_request_done, GH_ECONNRESET);
    ck_assert_int_lt(th_ms_since(t0), 2000);
}
END_TEST

START_TEST(test_server_client_half_close_cancels_the_request_context)
{
    start_default();
    int fd = th_connect_srv();
    th_send_str(fd, "GET /ctxwait HTTP/1.1\r\nHost: x\r\n\r\n");
    th_wait_sig(entered, 5000);
    shutdown(fd, SHUT_WR);
    th_wait_sig(recorded, 5000);
    ck_assert_int_eq(rec_reason, GH_ECONNRESET);
    close(fd);
}
END_TEST

/* golang/go#23262: a request whose body the handler has not read is still cancelled
 * when the client goes away. */
START_TEST(test_server_disconnect_cancels_a_request_with_an_unread_small_body)
{
    start_default();
    int fd = th_connect_srv();
    th_send_str(fd, "POST /ctxwait HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789");
    th_wait_sig(entered, 5000);
    close(fd);
    th_wait_sig(recorded, 5000);
    ck_assert_int_eq(rec_reason, GH_ECONNRESET);
}
END_TEST

START_TEST(test_server_disconnect_cancels_a_request_with_an_unread_large_body)
{
    start_default();
    int fd = th_connect_srv();
    th_send_str(fd, "POST /ctxwait?ms=1000 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
    th_wait_sig(entered, 5000);
    /* Body bytes the server has not read wait in its socket when the client leaves. */
    static char part[65536];
    memset(part, 'b', sizeof part);
    ck_assert_int_eq(th_send(fd, part, sizeof part), 0);
    close(fd);
    th_wait_sig(recorded, 5000);
    /* While the body is still arriving, bytes waiting in the socket are that body, so
     * the hang-up means the client is gone (golang/go#23262). */
    ck_assert_int_eq(rec_reason, GH_ECONNRESET);
}
END_TEST

/* golang/go#23921: a pipelined next request is not the client going away. */
START_TEST(test_server_pipelined_request_does_not_cancel_the_first)
{
    start_default();
    int fd = th_connect_srv();
    th_send_str(fd, "GET /ctxwait?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
    th_wait_sig(entered, 5000);
    th_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "reason 0");
    ck_assert_int_eq(rec_reason, 0);
    ck_assert_int_ge(rec_took / GH_MSEC, 300);
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "hello");
    close(fd);
}
END_TEST

START_TEST(test_server_pipelined_request_in_the_same_packet_does_not_cancel_the_first)
{
    start_default();
    int fd = th_connect_srv();
    th_send_str(fd, "GET /ctxwait?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "reason 0");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "hello");
    close(fd);
}
END_TEST

/* A pipelined request already read into the connection's buffer is not lost to the
 * client's half-close: the hang-up evaluation counts buffered bytes, not only those in
 * the socket, so both requests are answered (as Go does). */
START_TEST(test_server_half_close_after_pipelined_requests_answers_both)
{
    start_default();
    int fd = th_connect_srv();
    th_send_str(fd, "GET /ctxwait?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    th_wait_sig(entered, 5000);
    shutdown(fd, SHUT_WR);
    ck_assert_int_eq(th_read_status(fd), 200);
    /* The buffered request counts as the client still being there (server.h). */
    ck_assert_str_eq(th_rbody(), "reason 0");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "hello");
    /* Then the connection ends: nothing more will come. */
    ck_assert_int_eq(th_wait_closed(fd, 3000), 1);
    close(fd);
}
END_TEST

START_TEST(test_server_request_context_is_cancelled_when_the_handler_returns)
{
    start_default();
    int fd = th_connect_srv();
    th_send_str(fd, "GET /keepctx HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_ptr_nonnull(kept_req_ctx);
    /* The response goes out before the handler's context is cancelled: wait, bounded. */
    ck_assert_int_eq(gh_ctx_wait(kept_req_ctx, gh_now() + 2 * GH_SEC), GH_EHANDLERDONE);
    /* The connection itself lives on. */
    th_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    close(fd);
}
END_TEST

/* ---- load ----------------------------------------------------------------------------------- */

/* A new client is answered "hello" within ms. */
static void assert_hello_within(long ms)
{
    gh_time_t t0 = gh_now();
    int fd = th_connect_srv();
    th_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "hello");
    ck_assert_int_lt(th_ms_since(t0), ms);
    close(fd);
}

#define N_SLOW 200
#define N_FAST 20

START_TEST(test_server_slowloris_clients_hold_no_workers)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.max_workers = 4;
    th_server_start(&cfg);
    static int slow[N_SLOW];
    for (int i = 0; i < N_SLOW; i++) {
        slow[i] = th_connect_srv();
        th_send_str(slow[i], "G");
    }
    for (int i = 0; i < N_FAST; i++)
        assert_hello_within(1000);
    gh_server_stats_t st = th_stats();
    ck_assert_int_le(st.workers, cfg.max_workers);
    ck_assert_int_ge(st.open_conns, N_SLOW);
    ck_assert_uint_eq(st.requests, N_FAST);
    for (int i = 0; i < N_SLOW; i++)
        close(slow[i]);
    ck_assert_int_eq(th_wait_stats(th_no_open_conns, 5000), 1);
}
END_TEST

static void pool_run(int n, int max_workers)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.max_workers = max_workers;
    th_server_start(&cfg);
    int expect = n < max_workers ? n : max_workers;
    want_entered = expect;
    static int fds[16];
    for (int i = 0; i < n; i++) {
        fds[i] = th_connect_srv();
        th_send_str(fds[i], "GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    th_wait_sig(entered, 5000);
    gh_server_stats_t st = th_stats();
    ck_assert_int_eq(st.workers, expect);
    ck_assert_int_eq(st.idle_workers, 0);
    ck_assert_int_eq(__atomic_load_n(&n_entered, __ATOMIC_SEQ_CST), expect);
    gh_ctx_cancel(release, 0);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(th_read_status(fds[i]), 200);
        close(fds[i]);
    }
    ck_assert_int_eq(n_entered, n);
    /* The thread holding the poller's role counts as a worker until it has cleared its
     * stack after the requests it served: read the figure once every thread is back. */
    ck_assert(th_wait_stats(th_quiescent, 5000));
    ck_assert_int_le(th_stats().workers, max_workers);
}

START_TEST(test_server_pool_grows_to_one_worker_per_blocking_handler)
{
    pool_run(5, 8);
}
END_TEST

START_TEST(test_server_pool_stops_growing_at_max_workers)
{
    pool_run(6, 3);
}
END_TEST

/* A handler blocking on the poller's thread: the monitor hands the poller's role to
 * another thread, so other connections are served while it blocks. */
static void handoff_run(gh_time_t handoff)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.handoff_timeout = handoff;
    th_server_start(&cfg);
    int blocked = th_connect_srv();
    th_send_str(blocked, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    th_wait_sig(entered, 5000);
    for (int i = 0; i < 5; i++)
        assert_hello_within(1000);
    gh_server_stats_t st = th_stats();
    /* The blocked handler still holds its thread; another one polls. */
    ck_assert_int_eq(gh_ctx_done(release), 0);
    ck_assert_int_ge(st.threads, 2);
    if (handoff >= 0) /* 0: the default */
        ck_assert_uint_ge(st.handoffs, 1);
    else
        ck_assert_uint_eq(st.handoffs, 0);
    gh_ctx_cancel(release, 0);
    ck_assert_int_eq(th_read_status(blocked), 200);
    ck_assert_str_eq(th_rbody(), "released GH_ECANCELED");
    /* The deposed thread went back to the pool and keeps serving. */
    th_send_str(blocked, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(blocked), 200);
    close(blocked);
    ck_assert_int_le(th_stats().threads, cfg.max_workers ? cfg.max_workers + 1 : 65);
}

START_TEST(test_server_blocking_handler_hands_the_poller_to_another_thread)
{
    handoff_run(0);
}
END_TEST

START_TEST(test_server_negative_handoff_serves_every_request_on_a_worker)
{
    handoff_run(-1);
}
END_TEST

/* A client pipelining many requests gets them all, in order, and does not keep the
 * poller from serving another client meanwhile (after GH__INLINE_RUN requests a worker
 * takes the rest). */
START_TEST(test_server_long_pipeline_is_served_in_order_without_starving_others)
{
    start_default();
    enum { N = 100 };
    static char reqs[N * 64];
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(reqs + len, sizeof reqs - len,
                                "GET /seq?n=%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
    int fd = th_connect_srv();
    ck_assert_int_eq(th_send(fd, reqs, len), 0);
    int other = th_connect_srv();
    th_send_str(other, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(other), 200);
    close(other);
    for (int i = 0; i < N; i++) {
        char want[32];
        snprintf(want, sizeof want, "/seq?n=%d", i);
        ck_assert_int_eq(th_read_status(fd), 200);
        ck_assert_str_eq(th_rbody(), want);
    }
    ck_assert_uint_eq(th_stats().requests, N + 1);
    close(fd);
}
END_TEST

/* ---- IPv6 ------------------------------------------------------------------------------------ */

START_TEST(test_server_listens_on_ipv6_loopback)
{
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    if (probe < 0)
        return; /* no IPv6 here */
    close(probe);
    gh_server_config_t cfg;
    config(&cfg);
    ck_assert_int_eq(gh_server_new(&th_srv, &cfg), 0);
    int rc = gh_server_listen(th_srv, "::1", 0);
    if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT)
        return; /* IPv6 without ::1 configured */
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(gh_server_start(th_srv), 0);
    int port = gh_server_port(th_srv, 0);
    ck_assert_int_gt(port, 0);

    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)port);
    sa.sin6_addr = in6addr_loopback;
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    th_send_str(fd, "GET /addr HTTP/1.1\r\nHost: [::1]\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_msg(strncmp(th_rbody(), "[::1]:", 6) == 0, "remote addr %s", th_rbody());
    close(fd);
}
END_TEST

/* ---- memory --------------------------------------------------------------------------- */

#define N_MEM 200

/* Exact live bytes of the heap (after two collections), over n connections. */
static long live_per_conn(size_t base, int n)
{
    size_t bytes = 0;
    gh_gc_collect(2);
    (void)gh_gc_live_objects(&bytes);
    return ((long)bytes - (long)base) / n;
}

/* Keep-alive connections waiting for their next request hold no reader, writer or
 * pre-chunking buffer (each is 2-4 KiB): what is left of one is its small objects
 * (conn, descriptor, context, reader and writer shells, addresses). One that has
 * received half a head keeps it in a buffer, and completes it. */
START_TEST(test_server_idle_connections_hold_no_buffers_and_half_heads_are_kept)
{
    start_default();
    static int fds[N_MEM];
    /* Warm up: the pool and the tables the connections need exist before the baseline. */
    for (int i = 0; i < 2; i++) {
        fds[i] = th_connect_srv();
        th_send_str(fds[i], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        ck_assert_int_eq(th_read_status(fds[i]), 200);
        close(fds[i]);
    }
    ck_assert(th_wait_stats(th_all_closed, 5000));
    size_t base = 0;
    gh_gc_collect(2);
    (void)gh_gc_live_objects(&base);

    for (int i = 0; i < N_MEM; i++) {
        fds[i] = th_connect_srv();
        /* The body goes through the pre-chunking buffer and the writer. */
        th_send_str(fds[i], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        ck_assert_int_eq(th_read_status(fds[i]), 200);
    }
    ck_assert(th_wait_stats(th_quiescent, 5000));
    long idle = live_per_conn(base, N_MEM);
    fprintf(stderr, "memory: %d idle keep-alive connections: %ld live B each\n", N_MEM, idle);
    ck_assert_int_lt(idle, 1024);

    /* Half a head each: the server reads it (bounded wait for its buffers to appear)
     * and keeps it. */
    for (int i = 0; i < N_MEM; i++)
        th_send_str(fds[i], "GET /hello HTTP/1.1\r\nHo");
    long partial = 0;
    for (int tries = 0; tries < 500 && (partial = live_per_conn(base, N_MEM)) < 4096; tries++) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL); /* bounded poll for a condition */
    }
    fprintf(stderr, "memory: %d connections with half a head: %ld live B each\n", N_MEM, partial);
    ck_assert_int_ge(partial, 4096);
    for (int i = 0; i < N_MEM; i++) {
        th_send_str(fds[i], "st: x\r\n\r\n");
        ck_assert_int_eq(th_read_status(fds[i]), 200);
        ck_assert_str_eq(th_rbody(), "hello");
    }
    ck_assert(th_wait_stats(th_quiescent, 5000));
    long after = live_per_conn(base, N_MEM);
    fprintf(stderr, "memory: idle again: %ld live B each\n", after);
    ck_assert_int_lt(after, 1024);
    for (int i = 0; i < N_MEM; i++)
        close(fds[i]);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("server");
    TCase *tc = tcase_create("timeouts");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_server_read_header_timeout_closes_a_partial_head);
    tcase_add_test(tc, test_server_read_header_timeout_is_not_extended_by_trickled_bytes);
    tcase_add_test(tc, test_server_idle_timeout_closes_an_idle_keepalive_connection);
    tcase_add_test(tc, test_server_idle_connection_serves_again_before_its_timeout);
    tcase_add_test(tc, test_server_read_timeout_on_a_slow_body_frees_the_worker);
    tcase_add_test(tc, test_server_write_timeout_fails_writes_to_a_client_that_does_not_read);
    suite_add_tcase(s, tc);

    tc = tcase_create("states");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_server_conn_states_of_two_keepalive_requests);
    tcase_add_test(tc, test_server_conn_states_of_a_silent_connection);
    tcase_add_test(tc, test_server_conn_states_of_a_connection_close_request);
    suite_add_tcase(s, tc);

    tc = tcase_create("shutdown");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_server_shutdown_waits_for_the_active_handler_and_closes_idle_ones);
    tcase_add_test(tc, test_server_shutdown_times_out_when_a_handler_outlives_it);
    tcase_add_test(tc, test_server_shutdown_of_an_idle_server_returns_at_once);
    tcase_add_test(tc, test_server_close_is_immediate_and_cancels_running_requests);
    suite_add_tcase(s, tc);

    tc = tcase_create("context");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_server_client_disconnect_cancels_the_request_context);
    tcase_add_test(tc, test_server_client_half_close_cancels_the_request_context);
    tcase_add_test(tc, test_server_disconnect_cancels_a_request_with_an_unread_small_body);
    tcase_add_test(tc, test_server_disconnect_cancels_a_request_with_an_unread_large_body);
    tcase_add_test(tc, test_server_pipelined_request_does_not_cancel_the_first);
    tcase_add_test(tc, test_server_pipelined_request_in_the_same_packet_does_not_cancel_the_first);
    tcase_add_test(tc, test_server_half_close_after_pipelined_requests_answers_both);
    tcase_add_test(tc, test_server_request_context_is_cancelled_when_the_handler_returns);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_server_slowloris_clients_hold_no_workers);
    tcase_add_test(tc, test_server_pool_grows_to_one_worker_per_blocking_handler);
    tcase_add_test(tc, test_server_pool_stops_growing_at_max_workers);
    tcase_add_test(tc, test_server_blocking_handler_hands_the_poller_to_another_thread);
    tcase_add_test(tc, test_server_negative_handoff_serves_every_request_on_a_worker);
    tcase_add_test(tc, test_server_long_pipeline_is_served_in_order_without_starving_others);
    tcase_add_test(tc, test_server_listens_on_ipv6_loopback);
    suite_add_tcase(s, tc);

    tc = tcase_create("memory");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_server_idle_connections_hold_no_buffers_and_half_heads_are_kept);
    suite_add_tcase(s, tc);
    return s;
}
