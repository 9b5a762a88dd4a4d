/*
 * lib/loop.h: private to gchttp. The server's state shared by the three files that
 * make up a server:
 *
 *   server.c   gh_server_new, listen, start, shutdown, close, stats (the public face)
 *   connset.c  each loop's connection set: table by descriptor, timer lists, and every
 *              change of a connection's phase (its only writer)
 *   loop.c     the event loops (each a poller role), the thread pool and the monitor
 *
 * conn.c, hijack.c, response.c and the rest see a server only through lib/internal.h;
 * watch.c also puts descriptors and timers on a loop (the foreign API below).
 */
#ifndef GH_LIB_LOOP_H
#define GH_LIB_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

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

#define GH__MAX_LOOPS 256
#define GH__TAG_FOREIGN (1ULL << 61)
#define GH__INL_FOREIGN 2      /* loop->inl: the mark is a foreign callback's */
/* A connection's event carries (id & GH__ID_MASK) << 32 | fd: below the tag bits. */
#define GH__ID_MASK 0x1fffffffUL

typedef struct gh__loop gh__loop_t;
typedef struct gh__loop_fd gh__loop_fd_t;
typedef struct gh__loop_timer gh__loop_timer_t;

/* Figures a loop counts for itself (summed by gh_server_stats). Counters bumped by a
 * worker serving one of the loop's connections are atomic; the rest change under the
 * loop's mu. */
typedef struct gh__loop_stats {
    unsigned long accepted, requests, bad_requests, hijacked, closed;
    unsigned long accept_backoffs, handoffs;
} gh__loop_stats_t;

/*
 * One event loop: its own epoll set, timer lists and slice of the connection table.
 * Each connection belongs to the loop that accepted it until it is closed or hijacked.
 * Alloc:     gh_obj_new in gh_server_new (loops[i]); evs an atomic GC block.
 * Lifetime:  kept by server->loops.
 * OS state:  epfd, wakefd, and its own listener clones (SO_REUSEPORT), closed by
 *            gh_server_close.
 * Threads:   the thread holding its poller's role (the batch: evs, ev_n), workers
 *            serving its connections; table, timer lists and ev_next under mu (taken
 *            after the server's mu, never before it).
 */
struct gh__loop {
    gh_server_t *server;
    gh_conn_t **conns;   /* traced: conns[fd] */
    gh_conn_t *tl_head[GH__TL_COUNT], *tl_tail[GH__TL_COUNT];
    struct epoll_event *evs; /* atomic GC block: the poller's batch (numbers only) */
    gh__loop_fd_t **fds;     /* traced: foreign descriptors by number (gh__loop_fd_add) */
    gh__loop_timer_t *timers; /* traced: one-shot timers, soonest first */
    void *watches;           /* traced: lib/watch.c's watched connections on this loop */
    /* not traced */
    size_t fds_cap;
    pthread_mutex_t mu;
    int idx;
    int epfd, wakefd;
    int lfd[GH__MAX_LISTENERS]; /* this loop's listener: a clone or the shared one; -1 */
    int ev_n, ev_next;
    size_t conns_cap;
    int open;                /* connections in conns[] */
    int active;              /* atomic: its connections in QUEUED..FINISH (connset.c) */
    int poller_vacant;       /* atomic: the role waits for a thread to take it (server mu) */
    unsigned poller_gen;     /* atomic: bumped by each thread that takes the role */
    int poller_dirty;        /* atomic: the role's thread served a request since its
                              * last stack scrub (stats count it as a busy worker) */
    uint64_t inl;            /* atomic: (seq << 2) | GH__INL_FOREIGN? | 1 while the poller
                              * serves a request or runs a foreign callback */
    int vacant_foreign;      /* the open vacancy deposed a foreign callback (server mu) */
    gh_time_t accept_resume_at;
    gh_time_t accept_backoff;
    gh__loop_stats_t st;
};

/*
 * The server.
 * Alloc:     gh_server_new (gh_obj_new). No _free: gh_server_close releases every OS
 *            resource; the object is collected once unreachable. Its arrays (loops,
 *            thread ids, the queue) are GC memory too.
 * Kept by:   the user; the pool and monitor threads (their start argument).
 * OS state:  the listeners (and, through its loops, epoll and eventfd descriptors),
 *            closed by gh_server_close; the pool and monitor threads, joined there.
 * Threads:   public calls from any thread; fields below `mu` are guarded by it, except
 *            those marked atomic.
 */
