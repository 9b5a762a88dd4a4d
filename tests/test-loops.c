/* tests/test-loops.c: a server with several event loops (lib/loop.c, lib/connset.c):
 * connections spread over the loops, a handler blocked on one loop does not hold up
 * another, shutdown across loops (with requests in flight on each, from inside a
 * handler, at its deadline), and the library's threads leaving asynchronous signals to
 * the program. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-common.h"

#include "../lib/loop.h" /* gh__loop_fd_add, gh__loop_timer_add: internal API */

#define LOOPS 2

/* What handlers and the test share: statics (GC-visible), never a pointer to a
 * connection, request or response. Check forks per test. */
static gh_ctx_t *entered;  /* cancelled once want_entered handlers have started */
static gh_ctx_t *release;  /* /wait handlers wait for it */
static gh_ctx_t *recorded; /* cancelled once a handler recorded its result */
static int n_entered, want_entered;
static int block_pipe[2] = {-1, -1}; /* /block reads one byte from it, outside gchttp */
static int rec_rc;
static gh_time_t rec_took;
static int sig_blocked[4]; /* /sigmask: SIGINT, SIGTERM, SIGUSR1 blocked; suspend open */

static void signal_entered(void)
{
    if (__atomic_add_fetch(&n_entered, 1, __ATOMIC_SEQ_CST) >= want_entered)
        gh_ctx_cancel(entered, 0);
}

static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    if (th_path_is(r, "/hello")) {
        gh_response_puts(w, "hello");
    } else if (th_path_is(r, "/block")) {
        /* Blocks its thread in a plain read(2), which gchttp does not see: the loop's
         * role moves only if the monitor takes it (handoff_timeout). */
        signal_entered();
        char b;
        ssize_t k;
        do
            k = read(block_pipe[0], &b, 1);
        while (k < 0 && errno == EINTR);
        gh_response_puts(w, "unblocked");
    } else if (th_path_is(r, "/wait")) {
        signal_entered();
        int rc = gh_ctx_wait(release, gh_now() + 10 * GH_SEC);
        gh_response_puts(w, rc != 0 ? "released" : "timed out"); /* 0: deadline */
    } else if (th_path_is(r, "/shutdown")) {
        gh_time_t t0 = gh_now();
        rec_rc = gh_server_shutdown(th_srv, 3 * GH_SEC);
        rec_took = gh_now() - t0;
        gh_response_puts(w, "bye after shutdown");
    } else if (th_path_is(r, "/sleep")) {
        /* Asleep on something that is not its connection: shutdown cannot wake it. */
        signal_entered();
        gh_ctx_t *never = gh_ctx_new(NULL);
        (void)gh_ctx_wait(never, gh_now() + 800 * GH_MSEC);
        gh_response_puts(w, "late");
        rec_rc = gh_response_flush(w);
        gh_ctx_cancel(recorded, 0);
    } else if (th_path_is(r, "/sigmask")) {
        sigset_t cur;
        pthread_sigmask(SIG_BLOCK, NULL, &cur);
        sig_blocked[0] = sigismember(&cur, SIGINT);
        sig_blocked[1] = sigismember(&cur, SIGTERM);
        sig_blocked[2] = sigismember(&cur, SIGUSR1);
        sig_blocked[3] = sigismember(&cur, GC_get_suspend_signal());
        gh_ctx_cancel(recorded, 0);
        gh_response_puts(w, "mask");
    } else {
        gh_response_write_header(w, 404);
    }
}

static void setup(void)
{
    entered = gh_ctx_new(NULL);
    release = gh_ctx_new(NULL);
    recorded = gh_ctx_new(NULL);
    n_entered = 0;
    want_entered = 1;
    rec_rc = 1;
    rec_took = 0;
    ck_assert_int_eq(pipe(block_pipe), 0);
}

