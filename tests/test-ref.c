/* tests/test-ref.c: counted handles that keep objects alive from unscanned memory
 * (gc/ref.c). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "test-common.h"

struct blob {
    long id;
};
static gh_type_t blob_type = GH_TYPE_INIT_NOPTRS("test.blob", struct blob);

#define N_OBJS 20

static gh_probe_t *probes[N_OBJS];
/* The only place the objects are kept: malloc'd memory, which the collector does not
 * scan. Its address lives in a static, but that proves nothing about its contents. */
static void **host_table;

static void reset(void)
{
    memset(probes, 0, sizeof probes);
    free(host_table);
    host_table = NULL;
}

static int count_unreachable(void)
{
    int n = 0;
    for (int i = 0; i < N_OBJS; i++)
        n += gh_probe_unreachable(probes[i]);
    return n;
}

/* The pointers are hidden in host_table (GC_HIDE_POINTER) so that not even a
 * conservative look at the malloc heap could find them. */
__attribute__((noinline)) static void make_host_refs(int take_ref)
{
    host_table = malloc(N_OBJS * sizeof *host_table);
    for (int i = 0; i < N_OBJS; i++) {
        struct blob *b = gh_obj_new(&blob_type);
        b->id = i;
        probes[i] = gh_probe_new(b);
        if (take_ref)
            ck_assert_ptr_eq(gh_ref(b), b);
        host_table[i] = (void *)GC_HIDE_POINTER(b);
    }
}

__attribute__((noinline)) static void drop_host_refs(void)
{
    for (int i = 0; i < N_OBJS; i++)
        ck_assert_int_eq(gh_unref(GC_REVEAL_POINTER((GC_hidden_pointer)host_table[i])), 0);
}

START_TEST(test_ref_keeps_an_object_alive_from_malloc_memory)
{
    make_host_refs(1);
    for (int a = 0; a < 3; a++) {
        th_churn(a);
        gh_gc_collect(2);
    }
    ck_assert_int_eq(count_unreachable(), 0);
    for (int i = 0; i < N_OBJS; i++) {
        struct blob *b = GC_REVEAL_POINTER((GC_hidden_pointer)host_table[i]);
        ck_assert_int_eq(b->id, i);
        ck_assert_int_eq(gh_ref_count(b), 1);
    }
}
END_TEST

START_TEST(test_ref_released_at_zero_lets_the_object_go)
{
    make_host_refs(1);
    gh_gc_collect(2);
    ck_assert_int_eq(count_unreachable(), 0);
    drop_host_refs();
    for (int a = 0; a < 4 && count_unreachable() < N_OBJS; a++) {
        if (a)
            th_churn(a);
        gh_gc_collect(2);
    }
    ck_assert_int_ge(count_unreachable(), N_OBJS - 1);
}
END_TEST

/* The control: without gh_ref, malloc memory keeps nothing alive. */
START_TEST(test_ref_without_a_ref_malloc_memory_keeps_nothing)
{
    make_host_refs(0);
    for (int a = 0; a < 4 && count_unreachable() < N_OBJS; a++) {
        if (a)
            th_churn(a);
        gh_gc_collect(2);
    }
    ck_assert_int_ge(count_unreachable(), N_OBJS - 1);
}
END_TEST

START_TEST(test_ref_counts_up_and_down)
{
    struct blob *b = gh_obj_new(&blob_type);
    ck_assert_int_eq(gh_ref_count(b), 0);
    ck_assert_ptr_eq(gh_ref(b), b);
    ck_assert_ptr_eq(gh_ref(b), b);
    ck_assert_int_eq(gh_ref_count(b), 2);
    ck_assert_int_eq(gh_unref(b), 1);
    ck_assert_int_eq(gh_unref(b), 0);
    ck_assert_int_eq(gh_ref_count(b), 0);
    ck_assert_int_eq(gh_unref(b), GH_ENOENT);
    ck_assert_ptr_null(gh_ref(NULL));
    ck_assert_int_eq(gh_unref(NULL), GH_ENOENT);
    ck_assert_int_eq(gh_ref_count(NULL), 0);
}
END_TEST

/* Many entries force growth and, on the way down, deletions inside probe chains. */
#define N_MANY 5000
static void **many;

START_TEST(test_ref_table_grows_and_shrinks_consistently)
{
    many = GC_MALLOC(N_MANY * sizeof *many);
    for (int i = 0; i < N_MANY; i++) {
        many[i] = gh_obj_new(&blob_type);
        for (int k = 0; k <= i % 3; k++)
            gh_ref(many[i]);
    }
    for (int i = 0; i < N_MANY; i++)
        ck_assert_int_eq(gh_ref_count(many[i]), i % 3 + 1);
    /* Remove every other object completely, then check the rest are all still found. */
    for (int i = 0; i < N_MANY; i += 2)
        while (gh_unref(many[i]) > 0)
            ;
    for (int i = 0; i < N_MANY; i++)
        ck_assert_int_eq(gh_ref_count(many[i]), i % 2 ? i % 3 + 1 : 0);
    for (int i = 1; i < N_MANY; i += 2)
        while (gh_unref(many[i]) > 0)
            ;
    for (int i = 0; i < N_MANY; i++)
        ck_assert_int_eq(gh_ref_count(many[i]), 0);
    many = NULL;
}
END_TEST

/* Concurrent ref/unref on shared objects; results recorded, asserted on the test thread. */
#define N_THREADS 4
#define N_ROUNDS 2000
static void *shared[8];
static int thread_errors[N_THREADS];

static void *hammer(void *arg)
{
    int *errs = arg;
    for (int r = 0; r < N_ROUNDS; r++) {
        void *o = shared[r % 8];
        if (gh_ref(o) != o)
            (*errs)++;
        if (gh_unref(o) < 0)
            (*errs)++;
    }
    return NULL;
}

START_TEST(test_ref_is_thread_safe)
{
    for (int i = 0; i < 8; i++)
        shared[i] = gh_obj_new(&blob_type);
    memset(thread_errors, 0, sizeof thread_errors);
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++)
        ck_assert_int_eq(gh_thread_start(&t[i], hammer, &thread_errors[i]), 0);
    for (int i = 0; i < N_THREADS; i++)
        ck_assert_int_eq(gh_thread_join(t[i], NULL), 0);
    for (int i = 0; i < N_THREADS; i++)
        ck_assert_int_eq(thread_errors[i], 0);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(gh_ref_count(shared[i]), 0);
    memset(shared, 0, sizeof shared);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("ref");

    TCase *tc = tcase_create("liveness");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_ref_keeps_an_object_alive_from_malloc_memory);
    tcase_add_test(tc, test_ref_released_at_zero_lets_the_object_go);
    tcase_add_test(tc, test_ref_without_a_ref_malloc_memory_keeps_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("table");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_ref_counts_up_and_down);
    tcase_add_test(tc, test_ref_table_grows_and_shrinks_consistently);
    tcase_add_test(tc, test_ref_is_thread_safe);
    suite_add_tcase(s, tc);
    return s;
}
