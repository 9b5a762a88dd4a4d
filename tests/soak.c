/*
 * tests/soak.c: keep-alive requests plus hijacked-and-closed connections against a real
 * server on loopback, then the proof that nothing stayed behind: the open descriptor
 * count returns to its baseline and the exact live heap (two collections, then a walk
 * of every marked object; docs/DESIGN.md §5) returns to within a few KiB of it.
 *
 *   make soak [SOAK_REQUESTS=200000] [SOAK_HIJACKS=20000]
 *   tests/soak [-requests N] [-hijacks N] [-conns N] [-workers N]
 *
 * The same code, with small counts, is a test of tests/test-faults.c (compiled there
 * with SOAK_NO_MAIN).
 *
 * How it measures (details at soak_run):
 *  1. A warm-up round of the same shape (every connection concurrent, hijacks in
 *     batches of the same width) brings every table to its steady size: the worker
 *     pool, the server's conns[fd] and queue arrays, bdwgc's finalizer and
 *     disappearing-link hash tables (sized to the peak of registrations, never shrunk).
 *     It runs once on a server that is then closed, and again on the server under test.
 *     A soak round that started pool threads (each a fixed per-thread cost in bdwgc) is
 *     not compared: it becomes the baseline and the round runs again (soak_run).
 *  2. After each round every client connection is closed and the server is waited for
 *     until it owns no connection and every worker is back waiting (past its stack
 *     scrub); then: open descriptors (/proc/self/fd), gh_gc_collect(2), the exact walk
 *     of the marked objects (gh_gc_live_objects, split into atomic bytes and objects with
 *     pointers), gh_fd_leaked().
 *  3. The same after gh_server_close, for both servers.
 * Bounds: descriptors exactly equal; objects with pointers while the server is up within
 * SOAK_MAX_GROWTH_SCANNED (4 KiB: one finished connection graph that a stale word pins
 * is ~1 KiB); the whole exact live heap once the server is closed within
 * SOAK_MAX_GROWTH_BYTES (16 KiB) of the closed warm-up server's. Atomic bytes while the
 * server is up are reported, not bounded: bdwgc's thread-local free lists count as live
 * (see soak_run) and move by several KiB between rounds. What may move after close is
 * one doubling of a table the warm-up peak did not reach (a few KiB) and the main
 * thread's free-list residue (< 4 KiB per size class). A leak of the smallest GC object
 * (16 B) per request is >= 80 KiB over 5,000 requests; a leaked conn, response or
 * netconn per hijacked connection is >= 500 objects with pointers over 500 hijacks
 * (tens of KiB at least), far beyond 4 KiB.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"
#include <gc/gc_mark.h>

#define SOAK_MAX_GROWTH_BYTES (16 * 1024)
#define SOAK_MAX_GROWTH_SCANNED (4 * 1024)
#define SOAK_IO_MS 5000
#define SOAK_MAX_CONNS 256
#define SOAK_MAX_LOOPS 256 /* the server's most event loops (include/gchttp/server.h) */

typedef struct soak_opts {
    long requests; /* keep-alive requests in the measured round */
    long hijacks;  /* hijacked-and-closed connections in the measured round */
    int conns;     /* keep-alive connections (and width of a hijack batch) */
    int max_workers;
    int verbose; /* print the figures */
} soak_opts_t;

/* One measurement: descriptors, then the exact walk of the objects the last of two
 * collections marked, split by kind. */
typedef struct soak_fig {
    long fds;
    size_t live, objs;            /* every marked object (gh_gc_live_objects) */
    size_t scanned, scanned_objs; /* of which objects with pointers (gh objects too) */
    unsigned long leaked;         /* gh_fd_leaked() */
} soak_fig_t;

