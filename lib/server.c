/*
 * lib/server.c: a server's public face: gh_server_new, the listen calls, start,
 * graceful shutdown, close and stats. The event loop, pool and monitor are in
 * lib/loop.c; the connections themselves in lib/connset.c (see lib/loop.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gc/gc.h>

#include "loop.h"

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
    offsetof(struct gh_server_s, tids),
    offsetof(struct gh_server_s, evs),
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
    __atomic_store_n(&gh__block_hook, gh__server_will_block, __ATOMIC_RELEASE);
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
    /* GC memory (atomic: thread ids and event numbers hold no pointers), collected with
     * the server: nothing to free after gh_server_close. */
    s->tids = gh_bytes_new(((size_t)s->max_workers + 1) * sizeof(pthread_t));
    s->evs = gh_bytes_new(GH__BATCH * sizeof *s->evs);
    pthread_mutex_init(&s->hj.mu, NULL);
    if (!s->queue || !s->conns || !s->tids || !s->evs) {
        close(s->epfd);
        close(s->wakefd);
        return GH_ENOMEM;
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
    __atomic_store_n(&s->poller_vacant, 1, __ATOMIC_RELAXED); /* taken by the first pool thread */
    pthread_mutex_unlock(&s->mu);
    if (s->cfg.gc_heap_min >= 0) {
        size_t want = s->cfg.gc_heap_min ? (size_t)s->cfg.gc_heap_min : (size_t)16 << 20;
        size_t have = GC_get_heap_size();
        if (have < want)
            (void)GC_expand_hp(want - have); /* a hint: failure only means more collections */
    }
    return gh__loop_start(s);
}

void gh__server_count_request(gh_server_t *s, int bad)
{
    if (bad)
        __atomic_add_fetch(&s->st.bad_requests, 1, __ATOMIC_RELAXED);
    else
        __atomic_add_fetch(&s->st.requests, 1, __ATOMIC_RELAXED);
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
    __atomic_store_n(&s->stopping, 1, __ATOMIC_RELAXED);
    close_listeners(s);
    pthread_mutex_unlock(&s->mu);
    gh__loop_wake(s);
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
    size_t i = 0;
    gh_conn_t *victim;
    while ((victim = gh__connset_scan(s, &i, 0)))
        gh__server_conn_close(victim);
}

int gh_server_close(gh_server_t *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    __atomic_store_n(&s->stopping, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->closed, 1, __ATOMIC_SEQ_CST);
    close_listeners(s);
    pthread_mutex_unlock(&s->mu);
    gh__loop_wake_all(s);
    /* First the connections, so that a handler blocked on one (on any thread, the
     * poller's included) returns and its thread can be joined. */
    close_all(s);
    gh__loop_join(s);
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

int gh__server_stopping(gh_server_t *s) { return __atomic_load_n(&s->stopping, __ATOMIC_RELAXED); }

gh__hjreg_t *gh__server_hijacked(gh_server_t *s) { return &s->hj; }
