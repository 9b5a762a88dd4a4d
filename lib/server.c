/*
 * lib/server.c: listeners, the poller, the thread pool, timers, shutdown.
 *
 * The poller owns every connection that waits for bytes: new ones, idle keep-alive
 * ones, and ones whose request head is still arriving. It reads heads without
 * blocking, so a client trickling its headers (slowloris) costs a table slot and a
 * timer, never a thread.
 *
 * A complete head is served by the thread that read it, right there: most handlers
 * answer in microseconds, and a batch of ready connections is then served with no
 * thread hand-over and no epoll_ctl at all (an event loop's cost). The poller is a
 * role, not a thread: a monitor watches for a handler that runs longer than
 * handoff_timeout (blocked on I/O, or busy), and then gives the role to another
 * thread of the pool, which goes on with the rest of the batch while the first one
 * finishes its request as a plain worker (Go's sysmon retaking a P from a goroutine
 * stuck in a system call). A blocking handler thus delays other connections by one or
 * two handoff periods, and holds a thread only while it blocks.
 *
 * GC visibility: epoll_event.data is invisible to the collector, so it carries only
 * the descriptor number and the connection id; the connection itself is held by
 * server->conns, a traced array indexed by descriptor. The queue of connections
 * waiting for a worker is a traced ring too.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gc/gc.h>

#include "internal.h"

#define GH__MAX_LISTENERS 8
#define GH__TAG_LISTENER (1ULL << 63)
#define GH__TAG_WAKE (1ULL << 62)
#define GH__LINGER_NS (500 * GH_MSEC)
#define GH__BATCH 64
#define GH__HANDOFF_DEFAULT (1 * GH_MSEC)
/* Requests served in a row on one connection by the poller before the rest of its
 * pipeline goes to a worker: a client pipelining without end must not starve others. */
#define GH__INLINE_RUN 16

/*
 * The server.
 * Alloc:     gh_server_new (gh_obj_new). No _free: gh_server_close releases every OS
 *            resource; the object is collected once unreachable.
 * Kept by:   the user; the pool and monitor threads (their start argument).
 * OS state:  listeners, epoll and eventfd descriptors, closed by gh_server_close.
 * Threads:   public calls from any thread; fields below `mu` are guarded by it, except
 *            those marked atomic, and the batch (evs, ev_n), which only the thread
 *            holding the poller's role touches (ev_next under mu: a successor resumes
 *            from it).
 */
struct gh_server_s {
    gh_conn_t **conns;   /* traced: conns[fd] */
    gh_conn_t **queue;   /* traced ring of connections waiting for a worker */
    gh_conn_t *tl_head[GH__TL_COUNT], *tl_tail[GH__TL_COUNT];
    gh_weak_t *hj;          /* atomic array of weak links to hijacked netconns */
    gh_server_config_t cfg; /* handler_data and conn_state_data are traced */
    /* not traced */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* pool threads wait for the queue or the poller's role */
    pthread_cond_t idle_cv;  /* shutdown waits for active connections */
    pthread_t *tids;         /* malloc'd: thread ids only (max_workers + 1) */
    struct epoll_event *evs; /* malloc'd: the poller's current batch (numbers only) */
    int ev_n, ev_next;
    int lfd[GH__MAX_LISTENERS];
    int lport[GH__MAX_LISTENERS];
    uint8_t lowned[GH__MAX_LISTENERS]; /* made by the server: unlink a Unix path at close */
    int n_listeners;
    int epfd, wakefd;
    size_t conns_cap;
    size_t hj_n, hj_cap;
    size_t q_head, q_len, q_cap;
    int n_threads, n_idle_workers, max_workers;
    int poller_vacant;       /* atomic: the role waits for a thread to take it */
    unsigned poller_gen;     /* atomic: bumped by each thread that takes the role */
    int running;             /* atomic: threads serving a connection */
    int poller_dirty;        /* atomic: the role's thread served a request since its
                              * last stack scrub (stats count it as a busy worker) */
    uint64_t inl;            /* atomic: (seq << 1) | 1 while the poller serves a request */
    gh_time_t handoff;
    pthread_t monitor;
    pthread_mutex_t mon_mu;
    pthread_cond_t mon_cv;
    int mon_sleeping;        /* atomic: the monitor waits for the next inline request */
    int started, stopping, closed, monitor_running;
    int active;              /* connections in QUEUED..FINISH (atomic) */
    int open;                /* connections in conns[] */
    unsigned long next_id;
    gh_time_t accept_resume_at;
    gh_time_t accept_backoff;
    gh_time_t tl_dur[GH__TL_COUNT];
    gh_server_stats_t st;
};

static const size_t server_ptrs[] = {
    offsetof(struct gh_server_s, conns),
    offsetof(struct gh_server_s, queue),
    offsetof(struct gh_server_s, tl_head) + 0 * sizeof(void *),
    offsetof(struct gh_server_s, tl_head) + 1 * sizeof(void *),
    offsetof(struct gh_server_s, tl_head) + 2 * sizeof(void *),
    offsetof(struct gh_server_s, tl_head) + 3 * sizeof(void *),
    offsetof(struct gh_server_s, tl_tail) + 0 * sizeof(void *),
    offsetof(struct gh_server_s, tl_tail) + 1 * sizeof(void *),
    offsetof(struct gh_server_s, tl_tail) + 2 * sizeof(void *),
    offsetof(struct gh_server_s, tl_tail) + 3 * sizeof(void *),
    offsetof(struct gh_server_s, hj),
    offsetof(struct gh_server_s, cfg.handler_data),
    offsetof(struct gh_server_s, cfg.conn_state_data),
};
static gh_type_t server_type = GH_TYPE_INIT("server", struct gh_server_s, server_ptrs);

static void *pool_main(void *arg);
static void *monitor_main(void *arg);

void gh_server_config_init(gh_server_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
}

static gh_time_t pick(gh_time_t v, gh_time_t def) { return v == 0 ? def : (v < 0 ? 0 : v); }

