/*
 * lib/connset.c: each loop's connection set: the table of connections by descriptor,
 * the timer lists, and every change of a connection's phase. This file is the only
 * writer of conn->phase, and the only one that counts connections in and out of the
 * active phases (QUEUED..FINISH: what graceful shutdown waits for), so the count
 * follows the phase by construction. A connection stays with the loop that accepted
 * it; every structure here is that loop's, under that loop's lock.
 *
 * GC visibility: epoll_event.data is invisible to the collector, so it carries only the
 * descriptor number and the connection id; the connection itself is held by
 * server->conns, a traced array indexed by descriptor.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "loop.h"

static int is_active_phase(int ph)
{
    return ph == GH__PH_QUEUED || ph == GH__PH_ACTIVE || ph == GH__PH_FINISH;
}

/* The one place a phase changes. Entering or leaving the active phases moves the count
 * that graceful shutdown waits on. */
static void set_phase(gh_conn_t *c, int ph)
{
    gh__loop_t *l = gh__conn_loop(c);
    int old = __atomic_exchange_n(&c->phase, ph, __ATOMIC_ACQ_REL);
    int was = is_active_phase(old), now = is_active_phase(ph);
    if (now && !was)
        __atomic_add_fetch(&l->active, 1, __ATOMIC_SEQ_CST);
    else if (was && !now && __atomic_sub_fetch(&l->active, 1, __ATOMIC_SEQ_CST) == 0)
        pthread_cond_broadcast(&c->server->idle_cv);
}

/* ---- timer lists (mu held) --------------------------------------------------------- */

static void tl_remove(gh__loop_t *s, gh_conn_t *c)
{
    int li = c->timer_list;
    if (li == GH__TL_NONE)
        return;
    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else
        s->tl_head[li] = c->tnext;
    if (c->tnext)
        c->tnext->tprev = c->tprev;
    else
        s->tl_tail[li] = c->tprev;
    c->tnext = c->tprev = NULL;
    c->timer_list = GH__TL_NONE;
}

static void tl_add(gh__loop_t *s, gh_conn_t *c, int li, gh_time_t deadline)
{
    tl_remove(s, c);
    if (s->server->tl_dur[li] == 0 && li != GH__TL_LINGER)
        return; /* that timeout is disabled */
    c->deadline = deadline;
    c->timer_list = li;
    /* Each list holds one duration, so deadlines arrive nearly in order; but a
     * connection is parked with a deadline computed when its request finished, which
     * may be a while before (a worker, or the poller's batch). Insert in order, walking
     * from the tail: the poller only ever looks at the head. */
    gh_conn_t *after = s->tl_tail[li];
    while (after && after->deadline > deadline)
        after = after->tprev;
    c->tprev = after;
    c->tnext = after ? after->tnext : s->tl_head[li];
    if (c->tnext)
        c->tnext->tprev = c;
    else
        s->tl_tail[li] = c;
    if (after)
        after->tnext = c;
    else
        s->tl_head[li] = c;
}

/* ---- the table (mu held) ----------------------------------------------------------- */

static int table_put(gh__loop_t *s, gh_conn_t *c)
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

/* Remove c from every server structure. Returns 1 if it was there. */
static int table_drop(gh__loop_t *s, gh_conn_t *c)
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

