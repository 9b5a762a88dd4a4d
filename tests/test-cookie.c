/* tests/test-cookie.c: Set-Cookie formatting and validation, Cookie parsing
 * (lib/cookie.c), and a round trip through Python's http.cookies (tests/cookies.py). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test-common.h"
#include <gchttp/cookie.h>

static const char *python;

START_TEST(test_cookie_formats_every_attribute_in_go_order)
{
    gh_cookie_t c = {0};
    c.name = "sid";
    c.value = "a1!#$%&'()*+-./:<=>?@[]^_`{|}~";
    c.path = "/app";
    c.domain = ".Example.com";
    c.expires = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
    c.max_age = 3600;
    c.http_only = 1;
    c.secure = 1;
    c.same_site = GH_SAMESITE_STRICT;
    c.partitioned = 1;
    char *s;
    ck_assert_int_eq(gh_cookie_format(&c, &s), 0);
    ck_assert_str_eq(s, "sid=a1!#$%&'()*+-./:<=>?@[]^_`{|}~; Path=/app; Domain=Example.com; "
                        "Expires=Tue, 14 Nov 2023 22:13:20 GMT; Max-Age=3600; HttpOnly; Secure; "
                        "SameSite=Strict; Partitioned");
    gh_cookie_t d = {0};
    d.name = "gone";
    d.max_age = -1;
    ck_assert_int_eq(gh_cookie_format(&d, &s), 0);
    ck_assert_str_eq(s, "gone=; Max-Age=0");
    d.value = "\"quoted\"";
    d.max_age = 0;
    d.same_site = GH_SAMESITE_NONE;
    d.expires = -11644473600LL; /* 1601-01-01, the earliest accepted */
    ck_assert_int_eq(gh_cookie_format(&d, &s), 0);
    ck_assert_str_eq(s, "gone=\"quoted\"; Expires=Mon, 01 Jan 1601 00:00:00 GMT; SameSite=None");
}
END_TEST

START_TEST(test_cookie_refuses_what_rfc6265_forbids)
{
    static const char *const bad_names[] = {"", "a b", "a;b", "a=b", "a,b", "a\"b", "\xc3\xa9"};
    static const char *const bad_values[] = {"a b",  "a,b",      "a;b", "a\"b", "a\\b",
                                             "\x7f", "\xc3\xa9", "\"a", "a\tb"};
    gh_cookie_t c = {0};
    char *s;
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        c.name = bad_names[i];
        c.value = "v";
        ck_assert_msg(gh_cookie_format(&c, &s) == GH_EINVAL, "name \"%s\"", bad_names[i]);
    }
    c.name = NULL;
    ck_assert_int_eq(gh_cookie_format(&c, &s), GH_EINVAL);
    c.name = "n";
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        c.value = bad_values[i];
        ck_assert_msg(gh_cookie_format(&c, &s) == GH_EINVAL, "value \"%s\"", bad_values[i]);
    }
    c.value = "v";
    c.path = "/a;b";
    ck_assert_int_eq(gh_cookie_format(&c, &s), GH_EINVAL);
    c.path = "/a\nb";
    ck_assert_int_eq(gh_cookie_format(&c, &s), GH_EINVAL);
    c.path = NULL;
    static const char *const bad_domains[] = {"exa mple.com", "-bad.com", "bad-.com", "a..b",
                                              "a.com;x",      "",         ".",        "[::1]"};
    for (size_t i = 0; i < sizeof bad_domains / sizeof bad_domains[0]; i++) {
        c.domain = bad_domains[i];
        ck_assert_msg(gh_cookie_format(&c, &s) == GH_EINVAL, "domain \"%s\"", bad_domains[i]);
    }
    c.domain = NULL;
    c.expires = -11644473601LL;
    ck_assert_int_eq(gh_cookie_format(&c, &s), GH_EINVAL);
    c.expires = 0;
    c.partitioned = 1;
    ck_assert_int_eq(gh_cookie_format(&c, &s), GH_EINVAL);
    c.secure = 1;
    ck_assert_int_eq(gh_cookie_format(&c, &s), 0);
    ck_assert_str_eq(s, "n=v; Secure; Partitioned");
}
END_TEST

