/* tests/test-faults.c: hostile clients and scarce resources against a real server on
 * loopback (issue 7, "Load and faults"): 1,000 slowloris clients, resets mid-body,
 * mid-response and right after hijack, a peer that stopped reading, EMFILE on accept,
 * and a small soak (tests/soak.c) whose descriptors and exact live heap must return to
 * their baseline. Every loop is bounded in count and time; waits are on contexts, on
 * poll() of the sockets involved, or bounded polls of the server's figures. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"

#define SOAK_NO_MAIN
#include "soak.c" /* soak_run, soak_count_fds */

/* Shared between handlers and the test thread: statics (GC-visible), never a pointer
 * to a connection, request or response. Check forks per test. The server is
 * tests/support's th_srv. */
static gh_ctx_t *entered;  /* cancelled once a handler reached its first milestone */
static gh_ctx_t *recorded; /* cancelled once a handler recorded its result */
static int rec_err;        /* the error the handler's I/O ended with */
static int rec_err2;       /* a second one (hijack: the write after the read) */
static int rec_done;       /* gh_request_done() afterwards */
static gh_time_t rec_at;   /* when the error came */

/* ---- the handler ---------------------------------------------------------------------- */

static void record(int err, int err2, int done)
{
    rec_err = err;
    rec_err2 = err2;
    rec_done = done;
    rec_at = gh_now();
    gh_ctx_cancel(recorded, 0);
}

/* Routes:
 *   /hello    "hello"
 *   /readbody reads the body to its end or an error (bounded 10 s); milestone: the
 *             first bytes were read
 *   /big      writes 64 KiB pieces (at most 256 MiB, 10 s) until a write fails;
 *             milestone: the first piece was accepted
 *   /hijack   hijacks, writes "hijacked\n" on the netconn (milestone), then reads (5 s
 *             deadline) and writes once more, records both results, closes the netconn */
static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    gh_time_t t0 = gh_now();
    if (th_path_is(r, "/hello")) {
        gh_response_puts(w, "hello");
    } else if (th_path_is(r, "/readbody")) {
        static __thread char buf[8192];
        ssize_t k;
        long total = 0;
        while ((k = gh_request_read(r, buf, sizeof buf)) > 0 && gh_now() - t0 < 10 * GH_SEC) {
            if (total == 0)
                gh_ctx_cancel(entered, 0);
            total += k;
        }
        record((int)k, 0, gh_request_done(r));
        gh_response_printf(w, "%s after %ld", gh_err_name((int)k), total);
    } else if (th_path_is(r, "/big")) {
        static __thread char chunk[64 * 1024];
        memset(chunk, 'b', sizeof chunk);
        ssize_t k = 0;
        for (int i = 0; i < 4096 && gh_now() - t0 < 10 * GH_SEC; i++) {
            if ((k = gh_response_write(w, chunk, sizeof chunk)) < 0)
                break;
            if (i == 0)
                gh_ctx_cancel(entered, 0);
        }
        record((int)k, 0, gh_request_done(r));
    } else if (th_path_is(r, "/hijack")) {
        gh_netconn_t *nc;
        if (gh_response_hijack(w, &nc, NULL) < 0) {
            record(1, 1, 1);
            return;
        }
        gh_netconn_set_deadline(nc, gh_now() + 5 * GH_SEC);
        ssize_t k = gh_netconn_write(nc, "hijacked\n", 9);
        gh_ctx_cancel(entered, 0);
        char tmp[64];
        ssize_t rd = k < 0 ? k : gh_netconn_read(nc, tmp, sizeof tmp);
        ssize_t wr = gh_netconn_write(nc, "after reset\n", 12);
        gh_netconn_close(nc);
        record((int)rd, (int)wr, 0);
    } else {
        gh_response_write_header(w, 404);
    }
}

/* ---- fixture and helpers --------------------------------------------------------------- */

