/* tests/test-errno.c: GH_E* codes, names and messages (gc/errno.c). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "test-common.h"

START_TEST(test_errno_codes_equal_negative_errno)
{
    ck_assert_int_eq(GH_EAGAIN, -EAGAIN);
    ck_assert_int_eq(GH_EBADF, -EBADF);
    ck_assert_int_eq(GH_EPIPE, -EPIPE);
    ck_assert_int_eq(GH_ECONNRESET, -ECONNRESET);
    ck_assert_int_eq(GH_ETIMEDOUT, -ETIMEDOUT);
    ck_assert_int_lt(GH_EOF, -4000);
    ck_assert_int_lt(GH_ECONTENTLENGTH, -4000);
}
END_TEST

START_TEST(test_errno_names_and_messages_come_from_the_map)
{
    ck_assert_str_eq(gh_err_name(GH_ETIMEDOUT), "GH_ETIMEDOUT");
    ck_assert_str_eq(gh_strerror(GH_ETIMEDOUT), "deadline exceeded");
    ck_assert_str_eq(gh_err_name(GH_EOF), "GH_EOF");
    ck_assert_str_eq(gh_strerror(GH_EOF), "end of file");
    ck_assert_str_eq(gh_err_name(GH_EHIJACKED), "GH_EHIJACKED");
    ck_assert_str_eq(gh_strerror(-EPIPE), "broken pipe");
#define CHECK_ONE(name, val, msg)                                                                  \
    ck_assert_str_eq(gh_err_name(val), "GH_" #name);                                               \
    ck_assert_str_eq(gh_strerror(val), msg);
    GH_ERRNO_MAP(CHECK_ONE)
#undef CHECK_ONE
}
END_TEST

START_TEST(test_errno_other_errno_falls_back_to_its_description)
{
    ck_assert_str_eq(gh_strerror(-EACCES), "Permission denied");
    ck_assert_str_eq(gh_err_name(-EACCES), "GH_UNKNOWN");
    ck_assert_str_eq(gh_strerror(0), "success");
}
END_TEST

START_TEST(test_errno_zero_is_named_gh_ok)
{
    /* 0 is what every call returns on success: a log line built with gh_err_name(rc)
     * must not call it unknown. */
    ck_assert_int_eq(GH_OK, 0);
    ck_assert_str_eq(gh_err_name(0), "GH_OK");
    ck_assert_str_eq(gh_strerror(GH_OK), "success");
}
END_TEST

START_TEST(test_errno_fallback_strings_are_not_a_shared_buffer)
{
    /* strerror() may format into one buffer; our fallback must return stable strings. */
    const char *a = gh_strerror(-EACCES);
    const char *b = gh_strerror(-ENOSPC);
    ck_assert_str_eq(a, "Permission denied");
    ck_assert_str_eq(b, "No space left on device");
}
END_TEST

START_TEST(test_errno_unknown_codes_are_never_null)
{
    ck_assert_str_eq(gh_strerror(-3999999), "unknown error");
    ck_assert_str_eq(gh_strerror(-4000), "unknown error");
    ck_assert_str_eq(gh_strerror(12345), "unknown error");
    ck_assert_str_eq(gh_err_name(12345), "GH_UNKNOWN");
    ck_assert_ptr_nonnull(gh_strerror(-4089));
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("errno");
    TCase *tc = tcase_create("names");
    tcase_add_test(tc, test_errno_codes_equal_negative_errno);
    tcase_add_test(tc, test_errno_names_and_messages_come_from_the_map);
    tcase_add_test(tc, test_errno_other_errno_falls_back_to_its_description);
    tcase_add_test(tc, test_errno_zero_is_named_gh_ok);
    tcase_add_test(tc, test_errno_fallback_strings_are_not_a_shared_buffer);
    tcase_add_test(tc, test_errno_unknown_codes_are_never_null);
    suite_add_tcase(s, tc);
    return s;
}
