/* tests/test-watch.c: gchttp/watch.h: a hijacked connection served by the server's loop
 * with callbacks, over raw loopback sockets. The watched connection speaks a line
 * protocol (the readable callback consumes whole lines only, so partial input must be
 * kept): "echo X" -> "X", "big" -> 32 MiB queued then "end", "timer" -> "tick" later,
 * "close" -> "bye" then the close, "stop" -> given back to a thread that answers
 * "stopped:" + the next line through the returned reader, "block" -> the callback
 * blocks until the test releases it. A timer callback (the test may set timers itself)
 * counts, blocks if the test asked it to, and answers "tick". Upgrading at /graceful
 * adds a shutdown callback that answers "going" (and keeps the connection until
 * "close"). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"

#define WAIT_MS 15000
#define BIG (32u << 20)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
/* Wait (bounded) until *counter >= want (tests/support/client.h). */
static int wait_count(int *counter, int want)
{
    return th_wait_count(&mu, &cv, counter, want, WAIT_MS);
}
static int n_writable, n_closed, last_err, n_started, n_big;
static int n_blocking, released, n_other_thread, n_overlap;

/* What the handler leaves for its watch's callbacks (the watch's data: traced).
 * Alloc: gh_obj_new in the handler; kept by the watch. */
typedef struct rec {
    pthread_t handler_thread; /* the thread that ran the upgrade (a loop's poller) */
    int busy;                 /* atomic: readable callbacks running now */
    int err;                  /* the closed callback's err, + 1 once called */
    int ticks;                /* atomic: timer callbacks run */
    int block_in_timer;       /* atomic: the next timer callback blocks (block_here) */
} rec_t;
static gh_type_t rec_type = GH_TYPE_INIT_NOPTRS("watchTestRec", rec_t);
static ssize_t big_queued;
static gh_watch_t *watched; /* the last watch started (static: a GC root) */
static gh_netconn_t *given_back;
static gh_bufrw_t given_rw;
static pthread_t stopper;