static void teardown(void)
{
    gh_ctx_cancel(release, GH_ECLOSED);
    (void)!write(block_pipe[1], "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 64);
    th_server_close();
    close(block_pipe[0]);
    close(block_pipe[1]);
}

static void start(int loops, gh_time_t handoff)
{
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = on_request;
    cfg.loops = loops;
    cfg.handoff_timeout = handoff;
    th_server_start(&cfg);
    if (loops > 0)
        ck_assert_int_eq(gh_server_loops(th_srv), loops);
}

static gh_server_stats_t loop_stats(int i)
{
    gh_server_stats_t st;
    ck_assert_int_eq(gh_server_loop_stats(th_srv, i, &st), 0);
    return st;
}

/* Wait (bounded) until every loop has at least one request in progress. */
static int every_loop_active(int ms)
{
    gh_time_t end = gh_now() + (gh_time_t)ms * GH_MSEC;
    while (gh_now() < end) {
        int all = 1;
        for (int i = 0; i < gh_server_loops(th_srv); i++)
            all &= loop_stats(i).active_conns > 0;
        if (all)
            return 1;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL); /* polling interval of a bounded wait, not a synchronisation */
    }
    return 0;
}

/* ---- spread ------------------------------------------------------------------------ */

#define N_SPREAD 64

