/* tests/test-collect.c: what the server lets the collector reclaim, proven with probes
 * over a real loopback server (lib/loop.c, lib/conn.c; docs/DESIGN.md §4).
 *
 * The handler probes its response, request, request context and connection. The test
 * thread never holds any of them: it reads probes only (docs/DESIGN.md §3.1, a stale slot on
 * this stack would pin what it once held). bdwgc's own frames can pin an object that
 * starts a heap block (docs/DESIGN.md §3.2), so counts over N_REQ requests allow one "never
 * collected" and collections are retried with heap churn in between. */
#include "config.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"
#include "../lib/internal.h" /* struct gh_response_s: w->conn has no public accessor */

#define N_REQ 50
#define IO_MS 5000

enum { P_RESP, P_REQ, P_CTX, P_CONN, P_KINDS };
static const char *const kind_name[P_KINDS] = {"response", "request", "request context",
                                               "conn"};

/* GC-visible: the probes (atomic objects, never their targets) and the server. */
static gh_probe_t *probes[N_REQ][P_KINDS];
static int n_handled;
static int probe_failures;
static int fds[N_REQ];
static char rbuf[8192];

static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    int i = __atomic_fetch_add(&n_handled, 1, __ATOMIC_SEQ_CST);
    if (i < N_REQ) {
        gh_probe_t *p[P_KINDS];
        p[P_RESP] = gh_probe_new(w);
        p[P_REQ] = gh_probe_new(r);
        p[P_CTX] = gh_probe_new(gh_request_context(r));
        p[P_CONN] = gh_probe_new(w->conn);
        for (int k = 0; k < P_KINDS; k++) {
            if (!p[k])
                __atomic_add_fetch(&probe_failures, 1, __ATOMIC_SEQ_CST);
            probes[i][k] = p[k];
        }
    }
    gh_response_puts(w, "ok");
}

/* ---- fixture -------------------------------------------------------------------------- */

static void setup(void)
{
    memset(probes, 0, sizeof probes);
    n_handled = 0;
    probe_failures = 0;
    for (int i = 0; i < N_REQ; i++)
        fds[i] = -1;
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = on_request;
    th_server_start(&cfg);
}

static void teardown(void)
{
    for (int i = 0; i < N_REQ; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    th_server_close();
}

/* ---- helpers -------------------------------------------------------------------------- */

/* How many of the n probes of the given kinds are not yet cleared. */
static int count_left(int n, const int *kinds, int n_kinds, int reclaimed, int *per_kind)
{
    int left = 0;
    for (int k = 0; k < n_kinds; k++)
        per_kind[kinds[k]] = 0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < n_kinds; k++) {
            const gh_probe_t *p = probes[i][kinds[k]];
            int gone = reclaimed ? gh_probe_reclaimed(p) : gh_probe_unreachable(p);
            if (!gone) {
                per_kind[kinds[k]]++;
                left++;
            }
        }
    }
    return left;
}

/* Collect, with churn before each retry, until every probe of those kinds is cleared
 * or 4 rounds have passed (docs/DESIGN.md §4, "collected eventually"). Fills per_kind with what
 * was never cleared. */
static void collect_eventually(int n, const int *kinds, int n_kinds, int reclaimed,
                               int *per_kind)
{
    for (int a = 0; a < 4; a++) {
        if (a)
            th_churn(a);
        gh_gc_collect(2);
        if (count_left(n, kinds, n_kinds, reclaimed, per_kind) == 0)
            return;
    }
}