static void bump(int *counter)
{
    pthread_mutex_lock(&mu);
    (*counter)++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* The thread a stopped connection is given to: reads one line through the returned
 * reader (which holds what the watch had not consumed), answers, closes. */
static void *stopped_main(void *arg)
{
    (void)arg;
    char line[64];
    size_t n = 0;
    gh_netconn_set_deadline(given_back, gh_now() + (gh_time_t)WAIT_MS * GH_MSEC);
    while (n < sizeof line - 1) {
        ssize_t k = gh_reader_read(given_rw.r, line + n, 1);
        if (k <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = 0;
    char out[96];
    int k = snprintf(out, sizeof out, "stopped:%s\n", line);
    if (gh_writer_write(given_rw.w, out, (size_t)k) == k)
        (void)!gh_writer_flush(given_rw.w); /* a failure shows as a missing line */
    gh_netconn_close(given_back);
    return NULL;
}

/* "block": wait (bounded) until the test sets `released`, on the loop's thread. */
static void block_here(void)
{
    bump(&n_blocking);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&mu);
    while (!released && pthread_cond_timedwait(&cv, &mu, &ts) == 0)
        ;
    pthread_mutex_unlock(&mu);
}

/* Let every "block" go (and those to come). */
static void release_blocked(void)
{
    pthread_mutex_lock(&mu);
    released = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static size_t lines(gh_watch_t *w, char *p, size_t n);

static size_t on_readable(gh_watch_t *w, char *p, size_t n, void *data)
{
    rec_t *rc = data;
    if (__atomic_add_fetch(&rc->busy, 1, __ATOMIC_SEQ_CST) > 1)
        __atomic_add_fetch(&n_overlap, 1, __ATOMIC_SEQ_CST);
    if (!pthread_equal(pthread_self(), rc->handler_thread))
        __atomic_add_fetch(&n_other_thread, 1, __ATOMIC_SEQ_CST);
    size_t used = lines(w, p, n);
    __atomic_sub_fetch(&rc->busy, 1, __ATOMIC_SEQ_CST);
    return used;
}

static size_t lines(gh_watch_t *w, char *p, size_t n)
{
    size_t used = 0;
    for (;;) {
        char *nl = memchr(p + used, '\n', n - used);
        if (!nl)
            return used; /* a partial line stays with the watch */
        char *line = p + used;
        size_t len = (size_t)(nl - line);
        used += len + 1;
        if (len > 5 && !memcmp(line, "echo ", 5)) {
            (void)gh_watch_write2(w, line + 5, len - 5, "\n", 1);
        } else if (len == 3 && !memcmp(line, "big", 3)) {
            char *b = gh_bytes_new(BIG);
            memset(b, 'z', BIG);
            ssize_t q = gh_watch_write_shared(w, b, BIG);
            pthread_mutex_lock(&mu);
            big_queued = q;
            pthread_mutex_unlock(&mu);
            (void)gh_watch_write(w, "end\n", 4);
            bump(&n_big);
        } else if (len == 5 && !memcmp(line, "timer", 5)) {
            gh_watch_set_timer(w, gh_now() + 50 * GH_MSEC);
        } else if (len == 5 && !memcmp(line, "close", 5)) {
            (void)gh_watch_write(w, "bye\n", 4);
            gh_watch_close(w);
            return n;
        } else if (len == 5 && !memcmp(line, "block", 5)) {
            block_here();
        } else if (len == 4 && !memcmp(line, "stop", 4)) {
            /* What follows "stop\n" goes back with the connection, in the reader. */
            if (gh_watch_stop(w, used, &given_back, &given_rw) == 0 &&
                gh_thread_start(&stopper, stopped_main, NULL) != 0)
                gh_netconn_close(given_back);
            return n;
        }
    }
}

static void on_writable(gh_watch_t *w, void *data)
{
    (void)w, (void)data;
    bump(&n_writable);
}

static void on_timer(gh_watch_t *w, void *data)
{
    rec_t *rc = data;
    __atomic_add_fetch(&rc->ticks, 1, __ATOMIC_SEQ_CST);
    if (__atomic_exchange_n(&rc->block_in_timer, 0, __ATOMIC_SEQ_CST))
        block_here();
    (void)gh_watch_write(w, "tick\n", 5);
}

static void on_closed(gh_watch_t *w, int err, void *data)
{
    (void)w;
    rec_t *rc = data;
    pthread_mutex_lock(&mu);
    last_err = err;
    rc->err = err + 1;
    pthread_mutex_unlock(&mu);
    bump(&n_closed);
}

static void on_shutdown(gh_watch_t *w, void *data)
{
    (void)data;
    (void)gh_watch_write(w, "going\n", 6);
}

static const gh_watch_ops_t ops = {on_readable, on_writable, on_timer, on_closed, NULL};
static const gh_watch_ops_t graceful_ops = {on_readable, on_writable, on_timer, on_closed,
                                           on_shutdown};
static rec_t *recs[64];        /* each watch's record, in start order (a GC root) */
static gh_watch_t *watches[64]; /* each watch, in start order (a GC root) */

static void handler(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    if (th_path_is(r, "/plain")) {
        (void)gh_response_write(w, "ok", 2);
        return;
    }
    rec_t *rc = gh_obj_new(&rec_type);
    if (!rc)
        return;
    memset(rc, 0, sizeof *rc); /* no pointers: maybe atomic, unzeroed memory */
    rc->handler_thread = pthread_self();
    gh_response_header_set(w, "Upgrade", "lines");
    gh_response_header_set(w, "Connection", "Upgrade");
    if (gh_response_write_header(w, 101) < 0)
        return;
    gh_netconn_t *nc;
    gh_bufrw_t rw;
    if (gh_response_hijack(w, &nc, &rw) < 0)
        return;
    gh_watch_t *wt;
    const gh_watch_ops_t *o = th_path_is(r, "/graceful") ? &graceful_ops : &ops;
    if (gh_watch_start(nc, rw.r, o, rc, &wt) < 0) {
        gh_netconn_close(nc);
        return;
    }
    pthread_mutex_lock(&mu);
    watched = wt;
    if (n_started < (int)(sizeof recs / sizeof *recs)) {
        recs[n_started] = rc;
        watches[n_started] = wt;
    }
    pthread_mutex_unlock(&mu);
    bump(&n_started);
}

static void setup(void)
{
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = handler;
    th_server_start(&cfg);
}

static void teardown(void) { th_server_close(); }

/* ---- the client side ------------------------------------------------------------------- */

static char inbuf[1 << 16];
static size_t inlen;

/* Read until `want` is in what came since the last call (bounded); 1 if found. */
static int expect(int fd, const char *want)
{
    gh_time_t deadline = gh_now() + (gh_time_t)WAIT_MS * GH_MSEC;
    for (;;) {
        inbuf[inlen] = 0;
        char *hit = strstr(inbuf, want);
        if (hit) {
            size_t end = (size_t)(hit - inbuf) + strlen(want);
            memmove(inbuf, inbuf + end, inlen - end);
            inlen -= end;
            return 1;
        }
        gh_time_t left = deadline - gh_now();
        struct pollfd pf = {fd, POLLIN, 0};
        if (left <= 0 || inlen == sizeof inbuf - 1 || poll(&pf, 1, (int)(left / GH_MSEC) + 1) <= 0)
            return 0;
        ssize_t k = recv(fd, inbuf + inlen, sizeof inbuf - 1 - inlen, 0);
        if (k <= 0)
            return 0;
        inlen += (size_t)k;
    }
}

/* Connect and upgrade at path; `first` goes in the same send() as the request. Waits
 * for the handler to have started the watch (the k-th of the test). */
static int open_watched_at(const char *path, const char *first, int k)
{
    int fd = th_connect_srv();
    char req[512];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: t\r\nUpgrade: lines\r\nConnection: Upgrade\r\n\r\n%s",
             path, first);
    th_send_str(fd, req);
    inlen = 0;
    ck_assert(expect(fd, "\r\n\r\n"));
    ck_assert(wait_count(&n_started, k));
    return fd;
}

static int open_watched(const char *first) { return open_watched_at("/", first, 1); }

START_TEST(test_first_bytes_and_partial_input_are_kept_for_the_next_call)
{
    int fd = open_watched("echo first\necho par");
    ck_assert(expect(fd, "first\n"));
    th_send_str(fd, "tial\n");
    ck_assert(expect(fd, "partial\n"));
    ck_assert_uint_eq(gh_watch_count(), 1);
    ck_assert_int_eq(th_stats().watched, 1);
    ck_assert_int_eq(gh_watch_loop_threads(), 0); /* the server's loops serve it */
    close(fd);
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_err, GH_EOF);
    ck_assert_uint_eq(gh_watch_count(), 0);
}
END_TEST

START_TEST(test_short_write_queues_then_writable_is_called)
{
    int fd = open_watched("big\n");
    ck_assert(wait_count(&n_big, 1));
    pthread_mutex_lock(&mu);
    ssize_t q = big_queued;
    pthread_mutex_unlock(&mu);
    /* The client has read nothing: most of the 32 MiB is queued, and says so. */
    ck_assert_int_gt(q, 0);
    ck_assert_uint_ge(gh_watch_queued(watched), (size_t)q);
    ck_assert_int_eq(n_writable, 0);
    static char b[1 << 16];
    size_t got = 0;
    while (got < BIG) {
        struct pollfd pf = {fd, POLLIN, 0};
        ck_assert_int_gt(poll(&pf, 1, WAIT_MS), 0);
        ssize_t k = recv(fd, b, sizeof b < BIG - got ? sizeof b : BIG - got, 0);
        ck_assert_int_gt(k, 0);
        ck_assert(b[0] == 'z' && b[k - 1] == 'z');
        got += (size_t)k;
    }
    inlen = 0;
    ck_assert(expect(fd, "end\n")); /* after the queued bytes, in order */
    ck_assert(wait_count(&n_writable, 1));
    ck_assert_uint_eq(gh_watch_queued(watched), 0);
    close(fd);
}
END_TEST

START_TEST(test_writes_from_another_thread_arrive_whole_and_in_order)
{
    int fd = open_watched("");
    pthread_mutex_lock(&mu);
    gh_watch_t *w = watched;
    pthread_mutex_unlock(&mu);
    char line[16];
    for (int i = 0; i < 20000; i++) {
        int k = snprintf(line, sizeof line, "%06d\n", i);
        ck_assert_int_ge(gh_watch_write(w, line, (size_t)k), 0);
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(line, sizeof line, "%06d\n", i);
        while (inlen < 7) {
            struct pollfd pf = {fd, POLLIN, 0};
            ck_assert_int_gt(poll(&pf, 1, WAIT_MS), 0);
            ssize_t k = recv(fd, inbuf + inlen, sizeof inbuf - 1 - inlen, 0);
            ck_assert_int_gt(k, 0);
            inlen += (size_t)k;
        }
        ck_assert_int_eq(memcmp(inbuf, line, 7), 0);
        memmove(inbuf, inbuf + 7, inlen - 7);
        inlen -= 7;
    }
    close(fd);
}
END_TEST

START_TEST(test_timer_runs_the_callback_on_the_loop)
{
    int fd = open_watched("");
    gh_time_t t0 = gh_now();
    th_send_str(fd, "timer\n");
    ck_assert(expect(fd, "tick\n"));
    ck_assert_int_ge(gh_now() - t0, 45 * GH_MSEC);
    close(fd);
}
END_TEST

START_TEST(test_close_flushes_then_ends_with_closed_0)
{
    int fd = open_watched("echo one\nclose\n");
    ck_assert(expect(fd, "one\nbye\n"));
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_err, 0);
    pthread_mutex_lock(&mu);
    gh_watch_t *w = watched;
    pthread_mutex_unlock(&mu);
    ck_assert_int_eq(gh_watch_write(w, "late", 4), GH_EBADF);
    close(fd);
}
END_TEST