START_TEST(test_loops_spread_connections_over_every_loop)
{
    start(LOOPS, 0);
    static int fds[N_SPREAD];
    for (int i = 0; i < N_SPREAD; i++) {
        fds[i] = th_connect_srv();
        th_send_str(fds[i], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        ck_assert_int_eq(th_read_status(fds[i]), 200);
    }
    unsigned long accepted = 0, requests = 0;
    int open = 0;
    for (int i = 0; i < LOOPS; i++) {
        gh_server_stats_t st = loop_stats(i);
        /* The kernel hashes each connection to one loop's socket: with 64 of them, a
         * loop left without any would take odds of 2^-63. */
        ck_assert_uint_ge(st.accepted, 1);
        ck_assert_uint_eq(st.threads, 0); /* thread figures are the pool's */
        accepted += st.accepted;
        requests += st.requests;
        open += st.open_conns;
    }
    gh_server_stats_t all = th_stats();
    ck_assert_uint_eq(accepted, N_SPREAD);
    ck_assert_uint_eq(all.accepted, N_SPREAD);
    ck_assert_uint_eq(requests, N_SPREAD);
    ck_assert_uint_eq(all.requests, N_SPREAD);
    ck_assert_int_eq(open, all.open_conns);
    gh_server_stats_t none;
    ck_assert_int_eq(gh_server_loop_stats(th_srv, LOOPS, &none), GH_EINVAL);
    for (int i = 0; i < N_SPREAD; i++)
        close(fds[i]);
}
END_TEST

START_TEST(test_loops_default_to_the_cpus_the_process_may_use)
{
    start(0 /* default */, 0);
    cpu_set_t set;
    CPU_ZERO(&set);
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    ck_assert_int_eq(cfg.loops, 0);
    ck_assert_int_eq(gh_server_loops(th_srv), CPU_COUNT(&set));
}
END_TEST

/* ---- independence ------------------------------------------------------------------ */

#define N_PROBE 32

START_TEST(test_loops_handler_blocked_on_one_loop_does_not_delay_another)
{
    /* No hand-off within the test: the blocked loop's poller stays stuck in read(2). */
    start(LOOPS, 60 * GH_SEC);
    int blocked = th_connect_srv();
    th_send_str(blocked, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    th_wait_sig(entered, TH_IO_MS);
    int stuck = -1;
    for (int i = 0; i < LOOPS; i++)
        if (loop_stats(i).active_conns == 1)
            stuck = i;
    ck_assert_int_ge(stuck, 0);
    unsigned long stuck_accepted = loop_stats(stuck).accepted;
    /* New connections hash to either loop's socket; those of the free loop are answered
     * at once, while the stuck loop's poller cannot even accept. */
    static int fds[N_PROBE];
    for (int i = 0; i < N_PROBE; i++) {
        fds[i] = th_connect_srv();
        th_send_str(fds[i], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    /* Within a second, the responses there are (peeked, not read) are exactly those of
     * the connections the free loop accepted, and there is at least one. Sampled
     * together, so a later accept cannot pass for an answer. */
    gh_time_t t0 = gh_now();
    unsigned long acc = 0;
    int answered = -1;
    while (th_ms_since(t0) < 1000) {
        acc = 0;
        for (int i = 0; i < LOOPS; i++)
            if (i != stuck)
                acc += loop_stats(i).accepted;
        answered = 0;
        for (int i = 0; i < N_PROBE; i++) {
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            answered += poll(&p, 1, 0) == 1;
        }
        if (acc >= 1 && (unsigned long)answered == acc)
            break;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL); /* polling interval of a bounded wait */
    }
    ck_assert_uint_ge(acc, 1);
    ck_assert_uint_eq((unsigned long)answered, acc);
    /* The stuck loop accepted nothing meanwhile and served only the blocked request. */
    ck_assert_uint_eq(loop_stats(stuck).accepted, stuck_accepted);
    ck_assert_uint_eq(loop_stats(stuck).requests, 1);
    /* Released, the stuck loop answers its own. */
    ck_assert_int_eq(write(block_pipe[1], "x", 1), 1);
    ck_assert_int_eq(th_read_status(blocked), 200);
    ck_assert_str_eq(th_rbody(), "unblocked");
    for (int i = 0; i < N_PROBE; i++) {
        ck_assert_int_eq(th_read_status(fds[i]), 200);
        close(fds[i]);
    }
    close(blocked);
}
END_TEST

/* ---- shutdown ---------------------------------------------------------------------- */

static int shut_rc = 1;
static gh_time_t shut_took;

static void *shutdown_main(void *arg)
{
    (void)arg;
    gh_time_t t0 = gh_now();
    shut_rc = gh_server_shutdown(th_srv, 5 * GH_SEC);
    shut_took = gh_now() - t0;
    return NULL;
}

/* Is the listener closed (a new connection refused)? */
static int refused(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)th_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(fd);
    return rc < 0 && e == ECONNREFUSED;
}

#define N_FLIGHT 16

START_TEST(test_loops_shutdown_answers_requests_in_flight_on_every_loop)
{
    start(LOOPS, 0);
    want_entered = N_FLIGHT;
    static int fds[N_FLIGHT];
    for (int i = 0; i < N_FLIGHT; i++) {
        fds[i] = th_connect_srv();
        th_send_str(fds[i], "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    th_wait_sig(entered, TH_IO_MS);
    ck_assert(every_loop_active(TH_IO_MS));
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, shutdown_main, NULL), 0);
    /* Shutdown has begun once the listeners are gone (bounded). */
    int gone = 0;
    for (int i = 0; i < 2500 && !(gone = refused()); i++) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ck_assert(gone);
    ck_assert_int_eq(th_stats().active_conns, N_FLIGHT);
    gh_ctx_cancel(release, 0);
    for (int i = 0; i < N_FLIGHT; i++) {
        ck_assert_int_eq(th_read_status(fds[i]), 200);
        ck_assert_str_eq(th_rbody(), "released");
        close(fds[i]);
    }
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(shut_rc, 0);
    ck_assert_int_lt(shut_took / GH_MSEC, 4000);
    gh_server_stats_t st = th_stats();
    ck_assert_int_eq(st.open_conns, 0);
    ck_assert_uint_eq(st.requests, N_FLIGHT);
}
END_TEST

START_TEST(test_loops_shutdown_from_a_handler_does_not_wait_for_its_own_request)
{
    start(LOOPS, 0);
    int fd = th_connect_srv();
    gh_time_t t0 = gh_now();
    th_send_str(fd, "GET /shutdown HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "bye after shutdown");
    ck_assert_int_eq(rec_rc, 0);
    ck_assert_int_lt(rec_took / GH_MSEC, 1000);
    ck_assert_int_lt(th_ms_since(t0), 2000);
    ck_assert_ptr_nonnull(strstr(th_rbuf, "Connection: close"));
    /* Then the connection ends, and the server accepts no more. */
    char b[16];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, TH_IO_MS), 1);
    ck_assert_int_eq(recv(fd, b, sizeof b, 0), 0);
    ck_assert(refused());
    close(fd);
}
END_TEST

START_TEST(test_loops_shutdown_returns_at_its_deadline_while_a_handler_sleeps)
{
    start(LOOPS, 0);
    int fd = th_connect_srv();
    th_send_str(fd, "GET /sleep HTTP/1.1\r\nHost: x\r\n\r\n");
    th_wait_sig(entered, TH_IO_MS);
    gh_time_t t0 = gh_now();
    ck_assert_int_eq(gh_server_shutdown(th_srv, 200 * GH_MSEC), GH_ETIMEDOUT);
    long took = th_ms_since(t0);
    ck_assert_int_ge(took, 190);
    ck_assert_int_lt(took, 600); /* the handler sleeps 800 ms */
    /* The straggler finishes on its own; its connection is gone, so its write fails. */
    th_wait_sig(recorded, TH_IO_MS);
    ck_assert_int_lt(rec_rc, 0);
    close(fd);
}
END_TEST

/* ---- signals ----------------------------------------------------------------------- */

START_TEST(test_loops_server_threads_leave_async_signals_to_the_program)
{
    /* The test thread leaves SIGUSR2 open while the server makes its threads. */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    ck_assert_int_eq(pthread_sigmask(SIG_UNBLOCK, &usr2, NULL), 0);
    start(LOOPS, -1); /* every request on a worker: pollers and workers both exist */
    int fd = th_connect_srv();
    th_send_str(fd, "GET /sigmask HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    th_wait_sig(recorded, TH_IO_MS);
    ck_assert_int_eq(sig_blocked[0], 1);
    ck_assert_int_eq(sig_blocked[1], 1);
    ck_assert_int_eq(sig_blocked[2], 1);
    ck_assert_int_eq(sig_blocked[3], 0); /* the collector's stop-the-world signal */
    ck_assert_int_ge(th_stats().threads, LOOPS + 1);
    /* Now the program takes SIGUSR2 with sigwait: a process-directed signal goes to a
     * thread that does not block it; were a server thread one, its default action
     * would end the process instead. */
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &usr2, NULL), 0);
    ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
    struct timespec ts = {TH_IO_MS / 1000, 0};
    ck_assert_int_eq(sigtimedwait(&usr2, NULL, &ts), SIGUSR2);
    close(fd);
}
END_TEST

