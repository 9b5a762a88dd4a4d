/*
 * lib/loop.c: the event loops (each a poller's role), the thread pool and the monitor.
 *
 * A server runs N loops (config `loops`; by default one per CPU the process may run
 * on). Each loop has its own epoll set, timer lists and slice of the connection table,
 * and owns the connections it accepted from accept to close: a request never changes
 * thread unless its handler blocks. Each loop accepts on its own SO_REUSEPORT clone of
 * a listener the server made (the kernel spreads connections by their addresses, and a
 * busy loop keeps its share); a listener the program handed in (gh_server_listen_fd,
 * systemd) or a Unix socket is shared, registered with EPOLLEXCLUSIVE in every loop.
 *
 * A loop's poller owns every one of its connections that waits for bytes: new ones,
 * idle keep-alive ones, and ones whose request head is still arriving. It reads heads
 * without blocking, so a client trickling its headers (slowloris) costs a table slot
 * and a timer, never a thread.
 *
 * A complete head is served by the thread that read it, right there: most handlers
 * answer in microseconds, and a batch of ready connections is then served with no
 * thread hand-over and no epoll_ctl at all (an event loop's cost). The poller is a
 * role, not a thread: a monitor watches for a handler that runs longer than
 * handoff_timeout (blocked on I/O, or busy), and then gives the role to another
 * thread of the pool, which goes on with the rest of the batch while the first one
 * finishes its request as a plain worker (Go's sysmon retaking a P from a goroutine
 * stuck in a system call). A blocking handler thus delays other connections of its loop
 * by one or two handoff periods, those of other loops not at all, and holds a thread
 * only while it blocks. One pool and one monitor serve every loop.
 *
 * The queue of connections waiting for a worker is a traced ring (server->queue).
 * Connections and their phases belong to lib/connset.c.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"

static void *pool_main(void *arg);

static const size_t loop_ptrs[] = {
    offsetof(struct gh__loop, server),
    offsetof(struct gh__loop, conns),
    offsetof(struct gh__loop, tl_head) + 0 * sizeof(void *),
    offsetof(struct gh__loop, tl_head) + 1 * sizeof(void *),
    offsetof(struct gh__loop, tl_head) + 2 * sizeof(void *),
    offsetof(struct gh__loop, tl_head) + 3 * sizeof(void *),
    offsetof(struct gh__loop, tl_tail) + 0 * sizeof(void *),
    offsetof(struct gh__loop, tl_tail) + 1 * sizeof(void *),
    offsetof(struct gh__loop, tl_tail) + 2 * sizeof(void *),
    offsetof(struct gh__loop, tl_tail) + 3 * sizeof(void *),
    offsetof(struct gh__loop, evs),
    offsetof(struct gh__loop, fds),
    offsetof(struct gh__loop, timers),
    offsetof(struct gh__loop, watches),
};
static gh_type_t loop_type = GH_TYPE_INIT("loop", struct gh__loop, loop_ptrs);

int gh__loop_new(gh_server_t *s, int i, gh__loop_t **out)
{
    *out = NULL;
    gh__loop_t *l = gh_obj_new(&loop_type);
    if (!l)
        return GH_ENOMEM;
    l->server = s;
    l->idx = i;
    pthread_mutex_init(&l->mu, NULL);
    for (int k = 0; k < GH__MAX_LISTENERS; k++)
        l->lfd[k] = -1;
    l->poller_vacant = 1; /* taken by a pool thread at start */
    l->conns_cap = 1024;
    l->conns = gh__ptrs_new(l->conns_cap);
    /* Atomic GC memory: event numbers hold no pointers; collected with the loop. */
    l->evs = gh_bytes_new(GH__BATCH * sizeof *l->evs);
    if (!l->conns || !l->evs)
        return GH_ENOMEM;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        return -errno;
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->wakefd < 0) {
        int e = -errno;
        close(l->epfd);
        return e;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = GH__TAG_WAKE};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev);
    *out = l;
    return 0;
}

void gh__loop_close(gh_server_t *s)
{
    for (int i = 0; i < s->n_loops; i++) {
        gh__loop_t *l = s->loops[i];
        /* Under mu: gh__loop_fd_mod/del check epfd and use it under mu too. */
        pthread_mutex_lock(&l->mu);
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->wakefd >= 0)
            close(l->wakefd);
        l->epfd = l->wakefd = -1;
        pthread_mutex_unlock(&l->mu);
    }
}

void gh__loop_wake(gh__loop_t *l)
{
    uint64_t one = 1;
    ssize_t rc;
    do
        rc = write(l->wakefd, &one, sizeof one);
    while (rc < 0 && errno == EINTR);
}

/* ---- listeners ----------------------------------------------------------------------- */

/* A second listening socket on fd's address with SO_REUSEPORT, for one more loop; -1
 * when fd is not a TCP socket or the kernel refuses (then the loops share fd). fd gets
 * SO_REUSEPORT too: a socket joins a port's group at listen() when both have it, and
 * the first one's group is made then. Only the server's own sockets are cloned: another
 * process of the same user could join a group, which a program handing in its own
 * socket did not ask for. */
static int clone_listener(int fd)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss); /* the analyzer cannot see getsockname fill it */
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return -1;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        return -1;
    int c = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c < 0)
        return -1;
    int v6only = 0;
    socklen_t vl = sizeof v6only;
    if (setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(c, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        (ss.ss_family == AF_INET6 &&
         (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &vl) < 0 ||
          setsockopt(c, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)) ||
        bind(c, (struct sockaddr *)&ss, sl) < 0 || listen(c, 4096) < 0) {
        close(c);
        return -1;
    }
    return c;
}

