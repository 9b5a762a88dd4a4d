/* tests/test-weak.c: weak references over disappearing links (gc/weak.c). */
#include "config.h"

#include <string.h>

#include "test-common.h"

struct item {
    long id;
    void *ref; /* traced */
};
static const size_t item_ptrs[] = {offsetof(struct item, ref)};
static gh_type_t item_type = GH_TYPE_INIT("test.item", struct item, item_ptrs);

#define N_OBJS 20

/* All test state in statics (roots or plain words), reset around every test. */
static gh_weak_t weaks[N_OBJS], weaks_long[N_OBJS];
static void *strong[N_OBJS];
static void *revived[N_OBJS];
static gh_probe_t *probes[N_OBJS];
static int reviving;

static void reset(void)
{
    for (int i = 0; i < N_OBJS; i++) {
        gh_weak_clear(&weaks[i]);
        gh_weak_clear(&weaks_long[i]);
    }
    memset(strong, 0, sizeof strong);
    memset(revived, 0, sizeof revived);
    memset(probes, 0, sizeof probes);
    reviving = 0;
}

static int count_cleared(gh_weak_t *w)
{
    int n = 0;
    for (int i = 0; i < N_OBJS; i++)
        n += gh_weak_is_cleared(&w[i]);
    return n;
}

/* Collect (with churn after the first round) until all of w[] cleared, at most 4 rounds;
 * returns the count. Tests accept N_OBJS - 1 (docs/DESIGN.md §3.2). */
static int collect_until_cleared(gh_weak_t *w)
{
    for (int a = 0; a < 4; a++) {
        if (a)
            th_churn(a);
        gh_gc_collect(2);
        if (count_cleared(w) == N_OBJS)
            break;
    }
    return count_cleared(w);
}

__attribute__((noinline)) static void make_targets(void)
{
    for (int i = 0; i < N_OBJS; i++) {
        struct item *it = gh_obj_new(&item_type);
        it->id = i;
        ck_assert_int_eq(gh_weak_set(&weaks[i], it), 0);
        strong[i] = it;
    }
}

__attribute__((noinline)) static void drop_targets(void)
{
    memset(strong, 0, sizeof strong);
}

/* Compare in a short-lived frame, so no revealed pointer lingers in the test's frame. */
__attribute__((noinline)) static int weak_points_to(gh_weak_t *w, const void *want)
{
    return gh_weak_get(w) == want;
}

