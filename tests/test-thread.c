/* tests/test-thread.c: GC-registered threads, and what threads leave alive (gc/thread.c). */
#include "config.h"

#include <string.h>

#include "test-common.h"

/* This file also needs the real pthread_create, to make a thread bdwgc does not know. */
#undef pthread_create
#undef pthread_join

struct job {
    long magic;
    char *buf;
    struct job *peer;
};
static const size_t job_ptrs[] = {offsetof(struct job, buf), offsetof(struct job, peer)};
static gh_type_t job_type = GH_TYPE_INIT("test.job", struct job, job_ptrs);

#define N_JOBS 50

static gh_probe_t *probes[N_JOBS];

static void reset(void)
{
    memset(probes, 0, sizeof probes);
}

static int count_alive(void)
{
    int n = 0;
    for (int i = 0; i < N_JOBS; i++)
        n += probes[i] && !gh_probe_reclaimed(probes[i]);
    return n;
}

/* What a handler does: a small graph (object, atomic buffer, a 2-cycle), probed. */
__attribute__((noinline)) static void run_job(int i)
{
    struct job *a = gh_obj_new(&job_type);
    struct job *b = gh_obj_new(&job_type);
    a->magic = b->magic = 42;
    a->buf = gh_bytes_new(gh_bytes_good_size(4096));
    a->peer = b;
    b->peer = a;
    probes[i] = gh_probe_new(a);
}

/* ---- start / join / register -------------------------------------------------------- */

static void *echo_main(void *arg)
{
    struct job *j = arg;
    return j->magic == 42 ? j : NULL;
}

START_TEST(test_thread_start_runs_fn_with_a_gc_argument_and_join_returns_its_value)
{
    struct job *j = gh_obj_new(&job_type);
    j->magic = 42;
    pthread_t t;
    void *ret = NULL;
    ck_assert_int_eq(gh_thread_start(&t, echo_main, j), 0);
    ck_assert_int_eq(gh_thread_join(t, &ret), 0);
    ck_assert_ptr_eq(ret, j);
}
END_TEST

/* Results of the foreign thread, asserted on the test thread. */
static struct {
    int reg, again, unreg;
    long allocated;
} foreign;

static void *foreign_main(void *arg)
{
    (void)arg;
    foreign.reg = gh_thread_register();
    for (int i = 0; i < 1000; i++)
        foreign.allocated += gh_obj_new(&job_type) != NULL;
    /* Collecting from an unregistered thread aborts ("Collecting from unknown thread"). */
    gh_gc_collect(1);
    foreign.again = gh_thread_register();
    foreign.unreg = gh_thread_unregister();
    return NULL;
}

START_TEST(test_thread_register_lets_a_foreign_thread_allocate_and_collect)
{
    memset(&foreign, 0, sizeof foreign);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, foreign_main, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(foreign.reg, 0);
    ck_assert_int_eq(foreign.allocated, 1000);
    ck_assert_int_eq(foreign.again, GH_EEXIST);
    ck_assert_int_eq(foreign.unreg, 0);
}
END_TEST

static void *register_again_main(void *arg)
{
    *(int *)arg = gh_thread_register();
    return NULL;
}

START_TEST(test_thread_register_on_a_gc_thread_is_eexist)
{
    static int rc;
    pthread_t t;
    ck_assert_int_eq(gh_thread_start(&t, register_again_main, &rc), 0);
    ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    ck_assert_int_eq(rc, GH_EEXIST);
}
END_TEST

/* ---- what threads leave alive ------------------------------------------------------- */

static void *one_job_main(void *arg)
{
    run_job((int)(intptr_t)arg);
    return NULL;
}

/* A finished thread's stack is no longer scanned: its objects go at once (docs/DESIGN.md §3.1:
 * 10,000/10,000). One is allowed to linger for the collector's own frames (§3.2). */
START_TEST(test_thread_exit_releases_its_objects_within_two_collections)
{
    for (int i = 0; i < N_JOBS; i++) {
        pthread_t t;
        ck_assert_int_eq(gh_thread_start(&t, one_job_main, (void *)(intptr_t)i), 0);
        ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    }
    gh_gc_collect(2);
    ck_assert_int_le(count_alive(), 1);
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

/*
 * Long-lived pool threads. Each worker has its own job slot in `pool`, a static and thus
 * GC-visible place, and scrubs its stack after each job: the frames of
 * pthread_cond_wait would otherwise leave its last job's objects pinned (docs/DESIGN.md §3.1).
 * Several workers make that failure visible: without the scrub every idle worker pins
 * one job, more than the one that the collector's own frames may keep (§3.2).
 */
#define N_WORKERS 4

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *job[N_WORKERS]; /* the next job's input per worker, NULL when none */
    int done;                   /* jobs finished */
    int quit;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {NULL}, 0, 0};

static void *pool_main(void *arg)
{
    int w = (int)(intptr_t)arg;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.job[w] && !pool.quit)
            pthread_cond_wait(&pool.cv, &pool.mu);
        if (pool.quit)
            break;
        int i = (int)pool.job[w]->magic;
        pool.job[w] = NULL;
        pthread_mutex_unlock(&pool.mu);

        run_job(i);
        gh_gc_scrub_stack();

        pthread_mutex_lock(&pool.mu);
        pool.done++;
        pthread_cond_broadcast(&pool.cv);
    }
    pthread_mutex_unlock(&pool.mu);
    return NULL;
}

/* Hand job i to worker i % N_WORKERS and wait until it is done. */
__attribute__((noinline)) static void post_job(int i)
{
    struct job *in = gh_obj_new(&job_type);
    in->magic = i;
    pthread_mutex_lock(&pool.mu);
    pool.job[i % N_WORKERS] = in;
    pthread_cond_broadcast(&pool.cv);
    while (pool.done < i + 1)
        pthread_cond_wait(&pool.cv, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
}

START_TEST(test_thread_pool_workers_with_scrub_keep_at_most_one_job_alive)
{
    memset(pool.job, 0, sizeof pool.job);
    pool.done = pool.quit = 0;
    pthread_t t[N_WORKERS];
    for (int w = 0; w < N_WORKERS; w++)
        ck_assert_int_eq(gh_thread_start(&t[w], pool_main, (void *)(intptr_t)w), 0);
    for (int i = 0; i < N_JOBS; i++)
        post_job(i);
    /* The workers are idle in pthread_cond_wait now, as pool threads between requests. */
    for (int a = 0; a < 4 && count_alive() > 0; a++) {
        if (a)
            th_churn(a);
        gh_gc_collect(2);
    }
    int alive = count_alive();

    pthread_mutex_lock(&pool.mu);
    pool.quit = 1;
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    for (int w = 0; w < N_WORKERS; w++)
        ck_assert_int_eq(gh_thread_join(t[w], NULL), 0);

    ck_assert_int_le(alive, 1);
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("thread");

    TCase *tc = tcase_create("registration");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_thread_start_runs_fn_with_a_gc_argument_and_join_returns_its_value);
    tcase_add_test(tc, test_thread_register_lets_a_foreign_thread_allocate_and_collect);
    tcase_add_test(tc, test_thread_register_on_a_gc_thread_is_eexist);
    suite_add_tcase(s, tc);

    tc = tcase_create("liveness");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_thread_exit_releases_its_objects_within_two_collections);
    tcase_add_test(tc, test_thread_pool_workers_with_scrub_keep_at_most_one_job_alive);
    suite_add_tcase(s, tc);
    return s;
}