int gh_server_new(gh_server_t **out, const gh_server_config_t *cfg)
{
    *out = NULL;
    if (!cfg || !cfg->handler)
        return GH_EINVAL;
    gh_gc_init();
    gh_server_t *s = gh_obj_new(&server_type);
    if (!s)
        return GH_ENOMEM;
    s->cfg = *cfg;
    /* Timeouts are on by default (Go leaves them off; slowloris is the most repeated
     * complaint about servers that do). */
    s->cfg.read_header_timeout = pick(cfg->read_header_timeout, 10 * GH_SEC);
    s->cfg.read_timeout = pick(cfg->read_timeout, 300 * GH_SEC);
    s->cfg.write_timeout = pick(cfg->write_timeout, 300 * GH_SEC);
    s->cfg.idle_timeout = pick(cfg->idle_timeout, 120 * GH_SEC);
    if (!s->cfg.max_header_bytes)
        s->cfg.max_header_bytes = 1 << 20;
    if (!s->cfg.max_body_drain)
        s->cfg.max_body_drain = 256 << 10;
    s->max_workers = cfg->max_workers > 0 ? cfg->max_workers : 64;
    s->handoff = cfg->handoff_timeout == 0 ? GH__HANDOFF_DEFAULT : cfg->handoff_timeout;
    __atomic_store_n(&gh__fd_block_hook, gh__server_will_block, __ATOMIC_RELEASE);
    s->tl_dur[GH__TL_HEAD] = s->cfg.read_header_timeout;
    s->tl_dur[GH__TL_IDLE] = s->cfg.idle_timeout;
    s->tl_dur[GH__TL_LINGER] = GH__LINGER_NS;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    pthread_mutex_init(&s->mon_mu, NULL);
    pthread_cond_init(&s->mon_cv, NULL);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->epfd < 0 || s->wakefd < 0) {
        int e = -errno;
        if (s->epfd >= 0)
            close(s->epfd);
        if (s->wakefd >= 0)
            close(s->wakefd);
        return e;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = GH__TAG_WAKE};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wakefd, &ev);
    s->q_cap = 64;
    s->queue = gh__ptrs_new(s->q_cap);
    s->conns_cap = 1024;
    s->conns = gh__ptrs_new(s->conns_cap);
    s->tids = calloc((size_t)s->max_workers + 1, sizeof(pthread_t));
    s->evs = calloc(GH__BATCH, sizeof *s->evs);
    if (!s->queue || !s->conns || !s->tids || !s->evs) {
        free(s->tids);
        free(s->evs);
        close(s->epfd);
        close(s->wakefd);
        return GH_ENOMEM;
    }
    *out = s;
    return 0;
}

const gh_server_config_t *gh__server_config(const gh_server_t *s) { return &s->cfg; }

static void wake_poller(gh_server_t *s)
{
    uint64_t one = 1;
    ssize_t rc;
    do
        rc = write(s->wakefd, &one, sizeof one);
    while (rc < 0 && errno == EINTR);
}

/* Register a listening descriptor (lib/listen.c opened or adopted it). On failure the
 * descriptor is closed only when the server made it (owned). */
static int add_listener(gh_server_t *s, int fd, int owned)
{
    int port = gh__listen_port(fd);
    if (port < 0) {
        if (owned)
            gh__listen_close(fd, owned);
        return port;
    }
    pthread_mutex_lock(&s->mu);
    if (s->n_listeners == GH__MAX_LISTENERS || s->stopping) {
        int rc = s->stopping ? GH_ECLOSED : GH_EBUSY;
        pthread_mutex_unlock(&s->mu);
        if (owned)
            gh__listen_close(fd, owned);
        return rc;
    }
    int i = s->n_listeners++;
    s->lfd[i] = fd;
    s->lport[i] = port;
    s->lowned[i] = (uint8_t)owned;
    pthread_mutex_unlock(&s->mu);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = GH__TAG_LISTENER | (uint64_t)i};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

int gh_server_listen(gh_server_t *s, const char *host, int port)
{
    int fd;
    int rc = gh__listen_open(host, port, &fd, NULL);
    return rc < 0 ? rc : add_listener(s, fd, 1);
}

int gh_server_listen_addr(gh_server_t *s, const char *addr)
{
    int fd;
    int rc = gh__listen_open_addr(addr, &fd, NULL);
    return rc < 0 ? rc : add_listener(s, fd, 1);
}

int gh_server_listen_fd(gh_server_t *s, int fd)
{
    int rc = gh__listen_adopt(fd, NULL);
    return rc < 0 ? rc : add_listener(s, fd, 0);
}

int gh_server_listen_systemd(gh_server_t *s)
{
    int fds[GH__MAX_LISTENERS];
    int n = gh__listen_systemd(fds, GH__MAX_LISTENERS, NULL);
    for (int i = 0; i < n; i++) {
        int rc = add_listener(s, fds[i], 0);
        if (rc < 0)
            return rc;
    }
    return n;
}

int gh_server_port(const gh_server_t *s, int i)
{
    if (i < 0 || i >= s->n_listeners)
        return GH_EINVAL;
    return s->lport[i];
}

int gh_server_start(gh_server_t *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->started || s->closed) {
        pthread_mutex_unlock(&s->mu);
        return GH_EBUSY;
    }
    s->started = 1;
    s->poller_vacant = 1; /* taken by the first pool thread */
    pthread_mutex_unlock(&s->mu);
    if (s->cfg.gc_heap_min >= 0) {
        size_t want = s->cfg.gc_heap_min ? (size_t)s->cfg.gc_heap_min : (size_t)16 << 20;
        size_t have = GC_get_heap_size();
        if (have < want)
            (void)GC_expand_hp(want - have); /* a hint: failure only means more collections */
    }
    /* Without a monitor a blocking handler would stall the poller: then every request
     * is served by a worker instead. Decided before the poller runs (it reads it). */
    if (s->handoff > 0) {
        if (gh_thread_start(&s->monitor, monitor_main, s) == 0)
            s->monitor_running = 1;
        else
            s->handoff = -1;
    }
    pthread_mutex_lock(&s->mu);
    int rc = gh_thread_start(&s->tids[0], pool_main, s);
    if (rc == 0)
        s->n_threads = 1;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- connection table and timer lists (mu held) ------------------------------------ */

static void tl_remove(gh_server_t *s, gh_conn_t *c)
{
    int l = c->timer_list;
    if (l == GH__TL_NONE)
        return;
    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else
        s->tl_head[l] = c->tnext;
    if (c->tnext)
        c->tnext->tprev = c->tprev;
    else
        s->tl_tail[l] = c->tprev;
    c->tnext = c->tprev = NULL;
    c->timer_list = GH__TL_NONE;
}

static void tl_add(gh_server_t *s, gh_conn_t *c, int l, gh_time_t deadline)
{
    tl_remove(s, c);
    if (s->tl_dur[l] == 0 && l != GH__TL_LINGER)
        return; /* that timeout is disabled */
    c->deadline = deadline;
    c->timer_list = l;
    /* Each list holds one duration, so deadlines arrive nearly in order; but a
     * connection is parked with a deadline computed when its request finished, which
     * may be a while before (a worker, or the poller's batch). Insert in order, walking
     * from the tail: the poller only ever looks at the head. */
    gh_conn_t *after = s->tl_tail[l];
    while (after && after->deadline > deadline)
        after = after->tprev;
    c->tprev = after;
    c->tnext = after ? after->tnext : s->tl_head[l];
    if (c->tnext)
        c->tnext->tprev = c;
    else
        s->tl_tail[l] = c;
    if (after)
        after->tnext = c;
    else
        s->tl_head[l] = c;
}

