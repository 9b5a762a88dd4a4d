/* tests/test-gc.c: collector set-up, probes, cycles and finalizers, live-byte measurement,
 * DOT output (gc/gc.c). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"

#define N_OBJS 20

/* A toy conn <-> response cycle with named fields, and a reader with unnamed ones. */
struct tconn {
    int fd;
    struct treader *reader;
    char *rbuf;
    struct tresp *resp;
};
struct treader {
    long n;
    struct tconn *conn;
};
struct tresp {
    int status;
    struct tconn *conn;
};
static const size_t tconn_ptrs[] = {offsetof(struct tconn, reader), offsetof(struct tconn, rbuf),
                                    offsetof(struct tconn, resp)};
static const char *const tconn_names[] = {"reader", "rbuf", "resp"};
static gh_type_t tconn_type =
    GH_TYPE_INIT_NAMED("test.conn", struct tconn, tconn_ptrs, tconn_names);
static const size_t treader_ptrs[] = {offsetof(struct treader, conn)};
static gh_type_t treader_type = GH_TYPE_INIT("test.reader", struct treader, treader_ptrs);
static const size_t tresp_ptrs[] = {offsetof(struct tresp, conn)};
static const char *const tresp_names[] = {"conn"};
static gh_type_t tresp_type =
    GH_TYPE_INIT_NAMED("test.resp", struct tresp, tresp_ptrs, tresp_names);

static gh_probe_t *probes[2 * N_OBJS];
static void *kept[3 * 100];

static void reset(void)
{
    memset(probes, 0, sizeof probes);
    memset(kept, 0, sizeof kept);
    gh_obj_set_accounting(0);
}

static int count_probes(int n, int reclaimed)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        c += reclaimed ? gh_probe_reclaimed(probes[i]) : gh_probe_unreachable(probes[i]);
    return c;
}

/* Collect (with churn after the first round) until all n probes report reclaimed, at most
 * 4 rounds (docs/DESIGN.md §4, "collected eventually"). */
static int collect_until_reclaimed(int n)
{
    for (int a = 0; a < 4; a++) {
        if (a)
            th_churn(a);
        gh_gc_collect(2);
        if (count_probes(n, 1) == n)
            break;
    }
    return count_probes(n, 1);
}

/* ---- set-up ------------------------------------------------------------------------- */

START_TEST(test_gc_init_is_idempotent)
{
    GC_warn_proc before = GC_get_warn_proc();
    unsigned long w0 = gh_gc_warnings(NULL);
    gh_gc_init();
    gh_gc_init();
    ck_assert_int_eq(GC_is_init_called(), 1);
    ck_assert_ptr_eq((void *)GC_get_warn_proc(), (void *)before);
    ck_assert_uint_eq(gh_gc_warnings(NULL), w0);
}
END_TEST

/* ---- probes ------------------------------------------------------------------------- */

__attribute__((noinline)) static void make_probed(int with_finalizer)
{
    gh_obj_set_accounting(with_finalizer);
    for (int i = 0; i < N_OBJS; i++) {
        kept[i] = gh_obj_new(&treader_type);
        probes[i] = gh_probe_new(kept[i]);
    }
    gh_obj_set_accounting(0);
}

__attribute__((noinline)) static void drop_kept(void)
{
    memset(kept, 0, sizeof kept);
}

START_TEST(test_gc_probe_reports_unreachable_then_reclaimed)
{
    make_probed(0);
    gh_gc_collect(2);
    ck_assert_int_eq(count_probes(N_OBJS, 0), 0);
    ck_assert_int_eq(count_probes(N_OBJS, 1), 0);
    drop_kept();
    ck_assert_int_ge(collect_until_reclaimed(N_OBJS), N_OBJS - 1);
    ck_assert_int_ge(count_probes(N_OBJS, 0), N_OBJS - 1);
}
END_TEST

START_TEST(test_gc_probe_with_finalizer_is_reclaimed_one_collection_later)
{
    make_probed(1);
    drop_kept();
    gh_gc_collect(1);
    /* Found unreachable and finalized, but kept for the finalizer: not reclaimed yet. */
    ck_assert_int_ge(count_probes(N_OBJS, 0), N_OBJS - 1);
    ck_assert_int_eq(count_probes(N_OBJS, 1), 0);
    ck_assert_int_ge(collect_until_reclaimed(N_OBJS), N_OBJS - 1);
}
END_TEST

START_TEST(test_gc_probe_rejects_non_heap_pointers)
{
    static int not_heap;
    int local = 0;
    ck_assert_ptr_null(gh_probe_new(&not_heap));
    ck_assert_ptr_null(gh_probe_new(&local));
    ck_assert_ptr_null(gh_probe_new(NULL));
}
END_TEST

/* ---- cycles and finalizers ---------------------------------------------------------- */

