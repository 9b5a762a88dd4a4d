/* tests/test-context.c: cancellation contexts (lib/context.c). */
#include "config.h"

#include <string.h>

#include "test-common.h"

/* Callback bookkeeping. Counters only: the contexts themselves stay on the test's stack
 * or in GC-visible statics. */
static int cb_calls;
static int cb_reason;
static void *cb_data;
static gh_ctx_t *cb_ctx;

static void on_cancel(gh_ctx_t *ctx, int reason, void *data)
{
    cb_calls++;
    cb_reason = reason;
    cb_data = data;
    cb_ctx = ctx;
}

static void reset(void)
{
    cb_calls = 0;
    cb_reason = 0;
    cb_data = NULL;
    cb_ctx = NULL;
}

START_TEST(test_context_starts_live_and_cancel_sets_the_reason)
{
    gh_ctx_t *c = gh_ctx_new(NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(gh_ctx_done(c), 0);
    gh_ctx_cancel(c, GH_ECONNRESET);
    ck_assert_int_eq(gh_ctx_done(c), GH_ECONNRESET);
}
END_TEST

START_TEST(test_context_cancel_with_zero_means_canceled)
{
    gh_ctx_t *c = gh_ctx_new(NULL);
    gh_ctx_cancel(c, 0);
    ck_assert_int_eq(gh_ctx_done(c), GH_ECANCELED);
}
END_TEST

START_TEST(test_context_first_reason_wins)
{
    gh_ctx_t *c = gh_ctx_new(NULL);
    gh_ctx_cancel(c, GH_EPIPE);
    gh_ctx_cancel(c, GH_ECONNRESET);
    gh_ctx_cancel(c, 0);
    ck_assert_int_eq(gh_ctx_done(c), GH_EPIPE);
}
END_TEST

START_TEST(test_context_cancel_reaches_children_and_grandchildren)
{
    gh_ctx_t *root = gh_ctx_new(NULL);
    gh_ctx_t *a = gh_ctx_new(root), *b = gh_ctx_new(root);
    gh_ctx_t *a1 = gh_ctx_new(a), *a2 = gh_ctx_new(a), *b1 = gh_ctx_new(b);
    ck_assert_uint_eq(gh_ctx_children(root), 2);
    ck_assert_uint_eq(gh_ctx_children(a), 2);
    gh_ctx_cancel(root, GH_ECLOSED);
    ck_assert_int_eq(gh_ctx_done(a), GH_ECLOSED);
    ck_assert_int_eq(gh_ctx_done(b), GH_ECLOSED);
    ck_assert_int_eq(gh_ctx_done(a1), GH_ECLOSED);
    ck_assert_int_eq(gh_ctx_done(a2), GH_ECLOSED);
    ck_assert_int_eq(gh_ctx_done(b1), GH_ECLOSED);
}
END_TEST

START_TEST(test_context_child_cancel_leaves_parent_and_siblings_live)
{
    gh_ctx_t *root = gh_ctx_new(NULL);
    gh_ctx_t *a = gh_ctx_new(root), *b = gh_ctx_new(root);
    gh_ctx_t *a1 = gh_ctx_new(a);
    gh_ctx_cancel(a, GH_EPIPE);
    ck_assert_int_eq(gh_ctx_done(a1), GH_EPIPE);
    ck_assert_int_eq(gh_ctx_done(root), 0);
    ck_assert_int_eq(gh_ctx_done(b), 0);
    ck_assert_uint_eq(gh_ctx_children(root), 1);
}
END_TEST

START_TEST(test_context_child_of_a_done_parent_starts_done)
{
    gh_ctx_t *root = gh_ctx_new(NULL);
    gh_ctx_cancel(root, GH_EHANDLERDONE);
    gh_ctx_t *c = gh_ctx_new(root);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(gh_ctx_done(c), GH_EHANDLERDONE);
    ck_assert_uint_eq(gh_ctx_children(root), 0);
}
END_TEST

START_TEST(test_context_grandchild_reason_is_the_first_cancel_that_reached_it)
{
    gh_ctx_t *root = gh_ctx_new(NULL);
    gh_ctx_t *a = gh_ctx_new(root);
    gh_ctx_t *a1 = gh_ctx_new(a);
    gh_ctx_cancel(a1, GH_ETIMEDOUT);
    gh_ctx_cancel(root, GH_ECLOSED);
    ck_assert_int_eq(gh_ctx_done(a1), GH_ETIMEDOUT);
    ck_assert_int_eq(gh_ctx_done(a), GH_ECLOSED);
}
END_TEST

START_TEST(test_context_callback_runs_once_with_reason_and_data)
{
    static int token;
    gh_ctx_t *c = gh_ctx_new(NULL);
    long id = gh_ctx_on_cancel(c, on_cancel, &token);
    ck_assert_int_gt(id, 0);
    ck_assert_int_eq(cb_calls, 0);
    gh_ctx_cancel(c, GH_ECONNRESET);
    ck_assert_int_eq(cb_calls, 1);
    ck_assert_int_eq(cb_reason, GH_ECONNRESET);
    ck_assert_ptr_eq(cb_data, &token);
    ck_assert_ptr_eq(cb_ctx, c);
    gh_ctx_cancel(c, GH_EPIPE);
    ck_assert_int_eq(cb_calls, 1);
    /* It ran: removing it now reports so. */
    ck_assert_int_eq(gh_ctx_off_cancel(c, id), 0);
}
END_TEST

START_TEST(test_context_callbacks_of_children_run_on_parent_cancel)
{
    gh_ctx_t *root = gh_ctx_new(NULL);
    gh_ctx_t *a = gh_ctx_new(root);
    gh_ctx_t *a1 = gh_ctx_new(a);
    ck_assert_int_gt(gh_ctx_on_cancel(root, on_cancel, NULL), 0);
    ck_assert_int_gt(gh_ctx_on_cancel(a, on_cancel, NULL), 0);
    ck_assert_int_gt(gh_ctx_on_cancel(a1, on_cancel, NULL), 0);
    gh_ctx_cancel(root, GH_ECLOSED);
    ck_assert_int_eq(cb_calls, 3);
    ck_assert_int_eq(cb_reason, GH_ECLOSED);
}
END_TEST

START_TEST(test_context_callback_registered_after_cancel_runs_now)
{
    gh_ctx_t *c = gh_ctx_new(NULL);
    gh_ctx_cancel(c, GH_EHANDLERDONE);
    long id = gh_ctx_on_cancel(c, on_cancel, NULL);
    /* Not an error (that would promise the callback never runs). */
    ck_assert_int_ge(id, 0);
    ck_assert_int_eq(cb_calls, 1);
    ck_assert_int_eq(cb_reason, GH_EHANDLERDONE);
    gh_ctx_cancel(c, GH_EPIPE);
    ck_assert_int_eq(cb_calls, 1);
}
END_TEST

START_TEST(test_context_off_cancel_removes_a_callback)
{
    gh_ctx_t *c = gh_ctx_new(NULL);
    long a = gh_ctx_on_cancel(c, on_cancel, NULL);
    long b = gh_ctx_on_cancel(c, on_cancel, NULL);
    long d = gh_ctx_on_cancel(c, on_cancel, NULL);
    ck_assert_int_gt(a, 0);
    ck_assert_int_ne(a, b);
    ck_assert_int_ne(b, d);
    ck_assert_int_eq(gh_ctx_off_cancel(c, b), 1);
    ck_assert_int_eq(gh_ctx_off_cancel(c, b), 0);
    ck_assert_int_eq(gh_ctx_off_cancel(c, 12345), 0);
    gh_ctx_cancel(c, 0);
    ck_assert_int_eq(cb_calls, 2);
}
END_TEST

START_TEST(test_context_on_cancel_rejects_a_null_callback)
{
    gh_ctx_t *c = gh_ctx_new(NULL);
    ck_assert_int_eq(gh_ctx_on_cancel(c, NULL, NULL), GH_EINVAL);
}
END_TEST

START_TEST(test_context_cancelled_children_leave_the_parent)
{
    gh_ctx_t *parent = gh_ctx_new(NULL);
    for (int i = 0; i < 1000; i++) {
        gh_ctx_t *c = gh_ctx_new(parent);
        ck_assert_ptr_nonnull(c);
        ck_assert_uint_eq(gh_ctx_children(parent), 1);
        gh_ctx_cancel(c, GH_EHANDLERDONE);
        ck_assert_uint_eq(gh_ctx_children(parent), 0);
    }
    ck_assert_int_eq(gh_ctx_done(parent), 0);
}
END_TEST

START_TEST(test_context_many_live_children_all_leave_when_cancelled)
{
    static gh_ctx_t *kids[1000]; /* GC-visible */
    gh_ctx_t *parent = gh_ctx_new(NULL);
    for (int i = 0; i < 1000; i++)
        kids[i] = gh_ctx_new(parent);
    ck_assert_uint_eq(gh_ctx_children(parent), 1000);
    /* Out of order, so the swap-with-last removal is exercised. */
    for (int i = 0; i < 1000; i += 2)
        gh_ctx_cancel(kids[i], 0);
    ck_assert_uint_eq(gh_ctx_children(parent), 500);
    for (int i = 999; i > 0; i -= 2)
        gh_ctx_cancel(kids[i], 0);
    ck_assert_uint_eq(gh_ctx_children(parent), 0);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(gh_ctx_done(kids[i]), GH_ECANCELED);
        kids[i] = NULL;
    }
    /* A parent emptied of many children takes new ones again. */
    gh_ctx_t *c = gh_ctx_new(parent);
    ck_assert_uint_eq(gh_ctx_children(parent), 1);
    gh_ctx_cancel(parent, GH_ECLOSED);
    ck_assert_int_eq(gh_ctx_done(c), GH_ECLOSED);
}
END_TEST