static int table_put(gh_server_t *s, gh_conn_t *c)
{
    size_t fd = (size_t)c->fdnum;
    if (fd >= s->conns_cap) {
        size_t cap = s->conns_cap;
        while (cap <= fd)
            cap *= 2;
        gh_conn_t **n = gh__ptrs_new(cap);
        if (!n)
            return GH_ENOMEM;
        memcpy(n, s->conns, s->conns_cap * sizeof *n);
        s->conns = n;
        s->conns_cap = cap;
    }
    s->conns[fd] = c;
    s->open++;
    return 0;
}

/* Remove c from every server structure. Returns 1 if it was there. mu held. */
static int table_drop(gh_server_t *s, gh_conn_t *c)
{
    tl_remove(s, c);
    size_t fd = (size_t)c->fdnum;
    if (fd < s->conns_cap && s->conns[fd] == c) {
        s->conns[fd] = NULL;
        s->open--;
        return 1;
    }
    return 0;
}

static void set_phase(gh_conn_t *c, int ph) { __atomic_store_n(&c->phase, ph, __ATOMIC_RELEASE); }
static int get_phase(const gh_conn_t *c) { return __atomic_load_n(&c->phase, __ATOMIC_ACQUIRE); }

static int is_active_phase(int ph) { return ph == GH__PH_QUEUED || ph == GH__PH_ACTIVE || ph == GH__PH_FINISH; }

/* Connections are edge-triggered. While the poller owns one (parked, or its head being
 * read) it watches for input; while a worker owns it, only for a hang-up (the
 * "background read" of Go): requests that follow on a busy keep-alive connection then
 * wake only the worker that waits for them, never the poller, and cost no epoll_ctl.
 * Changing the interest back to input reports input that is already there, so nothing
 * that arrived in between is missed. A hang-up edge is remembered in c->rdhup_seen for
 * the worker to act on when its handler starts. */
static void epoll_interest(gh_server_t *s, gh_conn_t *c, int input, int op)
{
    struct epoll_event ev;
    ev.events = (input ? EPOLLIN : 0) | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = ((uint64_t)(c->id & 0x3fffffffUL) << 32) | (uint32_t)c->fdnum;
    /* Another thread may close the connection meanwhile: holding the descriptor keeps
     * its number from being reused (and re-registered for another connection) under
     * this call. */
    if (gh_fd_acquire(c->fd) < 0)
        return;
    epoll_ctl(s->epfd, op, c->fdnum, &ev);
    gh_fd_release(c->fd);
}

void gh__server_set_state(gh_conn_t *c, gh_conn_state_t st)
{
    gh_server_t *s = c->server;
    if (c->state == (int)st && st != GH_STATE_ACTIVE)
        return;
    c->state = (int8_t)st;
    if (s->cfg.conn_state)
        s->cfg.conn_state(c, st, s->cfg.conn_state_data);
}

void gh__server_count_request(gh_server_t *s, int bad)
{
    if (bad)
        __atomic_add_fetch(&s->st.bad_requests, 1, __ATOMIC_RELAXED);
    else
        __atomic_add_fetch(&s->st.requests, 1, __ATOMIC_RELAXED);
}

static void leave_active(gh_server_t *s, int was_active)
{
    if (was_active && __atomic_sub_fetch(&s->active, 1, __ATOMIC_SEQ_CST) == 0)
        pthread_cond_broadcast(&s->idle_cv);
}

void gh__server_conn_close(gh_conn_t *c)
{
    gh_server_t *s = c->server;
    pthread_mutex_lock(&s->mu);
    int ph = get_phase(c);
    if (ph == GH__PH_CLOSED || ph == GH__PH_HIJACKED) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    int had = table_drop(s, c);
    leave_active(s, is_active_phase(ph));
    set_phase(c, GH__PH_CLOSED);
    if (had)
        s->st.closed++;
    pthread_cond_broadcast(&s->idle_cv);
    pthread_mutex_unlock(&s->mu);
    gh_fd_close(c->fd);
    gh_ctx_cancel(c->ctx, GH_ECANCELED);
    gh__server_set_state(c, GH_STATE_CLOSED);
}

void gh__server_conn_forget(gh_conn_t *c)
{
    gh_server_t *s = c->server;
    pthread_mutex_lock(&s->mu);
    int ph = get_phase(c);
    table_drop(s, c);
    leave_active(s, is_active_phase(ph));
    set_phase(c, GH__PH_HIJACKED);
    s->st.hijacked++;
    pthread_mutex_unlock(&s->mu);
    /* The descriptor now belongs to the user: take it out of the poller's set. */
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fdnum, NULL);
}

void gh__server_conn_park(gh_conn_t *c, int ph, gh_time_t deadline, int rearm)
{
    gh_server_t *s = c->server;
    int l = ph == GH__PH_IDLE ? GH__TL_IDLE : GH__TL_HEAD;
    pthread_mutex_lock(&s->mu);
    int cur = get_phase(c);
    if (cur == GH__PH_CLOSED || (s->stopping && ph == GH__PH_IDLE)) {
        pthread_mutex_unlock(&s->mu);
        gh__server_conn_close(c);
        return;
    }
    leave_active(s, is_active_phase(cur));
    set_phase(c, ph);
    /* The poller sleeps until the earliest deadline it knew of; a first entry in a
     * timer list is one it did not know, so wake it to recompute. */
    int first = s->tl_head[l] == NULL;
    if (deadline)
        tl_add(s, c, l, deadline);
    pthread_mutex_unlock(&s->mu);
    if (!rearm)
        return; /* the poller itself, which never stopped watching for input */
    if (first && deadline)
        wake_poller(s);
    /* Input that arrived since the caller's last read is reported by this change of
     * interest, to the poller, which then owns the connection. */
    epoll_interest(s, c, 1, EPOLL_CTL_MOD);
}

/* Read and drop what a lingering connection's client still sends; close at its end.
 * Edge-triggered: read until EAGAIN. */
static void linger_drain(gh_conn_t *c)
{
    char tmp[4096];
    for (int i = 0; i < 64; i++) {
        ssize_t k = gh_fd_read_nowait(c->fd, tmp, sizeof tmp);
        if (k == GH_EAGAIN)
            return;
        if (k <= 0)
            break;
    }
    gh__server_conn_close(c);
}

void gh__server_conn_linger(gh_conn_t *c)
{
    gh_server_t *s = c->server;
    gh_fd_shutdown_write(c->fd);
    pthread_mutex_lock(&s->mu);
    if (get_phase(c) == GH__PH_CLOSED) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    leave_active(s, is_active_phase(get_phase(c)));
    set_phase(c, GH__PH_LINGER);
    int first = s->tl_head[GH__TL_LINGER] == NULL; /* see gh__server_conn_park */
    tl_add(s, c, GH__TL_LINGER, gh_now() + GH__LINGER_NS);
    pthread_mutex_unlock(&s->mu);
    if (first)
        wake_poller(s);
    /* Input already there is reported by this change of interest. */
    epoll_interest(s, c, 1, EPOLL_CTL_MOD);
}