/* ---- another module's descriptor and timer on a loop ------------------------------- */

static gh_probe_t *fx_probe;
static int fx_calls, fx_byte;
static uint32_t fx_events;
static gh_time_t fx_timer_at;
static const gh_type_t *fx_type_seen;
static gh_ctx_t *barrier; /* a timer on the loop cancels it: the loop has gone round */

static void on_foreign(void *obj, int fd, uint32_t events)
{
    char b = 0;
    ssize_t k;
    do
        k = read(fd, &b, 1);
    while (k < 0 && errno == EINTR);
    fx_byte = k == 1 ? b : -1;
    fx_events = events;
    fx_type_seen = gh_obj_type(obj);
    __atomic_add_fetch(&fx_calls, 1, __ATOMIC_SEQ_CST);
    gh_ctx_cancel(recorded, 0);
}

static void on_timer(void *obj)
{
    fx_type_seen = gh_obj_type(obj);
    fx_timer_at = gh_now();
    gh_ctx_cancel(recorded, 0);
}

static void on_barrier(void *obj)
{
    (void)obj;
    gh_ctx_cancel(barrier, 0);
}

/* The object the loop keeps: made here so that no frame of the test holds it. */
__attribute__((noinline)) static int add_foreign(int loop, int fd)
{
    gh_ctx_t *obj = gh_ctx_new(NULL);
    fx_probe = gh_probe_new(obj);
    return gh__loop_fd_add(th_srv, loop, fd, EPOLLIN, on_foreign, obj);
}