struct gh_server_s {
    gh__loop_t **loops;      /* traced: n_loops loops */
    gh_conn_t **queue;       /* traced ring of connections waiting for a worker */
    pthread_t *tids;         /* atomic GC block: thread ids only (max_workers + n_loops) */
    uint8_t *texited;        /* atomic GC block: tids[i] has left pool_main */
    gh_server_config_t cfg;  /* handler_data, conn_state_data, access_log_data traced */
    gh__hjreg_t hj;          /* hijacked registry (lib/hijack.c); hj.links traced */
    /* not traced */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* pool threads wait for the queue or a poller's role */
    pthread_cond_t idle_cv;  /* shutdown waits for active connections */
    pthread_cond_t exit_cv;  /* shutdown waits for pool threads to end */
    int n_exited;            /* pool threads that have left pool_main */
    int fds_pending;         /* the last pool thread out closes the loops' descriptors */
    int n_loops;
    int lfd[GH__MAX_LISTENERS]; /* as opened or adopted; loops may hold clones */
    int lport[GH__MAX_LISTENERS];
    uint8_t lowned[GH__MAX_LISTENERS]; /* made by the server: unlink a Unix path at close */
    int n_listeners;
    /* q_len and stopping: written under mu with __atomic stores, read under mu, or
     * without it through __atomic loads (kick_queue, gh__server_stopping, pollers). */
    size_t q_head, q_len, q_cap;
    int n_threads, n_idle_workers, max_workers;
    int tids_cap;            /* entries of tids and texited */
    int n_foreign_out;       /* threads deposed inside a foreign callback (grow_pool) */
    int running;             /* atomic: threads serving a connection as workers */
    gh_time_t handoff;
    pthread_t monitor;
    pthread_mutex_t mon_mu;
    pthread_cond_t mon_cv;
    int mon_sleeping;        /* atomic: the monitor waits for the next inline request */
    int started, stopping, closed, monitor_running;
    unsigned long next_id;   /* atomic */
    gh_time_t tl_dur[GH__TL_COUNT];
};

/* The loop that owns c. */
static inline gh__loop_t *gh__conn_loop(const gh_conn_t *c)
{
    return c->server->loops[c->loop];
}

/* ---- connset.c: the connection set ------------------------------------------------- */
static inline int gh__conn_phase(const gh_conn_t *c)
{
    return __atomic_load_n(&c->phase, __ATOMIC_ACQUIRE);
}
/* A new connection of loop l (phase WAIT_HEAD, under the header timeout from now).
 * 0 or GH_ENOMEM. */
int gh__connset_add(gh__loop_t *l, gh_conn_t *c);
/* The connection of loop l whose event carries (fd, id), or NULL. */
gh_conn_t *gh__connset_lookup(gh__loop_t *l, int fd, unsigned long id);
/* The poller claims a parked connection (IDLE or WAIT_HEAD -> PREAD) to read its head.
 * 0 if someone else owns it now. */
int gh__connset_claim(gh_conn_t *c);
/* The head read by the poller is still incomplete: PREAD -> WAIT_HEAD, timer kept. */
void gh__connset_wait_head(gh_conn_t *c);
/* The poller serves c itself: PREAD -> ACTIVE. 0 if it was closed meanwhile. */
int gh__connset_activate(gh_conn_t *c);
/* c waits for a worker: -> QUEUED (off its timer list). */
void gh__connset_queued(gh_conn_t *c);
/* The next expired connection of l (taken off its list, phase PREAD) or NULL; *next
 * gets the earliest deadline left (0: none). */
gh_conn_t *gh__connset_expired(gh__loop_t *l, gh_time_t now, gh_time_t *next);
/* Scans l's table from *i: the next connection (any phase), or the next idle one
 * (idle=1: parked without a partial head, or lingering; taken to phase PREAD). NULL at
 * the end. */
gh_conn_t *gh__connset_scan(gh__loop_t *l, size_t *i, int idle);

