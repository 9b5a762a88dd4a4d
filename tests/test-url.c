/* tests/test-url.c: request targets as URLs, percent coding and path cleaning
 * (lib/url.c), against the results of Go's url.ParseRequestURI, PathUnescape,
 * QueryEscape, PathEscape and ServeMux's cleanPath. */
#include "config.h"

#include <string.h>

#include "test-common.h"
#include <gchttp/url.h>

START_TEST(test_url_splits_origin_form)
{
    gh_url_t u;
    ck_assert_int_eq(gh_url_parse("/a%20b/c%2Fd?x=1&y=%20", &u), 0);
    ck_assert_str_eq(u.scheme, "");
    ck_assert_str_eq(u.host, "");
    ck_assert_str_eq(u.path, "/a b/c/d");
    ck_assert_str_eq(u.raw_path, "/a%20b/c%2Fd");
    ck_assert_str_eq(u.raw_query, "x=1&y=%20");
    ck_assert_int_eq(gh_url_parse("/p?", &u), 0);
    ck_assert_str_eq(u.path, "/p");
    ck_assert_str_eq(u.raw_query, "");
    /* Only the first '?' separates; "//x" is a path, not an authority (request URI). */
    ck_assert_int_eq(gh_url_parse("//x/y?a?b", &u), 0);
    ck_assert_str_eq(u.host, "");
    ck_assert_str_eq(u.path, "//x/y");
    ck_assert_str_eq(u.raw_query, "a?b");
}
END_TEST

START_TEST(test_url_splits_absolute_authority_and_asterisk_forms)
{
    gh_url_t u;
    ck_assert_int_eq(gh_url_parse("http://user@example.com:8080/p%41th?q", &u), 0);
    ck_assert_str_eq(u.scheme, "http");
    ck_assert_str_eq(u.host, "example.com:8080");
    ck_assert_str_eq(u.path, "/pAth");
    ck_assert_str_eq(u.raw_path, "/p%41th");
    ck_assert_str_eq(u.raw_query, "q");
    ck_assert_int_eq(gh_url_parse("http://example.com", &u), 0);
    ck_assert_str_eq(u.host, "example.com");
    ck_assert_str_eq(u.path, "");
    ck_assert_int_eq(gh_url_parse("example.com:443", &u), 0);
    ck_assert_str_eq(u.host, "example.com:443");
    ck_assert_str_eq(u.path, "");
    ck_assert_int_eq(gh_url_parse("*", &u), 0);
    ck_assert_str_eq(u.path, "*");
}
END_TEST

START_TEST(test_url_rejects_bad_escapes_in_the_path)
{
    gh_url_t u;
    ck_assert_int_eq(gh_url_parse("/a%zz", &u), GH_EINVAL);
    ck_assert_int_eq(gh_url_parse("/a%4", &u), GH_EINVAL);
    ck_assert_int_eq(gh_url_parse("/a%", &u), GH_EINVAL);
    ck_assert_int_eq(gh_url_parse("", &u), GH_EINVAL);
    /* A bad escape in the query is the query parser's business, not the URL's. */
    ck_assert_int_eq(gh_url_parse("/a?%zz", &u), 0);
    ck_assert_str_eq(u.raw_query, "%zz");
}
END_TEST

START_TEST(test_url_unescapes_path_and_query_differently)
{
    ck_assert_str_eq(gh_path_unescape("a+b%2B%c3%a9"), "a+b+\xc3\xa9");
    ck_assert_str_eq(gh_query_unescape("a+b%2B"), "a b+");
    ck_assert_ptr_null(gh_path_unescape("%g0"));
    ck_assert_ptr_null(gh_query_unescape("x%"));
}
END_TEST

START_TEST(test_url_escapes_like_go)
{
    /* Go: url.QueryEscape("a b/c?d=e&f~é") == "a+b%2Fc%3Fd%3De%26f~%C3%A9" */
    ck_assert_str_eq(gh_query_escape("a b/c?d=e&f~\xc3\xa9"), "a+b%2Fc%3Fd%3De%26f~%C3%A9");
    /* Go: url.PathEscape("a b/c?d=e&f:@") == "a%20b%2Fc%3Fd=e&f:@" */
    ck_assert_str_eq(gh_path_escape("a b/c?d=e&f:@"), "a%20b%2Fc%3Fd=e&f:@");
    /* Round trips. */
    const char *s = "x y+z/%\x01\xff";
    ck_assert_str_eq(gh_query_unescape(gh_query_escape(s)), s);
    ck_assert_str_eq(gh_path_unescape(gh_path_escape(s)), s);
}
END_TEST

START_TEST(test_url_cleans_paths_like_servemux)
{
    static const char *const rows[][2] = {
        {"", "/"},
        {"/", "/"},
        {"a", "/a"},
        {"/a/b", "/a/b"},
        {"/a/b/", "/a/b/"},
        {"//a//b//", "/a/b/"},
        {"/a/./b", "/a/b"},
        {"/a/../b", "/b"},
        {"/a/b/..", "/a"},
        {"/a/b/../", "/a/"},
        {"/../a", "/a"},
        {"/../../..", "/"},
        {"/a/..", "/"},
        {"/a/../", "/"},
        {"/.", "/"},
        {"/./", "/"},
        {"/a/...", "/a/..."},
        {"/a/..b/c", "/a/..b/c"},
        {"/%2e%2e/x", "/%2e%2e/x"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *c = gh_path_clean(rows[i][0]);
        ck_assert_ptr_nonnull(c);
        ck_assert_msg(strcmp(c, rows[i][1]) == 0, "clean(\"%s\") = \"%s\", want \"%s\"", rows[i][0],
                      c, rows[i][1]);
    }
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("url");
    TCase *tc = tcase_create("url");
    tcase_add_test(tc, test_url_splits_origin_form);
    tcase_add_test(tc, test_url_splits_absolute_authority_and_asterisk_forms);
    tcase_add_test(tc, test_url_rejects_bad_escapes_in_the_path);
    tcase_add_test(tc, test_url_unescapes_path_and_query_differently);
    tcase_add_test(tc, test_url_escapes_like_go);
    tcase_add_test(tc, test_url_cleans_paths_like_servemux);
    suite_add_tcase(s, tc);
    return s;
}
