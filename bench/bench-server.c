/*
 * bench/bench-server.c: gchttp's in-process benchmarks, printed as Go benchmark lines
 * (benchstat reads them):
 *
 *   BenchmarkServer          one keep-alive request/response on a warm connection
 *   BenchmarkServerPost      the same with a 64-byte body sent with the head (one
 *                            write): the body is kept in a buffer of its own size,
 *                            given back once the request is done
 *   BenchmarkServerHijack    new connection, GET, the handler hijacks and closes
 *   BenchmarkCloseNotifier   dial, keep-alive GET, client closes, the handler sees
 *                            close-notify (gh_response_close_notify + gh_ctx_wait)
 *   BenchmarkServerHijack/stage=S, BenchmarkServerHijackMemoryUsage/stage=S[/idle]
 *                            the retention study's five stages, run by
 *                            examples/retention (its Benchmark lines are passed on)
 *
 * The client is plain sockets (examples/httpc.h) on the main thread: it allocates nothing
 * from the collector, so B/op and allocs/op are the server's own GC allocations
 * (gh_alloc_stats deltas over the last run, divided by N). N grows as in Go's testing
 * package until a run lasts -benchtime.
 *
 *   bench-server [-count K] [-benchtime SECONDS] [-bench SUBSTRING] [-retention PATH|none]
 *                [-types]   (-types: which object types an op allocates, on stderr)
 *   bench-server -serve HOST:PORT   hello on every path, /hijack hijacks and closes
 *                                   (for bench/peers/run); serves until SIGINT/SIGTERM
 */
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <gchttp.h>

#include "../examples/ex-common.h"
#include "../examples/httpc.h"

static double benchtime = 1.0;
static int count = 3;
static const char *filter = "";
static char cpu_name[256] = "unknown";
static int show_types; /* -types: per-type allocations of the last run, on stderr */

/* Per-type snapshot (gh_type_foreach), to say which objects a benchmark op allocates. */
#define MAX_TYPES 64
typedef struct type_snap {
    int n;
    const char *name[MAX_TYPES];
    unsigned long allocated[MAX_TYPES], bytes[MAX_TYPES];
} type_snap_t;

static void snap_one(gh_type_t *t, void *data)
{
    type_snap_t *ts = data;
    if (ts->n == MAX_TYPES)
        return;
    gh_type_stats_t st;
    gh_type_stats(t, &st);
    ts->name[ts->n] = st.name;
    ts->allocated[ts->n] = st.allocated;
    ts->bytes[ts->n++] = st.bytes;
}

static void print_types(const char *bench, const type_snap_t *a, const type_snap_t *b,
                        const gh_alloc_stats_t *a0, const gh_alloc_stats_t *a1, long n)
{
    unsigned long objs = 0, bytes = 0;
    fprintf(stderr, "%s: allocations per op by type\n", bench);
    for (int i = 0; i < b->n; i++) {
        unsigned long ca = b->allocated[i], cb = b->bytes[i];
        for (int j = 0; j < a->n; j++)
            if (a->name[j] == b->name[i]) {
                ca -= a->allocated[j];
                cb -= a->bytes[j];
            }
        if (ca) {
            fprintf(stderr, "  %-24s %6.2f objects %8.1f B\n", b->name[i], (double)ca / n,
                    (double)cb / n);
            objs += ca;
            bytes += cb;
        }
    }
    fprintf(stderr, "  %-24s %6.2f objects %8.1f B\n", "(bytes/ptrs/strings)",
            (double)(a1->objects - a0->objects - objs) / n,
            (double)(a1->bytes - a0->bytes - bytes) / n);
}

/* ---- handlers ------------------------------------------------------------------------ */

static void hello(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)r;
    (void)data;
    gh_response_header_set(w, "Content-Type", "text/plain; charset=utf-8");
    gh_response_write(w, "Hello world.\n", 13);
}

static unsigned long handled; /* atomic: handlers finished */

static void hijack_close(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)r;
    (void)data;
    gh_netconn_t *nc;
    if (gh_response_hijack(w, &nc, NULL) == 0)
        gh_netconn_close(nc);
    __atomic_add_fetch(&handled, 1, __ATOMIC_SEQ_CST);
}

