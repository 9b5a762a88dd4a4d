/*
 * examples/longpoll.c: long polling, and noticing at once that the client went away.
 *
 *   examples/longpoll --listen 127.0.0.1:PORT [--timeout MS] [--close-notify]
 *
 *   GET  /wait             waits for the next POST /publish and answers its body (200),
 *                          or 204 after --timeout ms
 *   POST /wait-with-body   the same, leaving its request body unread
 *   POST /publish          delivers its body to every waiter; answers "delivered N"
 *   GET  /stats            "waiting N", "gone N", "delivered N", "timeouts N"
 *
 * A waiter blocks in gh_ctx_wait on a context of its own, a child of the request
 * context (or, with --close-notify, of the close-notify context). Publishing cancels
 * it with GH_ECANCELED; a client that disconnects cancels its parent with
 * GH_ECONNRESET, which the server sees through EPOLLRDHUP while the handler waits,
 * without a read in flight and whether or not a body is still unread. The handler then
 * logs "longpoll: client gone after X ms" to stderr and returns without answering.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gchttp.h>

#define MAX_MESSAGE (1u << 20)

/**
 * One waiting request.
 * Alloc:     gh_obj_new(&waiter_type) on the handler's stack frame; traced fields wake,
 *            msg, prev, next; msg is atomic bytes.
 * Lifetime:  linked into `waiters` (a static root) while its handler waits.
 * Threads:   the handler's thread; publishers under `mu`.
 */
typedef struct waiter {
    gh_ctx_t *wake; /*< cancelled by a publisher, or through its parent */
    char *msg;      /*< the published message, set before `wake` is cancelled */
    struct waiter *prev, *next;
    size_t len;
} waiter_t;

static const size_t waiter_ptrs[] = {offsetof(waiter_t, wake), offsetof(waiter_t, msg),
                                     offsetof(waiter_t, prev), offsetof(waiter_t, next)};
static gh_type_t waiter_type = GH_TYPE_INIT("waiter", waiter_t, waiter_ptrs);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static waiter_t *waiters; /* doubly linked; the static keeps every waiter reachable */
static int n_waiting;
static unsigned long n_gone, n_delivered, n_timeouts;
static gh_time_t timeout = 30 * GH_SEC;
static int use_close_notify;
static int stopping;

static void text(gh_response_t *w, int status, const char *s)
{
    gh_response_header_set(w, "Content-Type", "text/plain; charset=utf-8");
    gh_response_write_header(w, status);
    gh_response_puts(w, s);
}

static void on_wait(gh_response_t *w, gh_request_t *r)
{
    gh_ctx_t *parent = use_close_notify ? gh_response_close_notify(w) : gh_request_context(r);
    waiter_t *me = gh_obj_new(&waiter_type);
    if (!parent || !me || !(me->wake = gh_ctx_new(parent))) {
        text(w, 503, "out of memory\n");
        return;
    }
    gh_time_t t0 = gh_now();
    pthread_mutex_lock(&mu);
    me->next = waiters;
    if (waiters)
        waiters->prev = me;
    waiters = me;
    n_waiting++;
    pthread_mutex_unlock(&mu);

    int why = gh_ctx_wait(me->wake, t0 + timeout);

    pthread_mutex_lock(&mu);
    if (me->prev)
        me->prev->next = me->next;
    else
        waiters = me->next;
    if (me->next)
        me->next->prev = me->prev;
    n_waiting--;
    char *msg = me->msg;
    if (!msg && why == 0)
        n_timeouts++;
    else if (!msg && !stopping)
        n_gone++;
    pthread_mutex_unlock(&mu);

    if (msg) {
        gh_response_header_set(w, "Content-Type", "application/octet-stream");
        gh_response_write(w, msg, me->len);
    } else if (why == 0) {
        gh_response_write_header(w, 204);
    } else if (__atomic_load_n(&stopping, __ATOMIC_SEQ_CST)) {
        text(w, 503, "shutting down\n");
    } else {
        /* GH_ECONNRESET: nobody is left to answer. */
        fprintf(stderr, "longpoll: client gone after %lld ms (%s, %s %s)\n",
                (long long)((gh_now() - t0) / GH_MSEC), gh_err_name(why), gh_request_method(r),
                gh_request_target(r));
    }
}

