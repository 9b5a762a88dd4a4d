/*
 * bench/bench-mux.c: routing cost of gh_mux (lib/mux.c) as the number of patterns grows.
 *
 * A REST API shape, ten routes per resource (collection, item, sub-collection, sub-item,
 * methods), with 10, 200 and 2,000 patterns registered. Each benchmark routes one target
 * through gh_mux_match in a loop, grown as Go's testing package does until a run lasts
 * -benchtime, and prints Go benchmark lines (ns/op, B/op and allocs/op from
 * gh_alloc_stats), so benchstat can compare runs:
 *   hit-static     GET /v1/res<last>            (no wildcard: nothing to allocate)
 *   hit-wildcards  GET /v1/res<last>/123/comments/456  (two values: one block)
 *   miss           GET /v1/nope/123/comments    (404, including the trailing-slash probe)
 *
 *   bench-mux [-count K] [-benchtime SECONDS]
 * Target (issue 14): 2,000 patterns cost at most 1.5x of 10; a hit allocates nothing but
 * its path values.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gchttp.h>

static double benchtime = 1.0;
static int count = 3;

static void noop(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)w;
    (void)r;
    (void)data;
}

/* Method and what follows "/v1/<resource>". */
static const char *const shapes[][2] = {
    {"GET", ""},
    {"POST", ""},
    {"GET", "/{id}"},
    {"PUT", "/{id}"},
    {"PATCH", "/{id}"},
    {"DELETE", "/{id}"},
    {"GET", "/{id}/comments"},
    {"POST", "/{id}/comments"},
    {"GET", "/{id}/comments/{cid}"},
    {"GET", "/{id}/owner"},
};

static gh_mux_t *build(int npatterns, char *last, size_t lastcap)
{
    gh_mux_t *m = gh_mux_new();
    if (!m)
        return NULL;
    int nres = npatterns / 10;
    for (int r = 0; r < nres; r++) {
        char res[32];
        snprintf(res, sizeof res, "res%d", r);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            char pat[128];
            snprintf(pat, sizeof pat, "%s /v1/%s%s", shapes[s][0], res, shapes[s][1]);
            int rc = gh_mux_handle(m, pat, noop, NULL);
            if (rc < 0) {
                fprintf(stderr, "bench-mux: %s: %s\n", pat, gh_mux_error(m));
                exit(1);
            }
        }
        snprintf(last, lastcap, "%s", res);
    }
    return m;
}

static int run(gh_mux_t *m, const char *target, long n, int want)
{
    for (long i = 0; i < n; i++) {
        gh_mux_match_t mt;
        if (gh_mux_match(m, "GET", "api.test", target, &mt) < 0 || mt.status != want)
            return -1;
    }
    return 0;
}

static void bench(const char *name, int np, gh_mux_t *m, const char *target, int want)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    long n = 1;
    for (;;) {
        gh_alloc_stats_t a, b;
        gh_alloc_stats(&a);
        gh_time_t t0 = gh_now();
        if (run(m, target, n, want) < 0) {
            fprintf(stderr, "bench-mux: %s gave the wrong status\n", target);
            exit(1);
        }
        gh_time_t dt = gh_now() - t0;
        gh_alloc_stats(&b);
        double goal = benchtime * 1e9;
        if (dt >= goal || n >= 1000000000L) {
            printf("BenchmarkMux/%s/patterns=%d-%ld\t%10ld\t%10.1f ns/op\t%8.0f B/op\t%8.2f "
                   "allocs/op\n",
                   name, np, ncpu, n, (double)dt / (double)n,
                   (double)(b.bytes - a.bytes) / (double)n,
                   (double)(b.objects - a.objects) / (double)n);
            fflush(stdout);
            return;
        }
        /* Go's predictNs: aim 20% past the goal, grow at most 100x, at least by 1. */
        double per = dt > 0 ? (double)dt / (double)n : 1.0;
        long next = (long)(goal * 1.2 / per);
        if (next > n * 100)
            next = n * 100;
        if (next <= n)
            next = n + 1;
        n = next;
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i] + (argv[i][0] == '-' && argv[i][1] == '-');
        if (!strcmp(a, "-count") && i + 1 < argc) {
            count = atoi(argv[++i]);
        } else if (!strcmp(a, "-benchtime") && i + 1 < argc) {
            benchtime = strtod(argv[++i], NULL);
        } else {
            fprintf(stderr, "usage: bench-mux [-count K] [-benchtime SECONDS]\n");
            return 2;
        }
    }
    if (count < 1 || benchtime <= 0) {
        fprintf(stderr, "bench-mux: bad -count or -benchtime\n");
        return 2;
    }
    gh_gc_init();
    static const int sizes[] = {10, 200, 2000};
    static gh_mux_t *muxes[3];
    static char last[3][32];
    for (int s = 0; s < 3; s++)
        muxes[s] = build(sizes[s], last[s], sizeof last[s]);
    printf("goos: linux\npkg: gchttp/bench\n");
    for (int k = 0; k < count; k++)
        for (int s = 0; s < 3; s++) {
            char t[128];
            snprintf(t, sizeof t, "/v1/%s", last[s]);
            bench("hit-static", sizes[s], muxes[s], t, 200);
            snprintf(t, sizeof t, "/v1/%s/123/comments/456", last[s]);
            bench("hit-wildcards", sizes[s], muxes[s], t, 200);
            bench("miss", sizes[s], muxes[s], "/v1/nope/123/comments", 404);
        }
    return 0;
}
