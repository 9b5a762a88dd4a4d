/* tests/test-body.c: the request body limit (gh_request_limit_body, lib/body.c), Go's
 * MaxBytesReader: reads stop at the limit with GH_EBODYLIMIT, the server answers 413 and
 * closes when the handler said nothing, through a real socket. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test-common.h"

/* Handlers, by path (the limit is 10 bytes):
 *   /silent   reads everything it can, then returns without answering
 *   /answer   reads, then answers 400 itself when the limit was hit
 *   /stream   reads 3 bytes at a time and reports how many it got and the error
 *   /ok       reads and reports the length */
static void handler(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    int lrc = gh_request_limit_body(r, 10);
    if (th_path_is(r, "/stream")) {
        char buf[3];
        size_t got = 0;
        ssize_t k;
        for (int i = 0; i < 100 && (k = gh_request_read(r, buf, sizeof buf)) > 0; i++)
            got += (size_t)k;
        gh_response_printf(w, "got=%zu err=%s again=%s", got, gh_err_name((int)k),
                           gh_err_name((int)gh_request_read(r, buf, 1)));
        return;
    }
    char *body;
    ssize_t n = gh_request_read_all(r, 1 << 20, &body);
    if (th_path_is(r, "/silent"))
        return;
    if (th_path_is(r, "/answer") && n == GH_EBODYLIMIT) {
        gh_response_error(w, "mine", 400);
        return;
    }
    gh_response_printf(w, "lrc=%d len=%zd", lrc, n);
}

static void setup(void)
{
    th_server_start_handler(handler);
}

static void teardown(void)
{
    th_server_close();
}

static void send_body(int fd, const char *path, size_t n, int chunked)
{
    char req[512];
    static char body[4096];
    memset(body, 'b', n);
    if (chunked) {
        snprintf(req, sizeof req,
                 "POST %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n", path,
                 n);
        th_send_str(fd, req);
        th_send(fd, body, n);
        th_send_str(fd, "\r\n0\r\n\r\n");
    } else {
        snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
                 path, n);
        th_send_str(fd, req);
        th_send(fd, body, n);
    }
}

START_TEST(test_body_over_the_limit_is_answered_413_and_closed)
{
    int fd = th_connect_srv();
    send_body(fd, "/silent", 100, 0);
    ck_assert_int_eq(th_read_status(fd), 413);
    ck_assert(th_has_header(th_rbuf, "Connection", "close"));
    ck_assert(th_has_header(th_rbuf, "Content-Type", "text/plain; charset=utf-8"));
    ck_assert_str_eq(th_rbody(), "request body too large\n");
    ck_assert_int_eq(th_wait_closed(fd, TH_IO_MS), 1);
    close(fd);
}
END_TEST

START_TEST(test_chunked_body_over_the_limit_is_answered_413)
{
    int fd = th_connect_srv();
    send_body(fd, "/silent", 50, 1);
    ck_assert_int_eq(th_read_status(fd), 413);
    ck_assert_int_eq(th_wait_closed(fd, TH_IO_MS), 1);
    close(fd);
}
END_TEST

START_TEST(test_body_at_the_limit_passes_and_keeps_the_connection)
{
    int fd = th_connect_srv();
    send_body(fd, "/ok", 10, 0);
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "lrc=0 len=10");
    send_body(fd, "/ok", 10, 1);
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "lrc=0 len=10");
    th_send_str(fd, "GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "lrc=0 len=0");
    close(fd);
}
END_TEST

START_TEST(test_handler_answer_wins_over_413_but_the_connection_closes)
{
    int fd = th_connect_srv();
    send_body(fd, "/answer", 11, 0);
    ck_assert_int_eq(th_read_status(fd), 400);
    ck_assert_str_eq(th_rbody(), "mine\n");
    ck_assert(th_has_header(th_rbuf, "Connection", "close"));
    ck_assert_int_eq(th_wait_closed(fd, TH_IO_MS), 1);
    close(fd);
}
END_TEST

START_TEST(test_reads_hand_out_exactly_the_limit_then_fail)
{
    int fd = th_connect_srv();
    send_body(fd, "/stream", 25, 0);
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "got=10 err=GH_EBODYLIMIT again=GH_EBODYLIMIT");
    close(fd);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("body");
    TCase *tc = tcase_create("limit");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_body_over_the_limit_is_answered_413_and_closed);
    tcase_add_test(tc, test_chunked_body_over_the_limit_is_answered_413);
    tcase_add_test(tc, test_body_at_the_limit_passes_and_keeps_the_connection);
    tcase_add_test(tc, test_handler_answer_wins_over_413_but_the_connection_closes);
    tcase_add_test(tc, test_reads_hand_out_exactly_the_limit_then_fail);
    suite_add_tcase(s, tc);
    return s;
}