/* ---- on the wire ----------------------------------------------------------------------
 *   /set   sets five cookies (and reports a refused sixth in a header)
 *   /echo  answers "name=value\n" for each cookie the request sent
 *   /one   answers the value of cookie "b"
 */
static void handler(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    if (th_path_is(r, "/set")) {
        gh_cookie_t c[5];
        memset(c, 0, sizeof c);
        c[0] = (gh_cookie_t){.name = "session",
                             .value = "abc123",
                             .path = "/",
                             .domain = "example.com",
                             .max_age = 3600,
                             .secure = 1,
                             .http_only = 1,
                             .same_site = GH_SAMESITE_LAX};
        c[1] = (gh_cookie_t){.name = "theme", .value = "dark"};
        c[2] = (gh_cookie_t){.name = "gone", .expires = 1, .max_age = -1};
        c[3] = (gh_cookie_t){.name = "q", .value = "\"quoted\""};
        c[4] = (gh_cookie_t){
            .name = "exp", .value = "1", .expires = 1700000000, .same_site = GH_SAMESITE_STRICT};
        int bad = 0;
        for (int i = 0; i < 5; i++)
            if (gh_response_set_cookie(w, &c[i]) < 0)
                bad++;
        gh_cookie_t refused = {.name = "x", .value = "no spaces allowed"};
        if (gh_response_set_cookie(w, &refused) != GH_EINVAL)
            bad++;
        gh_response_printf(w, "bad=%d", bad);
    } else if (th_path_is(r, "/echo")) {
        gh_values_t *v;
        if (gh_request_cookies(r, &v) < 0)
            return;
        for (size_t i = 0; i < gh_values_count(v); i++) {
            const char *k, *val;
            if (gh_values_at(v, i, &k, &val) == 0)
                gh_response_printf(w, "%s=%s\n", k, val);
        }
    } else {
        const char *b = gh_request_cookie(r, "b");
        gh_response_puts(w, b ? b : "(none)");
    }
}

static void setup(void)
{
    th_server_start_handler(handler);
}

static void teardown(void)
{
    th_server_close();
}

START_TEST(test_request_cookies_are_parsed_leniently_as_go_does)
{
    int fd = th_connect_srv();
    th_send_str(fd, "GET /echo HTTP/1.1\r\nHost: t\r\n"
                    "Cookie: a=1; b=\"two\";bad name=3; c=x\\y;  d = 4 ;e=sp ace; =novalue; f\r\n"
                    "Cookie: g=7\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "a=1\nb=two\nd=4\ne=sp ace\nf=\ng=7\n");
    th_send_str(fd, "GET /one HTTP/1.1\r\nHost: t\r\nCookie: a=1; b=2; b=3\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "2");
    th_send_str(fd, "GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "(none)");
    close(fd);
}
END_TEST

START_TEST(test_cookies_round_trip_through_python_http_cookies)
{
    if (!python)
        return; /* missing client: the suite reports SKIP (or FAIL under CI) */
    const char *srcdir = getenv("top_srcdir");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/cookies.py' %d", python, srcdir ? srcdir : ".",
             th_port);
    static char out[8192];
    ck_assert_int_eq(th_run(cmd, out, sizeof out - 1), 0);
    ck_assert_str_eq(out, "exp|1|||Tue, 14 Nov 2023 22:13:20 GMT||False|False|Strict\n"
                          "gone||||Thu, 01 Jan 1970 00:00:01 GMT|0|False|False|\n"
                          "q|quoted|||||False|False|\n"
                          "session|abc123|/|example.com||3600|True|True|Lax\n"
                          "theme|dark|||||False|False|\n"
                          "--\n"
                          "exp=1\n"
                          "q=quoted\n"
                          "session=abc123\n"
                          "spaced=needs quoting\n"
                          "theme=dark\n");
}
END_TEST

Suite *test_suite(void)
{
    python = th_client("PYTHON3", "python3", "-c 'import http.cookies, http.client'");
    Suite *s = suite_create("cookie");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, test_cookie_formats_every_attribute_in_go_order);
    tcase_add_test(tc, test_cookie_refuses_what_rfc6265_forbids);
    suite_add_tcase(s, tc);
    tc = tcase_create("wire");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_request_cookies_are_parsed_leniently_as_go_does);
    tcase_add_test(tc, test_cookies_round_trip_through_python_http_cookies);
    suite_add_tcase(s, tc);
    return s;
}