static int pending_bytes(int fd);

void gh__conn_eval_hup(gh_conn_t *c, int hard)
{
    /* Bytes waiting are a pipelined request, never "gone" (golang/go#23921) -- unless
     * the request's body is still arriving: then they are that body, and a hang-up
     * means the client is gone (golang/go#23262). Waiting bytes are those still in the
     * socket and those already read into the connection's buffer: a client may send
     * two requests in one segment and half-close while the first is served. */
    int body_pending = __atomic_load_n(&c->body_pending, __ATOMIC_ACQUIRE);
    if (!hard && !body_pending) {
        if (__atomic_load_n(&c->next_buffered, __ATOMIC_ACQUIRE))
            return;
        int n = 0;
        if (gh_fd_acquire(c->fd) == 0) {
            n = pending_bytes(gh_fd_fileno(c->fd));
            gh_fd_release(c->fd);
        }
        if (n > 0)
            return;
    }
    gh__conn_peer_gone(c);
}

void gh__server_watch(gh_conn_t *c, int on)
{
    __atomic_store_n(&c->watching, on, __ATOMIC_SEQ_CST);
    /* A hang-up seen before the handler started (the edge came while the request
     * waited for a worker) is acted on now. */
    if (on && __atomic_load_n(&c->rdhup_seen, __ATOMIC_SEQ_CST))
        gh__conn_eval_hup(c, 0);
}

/* ---- the thread pool ---------------------------------------------------------------- */

/* Start one more pool thread if the limit allows: max_workers threads may serve
 * connections at once, and one more holds the poller's role meanwhile. mu held. */
static void grow_pool(gh_server_t *s)
{
    if (s->closed || s->n_threads >= s->max_workers + 1)
        return;
    pthread_t t;
    if (gh_thread_start(&t, pool_main, s) == 0)
        s->tids[s->n_threads++] = t;
}

/* Work appeared (a queued connection or the poller's role): wake an idle pool thread,
 * or start one. Broadcast: both kinds of work are rare, and each woken thread takes
 * the role first, then the queue. mu held. */
static void want_thread(gh_server_t *s)
{
    if (s->n_idle_workers > 0)
        pthread_cond_broadcast(&s->work_cv);
    else
        grow_pool(s);
}

/* A queued connection gets a thread if one may serve now; otherwise the next thread to
 * finish a connection takes it. mu held. */
static void serve_queue(gh_server_t *s)
{
    if (s->q_len > 0 && __atomic_load_n(&s->running, __ATOMIC_SEQ_CST) < s->max_workers)
        want_thread(s);
}

/* Queue c for a worker. mu held. */
static void dispatch(gh_server_t *s, gh_conn_t *c)
{
    tl_remove(s, c);
    set_phase(c, GH__PH_QUEUED);
    __atomic_add_fetch(&s->active, 1, __ATOMIC_SEQ_CST);
    if (s->q_len == s->q_cap) {
        size_t cap = s->q_cap * 2;
        gh_conn_t **q = gh__ptrs_new(cap);
        if (!q) {
            /* Out of memory: drop the connection rather than the server. */
            leave_active(s, 1);
            table_drop(s, c);
            set_phase(c, GH__PH_CLOSED);
            gh_fd_close(c->fd);
            return;
        }
        for (size_t i = 0; i < s->q_len; i++)
            q[i] = s->queue[(s->q_head + i) % s->q_cap];
        s->queue = q;
        s->q_cap = cap;
        s->q_head = 0;
    }
    /* q_cap is never 0: 64 from gh_server_new, only doubled above. */
    /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
    s->queue[(s->q_head + s->q_len) % s->q_cap] = c;
    s->q_len++;
    serve_queue(s);
}

__attribute__((noinline)) static void worker_run_one(gh_server_t *s)
{
    gh_conn_t *c = s->queue[s->q_head];
    s->queue[s->q_head] = NULL;
    s->q_head = (s->q_head + 1) % s->q_cap;
    s->q_len--;
    __atomic_add_fetch(&s->running, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&s->mu);
    gh__conn_serve(c);
    __atomic_sub_fetch(&s->running, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&s->mu);
}

/* What the thread holding the poller's role carries. */
typedef struct {
    unsigned gen;  /* the role's generation when this thread took it */
    int dirty;     /* it served a request since its batch began (poller_dirty is set) */
    int deposed;   /* the monitor gave the role to another thread */
} gh__pctx_t;

static void poll_loop(gh_server_t *s, gh__pctx_t *pc);