START_TEST(test_context_wait_times_out_at_the_deadline)
{
    gh_ctx_t *c = gh_ctx_new(NULL);
    gh_time_t t0 = gh_now();
    ck_assert_int_eq(gh_ctx_wait(c, t0 + 100 * GH_MSEC), 0);
    gh_time_t took = gh_now() - t0;
    ck_assert_int_ge(took, 100 * GH_MSEC);
    ck_assert_int_lt(took, 2 * GH_SEC);
    ck_assert_int_eq(gh_ctx_done(c), 0);
}
END_TEST

START_TEST(test_context_wait_on_a_done_context_returns_at_once)
{
    gh_ctx_t *c = gh_ctx_new(NULL);
    gh_ctx_cancel(c, GH_EPIPE);
    ck_assert_int_eq(gh_ctx_wait(c, 0), GH_EPIPE);
    ck_assert_int_eq(gh_ctx_wait(c, gh_now() - GH_SEC), GH_EPIPE);
}
END_TEST

START_TEST(test_context_wait_with_a_past_deadline_does_not_block)
{
    gh_ctx_t *c = gh_ctx_new(NULL);
    gh_time_t t0 = gh_now();
    ck_assert_int_eq(gh_ctx_wait(c, t0 - GH_SEC), 0);
    ck_assert_int_lt(gh_now() - t0, GH_SEC);
}
END_TEST

