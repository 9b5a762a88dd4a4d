/*
 * lib/watch.c: hijacked connections served with callbacks by the event loop that
 * accepted them (gchttp/watch.h).
 *
 * A watch lives on one loop of its server, through lib/loop.h's foreign API: the
 * descriptor is registered in that loop's epoll set with the watch as its object, and
 * each loop has a watch set (wset_t): a traced table by descriptor, which timers,
 * shutdown, close and the counts walk, and one loop timer armed at the soonest watch
 * timer. Work another thread asks for (a close, an abort, a write error, input that
 * came with the upgrade) is posted as a loop timer due at once.
 *
 * Callbacks run on the thread holding the loop's poller role. The loop marks them as
 * it marks inline requests, so a callback that blocks or runs long costs that thread
 * the role and the loop goes on without it (lib/loop.c: the same hand-off as a
 * handler's). A watch's own callbacks never overlap: watch_run lets one thread run
 * them at a time (`running`); what arrives meanwhile is recorded in `pend` and run by
 * that thread once its callback returns, and the descriptor is parked (EPOLLONESHOT, no
 * events) so that the new poller does not spin on a level-triggered event it must not
 * serve.
 *
 * GC: epoll carries descriptor numbers only. The loop's foreign table and the watch
 * set's table keep a watch; a watch traces its netconn, server, set, data, input and
 * queue. The read buffer is per thread (malloc'd bytes, freed at the thread's exit):
 * a deposed thread may still be inside a callback with its bytes while the next poller
 * reads for another watch.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "loop.h"

#define SCRATCH_SIZE 65536   /* the per-thread read buffer */
#define READS_PER_EVENT 8    /* fairness: then the next connection */
#define IOV_MAX_BATCH 16
#define NO_DUE INT64_MAX
#define IN_EVENTS (EPOLLIN | EPOLLRDHUP)

enum { W_OPEN = 0, W_CLOSING, W_DONE };

/* Work for a watch's runner (watch_run). */
enum {
    EV_IN = 1,        /* the descriptor is readable (or hung up) */
    EV_OUT = 2,       /* writable, or an error */
    EV_POST = 4,      /* look at the state: a close to finish, a write error */
    EV_INPUT = 8,     /* offer the input that came with the upgrade */
    EV_TIMER = 16,    /* its timer is due */
    EV_SHUTDOWN = 32, /* the server is shutting down */
    EV_ABORT = 64,    /* end it now with abort_err */
};

/*
 * A queued piece of output.
 * Alloc:     gh_obj_new when a write could not be written whole; buf is atomic (a copy)
 *            or a caller's shared frame.
 * Kept by:   the watch's queue until written.
 * Threads:   under the watch's mu.
 */
typedef struct wq_node {
    struct wq_node *next;
    char *buf;
    /* not traced */
    size_t off, len, cap; /* bytes [off, len) are pending; cap > 0: ours, appendable */
} wq_node_t;

static const size_t wq_ptrs[] = {offsetof(wq_node_t, next), offsetof(wq_node_t, buf)};
static const char *const wq_names[] = {"next", "buf"};
static gh_type_t wq_type = GH_TYPE_INIT_NAMED("watchQueue", wq_node_t, wq_ptrs, wq_names);

typedef struct wset wset_t;

/*
 * watch: see gchttp/watch.h.
 * Alloc:     gh_obj_new in gh_watch_start.
 * Kept by:   its loop's foreign table and its set's table, from gh__watch_go until it
 *            ends or is stopped; the loop's timer list while a post is due; the
 *            program.
 * OS state:  nc's descriptor, closed by watch_finish.
 * Threads:   `mu` guards the queue, state, err, timer_at, pend and the flags; `in`,
 *            `cur` and the callbacks belong to the thread that runs it (`running`).
 */
struct gh_watch_s {
    gh_netconn_t *nc;
    gh_server_t *server;
    wset_t *set;
    void *data;
    const gh_watch_ops_t *ops;
    char *in;              /* atomic: unconsumed input, NULL when none */
    char *cur;             /* the bytes `readable` is looking at, during the call */
    wq_node_t *qhead, *qtail;
    /* not traced */
    pthread_mutex_t mu;
    size_t in_len, in_cap;
    size_t cur_len;
    size_t queued;
    gh_time_t timer_at;
    int fd, loop;
    int err;               /* first write error, finished by the runner */
    int abort_err;         /* what EV_ABORT ends it with */
    unsigned pend;         /* EV_* waiting for the runner */
    uint8_t state;         /* W_*; written under mu, read outside it atomically */
    uint8_t started;       /* registered on its loop (gh__watch_go succeeded) */
    uint8_t out_armed;     /* EPOLLOUT wanted */
    uint8_t parked;        /* interest disabled while another thread runs it */
    uint8_t blocked;       /* a write was short: call writable once drained */
    uint8_t posted;        /* a post timer is due */
    uint8_t timer_due;     /* the timer fired and its callback has not run (a newer
                            * gh_watch_set_timer cancels it) */
    uint8_t running;       /* a thread runs its callbacks */
    uint8_t nc_closed;     /* gh_netconn_close came here once (a second is GH_EBADF) */
    uint8_t given_back;    /* gh_watch_stop gave the netconn back (closes are its own) */
};