START_TEST(test_stop_gives_the_connection_and_unread_input_back)
{
    int fd = open_watched("");
    th_send_str(fd, "stop\nhello\n"); /* one segment: "hello" must not be lost */
    ck_assert(expect(fd, "stopped:hello\n"));
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    ck_assert_int_eq(gh_thread_join(stopper, NULL), 0);
    ck_assert_int_eq(n_closed, 0); /* closed is never called after a stop */
    ck_assert_uint_eq(gh_watch_count(), 0);
    close(fd);
}
END_TEST

START_TEST(test_stop_off_the_loop_is_refused)
{
    int fd = open_watched("");
    pthread_mutex_lock(&mu);
    gh_watch_t *w = watched;
    pthread_mutex_unlock(&mu);
    gh_netconn_t *nc;
    ck_assert_int_eq(gh_watch_stop(w, 0, &nc, NULL), GH_EINVAL);
    ck_assert_int_eq(gh_watch_on_loop(), 0);
    th_send_str(fd, "echo still watched\n");
    ck_assert(expect(fd, "still watched\n"));
    close(fd);
}
END_TEST


/* ---- on the server's loops --------------------------------------------------------- */

static void start_loops(int loops, gh_time_t handoff)
{
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = handler;
    cfg.loops = loops;
    cfg.handoff_timeout = handoff;
    th_server_start(&cfg);
}