static void setup(void)
{
    entered = gh_ctx_new(NULL);
    recorded = gh_ctx_new(NULL);
    rec_err = rec_err2 = rec_done = 1; /* "not recorded": every real value is <= 0 */
    rec_at = 0;
}

static void teardown(void)
{
    th_server_close();
}

static void config(gh_server_config_t *cfg)
{
    gh_server_config_init(cfg);
    cfg->handler = on_request;
}

/* Close with a reset: SO_LINGER {on, 0} turns close() into an RST. */
static void reset_close(int fd)
{
    struct linger lg = {1, 0};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(fd);
}

static void small_rcvbuf(int fd)
{
    int small = 4096;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
}

/* The server answers a new client promptly (within ms). */
static void assert_serves(int ms)
{
    gh_time_t t0 = gh_now();
    int fd = th_connect_srv();
    th_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_body(th_rbuf), "hello");
    ck_assert_msg(th_ms_since(t0) < ms, "answered in %ld ms", th_ms_since(t0));
    close(fd);
}

/* After a fault: the server gives every descriptor back (explicitly: the finalizer
 * backstop closed none) and the process has exactly the descriptors it had before. */
static void assert_no_leak(long fds0, unsigned long leaked0)
{
    ck_assert_msg(th_wait_stats(th_all_closed, TH_IO_MS), "server still owns connections");
    gh_gc_collect(2);
    ck_assert_uint_eq(gh_fd_leaked(), leaked0);
    ck_assert_int_eq(soak_count_fds(), fds0);
}

/* ---- slowloris ------------------------------------------------------------------------- */

#define N_TRICKLE 1000
#define TRICKLE_TIMEOUT_MS 1000
#define N_BEFORE 200
#define MAX_SAMPLES 20000
#define SLOW_WORKERS 4

/* The normal clients' figures (plain memory). */
static long lat_before[N_BEFORE];
static long lat_during[MAX_SAMPLES];
static int n_during, normal_errors, normal_stop;

/* One normal request on a new connection; its latency in µs, or -1. */
static long normal_request(void)
{
    static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    static __thread char buf[4096];
    gh_time_t t0 = gh_now();
    int fd = th_connect(th_port);
    if (fd < 0)
        return -1;
    long us = -1;
    if (th_send(fd, req, sizeof req - 1) == 0 &&
        th_read_response(fd, buf, sizeof buf - 1, TH_IO_MS) > 0 && th_status(buf) == 200 &&
        strcmp(th_body(buf), "hello") == 0)
        us = (long)((gh_now() - t0) / 1000);
    close(fd);
    return us;
}

/* A plain thread (it touches no GC object): normal clients, one after another, until
 * told to stop, MAX_SAMPLES, or 20 s. */
static void *normal_clients(void *arg)
{
    (void)arg;
    gh_time_t t0 = gh_now();
    while (!__atomic_load_n(&normal_stop, __ATOMIC_SEQ_CST) && n_during < MAX_SAMPLES &&
           gh_now() - t0 < 20 * GH_SEC) {
        long us = normal_request();
        if (us < 0)
            normal_errors++;
        else
            lat_during[n_during++] = us;
    }
    return NULL;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static long pct(long *v, int n, int p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_long);
    int i = (int)((long)n * p / 100);
    return v[i < n ? i : n - 1];
}