/* Close-notify hand-shake between the handler (worker thread) and the client (main). */
static pthread_mutex_t cn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cn_cv = PTHREAD_COND_INITIALIZER;
static unsigned long cn_started, cn_done, cn_missed;

static void cn_bump(unsigned long *v)
{
    pthread_mutex_lock(&cn_mu);
    (*v)++;
    pthread_cond_broadcast(&cn_cv);
    pthread_mutex_unlock(&cn_mu);
}

static int cn_wait(unsigned long *v, unsigned long target, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    int rc = 0;
    pthread_mutex_lock(&cn_mu);
    while (*v < target && rc == 0)
        rc = pthread_cond_timedwait(&cn_cv, &cn_mu, &ts);
    int ok = *v >= target;
    pthread_mutex_unlock(&cn_mu);
    return ok ? 0 : -1;
}

static void close_notify(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)r;
    (void)data;
    gh_ctx_t *ctx = gh_response_close_notify(w);
    cn_bump(&cn_started);
    if (!ctx || gh_ctx_wait(ctx, gh_now() + 5 * GH_SEC) == 0)
        __atomic_add_fetch(&cn_missed, 1, __ATOMIC_SEQ_CST);
    cn_bump(&cn_done);
}

/* -serve: hello everywhere, /hijack hijacks and closes (bench/peers/run's hijack path). */
static void serve_handler(gh_response_t *w, gh_request_t *r, void *data)
{
    if (!strncmp(gh_request_target(r), "/hijack", 7))
        hijack_close(w, r, data);
    else
        hello(w, r, data);
}

static int serve(const char *addr)
{
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = serve_handler;
    gh_server_t *s;
    int rc = gh_server_new(&s, &cfg);
    if (rc == 0)
        rc = gh_server_listen_addr(s, addr);
    if (rc == 0)
        rc = gh_server_start(s);
    if (rc < 0) {
        fprintf(stderr, "bench-server: %s: %s\n", addr, gh_strerror(rc));
        return 1;
    }
    printf("listening on port %d\n", gh_server_port(s, 0));
    fflush(stdout);
    signal_next();
    gh_server_close(s);
    return 0;
}

/* ---- harness ------------------------------------------------------------------------- */

typedef struct bench {
    const char *name;
    gh_handler_fn handler;
    /* Run n ops against port; 0 or -1. Called with the server started. */
    int (*run)(struct bench *b, gh_server_t *s, int port, long n);
    long max_n;  /* cap on N (new connections per op use ephemeral ports) */
    int fd;      /* warm connection, for BenchmarkServer */
} bench_t;

static int wait_quiet(gh_server_t *s)
{
    int64_t end = hc_now() + 10LL * 1000000000;
    while (hc_now() < end) {
        gh_server_stats_t st;
        gh_server_stats(s, &st);
        if (st.active_conns == 0 && st.idle_workers == st.workers)
            return 0;
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL); /* bounded poll for a condition */
    }
    return -1;
}