START_TEST(test_each_watch_is_served_by_the_loop_that_accepted_it)
{
    /* No hand-off can happen (10 s): a loop's poller stays one thread, the one that
     * ran the upgrade inline, and every callback must run there. */
    enum { LOOPS = 4, N = 16 };
    start_loops(LOOPS, 10 * GH_SEC);
    gh_server_stats_t before = th_stats();
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = open_watched_at("/", "", i + 1);
        char line[32];
        snprintf(line, sizeof line, "echo conn%d\n", i);
        th_send_str(fds[i], line);
        snprintf(line, sizeof line, "conn%d\n", i);
        ck_assert(expect(fds[i], line));
    }
    ck_assert_int_eq(__atomic_load_n(&n_other_thread, __ATOMIC_SEQ_CST), 0);
    /* Each loop counts its own watches; no thread was started for them. */
    int used = 0, total = 0;
    for (int l = 0; l < LOOPS; l++) {
        gh_server_stats_t st;
        ck_assert_int_eq(gh_server_loop_stats(th_srv, l, &st), 0);
        ck_assert_int_eq(st.watched, (int)st.hijacked); /* every hijack of loop l is here */
        used += st.watched > 0;
        total += st.watched;
    }
    ck_assert_int_eq(total, N);
    ck_assert_int_ge(used, 2); /* 16 connections over 4 SO_REUSEPORT listeners */
    gh_server_stats_t after = th_stats();
    ck_assert_int_eq(after.threads, before.threads);
    ck_assert_int_eq(after.watched, N);
    ck_assert_int_eq(gh_watch_loop_threads(), 0);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    ck_assert(wait_count(&n_closed, N));
    ck_assert_int_eq(th_stats().watched, 0);
}
END_TEST