/* The helper thread cancels the grandparent of the context the test thread waits on. */
static void *cancel_from_thread(void *arg)
{
    gh_ctx_cancel(arg, GH_ECONNRESET);
    return NULL;
}

START_TEST(test_context_wait_returns_when_cancelled_from_another_thread)
{
    gh_ctx_t *root = gh_ctx_new(NULL);
    gh_ctx_t *c = gh_ctx_new(gh_ctx_new(root));
    pthread_t t;
    gh_time_t t0 = gh_now();
    ck_assert_int_eq(gh_thread_start(&t, cancel_from_thread, root), 0);
    int reason = gh_ctx_wait(c, t0 + 10 * GH_SEC);
    gh_time_t took = gh_now() - t0;
    ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    ck_assert_int_eq(reason, GH_ECONNRESET);
    ck_assert_int_lt(took, 5 * GH_SEC);
}
END_TEST

/* Waiters on several threads all wake on one cancel. */
#define N_WAITERS 4
static gh_ctx_t *shared_ctx;
static int waiter_reason[N_WAITERS];

static void *waiter(void *arg)
{
    int i = (int)(intptr_t)arg;
    waiter_reason[i] = gh_ctx_wait(shared_ctx, gh_now() + 10 * GH_SEC);
    return NULL;
}

START_TEST(test_context_wait_wakes_every_waiter)
{
    shared_ctx = gh_ctx_new(NULL);
    pthread_t t[N_WAITERS];
    for (int i = 0; i < N_WAITERS; i++)
        ck_assert_int_eq(gh_thread_start(&t[i], waiter, (void *)(intptr_t)i), 0);
    gh_time_t t0 = gh_now();
    gh_ctx_cancel(shared_ctx, GH_ECLOSED);
    for (int i = 0; i < N_WAITERS; i++)
        ck_assert_int_eq(gh_thread_join(t[i], NULL), 0);
    ck_assert_int_lt(gh_now() - t0, 5 * GH_SEC);
    for (int i = 0; i < N_WAITERS; i++)
        ck_assert_int_eq(waiter_reason[i], GH_ECLOSED);
    shared_ctx = NULL;
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("context");
    TCase *tc = tcase_create("cancel");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_add_test(tc, test_context_starts_live_and_cancel_sets_the_reason);
    tcase_add_test(tc, test_context_cancel_with_zero_means_canceled);
    tcase_add_test(tc, test_context_first_reason_wins);
    tcase_add_test(tc, test_context_cancel_reaches_children_and_grandchildren);
    tcase_add_test(tc, test_context_child_cancel_leaves_parent_and_siblings_live);
    tcase_add_test(tc, test_context_child_of_a_done_parent_starts_done);
    tcase_add_test(tc, test_context_grandchild_reason_is_the_first_cancel_that_reached_it);
    suite_add_tcase(s, tc);

    tc = tcase_create("callbacks");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_add_test(tc, test_context_callback_runs_once_with_reason_and_data);
    tcase_add_test(tc, test_context_callbacks_of_children_run_on_parent_cancel);
    tcase_add_test(tc, test_context_callback_registered_after_cancel_runs_now);
    tcase_add_test(tc, test_context_off_cancel_removes_a_callback);
    tcase_add_test(tc, test_context_on_cancel_rejects_a_null_callback);
    suite_add_tcase(s, tc);

    tc = tcase_create("children");
    tcase_add_test(tc, test_context_cancelled_children_leave_the_parent);
    tcase_add_test(tc, test_context_many_live_children_all_leave_when_cancelled);
    suite_add_tcase(s, tc);

    tc = tcase_create("wait");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_context_wait_times_out_at_the_deadline);
    tcase_add_test(tc, test_context_wait_on_a_done_context_returns_at_once);
    tcase_add_test(tc, test_context_wait_with_a_past_deadline_does_not_block);
    tcase_add_test(tc, test_context_wait_returns_when_cancelled_from_another_thread);
    tcase_add_test(tc, test_context_wait_wakes_every_waiter);
    suite_add_tcase(s, tc);
    return s;
}