static int run_server(bench_t *b, gh_server_t *s, int port, long n)
{
    (void)s;
    static const char req[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    char buf[1024];
    if (b->fd < 0) {
        b->fd = hc_connect(port);
        if (b->fd < 0)
            return -1;
    }
    for (long i = 0; i < n; i++)
        if (hc_send_all(b->fd, req, sizeof req - 1) < 0 ||
            hc_read_response(b->fd, buf, sizeof buf, 5000) != 200)
            return -1;
    return 0;
}

static int run_post(bench_t *b, gh_server_t *s, int port, long n)
{
    (void)s;
    static const char req[] = "POST / HTTP/1.1\r\nHost: bench\r\nContent-Length: 64\r\n\r\n"
                              "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char buf[1024];
    if (b->fd < 0) {
        b->fd = hc_connect(port);
        if (b->fd < 0)
            return -1;
    }
    for (long i = 0; i < n; i++)
        if (hc_send_all(b->fd, req, sizeof req - 1) < 0 ||
            hc_read_response(b->fd, buf, sizeof buf, 5000) != 200)
            return -1;
    return 0;
}

static int run_hijack(bench_t *b, gh_server_t *s, int port, long n)
{
    (void)b;
    static const char req[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    unsigned long h0 = __atomic_load_n(&handled, __ATOMIC_SEQ_CST);
    for (long i = 0; i < n; i++) {
        int fd = hc_connect(port);
        if (fd < 0)
            return -1;
        int rc = hc_send_all(fd, req, sizeof req - 1) < 0 ? -1 : hc_wait_close(fd, 5000);
        close(fd);
        if (rc < 0)
            return -1;
    }
    /* Every handler has returned before the counters are read. */
    int64_t end = hc_now() + 10LL * 1000000000;
    while (__atomic_load_n(&handled, __ATOMIC_SEQ_CST) - h0 < (unsigned long)n) {
        if (hc_now() > end)
            return -1;
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL); /* bounded poll for a condition */
    }
    return wait_quiet(s);
}

static int run_close_notify(bench_t *b, gh_server_t *s, int port, long n)
{
    (void)b;
    static const char req[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    for (long i = 0; i < n; i++) {
        int fd = hc_connect(port);
        if (fd < 0)
            return -1;
        pthread_mutex_lock(&cn_mu);
        unsigned long started = cn_started, done = cn_done;
        pthread_mutex_unlock(&cn_mu);
        /* Close only once the handler runs: request bytes and FIN in one read would
         * test the parser's half-close rule, not close-notify. */
        if (hc_send_all(fd, req, sizeof req - 1) < 0 || cn_wait(&cn_started, started + 1, 5000)) {
            close(fd);
            return -1;
        }
        close(fd);
        if (cn_wait(&cn_done, done + 1, 10000) < 0)
            return -1;
    }
    return wait_quiet(s);
}

/* -bench: a substring of the name; "^X" a prefix, "X$" the whole name (as in Go). */
static int selected(const char *name)
{
    char pat[256];
    const char *f = filter;
    int anchor_start = *f == '^';
    if (anchor_start)
        f++;
    snprintf(pat, sizeof pat, "%s", f);
    size_t n = strlen(pat);
    int anchor_end = n && pat[n - 1] == '$';
    if (anchor_end)
        pat[--n] = 0;
    if (anchor_start && anchor_end)
        return !strcmp(name, pat);
    if (anchor_start)
        return !strncmp(name, pat, n);
    if (anchor_end)
        return strlen(name) >= n && !strcmp(name + strlen(name) - n, pat);
    return strstr(name, pat) != NULL;
}

static void run_bench(bench_t *b)
{
    if (!selected(b->name))
        return;
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = b->handler;
    gh_server_t *s;
    if (gh_server_new(&s, &cfg) < 0 || gh_server_listen(s, "127.0.0.1", 0) < 0 ||
        gh_server_start(s) < 0) {
        fprintf(stderr, "bench-server: cannot start a server\n");
        exit(1);
    }
    int port = gh_server_port(s, 0);
    b->fd = -1;
    /* Warm-up: a connection, the worker threads, the collector's free lists. */
    if (b->run(b, s, port, 100) < 0) {
        fprintf(stderr, "%s: warm-up failed\n", b->name);
        exit(1);
    }
    for (int k = 0; k < count; k++) {
        long n = 1, last = 0;
        int64_t ns = 0;
        gh_alloc_stats_t a0, a1;
        static type_snap_t ts0, ts1;
        for (;;) {
            ts0.n = 0;
            gh_type_foreach(snap_one, &ts0);
            gh_alloc_stats(&a0);
            int64_t t0 = hc_now();
            if (b->run(b, s, port, n) < 0) {
                fprintf(stderr, "%s: run of %ld failed\n", b->name, n);
                exit(1);
            }
            ns = hc_now() - t0;
            gh_alloc_stats(&a1);
            ts1.n = 0;
            gh_type_foreach(snap_one, &ts1);
            double goal = benchtime * 1e9;
            if (ns >= goal || n >= b->max_n)
                break;
            /* Go's predictNs: aim 20% past the goal, grow at most 100x per step. */
            last = n;
            double pred = goal * (double)last / (double)(ns > 0 ? ns : 1);
            n = (long)(pred + pred / 5);
            if (n > 100 * last)
                n = 100 * last;
            if (n < last + 1)
                n = last + 1;
            if (n > b->max_n)
                n = b->max_n;
        }
        printf("%s-2 \t%8ld\t%10.0f ns/op\t%8.0f B/op\t%6.1f allocs/op\n", b->name, n,
               (double)ns / n, (double)(a1.bytes - a0.bytes) / n,
               (double)(a1.objects - a0.objects) / n);
        fflush(stdout);
        if (show_types && k == count - 1)
            print_types(b->name, &ts0, &ts1, &a0, &a1, n);
    }
    if (b->fd >= 0)
        close(b->fd);
    gh_server_close(s);
}

/* The retention study's per-stage lines, from examples/retention. */
static int run_retention(const char *path)
{
    if (*filter && !selected("BenchmarkServerHijack/stage=") &&
        !selected("BenchmarkServerHijackMemoryUsage/stage=") && !strstr(filter, "stage"))
        return 0;
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s' --count %d", path, count);
    FILE *p = popen(cmd, "r");
    if (!p) {
        perror(path);
        return -1;
    }
    char line[512];
    while (fgets(line, sizeof line, p)) {
        char name[256];
        if (!strncmp(line, "Benchmark", 9) && sscanf(line, "%255s", name) == 1 &&
            (*strrchr(name, '-') = 0, selected(name))) {
            fputs(line, stdout);
            fflush(stdout);
        } else if (strncmp(line, "go", 2) && strncmp(line, "pkg:", 4)) {
            fputs(line, stderr); /* the summary table */
        }
    }
    int st = pclose(p);
    if (st != 0) {
        fprintf(stderr, "bench-server: %s exited with status %d\n", path, st);
        return -1;
    }
    return 0;
}

static void read_cpu_name(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(cpu_name, sizeof cpu_name, "%s", c + 2);
                cpu_name[strcspn(cpu_name, "\n")] = 0;
            }
            break;
        }
    if (f)
        fclose(f);
}