__attribute__((noinline)) static void make_cycles(void)
{
    gh_obj_set_accounting(1);
    for (int i = 0; i < N_OBJS; i++) {
        struct tconn *c = gh_obj_new(&tconn_type);
        struct tresp *r = gh_obj_new(&tresp_type);
        c->resp = r;
        r->conn = c;
        probes[2 * i] = gh_probe_new(c);
        probes[2 * i + 1] = gh_probe_new(r);
    }
    gh_obj_set_accounting(0);
}

START_TEST(test_gc_no_order_cycle_is_finalized_and_reclaimed)
{
    gh_type_stats_t c0, r0, c1, r1;
    unsigned long cyc0 = 0, cyc1 = 0;
    (void)gh_gc_warnings(&cyc0);
    gh_type_stats(&tconn_type, &c0);
    gh_type_stats(&tresp_type, &r0);
    make_cycles();
    int reclaimed = collect_until_reclaimed(2 * N_OBJS);
    gh_type_stats(&tconn_type, &c1);
    gh_type_stats(&tresp_type, &r1);
    (void)gh_gc_warnings(&cyc1);

    ck_assert_int_ge(reclaimed, 2 * N_OBJS - 2);
    ck_assert_uint_ge(c1.finalized - c0.finalized, N_OBJS - 1);
    ck_assert_uint_ge(r1.finalized - r0.finalized, N_OBJS - 1);
    ck_assert_uint_eq(cyc1 - cyc0, 0);
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

/* The control for the hook: ordered finalizers on a 2-cycle are never run and bdwgc warns
 * "Finalization cycle" on every collection (docs/DESIGN.md §3.4). Several cycles, and collecting
 * until a warning comes, because a stale word may pin one of them (§3.2), and a pinned
 * cycle is merely reachable: no warning. The addresses are kept hidden so that the test
 * can unregister the finalizers afterwards and let the cycles go: with CK_FORK=no they
 * would otherwise warn in every later collection. */
#define N_CYCLES 8
static GC_hidden_pointer ordered[2 * N_CYCLES];
static int ordered_runs;

static void GC_CALLBACK ordered_finalizer(void *obj, void *cd)
{
    (void)obj;
    (void)cd;
    ordered_runs++;
}

__attribute__((noinline)) static void make_ordered_cycles(void)
{
    for (int i = 0; i < N_CYCLES; i++) {
        void **a = GC_MALLOC(2 * sizeof(void *));
        void **b = GC_MALLOC(2 * sizeof(void *));
        a[0] = b;
        b[0] = a;
        GC_register_finalizer(a, ordered_finalizer, NULL, NULL, NULL);
        GC_register_finalizer(b, ordered_finalizer, NULL, NULL, NULL);
        ordered[2 * i] = GC_HIDE_POINTER(a);
        ordered[2 * i + 1] = GC_HIDE_POINTER(b);
    }
}

__attribute__((noinline)) static void release_ordered_cycles(void)
{
    /* Safe to reveal: an object with an ordered finalizer in a cycle is never freed. */
    for (int i = 0; i < 2 * N_CYCLES; i++) {
        GC_register_finalizer(GC_REVEAL_POINTER(ordered[i]), 0, NULL, NULL, NULL);
        ordered[i] = 0;
    }
}

START_TEST(test_gc_warning_hook_sees_an_ordered_finalization_cycle)
{
    unsigned long cyc0 = 0, cyc1 = 0;
    unsigned long w0 = gh_gc_warnings(&cyc0);
    ordered_runs = 0;
    make_ordered_cycles();
    for (int a = 0; a < 4; a++) {
        if (a)
            th_churn(a);
        gh_gc_collect(2);
        (void)gh_gc_warnings(&cyc1);
        if (cyc1 > cyc0)
            break;
    }
    unsigned long w1 = gh_gc_warnings(&cyc1);
    release_ordered_cycles();
    gh_gc_collect(2);

    ck_assert_uint_ge(cyc1 - cyc0, 1);
    ck_assert_uint_ge(w1 - w0, cyc1 - cyc0);
    ck_assert_int_eq(ordered_runs, 0);
}
END_TEST

/* ---- measurement -------------------------------------------------------------------- */

#define N_KEPT 100

__attribute__((noinline)) static size_t make_kept(void)
{
    size_t sum = 0;
    for (int i = 0; i < N_KEPT; i++) {
        struct tconn *c = gh_obj_new(&tconn_type);
        kept[3 * i] = c;
        kept[3 * i + 1] = gh_bytes_new(100);
        kept[3 * i + 2] = gh_bytes_new(gh_bytes_good_size(4096));
        for (int k = 0; k < 3; k++)
            sum += GC_size(GC_base(kept[3 * i + k]));
    }
    return sum;
}

START_TEST(test_gc_live_bytes_grow_by_the_gc_size_of_kept_objects)
{
    /* Warm-up round: grows the collector's own tables and free lists to steady size. */
    (void)make_kept();
    drop_kept();
    gh_gc_collect(2);
    gh_gc_collect(2);
    size_t b0 = 0, o0 = gh_gc_live_objects(&b0);

    size_t sum = make_kept();
    gh_gc_collect(2);
    size_t b1 = 0, o1 = gh_gc_live_objects(&b1);

    ck_assert_uint_eq(b1 - b0, sum);
    ck_assert_uint_eq(o1 - o0, 3 * N_KEPT);
    ck_assert_uint_eq(gh_gc_live_bytes(), b1);
}
END_TEST

START_TEST(test_gc_heap_and_total_bytes_are_reported)
{
    size_t t0 = gh_gc_total_bytes();
    for (int i = 0; i < 1000; i++)
        ck_assert_ptr_nonnull(gh_bytes_new(1024));
    size_t t1 = gh_gc_total_bytes();
    ck_assert_uint_ge(t1 - t0, 900 * 1024);
    ck_assert_uint_gt(gh_gc_heap_used(), 0);
    ck_assert_uint_le(gh_gc_heap_used(), GC_get_heap_size());
}
END_TEST

/* ---- DOT ---------------------------------------------------------------------------- */

static char *dot_buf;
static size_t dot_len;

static const char *dot_of(const void *root, int max_nodes, int *rc)
{
    free(dot_buf);
    dot_buf = NULL;
    FILE *f = open_memstream(&dot_buf, &dot_len);
    *rc = gh_gc_write_dot(f, "g", root, max_nodes);
    fclose(f);
    return dot_buf;
}

static struct tconn *dot_root;

static void make_dot_graph(void)
{
    struct tconn *c = gh_obj_new(&tconn_type);
    struct treader *r = gh_obj_new(&treader_type);
    c->reader = r;
    r->conn = c;
    c->rbuf = gh_bytes_new(gh_bytes_good_size(4096));
    dot_root = c;
}

START_TEST(test_gc_write_dot_of_a_small_graph)
{
    make_dot_graph();
    int rc = 0;
    const char *dot = dot_of(dot_root, 0, &rc);
    ck_assert_int_eq(rc, 3);
    /* test.conn: 32-byte struct + 16-byte header + typed-descriptor word = 48 + 8 -> 64;
     * test.reader: 16 + 16 + 8 -> 48; rbuf: 4095 + 1 -> 4096. */
    ck_assert_str_eq(dot, "digraph \"g\" {\n"
                          "  node [shape=box, fontname=\"monospace\"];\n"
                          "  n0 [label=\"test.conn\\n64 B\"];\n"
                          "  n0 -> n1 [label=\"reader\"];\n"
                          "  n0 -> n2 [label=\"rbuf\"];\n"
                          "  n1 [label=\"test.reader\\n48 B\"];\n"
                          "  n1 -> n0 [label=\"+8\"];\n"
                          "  n2 [label=\"bytes\\n4096 B\", shape=ellipse];\n"
                          "}\n");
}
END_TEST

START_TEST(test_gc_write_dot_stops_at_max_nodes)
{
    make_dot_graph();
    int rc = 0;
    const char *dot = dot_of(dot_root, 2, &rc);
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_null(strstr(dot, "n2"));
    ck_assert_ptr_nonnull(strstr(dot, "n1 -> n0"));
}
END_TEST

START_TEST(test_gc_write_dot_rejects_non_heap_roots)
{
    static int not_heap;
    int rc = 0;
    (void)dot_of(&not_heap, 0, &rc);
    ck_assert_int_eq(rc, GH_EINVAL);
}
END_TEST

static void dot_teardown(void)
{
    free(dot_buf);
    dot_buf = NULL;
    dot_root = NULL;
}

Suite *test_suite(void)
{
    Suite *s = suite_create("gc");

    TCase *tc = tcase_create("probes");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_gc_init_is_idempotent);
    tcase_add_test(tc, test_gc_probe_reports_unreachable_then_reclaimed);
    tcase_add_test(tc, test_gc_probe_with_finalizer_is_reclaimed_one_collection_later);
    tcase_add_test(tc, test_gc_probe_rejects_non_heap_pointers);
    suite_add_tcase(s, tc);

    tc = tcase_create("measure");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_gc_live_bytes_grow_by_the_gc_size_of_kept_objects);
    tcase_add_test(tc, test_gc_heap_and_total_bytes_are_reported);
    suite_add_tcase(s, tc);

    tc = tcase_create("dot");
    tcase_add_checked_fixture(tc, NULL, dot_teardown);
    tcase_add_test(tc, test_gc_write_dot_of_a_small_graph);
    tcase_add_test(tc, test_gc_write_dot_stops_at_max_nodes);
    tcase_add_test(tc, test_gc_write_dot_rejects_non_heap_roots);
    suite_add_tcase(s, tc);

    /* Cycles last: with CK_FORK=no the ordered-cycle control leaves its warnings counted
     * for the rest of the process, and earlier tests assert there are none. */
    tc = tcase_create("cycles");
    tcase_add_checked_fixture(tc, reset, reset);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_gc_no_order_cycle_is_finalized_and_reclaimed);
    tcase_add_test(tc, test_gc_warning_hook_sees_an_ordered_finalization_cycle);
    suite_add_tcase(s, tc);
    return s;
}
