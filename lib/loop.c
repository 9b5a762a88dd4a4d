/*
 * lib/loop.c: the event loop (the poller's role), the thread pool and the monitor.
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
 * The queue of connections waiting for a worker is a traced ring (server->queue).
 * Connections and their phases belong to lib/connset.c.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"

static void *pool_main(void *arg);

void gh__loop_wake(gh_server_t *s)
{
    uint64_t one = 1;
    ssize_t rc;
    do
        rc = write(s->wakefd, &one, sizeof one);
    while (rc < 0 && errno == EINTR);
}

/* Connections are edge-triggered. While the poller owns one (parked, or its head being
 * read) it watches for input; while a worker owns it, only for a hang-up (the
 * "background read" of Go): requests that follow on a busy keep-alive connection then
 * wake only the worker that waits for them, never the poller, and cost no epoll_ctl.
 * Changing the interest back to input reports input that is already there, so nothing
 * that arrived in between is missed. A hang-up edge is remembered in c->rdhup_seen for
 * the worker to act on when its handler starts. */
void gh__loop_interest(gh_server_t *s, gh_conn_t *c, int input, int op)
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

/* Queue c for a worker. mu held. Returns 0, or GH_ENOMEM when the queue cannot grow
 * (then c is not queued). */
static int dispatch(gh_server_t *s, gh_conn_t *c)
{
    if (s->q_len == s->q_cap) {
        size_t cap = s->q_cap * 2;
        gh_conn_t **q = gh__ptrs_new(cap);
        if (!q)
            return GH_ENOMEM;
        for (size_t i = 0; i < s->q_len; i++)
            q[i] = s->queue[(s->q_head + i) % s->q_cap];
        s->queue = q;
        s->q_cap = cap;
        s->q_head = 0;
    }
    gh__connset_queued(s, c);
    /* q_cap is never 0: 64 from gh_server_new, only doubled above. */
    /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
    s->queue[(s->q_head + s->q_len) % s->q_cap] = c;
    __atomic_store_n(&s->q_len, s->q_len + 1, __ATOMIC_RELAXED); /* kick_queue peeks */
    serve_queue(s);
    return 0;
}

__attribute__((noinline)) static void worker_run_one(gh_server_t *s)
{
    gh_conn_t *c = s->queue[s->q_head];
    s->queue[s->q_head] = NULL;
    s->q_head = (s->q_head + 1) % s->q_cap;
    __atomic_store_n(&s->q_len, s->q_len - 1, __ATOMIC_RELAXED);
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
            /* Stale slots of the finished request's frames (docs/DESIGN.md §3.1). */
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
    if (gh__connset_add(s, c) < 0) {
        gh_fd_close(c->fd);
        return NULL;
    }
    gh__server_set_state(c, GH_STATE_NEW);
    gh__loop_interest(s, c, 1, EPOLL_CTL_ADD);
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

/* The poller finished a connection: a queued one may have a thread now. */
static void kick_queue(gh_server_t *s)
{
    if (__atomic_load_n(&s->q_len, __ATOMIC_RELAXED) == 0)
        return;
    pthread_mutex_lock(&s->mu);
    serve_queue(s);
    pthread_mutex_unlock(&s->mu);
}

/* Hand c (claimed by the poller, or served by it) to a worker, watching it for a
 * hang-up only. The interest changes before the hand-over, so that it cannot land after
 * the worker has already parked c again. */
static void hand_to_worker(gh_server_t *s, gh_conn_t *c)
{
    gh__loop_interest(s, c, 0, EPOLL_CTL_MOD);
    pthread_mutex_lock(&s->mu);
    int rc = s->closed ? GH_ECLOSED : dispatch(s, c);
    pthread_mutex_unlock(&s->mu);
    /* Closed, or out of memory: drop the connection rather than the server. */
    if (rc < 0)
        gh__server_conn_close(c);
}

/* Serve c, whose complete head the poller has just read, on the poller's thread: the
 * request, and the ones pipelined behind it up to GH__INLINE_RUN, then park it
 * without an epoll_ctl (its interest never stopped being input). If the monitor gives
 * the role away meanwhile, this thread finishes c as a worker and sets pc->deposed. */
__attribute__((noinline)) static void serve_inline(gh_server_t *s, gh__pctx_t *pc, gh_conn_t *c)
{
    if (!gh__connset_activate(c))
        return;
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
             * hang-up only (see gh__loop_interest). */
            pc->deposed = 1;
            if (keep) {
                gh__loop_interest(s, c, 0, EPOLL_CTL_MOD);
                if (gh__conn_next(c, 0))
                    gh__conn_serve(c);
            }
            break;
        }
        if (!keep || !gh__conn_next(c, 1))
            break;
        if (k == GH__INLINE_RUN) {
            /* More pipelined requests: a worker serves them, so others get their turn. */
            hand_to_worker(s, c);
            break;
        }
        gh__conn_set_serving(c, 1);
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
    int ph = gh__conn_phase(c);
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
    if (!gh__connset_claim(c))
        return;
    int rc = gh__conn_poll_head(c); /* reads until EAGAIN: edges will not repeat */
    if (rc < 0) {
        gh__server_conn_close(c);
        return;
    }
    if (rc == 0) {
        gh__connset_wait_head(c);
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
        hand_to_worker(s, c);
}

/* Close every expired connection; return the ms until the next deadline (-1: none). */
static int expire_timers(gh_server_t *s)
{
    gh_time_t now = gh_now();
    gh_time_t next = 0;
    for (;;) {
        gh_conn_t *victim = gh__connset_expired(s, now, &next);
        if (!victim)
            break;
        /* Header, idle and linger timeouts end silently, as in Go. */
        gh__server_conn_close(victim);
    }
    if (s->accept_resume_at) {
        if (s->accept_resume_at <= now) {
            s->accept_resume_at = 0;
            if (!__atomic_load_n(&s->stopping, __ATOMIC_RELAXED))
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
    size_t i = 0;
    gh_conn_t *victim;
    while ((victim = gh__connset_scan(s, &i, 1)))
        gh__server_conn_close(victim);
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
        if (li < s->n_listeners && s->lfd[li] >= 0 && !__atomic_load_n(&s->stopping, __ATOMIC_RELAXED))
            do_accept(s, pc, li);
        return;
    }
    int fd = (int)(uint32_t)tag;
    unsigned long id = (unsigned long)(tag >> 32);
    gh_conn_t *c = gh__connset_lookup(s, fd, id);
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

/* ---- start and stop ---------------------------------------------------------------- */

int gh__loop_start(gh_server_t *s)
{
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

void gh__loop_wake_all(gh_server_t *s)
{
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    gh__loop_wake(s);
    pthread_mutex_lock(&s->mon_mu);
    pthread_cond_broadcast(&s->mon_cv);
    pthread_mutex_unlock(&s->mon_mu);
}

void gh__loop_join(gh_server_t *s)
{
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
}