static void listener_watch(gh__loop_t *l, int i, int on)
{
    int fd = l->lfd[i];
    if (fd < 0)
        return;
    if (!on) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
        return;
    }
    /* A shared listener wakes one waiting loop per connection (EPOLLEXCLUSIVE), not
     * all of them; EPOLLEXCLUSIVE allows no EPOLL_CTL_MOD, hence DEL/ADD for back-off. */
    int shared = fd == l->server->lfd[i] && l->server->n_loops > 1;
    struct epoll_event ev = {.events = EPOLLIN | (shared ? EPOLLEXCLUSIVE : 0),
                             .data.u64 = GH__TAG_LISTENER | (uint64_t)i};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void gh__loop_add_listener(gh_server_t *s, int i)
{
    int fd = s->lfd[i];
    for (int k = 0; k < s->n_loops; k++) {
        gh__loop_t *l = s->loops[k];
        int mine = -1;
        /* Loop 0 keeps fd; loop k > 0 gets a clone while the clones before it worked
         * (loop 1 always tries: loop 0's fd is the original, not a failed clone). */
        if (k > 0 && s->lowned[i] && (k == 1 || s->loops[k - 1]->lfd[i] != fd))
            mine = clone_listener(fd);
        l->lfd[i] = mine >= 0 ? mine : fd;
    }
    /* Clones failed part-way: loop 0 keeps fd alone for those that share it; fine. */
    for (int k = 0; k < s->n_loops; k++)
        listener_watch(s->loops[k], i, 1);
}

void gh__loop_close_listeners(gh_server_t *s)
{
    for (int i = 0; i < s->n_listeners; i++) {
        int fd = s->lfd[i];
        for (int k = 0; k < s->n_loops; k++) {
            gh__loop_t *l = s->loops[k];
            int lf = l->lfd[i];
            if (lf < 0)
                continue;
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, lf, NULL);
            __atomic_store_n(&l->lfd[i], -1, __ATOMIC_RELEASE);
            if (lf != fd)
                close(lf);
        }
        if (fd >= 0) {
            gh__listen_close(fd, s->lowned[i]);
            s->lfd[i] = -1;
        }
    }
}

/* ---- another module's descriptors and timers (lib/loop.h) -------------------------- */

/*
 * A foreign descriptor on a loop.
 * Alloc:     gh_obj_new in gh__loop_fd_add.
 * Lifetime:  kept by loop->fds[fd] until gh__loop_fd_del; keeps obj alive.
 * OS state:  none: fd is the caller's (only its epoll registration is the loop's).
 * Threads:   any, under the loop's mu; fn runs on the loop's poller thread.
 */
struct gh__loop_fd {
    void *obj;
    /* not traced */
    gh__loop_fd_fn fn;
    int fd;
};
static const size_t lfd_ptrs[] = {offsetof(struct gh__loop_fd, obj)};
static gh_type_t lfd_type = GH_TYPE_INIT("loopFd", struct gh__loop_fd, lfd_ptrs);

/*
 * A one-shot timer on a loop.
 * Alloc:     gh_obj_new in gh__loop_timer_add.
 * Lifetime:  kept by the loop's list until it fires or is cancelled; keeps obj alive.
 * Threads:   any, under the loop's mu; fn runs on the loop's poller thread.
 */
struct gh__loop_timer {
    gh__loop_timer_t *next;
    void *obj;
    gh__loop_t *loop;
    /* not traced */
    gh__loop_timer_fn fn;
    gh_time_t at;
};
static const size_t ltm_ptrs[] = {offsetof(struct gh__loop_timer, next),
                                  offsetof(struct gh__loop_timer, obj),
                                  offsetof(struct gh__loop_timer, loop)};
static gh_type_t ltm_type = GH_TYPE_INIT("loopTimer", struct gh__loop_timer, ltm_ptrs);

static gh__loop_t *loop_of(gh_server_t *s, int i)
{
    return i >= 0 && i < s->n_loops ? s->loops[i] : NULL;
}

