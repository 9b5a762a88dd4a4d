/*
 * lib/watch.c: the watch loop that serves hijacked connections with callbacks
 * (gchttp/watch.h).
 *
 * Internal interface, so that moving watches onto the server's own event loops is a
 * local change: wloop_get() gives the loop a new watch goes to; wloop_add/wloop_del put
 * a descriptor in and out of its epoll set and connection table; wloop_post hands a
 * watch to the loop's thread; wloop_kick wakes it. Today there is one loop, a
 * GC-registered thread started on first use.
 *
 * GC: epoll_event.data holds the descriptor number only. The loop object is held by a
 * static pointer (a root) and traces its connection table (gh_ptrs_new) and its
 * pending list; a watch traces its netconn, data, input buffer and output queue.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

int gh__watch_new(gh_netconn_t *nc, gh_reader_t *r, const gh_watch_ops_t *ops, void *data,
                  gh_watch_t **out);
int gh__watch_go(gh_watch_t *w);

#define SCRATCH_SIZE 65536   /* the loop's read buffer */
#define READS_PER_EVENT 8    /* fairness: then the next connection */
#define IOV_MAX_BATCH 16
#define KICK_KEY UINT64_MAX  /* epoll data of the loop's eventfd */
#define NO_DUE INT64_MAX

enum { W_OPEN = 0, W_CLOSING, W_DONE };

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

typedef struct wloop wloop_t;

/*
 * watch: see gchttp/watch.h.
 * Alloc:     gh_obj_new in gh_watch_start.
 * Kept by:   loop->table[fd] until it ends or is stopped; loop->pending while posted;
 *            the program.
 * OS state:  nc's descriptor, closed by watch_finish on the loop's thread.
 * Threads:   `mu` guards the queue, state, err and timer_at; `in` and the callbacks
 *            belong to the loop's thread.
 */
struct gh_watch_s {
    gh_netconn_t *nc;
    wloop_t *loop;
    void *data;
    const gh_watch_ops_t *ops;
    char *in;              /* atomic: unconsumed input, NULL when none */
    char *cur;             /* the bytes `readable` is looking at, during the call */
    wq_node_t *qhead, *qtail;
    gh_watch_t *pnext;     /* loop->pending list */
    /* not traced */
    pthread_mutex_t mu;
    size_t in_len, in_cap;
    size_t cur_len;
    size_t queued;
    gh_time_t timer_at;
    int fd;
    int err;               /* first write error, finished by the loop */
    uint8_t state;         /* W_* */
    uint8_t out_armed;     /* EPOLLOUT is in the interest set */
    uint8_t blocked;       /* a write was short: call writable once drained */
    uint8_t posted;        /* on loop->pending (loop->mu) */
};

static const size_t w_ptrs[] = {offsetof(gh_watch_t, nc),     offsetof(gh_watch_t, loop),
                                offsetof(gh_watch_t, data),   offsetof(gh_watch_t, ops),
                                offsetof(gh_watch_t, in),     offsetof(gh_watch_t, qhead),
                                offsetof(gh_watch_t, qtail),  offsetof(gh_watch_t, pnext),
                                offsetof(gh_watch_t, cur)};
static const char *const w_names[] = {"nc",    "loop",  "data",  "ops", "in",
                                      "qhead", "qtail", "pnext", "cur"};
static gh_type_t watch_type = GH_TYPE_INIT_NAMED("watch", gh_watch_t, w_ptrs, w_names);

/*
 * The loop.
 * Alloc:     once, gh_obj_new; held by `the_loop` (static, a root) for the process.
 * OS state:  epfd and kick (eventfd), never closed; scratch is malloc'd bytes.
 * Threads:   its thread runs callbacks; `mu` guards table, pending and next_due.
 */
struct wloop {
    gh_watch_t **table;    /* gh_ptrs_new(cap), indexed by descriptor */
    gh_watch_t *pending;   /* posted watches (linked through pnext) */
    /* not traced */
    char *scratch;         /* malloc'd, SCRATCH_SIZE; only bytes */
    pthread_mutex_t mu;
    size_t cap, count;
    gh_time_t next_due;    /* earliest timer, NO_DUE */
    pthread_t thread;
    int epfd, kick;
};

static const size_t l_ptrs[] = {offsetof(wloop_t, table), offsetof(wloop_t, pending)};
static const char *const l_names[] = {"table", "pending"};
static gh_type_t loop_type = GH_TYPE_INIT_NAMED("watchLoop", wloop_t, l_ptrs, l_names);

