/* tests/test-registry.c: the weak registry of hijacked connections (lib/hijack.c,
 * golang/go#17721): it finds what the program holds and never keeps anything alive. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test-common.h"

#define N_CONNS 20

static gh_server_t *srv;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int hijacked;
static int keep_them;
static gh_netconn_t **kept;   /* scanned array from gh_ptrs_new, held by a static */
static gh_probe_t **probes;

static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    gh_netconn_t *nc = NULL;
    int slot = atoi(gh_request_target(r) + 1);
    if (gh_response_hijack(w, &nc, NULL) == 0 && slot >= 0 && slot < N_CONNS) {
        probes[slot] = gh_probe_new(nc);
        if (keep_them)
            kept[slot] = nc;
        /* else: dropped open; the gh_fd finalizer backstop closes it */
    }
    pthread_mutex_lock(&mu);
    hijacked++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int wait_hijacked(int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_mutex_lock(&mu);
    int rc = 0;
    while (hijacked < n && rc == 0)
        rc = pthread_cond_timedwait(&cv, &mu, &ts);
    int ok = hijacked >= n;
    pthread_mutex_unlock(&mu);
    return ok;
}

/* Every worker back waiting: its stack was scrubbed after the handler. */
static int wait_workers_idle(void)
{
    for (int i = 0; i < 2000; i++) {
        gh_server_stats_t st;
        gh_server_stats(srv, &st);
        if (st.idle_workers == st.workers && st.active_conns == 0)
            return 1;
        usleep(1000);
    }
    return 0;
}

static void start(int keep)
{
    kept = gh_ptrs_new(N_CONNS);
    probes = gh_ptrs_new(N_CONNS);
    keep_them = keep;
    hijacked = 0;
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = on_request;
    cfg.track_hijacked = 1;
    cfg.max_workers = 2;
    ck_assert_int_eq(gh_server_new(&srv, &cfg), 0);
    ck_assert_int_eq(gh_server_listen(srv, "127.0.0.1", 0), 0);
    ck_assert_int_eq(gh_server_start(srv), 0);
}

static void connect_all(int *fds)
{
    int port = gh_server_port(srv, 0);
    for (int i = 0; i < N_CONNS; i++) {
        char req[64];
        snprintf(req, sizeof req, "GET /%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
        fds[i] = th_connect(port);
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(th_sends(fds[i], req), 0);
    }
    ck_assert(wait_hijacked(N_CONNS));
    ck_assert(wait_workers_idle());
}

static int n_visited;
static void count_one(gh_netconn_t *c, void *data)
{
    (void)data;
    if (c)
        n_visited++;
}

START_TEST(test_registry_visits_held_connections_and_closes_them)
{
    int fds[N_CONNS];
    start(1);
    connect_all(fds);
    n_visited = 0;
    ck_assert_int_eq(gh_server_hijacked_foreach(srv, count_one, NULL), N_CONNS);
    ck_assert_int_eq(n_visited, N_CONNS);
    /* Connections the program closed itself are not visited. */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(gh_netconn_close(kept[i]), 0);
    ck_assert_int_eq(gh_server_hijacked_foreach(srv, count_one, NULL), N_CONNS - 5);
    /* Shutdown leaves hijacked connections alone, as Go's does... */
    ck_assert_int_eq(gh_server_shutdown(srv, GH_SEC), 0);
    ck_assert_int_eq(gh_server_hijacked_foreach(srv, count_one, NULL), N_CONNS - 5);
    /* ...and the registry closes them on request; their clients see the close. */
    ck_assert_int_eq(gh_server_close_hijacked(srv), N_CONNS - 5);
    for (int i = 0; i < N_CONNS; i++) {
        ck_assert_int_eq(th_wait_closed(fds[i], 5000), 1);
        close(fds[i]);
    }
    ck_assert_int_eq(gh_server_hijacked_foreach(srv, count_one, NULL), 0);
}
END_TEST

__attribute__((noinline)) static int count_unreachable(void)
{
    int n = 0;
    for (int i = 0; i < N_CONNS; i++)
        n += probes[i] && gh_probe_unreachable(probes[i]);
    return n;
}

START_TEST(test_registry_does_not_keep_dropped_connections_alive)
{
    int fds[N_CONNS];
    unsigned long leaked0 = gh_fd_leaked();
    start(0);
    connect_all(fds);
    int unreachable = 0;
    for (int round = 0; round < 4 && unreachable < N_CONNS - 1; round++) {
        gh_gc_collect(2);
        unreachable = count_unreachable();
    }
    /* At most one may be pinned by the collector's own frames (docs/DESIGN.md §3.2). */
    ck_assert_int_ge(unreachable, N_CONNS - 1);
    ck_assert_int_le(gh_server_hijacked_foreach(srv, count_one, NULL), N_CONNS - unreachable);
    gh_gc_collect(2);
    /* Dropped open: the finalizer backstop closed them, and said so. */
    ck_assert_uint_ge(gh_fd_leaked() - leaked0, (unsigned long)unreachable);
    for (int i = 0; i < N_CONNS; i++)
        close(fds[i]);
    gh_server_close(srv);
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("registry");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_registry_visits_held_connections_and_closes_them);
    tcase_add_test(tc, test_registry_does_not_keep_dropped_connections_alive);
    suite_add_tcase(s, tc);
    return s;
}