static void *pool_main(void *arg)
{
    gh_server_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->closed)
            break;
        if (__atomic_load_n(&s->poller_vacant, __ATOMIC_SEQ_CST)) {
            gh__pctx_t pc = {0, 0, 0};
            __atomic_store_n(&s->poller_vacant, 0, __ATOMIC_SEQ_CST);
            pc.gen = __atomic_add_fetch(&s->poller_gen, 1, __ATOMIC_SEQ_CST);
            __atomic_store_n(&s->poller_dirty, 0, __ATOMIC_SEQ_CST);
            /* The request the monitor saw running is the deposed thread's now: the
             * mark is cleared, or the monitor would depose this thread for it too. */
            uint64_t m = __atomic_load_n(&s->inl, __ATOMIC_SEQ_CST);
            while ((m & 1) && !__atomic_compare_exchange_n(&s->inl, &m, m & ~(uint64_t)1, 0,
                                                           __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
                ;
            serve_queue(s); /* a queued connection may have woken this thread */
            pthread_mutex_unlock(&s->mu);
            poll_loop(s, &pc);
            /* Deposed: the request it finished as a worker left stale slots (notes
             * §3.1); until they are cleared the thread counts as a busy worker, so that
             * "no active connection and every worker idle" means clean stacks. */
            gh_gc_scrub_stack();
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (s->q_len > 0 && __atomic_load_n(&s->running, __ATOMIC_SEQ_CST) < s->max_workers) {
            worker_run_one(s);
            /* Stale slots of the finished request's frames (notes §3.1). */
            pthread_mutex_unlock(&s->mu);
            gh_gc_scrub_stack();
            pthread_mutex_lock(&s->mu);
            continue;
        }
        s->n_idle_workers++;
        pthread_cond_wait(&s->work_cv, &s->mu);
        s->n_idle_workers--;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- the monitor -------------------------------------------------------------------- */

/* The poller starts serving a request; returns the value to pass to inl_end. */
static uint64_t inl_begin(gh_server_t *s)
{
    uint64_t v = ((__atomic_load_n(&s->inl, __ATOMIC_RELAXED) >> 1) + 1) << 1 | 1;
    __atomic_store_n(&s->inl, v, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&s->mon_sleeping, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&s->mon_mu);
        pthread_cond_signal(&s->mon_cv);
        pthread_mutex_unlock(&s->mon_mu);
    }
    return v;
}

/* The request ended. A deposed thread must not clear its successor's mark: only the
 * value it set is cleared. */
static void inl_end(gh_server_t *s, uint64_t v)
{
    __atomic_compare_exchange_n(&s->inl, &v, v & ~(uint64_t)1, 0, __ATOMIC_SEQ_CST,
                                __ATOMIC_SEQ_CST);
}

/* 1 while the calling thread still holds the role it took as generation gen. A vacancy
 * the monitor opened that no thread has taken yet is taken back. The stores and loads
 * are sequentially consistent with the monitor's: either it sees the request ended
 * (inl_end) and opens nothing, or this sees the vacancy. */
static int still_poller(gh_server_t *s, unsigned gen)
{
    if (__atomic_load_n(&s->poller_gen, __ATOMIC_SEQ_CST) != gen)
        return 0;
    if (!__atomic_load_n(&s->poller_vacant, __ATOMIC_SEQ_CST))
        return 1;
    pthread_mutex_lock(&s->mu);
    int mine = __atomic_load_n(&s->poller_gen, __ATOMIC_SEQ_CST) == gen;
    if (mine) {
        __atomic_store_n(&s->poller_vacant, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&s->poller_dirty, 1, __ATOMIC_SEQ_CST); /* it is mid-request */
    }
    pthread_mutex_unlock(&s->mu);
    return mine;
}

/* The server and mark of the request this thread serves on the poller's role, if any.
 * Not a GC root: the server is kept by the thread's start argument. */
static __thread gh_server_t *tls_inline;
static __thread uint64_t tls_mark;

static void handoff(gh_server_t *s, uint64_t v);

/* Go's entersyscallblock: a handler about to block in gchttp (a context wait, a socket
 * wait) gives the poller's role away at once instead of after a monitor tick, so that
 * other connections, and a hang-up of its own (close-notify), wait for a thread wake-up
 * rather than for up to two handoff periods. Once per request. */
void gh__server_will_block(void)
{
    gh_server_t *s = tls_inline;
    if (!s)
        return;
    tls_inline = NULL;
    handoff(s, tls_mark);
}

/* The request marked v has run for a whole tick, or is about to block: give the
 * poller's role away. */
static void handoff(gh_server_t *s, uint64_t v)
{
    pthread_mutex_lock(&s->mu);
    if (!s->closed && !__atomic_load_n(&s->poller_vacant, __ATOMIC_SEQ_CST) &&
        __atomic_load_n(&s->inl, __ATOMIC_SEQ_CST) == v) {
        __atomic_store_n(&s->poller_vacant, 1, __ATOMIC_SEQ_CST);
        /* The deposed thread counts as a busy worker from now on; the role's next
         * holder starts clean. */
        __atomic_store_n(&s->poller_dirty, 0, __ATOMIC_SEQ_CST);
        s->st.handoffs++;
        /* With every thread busy, the first one to finish takes the role (the stuck
         * one included). */
        want_thread(s);
    }
    pthread_mutex_unlock(&s->mu);
}

static void sleep_until(gh_time_t t)
{
    struct timespec ts = {(time_t)(t / GH_SEC), (long)(t % GH_SEC)};
    /* EINTR: the collector's stop-the-world signal; the caller looks again anyway. */
    (void)clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* Ticks every handoff_timeout while the poller serves requests; a request seen running
 * at two ticks in a row has run for at least one tick (and at most two). After 32
 * ticks without a request it sleeps until the next one starts (inl_begin wakes it), so
 * an idle server costs no wake-ups. */
static void *monitor_main(void *arg)
{
    gh_server_t *s = arg;
    uint64_t last = 0;
    int quiet = 0;
    gh_time_t next = gh_now();
    while (!__atomic_load_n(&s->closed, __ATOMIC_SEQ_CST)) {
        next += s->handoff;
        gh_time_t now = gh_now();
        if (next < now)
            next = now + s->handoff; /* stopped for a while (a collection): start over */
        sleep_until(next);
        uint64_t v = __atomic_load_n(&s->inl, __ATOMIC_SEQ_CST);
        if ((v & 1) && v == last)
            handoff(s, v);
        quiet = v == last && !(v & 1) ? quiet + 1 : 0;
        last = v;
        if (quiet < 32)
            continue;
        pthread_mutex_lock(&s->mon_mu);
        __atomic_store_n(&s->mon_sleeping, 1, __ATOMIC_SEQ_CST);
        while (!(__atomic_load_n(&s->inl, __ATOMIC_SEQ_CST) & 1) &&
               !__atomic_load_n(&s->closed, __ATOMIC_SEQ_CST))
            pthread_cond_wait(&s->mon_cv, &s->mon_mu);
        __atomic_store_n(&s->mon_sleeping, 0, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&s->mon_mu);
        /* The request that woke us started before now: one tick more is enough. */
        last = __atomic_load_n(&s->inl, __ATOMIC_SEQ_CST);
        quiet = 0;
        next = gh_now();
    }
    return NULL;
}

/* ---- the poller -------------------------------------------------------------------- */

static void set_listeners_enabled(gh_server_t *s, int on)
{
    for (int i = 0; i < s->n_listeners; i++) {
        if (s->lfd[i] < 0)
            continue;
        struct epoll_event ev = {.events = on ? EPOLLIN : 0,
                                 .data.u64 = GH__TAG_LISTENER | (uint64_t)i};
        epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->lfd[i], &ev);
    }
}

/* A new connection, registered for input; NULL if it could not be kept. */
__attribute__((noinline)) static gh_conn_t *accept_one(gh_server_t *s, int fd,
                                                       const struct sockaddr_storage *peer,
                                                       socklen_t pl)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_mutex_lock(&s->mu);
    unsigned long id = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    gh_conn_t *c = gh__conn_new(s, fd, id);
    if (!c) {
        close(fd);
        return NULL;
    }
    char buf[120];
    gh__format_addr(peer, pl, buf, sizeof buf);
    c->remote = gh_strdup(buf);
    pthread_mutex_lock(&s->mu);
    if (table_put(s, c) < 0) {
        pthread_mutex_unlock(&s->mu);
        gh_fd_close(c->fd);
        return NULL;
    }
    s->st.accepted++;
    set_phase(c, GH__PH_WAIT_HEAD);
    gh_time_t now = gh_now();
    c->req_start = now;
    c->hdr_deadline = s->cfg.read_header_timeout ? now + s->cfg.read_header_timeout : 0;
    tl_add(s, c, GH__TL_HEAD, c->hdr_deadline);
    pthread_mutex_unlock(&s->mu);
    gh__server_set_state(c, GH_STATE_NEW);
    epoll_interest(s, c, 1, EPOLL_CTL_ADD);
    return c;
}

static void on_conn_event(gh_server_t *s, gh__pctx_t *pc, gh_conn_t *c, uint32_t ev);

static void do_accept(gh_server_t *s, gh__pctx_t *pc, int li)
{
    for (int n = 0; n < 64; n++) {
        struct sockaddr_storage peer = {0};
        socklen_t pl = sizeof peer;
        int fd = accept4(s->lfd[li], (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a while and keep serving the
                 * connections we have; they free descriptors as they close. Back off
                 * from 5 ms up to 1 s, as Go's accept loop does. */
                s->accept_backoff = s->accept_backoff ? s->accept_backoff * 2 : 5 * GH_MSEC;
                if (s->accept_backoff > GH_SEC)
                    s->accept_backoff = GH_SEC;
                s->accept_resume_at = gh_now() + s->accept_backoff;
                s->st.accept_backoffs++;
                set_listeners_enabled(s, 0);
            }
            return;
        }
        s->accept_backoff = 0;
        gh_conn_t *c = accept_one(s, fd, &peer, pl);
        /* A client usually sends its request right behind the handshake: look for it
         * now rather than after another trip through epoll_wait. */
        if (c)
            on_conn_event(s, pc, c, EPOLLIN);
        if (pc->deposed)
            return;
    }
}

static int pending_bytes(int fd)
{
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) < 0)
        return 0;
    return n;
}