static wloop_t *the_loop;
static pthread_mutex_t loop_init_mu = PTHREAD_MUTEX_INITIALIZER;
static int loop_threads;
static __thread int on_loop;

static void *loop_main(void *arg);

/* ---- the internal loop interface ----------------------------------------------------- */

static wloop_t *wloop_get(void)
{
    wloop_t *l = __atomic_load_n(&the_loop, __ATOMIC_ACQUIRE);
    if (l)
        return l;
    pthread_mutex_lock(&loop_init_mu);
    l = the_loop;
    if (!l) {
        l = gh_obj_new(&loop_type);
        char *scratch = malloc(SCRATCH_SIZE + 1); /* + the spare byte (watch.h) */
        if (!l || !scratch) {
            free(scratch);
            pthread_mutex_unlock(&loop_init_mu);
            return NULL;
        }
        pthread_mutex_init(&l->mu, NULL);
        l->scratch = scratch;
        l->next_due = NO_DUE;
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        l->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KICK_KEY};
        if (l->epfd < 0 || l->kick < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->kick, &ev) < 0 ||
            gh__thread_start_quiet(&l->thread, loop_main, l) != 0) {
            if (l->epfd >= 0)
                close(l->epfd);
            if (l->kick >= 0)
                close(l->kick);
            free(scratch);
            pthread_mutex_unlock(&loop_init_mu);
            return NULL;
        }
        loop_threads = 1;
        __atomic_store_n(&the_loop, l, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&loop_init_mu);
    return l;
}

static void wloop_kick(wloop_t *l)
{
    uint64_t one = 1;
    ssize_t k;
    do
        k = write(l->kick, &one, sizeof one);
    while (k < 0 && errno == EINTR);
}

/* Hand w to the loop's thread (it looks at w's state there). Any thread. */
static void wloop_post(wloop_t *l, gh_watch_t *w)
{
    pthread_mutex_lock(&l->mu);
    int first = !w->posted;
    if (first) {
        w->posted = 1;
        w->pnext = l->pending;
        l->pending = w;
    }
    pthread_mutex_unlock(&l->mu);
    if (first && !on_loop)
        wloop_kick(l);
}

static int wloop_add(wloop_t *l, gh_watch_t *w)
{
    pthread_mutex_lock(&l->mu);
    if ((size_t)w->fd >= l->cap) {
        size_t cap = l->cap ? l->cap : 1024;
        while (cap <= (size_t)w->fd)
            cap *= 2;
        gh_watch_t **t = gh__ptrs_new(cap);
        if (!t) {
            pthread_mutex_unlock(&l->mu);
            return GH_ENOMEM;
        }
        if (l->cap)
            memcpy(t, l->table, l->cap * sizeof *t);
        l->table = t;
        l->cap = cap;
    }
    l->table[w->fd] = w;
    l->count++;
    pthread_mutex_unlock(&l->mu);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)w->fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0) {
        int e = -errno;
        pthread_mutex_lock(&l->mu);
        l->table[w->fd] = NULL;
        l->count--;
        pthread_mutex_unlock(&l->mu);
        return e;
    }
    return 0;
}

static void wloop_del(wloop_t *l, gh_watch_t *w)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    pthread_mutex_lock(&l->mu);
    if ((size_t)w->fd < l->cap && l->table[w->fd] == w) {
        l->table[w->fd] = NULL;
        l->count--;
    }
    pthread_mutex_unlock(&l->mu);
}

static gh_watch_t *wloop_lookup(wloop_t *l, int fd)
{
    pthread_mutex_lock(&l->mu);
    gh_watch_t *w = (size_t)fd < l->cap ? l->table[fd] : NULL;
    pthread_mutex_unlock(&l->mu);
    return w;
}

