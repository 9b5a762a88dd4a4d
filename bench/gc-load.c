/*
 * bench/gc-load.c: what the collector costs a loaded server with N loops.
 *
 *   bench/gc-load [--listen 127.0.0.1:8080] [--loops N] [--heap-min BYTES]
 *   wrk -t1 -c50 -d10s http://127.0.0.1:8080/      (any load generator)
 *   then SIGINT or SIGTERM: the figures below are printed and the program ends.
 *
 * Serves examples/hello's keep-alive "Hello world.\n" and counts, from the moment the
 * first request arrives to the signal: collections (per second), the time the world
 * was stopped (bdwgc's GC_EVENT_PRE_STOP_WORLD .. GC_EVENT_POST_START_WORLD: every
 * thread waits meanwhile), whole collections (GC_EVENT_START .. GC_EVENT_END), and
 * the process's CPU time (getrusage), so that the collector's share can be read
 * against both wall time and CPU. Go benchmark style lines, then a plain summary:
 *
 *   BenchmarkGCUnderLoad/loops=2  N  ns/op(wall per request)  B/op  allocs/op
 *   gc-load: loops 2, 412345 requests in 10.0 s (41234/s); 87 collections (8.7/s) ...
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <gc/gc.h>
#include <gchttp.h>

#include "../examples/ex-common.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Written by the collecting thread only (collections are serialised by bdwgc's lock);
 * read once the load is over. */
static int64_t ev_stop_at, ev_start_at;
static int64_t stopped_ns, stopped_max_ns, gc_ns, gc_max_ns;
static unsigned long n_gc, n_stops;
static int counting; /* atomic: the load has begun */

static void on_gc_event(GC_EventType e)
{
    if (!__atomic_load_n(&counting, __ATOMIC_RELAXED))
        return;
    int64_t t = now_ns();
    switch (e) {
    case GC_EVENT_START:
        ev_start_at = t;
        break;
    case GC_EVENT_END:
        if (ev_start_at) {
            int64_t d = t - ev_start_at;
            gc_ns += d;
            gc_max_ns = d > gc_max_ns ? d : gc_max_ns;
            n_gc++;
        }
        ev_start_at = 0;
        break;
    case GC_EVENT_PRE_STOP_WORLD:
        ev_stop_at = t;
        break;
    case GC_EVENT_POST_START_WORLD:
        if (ev_stop_at) {
            int64_t d = t - ev_stop_at;
            stopped_ns += d;
            stopped_max_ns = d > stopped_max_ns ? d : stopped_max_ns;
            n_stops++;
        }
        ev_stop_at = 0;
        break;
    default:
        break;
    }
}

static int64_t t_first;
static struct rusage ru_first;
static gh_alloc_stats_t al_first;

static void hello(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)r;
    (void)data;
    if (!__atomic_load_n(&counting, __ATOMIC_ACQUIRE)) {
        static int once;
        if (!__atomic_exchange_n(&once, 1, __ATOMIC_SEQ_CST)) {
            t_first = now_ns();
            getrusage(RUSAGE_SELF, &ru_first);
            gh_alloc_stats(&al_first);
            __atomic_store_n(&counting, 1, __ATOMIC_RELEASE);
        }
    }
    gh_response_header_set(w, "Content-Type", "text/plain; charset=utf-8");
    gh_response_write(w, "Hello world.\n", 13);
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + tv.tv_usec / 1e6; }

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8080";
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc)
            listen = argv[++i];
        else if (!strcmp(argv[i], "--loops") && i + 1 < argc)
            cfg.loops = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--heap-min") && i + 1 < argc)
            cfg.gc_heap_min = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: gc-load [--listen HOST:PORT] [--loops N] [--heap-min B]\n");
            return 2;
        }
    }
    cfg.handler = hello;
    gh_gc_init();
    GC_set_on_collection_event(on_gc_event);
    gh_server_t *srv = ex_start("gc-load", &cfg, listen, NULL);
    if (!srv)
        return 1;
    unsigned long gc0 = (unsigned long)GC_get_gc_no();
    (void)signal_next();
    __atomic_store_n(&counting, 0, __ATOMIC_RELEASE);
    int64_t t_end = now_ns();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    gh_alloc_stats_t al;
    gh_alloc_stats(&al);
    gh_server_stats_t st;
    gh_server_stats(srv, &st);
    int loops = gh_server_loops(srv);
    if (!t_first) {
        fprintf(stderr, "gc-load: no request arrived\n");
        gh_server_close(srv);
        return 1;
    }
    double wall = (double)(t_end - t_first) / 1e9;
    double cpu = tv_s(ru.ru_utime) + tv_s(ru.ru_stime) - tv_s(ru_first.ru_utime) -
                 tv_s(ru_first.ru_stime);
    unsigned long n = st.requests ? st.requests : 1;
    printf("BenchmarkGCUnderLoad/loops=%d\t%lu\t%.0f ns/op\t%.0f B/op\t%.1f allocs/op\n", loops,
           st.requests, (double)(t_end - t_first) / (double)n,
           (double)(al.bytes - al_first.bytes) / (double)n,
           (double)(al.objects - al_first.objects) / (double)n);
    printf("gc-load: loops %d, %lu requests in %.2f s (%.0f/s); process CPU %.2f s (%.0f%% of "
           "one core)\n",
           loops, st.requests, wall, (double)st.requests / wall, cpu, 100 * cpu / wall);
    printf("gc-load: %lu collections (%.1f/s; bdwgc gc_no +%lu), %d marker threads, heap "
           "%zu KiB\n",
           n_gc, (double)n_gc / wall, (unsigned long)GC_get_gc_no() - gc0,
           GC_get_parallel() + 1, GC_get_heap_size() >> 10);
    printf("gc-load: world stopped %.2f ms in all (%.3f%% of wall), %.0f us mean, %.0f us max "
           "per collection\n",
           (double)stopped_ns / 1e6, 100.0 * (double)stopped_ns / 1e9 / wall,
           n_stops ? (double)stopped_ns / (double)n_stops / 1e3 : 0.0,
           (double)stopped_max_ns / 1e3);
    printf("gc-load: collections took %.2f ms in all (%.3f%% of wall, %.3f%% of process CPU "
           "counting one thread), %.0f us mean, %.0f us max\n",
           (double)gc_ns / 1e6, 100.0 * (double)gc_ns / 1e9 / wall,
           cpu > 0 ? 100.0 * (double)gc_ns / 1e9 / cpu : 0.0,
           n_gc ? (double)gc_ns / (double)n_gc / 1e3 : 0.0, (double)gc_max_ns / 1e3);
    for (int i = 0; i < loops; i++) {
        gh_server_stats_t ls;
        if (gh_server_loop_stats(srv, i, &ls) == 0)
            printf("gc-load: loop %d: accepted %lu, requests %lu, handoffs %lu\n", i,
                   ls.accepted, ls.requests, ls.handoffs);
    }
    fflush(stdout);
    gh_server_close(srv);
    return 0;
}
