/*
 * lib/server.c: a server's public face: gh_server_new, the listen calls, start,
 * graceful shutdown, close and stats. The event loop, pool and monitor are in
 * lib/loop.c; the connections themselves in lib/connset.c (see lib/loop.h).
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gc/gc.h>

#include "loop.h"

static const size_t server_ptrs[] = {
    offsetof(struct gh_server_s, loops),
    offsetof(struct gh_server_s, queue),
    offsetof(struct gh_server_s, tids),
    offsetof(struct gh_server_s, texited),
    offsetof(struct gh_server_s, hj.links),
    offsetof(struct gh_server_s, cfg.handler_data),
    offsetof(struct gh_server_s, cfg.conn_state_data),
    offsetof(struct gh_server_s, cfg.access_log_data),
};
static gh_type_t server_type = GH_TYPE_INIT("server", struct gh_server_s, server_ptrs);

void gh_server_config_init(gh_server_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
}

static gh_time_t pick(gh_time_t v, gh_time_t def) { return v == 0 ? def : (v < 0 ? 0 : v); }

/* The CPUs this process may run on (sched_getaffinity: a taskset or cgroup cpuset
 * limits it), at least 1. */
static int cpus_available(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

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
    s->n_loops = cfg->loops > 0 ? cfg->loops : cpus_available();
    if (s->n_loops > GH__MAX_LOOPS)
        s->n_loops = GH__MAX_LOOPS;
    s->cfg.loops = s->n_loops;
    s->handoff = cfg->handoff_timeout == 0 ? GH__HANDOFF_DEFAULT : cfg->handoff_timeout;
    __atomic_store_n(&gh__block_hook, gh__server_will_block, __ATOMIC_RELEASE);
    s->tl_dur[GH__TL_HEAD] = s->cfg.read_header_timeout;
    s->tl_dur[GH__TL_IDLE] = s->cfg.idle_timeout;
    s->tl_dur[GH__TL_LINGER] = GH__LINGER_NS;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    pthread_cond_init(&s->exit_cv, NULL);
    pthread_mutex_init(&s->mon_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the monitor's ticks */
    pthread_cond_init(&s->mon_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->hj.mu, NULL);
    for (int i = 0; i < GH__MAX_LISTENERS; i++)
        s->lfd[i] = -1;
    s->q_cap = 64;
    s->queue = gh__ptrs_new(s->q_cap);
    s->loops = gh__ptrs_new((size_t)s->n_loops);
    /* GC memory (atomic: thread ids hold no pointers), collected with the server:
     * nothing to free after gh_server_close. */
    size_t nt = (size_t)s->max_workers + (size_t)s->n_loops;
    s->tids = gh_bytes_new(nt * sizeof(pthread_t));
    s->texited = gh_bytes_new(nt);
    if (!s->queue || !s->loops || !s->tids || !s->texited)
        return GH_ENOMEM;
    memset(s->texited, 0, nt); /* atomic memory comes unzeroed */
    s->tids_cap = (int)nt;
    for (int i = 0; i < s->n_loops; i++) {
        int rc = gh__loop_new(s, i, &s->loops[i]);
        if (rc < 0) {
            s->n_loops = i; /* close those made so far */
            gh__loop_close(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

const gh_server_config_t *gh__server_config(const gh_server_t *s) { return &s->cfg; }

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
    int i = s->n_listeners;
    s->lfd[i] = fd;
    s->lport[i] = port;
    s->lowned[i] = (uint8_t)owned;
    gh__loop_add_listener(s, i);
    s->n_listeners = i + 1;
    pthread_mutex_unlock(&s->mu);
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
    pthread_mutex_unlock(&s->mu);
    if (s->cfg.gc_heap_min >= 0) {
        /* Per loop: each loop allocates at its own rate, so a floor that does not grow
         * with them collects N times as often (bench/gc-load measures it). */
        int per = s->n_loops < 16 ? s->n_loops : 16;
        size_t want = s->cfg.gc_heap_min ? (size_t)s->cfg.gc_heap_min : ((size_t)16 << 20) * (size_t)per;
        size_t have = GC_get_heap_size();
        if (have < want)
            (void)GC_expand_hp(want - have); /* a hint: failure only means more collections */
    }
    return gh__loop_start(s);
}

void gh__server_count_request(gh_conn_t *c, int bad)
{
    gh__loop_t *l = gh__conn_loop(c);
    __atomic_add_fetch(bad ? &l->st.bad_requests : &l->st.requests, 1, __ATOMIC_RELAXED);
}

/* ---- shutdown ---------------------------------------------------------------------- */

/* Connections with a request in progress, over every loop. */
static int active_conns(gh_server_t *s)
{
    int n = 0;
    for (int i = 0; i < s->n_loops; i++)
        n += __atomic_load_n(&s->loops[i]->active, __ATOMIC_SEQ_CST);
    return n;
}

/* Close every connection the server still owns but keep (the caller's, shutting down
 * from its handler); threads blocked on them wake. */
static void close_all(gh_server_t *s, gh_conn_t *keep)
{
    for (int k = 0; k < s->n_loops; k++) {
        size_t i = 0;
        gh_conn_t *victim;
        while ((victim = gh__connset_scan(s->loops[k], &i, 0)))
            if (victim != keep)
                gh__server_conn_close(victim);
    }
}

/* gh_server_close, leaving keep open (its handler finishes its response), and waiting
 * for the pool threads until deadline only (0: for all of them). */
static void close_server(gh_server_t *s, gh_conn_t *keep, gh_time_t deadline)
{
    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    __atomic_store_n(&s->stopping, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&s->closed, 1, __ATOMIC_SEQ_CST);
    gh__loop_close_listeners(s);
    pthread_mutex_unlock(&s->mu);
    gh__loop_wake_all(s);
    /* First the connections, so that a handler blocked on one (on any thread, a
     * poller's included) returns and its thread can be joined. */
    close_all(s, keep);
    gh__loop_stop(s, deadline);
    /* A connection a poller accepted while the first pass ran. */
    close_all(s, keep);
    /* Watched connections live on the loops, which have stopped: end them here. */
    gh__watch_close_all(s);
}

void gh__server_idle_changed(gh_server_t *s)
{
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->idle_cv);
    pthread_mutex_unlock(&s->mu);
}

int gh_server_shutdown(gh_server_t *s, gh_time_t timeout)
{
    /* From a handler: its own request is not waited for (server.h), and the wait below
     * must not hold its loop's poller role. */
    gh_conn_t *self = gh__loop_current(s);
    gh__will_block(); /* from a handler or a watch's callback on a poller */
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->stopping, 1, __ATOMIC_SEQ_CST);
    gh__loop_close_listeners(s);
    pthread_mutex_unlock(&s->mu);
    gh__loop_wake_all(s);
    /* Watched connections with a shutdown callback (WebSockets: a 1001 close) end on
     * their own; they are waited for with the requests. */
    gh__watch_shutdown(s);
    gh_time_t deadline = gh_now() + (timeout > 0 ? timeout : 0);
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    while (active_conns(s) > (self ? 1 : 0) || gh__watch_lingering(s) > 0) {
        gh_time_t now = gh_now();
        if (now >= deadline) {
            rc = GH_ETIMEDOUT;
            break;
        }
        /* Idle connections are closed by the pollers; requests finish on their own. A
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
    /* Return at the deadline (Go's Shutdown): a straggler's thread is left to end on
     * its own once its handler returns. At least a moment for the threads that only
     * have to notice the close. */
    gh_time_t join_by = deadline > gh_now() + 100 * GH_MSEC ? deadline : gh_now() + 100 * GH_MSEC;
    close_server(s, self, join_by);
    return rc;
}

int gh_server_close(gh_server_t *s)
{
    close_server(s, NULL, 0);
    return 0;
}

/* Loop l's own figures into st (thread figures left as they are). */
static void loop_stats(gh__loop_t *l, gh_server_stats_t *st)
{
    pthread_mutex_lock(&l->mu);
    st->accepted += l->st.accepted;
    st->closed += l->st.closed;
    st->hijacked += l->st.hijacked;
    st->open_conns += l->open;
    pthread_mutex_unlock(&l->mu);
    st->requests += __atomic_load_n(&l->st.requests, __ATOMIC_RELAXED);
    st->bad_requests += __atomic_load_n(&l->st.bad_requests, __ATOMIC_RELAXED);
    st->accept_backoffs += __atomic_load_n(&l->st.accept_backoffs, __ATOMIC_RELAXED);
    st->handoffs += __atomic_load_n(&l->st.handoffs, __ATOMIC_RELAXED);
    st->active_conns += __atomic_load_n(&l->active, __ATOMIC_SEQ_CST);
    st->watched += gh__watch_loop_count(l->server, l->idx);
}

void gh_server_stats(gh_server_t *s, gh_server_stats_t *st)
{
    memset(st, 0, sizeof *st);
    for (int i = 0; i < s->n_loops; i++)
        loop_stats(s->loops[i], st);
    pthread_mutex_lock(&s->mu);
    /* A thread holding a poller's role is not a worker, unless it has served a request
     * since its last stack scrub. While a role is open (a hand-off), the thread about
     * to take it is counted as that loop's poller already. */
    int polling = 0;
    if (s->n_threads > 0 && !s->closed)
        for (int i = 0; i < s->n_loops; i++)
            polling += !__atomic_load_n(&s->loops[i]->poller_dirty, __ATOMIC_SEQ_CST);
    if (polling > s->n_threads)
        polling = s->n_threads;
    st->workers = s->n_threads - polling;
    st->threads = s->n_threads;
    st->idle_workers = s->n_idle_workers; /* waiting in the pool, past their stack scrub */
    pthread_mutex_unlock(&s->mu);
}

int gh_server_loops(const gh_server_t *s) { return s->n_loops; }

int gh_server_loop_stats(gh_server_t *s, int loop, gh_server_stats_t *st)
{
    memset(st, 0, sizeof *st);
    if (loop < 0 || loop >= s->n_loops)
        return GH_EINVAL;
    loop_stats(s->loops[loop], st);
    return 0;
}

int gh__server_stopping(gh_server_t *s) { return __atomic_load_n(&s->stopping, __ATOMIC_RELAXED); }

gh__hjreg_t *gh__server_hijacked(gh_server_t *s) { return &s->hj; }