int main(int argc, char **argv)
{
    char retention[PATH_MAX];
    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s", argv[0]);
    char *dir = dirname(self);
    size_t dl = strlen(dir);
    if (dl >= 5 && !strcmp(dir + dl - 5, ".libs")) /* run through the libtool wrapper */
        snprintf(retention, sizeof retention, "%s/../../examples/retention", dir);
    else
        snprintf(retention, sizeof retention, "%s/../examples/retention", dir);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        while (*a == '-')
            a++;
        if (!strcmp(a, "count") && i + 1 < argc)
            count = atoi(argv[++i]);
        else if (!strcmp(a, "benchtime") && i + 1 < argc)
            benchtime = strtod(argv[++i], NULL);
        else if (!strcmp(a, "bench") && i + 1 < argc)
            filter = argv[++i];
        else if (!strcmp(a, "types"))
            show_types = 1;
        else if (!strcmp(a, "serve") && i + 1 < argc) {
            /* Self-pipe, not sigwait: see examples/ex-common.h. */
            static const int sigs[] = {SIGINT, SIGTERM, 0};
            if (signals_init(sigs) < 0) {
                perror("signals");
                return 1;
            }
            gh_gc_init();
            return serve(argv[i + 1]);
        } else if (!strcmp(a, "retention") && i + 1 < argc)
            snprintf(retention, sizeof retention, "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: bench-server [-count K] [-benchtime SECONDS] "
                            "[-bench SUBSTRING] [-retention PATH|none] [-types]\n"
                            "       bench-server -serve HOST:PORT\n");
            return 2;
        }
    }
    if (count < 1 || benchtime <= 0) {
        fprintf(stderr, "bench-server: bad -count or -benchtime\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    gh_gc_init();
    read_cpu_name();
    printf("goos: linux\ngoarch: amd64\npkg: gchttp/bench\ncpu: %s\n", cpu_name);
    fflush(stdout);

    bench_t benches[] = {
        {"BenchmarkServer", hello, run_server, 10000000, -1},
        {"BenchmarkServerPost", hello, run_post, 10000000, -1},
        {"BenchmarkServerHijack", hijack_close, run_hijack, 20000, -1},
        {"BenchmarkCloseNotifier", close_notify, run_close_notify, 20000, -1},
    };
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
        run_bench(&benches[i]);
    if (cn_missed)
        fprintf(stderr, "BenchmarkCloseNotifier: %lu handlers timed out without a notify\n",
                cn_missed);
    if (strcmp(retention, "none") && run_retention(retention) < 0)
        return 1;
    return 0;
}