/* The poller finished a connection: a queued one may have a thread now. */
static void kick_queue(gh_server_t *s)
{
    if (__atomic_load_n(&s->q_len, __ATOMIC_RELAXED) == 0)
        return;
    pthread_mutex_lock(&s->mu);
    serve_queue(s);
    pthread_mutex_unlock(&s->mu);
}

/* Hand c (claimed by the poller; counted active if was_active) to a worker, watching it
 * for a hang-up only. The interest changes before the hand-over, so that it cannot land
 * after the worker has already parked c again. */
static void hand_to_worker(gh_server_t *s, gh_conn_t *c, int was_active)
{
    epoll_interest(s, c, 0, EPOLL_CTL_MOD);
    pthread_mutex_lock(&s->mu);
    leave_active(s, was_active); /* dispatch counts it again */
    if (s->closed) {
        pthread_mutex_unlock(&s->mu);
        gh__server_conn_close(c);
        return;
    }
    dispatch(s, c);
    pthread_mutex_unlock(&s->mu);
}

/* Serve c, whose complete head the poller has just read, on the poller's thread: the
 * request, and the ones pipelined behind it up to GH__INLINE_RUN, then park it
 * without an epoll_ctl (its interest never stopped being input). If the monitor gives
 * the role away meanwhile, this thread finishes c as a worker and sets pc->deposed. */