static const size_t w_ptrs[] = {offsetof(gh_watch_t, nc),    offsetof(gh_watch_t, server),
                                offsetof(gh_watch_t, set),   offsetof(gh_watch_t, data),
                                offsetof(gh_watch_t, ops),   offsetof(gh_watch_t, in),
                                offsetof(gh_watch_t, cur),   offsetof(gh_watch_t, qhead),
                                offsetof(gh_watch_t, qtail)};
static const char *const w_names[] = {"nc", "server", "set",   "data", "ops",
                                      "in", "cur",    "qhead", "qtail"};
static gh_type_t watch_type = GH_TYPE_INIT_NAMED("watch", gh_watch_t, w_ptrs, w_names);

/*
 * The watches of one loop.
 * Alloc:     gh_obj_new on the loop's first watch; held by the loop (loop->watches).
 * Kept by:   its loop (so by the server); its watches.
 * OS state:  none.
 * Threads:   any, under mu. Lock order: a watch's mu, then a set's, then the loop's
 *            (a set's mu is never held while a watch's is taken).
 */
struct wset {
    gh_watch_t **table;    /* gh__ptrs_new(cap), indexed by descriptor */
    gh__loop_timer_t *tm;  /* the loop timer armed at tm_at, or NULL */
    gh_server_t *server;
    /* not traced */
    pthread_mutex_t mu;
    size_t cap;
    int count;             /* watches in the table */
    int graceful;          /* of which have a shutdown callback */
    gh_time_t tm_at;       /* NO_DUE: no timer armed */
    int loop;
};

static const size_t set_ptrs[] = {offsetof(wset_t, table), offsetof(wset_t, tm),
                                  offsetof(wset_t, server)};
static const char *const set_names[] = {"table", "tm", "server"};
static gh_type_t set_type = GH_TYPE_INIT_NAMED("watchSet", wset_t, set_ptrs, set_names);

static size_t n_watched;            /* atomic: watches on every server's loops */
static __thread gh_watch_t *tls_cur; /* the watch whose callbacks this thread runs */

static void watch_run(gh_watch_t *w, unsigned ev);
static void watch_finish(gh_watch_t *w, int err);

static int is_done(gh_watch_t *w)
{
    return __atomic_load_n(&w->state, __ATOMIC_ACQUIRE) == W_DONE;
}
static void set_state(gh_watch_t *w, int st)
{
    __atomic_store_n(&w->state, (uint8_t)st, __ATOMIC_RELEASE);
}

/* ---- the per-thread read buffer ----------------------------------------------------- */

static pthread_key_t rbuf_key;
static pthread_once_t rbuf_once = PTHREAD_ONCE_INIT;
static __thread char *tls_rbuf;

static void rbuf_key_make(void) { (void)pthread_key_create(&rbuf_key, free); }

/* SCRATCH_SIZE bytes and the spare one (watch.h), or NULL. */
static char *rbuf(void)
{
    if (tls_rbuf)
        return tls_rbuf;
    (void)pthread_once(&rbuf_once, rbuf_key_make);
    char *p = malloc(SCRATCH_SIZE + 1);
    if (p && pthread_setspecific(rbuf_key, p) != 0) {
        free(p);
        p = NULL;
    }
    return tls_rbuf = p;
}

/* ---- the watch set of a loop ------------------------------------------------------- */

