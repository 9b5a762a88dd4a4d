/* tests/test-accesslog.c: the access log hook (config access_log, lib/conn.c): one entry
 * per request, after its response, on the thread that served it; the server's own error
 * answers and hijacked connections included. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-common.h"

#define MAX_ENTRIES 16

/* What the hook saw, copied (its strings live only during the call). Statics: visible
 * to the collector, and shared with the handler threads under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char method[16], target[64], remote[64];
    int status, err, hijacked;
    int64_t bytes;
    gh_time_t duration;
    pthread_t thread;
} entries[MAX_ENTRIES];
static int n_entries, want_entries;
static pthread_t handler_thread;
static gh_ctx_t *logged; /* cancelled once want_entries entries are in */

static void on_access(const gh_access_entry_t *e, void *data)
{
    (void)data;
    pthread_mutex_lock(&mu);
    if (n_entries < MAX_ENTRIES) {
        int i = n_entries++;
        snprintf(entries[i].method, sizeof entries[i].method, "%s", e->method);
        snprintf(entries[i].target, sizeof entries[i].target, "%s", e->target);
        snprintf(entries[i].remote, sizeof entries[i].remote, "%s", e->remote_addr);
        entries[i].status = e->status;
        entries[i].err = e->err;
        entries[i].hijacked = e->hijacked;
        entries[i].bytes = e->bytes;
        entries[i].duration = e->duration;
        entries[i].thread = pthread_self();
    }
    int n = n_entries;
    pthread_mutex_unlock(&mu);
    if (n >= want_entries)
        gh_ctx_cancel(logged, 0);
}

static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    pthread_mutex_lock(&mu);
    handler_thread = pthread_self();
    pthread_mutex_unlock(&mu);
    if (th_path_is(r, "/hijack")) {
        gh_netconn_t *nc = NULL;
        gh_bufrw_t rw;
        if (gh_response_hijack(w, &nc, &rw) == 0) {
            gh_netconn_write(nc, "raw\n", 4);
            gh_netconn_close(nc);
        }
        return;
    }
    if (th_path_is(r, "/big")) {
        static char chunk[65536];
        for (int i = 0; i < 1024; i++)
            if (gh_response_write(w, chunk, sizeof chunk) < 0)
                break;
        return;
    }
    gh_response_write_header(w, 201);
    gh_response_puts(w, "hello");
}

static void setup(void)
{
    logged = gh_ctx_new(NULL);
    ck_assert_ptr_nonnull(logged);
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = on_request;
    cfg.access_log = on_access;
    th_server_start(&cfg);
}

static void teardown(void) { th_server_close(); }

static void expect_entries(int n)
{
    want_entries = n;
    pthread_mutex_lock(&mu);
    int have = n_entries;
    pthread_mutex_unlock(&mu);
    if (have < n)
        th_wait_sig(logged, TH_IO_MS);
    pthread_mutex_lock(&mu);
    have = n_entries;
    pthread_mutex_unlock(&mu);
    ck_assert_int_eq(have, n);
}

START_TEST(test_request_is_logged_after_its_response_on_its_thread)
{
    int fd = th_connect_srv();
    th_send_str(fd, "GET /x?q=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 201);
    expect_entries(1);
    ck_assert_str_eq(entries[0].method, "GET");
    ck_assert_str_eq(entries[0].target, "/x?q=1");
    ck_assert_int_eq(strncmp(entries[0].remote, "127.0.0.1:", 10), 0);
    ck_assert_int_eq(entries[0].status, 201);
    ck_assert_int_eq(entries[0].bytes, 5);
    ck_assert_int_eq(entries[0].err, 0);
    ck_assert_int_eq(entries[0].hijacked, 0);
    ck_assert_int_ge(entries[0].duration, 0);
    ck_assert_int_lt(entries[0].duration, 10 * GH_SEC);
    ck_assert(pthread_equal(entries[0].thread, handler_thread));
    /* the next request on the same connection gets its own entry */
    th_send_str(fd, "HEAD /y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    ck_assert_int_eq(th_wait_closed(fd, TH_IO_MS), 1);
    close(fd);
    expect_entries(2);
    ck_assert_str_eq(entries[1].method, "HEAD");
    ck_assert_int_eq(entries[1].status, 201);
    ck_assert_int_eq(entries[1].bytes, 0); /* HEAD sends no body */
}
END_TEST

START_TEST(test_server_error_answers_are_logged)
{
    int fd = th_connect_srv();
    th_send_str(fd, "GET / HTTP/1.1\r\nHost: a\r\nbad header\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 400);
    close(fd);
    expect_entries(1);
    ck_assert_int_eq(entries[0].status, 400);
    ck_assert_str_eq(entries[0].method, "");
    ck_assert_str_eq(entries[0].target, "");
    ck_assert_int_gt(entries[0].bytes, 0);
}
END_TEST

START_TEST(test_hijacked_request_is_logged)
{
    int fd = th_connect_srv();
    th_send_str(fd, "GET /hijack HTTP/1.1\r\nHost: a\r\n\r\n");
    ck_assert_int_eq(th_wait_closed(fd, TH_IO_MS), 1);
    close(fd);
    expect_entries(1);
    ck_assert_str_eq(entries[0].target, "/hijack");
    ck_assert_int_eq(entries[0].hijacked, 1);
    ck_assert_int_eq(entries[0].status, 0);
}
END_TEST

START_TEST(test_client_gone_mid_response_is_logged_with_the_error)
{
    int fd = th_connect_srv();
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    th_send_str(fd, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
    char buf[512];
    ck_assert_int_gt(read(fd, buf, sizeof buf), 0);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd); /* reset */
    expect_entries(1);
    ck_assert_str_eq(entries[0].target, "/big");
    ck_assert_int_lt(entries[0].err, 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("accesslog");
    TCase *tc = tcase_create("hook");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_request_is_logged_after_its_response_on_its_thread);
    tcase_add_test(tc, test_server_error_answers_are_logged);
    tcase_add_test(tc, test_hijacked_request_is_logged);
    tcase_add_test(tc, test_client_gone_mid_response_is_logged_with_the_error);
    suite_add_tcase(s, tc);
    return s;
}