__attribute__((noinline)) static void serve_inline(gh_server_t *s, gh__pctx_t *pc, gh_conn_t *c)
{
    pthread_mutex_lock(&s->mu);
    if (get_phase(c) != GH__PH_PREAD) { /* closed meanwhile by gh_server_close */
        pthread_mutex_unlock(&s->mu);
        return;
    }
    tl_remove(s, c);
    set_phase(c, GH__PH_ACTIVE);
    __atomic_add_fetch(&s->active, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&s->mu);
    if (!pc->dirty) {
        pc->dirty = 1;
        __atomic_store_n(&s->poller_dirty, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_add_fetch(&s->running, 1, __ATOMIC_SEQ_CST);
    for (int k = 1;; k++) {
        uint64_t mark = inl_begin(s);
        tls_mark = mark;
        tls_inline = s;
        int keep = gh__conn_serve_one(c);
        tls_inline = NULL;
        inl_end(s, mark);
        if (!still_poller(s, pc->gen)) {
            /* Another thread polls now: go on with c as a worker, watching it for a
             * hang-up only (see epoll_interest). */
            pc->deposed = 1;
            if (keep) {
                epoll_interest(s, c, 0, EPOLL_CTL_MOD);
                if (gh__conn_next(c, 0))
                    gh__conn_serve(c);
            }
            break;
        }
        if (!keep || !gh__conn_next(c, 1))
            break;
        if (k == GH__INLINE_RUN) {
            /* More pipelined requests: a worker serves them, so others get their turn. */
            hand_to_worker(s, c, 1);
            break;
        }
        __atomic_store_n(&c->phase, GH__PH_ACTIVE, __ATOMIC_RELEASE);
    }
    __atomic_sub_fetch(&s->running, 1, __ATOMIC_SEQ_CST);
    kick_queue(s);
}

/* An edge on a connection. */
__attribute__((noinline)) static void on_conn_event(gh_server_t *s, gh__pctx_t *pc, gh_conn_t *c,
                                                    uint32_t ev)
{
    int hup = (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    if (hup)
        __atomic_store_n(&c->rdhup_seen, 1, __ATOMIC_SEQ_CST);
    int ph = get_phase(c);
    if (ph == GH__PH_LINGER) {
        linger_drain(c);
        return;
    }
    if (ph != GH__PH_WAIT_HEAD && ph != GH__PH_IDLE) {
        /* A worker owns it. While its handler runs, a hang-up may mean the client is
         * gone: the poller is the "background read" here. */
        if (hup && __atomic_load_n(&c->watching, __ATOMIC_SEQ_CST))
            gh__conn_eval_hup(c, (ev & (EPOLLHUP | EPOLLERR)) != 0);
        return;
    }
    /* Parked: claim it (a worker handing it back may reclaim it concurrently). */
    pthread_mutex_lock(&s->mu);
    ph = get_phase(c);
    if (ph != GH__PH_WAIT_HEAD && ph != GH__PH_IDLE) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    /* A connection still waiting for its head keeps its place in the header timer list:
     * its deadline did not change, and appending it again behind later deadlines would
     * let it expire only when they do (the lists are FIFO, checked at the head). Only
     * the poller expires timers, and it is the thread reading this head. */
    if (ph == GH__PH_IDLE) {
        tl_remove(s, c);
        gh_time_t now = gh_now();
        c->req_start = now;
        c->hdr_deadline = s->cfg.read_header_timeout ? now + s->cfg.read_header_timeout : 0;
    }
    set_phase(c, GH__PH_PREAD);
    pthread_mutex_unlock(&s->mu);
    int rc = gh__conn_poll_head(c); /* reads until EAGAIN: edges will not repeat */
    if (rc < 0) {
        gh__server_conn_close(c);
        return;
    }
    if (rc == 0) {
        pthread_mutex_lock(&s->mu);
        set_phase(c, GH__PH_WAIT_HEAD);
        if (c->hdr_deadline && c->timer_list != GH__TL_HEAD)
            tl_add(s, c, GH__TL_HEAD, c->hdr_deadline);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (c->head_status) {
        /* Malformed: answer from here, without a worker, and linger. */
        gh__conn_write_error(c, c->head_status, NULL, 0);
        return;
    }
    if (__atomic_load_n(&s->closed, __ATOMIC_SEQ_CST)) {
        gh__server_conn_close(c);
        return;
    }
    if (s->handoff > 0 && __atomic_load_n(&s->running, __ATOMIC_SEQ_CST) < s->max_workers)
        serve_inline(s, pc, c);
    else
        hand_to_worker(s, c, 0);
}

/* Close every expired connection; return the ms until the next deadline (-1: none). */
static int expire_timers(gh_server_t *s)
{
    gh_time_t now = gh_now();
    gh_time_t next = 0;
    for (;;) {
        gh_conn_t *victim = NULL;
        pthread_mutex_lock(&s->mu);
        next = 0;
        for (int l = 1; l < GH__TL_COUNT; l++) {
            gh_conn_t *h = s->tl_head[l];
            if (!h)
                continue;
            if (h->deadline <= now) {
                victim = h;
                tl_remove(s, h);
                /* Not reclaimable by a worker from here on. */
                set_phase(h, GH__PH_PREAD);
                break;
            }
            if (!next || h->deadline < next)
                next = h->deadline;
        }
        pthread_mutex_unlock(&s->mu);
        if (!victim)
            break;
        /* Header, idle and linger timeouts end silently, as in Go. */
        gh__server_conn_close(victim);
    }
    if (s->accept_resume_at) {
        if (s->accept_resume_at <= now) {
            s->accept_resume_at = 0;
            if (!s->stopping)
                set_listeners_enabled(s, 1);
        } else if (!next || s->accept_resume_at < next) {
            next = s->accept_resume_at;
        }
    }
    if (!next)
        return -1;
    gh_time_t ms = (next - now) / GH_MSEC + 1;
    return ms > 60000 ? 60000 : (int)ms;
}

/* Graceful shutdown, poller side: close what is idle now. */
static void close_idle(gh_server_t *s)
{
    /* One pass over the table: each close drops the lock, so scanning resumes where the
     * last victim was instead of from the start (10k connections, not 10k^2 looks). */
    size_t i = 0;
    for (;;) {
        gh_conn_t *victim = NULL;
        pthread_mutex_lock(&s->mu);
        for (; i < s->conns_cap && !victim; i++) {
            gh_conn_t *c = s->conns[i];
            if (!c)
                continue;
            int ph = get_phase(c);
            if (ph == GH__PH_IDLE || ph == GH__PH_LINGER ||
                (ph == GH__PH_WAIT_HEAD && gh_reader_buffered(c->bufr, NULL) == 0 && !c->big_len)) {
                victim = c;
                set_phase(c, GH__PH_PREAD); /* not reclaimable by a worker any more */
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (!victim)
            return;
        gh__server_conn_close(victim);
    }
}

__attribute__((noinline)) static void handle_event(gh_server_t *s, gh__pctx_t *pc, uint64_t tag,
                                                   uint32_t ev)
{
    if (tag == GH__TAG_WAKE) {
        uint64_t v;
        while (read(s->wakefd, &v, sizeof v) > 0)
            ;
        return;
    }
    if (tag & GH__TAG_LISTENER) {
        int li = (int)(tag & 0xff);
        if (li < s->n_listeners && s->lfd[li] >= 0 && !s->stopping)
            do_accept(s, pc, li);
        return;
    }
    int fd = (int)(uint32_t)tag;
    unsigned long id = (unsigned long)(tag >> 32);
    gh_conn_t *c = NULL;
    pthread_mutex_lock(&s->mu);
    if ((size_t)fd < s->conns_cap && s->conns[fd] && (s->conns[fd]->id & 0x3fffffffUL) == id)
        c = s->conns[fd];
    pthread_mutex_unlock(&s->mu);
    if (c)
        on_conn_event(s, pc, c, ev);
}

/* The poller's role: events, timers, shutdown. Returns when the server closes, or when
 * the monitor gave the role to another thread while this one served a request (which
 * it has then finished as a worker); the successor resumes the batch at ev_next. */
static void poll_loop(gh_server_t *s, gh__pctx_t *pc)
{
    for (;;) {
        for (;;) {
            pthread_mutex_lock(&s->mu);
            if (s->ev_next >= s->ev_n) {
                pthread_mutex_unlock(&s->mu);
                break;
            }
            struct epoll_event ev = s->evs[s->ev_next++];
            pthread_mutex_unlock(&s->mu);
            handle_event(s, pc, ev.data.u64, ev.events);
            if (pc->deposed)
                return;
        }
        /* Whatever the batch touched is dead now: clear its frames before waiting. */
        gh_gc_scrub_stack();
        if (pc->dirty) {
            pc->dirty = 0;
            __atomic_store_n(&s->poller_dirty, 0, __ATOMIC_SEQ_CST);
        }
        int timeout = expire_timers(s);
        pthread_mutex_lock(&s->mu);
        int stopping = s->stopping, closed = s->closed;
        pthread_mutex_unlock(&s->mu);
        if (closed)
            return;
        if (stopping)
            close_idle(s);
        int n = epoll_wait(s->epfd, s->evs, GH__BATCH, timeout);
        if (n < 0) {
            /* The collector's stop-the-world signals interrupt epoll_wait on every
             * collection: just wait again. */
            if (errno == EINTR)
                continue;
            return;
        }
        pthread_mutex_lock(&s->mu);
        s->ev_n = n;
        s->ev_next = 0;
        pthread_mutex_unlock(&s->mu);
    }
}

/* ---- shutdown ---------------------------------------------------------------------- */

static void close_listeners(gh_server_t *s)
{
    for (int i = 0; i < s->n_listeners; i++) {
        if (s->lfd[i] >= 0) {
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd[i], NULL);
            gh__listen_close(s->lfd[i], s->lowned[i]);
            s->lfd[i] = -1;
        }
    }
}

int gh_server_shutdown(gh_server_t *s, gh_time_t timeout)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    close_listeners(s);
    pthread_mutex_unlock(&s->mu);
    wake_poller(s);
    gh_time_t deadline = gh_now() + (timeout > 0 ? timeout : 0);
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    while (__atomic_load_n(&s->active, __ATOMIC_SEQ_CST) > 0) {
        gh_time_t now = gh_now();
        if (now >= deadline) {
            rc = GH_ETIMEDOUT;
            break;
        }
        /* Idle connections are closed by the poller; requests finish on workers. A
         * bounded wait keeps this robust against a missed broadcast. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        gh_time_t step = deadline - now < 50 * GH_MSEC ? deadline - now : 50 * GH_MSEC;
        gh_time_t at = (gh_time_t)ts.tv_sec * GH_SEC + ts.tv_nsec + step;
        ts.tv_sec = (time_t)(at / GH_SEC);
        ts.tv_nsec = (long)(at % GH_SEC);
        pthread_cond_timedwait(&s->idle_cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    gh_server_close(s);
    return rc;
}

/* Close every connection the server still owns; threads blocked on them wake. */
static void close_all(gh_server_t *s)
{
    size_t next = 0; /* resume after each victim, as close_idle does */
    for (;;) {
        gh_conn_t *victim = NULL;
        pthread_mutex_lock(&s->mu);
        for (; next < s->conns_cap && !victim; next++)
            if (s->conns[next])
                victim = s->conns[next];
        pthread_mutex_unlock(&s->mu);
        if (!victim)
            break;
        gh__server_conn_close(victim);
    }
}

int gh_server_close(gh_server_t *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    s->stopping = 1;
    __atomic_store_n(&s->closed, 1, __ATOMIC_SEQ_CST);
    close_listeners(s);
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    wake_poller(s);
    pthread_mutex_lock(&s->mon_mu);
    pthread_cond_broadcast(&s->mon_cv);
    pthread_mutex_unlock(&s->mon_mu);
    /* First the connections, so that a handler blocked on one (on any thread, the
     * poller's included) returns and its thread can be joined. */
    close_all(s);
    if (s->monitor_running && !pthread_equal(pthread_self(), s->monitor)) {
        gh_thread_join(s->monitor, NULL);
        s->monitor_running = 0;
    }
    pthread_mutex_lock(&s->mu);
    int n = s->n_threads; /* no thread starts once closed is set */
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n; i++)
        if (!pthread_equal(pthread_self(), s->tids[i]))
            gh_thread_join(s->tids[i], NULL);
    /* A connection the poller accepted while the first pass ran. */
    close_all(s);
    close(s->epfd);
    close(s->wakefd);
    s->epfd = s->wakefd = -1;
    return 0;
}

void gh_server_stats(gh_server_t *s, gh_server_stats_t *st)
{
    pthread_mutex_lock(&s->mu);
    *st = s->st;
    st->requests = __atomic_load_n(&s->st.requests, __ATOMIC_RELAXED);
    st->bad_requests = __atomic_load_n(&s->st.bad_requests, __ATOMIC_RELAXED);
    st->open_conns = s->open;
    st->active_conns = __atomic_load_n(&s->active, __ATOMIC_SEQ_CST);
    /* The thread holding the poller's role is not a worker, unless it has served a
     * request since its last stack scrub. While the role is open (a hand-off), the
     * thread about to take it is counted as the poller already. */
    int polling = s->n_threads > 0 && !s->closed &&
                  !__atomic_load_n(&s->poller_dirty, __ATOMIC_SEQ_CST);
    st->workers = s->n_threads - polling;
    st->threads = s->n_threads;
    st->idle_workers = s->n_idle_workers; /* waiting in the pool, past their stack scrub */
    pthread_mutex_unlock(&s->mu);
}

const char *gh_conn_remote_addr(const gh_conn_t *c) { return c->remote ? c->remote : ""; }
char *gh__sockname(int fd, int peer)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl = sizeof ss;
    char buf[120];
    if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &sl) : getsockname(fd, (struct sockaddr *)&ss, &sl)) < 0)
        return NULL;
    gh__format_addr(&ss, sl, buf, sizeof buf);
    return gh_strdup(buf);
}

const char *gh_conn_local_addr(const gh_conn_t *c)
{
    /* Made on first use: most programs never ask, and it saves an allocation per
     * connection. */
    gh_conn_t *m = (gh_conn_t *)c;
    if (!m->local && gh_fd_acquire(m->fd) == 0) {
        m->local = gh__sockname(gh_fd_fileno(m->fd), 0);
        gh_fd_release(m->fd);
    }
    return m->local ? m->local : "";
}
unsigned long gh_conn_id(const gh_conn_t *c) { return c->id; }

const char *gh_conn_state_name(gh_conn_state_t st)
{
    static const char *const names[] = {"new", "active", "idle", "hijacked", "closed"};
    return (unsigned)st < 5 ? names[st] : "unknown";
}

int gh__server_stopping(gh_server_t *s) { return __atomic_load_n(&s->stopping, __ATOMIC_RELAXED); }

/* ---- hijacked-connection registry (golang/go#17721) ---------------------------------- */

void gh__server_track_hijacked(gh_server_t *s, gh_netconn_t *nc)
{
    pthread_mutex_lock(&s->mu);
    if (s->hj_n == s->hj_cap) {
        /* Keep the live entries only, in a larger array when needed. Each move
         * re-registers the link on the new slot. */
        size_t live = 0;
        for (size_t i = 0; i < s->hj_n; i++)
            live += !gh_weak_is_cleared(&s->hj[i]);
        size_t cap = s->hj_cap ? s->hj_cap : 16;
        while (cap < 2 * (live + 1))
            cap *= 2;
        gh_weak_t *n = gh_bytes_new(cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&s->mu);
            return;
        }
        memset(n, 0, cap * sizeof *n);
        size_t j = 0;
        for (size_t i = 0; i < s->hj_n; i++) {
            void *p = gh_weak_get(&s->hj[i]);
            gh_weak_clear(&s->hj[i]);
            if (p && gh_weak_set(&n[j], p) == 0)
                j++;
        }
        s->hj = n;
        s->hj_n = j;
        s->hj_cap = cap;
    }
    if (gh_weak_set(&s->hj[s->hj_n], nc) == 0)
        s->hj_n++;
    pthread_mutex_unlock(&s->mu);
}