int gh__loop_fd_add(gh_server_t *s, int i, int fd, uint32_t events, gh__loop_fd_fn fn,
                    void *obj)
{
    gh__loop_t *l = loop_of(s, i);
    if (!l || fd < 0 || !fn)
        return GH_EINVAL;
    gh__loop_fd_t *e = gh_obj_new(&lfd_type);
    if (!e)
        return GH_ENOMEM;
    e->obj = obj;
    e->fn = fn;
    e->fd = fd;
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    if (__atomic_load_n(&s->closed, __ATOMIC_SEQ_CST))
        rc = GH_ECLOSED;
    else if ((size_t)fd >= l->fds_cap) {
        size_t cap = l->fds_cap ? l->fds_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        gh__loop_fd_t **n = gh__ptrs_new(cap);
        if (!n)
            rc = GH_ENOMEM;
        else {
            if (l->fds)
                memcpy(n, l->fds, l->fds_cap * sizeof *n);
            l->fds = n;
            l->fds_cap = cap;
        }
    }
    if (rc == 0 && l->fds[fd])
        rc = GH_EEXIST;
    if (rc == 0) {
        struct epoll_event ev = {.events = events, .data.u64 = GH__TAG_FOREIGN | (uint32_t)fd};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            rc = -errno;
        else
            l->fds[fd] = e;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int gh__loop_fd_mod(gh_server_t *s, int i, int fd, uint32_t events)
{
    gh__loop_t *l = loop_of(s, i);
    if (!l || fd < 0)
        return GH_EINVAL;
    pthread_mutex_lock(&l->mu);
    int rc = GH_ENOENT;
    if ((size_t)fd < l->fds_cap && l->fds[fd]) {
        struct epoll_event ev = {.events = events, .data.u64 = GH__TAG_FOREIGN | (uint32_t)fd};
        /* After the close the epoll set is gone (and its number maybe reused). */
        rc = l->epfd < 0 ? 0 : epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int fd_remove(gh_server_t *s, int i, int fd, void *obj, int open)
{
    gh__loop_t *l = loop_of(s, i);
    if (!l || fd < 0)
        return GH_EINVAL;
    pthread_mutex_lock(&l->mu);
    int rc = GH_ENOENT;
    if ((size_t)fd < l->fds_cap && l->fds[fd] && (!obj || l->fds[fd]->obj == obj)) {
        if (open && l->epfd >= 0)
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
        l->fds[fd] = NULL;
        rc = 0;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int gh__loop_fd_del(gh_server_t *s, int i, int fd, void *obj)
{
    return fd_remove(s, i, fd, obj, 1);
}

int gh__loop_fd_forget(gh_server_t *s, int i, int fd, void *obj)
{
    return fd_remove(s, i, fd, obj, 0);
}

/* The entry of foreign descriptor fd on l, or NULL: a stale event for a descriptor
 * removed in the same batch finds none and is dropped. */
static gh__loop_fd_t *foreign_entry(gh__loop_t *l, int fd)
{
    gh__loop_fd_t *e = NULL;
    pthread_mutex_lock(&l->mu);
    if ((size_t)fd < l->fds_cap)
        e = l->fds[fd];
    pthread_mutex_unlock(&l->mu);
    return e;
}

int gh__loop_timer_add(gh_server_t *s, int i, gh_time_t at, gh__loop_timer_fn fn, void *obj,
                       gh__loop_timer_t **out)
{
    if (out)
        *out = NULL;
    gh__loop_t *l = loop_of(s, i);
    if (!l || !fn)
        return GH_EINVAL;
    gh__loop_timer_t *t = gh_obj_new(&ltm_type);
    if (!t)
        return GH_ENOMEM;
    t->obj = obj;
    t->fn = fn;
    t->at = at;
    t->loop = l;
    pthread_mutex_lock(&l->mu);
    if (__atomic_load_n(&s->closed, __ATOMIC_SEQ_CST)) {
        pthread_mutex_unlock(&l->mu);
        return GH_ECLOSED;
    }
    gh__loop_timer_t **p = &l->timers;
    while (*p && (*p)->at <= at)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
    int first = l->timers == t;
    pthread_mutex_unlock(&l->mu);
    if (first)
        gh__loop_wake(l); /* the poller sleeps until a later deadline */
    if (out)
        *out = t;
    return 0;
}

int gh__loop_timer_cancel(gh_server_t *s, gh__loop_timer_t *t)
{
    (void)s;
    gh__loop_t *l = t->loop;
    pthread_mutex_lock(&l->mu);
    int rc = GH_ENOENT;
    for (gh__loop_timer_t **p = &l->timers; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            t->next = NULL;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* The next of l's timers due at now, taken off the list; NULL when none is, and *next
 * gets the soonest one left (0: none). */
static gh__loop_timer_t *due_timer(gh__loop_t *l, gh_time_t now, gh_time_t *next)
{
    pthread_mutex_lock(&l->mu);
    gh__loop_timer_t *t = l->timers;
    if (t && t->at <= now) {
        l->timers = t->next;
        t->next = NULL;
    } else {
        *next = t ? t->at : 0;
        t = NULL;
    }
    pthread_mutex_unlock(&l->mu);
    return t;
}

/* ---- the plain transport (lib/internal.h) ------------------------------------------- */

static ssize_t plain_read(gh_fd_t *fd, void *buf, size_t n, int nowait)
{
    return nowait ? gh_fd_read_nowait(fd, buf, n) : gh_fd_read(fd, buf, n);
}

static ssize_t plain_write(gh_fd_t *fd, const void *buf, size_t n)
{
    return gh_fd_write(fd, buf, n);
}

static uint32_t plain_want(gh_fd_t *fd)
{
    (void)fd;
    return EPOLLIN;
}

static int plain_close(gh_fd_t *fd) { return gh_fd_close(fd); }

const gh__transport_t gh__transport_plain = {plain_read, plain_write, plain_want, plain_close};

/* ---- interest ------------------------------------------------------------------------ */

/* Connections are edge-triggered. While the poller owns one (parked, or its head being
 * read) it watches for input; while a worker owns it, only for a hang-up (the
 * "background read" of Go): requests that follow on a busy keep-alive connection then
 * wake only the worker that waits for them, never the poller, and cost no epoll_ctl.
 * Changing the interest back to input reports input that is already there, so nothing
 * that arrived in between is missed. A hang-up edge is remembered in c->rdhup_seen for
 * the worker to act on when its handler starts. */
void gh__loop_interest(gh_conn_t *c, int input, int op)
{
    struct epoll_event ev;
    ev.events = (input ? GH__CONN_TR(c)->want(c->fd) : 0) | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = ((uint64_t)(c->id & GH__ID_MASK) << 32) | (uint32_t)c->fdnum;
    /* Another thread may close the connection meanwhile: holding the descriptor keeps
     * its number from being reused (and re-registered for another connection) under
     * this call. */
    if (gh_fd_acquire(c->fd) < 0)
        return;
    epoll_ctl(gh__conn_loop(c)->epfd, op, c->fdnum, &ev);
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
 * connections at once, one more per loop holds its poller's role meanwhile, and one
 * more per thread deposed inside another module's callback (n_foreign_out: such a
 * thread holds no place among max_workers, and without a thread of its own a vacant
 * role would wait for the callback to return; see handoff). mu held. */
static void grow_pool(gh_server_t *s)
{
    int cap = s->max_workers + s->n_loops + s->n_foreign_out;
    if (s->closed || s->n_threads >= cap)
        return;
    if (s->n_threads == s->tids_cap) {
        /* Only past the first cap (max_workers + n_loops, made by gh_server_new). */
        int n = s->tids_cap * 2;
        pthread_t *t = gh_bytes_new((size_t)n * sizeof *t);
        uint8_t *x = gh_bytes_new((size_t)n);
        if (!t || !x)
            return;
        memcpy(t, s->tids, (size_t)s->n_threads * sizeof *t);
        memset(x, 0, (size_t)n);
        memcpy(x, s->texited, (size_t)s->n_threads);
        s->tids = t;
        s->texited = x;
        s->tids_cap = n;
    }
    pthread_t t;
    if (gh__thread_start_quiet(&t, pool_main, s) == 0)
        s->tids[s->n_threads++] = t;
}

/* Work appeared (a queued connection or a poller's role): wake an idle pool thread, or
 * start one. Broadcast: both kinds of work are rare, and each woken thread takes a
 * role first, then the queue. mu held. */
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
    gh__connset_queued(c);
    /* q_cap is never 0: 64 from gh_server_new, only doubled above. */
    /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
    s->queue[(s->q_head + s->q_len) % s->q_cap] = c;
    __atomic_store_n(&s->q_len, s->q_len + 1, __ATOMIC_RELAXED); /* kick_queue peeks */
    serve_queue(s);
    return 0;
}

/* The connection this thread serves (its handler may call gh_server_shutdown). Not a
 * GC root: the serving frames hold it. */
static __thread gh_conn_t *tls_conn;

gh_conn_t *gh__loop_current(gh_server_t *s)
{
    gh_conn_t *c = tls_conn;
    return c && c->server == s ? c : NULL;
}

__attribute__((noinline)) static void worker_run_one(gh_server_t *s)
{
    gh_conn_t *c = s->queue[s->q_head];
    s->queue[s->q_head] = NULL;
    s->q_head = (s->q_head + 1) % s->q_cap;
    __atomic_store_n(&s->q_len, s->q_len - 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->running, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&s->mu);
    tls_conn = c;
    gh__conn_serve(c);
    tls_conn = NULL;
    __atomic_sub_fetch(&s->running, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&s->mu);
}

/* What the thread holding a loop's poller role carries. */
typedef struct {
    gh__loop_t *l; /* the loop (also kept by the server) */
    unsigned gen;  /* the role's generation when this thread took it */
    int dirty;     /* it served a request since its batch began (poller_dirty is set) */
    int deposed;   /* the monitor gave the role to another thread */
    int reserved;  /* it holds one of the max_workers places (server->running) */
} gh__pctx_t;

static void poll_loop(gh__loop_t *l, gh__pctx_t *pc);

/* A loop whose poller's role waits for a thread, or NULL. mu held. */
static gh__loop_t *vacant_loop(gh_server_t *s)
{
    for (int i = 0; i < s->n_loops; i++)
        if (__atomic_load_n(&s->loops[i]->poller_vacant, __ATOMIC_SEQ_CST))
            return s->loops[i];
    return NULL;
}

/* Take l's role and run its loop until deposed or closed. Called and returns with mu
 * held. noinline: its frames are what the caller scrubs. */
__attribute__((noinline)) static void take_role(gh_server_t *s, gh__loop_t *l)
{
    gh__pctx_t pc = {l, 0, 0, 0, 0};
    __atomic_store_n(&l->poller_vacant, 0, __ATOMIC_SEQ_CST);
    l->vacant_foreign = 0; /* its deposed thread uncounts itself (foreign_end) */
    pc.gen = __atomic_add_fetch(&l->poller_gen, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&l->poller_dirty, 0, __ATOMIC_SEQ_CST);
    /* The request the monitor saw running is the deposed thread's now: the mark is
     * cleared, or the monitor would depose this thread for it too. */
    uint64_t m = __atomic_load_n(&l->inl, __ATOMIC_SEQ_CST);
    while ((m & 1) && !__atomic_compare_exchange_n(&l->inl, &m, m & ~(uint64_t)1, 0,
                                                   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
    serve_queue(s); /* a queued connection may have woken this thread */
    pthread_mutex_unlock(&s->mu);
    poll_loop(l, &pc);
    pthread_mutex_lock(&s->mu);
}

static void *pool_main(void *arg)
{
    gh_server_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->closed)
            break;
        gh__loop_t *l = vacant_loop(s);
        if (l) {
            take_role(s, l);
            l = NULL;
            /* Deposed: the request it finished as a worker left stale slots (notes
             * §3.1); until they are cleared the thread counts as a busy worker, so that
             * "no active connection and every worker idle" means clean stacks. */
            pthread_mutex_unlock(&s->mu);
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
    /* Leaving: say so to a shutdown waiting for its deadline; the last one out closes
     * the loops' descriptors if the server left that to it (a straggler may have used
     * them up to here). */
    for (int i = 0; i < s->n_threads; i++)
        if (pthread_equal(s->tids[i], pthread_self()))
            s->texited[i] = 1;
    s->n_exited++;
    pthread_cond_broadcast(&s->exit_cv);
    if (s->n_exited == s->n_threads && s->fds_pending) {
        s->fds_pending = 0;
        gh__loop_close(s);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- the monitor -------------------------------------------------------------------- */

/* l's poller starts serving a request (foreign: another module's callback); returns
 * the value to pass to inl_end. */
static uint64_t inl_begin(gh__loop_t *l, int foreign)
{
    uint64_t v = ((__atomic_load_n(&l->inl, __ATOMIC_RELAXED) >> 2) + 1) << 2 |
                 (foreign ? GH__INL_FOREIGN : 0) | 1;
    __atomic_store_n(&l->inl, v, __ATOMIC_SEQ_CST);
    gh_server_t *s = l->server;
    if (__atomic_load_n(&s->mon_sleeping, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&s->mon_mu);
        pthread_cond_signal(&s->mon_cv);
        pthread_mutex_unlock(&s->mon_mu);
    }
    return v;
}

/* The request ended. A deposed thread must not clear its successor's mark: only the
 * value it set is cleared. */
static void inl_end(gh__loop_t *l, uint64_t v)
{
    __atomic_compare_exchange_n(&l->inl, &v, v & ~(uint64_t)1, 0, __ATOMIC_SEQ_CST,
                                __ATOMIC_SEQ_CST);
}

/* 1 while the calling thread still holds l's role it took as generation gen. A vacancy
 * the monitor opened that no thread has taken yet is taken back. The stores and loads
 * are sequentially consistent with the monitor's: either it sees the request ended
 * (inl_end) and opens nothing, or this sees the vacancy. */
static int still_poller(gh__loop_t *l, unsigned gen)
{
    if (__atomic_load_n(&l->poller_gen, __ATOMIC_SEQ_CST) != gen)
        return 0;
    if (!__atomic_load_n(&l->poller_vacant, __ATOMIC_SEQ_CST))
        return 1;
    gh_server_t *s = l->server;
    pthread_mutex_lock(&s->mu);
    int mine = __atomic_load_n(&l->poller_gen, __ATOMIC_SEQ_CST) == gen;
    if (mine) {
        __atomic_store_n(&l->poller_vacant, 0, __ATOMIC_SEQ_CST);
        if (l->vacant_foreign) {
            l->vacant_foreign = 0; /* the callback's thread goes on as the poller */
            s->n_foreign_out--;
        }
        __atomic_store_n(&l->poller_dirty, 1, __ATOMIC_SEQ_CST); /* it is mid-request */
    }
    pthread_mutex_unlock(&s->mu);
    return mine;
}

/* The loop and mark of the request this thread serves on a poller's role, if any. Not
 * a GC root: the loop is kept by its server, kept by the thread's start argument. */
static __thread gh__loop_t *tls_inline;
static __thread uint64_t tls_mark;

static void handoff(gh__loop_t *l, uint64_t v);

/* Go's entersyscallblock: a handler about to block in gchttp (a context wait, a socket
 * wait) gives the poller's role away at once instead of after a monitor tick, so that
 * other connections, and a hang-up of its own (close-notify), wait for a thread wake-up
 * rather than for up to two handoff periods. Once per request. */
void gh__server_will_block(void)
{
    gh__loop_t *l = tls_inline;
    if (!l)
        return;
    tls_inline = NULL;
    handoff(l, tls_mark);
}

/* The request marked v has run for a whole tick, or is about to block: give l's
 * poller's role away. */
static void handoff(gh__loop_t *l, uint64_t v)
{
    gh_server_t *s = l->server;
    pthread_mutex_lock(&s->mu);
    if (!s->closed && !__atomic_load_n(&l->poller_vacant, __ATOMIC_SEQ_CST) &&
        __atomic_load_n(&l->inl, __ATOMIC_SEQ_CST) == v) {
        __atomic_store_n(&l->poller_vacant, 1, __ATOMIC_SEQ_CST);
        /* The deposed thread counts as a busy worker from now on; the role's next
         * holder starts clean. */
        __atomic_store_n(&l->poller_dirty, 0, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&l->st.handoffs, 1, __ATOMIC_RELAXED);
        if (v & GH__INL_FOREIGN) {
            /* A callback holds no place among max_workers: the pool may grow by one
             * for its thread until it takes the role back (still_poller) or, deposed,
             * returns (foreign_end). */
            s->n_foreign_out++;
            l->vacant_foreign = 1;
        }
        /* With every thread busy, the first one to finish takes the role (the stuck
         * one included). */
        want_thread(s);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Another module's callback on the poller (a watched connection's event, a loop
 * timer): marked as an inline request is, so that one that runs long or blocks gives
 * the role away (the same hand-off as a handler's, gh__server_will_block included);
 * the deposed thread returns from its batch once the callback is over. Nothing to mark
 * without a monitor: callbacks then run on the poller unwatched. */
static uint64_t foreign_begin(gh__pctx_t *pc)
{
    gh__loop_t *l = pc->l;
    if (l->server->handoff <= 0)
        return 0;
    uint64_t m = inl_begin(l, 1);
    tls_mark = m;
    tls_inline = l;
    return m;
}

static void release_place(gh__pctx_t *pc);

static void foreign_end(gh__pctx_t *pc, uint64_t m)
{
    if (!m)
        return;
    tls_inline = NULL;
    inl_end(pc->l, m);
    if (!still_poller(pc->l, pc->gen)) {
        /* Deposed for this callback (only handoff opens a vacancy, for the running
         * mark): handoff counted the thread as an extra one; no longer. */
        gh_server_t *s = pc->l->server;
        pthread_mutex_lock(&s->mu);
        s->n_foreign_out--;
        pthread_mutex_unlock(&s->mu);
        pc->deposed = 1;
        release_place(pc);
    }
}

/* The monitor's tick: until t (monotonic), or until the server closes (mon_cv uses
 * the monotonic clock, see gh_server_new), so that a long handoff_timeout does not
 * hold up gh_server_close. */
static void sleep_until(gh_server_t *s, gh_time_t t)
{
    struct timespec ts = {(time_t)(t / GH_SEC), (long)(t % GH_SEC)};
    pthread_mutex_lock(&s->mon_mu);
    while (!__atomic_load_n(&s->closed, __ATOMIC_SEQ_CST) &&
           pthread_cond_timedwait(&s->mon_cv, &s->mon_mu, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&s->mon_mu);
}

/* Is any loop's poller serving a request now? */
static int any_inline(gh_server_t *s)
{
    for (int i = 0; i < s->n_loops; i++)
        if (__atomic_load_n(&s->loops[i]->inl, __ATOMIC_SEQ_CST) & 1)
            return 1;
    return 0;
}

/* Ticks every handoff_timeout while a poller serves requests; a request seen running at
 * two ticks in a row has run for at least one tick (and at most two). After 32 ticks
 * without a request on any loop it sleeps until the next one starts (inl_begin wakes
 * it), so an idle server costs no wake-ups. One monitor watches every loop. */
static void *monitor_main(void *arg)
{
    gh_server_t *s = arg;
    uint64_t last[GH__MAX_LOOPS] = {0};
    int quiet = 0;
    gh_time_t next = gh_now();
    while (!__atomic_load_n(&s->closed, __ATOMIC_SEQ_CST)) {
        next += s->handoff;
        gh_time_t now = gh_now();
        if (next < now)
            next = now + s->handoff; /* stopped for a while (a collection): start over */
        sleep_until(s, next);
        int busy = 0;
        for (int i = 0; i < s->n_loops; i++) {
            gh__loop_t *l = s->loops[i];
            uint64_t v = __atomic_load_n(&l->inl, __ATOMIC_SEQ_CST);
            if ((v & 1) && v == last[i])
                handoff(l, v);
            busy |= v != last[i] || (v & 1);
            last[i] = v;
        }
        quiet = busy ? 0 : quiet + 1;
        if (quiet < 32)
            continue;
        pthread_mutex_lock(&s->mon_mu);
        __atomic_store_n(&s->mon_sleeping, 1, __ATOMIC_SEQ_CST);
        while (!any_inline(s) && !__atomic_load_n(&s->closed, __ATOMIC_SEQ_CST))
            pthread_cond_wait(&s->mon_cv, &s->mon_mu);
        __atomic_store_n(&s->mon_sleeping, 0, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&s->mon_mu);
        /* The request that woke us started before now: one tick more is enough. */
        for (int i = 0; i < s->n_loops; i++)
            last[i] = __atomic_load_n(&s->loops[i]->inl, __ATOMIC_SEQ_CST);
        quiet = 0;
        next = gh_now();
    }
    return NULL;
}

/* ---- the poller -------------------------------------------------------------------- */

static void set_listeners_enabled(gh__loop_t *l, int on)
{
    for (int i = 0; i < l->server->n_listeners; i++)
        listener_watch(l, i, on);
}

/* A new connection of l, registered for input; NULL if it could not be kept. */
__attribute__((noinline)) static gh_conn_t *accept_one(gh__loop_t *l, int fd,
                                                       const struct sockaddr_storage *peer,
                                                       socklen_t pl)
{
    gh_server_t *s = l->server;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    unsigned long id = __atomic_add_fetch(&s->next_id, 1, __ATOMIC_RELAXED);
    gh_conn_t *c = gh__conn_new(s, fd, id);
    if (!c) {
        close(fd);
        return NULL;
    }
    char buf[120];
    gh__format_addr(peer, pl, buf, sizeof buf);
    c->remote = gh_strdup(buf);
    if (gh__connset_add(l, c) < 0) {
        gh_fd_close(c->fd);
        return NULL;
    }
    gh__server_set_state(c, GH_STATE_NEW);
    gh__loop_interest(c, 1, EPOLL_CTL_ADD);
    return c;
}

static void on_conn_event(gh__pctx_t *pc, gh_conn_t *c, uint32_t ev);

static void do_accept(gh__pctx_t *pc, int li)
{
    gh__loop_t *l = pc->l;
    for (int n = 0; n < 64; n++) {
        int lfd = __atomic_load_n(&l->lfd[li], __ATOMIC_ACQUIRE);
        if (lfd < 0)
            return;
        struct sockaddr_storage peer = {0};
        socklen_t pl = sizeof peer;
        int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a while and keep serving the
                 * connections we have; they free descriptors as they close. Back off
                 * from 5 ms up to 1 s, as Go's accept loop does. */
                l->accept_backoff = l->accept_backoff ? l->accept_backoff * 2 : 5 * GH_MSEC;
                if (l->accept_backoff > GH_SEC)
                    l->accept_backoff = GH_SEC;
                l->accept_resume_at = gh_now() + l->accept_backoff;
                __atomic_add_fetch(&l->st.accept_backoffs, 1, __ATOMIC_RELAXED);
                set_listeners_enabled(l, 0);
            }
            return;
        }
        l->accept_backoff = 0;
        gh_conn_t *c = accept_one(l, fd, &peer, pl);
        /* A client usually sends its request right behind the handshake: look for it
         * now rather than after another trip through epoll_wait. */
        if (c)
            on_conn_event(pc, c, EPOLLIN);
        if (pc->deposed)
            return;
    }
}

static void kick_queue(gh_server_t *s);

/* The batch (or the deposed thread's last request) is over: give the place back. */
static void release_place(gh__pctx_t *pc)
{
    if (!pc->reserved)
        return;
    pc->reserved = 0;
    __atomic_sub_fetch(&pc->l->server->running, 1, __ATOMIC_SEQ_CST);
    kick_queue(pc->l->server);
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
    gh__loop_interest(c, 0, EPOLL_CTL_MOD);
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
 * the role away meanwhile, this thread finishes c as a worker and sets pc->deposed.
 * The thread holds a place among max_workers (pc->reserved) from its first inline
 * request of a batch to the batch's end, not per request: server->running is shared by
 * every loop. A deposed thread keeps it while it finishes as a worker. */
__attribute__((noinline)) static void serve_inline(gh__pctx_t *pc, gh_conn_t *c)
{
    gh__loop_t *l = pc->l;
    gh_server_t *s = l->server;
    if (!gh__connset_activate(c))
        return;
    if (!pc->dirty) {
        pc->dirty = 1;
        __atomic_store_n(&l->poller_dirty, 1, __ATOMIC_SEQ_CST);
    }
    for (int k = 1;; k++) {
        uint64_t mark = inl_begin(l, 0);
        tls_mark = mark;
        tls_inline = l;
        tls_conn = c;
        int keep = gh__conn_serve_one(c);
        tls_inline = NULL;
        inl_end(l, mark);
        if (!still_poller(l, pc->gen)) {
            /* Another thread polls now: go on with c as a worker, watching it for a
             * hang-up only (see gh__loop_interest). */
            pc->deposed = 1;
            if (keep) {
                gh__loop_interest(c, 0, EPOLL_CTL_MOD);
                if (gh__conn_next(c, 0))
                    gh__conn_serve(c);
            }
            tls_conn = NULL;
            release_place(pc);
            break;
        }
        tls_conn = NULL;
        if (!keep || !gh__conn_next(c, 1))
            break;
        if (k == GH__INLINE_RUN) {
            /* More pipelined requests: a worker serves them, so others get their turn. */
            hand_to_worker(s, c);
            break;
        }
        gh__conn_set_serving(c, 1);
    }
    kick_queue(s);
}

/* A place among the max_workers threads that may serve at once, for this poller's
 * batch: 0 when every place is taken (the request then waits for a worker). */
static int take_place(gh__pctx_t *pc)
{
    if (pc->reserved)
        return 1;
    gh_server_t *s = pc->l->server;
    if (__atomic_add_fetch(&s->running, 1, __ATOMIC_SEQ_CST) > s->max_workers) {
        __atomic_sub_fetch(&s->running, 1, __ATOMIC_SEQ_CST);
        return 0;
    }
    pc->reserved = 1;
    return 1;
}

/* An edge on a connection. */
__attribute__((noinline)) static void on_conn_event(gh__pctx_t *pc, gh_conn_t *c, uint32_t ev)
{
    gh_server_t *s = pc->l->server;
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
    if (s->handoff > 0 && take_place(pc))
        serve_inline(pc, c);
    else
        hand_to_worker(s, c);
}

/* Close every expired connection of pc's loop and run its due timers; return the ms
 * until the next deadline (-1: none). Returns early if a timer's callback cost this
 * thread the role (pc->deposed). */
static int expire_timers(gh__pctx_t *pc)
{
    gh__loop_t *l = pc->l;
    gh_time_t now = gh_now();
    gh_time_t next = 0;
    for (;;) {
        gh_conn_t *victim = gh__connset_expired(l, now, &next);
        if (!victim)
            break;
        /* Header, idle and linger timeouts end silently, as in Go. */
        gh__server_conn_close(victim);
    }
    gh_time_t tnext = 0;
    gh__loop_timer_t *t;
    while ((t = due_timer(l, now, &tnext))) {
        uint64_t m = foreign_begin(pc);
        t->fn(t->obj);
        foreign_end(pc, m);
        if (pc->deposed)
            return 0;
    }
    if (tnext && (!next || tnext < next))
        next = tnext;
    if (l->accept_resume_at) {
        if (l->accept_resume_at <= now) {
            l->accept_resume_at = 0;
            if (!__atomic_load_n(&l->server->stopping, __ATOMIC_SEQ_CST))
                set_listeners_enabled(l, 1);
        } else if (!next || l->accept_resume_at < next) {
            next = l->accept_resume_at;
        }
    }
    if (!next)
        return -1;
    gh_time_t ms = (next - now) / GH_MSEC + 1;
    return ms > 60000 ? 60000 : (int)ms;
}

/* Graceful shutdown, poller side: close what is idle now. */
static void close_idle(gh__loop_t *l)
{
    size_t i = 0;
    gh_conn_t *victim;
    while ((victim = gh__connset_scan(l, &i, 1)))
        gh__server_conn_close(victim);
}

__attribute__((noinline)) static void handle_event(gh__pctx_t *pc, uint64_t tag, uint32_t ev)
{
    gh__loop_t *l = pc->l;
    if (tag == GH__TAG_WAKE) {
        uint64_t v;
        while (read(l->wakefd, &v, sizeof v) > 0)
            ;
        return;
    }
    if (tag & GH__TAG_FOREIGN) {
        gh__loop_fd_t *e = foreign_entry(l, (int)(uint32_t)tag);
        if (e) {
            uint64_t m = foreign_begin(pc);
            e->fn(e->obj, e->fd, ev);
            foreign_end(pc, m);
        }
        return;
    }
    if (tag & GH__TAG_LISTENER) {
        int li = (int)(tag & 0xff);
        if (li < GH__MAX_LISTENERS && !__atomic_load_n(&l->server->stopping, __ATOMIC_SEQ_CST))
            do_accept(pc, li);
        return;
    }
    int fd = (int)(uint32_t)tag;
    unsigned long id = (unsigned long)(tag >> 32);
    gh_conn_t *c = gh__connset_lookup(l, fd, id);
    if (c)
        on_conn_event(pc, c, ev);
}

/* A loop's poller role: events, timers, shutdown. Returns when the server closes, or
 * when the monitor gave the role to another thread while this one served a request
 * (which it has then finished as a worker); the successor resumes the batch at ev_next. */
static void poll_loop(gh__loop_t *l, gh__pctx_t *pc)
{
    gh_server_t *s = l->server;
    for (;;) {
        for (;;) {
            pthread_mutex_lock(&l->mu);
            if (l->ev_next >= l->ev_n) {
                pthread_mutex_unlock(&l->mu);
                break;
            }
            struct epoll_event ev = l->evs[l->ev_next++];
            pthread_mutex_unlock(&l->mu);
            handle_event(pc, ev.data.u64, ev.events);
            if (pc->deposed)
                return;
        }
        /* Whatever the batch touched is dead now: clear its frames before waiting. */
        gh_gc_scrub_stack();
        if (pc->dirty) {
            pc->dirty = 0;
            __atomic_store_n(&l->poller_dirty, 0, __ATOMIC_SEQ_CST);
        }
        release_place(pc);
        int timeout = expire_timers(pc);
        if (pc->deposed)
            return;
        int stopping = __atomic_load_n(&s->stopping, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&s->closed, __ATOMIC_SEQ_CST))
            return;
        if (stopping)
            close_idle(l);
        int n = epoll_wait(l->epfd, l->evs, GH__BATCH, timeout);
        if (n < 0) {
            /* The collector's stop-the-world signals interrupt epoll_wait on every
             * collection: just wait again. */
            if (errno == EINTR)
                continue;
            return;
        }
        pthread_mutex_lock(&l->mu);
        l->ev_n = n;
        l->ev_next = 0;
        pthread_mutex_unlock(&l->mu);
    }
}

/* ---- start and stop ---------------------------------------------------------------- */

int gh__loop_start(gh_server_t *s)
{
    /* Without a monitor a blocking handler would stall a poller: then every request is
     * served by a worker instead. Decided before the pollers run (they read it). */
    if (s->handoff > 0) {
        if (gh__thread_start_quiet(&s->monitor, monitor_main, s) == 0)
            s->monitor_running = 1;
        else
            s->handoff = -1;
    }
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_loops && rc == 0; i++) {
        rc = gh__thread_start_quiet(&s->tids[s->n_threads], pool_main, s);
        if (rc == 0)
            s->n_threads++;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void gh__loop_wake_all(gh_server_t *s)
{
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_loops; i++)
        gh__loop_wake(s->loops[i]);
    pthread_mutex_lock(&s->mon_mu);
    pthread_cond_broadcast(&s->mon_cv);
    pthread_mutex_unlock(&s->mon_mu);
}

void gh__loop_stop(gh_server_t *s, gh_time_t deadline)
{
    if (s->monitor_running && !pthread_equal(pthread_self(), s->monitor)) {
        gh_thread_join(s->monitor, NULL);
        s->monitor_running = 0;
    }
    pthread_mutex_lock(&s->mu);
    int n = s->n_threads; /* no thread starts once closed is set */
    int self = 0;
    for (int i = 0; i < n; i++)
        self |= pthread_equal(pthread_self(), s->tids[i]);
    pthread_cond_broadcast(&s->work_cv);
    /* Shutdown's deadline: wait for the threads to leave until then, not longer (a
     * handler asleep is not woken by its connection closing). */
    while (deadline && s->n_exited < n - self) {
        gh_time_t now = gh_now();
        if (now >= deadline)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        gh_time_t at = (gh_time_t)ts.tv_sec * GH_SEC + ts.tv_nsec + (deadline - now);
        ts.tv_sec = (time_t)(at / GH_SEC);
        ts.tv_nsec = (long)(at % GH_SEC);
        pthread_cond_timedwait(&s->exit_cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n; i++) {
        pthread_t t = s->tids[i];
        if (pthread_equal(pthread_self(), t) ||
            (deadline && !__atomic_load_n(&s->texited[i], __ATOMIC_ACQUIRE)))
            (void)gh__thread_detach(t);
        else
            gh_thread_join(t, NULL);
    }
    pthread_mutex_lock(&s->mu);
    if (s->n_exited == n)
        gh__loop_close(s);
    else
        s->fds_pending = 1;
    pthread_mutex_unlock(&s->mu);
}