typedef struct soak_result {
    double req_secs, hj_secs;
    long requests, hijacks;
    soak_fig_t up0, up1;        /* server up and quiescent: after the warm-up, after the soak */
    soak_fig_t down0, down1;    /* after gh_server_close: of the warm-up server, of this one */
    int down0_gone, down1_gone; /* the closed server was reclaimed before the figures */
    int threads, threads0; /* the server's pool threads after the last round, the one before */
    int rounds;            /* soak rounds run: the last is compared (soak_run) */
    gh_server_stats_t st;
    char err[256]; /* first failure, "" if none */
} soak_result_t;

/* GC-visible: the server. The client side holds no GC pointer. */
static gh_server_t *soak_srv;
static gh_probe_t *soak_srv_probe; /* watches the server without keeping it */
static int soak_port;
static char soak_buf[1 << 16];

static void soak_handler(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    if (strcmp(gh_request_target(r), "/hj") == 0) {
        gh_netconn_t *nc;
        if (gh_response_hijack(w, &nc, NULL) < 0)
            return;
        static const char resp[] =
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhj";
        gh_netconn_set_write_deadline(nc, gh_now() + 5 * GH_SEC);
        (void)gh_netconn_write(nc, resp, sizeof resp - 1);
        gh_netconn_close(nc);
        return;
    }
    gh_response_puts(w, "ok");
}

/* Open descriptors of this process (the directory's own descriptor excluded). */
static long soak_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