START_TEST(test_weak_cleared_once_target_unreachable_and_not_before)
{
    make_targets();
    for (int a = 0; a < 3; a++) {
        th_churn(a);
        gh_gc_collect(2);
    }
    ck_assert_int_eq(count_cleared(weaks), 0);
    for (int i = 0; i < N_OBJS; i++)
        ck_assert_int_eq(weak_points_to(&weaks[i], strong[i]), 1);

    drop_targets();
    ck_assert_int_ge(collect_until_cleared(weaks), N_OBJS - 1);
    for (int i = 0; i < N_OBJS; i++)
        if (gh_weak_is_cleared(&weaks[i]))
            ck_assert_ptr_null(gh_weak_get(&weaks[i]));
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

/* A reader on another thread reveals under the allocator lock while collections run;
 * it must only ever see the target itself. Results are recorded, asserted here. */
static int reader_stop, reader_reads, reader_bad;
static GC_hidden_pointer reader_want;

static void *reader_main(void *arg)
{
    gh_weak_t *w = arg;
    while (!__atomic_load_n(&reader_stop, __ATOMIC_ACQUIRE)) {
        void *p = gh_weak_get(w);
        reader_bad += p != GC_REVEAL_POINTER(reader_want);
        reader_reads++;
    }
    return NULL;
}

START_TEST(test_weak_get_reads_consistently_during_collections)
{
    make_targets();
    reader_stop = reader_reads = reader_bad = 0;
    reader_want = GC_HIDE_POINTER(strong[0]);
    pthread_t t;
    ck_assert_int_eq(gh_thread_start(&t, reader_main, &weaks[0]), 0);
    gh_gc_collect(10);
    __atomic_store_n(&reader_stop, 1, __ATOMIC_RELEASE);
    ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    ck_assert_int_gt(reader_reads, 0);
    ck_assert_int_eq(reader_bad, 0);
}
END_TEST

/* Mortals have a finalizer; revenants' finalizer revives them by storing them in a static
 * root. Separate types, so that a mortal left over by an earlier test (CK_FORK=no) and
 * finalized late can never be taken for one of this test's revenants. */
static void mortal_finalize(void *obj)
{
    (void)obj;
}

static void revive_finalize(void *obj)
{
    struct item *it = obj;
    if (reviving)
        revived[it->id] = it;
}

static gh_type_t mortal_type = {
    .name = "test.mortal", .size = sizeof(struct item), .finalize = mortal_finalize};
static gh_type_t revenant_type = {
    .name = "test.revenant", .size = sizeof(struct item), .finalize = revive_finalize};

__attribute__((noinline)) static void make_mortals(gh_type_t *t)
{
    for (int i = 0; i < N_OBJS; i++) {
        struct item *it = gh_obj_new(t);
        it->id = i;
        ck_assert_int_eq(gh_weak_set(&weaks[i], it), 0);
        ck_assert_int_eq(gh_weak_set_long(&weaks_long[i], it), 0);
    }
}

START_TEST(test_weak_long_link_cleared_only_after_reclaim)
{
    make_mortals(&mortal_type);
    /* GC #1: unreachable, so the short link goes and the finalizer is queued; the object
     * is kept for the finalizer, so no long link may clear in this collection. */
    gh_gc_collect(1);
    int short1 = count_cleared(weaks);
    ck_assert_int_ge(short1, N_OBJS - 1);
    ck_assert_int_eq(count_cleared(weaks_long), 0);
    /* Later collections reclaim the finalized objects: now the long links go. */
    ck_assert_int_ge(collect_until_cleared(weaks_long), N_OBJS - 1);
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

START_TEST(test_weak_long_link_survives_revival)
{
    reviving = 1;
    make_mortals(&revenant_type);
    ck_assert_int_ge(collect_until_cleared(weaks), N_OBJS - 1);
    for (int a = 0; a < 3; a++) {
        th_churn(a);
        gh_gc_collect(2);
    }
    /* Every revived object is reachable again: its long link must still be set. */
    int revived_n = 0;
    for (int i = 0; i < N_OBJS; i++) {
        if (!revived[i])
            continue;
        revived_n++;
        ck_assert_int_eq(gh_weak_is_cleared(&weaks_long[i]), 0);
        ck_assert_int_eq(weak_points_to(&weaks_long[i], revived[i]), 1);
    }
    ck_assert_int_ge(revived_n, N_OBJS - 1);
}
END_TEST

/* Re-pointing a set weak ref must drop the old link: a stale link to the old target
 * would zero the slot when the old target dies, although the new one is alive. */
__attribute__((noinline)) static void make_repointed(int first_long)
{
    for (int i = 0; i < N_OBJS; i++) {
        void *old = gh_obj_new(&item_type);
        void *keep = gh_obj_new(&item_type);
        ck_assert_int_eq(
            first_long ? gh_weak_set_long(&weaks[i], old) : gh_weak_set(&weaks[i], old), 0);
        ck_assert_int_eq(
            first_long ? gh_weak_set(&weaks[i], keep) : gh_weak_set_long(&weaks[i], keep), 0);
        probes[i] = gh_probe_new(old);
        strong[i] = keep;
    }
}

static int count_probes_unreachable(void)
{
    int n = 0;
    for (int i = 0; i < N_OBJS; i++)
        n += gh_probe_unreachable(probes[i]);
    return n;
}

static void check_repoint(int first_long)
{
    make_repointed(first_long);
    for (int a = 0; a < 4 && count_probes_unreachable() < N_OBJS; a++) {
        if (a)
            th_churn(a);
        gh_gc_collect(2);
    }
    /* The old targets died... */
    ck_assert_int_ge(count_probes_unreachable(), N_OBJS - 1);
    /* ...and no weak ref to a live new target was cleared with them. */
    ck_assert_int_eq(count_cleared(weaks), 0);
    for (int i = 0; i < N_OBJS; i++)
        ck_assert_int_eq(weak_points_to(&weaks[i], strong[i]), 1);
}

START_TEST(test_weak_set_short_then_long_drops_the_short_link)
{
    check_repoint(0);
}
END_TEST

START_TEST(test_weak_set_long_then_short_drops_the_long_link)
{
    check_repoint(1);
}
END_TEST

START_TEST(test_weak_clear_unregisters_and_is_idempotent)
{
    make_targets();
    gh_weak_clear(&weaks[0]);
    ck_assert_int_eq(gh_weak_is_cleared(&weaks[0]), 1);
    ck_assert_ptr_null(gh_weak_get(&weaks[0]));
    gh_weak_clear(&weaks[0]);
    ck_assert_int_eq(gh_weak_is_cleared(&weaks[0]), 1);
    /* Setting NULL is clearing too. */
    ck_assert_int_eq(gh_weak_set(&weaks[1], NULL), 0);
    ck_assert_int_eq(gh_weak_is_cleared(&weaks[1]), 1);
    /* A cleared ref can be set again. */
    ck_assert_int_eq(gh_weak_set_long(&weaks[0], strong[2]), 0);
    ck_assert_int_eq(weak_points_to(&weaks[0], strong[2]), 1);
}
END_TEST

START_TEST(test_weak_rejects_pointers_outside_the_gc_heap)
{
    static int not_heap;
    gh_weak_t w = GH_WEAK_INIT;
    ck_assert_int_eq(gh_weak_set(&w, &not_heap), GH_EINVAL);
    ck_assert_int_eq(gh_weak_set_long(&w, &not_heap), GH_EINVAL);
    ck_assert_int_eq(gh_weak_is_cleared(&w), 1);
    ck_assert_ptr_null(gh_weak_get(&w));
}
END_TEST

START_TEST(test_weak_keeps_an_interior_pointer_as_given)
{
    make_targets();
    char *inner = (char *)strong[0] + sizeof(long);
    ck_assert_int_eq(gh_weak_set(&weaks_long[0], inner), 0);
    ck_assert_int_eq(weak_points_to(&weaks_long[0], inner), 1);
}
END_TEST

/* A weak ref inside a GC object: when the holder dies, its link goes with it and the
 * still-live target is untouched. */
struct holder {
    long pad;
    gh_weak_t w; /* not a declared pointer field: holds a hidden pointer */
};
static gh_type_t holder_type = GH_TYPE_INIT_NOPTRS("test.holder", struct holder);

__attribute__((noinline)) static void make_holders(void)
{
    for (int i = 0; i < N_OBJS; i++) {
        struct holder *h = gh_obj_new(&holder_type);
        ck_assert_int_eq(gh_weak_set(&h->w, strong[i]), 0);
        probes[i] = gh_probe_new(h);
    }
}

START_TEST(test_weak_inside_a_collected_holder_goes_with_it)
{
    make_targets();
    make_holders();
    for (int a = 0; a < 4 && count_probes_unreachable() < N_OBJS; a++) {
        if (a)
            th_churn(a);
        gh_gc_collect(2);
    }
    ck_assert_int_ge(count_probes_unreachable(), N_OBJS - 1);
    ck_assert_int_eq(count_cleared(weaks), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("weak");

    TCase *tc = tcase_create("reachability");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_weak_cleared_once_target_unreachable_and_not_before);
    tcase_add_test(tc, test_weak_get_reads_consistently_during_collections);
    tcase_add_test(tc, test_weak_long_link_cleared_only_after_reclaim);
    tcase_add_test(tc, test_weak_long_link_survives_revival);
    tcase_add_test(tc, test_weak_inside_a_collected_holder_goes_with_it);
    suite_add_tcase(s, tc);

    tc = tcase_create("api");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_weak_set_short_then_long_drops_the_short_link);
    tcase_add_test(tc, test_weak_set_long_then_short_drops_the_long_link);
    tcase_add_test(tc, test_weak_clear_unregisters_and_is_idempotent);
    tcase_add_test(tc, test_weak_rejects_pointers_outside_the_gc_heap);
    tcase_add_test(tc, test_weak_keeps_an_interior_pointer_as_given);
    suite_add_tcase(s, tc);
    return s;
}
