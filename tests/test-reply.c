/* tests/test-reply.c: status texts, gh_response_error and gh_response_redirect
 * (lib/reply.c, lib/response.c) on a real server: what Go's StatusText, http.Error and
 * http.Redirect send. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "test-common.h"
#include <gchttp/response.h>

START_TEST(test_status_text_covers_the_iana_registry)
{
    static const struct {
        int code;
        const char *text;
    } rows[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {102, "Processing"},
        {103, "Early Hints"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {203, "Non-Authoritative Information"},
        {204, "No Content"},
        {205, "Reset Content"},
        {206, "Partial Content"},
        {207, "Multi-Status"},
        {208, "Already Reported"},
        {226, "IM Used"},
        {300, "Multiple Choices"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {305, "Use Proxy"},
        {306, "Unused"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {402, "Payment Required"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {407, "Proxy Authentication Required"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {416, "Range Not Satisfiable"},
        {417, "Expectation Failed"},
        {418, "I'm a teapot"},
        {421, "Misdirected Request"},
        {422, "Unprocessable Content"},
        {423, "Locked"},
        {424, "Failed Dependency"},
        {425, "Too Early"},
        {426, "Upgrade Required"},
        {428, "Precondition Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {451, "Unavailable For Legal Reasons"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
        {506, "Variant Also Negotiates"},
        {507, "Insufficient Storage"},
        {508, "Loop Detected"},
        {510, "Not Extended"},
        {511, "Network Authentication Required"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        ck_assert_str_eq(gh_status_text(rows[i].code), rows[i].text);
    ck_assert_str_eq(gh_status_text(299), "");
    ck_assert_str_eq(gh_status_text(0), "");
    ck_assert_str_eq(gh_status_text(999), "");
}
END_TEST

/* ---- on the wire ----------------------------------------------------------------------
 * Handlers, chosen by path:
 *   /status?N      writes status N and no body
 *   /error         a Content-Length and another header set first, then a 418 error
 *   /redir?URL     302 to URL (the query, verbatim)
 *   /a/b/redir?URL 301 to URL (for relative resolution)
 *   /typed-redir   Content-Type set by the handler, then 303 to /x
 */
static void handler(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    const char *t = gh_request_target(r);
    const char *q = strchr(t, '?');
    q = q ? q + 1 : "";
    int rc = 0;
    if (strncmp(t, "/status", 7) == 0) {
        int code = 0;
        sscanf(q, "%d", &code);
        rc = gh_response_write_header(w, code);
    } else if (strcmp(t, "/error") == 0) {
        (void)gh_response_header_set(w, "Content-Length", "999");
        (void)gh_response_header_set(w, "X-Kept", "yes");
        rc = gh_response_error(w, "short and stout", 418);
    } else if (strncmp(t, "/redir", 6) == 0) {
        rc = gh_response_redirect(w, r, q, 302);
    } else if (strncmp(t, "/a/b/redir", 10) == 0) {
        rc = gh_response_redirect(w, r, q, 301);
    } else if (strcmp(t, "/typed-redir") == 0) {
        (void)gh_response_header_set(w, "Content-Type", "application/json");
        rc = gh_response_redirect(w, r, "/x", 303);
    } else if (strcmp(t, "/bad-redir") == 0) {
        rc = gh_response_redirect(w, r, "/x", 200);
        gh_response_printf(w, "rc=%d", rc);
        return;
    }
    if (rc < 0)
        gh_response_printf(w, "rc=%d", rc);
}

static void setup(void)
{
    th_server_start_handler(handler);
}

static void teardown(void)
{
    th_server_close();
}

static const char *get(int fd, const char *method, const char *target)
{
    char req[512];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\n\r\n", method, target);
    th_send_str(fd, req);
    (void)th_read_status(fd);
    return th_rbuf;
}