/* The interest set: input always, output while something is queued. Under w->mu. */
static void arm_out(gh_watch_t *w, int on)
{
    if (w->out_armed == on || w->state == W_DONE)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0),
                             .data.u64 = (uint64_t)w->fd};
    if (epoll_ctl(w->loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0)
        w->out_armed = (uint8_t)on;
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

/* Record a write error: the loop ends the watch with it. Under w->mu. */
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
        wloop_post(w->loop, w);
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

/* On the loop's thread: forget, close, tell. */
static void watch_finish(gh_watch_t *w, int err)
{
    pthread_mutex_lock(&w->mu);
    if (w->state == W_DONE) {
        pthread_mutex_unlock(&w->mu);
        return;
    }
    w->state = W_DONE;
    w->qhead = w->qtail = NULL;
    w->queued = 0;
    w->timer_at = 0;
    pthread_mutex_unlock(&w->mu);
    wloop_del(w->loop, w);
    w->in = NULL;
    w->in_len = w->in_cap = 0;
    gh_netconn_close(w->nc);
    if (w->ops->closed)
        w->ops->closed(w, err, w->data);
}

void gh_watch_close(gh_watch_t *w)
{
    pthread_mutex_lock(&w->mu);
    if (w->state == W_OPEN)
        w->state = W_CLOSING;
    pthread_mutex_unlock(&w->mu);
    wloop_post(w->loop, w);
}

void gh_watch_abort(gh_watch_t *w)
{
    pthread_mutex_lock(&w->mu);
    if (w->state != W_DONE) {
        w->state = W_CLOSING;
        w->qhead = w->qtail = NULL;
        w->queued = 0;
    }
    pthread_mutex_unlock(&w->mu);
    if (on_loop)
        watch_finish(w, 0);
    else
        wloop_post(w->loop, w);
}

int gh_watch_stop(gh_watch_t *w, size_t consumed, gh_netconn_t **nc, gh_bufrw_t *rw)
{
    *nc = NULL;
    if (!on_loop)
        return GH_EINVAL;
    pthread_mutex_lock(&w->mu);
    int st = w->state, busy = w->qhead != NULL;
    pthread_mutex_unlock(&w->mu);
    if (st == W_DONE)
        return GH_EBADF;
    if (busy)
        return GH_EBUSY;
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
    pthread_mutex_lock(&w->mu);
    w->state = W_DONE;
    w->timer_at = 0;
    pthread_mutex_unlock(&w->mu);
    wloop_del(w->loop, w);
    w->in = NULL;
    w->in_len = w->in_cap = 0;
    *nc = w->nc;
    return 0;
}

/* ---- input ------------------------------------------------------------------------- */

/* Offer the input to the callback; keep what it leaves. p is scratch (n new bytes) or
 * NULL to offer w->in alone. Returns 0, or -1 if the watch ended or was stopped. */
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
    if (w->state == W_DONE)
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

static void on_readable(wloop_t *l, gh_watch_t *w)
{
    gh_fd_t *f = gh_netconn_fd(w->nc);
    for (int i = 0; i < READS_PER_EVENT && w->state != W_DONE; i++) {
        if (gh_fd_acquire(f) < 0)
            return watch_finish(w, GH_EBADF);
        ssize_t k;
        do
            k = recv(gh_fd_fileno(f), l->scratch, SCRATCH_SIZE, MSG_DONTWAIT);
        while (k < 0 && errno == EINTR);
        int e = errno;
        gh_fd_release(f);
        if (k < 0 && (e == EAGAIN || e == EWOULDBLOCK))
            return;
        if (k <= 0)
            return watch_finish(w, k == 0 ? GH_EOF : -e);
        if (deliver(w, l->scratch, (size_t)k) < 0)
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

/* A posted watch: an error or a close to finish, or input to offer. */
static void on_posted(gh_watch_t *w)
{
    pthread_mutex_lock(&w->mu);
    int st = w->state, err = w->err, empty = !w->qhead;
    pthread_mutex_unlock(&w->mu);
    if (st == W_DONE)
        return;
    if (err || (st == W_CLOSING && empty)) {
        watch_finish(w, err);
        return;
    }
    if (w->in_len)
        deliver(w, NULL, 0);
}

/* ---- timers ------------------------------------------------------------------------ */

/* Timers fire on a 4 ms grid, never early: at is rounded up, so that timers set for
 * nearby moments share one scan of the table (run_timers is O(connections)). */
#define TIMER_GRAIN (4 * GH_MSEC)

void gh_watch_set_timer(gh_watch_t *w, gh_time_t at)
{
    if (at > 0 && at < INT64_MAX - TIMER_GRAIN)
        at = (at + TIMER_GRAIN - 1) / TIMER_GRAIN * TIMER_GRAIN;
    pthread_mutex_lock(&w->mu);
    if (w->state != W_DONE)
        w->timer_at = at;
    pthread_mutex_unlock(&w->mu);
    if (!at)
        return;
    wloop_t *l = w->loop;
    pthread_mutex_lock(&l->mu);
    int sooner = at < l->next_due;
    if (sooner)
        l->next_due = at;
    pthread_mutex_unlock(&l->mu);
    if (sooner && !on_loop)
        wloop_kick(l);
}

/* Fire due timers: a scan of the table, only when the earliest timer is due. */
static void run_timers(wloop_t *l)
{
    gh_time_t now = gh_now();
    pthread_mutex_lock(&l->mu);
    if (now < l->next_due) {
        pthread_mutex_unlock(&l->mu);
        return;
    }
    l->next_due = NO_DUE;
    size_t cap = l->cap;
    pthread_mutex_unlock(&l->mu);
    gh_time_t next = NO_DUE;
    for (size_t fd = 0; fd < cap; fd++) {
        gh_watch_t *w = wloop_lookup(l, (int)fd);
        if (!w)
            continue;
        pthread_mutex_lock(&w->mu);
        gh_time_t at = w->timer_at;
        int fire = at && at <= now && w->state != W_DONE;
        if (fire)
            w->timer_at = 0;
        else if (at && at < next)
            next = at;
        pthread_mutex_unlock(&w->mu);
        if (fire && w->ops->timer)
            w->ops->timer(w, w->data);
    }
    pthread_mutex_lock(&l->mu);
    if (next < l->next_due)
        l->next_due = next;
    pthread_mutex_unlock(&l->mu);
}

/* ---- the loop's thread ------------------------------------------------------------- */

static void *loop_main(void *arg)
{
    wloop_t *l = arg;
    on_loop = 1;
    struct epoll_event ev[64];
    int dirty = 0;
    for (;;) {
        if (dirty) {
            /* Stale slots of finished callbacks would keep ended watches alive. */
            gh_gc_scrub_stack();
            dirty = 0;
        }
        pthread_mutex_lock(&l->mu);
        gh_time_t due = l->next_due;
        pthread_mutex_unlock(&l->mu);
        int timeout = -1;
        if (due != NO_DUE) {
            gh_time_t left = due - gh_now();
            timeout = left <= 0 ? 0 : left / GH_MSEC + 1 > INT_MAX ? INT_MAX : (int)(left / GH_MSEC + 1);
        }
        int n = epoll_wait(l->epfd, ev, 64, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue; /* the collector's stop-the-world signals */
            abort();      /* EBADF/EINVAL on our own epoll set: a bug */
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].data.u64 == KICK_KEY) {
                uint64_t v;
                ssize_t k;
                do
                    k = read(l->kick, &v, sizeof v);
                while (k < 0 && errno == EINTR);
                continue;
            }
            gh_watch_t *w = wloop_lookup(l, (int)ev[i].data.u64);
            if (!w)
                continue;
            dirty = 1;
            if (ev[i].events & (EPOLLOUT | EPOLLERR))
                on_writable(w);
            if (w->state != W_DONE && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)))
                on_readable(l, w);
        }
        /* Posted watches, in any order. */
        for (;;) {
            pthread_mutex_lock(&l->mu);
            gh_watch_t *w = l->pending;
            if (w) {
                l->pending = w->pnext;
                w->pnext = NULL;
                w->posted = 0;
            }
            pthread_mutex_unlock(&l->mu);
            if (!w)
                break;
            dirty = 1;
            on_posted(w);
        }
        run_timers(l);
    }
    return NULL;
}