static wset_t *wset_of(gh_server_t *s, int i)
{
    gh__loop_t *l = s->loops[i];
    wset_t *set = __atomic_load_n(&l->watches, __ATOMIC_ACQUIRE);
    if (set)
        return set;
    wset_t *n = gh_obj_new(&set_type);
    if (!n)
        return NULL;
    pthread_mutex_init(&n->mu, NULL);
    n->server = s;
    n->loop = i;
    n->tm_at = NO_DUE;
    void *expected = NULL;
    if (__atomic_compare_exchange_n(&l->watches, &expected, n, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return n;
    return expected; /* another thread made it first */
}

/* The set of loop i, if it has one. */
static wset_t *wset_peek(gh_server_t *s, int i)
{
    return __atomic_load_n(&s->loops[i]->watches, __ATOMIC_ACQUIRE);
}

static gh_watch_t *wset_at(wset_t *set, size_t fd)
{
    pthread_mutex_lock(&set->mu);
    gh_watch_t *w = fd < set->cap ? set->table[fd] : NULL;
    pthread_mutex_unlock(&set->mu);
    return w;
}

static void wset_fire(void *obj);

/* Have the set's timer fire by `at`. */
static void wset_arm(wset_t *set, gh_time_t at)
{
    pthread_mutex_lock(&set->mu);
    if (at >= set->tm_at) {
        pthread_mutex_unlock(&set->mu);
        return;
    }
    gh__loop_timer_t *old = NULL, *t = NULL;
    if (gh__loop_timer_add(set->server, set->loop, at, wset_fire, set, &t) == 0) {
        /* Else the armed one stays: a late timer beats none. */
        old = set->tm;
        set->tm = t;
        set->tm_at = at;
    }
    pthread_mutex_unlock(&set->mu);
    if (old)
        (void)gh__loop_timer_cancel(set->server, old); /* GH_ENOENT: it fired already */
}

static void post(gh_watch_t *w, unsigned ev);

/* The set's timer: find the watches whose timers are due (a scan of the table, only
 * when the soonest one is due), post each its timer and arm for the next. Posted, not
 * called: each callback then runs marked on its own (one that blocks costs the loop
 * only itself), and after a watch's callback now running on another thread. */
static void wset_fire(void *obj)
{
    wset_t *set = obj;
    gh_time_t now = gh_now();
    pthread_mutex_lock(&set->mu);
    if (set->tm_at <= now) {
        set->tm = NULL;
        set->tm_at = NO_DUE;
    }
    size_t cap = set->cap;
    pthread_mutex_unlock(&set->mu);
    gh_time_t next = NO_DUE;
    for (size_t fd = 0; fd < cap; fd++) {
        gh_watch_t *w = wset_at(set, fd);
        if (!w)
            continue;
        pthread_mutex_lock(&w->mu);
        gh_time_t at = w->timer_at;
        int fire = at && at <= now && w->state != W_DONE;
        if (fire) {
            w->timer_at = 0;
            w->timer_due = 1;
        } else if (at && at < next) {
            next = at;
        }
        pthread_mutex_unlock(&w->mu);
        if (fire)
            post(w, EV_TIMER);
    }
    if (next != NO_DUE)
        wset_arm(set, next);
}

/* Put w in its set's table; GH_EEXIST if its descriptor is there already. */
static int wset_add(gh_watch_t *w)
{
    wset_t *set = w->set;
    pthread_mutex_lock(&set->mu);
    if ((size_t)w->fd >= set->cap) {
        size_t cap = set->cap ? set->cap : 256;
        while (cap <= (size_t)w->fd)
            cap *= 2;
        gh_watch_t **t = gh__ptrs_new(cap);
        if (!t) {
            pthread_mutex_unlock(&set->mu);
            return GH_ENOMEM;
        }
        if (set->cap)
            memcpy(t, set->table, set->cap * sizeof *t);
        set->table = t;
        set->cap = cap;
    }
    int rc = 0;
    if (set->table[w->fd]) {
        rc = GH_EEXIST;
    } else {
        set->table[w->fd] = w;
        set->count++;
        set->graceful += w->ops->shutdown != NULL;
    }
    pthread_mutex_unlock(&set->mu);
    return rc;
}

static void wset_remove(gh_watch_t *w)
{
    wset_t *set = w->set;
    pthread_mutex_lock(&set->mu);
    if ((size_t)w->fd < set->cap && set->table[w->fd] == w) {
        set->table[w->fd] = NULL;
        set->count--;
        set->graceful -= w->ops->shutdown != NULL;
    }
    pthread_mutex_unlock(&set->mu);
}

/* ---- the loop's side: interest, posts, events ------------------------------------- */

/* The interest w should have. Under w->mu. */
static uint32_t interest(gh_watch_t *w)
{
    return IN_EVENTS | (w->out_armed ? EPOLLOUT : 0);
}

/* Change w's registration on its loop, with the descriptor held open (so that its
 * number is still its own). Under w->mu, with w->started. */
static int fd_mod(gh_watch_t *w, uint32_t events)
{
    gh_fd_t *f = gh_netconn_fd(w->nc);
    if (gh_fd_acquire(f) < 0)
        return GH_EBADF;
    int rc = gh__loop_fd_mod(w->server, w->loop, w->fd, events);
    gh_fd_release(f);
    return rc;
}

/* Output wanted or not: EPOLLOUT in the interest set while something is queued. Under
 * w->mu. */
static void arm_out(gh_watch_t *w, int on)
{
    if (w->out_armed == on || w->state == W_DONE)
        return;
    w->out_armed = (uint8_t)on;
    if (w->started && !w->parked)
        (void)fd_mod(w, interest(w));
}

static void post_fire(void *obj)
{
    gh_watch_t *w = obj;
    pthread_mutex_lock(&w->mu);
    w->posted = 0;
    pthread_mutex_unlock(&w->mu);
    watch_run(w, 0);
}

/* Ask w's runner for ev, from any thread: at once when the calling thread runs w (its
 * loop goes on after the callback), else through a loop timer due now. */
static void post(gh_watch_t *w, unsigned ev)
{
    pthread_mutex_lock(&w->mu);
    w->pend |= ev;
    int need = w->started && !w->running && !w->posted && w->state != W_DONE;
    if (need)
        w->posted = 1;
    pthread_mutex_unlock(&w->mu);
    if (need && gh__loop_timer_add(w->server, w->loop, 0, post_fire, w, NULL) < 0) {
        /* The server closed: its close pass ends every watch (gh__watch_close_all). */
        pthread_mutex_lock(&w->mu);
        w->posted = 0;
        pthread_mutex_unlock(&w->mu);
    }
}

static void on_fd_event(void *obj, int fd, uint32_t events)
{
    (void)fd;
    unsigned ev = 0;
    if (events & (EPOLLOUT | EPOLLERR))
        ev |= EV_OUT;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))
        ev |= EV_IN;
    watch_run(obj, ev);
}

/* ---- output ------------------------------------------------------------------------ */

/* One non-blocking writev. Returns bytes written, 0 when the socket is full, or a
 * negative code. */
