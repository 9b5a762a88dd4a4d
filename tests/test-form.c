/* tests/test-form.c: key/value lists, query strings and urlencoded forms (lib/form.c),
 * against Go's url.ParseQuery and Request.ParseForm; forms posted over a real socket. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "test-common.h"
#include <gchttp/form.h>

START_TEST(test_values_parse_like_go_parsequery)
{
    gh_values_t *v;
    ck_assert_int_eq(gh_values_parse("a=1&b=x+y%21&a=2&empty=&bare&&=v", &v), 0);
    ck_assert_uint_eq(gh_values_count(v), 6);
    ck_assert_str_eq(gh_values_get(v, "a"), "1");
    ck_assert_str_eq(gh_values_get_nth(v, "a", 1), "2");
    ck_assert_ptr_null(gh_values_get_nth(v, "a", 2));
    ck_assert_str_eq(gh_values_get(v, "b"), "x y!");
    ck_assert_str_eq(gh_values_get(v, "empty"), "");
    ck_assert_str_eq(gh_values_get(v, "bare"), "");
    ck_assert_int_eq(gh_values_has(v, "bare"), 1);
    ck_assert_int_eq(gh_values_has(v, "nope"), 0);
    ck_assert_str_eq(gh_values_get(v, ""), "v");
    const char *k, *val;
    ck_assert_int_eq(gh_values_at(v, 2, &k, &val), 0);
    ck_assert_str_eq(k, "a");
    ck_assert_str_eq(val, "2");
    ck_assert_int_eq(gh_values_at(v, 6, &k, &val), GH_EINVAL);
}
END_TEST

START_TEST(test_values_parse_rejects_semicolons_and_bad_escapes_keeping_the_rest)
{
    gh_values_t *v;
    /* Go 1.17+: "a=1;b=2" is one invalid pair, dropped, with an error. */
    ck_assert_int_eq(gh_values_parse("a=1;b=2&c=3", &v), GH_EINVAL);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(gh_values_count(v), 1);
    ck_assert_str_eq(gh_values_get(v, "c"), "3");
    ck_assert_ptr_null(gh_values_get(v, "a"));
    ck_assert_int_eq(gh_values_parse("x=%zz&y=%41", &v), GH_EINVAL);
    ck_assert_uint_eq(gh_values_count(v), 1);
    ck_assert_str_eq(gh_values_get(v, "y"), "A");
    ck_assert_int_eq(gh_values_parse("", &v), 0);
    ck_assert_uint_eq(gh_values_count(v), 0);
}
END_TEST

START_TEST(test_values_edit_and_encode_sorted)
{
    gh_values_t *v = gh_values_new();
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(gh_values_add(v, "z", "last"), 0);
    ck_assert_int_eq(gh_values_add(v, "a", "2"), 0);
    ck_assert_int_eq(gh_values_add(v, "a", "1"), 0);
    ck_assert_int_eq(gh_values_add(v, "sp ace", "x&y=z"), 0);
    /* Go: Values{"z":{"last"},"a":{"2","1"},"sp ace":{"x&y=z"}}.Encode() */
    ck_assert_str_eq(gh_values_encode(v), "a=2&a=1&sp+ace=x%26y%3Dz&z=last");
    ck_assert_int_eq(gh_values_set(v, "a", "only"), 0);
    ck_assert_str_eq(gh_values_get(v, "a"), "only");
    ck_assert_ptr_null(gh_values_get_nth(v, "a", 1));
    ck_assert_int_eq(gh_values_del(v, "z"), 1);
    ck_assert_int_eq(gh_values_del(v, "z"), 0);
    ck_assert_str_eq(gh_values_encode(v), "a=only&sp+ace=x%26y%3Dz");
    /* Encoding then parsing gives the pairs back. */
    gh_values_t *back;
    ck_assert_int_eq(gh_values_parse(gh_values_encode(v), &back), 0);
    ck_assert_str_eq(gh_values_get(back, "sp ace"), "x&y=z");
}
END_TEST

/* ---- on the wire: the handler answers with what it parsed ---------------------------- */