static void on_publish(gh_response_t *w, gh_request_t *r)
{
    char *body;
    ssize_t n = gh_request_read_all(r, MAX_MESSAGE, &body);
    if (n < 0) {
        text(w, n == GH_EBODYLIMIT ? 413 : 400, "cannot read the message\n");
        return;
    }
    int count = 0;
    pthread_mutex_lock(&mu);
    for (waiter_t *x = waiters; x; x = x->next) {
        if (x->msg || gh_ctx_done(x->wake))
            continue;
        x->msg = body; /* shared: nobody writes to it */
        x->len = (size_t)n;
        gh_ctx_cancel(x->wake, GH_ECANCELED); /* no callbacks: safe under mu */
        count++;
    }
    n_delivered += (unsigned long)count;
    pthread_mutex_unlock(&mu);
    gh_response_printf(w, "delivered %d\n", count);
}

static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    const char *m = gh_request_method(r), *t = gh_request_target(r);
    if (!strcmp(t, "/wait") && !strcmp(m, "GET")) {
        on_wait(w, r);
    } else if (!strcmp(t, "/wait-with-body") && !strcmp(m, "POST")) {
        on_wait(w, r); /* the body stays unread */
    } else if (!strcmp(t, "/publish") && !strcmp(m, "POST")) {
        on_publish(w, r);
    } else if (!strcmp(t, "/stats") && !strcmp(m, "GET")) {
        pthread_mutex_lock(&mu);
        gh_response_printf(w, "waiting %d\ngone %lu\ndelivered %lu\ntimeouts %lu\n", n_waiting,
                           n_gone, n_delivered, n_timeouts);
        pthread_mutex_unlock(&mu);
    } else {
        text(w, 404, "GET /wait, POST /wait-with-body, POST /publish, GET /stats\n");
    }
}

#include "ex-common.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: longpoll [--listen HOST:PORT] [--timeout MS] [--close-notify]\n"
               "Long polling: GET /wait (or POST /wait-with-body, whose body is never read)\n"
               "blocks until POST /publish delivers a message, which it answers; a client\n"
               "that disconnects while waiting is noticed at once and logged to stderr as\n"
               "\"longpoll: client gone after X ms\". GET /stats shows the counters.\n"
               "  --listen HOST:PORT  address to listen on (default 127.0.0.1:8080)\n"
               "  --timeout MS        answer 204 after waiting this long (default 30000)\n"
               "  --close-notify      wait on the close-notify context instead of the request's\n"
               "Prints \"listening on port N\" on stdout; serves until SIGINT/SIGTERM.\n");
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8080";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            listen = argv[++i];
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            timeout = atoll(argv[++i]) * GH_MSEC;
        } else if (!strcmp(argv[i], "--close-notify")) {
            use_close_notify = 1;
        } else {
            usage(stderr);
            return 2;
        }
    }
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = on_request;
    /* Waiters hold workers: allow plenty. */
    cfg.max_workers = 256;
    gh_server_t *srv = ex_start("longpoll", &cfg, listen, NULL);
    if (!srv)
        return 1;
    signal_next();
    /* Wake every waiter (503) so that the graceful shutdown need not wait for them. */
    pthread_mutex_lock(&mu);
    __atomic_store_n(&stopping, 1, __ATOMIC_SEQ_CST);
    for (waiter_t *x = waiters; x; x = x->next)
        gh_ctx_cancel(x->wake, GH_ECANCELED);
    pthread_mutex_unlock(&mu);
    gh_server_shutdown(srv, 5 * GH_SEC);
    return 0;
}