static ssize_t send_now(gh_watch_t *w, struct iovec *iov, int n)
{
    gh_fd_t *f = gh_netconn_fd(w->nc);
    if (gh_fd_acquire(f) < 0)
        return GH_EBADF;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t k;
    do
        k = sendmsg(gh_fd_fileno(f), &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (k < 0 && errno == EINTR);
    int e = errno;
    gh_fd_release(f);
    if (k >= 0)
        return k;
    return e == EAGAIN || e == EWOULDBLOCK ? 0 : -e;
}

/* Append bytes to the queue (copying), under w->mu. */
static int enqueue_copy(gh_watch_t *w, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    wq_node_t *t = w->qtail;
    if (t && t->cap && t->cap - t->len >= n) {
        memcpy(t->buf + t->len, p, n);
        t->len += n;
        w->queued += n;
        return 0;
    }
    size_t cap = gh_bytes_good_size(n < 4096 ? 4096 : n);
    if (cap < n)
        cap = n;
    wq_node_t *q = gh_obj_new(&wq_type);
    char *b = gh_bytes_new(cap);
    if (!q || !b)
        return GH_ENOMEM;
    memcpy(b, p, n);
    q->buf = b;
    q->len = n;
    q->cap = cap;
    if (t)
        t->next = q;
    else
        w->qhead = q;
    w->qtail = q;
    w->queued += n;
    return 0;
}

static int enqueue_shared(gh_watch_t *w, const char *p, size_t off, size_t n)
{
    wq_node_t *q = gh_obj_new(&wq_type);
    if (!q)
        return GH_ENOMEM;
    q->buf = (char *)p;
    q->off = off;
    q->len = n;
    if (w->qtail)
        w->qtail->next = q;
    else
        w->qhead = q;
    w->qtail = q;
    w->queued += n - off;
    return 0;
}

/* Write what is queued. Under w->mu. Returns 0 or a negative code. */
static int flush_queue(gh_watch_t *w)
{
    while (w->qhead) {
        struct iovec iov[IOV_MAX_BATCH];
        int n = 0;
        for (wq_node_t *q = w->qhead; q && n < IOV_MAX_BATCH; q = q->next) {
            iov[n].iov_base = q->buf + q->off;
            iov[n].iov_len = q->len - q->off;
            n++;
        }
        ssize_t k = send_now(w, iov, n);
        if (k < 0)
            return (int)k;
        if (k == 0)
            return 0;
        w->queued -= (size_t)k;
        /* k <= the bytes of the nodes just sent, so the queue cannot run out first. */
        while (k > 0 && w->qhead) {
            wq_node_t *q = w->qhead;
            size_t left = q->len - q->off;
            if ((size_t)k < left) {
                q->off += (size_t)k;
                break;
            }
            k -= (ssize_t)left;
            w->qhead = q->next;
            if (!w->qhead)
                w->qtail = NULL;
        }
    }
    return 0;
}

/* Record a write error: the runner ends the watch with it. Under w->mu. */
static void write_failed(gh_watch_t *w, int err)
{
    if (!w->err)
        w->err = err;
    w->qhead = w->qtail = NULL;
    w->queued = 0;
}

/* The common write path: pieces written now while nothing is queued, the rest queued
 * (copied, or referred to when shared). */
static ssize_t watch_writev(gh_watch_t *w, const void *b1, size_t n1, const void *b2, size_t n2,
                            int shared)
{
    pthread_mutex_lock(&w->mu);
    if (w->state != W_OPEN || w->err) {
        pthread_mutex_unlock(&w->mu);
        return GH_EBADF;
    }
    size_t done = 0, total = n1 + n2;
    int rc = 0;
    if (!w->qhead && total) {
        struct iovec iov[2] = {{(void *)b1, n1}, {(void *)b2, n2}};
        int n = 0;
        struct iovec *v = iov;
        if (n1)
            n++;
        else
            v++;
        if (n2)
            n++;
        ssize_t k = send_now(w, v, n);
        if (k < 0)
            rc = (int)k;
        else
            done = (size_t)k;
    }
    if (rc == 0 && done < total) {
        if (shared) {
            rc = enqueue_shared(w, b1, done, n1);
        } else {
            if (done < n1)
                rc = enqueue_copy(w, (const char *)b1 + done, n1 - done);
            size_t d2 = done > n1 ? done - n1 : 0;
            if (rc == 0)
                rc = enqueue_copy(w, (const char *)b2 + d2, n2 - d2);
        }
        if (rc == 0) {
            w->blocked = 1;
            arm_out(w, 1);
        }
    }
    if (rc < 0) {
        write_failed(w, rc);
        pthread_mutex_unlock(&w->mu);
        post(w, EV_POST);
        return rc;
    }
    ssize_t q = (ssize_t)w->queued;
    pthread_mutex_unlock(&w->mu);
    return q;
}

ssize_t gh_watch_write(gh_watch_t *w, const void *buf, size_t n)
{
    return watch_writev(w, buf, n, NULL, 0, 0);
}

ssize_t gh_watch_write2(gh_watch_t *w, const void *b1, size_t n1, const void *b2, size_t n2)
{
    return watch_writev(w, b1, n1, b2, n2, 0);
}

ssize_t gh_watch_write_shared(gh_watch_t *w, const void *bytes, size_t n)
{
    return watch_writev(w, bytes, n, NULL, 0, 1);
}

size_t gh_watch_queued(gh_watch_t *w)
{
    pthread_mutex_lock(&w->mu);
    size_t q = w->queued;
    pthread_mutex_unlock(&w->mu);
    return q;
}

/* ---- the end of a watch ----------------------------------------------------------- */

/* Off the loop and out of the set. */
static void unregister(gh_watch_t *w)
{
    pthread_mutex_lock(&w->mu);
    int was = w->started;
    w->started = 0;
    pthread_mutex_unlock(&w->mu);
    if (!was)
        return;
    /* Off epoll with the descriptor held open, so that the number is still its own; a
     * descriptor closed already (behind the netconn's back) left epoll with its close,
     * and its number may be another's now: only the tables forget it. */
    gh_fd_t *f = gh_netconn_fd(w->nc);
    if (gh_fd_acquire(f) == 0) {
        (void)gh__loop_fd_del(w->server, w->loop, w->fd, w);
        gh_fd_release(f);
    } else {
        (void)gh__loop_fd_forget(w->server, w->loop, w->fd, w);
    }
    wset_remove(w);
    __atomic_sub_fetch(&n_watched, 1, __ATOMIC_RELAXED);
}

/* By w's runner: forget, close, tell. */
static void watch_finish(gh_watch_t *w, int err)
{
    pthread_mutex_lock(&w->mu);
    if (w->state == W_DONE) {
        pthread_mutex_unlock(&w->mu);
        return;
    }
    set_state(w, W_DONE);
    w->qhead = w->qtail = NULL;
    w->queued = 0;
    w->timer_at = 0;
    pthread_mutex_unlock(&w->mu);
    int graceful = w->ops->shutdown != NULL;
    unregister(w);
    w->in = NULL;
    w->in_len = w->in_cap = 0;
    (void)gh_fd_close(gh_netconn_fd(w->nc)); /* not gh_netconn_close: that comes here */
    /* Only now: a gh_netconn_close until here still finds the watch (or, off the table,
     * a closed descriptor) and gets GH_EBADF, never a descriptor closed twice over. */
    gh__netconn_set_watched(w->nc, 0);
    if (w->ops->closed)
        w->ops->closed(w, err, w->data);
    /* A graceful shutdown may be waiting for this one. */
    if (graceful && gh__server_stopping(w->server))
        gh__server_idle_changed(w->server);
}

void gh_watch_close(gh_watch_t *w)
{
    pthread_mutex_lock(&w->mu);
    if (w->state == W_OPEN)
        set_state(w, W_CLOSING);
    pthread_mutex_unlock(&w->mu);
    post(w, EV_POST);
}

/* End w with err: now if the calling thread runs it, else by its runner. */
static void watch_abort(gh_watch_t *w, int err)
{
    pthread_mutex_lock(&w->mu);
    if (w->state != W_DONE) {
        set_state(w, W_CLOSING);
        w->qhead = w->qtail = NULL;
        w->queued = 0;
        if (!(w->pend & EV_ABORT))
            w->abort_err = err;
    }
    pthread_mutex_unlock(&w->mu);
    if (tls_cur == w)
        watch_finish(w, err);
    else
        post(w, EV_ABORT);
}

void gh_watch_abort(gh_watch_t *w) { watch_abort(w, 0); }

/* gh_netconn_close (or gh_server_close_hijacked) on a watched connection: the watch
 * ends as by gh_watch_abort, and its runner closes the descriptor after taking it off
 * the loop. */
int gh__watch_netconn_close(gh_netconn_t *nc)
{
    gh_fd_t *f = gh_netconn_fd(nc);
    int li;
    gh_server_t *s = gh__netconn_server(nc, &li);
    wset_t *set = s && li < s->n_loops ? wset_peek(s, li) : NULL;
    if (!set)
        return gh_fd_close(f); /* not while watched: the watch keeps its server */
    if (gh_fd_acquire(f) < 0)
        return GH_EBADF; /* closed: by its watch, as it ended */
    /* Open, so the number is its own: the entry there is its watch, or none. */
    gh_watch_t *w = wset_at(set, (size_t)gh_fd_fileno(f));
    gh_fd_release(f);
    /* Still flagged but off the table: the watch is ending and closes it itself
     * (gh_watch_stop clears the flag before it leaves the table). */
    if (!w || w->nc != nc)
        return GH_EBADF;
    /* Looked at and marked in one hold: of two racing closes, one ends the watch, and
     * gh_watch_stop either refuses (nc_closed) or has given it back first. */
    pthread_mutex_lock(&w->mu);
    int back = w->given_back;
    int open = w->state != W_DONE && !(w->pend & EV_ABORT) && !w->nc_closed;
    if (!back)
        w->nc_closed = 1;
    pthread_mutex_unlock(&w->mu);
    if (back)
        return gh_fd_close(f); /* the program's again */
    if (!open)
        return GH_EBADF;
    watch_abort(w, 0);
    return 0;
}

/* Why w cannot be given back now (0: it can). Under w->mu. */
static int stop_refused(gh_watch_t *w)
{
    if (w->qhead)
        return GH_EBUSY;
    if (w->state != W_OPEN || w->err || (w->pend & EV_ABORT) || w->nc_closed)
        return GH_EBADF; /* ended or ending: closed, aborted or a write failed */
    return 0;
}

int gh_watch_stop(gh_watch_t *w, size_t consumed, gh_netconn_t **nc, gh_bufrw_t *rw)
{
    *nc = NULL;
    if (tls_cur != w)
        return GH_EINVAL;
    pthread_mutex_lock(&w->mu);
    int rc = stop_refused(w); /* before building the reader and writer */
    pthread_mutex_unlock(&w->mu);
    if (rc < 0)
        return rc;
    /* The pending input: the rest of what `readable` is looking at, or the leftovers. */
    const char *in = w->cur ? w->cur : w->in;
    size_t len = w->cur ? w->cur_len : w->in_len;
    if (consumed > len)
        return GH_EINVAL;
    in += consumed;
    len -= consumed;
    if (rw) {
        gh_reader_t *r = gh_reader_new(w->nc, gh_netconn_read_fn,
                                       len > GH_BUFIO_DEFAULT_SIZE ? len : 0);
        gh_writer_t *wr = gh_writer_new(w->nc, gh_netconn_write_fn, 0);
        if (!r || !wr || gh__reader_unread(r, in, len) < 0)
            return GH_ENOMEM;
        rw->r = r;
        rw->w = wr;
    } else if (len) {
        return GH_EINVAL;
    }
    /* Another thread may have written, closed or aborted meanwhile: looked at again
     * in the same hold that ends the watch. */
    pthread_mutex_lock(&w->mu);
    rc = stop_refused(w);
    if (rc < 0) {
        pthread_mutex_unlock(&w->mu);
        return rc;
    }
    set_state(w, W_DONE);
    w->given_back = 1;
    w->timer_at = 0;
    w->timer_due = 0;
    w->pend = 0;
    pthread_mutex_unlock(&w->mu);
    int graceful = w->ops->shutdown != NULL;
    /* The program's again: cleared while the watch is still on the table, where a
     * racing gh_netconn_close finds it given back (gh__watch_netconn_close). */
    gh__netconn_set_watched(w->nc, 0);
    unregister(w);
    w->in = NULL;
    w->in_len = w->in_cap = 0;
    *nc = w->nc;
    if (graceful && gh__server_stopping(w->server))
        gh__server_idle_changed(w->server);
    return 0;
}

/* ---- input ------------------------------------------------------------------------- */

/* Offer the input to the callback; keep what it leaves. p is the read buffer (n new
 * bytes) or NULL to offer w->in alone. Returns 0, or -1 if the watch ended or was
 * stopped. */
static int deliver(gh_watch_t *w, char *p, size_t n)
{
    if (p && w->in_len) {
        /* Leftovers come first: append the new bytes to them. */
        if (w->in_cap - w->in_len < n) {
            size_t cap = w->in_cap * 2;
            if (cap < w->in_len + n)
                cap = w->in_len + n;
            char *b = gh_bytes_new(cap + 1); /* + the spare byte */
            if (!b)
                return watch_finish(w, GH_ENOMEM), -1;
            memcpy(b, w->in, w->in_len);
            w->in = b;
            w->in_cap = cap;
        }
        memcpy(w->in + w->in_len, p, n);
        w->in_len += n;
        p = NULL;
    }
    char *buf = p ? p : w->in;
    size_t len = p ? n : w->in_len;
    if (len == 0)
        return 0;
    w->cur = buf;
    w->cur_len = len;
    size_t used = w->ops->readable ? w->ops->readable(w, buf, len, w->data) : len;
    w->cur = NULL;
    w->cur_len = 0;
    if (is_done(w))
        return -1;
    if (used > len)
        used = len;
    if (used == len) {
        w->in = NULL; /* drained: no buffer while idle */
        w->in_len = w->in_cap = 0;
        return 0;
    }
    if (!p) {
        memmove(w->in, w->in + used, len - used);
        w->in_len = len - used;
        return 0;
    }
    size_t rest = len - used;
    char *b = gh_bytes_new(rest + 1);
    if (!b)
        return watch_finish(w, GH_ENOMEM), -1;
    memcpy(b, p + used, rest);
    w->in = b;
    w->in_len = w->in_cap = rest;
    return 0;
}

static void on_readable(gh_watch_t *w)
{
    char *buf = rbuf();
    if (!buf)
        return watch_finish(w, GH_ENOMEM);
    gh_fd_t *f = gh_netconn_fd(w->nc);
    for (int i = 0; i < READS_PER_EVENT && !is_done(w); i++) {
        if (gh_fd_acquire(f) < 0)
            return watch_finish(w, GH_EBADF);
        ssize_t k;
        do
            k = recv(gh_fd_fileno(f), buf, SCRATCH_SIZE, MSG_DONTWAIT);
        while (k < 0 && errno == EINTR);
        int e = errno;
        gh_fd_release(f);
        if (k < 0 && (e == EAGAIN || e == EWOULDBLOCK))
            return;
        if (k <= 0)
            return watch_finish(w, k == 0 ? GH_EOF : -e);
        if (deliver(w, buf, (size_t)k) < 0)
            return;
        if (k < SCRATCH_SIZE)
            return;
    }
}

static void on_writable(gh_watch_t *w)
{
    pthread_mutex_lock(&w->mu);
    int rc = flush_queue(w);
    if (rc < 0)
        write_failed(w, rc);
    int drained = !w->qhead;
    if (drained)
        arm_out(w, 0);
    int tell = drained && w->blocked && w->state == W_OPEN && !w->err;
    if (drained)
        w->blocked = 0;
    int end = w->err || (drained && w->state == W_CLOSING);
    int err = w->err;
    pthread_mutex_unlock(&w->mu);
    if (end)
        watch_finish(w, err);
    else if (tell && w->ops->writable)
        w->ops->writable(w, w->data);
}

/* A post: an error or a close to finish. */
static void on_posted(gh_watch_t *w)
{
    pthread_mutex_lock(&w->mu);
    int st = w->state, err = w->err, empty = !w->qhead;
    pthread_mutex_unlock(&w->mu);
    if (st != W_DONE && (err || (st == W_CLOSING && empty)))
        watch_finish(w, err);
}

/* ---- the runner -------------------------------------------------------------------- */

static void handle(gh_watch_t *w, unsigned ev)
{
    if (ev & EV_ABORT) {
        pthread_mutex_lock(&w->mu);
        int err = w->abort_err;
        pthread_mutex_unlock(&w->mu);
        watch_finish(w, err);
        return;
    }
    if (ev & EV_OUT)
        on_writable(w);
    if ((ev & EV_POST) && !is_done(w))
        on_posted(w);
    if ((ev & EV_INPUT) && !is_done(w) && w->in_len)
        deliver(w, NULL, 0);
    if ((ev & EV_IN) && !is_done(w))
        on_readable(w);
    if ((ev & EV_TIMER) && !is_done(w)) {
        /* Still due: a gh_watch_set_timer since it fired (by a callback that ran on
         * another thread meanwhile) replaced it. */
        pthread_mutex_lock(&w->mu);
        int due = w->timer_due;
        w->timer_due = 0;
        pthread_mutex_unlock(&w->mu);
        if (due && w->ops->timer)
            w->ops->timer(w, w->data);
    }
    if ((ev & EV_SHUTDOWN) && !is_done(w) && w->ops->shutdown)
        w->ops->shutdown(w, w->data);
}

/* Run w's callbacks for ev (and whatever else is pending), or leave it to the thread
 * that runs them now. */
static void watch_run(gh_watch_t *w, unsigned ev)
{
    pthread_mutex_lock(&w->mu);
    w->pend |= ev;
    if (w->running) {
        /* That thread was deposed inside a callback (it blocks or runs long): it will
         * run this when the callback returns. Meanwhile the descriptor's events would
         * come back on every wait, level-triggered: park it until then. */
        if ((ev & (EV_IN | EV_OUT)) && !w->parked && w->started && w->state != W_DONE &&
            fd_mod(w, EPOLLONESHOT) == 0)
            w->parked = 1;
        pthread_mutex_unlock(&w->mu);
        return;
    }
    w->running = 1;
    gh_watch_t *outer = tls_cur;
    tls_cur = w;
    for (;;) {
        unsigned e = w->pend;
        w->pend = 0;
        if (!e || w->state == W_DONE)
            break;
        pthread_mutex_unlock(&w->mu);
        handle(w, e);
        pthread_mutex_lock(&w->mu);
    }
    if (w->parked) {
        w->parked = 0;
        if (w->started && w->state != W_DONE)
            (void)fd_mod(w, interest(w));
    }
    w->running = 0;
    tls_cur = outer;
    pthread_mutex_unlock(&w->mu);
}

/* ---- timers ------------------------------------------------------------------------ */

/* Timers fire on a 4 ms grid, never early: at is rounded up, so that timers set for
 * nearby moments share one scan of the table (wset_fire is O(connections)). */
#define TIMER_GRAIN (4 * GH_MSEC)

void gh_watch_set_timer(gh_watch_t *w, gh_time_t at)
{
    if (at > 0 && at < INT64_MAX - TIMER_GRAIN)
        at = (at + TIMER_GRAIN - 1) / TIMER_GRAIN * TIMER_GRAIN;
    pthread_mutex_lock(&w->mu);
    if (w->state != W_DONE) {
        w->timer_at = at;
        w->timer_due = 0;
    }
    int started = w->started;
    pthread_mutex_unlock(&w->mu);
    if (at && started)
        wset_arm(w->set, at); /* before the start, gh__watch_go arms it */
}

/* ---- start ------------------------------------------------------------------------- */

/* Two steps, so that a module can finish its own object (which the callbacks reach)
 * before the loop may call them: gh__watch_new makes the watch, gh__watch_go hands it
 * to its loop. */
int gh__watch_new(gh_netconn_t *nc, gh_reader_t *r, const gh_watch_ops_t *ops, void *data,
                  gh_watch_t **out)
{
    *out = NULL;
    int li;
    gh_server_t *s = gh__netconn_server(nc, &li);
    if (!s || __atomic_load_n(&s->closed, __ATOMIC_SEQ_CST) || li >= s->n_loops)
        return GH_ECLOSED;
    wset_t *set = wset_of(s, li);
    gh_watch_t *w = gh_obj_new(&watch_type);
    if (!set || !w)
        return GH_ENOMEM;
    pthread_mutex_init(&w->mu, NULL);
    w->nc = nc;
    w->server = s;
    w->set = set;
    w->loop = li;
    w->ops = ops;
    w->data = data;
    const char *p;
    size_t have = r ? gh_reader_buffered(r, &p) : 0;
    if (have) {
        w->in = gh_bytes_new(have + 1);
        if (!w->in)
            return GH_ENOMEM;
        memcpy(w->in, p, have);
        w->in_len = w->in_cap = have;
    }
    gh_fd_t *f = gh_netconn_fd(nc);
    if (gh_fd_acquire(f) < 0)
        return GH_EBADF;
    w->fd = gh_fd_fileno(f);
    gh_fd_release(f);
    if (have) {
        gh_reader_consume(r, have);
        gh_reader_release(r);
    }
    *out = w;
    return 0;
}

int gh__watch_go(gh_watch_t *w)
{
    /* The loop never blocks on the descriptor. */
    gh_fd_t *f = gh_netconn_fd(w->nc);
    gh_fd_set_read_deadline(f, 0);
    gh_fd_set_write_deadline(f, 0);
    /* What to post once registered, looked at before: from the registration on, the
     * loop may be consuming the input. */
    unsigned ev = w->in_len ? EV_INPUT : 0;
    /* Upgraded while the server shuts down: told at once, as the others were. */
    if (w->ops->shutdown && gh__server_stopping(w->server))
        ev |= EV_SHUTDOWN;
    int rc = wset_add(w);
    if (rc < 0)
        return rc;
    __atomic_add_fetch(&n_watched, 1, __ATOMIC_RELAXED); /* before anything may end it */
    /* Registered under mu: a write from another thread (after on_open) sees either
     * the registration done or out_armed to carry into it. */
    pthread_mutex_lock(&w->mu);
    w->out_armed = w->qhead != NULL;
    rc = gh__loop_fd_add(w->server, w->loop, w->fd, interest(w), on_fd_event, w);
    if (rc == 0) {
        w->started = 1;
        gh__netconn_set_watched(w->nc, 1);
    }
    gh_time_t at = w->timer_at;
    /* A close, an abort or a failed write before the start waits in pend. */
    ev |= w->pend;
    pthread_mutex_unlock(&w->mu);
    if (rc < 0) {
        wset_remove(w);
        __atomic_sub_fetch(&n_watched, 1, __ATOMIC_RELAXED);
        return rc;
    }
    if (at)
        wset_arm(w->set, at);
    /* A gh_netconn_close that came between the look-up of the descriptor and the flag
     * above closed it behind the watch: end it (unregister only forgets it then). */
    if (gh_fd_is_closed(f))
        watch_abort(w, GH_EBADF);
    else if (ev)
        post(w, ev);
    return 0;
}

int gh_watch_start(gh_netconn_t *nc, gh_reader_t *r, const gh_watch_ops_t *ops, void *data,
                   gh_watch_t **out)
{
    gh_watch_t *w;
    *out = NULL;
    int rc = gh__watch_new(nc, r, ops, data, &w);
    if (rc == 0)
        rc = gh__watch_go(w);
    if (rc == 0)
        *out = w;
    return rc;
}

gh_netconn_t *gh_watch_netconn(gh_watch_t *w) { return w->nc; }
void *gh_watch_data(gh_watch_t *w) { return w->data; }
int gh_watch_loop(const gh_watch_t *w) { return w->loop; }
int gh_watch_on_loop(void) { return tls_cur != NULL; }
size_t gh_watch_count(void) { return __atomic_load_n(&n_watched, __ATOMIC_RELAXED); }
int gh_watch_loop_threads(void) { return 0; }

/* ---- the server's side (lib/server.c) ---------------------------------------------- */

/* The watches of set, each in turn (those added meanwhile may be missed; the caller
 * knows why that is fine), as fn(w, arg). */
static void wset_each(wset_t *set, void (*fn)(gh_watch_t *w, unsigned arg), unsigned arg)
{
    pthread_mutex_lock(&set->mu);
    size_t cap = set->cap;
    pthread_mutex_unlock(&set->mu);
    for (size_t fd = 0; fd < cap; fd++) {
        gh_watch_t *w = wset_at(set, fd);
        if (w)
            fn(w, arg);
    }
}

static void shutdown_one(gh_watch_t *w, unsigned arg)
{
    (void)arg;
    if (w->ops->shutdown)
        post(w, EV_SHUTDOWN);
}

/* gh_server_shutdown began (stopping is set: later watches are told at their start). */
void gh__watch_shutdown(gh_server_t *s)
{
    for (int i = 0; i < s->n_loops; i++) {
        wset_t *set = wset_peek(s, i);
        if (set)
            wset_each(set, shutdown_one, 0);
    }
}

/* Watches with a shutdown callback still open on s, but the calling thread's own (a
 * shutdown from a callback does not wait for itself). */
int gh__watch_lingering(gh_server_t *s)
{
    int n = 0;
    for (int i = 0; i < s->n_loops; i++) {
        wset_t *set = wset_peek(s, i);
        if (!set)
            continue;
        pthread_mutex_lock(&set->mu);
        n += set->graceful;
        pthread_mutex_unlock(&set->mu);
    }
    gh_watch_t *self = tls_cur;
    if (self && self->server == s && self->ops->shutdown && !is_done(self))
        n--;
    return n;
}

static void close_one(gh_watch_t *w, unsigned arg)
{
    (void)arg;
    /* Its runner, if a thread still runs it, ends it when its callback returns. */
    pthread_mutex_lock(&w->mu);
    int mine = w->state != W_DONE;
    if (mine) {
        set_state(w, W_CLOSING);
        w->qhead = w->qtail = NULL;
        w->queued = 0;
        if (!(w->pend & EV_ABORT))
            w->abort_err = GH_ECLOSED;
    }
    pthread_mutex_unlock(&w->mu);
    if (mine)
        watch_run(w, EV_ABORT);
}

/* gh_server_close, once the loops have stopped: end every watch left (GH_ECLOSED),
 * on the calling thread. A watch cannot start from now on (its loop is closed). */
void gh__watch_close_all(gh_server_t *s)
{
    for (int i = 0; i < s->n_loops; i++) {
        wset_t *set = wset_peek(s, i);
        if (set)
            wset_each(set, close_one, 0);
    }
}

int gh__watch_loop_count(gh_server_t *s, int i)
{
    wset_t *set = wset_peek(s, i);
    if (!set)
        return 0;
    pthread_mutex_lock(&set->mu);
    int n = set->count;
    pthread_mutex_unlock(&set->mu);
    return n;
}