/* ---- loop.c: another module's descriptors and timers on a loop ---------------------
 *
 * Room for what is not an HTTP connection (a watched hijacked connection, a TLS
 * handshake, a resolver socket): put a descriptor on a given loop with a callback and
 * a GC object, or a one-shot timer. The loop keeps the object alive (a traced table,
 * never epoll data) until the registration is removed or fires. Callbacks run on the
 * thread holding that loop's poller role, between connection events, outside every
 * lock, marked as inline requests are: one that runs past handoff_timeout, or blocks
 * in a gchttp wait, costs its thread the role, which another pool thread takes (the
 * first finishes the callback and leaves the batch). So a callback may be entered
 * again, for another registration, while an earlier one still runs: the module
 * serialises per object if it must (watch.c does). They may add, change or remove
 * registrations, their own included. Level-triggered unless events has EPOLLET. */
typedef void (*gh__loop_fd_fn)(void *obj, int fd, uint32_t events);
typedef void (*gh__loop_timer_fn)(void *obj);
/* Watch fd (not closed by the loop) for events on loop i, calling fn(obj, fd, ready).
 * 0, GH_EINVAL (no such loop), GH_EEXIST (fd is there already), GH_ECLOSED, GH_ENOMEM,
 * or -errno from epoll_ctl. */
int gh__loop_fd_add(gh_server_t *s, int i, int fd, uint32_t events, gh__loop_fd_fn fn,
                    void *obj);
/* Change the events watched for fd on loop i. 0, GH_ENOENT or -errno. */
int gh__loop_fd_mod(gh_server_t *s, int i, int fd, uint32_t events);
/* Stop watching fd on loop i and drop the loop's reference to its object; the callback
 * does not run for it afterwards (unless already running). Only the registration of
 * obj is removed (NULL: whichever is there). Call it before closing fd: once fd is
 * closed its number may be another descriptor's, which epoll_ctl would then remove.
 * 0 or GH_ENOENT. */
int gh__loop_fd_del(gh_server_t *s, int i, int fd, void *obj);
/* For a descriptor closed already (the kernel dropped its epoll registration): drop
 * obj's entry from the table only, never touching a descriptor that reused the
 * number. 0 or GH_ENOENT. */
int gh__loop_fd_forget(gh_server_t *s, int i, int fd, void *obj);
/* Call fn(obj) once on loop i's poller thread at (or soon after) the monotonic time at.
 * *out (if out) gets a handle for gh__loop_timer_cancel. 0, GH_EINVAL, GH_ECLOSED or
 * GH_ENOMEM. */
int gh__loop_timer_add(gh_server_t *s, int i, gh_time_t at, gh__loop_timer_fn fn, void *obj,
                       gh__loop_timer_t **out);
/* Cancel a timer that has not fired: 0, or GH_ENOENT (fired or cancelled already). */
int gh__loop_timer_cancel(gh_server_t *s, gh__loop_timer_t *t);

/* ---- loop.c: the loops, the pool, the monitor -------------------------------------- */
/* Make loop i of s (epoll set, wake-up descriptor, table). 0 or a negative code. */
int gh__loop_new(gh_server_t *s, int i, gh__loop_t **out);
/* Register listener i (s->lfd[i], port known) on every loop: a SO_REUSEPORT clone per
 * loop when the server made it and it is a TCP socket, else the one descriptor shared
 * with EPOLLEXCLUSIVE. */
void gh__loop_add_listener(gh_server_t *s, int i);
/* Take every listener off every loop and close them (clones and originals). */
void gh__loop_close_listeners(gh_server_t *s);
/* Start the monitor (when handoff > 0) and one pool thread per loop, each of which
 * takes a loop's poller role. */
int gh__loop_start(gh_server_t *s);
/* Wake l's poller (shutdown, a new first timer). */
void gh__loop_wake(gh__loop_t *l);
/* Set c's interest on its loop: input (the poller owns it) or only a hang-up (a worker
 * does). */
void gh__loop_interest(gh_conn_t *c, int input, int op);
/* The pool, monitor and pollers see `closed` or `stopping`: wake them all. */
void gh__loop_wake_all(gh_server_t *s);
/* closed is set: join the monitor and the pool threads. A pool thread still running at
 * deadline (0: none, wait for all) is detached and ends on its own, as is the calling
 * thread if it is one of them. The loops' descriptors are closed now, or by the last
 * pool thread out. */
void gh__loop_stop(gh_server_t *s, gh_time_t deadline);
/* Close the loops' epoll and wake-up descriptors (no pool thread left). */
void gh__loop_close(gh_server_t *s);
/* The connection the calling thread serves for s (its handler runs), or NULL. */
gh_conn_t *gh__loop_current(gh_server_t *s);

#endif