START_TEST(test_a_blocking_callback_hands_its_loop_to_another_thread)
{
    start_loops(1, GH_MSEC); /* one loop: A and B share it */
    int a = open_watched_at("/", "", 1);
    int b = open_watched_at("/", "", 2);
    th_send_str(a, "block\n");
    ck_assert(wait_count(&n_blocking, 1));
    /* A's callback holds its thread; the loop goes on with another one. */
    inlen = 0;
    th_send_str(b, "echo b while a blocks\n");
    ck_assert(expect(b, "b while a blocks\n"));
    int h = th_connect_srv();
    th_send_str(h, "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(th_read_status(h), 200);
    close(h);
    /* A's next line waits for its blocked callback, then comes in order. */
    th_send_str(a, "echo a after\n");
    release_blocked();
    inlen = 0;
    ck_assert(expect(a, "a after\n"));
    ck_assert_int_eq(__atomic_load_n(&n_overlap, __ATOMIC_SEQ_CST), 0);
    ck_assert_uint_ge(th_stats().handoffs, 1);
    close(a);
    close(b);
    ck_assert(wait_count(&n_closed, 2));
}
END_TEST

START_TEST(test_server_close_ends_watches_with_eclosed)
{
    int fd = open_watched("echo one\n");
    ck_assert(expect(fd, "one\n"));
    gh_server_close(th_srv);
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_err, GH_ECLOSED);
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    ck_assert_uint_eq(gh_watch_count(), 0);
    close(fd);
}
END_TEST

static gh_time_t shutdown_timeout;
static int shutdown_rc = 1;

static void *shutdown_main(void *arg)
{
    (void)arg;
    int rc = gh_server_shutdown(th_srv, shutdown_timeout);
    pthread_mutex_lock(&mu);
    shutdown_rc = rc;
    pthread_mutex_unlock(&mu);
    return NULL;
}

START_TEST(test_shutdown_tells_graceful_watches_and_waits_for_them)
{
    int g = open_watched_at("/graceful", "", 1);
    int p = open_watched_at("/", "", 2);
    shutdown_timeout = (gh_time_t)WAIT_MS * GH_MSEC;
    pthread_t t;
    ck_assert_int_eq(gh_thread_start(&t, shutdown_main, NULL), 0);
    ck_assert(expect(g, "going\n"));
    /* Still served while the shutdown waits for it. */
    th_send_str(g, "echo still here\n");
    ck_assert(expect(g, "still here\n"));
    th_send_str(g, "close\n");
    ck_assert(expect(g, "bye\n"));
    ck_assert_int_eq(th_wait_closed(g, WAIT_MS), 1);
    ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    ck_assert_int_eq(shutdown_rc, 0);
    /* The graceful one ended by its own close; the other one was ended by the server. */
    ck_assert_int_eq(recs[0]->err, 0 + 1);
    ck_assert_int_eq(recs[1]->err, GH_ECLOSED + 1);
    ck_assert_int_eq(th_wait_closed(p, WAIT_MS), 1);
    close(g);
    close(p);
}
END_TEST

START_TEST(test_shutdown_deadline_ends_a_graceful_watch_that_stays)
{
    int g = open_watched_at("/graceful", "", 1);
    shutdown_timeout = 100 * GH_MSEC;
    gh_time_t t0 = gh_now();
    pthread_t t;
    ck_assert_int_eq(gh_thread_start(&t, shutdown_main, NULL), 0);
    ck_assert(expect(g, "going\n"));
    ck_assert_int_eq(gh_thread_join(t, NULL), 0); /* the client never closes */
    ck_assert_int_eq(shutdown_rc, GH_ETIMEDOUT);
    ck_assert_int_ge(gh_now() - t0, 100 * GH_MSEC);
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_err, GH_ECLOSED);
    ck_assert_int_eq(th_wait_closed(g, WAIT_MS), 1);
    close(g);
}
END_TEST