START_TEST(test_faults_slowloris_1000_tricklers_closed_at_header_timeout)
{
    th_raise_nofile();
    gh_server_config_t cfg;
    config(&cfg);
    cfg.read_header_timeout = TRICKLE_TIMEOUT_MS * GH_MSEC;
    cfg.max_workers = SLOW_WORKERS;
    th_server_start(&cfg);

    /* Usual latency, before. */
    for (int i = 0; i < N_BEFORE; i++) {
        lat_before[i] = normal_request();
        ck_assert_int_ge(lat_before[i], 0);
    }

    /* A head that never ends within the test: one byte per round. */
    static char head[8192];
    int hl = snprintf(head, sizeof head, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    memset(head + hl, 'a', sizeof head - (size_t)hl);
    static int fd[N_TRICKLE];
    static gh_time_t t_conn[N_TRICKLE], t_closed[N_TRICKLE];
    static size_t sent[N_TRICKLE];
    static struct pollfd pf[N_TRICKLE];
    static int idx[N_TRICKLE];
    int got_bytes = 0;
    for (int i = 0; i < N_TRICKLE; i++) {
        t_conn[i] = gh_now();
        fd[i] = th_connect(th_port);
        ck_assert_msg(fd[i] >= 0, "connect %d: %s", i, strerror(errno));
        t_closed[i] = 0;
        sent[i] = 0;
    }
    n_during = normal_errors = normal_stop = 0;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, normal_clients, NULL), 0);

    /* Rounds: one byte to each open trickler in turn, then poll them all for the
     * server's close (the poll is the pace: 10 ms at most). */
    gh_time_t end = gh_now() + (TRICKLE_TIMEOUT_MS + 3000) * GH_MSEC;
    int open = N_TRICKLE, rounds = 0;
    while (open > 0 && gh_now() < end && rounds < 2000) {
        rounds++;
        int n = 0;
        for (int i = 0; i < N_TRICKLE; i++) {
            if (t_closed[i])
                continue;
            if (sent[i] < sizeof head &&
                send(fd[i], head + sent[i], 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
                sent[i]++;
            pf[n].fd = fd[i];
            pf[n].events = POLLIN;
            pf[n].revents = 0;
            idx[n++] = i;
        }
        int k = poll(pf, (nfds_t)n, 10);
        if (k < 0 && errno == EINTR)
            continue;
        ck_assert_int_ge(k, 0);
        for (int j = 0; j < n && k > 0; j++) {
            if (!pf[j].revents)
                continue;
            char tmp[256];
            ssize_t r = recv(pf[j].fd, tmp, sizeof tmp, MSG_DONTWAIT);
            if (r > 0)
                got_bytes++;
            if (r == 0 || (r < 0 && (errno == ECONNRESET || !(pf[j].revents & POLLIN)))) {
                t_closed[idx[j]] = gh_now();
                open--;
            }
        }
    }
    __atomic_store_n(&normal_stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(th, NULL);
    gh_server_stats_t st = th_stats();

    long min_ms = 1 << 30, max_ms = 0;
    size_t max_sent = 0;
    for (int i = 0; i < N_TRICKLE; i++) {
        if (!t_closed[i])
            continue;
        long ms = (long)((t_closed[i] - t_conn[i]) / GH_MSEC);
        min_ms = ms < min_ms ? ms : min_ms;
        max_ms = ms > max_ms ? ms : max_ms;
        max_sent = sent[i] > max_sent ? sent[i] : max_sent;
    }
    long b50 = pct(lat_before, N_BEFORE, 50), b99 = pct(lat_before, N_BEFORE, 99);
    long d50 = n_during ? pct(lat_during, n_during, 50) : -1;
    long d99 = n_during ? pct(lat_during, n_during, 99) : -1;
    long dmax = n_during ? lat_during[n_during - 1] : -1;
    fprintf(stderr,
            "slowloris: %d tricklers, %d rounds, up to %zu bytes each; closed %d after "
            "%ld..%ld ms (timeout %d ms); normal clients before p50 %ld us p99 %ld us, during "
            "(%d requests, %d errors) p50 %ld us p99 %ld us max %ld us; workers %d\n",
            N_TRICKLE, rounds, max_sent, N_TRICKLE - open, min_ms, max_ms, TRICKLE_TIMEOUT_MS, b50,
            b99, n_during, normal_errors, d50, d99, dmax, st.workers);
    for (int i = 0; i < N_TRICKLE; i++)
        close(fd[i]);

    ck_assert_msg(open == 0, "%d tricklers still open", open);
    ck_assert_msg(got_bytes == 0, "%d tricklers were sent bytes (want a silent close)", got_bytes);
    ck_assert_int_ge(min_ms, TRICKLE_TIMEOUT_MS);
    ck_assert_int_le(max_ms, TRICKLE_TIMEOUT_MS + 2000);
    ck_assert_int_eq(normal_errors, 0);
    ck_assert_int_ge(n_during, 20);
    ck_assert_msg(d99 < 250 * 1000, "normal clients' p99 %ld us during the attack", d99);
    ck_assert_int_le(st.workers, SLOW_WORKERS);
    ck_assert_uint_eq(st.bad_requests, 0);
    ck_assert(th_wait_stats(th_all_closed, TH_IO_MS));
}
END_TEST

START_TEST(test_faults_header_timeout_is_not_delayed_by_a_later_trickler)
{
    /* The header timer list is FIFO. A connects at 0 (deadline 1 s), B at 0.9 s (deadline
     * 1.9 s); a byte from B, then one from A: A must still be closed at 1 s, not when B's
     * later deadline reaches the head of the list. */
    gh_server_config_t cfg;
    config(&cfg);
    cfg.read_header_timeout = 1000 * GH_MSEC;
    th_server_start(&cfg);
    gh_time_t t0 = gh_now();
    int a = th_connect_srv();
    ck_assert_int_eq(th_wait_closed(a, 900), 0); /* the pause; A is still open */
    int b = th_connect_srv();
    th_send_str(b, "G");
    ck_assert_int_eq(th_wait_closed(b, 20), 0); /* the poller takes B's byte first */
    th_send_str(a, "G");
    ck_assert_int_eq(th_wait_closed(a, 3000), 1);
    long took_a = th_ms_since(t0);
    ck_assert_int_eq(th_wait_closed(b, 3000), 1);
    long took_b = th_ms_since(t0);
    fprintf(stderr,
            "header timeout 1000 ms: A closed after %ld ms, B (connected at +900) after "
            "%ld ms\n",
            took_a, took_b);
    ck_assert_int_ge(took_a, 1000);
    ck_assert_int_le(took_a, 1500);
    ck_assert_int_ge(took_b, 1900);
    close(a);
    close(b);
}
END_TEST

/* ---- resets ---------------------------------------------------------------------------- */

static int is_reset_err(int e)
{
    return e == GH_ECONNRESET || e == GH_EPIPE;
}

START_TEST(test_faults_reset_mid_body_fails_the_read_and_server_keeps_serving)
{
    gh_server_config_t cfg;
    config(&cfg);
    th_server_start(&cfg);
    assert_serves(1000); /* warm: the first worker exists */
    ck_assert(th_wait_stats(th_all_closed, TH_IO_MS));
    long fds0 = soak_count_fds();
    unsigned long leaked0 = gh_fd_leaked();

    int fd = th_connect_srv();
    static char part[1000];
    memset(part, 'p', sizeof part);
    th_send_str(fd, "POST /readbody HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
    ck_assert_int_eq(th_send(fd, part, sizeof part), 0);
    th_wait_sig(entered, TH_IO_MS); /* the handler is reading the body */
    gh_time_t t0 = gh_now();
    reset_close(fd);
    th_wait_sig(recorded, TH_IO_MS);
    long took = (long)((rec_at - t0) / GH_MSEC);
    fprintf(stderr, "reset mid-body: read ended with %s after %ld ms, request done %s\n",
            gh_err_name(rec_err), took, gh_err_name(rec_done));
    ck_assert_msg(rec_err < 0, "read returned %d", rec_err);
    ck_assert_msg(rec_err == GH_ECONNRESET || rec_err == GH_EOF, "read ended with %s",
                  gh_err_name(rec_err));
    ck_assert_int_eq(rec_done, GH_ECONNRESET);
    ck_assert_int_lt(took, 2000); /* the reset, not the 5-minute read timeout */
    assert_serves(1000);
    assert_no_leak(fds0, leaked0);
}
END_TEST

START_TEST(test_faults_reset_mid_response_fails_the_write_and_cancels_the_request)
{
    gh_server_config_t cfg;
    config(&cfg);
    th_server_start(&cfg);
    assert_serves(1000);
    ck_assert(th_wait_stats(th_all_closed, TH_IO_MS));
    long fds0 = soak_count_fds();
    unsigned long leaked0 = gh_fd_leaked();

    int fd = th_connect_srv();
    small_rcvbuf(fd);
    th_send_str(fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    th_wait_sig(entered, TH_IO_MS); /* the first 64 KiB were accepted */
    /* The response is under way: its first bytes are here. */
    struct pollfd p = {fd, POLLIN, 0};
    ck_assert_int_eq(poll(&p, 1, TH_IO_MS), 1);
    char tmp[512];
    ck_assert_int_gt(recv(fd, tmp, sizeof tmp, 0), 0);
    ck_assert_int_eq(strncmp(tmp, "HTTP/1.1 200", 12), 0);
    gh_time_t t0 = gh_now();
    reset_close(fd);
    th_wait_sig(recorded, TH_IO_MS);
    long took = (long)((rec_at - t0) / GH_MSEC);
    fprintf(stderr, "reset mid-response: write ended with %s after %ld ms, request done %s\n",
            gh_err_name(rec_err), took, gh_err_name(rec_done));
    ck_assert_msg(is_reset_err(rec_err), "write ended with %s", gh_err_name(rec_err));
    ck_assert_msg(is_reset_err(rec_done), "request context ended with %s", gh_err_name(rec_done));
    ck_assert_int_lt(took, 2000); /* the reset, not the 5-minute write timeout */
    assert_serves(1000);
    assert_no_leak(fds0, leaked0);
}
END_TEST

START_TEST(test_faults_reset_right_after_hijack_fails_netconn_io_and_leaks_nothing)
{
    gh_server_config_t cfg;
    config(&cfg);
    th_server_start(&cfg);
    assert_serves(1000);
    ck_assert(th_wait_stats(th_all_closed, TH_IO_MS));
    long fds0 = soak_count_fds();
    unsigned long leaked0 = gh_fd_leaked();

    int fd = th_connect_srv();
    th_send_str(fd, "GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n");
    int closed = 0;
    ck_assert_int_eq(th_read_all(fd, th_rbuf, 9, TH_IO_MS, &closed), 9);
    ck_assert_str_eq(th_rbuf, "hijacked\n");
    gh_time_t t0 = gh_now();
    reset_close(fd);
    th_wait_sig(recorded, TH_IO_MS);
    long took = (long)((rec_at - t0) / GH_MSEC);
    fprintf(stderr, "reset after hijack: netconn read %s, write %s, after %ld ms\n",
            gh_err_name(rec_err), gh_err_name(rec_err2), took);
    ck_assert_msg(rec_err < 0, "netconn read returned %d", rec_err);
    ck_assert_msg(is_reset_err(rec_err), "netconn read ended with %s", gh_err_name(rec_err));
    ck_assert_msg(is_reset_err(rec_err2), "netconn write ended with %s", gh_err_name(rec_err2));
    ck_assert_int_lt(took, 2000); /* the reset, not the 5 s deadline */
    ck_assert_uint_eq(th_stats().hijacked, 1);
    assert_serves(1000);
    assert_no_leak(fds0, leaked0);
}
END_TEST

/* ---- a peer that stopped reading -------------------------------------------------------- */

START_TEST(test_faults_write_timeout_frees_the_only_worker_from_a_stalled_reader)
{
    gh_server_config_t cfg;
    config(&cfg);
    cfg.write_timeout = 500 * GH_MSEC;
    cfg.max_workers = 1;
    th_server_start(&cfg);
    int fd = th_connect_srv();
    small_rcvbuf(fd);
    gh_time_t t0 = gh_now();
    th_send_str(fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); /* and never read */
    th_wait_sig(recorded, TH_IO_MS);
    long took = (long)((rec_at - t0) / GH_MSEC);
    fprintf(stderr, "stalled reader: write ended with %s after %ld ms (write timeout 500 ms)\n",
            gh_err_name(rec_err), took);
    ck_assert_int_eq(rec_err, GH_ETIMEDOUT);
    ck_assert_int_eq(rec_done, GH_ETIMEDOUT);
    ck_assert_int_ge(took, 450);
    ck_assert_int_le(took, 2500);
    /* The one worker is free again: another client is answered at once. At most one
     * thread more per loop held a poller's role while the first handler blocked. */
    assert_serves(1000);
    ck_assert_int_le(th_stats().threads, 1 + gh_server_loops(th_srv));
    close(fd);
    ck_assert(th_wait_stats(th_all_closed, TH_IO_MS));
}
END_TEST

/* ---- EMFILE ----------------------------------------------------------------------------- */

#define EMFILE_LIMIT 64
#define N_HOLD 80
#define N_RELEASE 40

/* The server's process (a child, so that its RLIMIT_NOFILE is its own): serve /hello and
 * /stats until the control pipe closes; 30 s at most (alarm). Touches no Check call. */
static void on_emfile_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    if (th_path_is(r, "/stats")) {
        gh_server_stats_t st;
        gh_server_stats(th_srv, &st);
        gh_response_printf(w, "accept_backoffs=%lu accepted=%lu open=%d", st.accept_backoffs,
                           st.accepted, st.open_conns);
    } else {
        gh_response_puts(w, "hello");
    }
}

static void emfile_server(int port_w, int ctl_r)
{
    alarm(30);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        _exit(3);
    rl.rlim_cur = EMFILE_LIMIT;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        _exit(4);
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = on_emfile_request;
    cfg.read_header_timeout = 30 * GH_SEC; /* held connections stay */
    cfg.max_workers = 2;
    /* One loop, one accept queue: "a request behind them waits" needs the probe queued
     * behind the held connections. With a listener per loop the kernel may queue it on a
     * loop that accepts it before another loop has used up the descriptors. */
    cfg.loops = 1;
    if (gh_server_new(&th_srv, &cfg) || gh_server_listen(th_srv, "127.0.0.1", 0) ||
        gh_server_start(th_srv))
        _exit(5);
    int port = gh_server_port(th_srv, 0);
    if (write(port_w, &port, sizeof port) != (ssize_t)sizeof port)
        _exit(6);
    char c;
    ssize_t k;
    do
        k = read(ctl_r, &c, 1);
    while (k < 0 && errno == EINTR);
    gh_server_close(th_srv);
    _exit(0);
}

START_TEST(test_faults_emfile_backs_off_and_recovers_when_descriptors_free_up)
{
    int port_p[2], ctl_p[2];
    ck_assert_int_eq(pipe(port_p), 0);
    ck_assert_int_eq(pipe(ctl_p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(port_p[0]);
        close(ctl_p[1]);
        emfile_server(port_p[1], ctl_p[0]);
    }
    close(port_p[1]);
    close(ctl_p[0]);
    struct pollfd p = {port_p[0], POLLIN, 0};
    ck_assert_int_eq(poll(&p, 1, TH_IO_MS), 1);
    ck_assert_int_eq(read(port_p[0], &th_port, sizeof th_port), (ssize_t)sizeof th_port);

    /* More connections than the server has descriptors: the first ones are accepted,
     * the rest wait in the listen backlog. */
    static int hold[N_HOLD];
    for (int i = 0; i < N_HOLD; i++)
        hold[i] = th_connect_srv();
    /* A request behind them is not answered while the server is out of descriptors. */
    int probe = th_connect_srv();
    th_send_str(probe, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_lt(th_read_response(probe, th_rbuf, sizeof th_rbuf - 1, 300), 0);

    /* Descriptors free up: the server closes the released connections (EOF), accepts
     * again after its back-off (at most 1 s) and answers the waiting request. */
    gh_time_t t0 = gh_now();
    for (int i = 0; i < N_RELEASE; i++)
        close(hold[i]);
    ck_assert_int_eq(th_read_status(probe), 200);
    long took = th_ms_since(t0);
    ck_assert_str_eq(th_body(th_rbuf), "hello");
    close(probe);
    int fd = th_connect_srv();
    th_send_str(fd, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    unsigned long backoffs = 0, accepted = 0;
    int open = -1;
    ck_assert_int_eq(sscanf(th_body(th_rbuf), "accept_backoffs=%lu accepted=%lu open=%d", &backoffs,
                            &accepted, &open),
                     3);
    fprintf(stderr,
            "EMFILE: RLIMIT_NOFILE %d, %d held; recovered %ld ms after releasing %d: "
            "accept_backoffs %lu, accepted %lu, open %d\n",
            EMFILE_LIMIT, N_HOLD, took, N_RELEASE, backoffs, accepted, open);
    close(fd);
    ck_assert_uint_gt(backoffs, 0);
    ck_assert_uint_ge(accepted, N_HOLD + 2 - N_RELEASE);
    for (int i = N_RELEASE; i < N_HOLD; i++)
        close(hold[i]);

    /* Stop the child: closing the control pipe; its exit closes the port pipe. */
    close(ctl_p[1]);
    p.revents = 0;
    int exited = poll(&p, 1, TH_IO_MS) == 1;
    if (!exited)
        kill(pid, SIGKILL);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    close(port_p[0]);
    ck_assert_msg(exited && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "server child: status 0x%x", status);
}
END_TEST

/* ---- soak ------------------------------------------------------------------------------- */

START_TEST(test_faults_soak_returns_descriptors_and_live_heap_to_baseline)
{
    th_raise_nofile();
    soak_opts_t o = {.requests = 5000, .hijacks = 500, .conns = 20, .max_workers = 8};
    soak_result_t r;
    int rc = soak_run(&o, &r);
    soak_print(stderr, &o, &r);
    ck_assert_msg(rc == 0, "soak: %s", r.err);
    /* The server under test: its warm-up (400 requests, 500 hijacks), then the soak
     * rounds (one, or more when a round started pool threads; see soak_run). */
    ck_assert_int_ge(r.rounds, 1);
    ck_assert_uint_eq(r.st.requests, 400 + 500 + (5000 + 500) * (unsigned long)r.rounds);
    ck_assert_uint_eq(r.st.hijacked, 500 + 500 * (unsigned long)r.rounds);
    ck_assert_uint_eq(r.st.bad_requests, 0);
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_faults_slowloris_1000_tricklers_closed_at_header_timeout);
    tcase_add_test(tc, test_faults_header_timeout_is_not_delayed_by_a_later_trickler);
    tcase_add_test(tc, test_faults_soak_returns_descriptors_and_live_heap_to_baseline);
    suite_add_tcase(s, tc);

    tc = tcase_create("resets");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_faults_reset_mid_body_fails_the_read_and_server_keeps_serving);
    tcase_add_test(tc, test_faults_reset_mid_response_fails_the_write_and_cancels_the_request);
    tcase_add_test(tc, test_faults_reset_right_after_hijack_fails_netconn_io_and_leaks_nothing);
    tcase_add_test(tc, test_faults_write_timeout_frees_the_only_worker_from_a_stalled_reader);
    suite_add_tcase(s, tc);

    tc = tcase_create("emfile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_faults_emfile_backs_off_and_recovers_when_descriptors_free_up);
    suite_add_tcase(s, tc);
    return s;
}