/* Strong references to the live, open tracked connections, in a scanned array. */
static gh_netconn_t **hijacked_snapshot(gh_server_t *s, size_t *n)
{
    pthread_mutex_lock(&s->mu);
    gh_netconn_t **v = s->hj_n ? gh__ptrs_new(s->hj_n) : NULL;
    size_t k = 0;
    for (size_t i = 0; v && i < s->hj_n; i++) {
        gh_netconn_t *nc = gh_weak_get(&s->hj[i]);
        if (nc && !gh_fd_is_closed(gh_netconn_fd(nc)))
            v[k++] = nc;
    }
    pthread_mutex_unlock(&s->mu);
    *n = k;
    return v;
}

int gh_server_hijacked_foreach(gh_server_t *s, void (*fn)(gh_netconn_t *c, void *data), void *data)
{
    size_t n;
    gh_netconn_t **v = hijacked_snapshot(s, &n);
    for (size_t i = 0; i < n; i++)
        fn(v[i], data);
    return (int)n;
}

int gh_server_close_hijacked(gh_server_t *s)
{
    size_t n;
    int closed = 0;
    gh_netconn_t **v = hijacked_snapshot(s, &n);
    for (size_t i = 0; i < n; i++)
        closed += gh_netconn_close(v[i]) == 0;
    return closed;
}