START_TEST(test_status_lines_carry_the_registry_phrase)
{
    int fd = th_connect_srv();
    static const char *const lines[] = {
        "409 Conflict",
        "410 Gone",
        "412 Precondition Failed",
        "415 Unsupported Media Type",
        "416 Range Not Satisfiable",
        "422 Unprocessable Content",
        "508 Loop Detected",
        "511 Network Authentication Required",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char t[32], want[64];
        int code = 0;
        sscanf(lines[i], "%d", &code);
        snprintf(t, sizeof t, "/status?%d", code);
        const char *r = get(fd, "GET", t);
        snprintf(want, sizeof want, "HTTP/1.1 %s\r\n", lines[i]);
        ck_assert_msg(strncmp(r, want, strlen(want)) == 0, "got %.40s", r);
    }
    /* A code outside the registry still gets a reason phrase (RFC 9112 §4 allows
     * any). */
    const char *r = get(fd, "GET", "/status?299");
    ck_assert_msg(strncmp(r, "HTTP/1.1 299 status code\r\n", 26) == 0, "got %.40s", r);
    close(fd);
}
END_TEST

START_TEST(test_error_answers_like_go_http_error)
{
    int fd = th_connect_srv();
    const char *r = get(fd, "GET", "/error");
    ck_assert_int_eq(th_status(r), 418);
    ck_assert(th_has_header(r, "Content-Type", "text/plain; charset=utf-8"));
    ck_assert(th_has_header(r, "X-Content-Type-Options", "nosniff"));
    ck_assert(th_has_header(r, "X-Kept", "yes"));
    ck_assert(th_has_header(r, "Content-Length", "16"));
    ck_assert_str_eq(th_body(r), "short and stout\n");
    close(fd);
}
END_TEST

START_TEST(test_redirect_resolves_relative_targets_against_the_request_path)
{
    static const struct {
        const char *target, *location;
    } rows[] = {
        {"/a/b/redir?c", "/a/b/c"},
        {"/a/b/redir?../c", "/a/c"},
        {"/a/b/redir?../../../c/", "/c/"},
        {"/a/b/redir?./", "/a/b/"},
        {"/a/b/redir?/abs//x", "/abs/x"},
        {"/a/b/redir?c?q=1/../2", "/a/b/c?q=1/../2"},
        {"/redir?http://example.com/x/../y", "http://example.com/x/../y"},
        {"/redir?//example.com/z", "//example.com/z"},
        {"/redir?/caf\xc3\xa9", "/caf%C3%A9"},
    };
    int fd = th_connect_srv();
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *r = get(fd, "GET", rows[i].target);
        ck_assert_int_eq(th_status(r), strncmp(rows[i].target, "/a/", 3) == 0 ? 301 : 302);
        ck_assert_msg(th_has_header(r, "Location", rows[i].location), "%s: got %s", rows[i].target,
                      r);
    }
    close(fd);
}
END_TEST

START_TEST(test_redirect_sends_a_short_html_body_for_get_only)
{
    int fd = th_connect_srv();
    const char *r = get(fd, "GET", "/redir?/x?a=<b>");
    ck_assert_int_eq(th_status(r), 302);
    ck_assert(th_has_header(r, "Content-Type", "text/html; charset=utf-8"));
    ck_assert_str_eq(th_body(r), "<a href=\"/x?a=&lt;b&gt;\">Found</a>.\n\n");
    r = get(fd, "POST", "/redir?/y");
    ck_assert_int_eq(th_status(r), 302);
    ck_assert(!th_has_header(r, "Content-Type", "text/html; charset=utf-8"));
    ck_assert_str_eq(th_body(r), "");
    r = get(fd, "GET", "/typed-redir");
    ck_assert_int_eq(th_status(r), 303);
    ck_assert(th_has_header(r, "Content-Type", "application/json"));
    ck_assert_str_eq(th_body(r), "");
    r = get(fd, "GET", "/bad-redir");
    ck_assert_int_eq(th_status(r), 200);
    char want[32];
    snprintf(want, sizeof want, "rc=%d", GH_EINVAL);
    ck_assert_str_eq(th_body(r), want);
    close(fd);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("reply");
    TCase *tc = tcase_create("status");
    tcase_add_test(tc, test_status_text_covers_the_iana_registry);
    suite_add_tcase(s, tc);
    tc = tcase_create("wire");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_status_lines_carry_the_registry_phrase);
    tcase_add_test(tc, test_error_answers_like_go_http_error);
    tcase_add_test(tc, test_redirect_resolves_relative_targets_against_the_request_path);
    tcase_add_test(tc, test_redirect_sends_a_short_html_body_for_get_only);
    suite_add_tcase(s, tc);
    return s;
}