START_TEST(test_loops_foreign_descriptor_runs_its_callback_with_its_object)
{
    start(LOOPS, 0);
    ck_assert_int_eq(add_foreign(LOOPS - 1, block_pipe[0]), 0);
    ck_assert_int_eq(gh__loop_fd_add(th_srv, LOOPS - 1, block_pipe[0], EPOLLIN, on_foreign,
                                     NULL),
                     GH_EEXIST);
    ck_assert_int_eq(gh__loop_fd_add(th_srv, LOOPS, block_pipe[1], EPOLLIN, on_foreign, NULL),
                     GH_EINVAL);
    /* The loop's table is what keeps the object: collections leave it alone. */
    gh_gc_collect(3);
    ck_assert_int_eq(gh_probe_reclaimed(fx_probe), 0);
    ck_assert_int_eq(write(block_pipe[1], "k", 1), 1);
    th_wait_sig(recorded, TH_IO_MS);
    ck_assert_int_eq(fx_byte, 'k');
    ck_assert(fx_events & EPOLLIN);
    ck_assert_ptr_nonnull(fx_type_seen);
    ck_assert_str_eq(fx_type_seen->name, "context");
    ck_assert_int_eq(gh__loop_fd_del(th_srv, LOOPS - 1, block_pipe[0], NULL), 0);
    ck_assert_int_eq(gh__loop_fd_del(th_srv, LOOPS - 1, block_pipe[0], NULL), GH_ENOENT);
    /* Removed: a byte written now is left for whoever reads the pipe. A timer due now
     * fires after the loop's next epoll_wait, which would have reported the pipe. */
    ck_assert_int_eq(write(block_pipe[1], "m", 1), 1);
    barrier = gh_ctx_new(NULL);
    ck_assert_int_eq(gh__loop_timer_add(th_srv, LOOPS - 1, gh_now(), on_barrier, NULL, NULL), 0);
    th_wait_sig(barrier, TH_IO_MS);
    ck_assert_int_eq(__atomic_load_n(&fx_calls, __ATOMIC_SEQ_CST), 1);
    char b;
    ck_assert_int_eq(read(block_pipe[0], &b, 1), 1);
    ck_assert_int_eq(b, 'm');
}
END_TEST

START_TEST(test_loops_timer_fires_on_its_loop_at_its_time)
{
    start(LOOPS, 0);
    gh_time_t at = gh_now() + 30 * GH_MSEC;
    gh__loop_timer_t *cancelled = NULL;
    ck_assert_int_eq(gh__loop_timer_add(th_srv, 0, at - 10 * GH_MSEC, on_timer, NULL,
                                        &cancelled),
                     0);
    ck_assert_int_eq(gh__loop_timer_cancel(th_srv, cancelled), 0);
    ck_assert_int_eq(gh__loop_timer_cancel(th_srv, cancelled), GH_ENOENT);
    gh_ctx_t *obj = gh_ctx_new(NULL);
    ck_assert_int_eq(gh__loop_timer_add(th_srv, 1, at, on_timer, obj, NULL), 0);
    th_wait_sig(recorded, TH_IO_MS);
    ck_assert_int_ge(fx_timer_at, at);
    ck_assert_str_eq(fx_type_seen->name, "context");
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("loops");
    TCase *tc = tcase_create("spread");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_loops_spread_connections_over_every_loop);
    tcase_add_test(tc, test_loops_default_to_the_cpus_the_process_may_use);
    tcase_add_test(tc, test_loops_handler_blocked_on_one_loop_does_not_delay_another);
    suite_add_tcase(s, tc);
    tc = tcase_create("shutdown");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_loops_shutdown_answers_requests_in_flight_on_every_loop);
    tcase_add_test(tc, test_loops_shutdown_from_a_handler_does_not_wait_for_its_own_request);
    tcase_add_test(tc, test_loops_shutdown_returns_at_its_deadline_while_a_handler_sleeps);
    suite_add_tcase(s, tc);
    tc = tcase_create("foreign");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_loops_foreign_descriptor_runs_its_callback_with_its_object);
    tcase_add_test(tc, test_loops_timer_fires_on_its_loop_at_its_time);
    suite_add_tcase(s, tc);
    tc = tcase_create("signals");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_loops_server_threads_leave_async_signals_to_the_program);
    suite_add_tcase(s, tc);
    return s;
}