/* One keep-alive request on fd; the response is read, the connection stays open. */
static void request(int fd)
{
    ck_assert_int_eq(th_sends(fd, "GET /probe HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    ck_assert_int_gt(th_read_response(fd, rbuf, sizeof rbuf - 1, IO_MS), 0);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert(!th_has_header(rbuf, "Connection", "close"));
}

static void assert_at_most_one_left(const int *per_kind, const int *kinds, int n_kinds,
                                    const char *what)
{
    for (int k = 0; k < n_kinds; k++)
        ck_assert_msg(per_kind[kinds[k]] <= 1, "%d of %d %s objects never %s",
                      per_kind[kinds[k]], N_REQ, kind_name[kinds[k]], what);
}

static const int request_kinds[] = {P_RESP, P_REQ, P_CTX};
static const int all_kinds[] = {P_RESP, P_REQ, P_CTX, P_CONN};

/* ---- tests ---------------------------------------------------------------------------- */

START_TEST(test_collect_finished_requests_on_open_keepalive_connections)
{
    int left[P_KINDS];
    for (int i = 0; i < N_REQ; i++) {
        fds[i] = th_connect(th_port);
        ck_assert_int_ge(fds[i], 0);
        request(fds[i]);
    }
    ck_assert_int_eq(n_handled, N_REQ);
    ck_assert_int_eq(probe_failures, 0);
    ck_assert_int_eq(th_wait_stats(th_quiescent, IO_MS), 1);

    /* Every connection is open and idle: its requests are garbage, it is not. */
    collect_eventually(N_REQ, request_kinds, 3, 0, left);
    assert_at_most_one_left(left, request_kinds, 3, "unreachable");
    for (int i = 0; i < N_REQ; i++)
        ck_assert_msg(!gh_probe_unreachable(probes[i][P_CONN]),
                      "open connection %d was collected", i);
    gh_server_stats_t st;
    gh_server_stats(th_srv, &st);
    ck_assert_int_eq(st.open_conns, N_REQ);

    /* Once the client closes and the server has let go, the connections go too. */
    for (int i = 0; i < N_REQ; i++) {
        close(fds[i]);
        fds[i] = -1;
    }
    ck_assert_int_eq(th_wait_stats(th_all_closed, IO_MS), 1);
    collect_eventually(N_REQ, all_kinds, 4, 1, left);
    assert_at_most_one_left(left, all_kinds, 4, "reclaimed");
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

START_TEST(test_collect_requests_of_one_keepalive_connection_while_it_lives)
{
    int left[P_KINDS];
    fds[0] = th_connect(th_port);
    ck_assert_int_ge(fds[0], 0);
    for (int i = 0; i < N_REQ; i++)
        request(fds[0]);
    ck_assert_int_eq(n_handled, N_REQ);
    ck_assert_int_eq(probe_failures, 0);
    ck_assert_int_eq(th_wait_stats(th_quiescent, IO_MS), 1);

    collect_eventually(N_REQ, request_kinds, 3, 0, left);
    assert_at_most_one_left(left, request_kinds, 3, "unreachable");
    /* One connection served them all, and it is still in use. */
    for (int i = 0; i < N_REQ; i++)
        ck_assert(!gh_probe_unreachable(probes[i][P_CONN]));

    close(fds[0]);
    fds[0] = -1;
    ck_assert_int_eq(th_wait_stats(th_all_closed, IO_MS), 1);
    collect_eventually(N_REQ, all_kinds, 4, 1, left);
    assert_at_most_one_left(left, request_kinds, 3, "reclaimed");
    ck_assert_msg(left[P_CONN] == 0, "the closed connection was never reclaimed");
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

START_TEST(test_collect_each_request_before_the_next_one)
{
    /* Per request, not in bulk: the previous request's objects are unreachable while
     * the connection serves the next one. */
    int left[P_KINDS];
    int never = 0;
    fds[0] = th_connect(th_port);
    ck_assert_int_ge(fds[0], 0);
    for (int i = 0; i < N_REQ; i++) {
        request(fds[0]);
        ck_assert_int_eq(th_wait_stats(th_quiescent, IO_MS), 1);
        int retries = 0;
        for (; retries < 4; retries++) {
            if (retries)
                th_churn(retries);
            gh_gc_collect(2);
            left[P_RESP] = !gh_probe_unreachable(probes[i][P_RESP]);
            left[P_REQ] = !gh_probe_unreachable(probes[i][P_REQ]);
            left[P_CTX] = !gh_probe_unreachable(probes[i][P_CTX]);
            if (!left[P_RESP] && !left[P_REQ] && !left[P_CTX])
                break;
        }
        never += retries == 4;
        ck_assert(!gh_probe_unreachable(probes[i][P_CONN]));
    }
    ck_assert_msg(never <= 1, "%d of %d requests never collected", never, N_REQ);
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

/* Per-type accounting agrees with the probes: what was allocated for the requests is
 * finalized once everything is closed. */
static gh_type_stats_t type_stats(const char *name)
{
    gh_type_stats_t st;
    gh_type_t *t = gh_type_find(name);
    ck_assert_msg(t != NULL, "type %s", name);
    gh_type_stats(t, &st);
    return st;
}

START_TEST(test_collect_per_type_live_counts_return_to_baseline)
{
    static const char *const names[] = {"response", "Request", "conn", "connReader"};
    enum { N_NAMES = sizeof names / sizeof names[0] };
    int left[P_KINDS];
    /* Warm up: make sure every type is registered, then count from here. */
    fds[0] = th_connect(th_port);
    ck_assert_int_ge(fds[0], 0);
    request(fds[0]);
    close(fds[0]);
    fds[0] = -1;
    ck_assert_int_eq(th_wait_stats(th_all_closed, IO_MS), 1);
    memset(probes, 0, sizeof probes);
    n_handled = 0;
    gh_obj_set_accounting(1);
    gh_type_stats_t before[N_NAMES];
    for (int k = 0; k < N_NAMES; k++)
        before[k] = type_stats(names[k]);

    for (int i = 0; i < N_REQ; i++) {
        fds[i] = th_connect(th_port);
        ck_assert_int_ge(fds[i], 0);
        request(fds[i]);
    }
    for (int i = 0; i < N_REQ; i++) {
        close(fds[i]);
        fds[i] = -1;
    }
    ck_assert_int_eq(th_wait_stats(th_all_closed, IO_MS), 1);
    collect_eventually(N_REQ, all_kinds, 4, 1, left);
    for (int k = 0; k < N_NAMES; k++) {
        gh_type_stats_t st = type_stats(names[k]);
        unsigned long alloc = st.allocated - before[k].allocated;
        unsigned long fin = st.finalized - before[k].finalized;
        ck_assert_msg(alloc >= N_REQ, "%s: %lu allocated", names[k], alloc);
        ck_assert_msg(fin + 1 >= alloc, "%s: %lu allocated, %lu finalized", names[k], alloc,
                      fin);
    }
    gh_obj_set_accounting(0);
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("collect");
    TCase *tc = tcase_create("server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_collect_finished_requests_on_open_keepalive_connections);
    tcase_add_test(tc, test_collect_requests_of_one_keepalive_connection_while_it_lives);
    tcase_add_test(tc, test_collect_each_request_before_the_next_one);
    suite_add_tcase(s, tc);

    tc = tcase_create("accounting");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_collect_per_type_live_counts_return_to_baseline);
    suite_add_tcase(s, tc);
    return s;
}