static void dump(gh_response_t *w, const gh_values_t *v, int rc)
{
    gh_response_printf(w, "rc=%d", rc);
    for (size_t i = 0; v && i < gh_values_count(v); i++) {
        const char *k, *val;
        if (gh_values_at(v, i, &k, &val) == 0)
            gh_response_printf(w, " %s=%s", k, val);
    }
}

static void handler(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    gh_values_t *v = NULL;
    int rc;
    if (th_path_is(r, "/query"))
        rc = gh_request_query(r, &v);
    else if (th_path_is(r, "/post"))
        rc = gh_request_post_form(r, 64, &v);
    else
        rc = gh_request_form(r, 64, &v);
    dump(w, v, rc);
}

static void setup(void)
{
    th_server_start_handler(handler);
}

static void teardown(void)
{
    th_server_close();
}

static const char *post(int fd, const char *method, const char *target, const char *ctype,
                        const char *body)
{
    char req[1024];
    snprintf(req, sizeof req,
             "%s %s HTTP/1.1\r\nHost: t\r\nContent-Type: %s\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             method, target, ctype, strlen(body), body);
    th_send_str(fd, req);
    ck_assert_int_eq(th_read_status(fd), 200);
    return th_rbody();
}

START_TEST(test_request_query_parses_the_target)
{
    int fd = th_connect_srv();
    th_send_str(fd, "GET /query?a=1&b=%20+&a=2 HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "rc=0 a=1 b=   a=2");
    th_send_str(fd, "GET /query HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), "rc=0");
    char want[32];
    snprintf(want, sizeof want, "rc=%d c=3", GH_EINVAL);
    th_send_str(fd, "GET /query?a=1;b=2&c=3 HTTP/1.1\r\nHost: t\r\n\r\n");
    ck_assert_int_eq(th_read_status(fd), 200);
    ck_assert_str_eq(th_rbody(), want);
    close(fd);
}
END_TEST

START_TEST(test_request_form_reads_urlencoded_bodies_before_the_query)
{
    int fd = th_connect_srv();
    const char *ct = "application/x-www-form-urlencoded; charset=utf-8";
    ck_assert_str_eq(post(fd, "POST", "/post?q=9", ct, "x=1&y=a+b"), "rc=0 x=1 y=a b");
    ck_assert_str_eq(post(fd, "PUT", "/form?x=9", ct, "x=1"), "rc=0 x=1 x=9");
    ck_assert_str_eq(post(fd, "PATCH", "/form", "Application/X-WWW-Form-Urlencoded", "k=v"),
                     "rc=0 k=v");
    /* Another media type or method: no body values (the body stays unread). */
    ck_assert_str_eq(post(fd, "POST", "/form?x=9", "text/plain", "x=1"), "rc=0 x=9");
    ck_assert_str_eq(post(fd, "DELETE", "/post", ct, "x=1"), "rc=0");
    /* Over the limit (64 bytes here). */
    char big[200], want[32];
    memset(big, 'a', 100);
    big[100] = 0;
    snprintf(want, sizeof want, "rc=%d", GH_EBODYLIMIT);
    ck_assert_str_eq(post(fd, "POST", "/post", ct, big), want);
    close(fd);
    /* Exactly the limit fits (a new connection: the one above was closed). */
    fd = th_connect_srv();
    big[0] = 'k';
    big[1] = '=';
    big[64] = 0;
    char exact[256];
    snprintf(exact, sizeof exact, "rc=0 k=%s", big + 2);
    ck_assert_str_eq(post(fd, "POST", "/post", ct, big), exact);
    close(fd);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("form");
    TCase *tc = tcase_create("values");
    tcase_add_test(tc, test_values_parse_like_go_parsequery);
    tcase_add_test(tc, test_values_parse_rejects_semicolons_and_bad_escapes_keeping_the_rest);
    tcase_add_test(tc, test_values_edit_and_encode_sorted);
    suite_add_tcase(s, tc);
    tc = tcase_create("wire");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_request_query_parses_the_target);
    tcase_add_test(tc, test_request_form_reads_urlencoded_bodies_before_the_query);
    suite_add_tcase(s, tc);
    return s;
}