/* ---- start ------------------------------------------------------------------------- */

/* Two steps, so that a module can finish its own object (which the callbacks reach)
 * before the loop may call them: gh__watch_new makes the watch, gh__watch_go hands it
 * to the loop. */
int gh__watch_new(gh_netconn_t *nc, gh_reader_t *r, const gh_watch_ops_t *ops, void *data,
                  gh_watch_t **out)
{
    *out = NULL;
    wloop_t *l = wloop_get();
    if (!l)
        return GH_ENOMEM;
    gh_watch_t *w = gh_obj_new(&watch_type);
    if (!w)
        return GH_ENOMEM;
    pthread_mutex_init(&w->mu, NULL);
    w->nc = nc;
    w->loop = l;
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
    int rc = wloop_add(w->loop, w);
    if (rc < 0)
        return rc;
    if (w->in_len)
        wloop_post(w->loop, w);
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
int gh_watch_on_loop(void) { return on_loop; }

size_t gh_watch_count(void)
{
    wloop_t *l = __atomic_load_n(&the_loop, __ATOMIC_ACQUIRE);
    if (!l)
        return 0;
    pthread_mutex_lock(&l->mu);
    size_t n = l->count;
    pthread_mutex_unlock(&l->mu);
    return n;
}

int gh_watch_loop_threads(void) { return __atomic_load_n(&loop_threads, __ATOMIC_ACQUIRE); }