/* The server's descriptor number of the k-th watch (1-based). */
static int watch_fd(int k)
{
    pthread_mutex_lock(&mu);
    gh_watch_t *w = watches[k - 1];
    pthread_mutex_unlock(&mu);
    return gh_fd_fileno(gh_netconn_fd(gh_watch_netconn(w)));
}

START_TEST(test_closing_a_watched_connection_ends_the_watch_and_spares_its_number)
{
    /* Rounds: the second close meets the watch's end, run by the loop's thread, at
     * whatever point it has reached (still on the table, off it and closing, done);
     * wherever that is, it is GH_EBADF. */
    enum { ROUNDS = 40 };
    for (int i = 0; i < ROUNDS; i++) {
        int fd = open_watched_at("/", "echo one\n", i + 1);
        ck_assert(expect(fd, "one\n"));
        /* Behind the watch's back (as gh_server_close_hijacked does): the watch takes
         * it off its loop, then closes it. */
        pthread_mutex_lock(&mu);
        gh_netconn_t *nc = gh_watch_netconn(watched);
        pthread_mutex_unlock(&mu);
        ck_assert_int_eq(gh_netconn_close(nc), 0);
        ck_assert_int_eq(gh_netconn_close(nc), GH_EBADF);
        ck_assert(wait_count(&n_closed, i + 1));
        ck_assert_int_eq(last_err, 0);
        ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
        ck_assert_uint_eq(gh_watch_count(), 0);
        close(fd);
    }
    /* The number is free for the next connection, whose registration nothing stale
     * removes: it goes on serving request after request. */
    int h = th_connect_srv();
    for (int i = 0; i < 3; i++) {
        th_send_str(h, "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n");
        ck_assert_int_eq(th_read_status(h), 200);
    }
    close(h);
}
END_TEST

START_TEST(test_a_timer_set_again_while_its_watch_was_busy_elsewhere_waits_for_the_new_time)
{
    start_loops(1, GH_MSEC); /* one loop: both watches share its timer scan */
    int c[2];
    c[0] = open_watched_at("/", "", 1);
    c[1] = open_watched_at("/", "", 2);
    /* A is the first in the scan of due timers (the lower number), B the second. */
    int a = watch_fd(1) < watch_fd(2) ? 0 : 1, b = 1 - a;
    gh_watch_t *wa = watches[a], *wb = watches[b];
    th_send_str(c[a], "block\n");
    ck_assert(wait_count(&n_blocking, 1));
    /* A's timer comes due while its callback blocks on another thread: it waits for
     * that callback. B's, due no earlier, is posted after A's: its tick says A's has
     * fired. */
    gh_time_t t = gh_now();
    gh_watch_set_timer(wa, t);
    gh_watch_set_timer(wb, t + GH_MSEC);
    inlen = 0;
    ck_assert(expect(c[b], "tick\n"));
    /* Set again before A's callback returns: the fired one is void. */
    gh_watch_set_timer(wa, t + 60 * GH_SEC);
    release_blocked();
    inlen = 0;
    th_send_str(c[a], "echo done\n");
    ck_assert(expect(c[a], "done\n"));
    th_send_str(c[a], "echo again\n"); /* after whatever ran with "done" */
    ck_assert(expect(c[a], "again\n"));
    ck_assert_int_eq(__atomic_load_n(&recs[a]->ticks, __ATOMIC_SEQ_CST), 0);
    ck_assert_int_eq(__atomic_load_n(&recs[b]->ticks, __ATOMIC_SEQ_CST), 1);
    close(c[0]);
    close(c[1]);
    ck_assert(wait_count(&n_closed, 2));
}
END_TEST