int gh__connset_add(gh__loop_t *s, gh_conn_t *c)
{
    c->loop = (uint8_t)s->idx;
    pthread_mutex_lock(&s->mu);
    if (table_put(s, c) < 0) {
        pthread_mutex_unlock(&s->mu);
        return GH_ENOMEM;
    }
    s->st.accepted++;
    set_phase(c, GH__PH_WAIT_HEAD);
    gh_time_t now = gh_now();
    gh_time_t hto = s->server->cfg.read_header_timeout;
    c->req_start = now;
    c->hdr_deadline = hto ? now + hto : 0;
    tl_add(s, c, GH__TL_HEAD, c->hdr_deadline);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

gh_conn_t *gh__connset_lookup(gh__loop_t *s, int fd, unsigned long id)
{
    gh_conn_t *c = NULL;
    pthread_mutex_lock(&s->mu);
    if ((size_t)fd < s->conns_cap && s->conns[fd] && (s->conns[fd]->id & GH__ID_MASK) == id)
        c = s->conns[fd];
    pthread_mutex_unlock(&s->mu);
    return c;
}

/* ---- phases ------------------------------------------------------------------------- */

int gh__connset_claim(gh_conn_t *c)
{
    gh__loop_t *s = gh__conn_loop(c);
    /* A worker handing it back may reclaim it concurrently. */
    pthread_mutex_lock(&s->mu);
    int ph = gh__conn_phase(c);
    if (ph != GH__PH_WAIT_HEAD && ph != GH__PH_IDLE) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    /* A connection still waiting for its head keeps its place in the header timer list:
     * its deadline did not change, and appending it again behind later deadlines would
     * let it expire only when they do (the lists are FIFO, checked at the head). Only
     * the poller expires timers, and it is the thread reading this head. */
    if (ph == GH__PH_IDLE) {
        tl_remove(s, c);
        gh_time_t now = gh_now();
        c->req_start = now;
        gh_time_t hto = c->server->cfg.read_header_timeout;
        c->hdr_deadline = hto ? now + hto : 0;
    }
    set_phase(c, GH__PH_PREAD);
    pthread_mutex_unlock(&s->mu);
    return 1;
}

void gh__connset_wait_head(gh_conn_t *c)
{
    gh__loop_t *s = gh__conn_loop(c);
    pthread_mutex_lock(&s->mu);
    set_phase(c, GH__PH_WAIT_HEAD);
    if (c->hdr_deadline && c->timer_list != GH__TL_HEAD)
        tl_add(s, c, GH__TL_HEAD, c->hdr_deadline);
    pthread_mutex_unlock(&s->mu);
}

int gh__connset_activate(gh_conn_t *c)
{
    gh__loop_t *s = gh__conn_loop(c);
    pthread_mutex_lock(&s->mu);
    if (gh__conn_phase(c) != GH__PH_PREAD) { /* closed meanwhile by gh_server_close */
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    tl_remove(s, c);
    set_phase(c, GH__PH_ACTIVE);
    pthread_mutex_unlock(&s->mu);
    return 1;
}

void gh__connset_queued(gh_conn_t *c)
{
    gh__loop_t *s = gh__conn_loop(c);
    pthread_mutex_lock(&s->mu);
    tl_remove(s, c);
    set_phase(c, GH__PH_QUEUED);
    pthread_mutex_unlock(&s->mu);
}

/* The serving thread's own steps (ACTIVE <-> FINISH) take no lock: the only other
 * writer of a served connection's phase is gh__server_conn_close (gh_server_close, a
 * write error elsewhere), and a closed connection stays closed: the swap fails then,
 * and the serving thread's next step (gh__server_conn_park) sees CLOSED. */
void gh__conn_set_serving(gh_conn_t *c, int serving)
{
    int ph = serving ? GH__PH_ACTIVE : GH__PH_FINISH;
    int old = gh__conn_phase(c);
    while (old != GH__PH_CLOSED && old != GH__PH_HIJACKED && old != ph) {
        if (is_active_phase(old)) {
            if (__atomic_compare_exchange_n(&c->phase, &old, ph, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                return;
        } else {
            /* From PREAD (the poller starts serving): counted, under the lock. */
            gh__loop_t *l = gh__conn_loop(c);
            pthread_mutex_lock(&l->mu);
            if (gh__conn_phase(c) == old)
                set_phase(c, ph);
            pthread_mutex_unlock(&l->mu);
            return;
        }
    }
}

gh_conn_t *gh__connset_expired(gh__loop_t *s, gh_time_t now, gh_time_t *next)
{
    gh_conn_t *victim = NULL;
    pthread_mutex_lock(&s->mu);
    *next = 0;
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
        if (!*next || h->deadline < *next)
            *next = h->deadline;
    }
    pthread_mutex_unlock(&s->mu);
    return victim;
}

gh_conn_t *gh__connset_scan(gh__loop_t *s, size_t *i, int idle)
{
    /* Each caller closes the connection it gets, which drops the lock: scanning resumes
     * where the last one was instead of from the start (10k connections, not 10k^2
     * looks). */
    gh_conn_t *victim = NULL;
    pthread_mutex_lock(&s->mu);
    for (; *i < s->conns_cap && !victim; (*i)++) {
        gh_conn_t *c = s->conns[*i];
        if (!c)
            continue;
        if (!idle) {
            victim = c;
            continue;
        }
        int ph = gh__conn_phase(c);
        if (ph == GH__PH_IDLE || ph == GH__PH_LINGER ||
            (ph == GH__PH_WAIT_HEAD && gh_reader_buffered(c->bufr, NULL) == 0 && !c->big_len)) {
            victim = c;
            set_phase(c, GH__PH_PREAD); /* not reclaimable by a worker any more */
        }
    }
    pthread_mutex_unlock(&s->mu);
    return victim;
}

void gh__server_conn_close(gh_conn_t *c)
{
    gh__loop_t *s = gh__conn_loop(c);
    pthread_mutex_lock(&s->mu);
    int ph = gh__conn_phase(c);
    if (ph == GH__PH_CLOSED || ph == GH__PH_HIJACKED) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    int had = table_drop(s, c);
    set_phase(c, GH__PH_CLOSED);
    if (had)
        s->st.closed++;
    pthread_cond_broadcast(&s->server->idle_cv);
    pthread_mutex_unlock(&s->mu);
    (void)GH__CONN_TR(c)->close(c->fd);
    gh_ctx_cancel(c->ctx, GH_ECANCELED);
    gh__server_set_state(c, GH_STATE_CLOSED);
}

void gh__server_conn_forget(gh_conn_t *c)
{
    gh__loop_t *s = gh__conn_loop(c);
    pthread_mutex_lock(&s->mu);
    table_drop(s, c);
    set_phase(c, GH__PH_HIJACKED);
    s->st.hijacked++;
    pthread_mutex_unlock(&s->mu);
    /* The descriptor now belongs to the user: take it out of the poller's set. */
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fdnum, NULL);
}

void gh__server_conn_park(gh_conn_t *c, int ph, gh_time_t deadline, int rearm)
{
    gh__loop_t *s = gh__conn_loop(c);
    int li = ph == GH__PH_IDLE ? GH__TL_IDLE : GH__TL_HEAD;
    pthread_mutex_lock(&s->mu);
    int cur = gh__conn_phase(c);
    if (cur == GH__PH_CLOSED ||
        (__atomic_load_n(&s->server->stopping, __ATOMIC_SEQ_CST) && ph == GH__PH_IDLE)) {
        pthread_mutex_unlock(&s->mu);
        gh__server_conn_close(c);
        return;
    }
    set_phase(c, ph);
    /* The poller sleeps until the earliest deadline it knew of; a first entry in a
     * timer list is one it did not know, so wake it to recompute. */
    int first = s->tl_head[li] == NULL;
    if (deadline)
        tl_add(s, c, li, deadline);
    pthread_mutex_unlock(&s->mu);
    if (!rearm)
        return; /* the poller itself, which never stopped watching for input */
    if (first && deadline)
        gh__loop_wake(s);
    /* Input that arrived since the caller's last read is reported by this change of
     * interest, to the poller, which then owns the connection. */
    gh__loop_interest(c, 1, EPOLL_CTL_MOD);
}

void gh__server_conn_linger(gh_conn_t *c)
{
    gh__loop_t *s = gh__conn_loop(c);
    gh_fd_shutdown_write(c->fd);
    pthread_mutex_lock(&s->mu);
    if (gh__conn_phase(c) == GH__PH_CLOSED) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    set_phase(c, GH__PH_LINGER);
    int first = s->tl_head[GH__TL_LINGER] == NULL; /* see gh__server_conn_park */
    tl_add(s, c, GH__TL_LINGER, gh_now() + GH__LINGER_NS);
    pthread_mutex_unlock(&s->mu);
    if (first)
        gh__loop_wake(s);
    /* Input already there is reported by this change of interest. */
    gh__loop_interest(c, 1, EPOLL_CTL_MOD);
}