__attribute__((format(printf, 2, 3))) static int soak_fail(soak_result_t *res, const char *fmt, ...)
{
    if (!res->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res->err, sizeof res->err, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The server owns no connection, none is in progress, every worker waits (and so has
 * scrubbed its stack). Bounded by ms. */
static int soak_quiesce(int ms, int *threads)
{
    gh_time_t deadline = gh_now() + (gh_time_t)ms * GH_MSEC;
    for (;;) {
        gh_server_stats_t st;
        gh_server_stats(soak_srv, &st);
        if (st.open_conns == 0 && st.active_conns == 0 && st.idle_workers == st.workers) {
            *threads = st.threads;
            return 0;
        }
        if (gh_now() >= deadline)
            return -1;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* n keep-alive requests over `conns` connections, each round one request in flight on
 * every connection (so up to `conns` are served concurrently). */
static int soak_keepalive(int conns, long n, soak_result_t *res)
{
    static int fds[SOAK_MAX_CONNS];
    static const char req[] = "GET /k HTTP/1.1\r\nHost: soak\r\n\r\n";
    int rc = 0;
    for (int i = 0; i < conns; i++)
        fds[i] = -1;
    for (int i = 0; i < conns; i++) {
        fds[i] = th_connect(soak_port);
        if (fds[i] < 0) {
            rc = soak_fail(res, "connect %d failed: %s", i, strerror(errno));
            goto out;
        }
    }
    for (long done = 0; done < n;) {
        int k = n - done < conns ? (int)(n - done) : conns;
        for (int i = 0; i < k; i++)
            if (th_send(fds[i], req, sizeof req - 1) < 0) {
                rc = soak_fail(res, "send failed after %ld requests: %s", done, strerror(errno));
                goto out;
            }
        for (int i = 0; i < k; i++) {
            ssize_t m = th_read_response(fds[i], soak_buf, sizeof soak_buf - 1, SOAK_IO_MS);
            if (m <= 0 || th_status(soak_buf) != 200 || strcmp(th_body(soak_buf), "ok") != 0) {
                rc = soak_fail(res, "request %ld: no 200 \"ok\" (read %ld)", done + i, (long)m);
                goto out;
            }
        }
        done += k;
    }
out:
    for (int i = 0; i < conns; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}

/* n connections, `width` at a time, each hijacked by the handler, answered through the
 * netconn and closed by the handler; the client reads to EOF, then closes. */
static int soak_hijacks(int width, long n, soak_result_t *res)
{
    static int fds[SOAK_MAX_CONNS];
    static const char req[] = "GET /hj HTTP/1.1\r\nHost: soak\r\n\r\n";
    for (long done = 0; done < n;) {
        int k = n - done < width ? (int)(n - done) : width;
        int rc = 0;
        for (int i = 0; i < k; i++)
            fds[i] = -1;
        for (int i = 0; i < k && rc == 0; i++) {
            fds[i] = th_connect(soak_port);
            if (fds[i] < 0 || th_send(fds[i], req, sizeof req - 1) < 0)
                rc = soak_fail(res, "hijack %ld: connect/send failed: %s", done + i,
                               strerror(errno));
        }
        for (int i = 0; i < k && rc == 0; i++) {
            int closed = 0;
            ssize_t m = th_read_all(fds[i], soak_buf, sizeof soak_buf - 1, SOAK_IO_MS, &closed);
            if (m <= 0 || !closed || th_status(soak_buf) != 200 ||
                strcmp(th_body(soak_buf), "hj") != 0)
                rc = soak_fail(res, "hijack %ld: no answer then EOF (read %ld)", done + i, (long)m);
        }
        for (int i = 0; i < k; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        if (rc)
            return rc;
        done += k;
    }
    return 0;
}

static int soak_round(const soak_opts_t *o, long requests, long hijacks, soak_result_t *res,
                      int measure)
{
    gh_time_t t0 = gh_now();
    if (soak_keepalive(o->conns, requests, res) < 0)
        return -1;
    gh_time_t t1 = gh_now();
    if (soak_hijacks(o->conns, hijacks, res) < 0)
        return -1;
    gh_time_t t2 = gh_now();
    if (measure) {
        res->req_secs = (double)(t1 - t0) / GH_SEC;
        res->hj_secs = (double)(t2 - t1) / GH_SEC;
    }
    if (soak_quiesce(10000, &res->threads) < 0)
        return soak_fail(res, "server not quiescent 10 s after the round");
    return 0;
}

/* The objects with pointers of one measurement, by gh type (or GC kind) and size: what
 * a failing bound prints, so that a difference names what grew. */
#define SOAK_HIST 256
typedef struct soak_hist_ent {
    const char *type; /* gh type name, NULL for a foreign GC object */
    int kind;         /* bdwgc kind */
    size_t size;      /* GC_size */
    long n;
} soak_hist_ent_t;
typedef struct soak_hist {
    soak_hist_ent_t e[SOAK_HIST];
    int len, overflow;
} soak_hist_t;

struct soak_walk {
    size_t scanned, scanned_objs;
    soak_hist_t *hist; /* NULL: no histogram */
};

static void soak_hist_add(soak_hist_t *h, const char *type, int kind, size_t size, long n)
{
    for (int i = 0; i < h->len; i++)
        if (h->e[i].type == type && h->e[i].kind == kind && h->e[i].size == size) {
            h->e[i].n += n;
            return;
        }
    if (h->len == SOAK_HIST) {
        h->overflow = 1;
        return;
    }
    h->e[h->len++] = (soak_hist_ent_t){type, kind, size, n};
}

static void soak_walk_cb(void *obj, size_t bytes, void *cd)
{
    struct soak_walk *w = cd;
    int kind = GC_get_kind_and_size(obj, NULL);
    if (kind != 0) { /* 0: PTRFREE, atomic bytes */
        w->scanned += bytes;
        w->scanned_objs++;
        if (w->hist) {
            gh_type_t *t = gh_obj_type((char *)obj + 2 * sizeof(void *)) /* gc/internal.h: two-word header */;
            soak_hist_add(w->hist, t ? t->name : NULL, kind, bytes, 1);
        }
    }
}

/* Print what differs between two histograms (b minus a). */
static void soak_hist_diff(FILE *out, const soak_hist_t *a, const soak_hist_t *b)
{
    static soak_hist_t d;
    memset(&d, 0, sizeof d);
    for (int i = 0; i < b->len; i++)
        soak_hist_add(&d, b->e[i].type, b->e[i].kind, b->e[i].size, b->e[i].n);
    for (int i = 0; i < a->len; i++)
        soak_hist_add(&d, a->e[i].type, a->e[i].kind, a->e[i].size, -a->e[i].n);
    for (int i = 0; i < d.len; i++)
        if (d.e[i].n)
            fprintf(out, "soak: with pointers: %s (kind %d, %zu B): %+ld objects (%+ld B)\n",
                    d.e[i].type ? d.e[i].type : "(not a gh object)", d.e[i].kind, d.e[i].size,
                    d.e[i].n, d.e[i].n * (long)d.e[i].size);
    if (a->overflow || b->overflow || d.overflow)
        fprintf(out, "soak: with pointers: histogram incomplete (over %d kinds)\n", SOAK_HIST);
}

static void *soak_walk_locked(void *cd)
{
    GC_enumerate_reachable_objects_inner(soak_walk_cb, cd);
    return NULL;
}

/* Figures of the heap and descriptors now (after two collections). noinline: its frame
 * lies below the caller's, and gh_gc_collect scrubs below itself. */
__attribute__((noinline)) static void soak_measure_hist(soak_fig_t *f, soak_hist_t *h)
{
    struct soak_walk w = {0, 0, h};
    if (h)
        memset(h, 0, sizeof *h);
    gh_gc_collect(2);
    f->fds = soak_count_fds();
    f->objs = gh_gc_live_objects(&f->live);
    (void)GC_call_with_alloc_lock(soak_walk_locked, &w);
    f->scanned = w.scanned;
    f->scanned_objs = w.scanned_objs;
    f->leaked = gh_fd_leaked();
}

static void soak_measure(soak_fig_t *f) { soak_measure_hist(f, NULL); }

static soak_hist_t soak_hist_up0, soak_hist_up1; /* objects with pointers, server up */

static void *soak_churn_main(void *arg)
{
    long k = (long)(intptr_t)arg;
    for (long i = 0; i < 4096 * (k + 1); i++)
        (void)GC_MALLOC(16 + 16 * (size_t)(i % 8));
    gh_gc_scrub_stack();
    return NULL;
}

/* Figures once the closed server is gone. A stale word (a register or stack slot of a
 * bdwgc frame, docs/DESIGN.md §3.2) can keep a closed server and its arrays reachable for a
 * while; as tests/test-collect.c does, collect again after some garbage was allocated,
 * up to 4 times, until the server's probe says it was reclaimed. The garbage is made
 * on a thread that then exits, so its free lists leave no residue here. Returns 1 if
 * the server was reclaimed. */
__attribute__((noinline)) static int soak_measure_down(soak_fig_t *f)
{
    for (int a = 0; a < 4; a++) {
        if (a) {
            pthread_t t;
            if (gh_thread_start(&t, soak_churn_main, (void *)(intptr_t)a) == 0)
                gh_thread_join(t, NULL);
        }
        soak_measure(f);
        if (gh_probe_reclaimed(soak_srv_probe))
            return 1;
    }
    return 0;
}

static int soak_start(const soak_opts_t *o, soak_result_t *res)
{
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = soak_handler;
    cfg.max_workers = o->max_workers;
    /* Leave the heap to the collector. With the server's default 16 MiB floor it
     * collects rarely, and the soak then ends ~10 KiB up in "objects with pointers",
     * the same every run, while descriptors and gh objects are back to baseline. Most
     * likely bdwgc's finalizer table: many more dead descriptors (each with its backstop
     * finalizer) await collection at once, and the table, a GC object, never shrinks.
     * Not a leak, but it would blur the comparison this soak makes. */
    cfg.gc_heap_min = -1;
    int rc = gh_server_new(&soak_srv, &cfg);
    if (rc == 0)
        rc = gh_server_listen(soak_srv, "127.0.0.1", 0);
    if (rc == 0)
        rc = gh_server_start(soak_srv);
    if (rc < 0)
        return soak_fail(res, "server start failed: %s", gh_err_name(rc));
    soak_port = gh_server_port(soak_srv, 0);
    soak_srv_probe = gh_probe_new(soak_srv);
    return 0;
}

static void soak_stop(soak_result_t *res)
{
    if (!soak_srv)
        return;
    gh_server_stats(soak_srv, &res->st);
    gh_server_close(soak_srv);
    soak_srv = NULL;
}

/*
 * Run the soak. Returns 0 when every request was answered and the figures came back
 * within the bounds; -1 otherwise (res->err says why).
 *
 * Two comparisons, because bdwgc's thread-local free lists count as live: a collection
 * marks every object on them (GC_set_fl_marks) so that the owning thread keeps them, and
 * each worker keeps up to one heap block (4 KiB) per small size class it allocates. Which
 * worker served the last requests changes that residue by several KiB from one round to
 * the next, in atomic objects (request heads, address strings) only.
 *  - Server up, quiescent: descriptors exactly equal, and the objects with pointers
 *    (every gh object: conn, response, Request, contexts, netconn, fd, bufio...) within
 *    SOAK_MAX_GROWTH_SCANNED bytes: typed objects never sit on a thread-local free list,
 *    so this part is exact. Atomic bytes are reported, not bounded.
 *  - Server closed (its threads have exited and handed their free lists back):
 *    descriptors exactly equal and, once both closed servers were reclaimed, the whole
 *    exact live heap within SOAK_MAX_GROWTH_BYTES of the same figure for the warm-up
 *    server, closed the same way.
 * Each step runs on a thread of its own (soak_step), so that neither the measuring
 * thread's stack nor its registers ever held a server or connection pointer.
 */
/* One step of the soak, run on a thread of its own that exits before anything is
 * measured: what its stack and registers last held (the server, a connection) can then
 * pin nothing. The measuring thread never holds a server pointer. */
enum { SOAK_START_WARM, SOAK_SOAK, SOAK_STOP };
typedef struct soak_step {
    const soak_opts_t *o;
    soak_result_t *res;
    int what;
    long wr, wh;
    int rc;
} soak_step_t;

static void *soak_step_main(void *arg)
{
    soak_step_t *st = arg;
    switch (st->what) {
    case SOAK_START_WARM:
        st->rc = soak_start(st->o, st->res);
        /* No collection during the warm-up round: every descriptor finalizer and weak
         * link it registers is still there at its end, so bdwgc's tables reach the
         * size of the most the soak can register between two collections, whenever
         * those come (with several loops and little allocation per request they may
         * come only once or twice in the soak). */
        if (st->rc == 0) {
            GC_disable();
            st->rc = soak_round(st->o, st->wr, st->wh, st->res, 0);
            GC_enable();
        }
        break;
    case SOAK_SOAK:
        st->rc = soak_round(st->o, st->o->requests, st->o->hijacks, st->res, 1);
        break;
    default:
        soak_stop(st->res);
        st->rc = 0;
    }
    gh_gc_scrub_stack();
    return NULL;
}

static int soak_step(soak_step_t *st, int what)
{
    pthread_t t;
    st->what = what;
    st->rc = -1;
    if (gh_thread_start(&t, soak_step_main, st) != 0)
        return soak_fail(st->res, "cannot start a thread");
    gh_thread_join(t, NULL);
    return st->rc;
}

static int soak_run(const soak_opts_t *o, soak_result_t *res)
{
    memset(res, 0, sizeof *res);
    if (o->conns < 1 || o->conns > SOAK_MAX_CONNS)
        return soak_fail(res, "conns must be 1..%d (got %d)", SOAK_MAX_CONNS, o->conns);
    /* Warm-up: the same shape, fewer requests, first on a server that is then closed.
     * As many hijacks as the soak: each leaves a dead descriptor with its backstop
     * finalizer (and a weak link) until the next collection, and a hijack allocates
     * little (~1 KiB), so the soak's hijacks may all fall between two collections: the
     * warm-up, run without collections (soak_step_main), reaches that peak of
     * registrations, and bdwgc's tables their size. */
    soak_step_t st = {o, res, 0, 0, 0, 0};
    st.wr = o->requests < 20L * o->conns ? o->requests : 20L * o->conns;
    st.wh = o->hijacks;
    int rc = soak_step(&st, SOAK_START_WARM);
    soak_step(&st, SOAK_STOP);
    if (rc < 0)
        return rc;
    res->down0_gone = soak_measure_down(&res->down0);
    /* The server under test: warm-up, baseline, soak, figures, close, figures. */
    rc = soak_step(&st, SOAK_START_WARM);
    if (rc == 0) {
        res->threads0 = res->threads;
        soak_measure_hist(&res->up0, &soak_hist_up0);
        rc = soak_step(&st, SOAK_SOAK);
        res->rounds = 1;
    }
    /* The pool grows on demand and never shrinks; each thread it starts costs bdwgc's
     * record of a registered thread (a 1,344 B object with pointers, bdwgc's own) and
     * its thread-local free lists (up to a heap block per size class), both live for
     * as long as the thread runs. That is fixed per-thread state, not growth per request,
     * but it lands in "objects with pointers" when a round starts a thread the warm-up
     * did not (seen in ~1 run in 3 with 3 soaks at once: +1,344 B, up to 9 KiB with a
     * second thread). So when a round started threads, its figures become the baseline
     * and the round runs again: the pool is bounded (max_workers + loops), so this ends;
     * the round compared is then one that started no thread. */
    while (rc == 0 && res->threads > res->threads0 &&
           res->rounds <= o->max_workers + SOAK_MAX_LOOPS) {
        res->threads0 = res->threads;
        soak_measure_hist(&res->up0, &soak_hist_up0);
        rc = soak_step(&st, SOAK_SOAK);
        res->rounds++;
    }
    if (rc == 0) {
        soak_measure_hist(&res->up1, &soak_hist_up1);
        if (getenv("SOAK_HIST"))
            soak_hist_diff(stderr, &soak_hist_up0, &soak_hist_up1);
        if (res->threads > res->threads0)
            rc = soak_fail(res, "the pool still grew after %d rounds (%d -> %d threads)",
                           res->rounds, res->threads0, res->threads);
    }
    soak_step(&st, SOAK_STOP);
    if (rc < 0)
        return rc;
    res->down1_gone = soak_measure_down(&res->down1);
    res->requests = o->requests;
    res->hijacks = o->hijacks;

    if (res->up1.fds != res->up0.fds)
        return soak_fail(res, "open descriptors %ld after the soak, %ld before", res->up1.fds,
                         res->up0.fds);
    if (res->down1.fds != res->down0.fds)
        return soak_fail(res, "open descriptors %ld after close, %ld after the warm-up's",
                         res->down1.fds, res->down0.fds);
    if (res->down1.leaked != res->down0.leaked)
        return soak_fail(res, "gh_fd_leaked %lu after, %lu before", res->down1.leaked,
                         res->down0.leaked);
    if (res->up1.scanned > res->up0.scanned + SOAK_MAX_GROWTH_SCANNED) {
        soak_hist_diff(stderr, &soak_hist_up0, &soak_hist_up1);
        return soak_fail(res, "objects with pointers: %zu B after the soak, %zu B before",
                         res->up1.scanned, res->up0.scanned);
    }
    /* Compared only when both closed servers were reclaimed: in some runs one finished
     * response stays referenced from a word outside gchttp's data (bdwgc's own static
     * data, seen with a debugging walk) through any number of collections, and it
     * keeps its conn and so the whole closed server (~17 KiB) reachable. That is a
     * conservative-GC artefact of one object, not growth; the server-up bound above
     * still holds in those runs (the pinned response's conn graph is ~1 KiB). */
    if (res->down0_gone && res->down1_gone &&
        res->down1.live > res->down0.live + SOAK_MAX_GROWTH_BYTES)
        return soak_fail(res, "live heap after close %zu B, after the warm-up's %zu B",
                         res->down1.live, res->down0.live);
    return 0;
}

static void soak_print_fig(FILE *out, const char *what, const soak_fig_t *a, const soak_fig_t *b)
{
    fprintf(out,
            "soak: %s: descriptors %ld -> %ld; exact live heap %zu B / %zu objects -> %zu B / "
            "%zu objects (%+ld B); with pointers %zu B / %zu objects -> %zu B / %zu objects "
            "(%+ld B); gh_fd_leaked %lu -> %lu\n",
            what, a->fds, b->fds, a->live, a->objs, b->live, b->objs, (long)b->live - (long)a->live,
            a->scanned, a->scanned_objs, b->scanned, b->scanned_objs,
            (long)b->scanned - (long)a->scanned, a->leaked, b->leaked);
}

static void soak_print(FILE *out, const soak_opts_t *o, const soak_result_t *r)
{
    fprintf(out, "soak: %ld keep-alive requests over %d connections in %.2f s: %.0f requests/s\n",
            r->requests, o->conns, r->req_secs, r->req_secs > 0 ? r->requests / r->req_secs : 0);
    fprintf(out, "soak: %ld hijacked-and-closed connections in %.2f s: %.0f connections/s\n",
            r->hijacks, r->hj_secs, r->hj_secs > 0 ? r->hijacks / r->hj_secs : 0);
    soak_print_fig(out, "server up, warm-up -> after the soak", &r->up0, &r->up1);
    fprintf(out, "soak: soak rounds %d (the last compared); server pool threads %d -> %d\n",
            r->rounds, r->threads0, r->threads);
    soak_print_fig(out, "server closed, warm-up server -> this one", &r->down0, &r->down1);
    fprintf(out, "soak: closed servers reclaimed before those figures: %s, %s\n",
            r->down0_gone ? "yes" : "no", r->down1_gone ? "yes" : "no");
    fprintf(out,
            "soak: bounds: descriptors equal; with pointers (server up) +%d B; whole live heap "
            "(server closed, both reclaimed) +%d B\n",
            SOAK_MAX_GROWTH_SCANNED, SOAK_MAX_GROWTH_BYTES);
    fprintf(out,
            "soak: server stats: accepted %lu, requests %lu, bad_requests %lu, hijacked %lu, "
            "closed %lu, open_conns %d, active_conns %d, workers %d, idle_workers %d, "
            "accept_backoffs %lu\n",
            r->st.accepted, r->st.requests, r->st.bad_requests, r->st.hijacked, r->st.closed,
            r->st.open_conns, r->st.active_conns, r->st.workers, r->st.idle_workers,
            r->st.accept_backoffs);
    unsigned long fin = 0;
    unsigned long warn = gh_gc_warnings(&fin);
    fprintf(out, "soak: bdwgc warnings %lu, of which finalization cycles %lu\n", warn, fin);
}

#ifndef SOAK_NO_MAIN

/* The helpers' header declares the suite entry every Check program defines. */
Suite *test_suite(void)
{
    return NULL;
}

static long arg_long(int argc, char **argv, const char *name, long dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return strtol(argv[i + 1], NULL, 10);
    return dflt;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s [-requests N] [-hijacks N] [-conns N] [-workers N]\n"
                   "Keep-alive requests plus hijacked-and-closed connections on loopback; "
                   "exits 1 unless\nopen descriptors return to their baseline and the "
                   "exact live heap to within their bounds (see tests/soak.c).\n",
                   argv[0]);
            return 0;
        }
    gh_gc_init();
    gh_gc_set_finalize_on_demand(1);
    soak_opts_t o = {
        .requests = arg_long(argc, argv, "-requests", 200000),
        .hijacks = arg_long(argc, argv, "-hijacks", 20000),
        .conns = (int)arg_long(argc, argv, "-conns", 20),
        .max_workers = (int)arg_long(argc, argv, "-workers", 8),
        .verbose = 1,
    };
    if (o.requests < 0 || o.hijacks < 0) {
        fprintf(stderr, "soak: counts must be >= 0\n");
        return 2;
    }
    soak_result_t r;
    int rc = soak_run(&o, &r);
    soak_print(stdout, &o, &r);
    if (rc < 0) {
        fprintf(stdout, "soak: FAIL: %s\n", r.err);
        return 1;
    }
    printf("soak: PASS\n");
    return 0;
}
#endif