START_TEST(test_a_timer_callback_that_blocks_delays_no_other_timer)
{
    start_loops(1, GH_MSEC);
    int c[2];
    c[0] = open_watched_at("/", "", 1);
    c[1] = open_watched_at("/", "", 2);
    int a = watch_fd(1) < watch_fd(2) ? 0 : 1, b = 1 - a;
    /* Both due in the same scan, A first; A's callback blocks. */
    __atomic_store_n(&recs[a]->block_in_timer, 1, __ATOMIC_SEQ_CST);
    gh_time_t t = gh_now() + 10 * GH_MSEC;
    gh_watch_set_timer(watches[a], t);
    gh_watch_set_timer(watches[b], t);
    ck_assert(wait_count(&n_blocking, 1));
    inlen = 0;
    ck_assert(expect(c[b], "tick\n")); /* while A's still blocks */
    release_blocked();
    inlen = 0;
    ck_assert(expect(c[a], "tick\n"));
    close(c[0]);
    close(c[1]);
    ck_assert(wait_count(&n_closed, 2));
}
END_TEST

START_TEST(test_callbacks_blocking_on_every_thread_still_leave_one_to_poll)
{
    /* One loop and one worker: two threads, until callbacks hold them. */
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = handler;
    cfg.loops = 1;
    cfg.max_workers = 1;
    cfg.handoff_timeout = GH_MSEC;
    th_server_start(&cfg);
    enum { BLOCKED = 3 };
    int c[BLOCKED + 1];
    for (int i = 0; i <= BLOCKED; i++)
        c[i] = open_watched_at("/", "", i + 1);
    for (int i = 0; i < BLOCKED; i++) {
        th_send_str(c[i], "block\n");
        ck_assert(wait_count(&n_blocking, i + 1));
    }
    /* Each blocked callback cost its thread the role; the loop still serves. */
    inlen = 0;
    th_send_str(c[BLOCKED], "echo free\n");
    ck_assert(expect(c[BLOCKED], "free\n"));
    int h = th_connect_srv();
    th_send_str(h, "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(th_read_status(h), 200);
    close(h);
    ck_assert_int_ge(th_stats().threads, BLOCKED + 1);
    release_blocked();
    for (int i = 0; i < BLOCKED; i++) {
        th_send_str(c[i], "echo back\n");
        inlen = 0;
        ck_assert(expect(c[i], "back\n"));
    }
    ck_assert_int_eq(__atomic_load_n(&n_overlap, __ATOMIC_SEQ_CST), 0);
    for (int i = 0; i <= BLOCKED; i++)
        close(c[i]);
    ck_assert(wait_count(&n_closed, BLOCKED + 1));
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("watch");
    TCase *tc = tcase_create("watch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_first_bytes_and_partial_input_are_kept_for_the_next_call);
    tcase_add_test(tc, test_short_write_queues_then_writable_is_called);
    tcase_add_test(tc, test_writes_from_another_thread_arrive_whole_and_in_order);
    tcase_add_test(tc, test_timer_runs_the_callback_on_the_loop);
    tcase_add_test(tc, test_close_flushes_then_ends_with_closed_0);
    tcase_add_test(tc, test_stop_gives_the_connection_and_unread_input_back);
    tcase_add_test(tc, test_stop_off_the_loop_is_refused);
    tcase_add_test(tc, test_server_close_ends_watches_with_eclosed);
    tcase_add_test(tc, test_closing_a_watched_connection_ends_the_watch_and_spares_its_number);
    tcase_add_test(tc, test_shutdown_tells_graceful_watches_and_waits_for_them);
    tcase_add_test(tc, test_shutdown_deadline_ends_a_graceful_watch_that_stays);
    suite_add_tcase(s, tc);
    /* Servers of their own (loops, hand-off). */
    TCase *tl = tcase_create("loops");
    tcase_add_checked_fixture(tl, NULL, teardown);
    tcase_set_timeout(tl, GH_TEST_TIMEOUT);
    tcase_add_test(tl, test_each_watch_is_served_by_the_loop_that_accepted_it);
    tcase_add_test(tl, test_a_blocking_callback_hands_its_loop_to_another_thread);
    tcase_add_test(tl, test_a_timer_set_again_while_its_watch_was_busy_elsewhere_waits_for_the_new_time);
    tcase_add_test(tl, test_a_timer_callback_that_blocks_delays_no_other_timer);
    tcase_add_test(tl, test_callbacks_blocking_on_every_thread_still_leave_one_to_poll);
    suite_add_tcase(s, tl);
    return s;
}
