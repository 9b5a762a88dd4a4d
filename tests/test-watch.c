/* tests/test-watch.c: gchttp/watch.h: a hijacked connection served from the watch loop
 * with callbacks, over raw loopback sockets. The watched connection speaks a line
 * protocol (the readable callback consumes whole lines only, so partial input must be
 * kept): "echo X" -> "X", "big" -> 8 MiB queued then "end", "timer" -> "tick" later,
 * "close" -> "bye" then the close, "stop" -> given back to a thread that answers
 * "stopped:" + the next line through the returned reader. */
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

static size_t on_readable(gh_watch_t *w, char *p, size_t n, void *data)
{
    (void)data;
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
    (void)data;
    (void)gh_watch_write(w, "tick\n", 5);
}

static void on_closed(gh_watch_t *w, int err, void *data)
{
    (void)w, (void)data;
    pthread_mutex_lock(&mu);
    last_err = err;
    pthread_mutex_unlock(&mu);
    bump(&n_closed);
}

static const gh_watch_ops_t ops = {on_readable, on_writable, on_timer, on_closed};

static void handler(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)r, (void)data;
    gh_response_header_set(w, "Upgrade", "lines");
    gh_response_header_set(w, "Connection", "Upgrade");
    if (gh_response_write_header(w, 101) < 0)
        return;
    gh_netconn_t *nc;
    gh_bufrw_t rw;
    if (gh_response_hijack(w, &nc, &rw) < 0)
        return;
    gh_watch_t *wt;
    if (gh_watch_start(nc, rw.r, &ops, NULL, &wt) < 0) {
        gh_netconn_close(nc);
        return;
    }
    pthread_mutex_lock(&mu);
    watched = wt;
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

/* Connect and upgrade; `first` goes in the same send() as the request. */
static int open_watched(const char *first)
{
    int fd = th_connect_srv();
    char req[512];
    snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: lines\r\nConnection: Upgrade\r\n\r\n%s",
             first);
    th_send_str(fd, req);
    inlen = 0;
    ck_assert(expect(fd, "\r\n\r\n"));
    ck_assert(wait_count(&n_started, 1));
    return fd;
}

START_TEST(test_first_bytes_and_partial_input_are_kept_for_the_next_call)
{
    int fd = open_watched("echo first\necho par");
    ck_assert(expect(fd, "first\n"));
    th_send_str(fd, "tial\n");
    ck_assert(expect(fd, "partial\n"));
    ck_assert_uint_eq(gh_watch_count(), 1);
    ck_assert_int_eq(gh_watch_loop_threads(), 1);
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
    suite_add_tcase(s, tc);
    return s;
}
