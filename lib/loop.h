/*
 * lib/loop.h: private to gchttp. The server's state shared by the three files that
 * make up a server:
 *
 *   server.c   gh_server_new, listen, start, shutdown, close, stats (the public face)
 *   connset.c  the connection set: table by descriptor, timer lists, and every change
 *              of a connection's phase (its only writer)
 *   loop.c     the event loop (poller role), the thread pool and the monitor
 *
 * conn.c, hijack.c, response.c and the rest see a server only through lib/internal.h.
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

/*
 * The server.
 * Alloc:     gh_server_new (gh_obj_new). No _free: gh_server_close releases every OS
 *            resource; the object is collected once unreachable. Its arrays (thread ids,
 *            the event batch) are GC memory too.
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
    pthread_t *tids;         /* atomic GC block: thread ids only (max_workers + 1) */
    struct epoll_event *evs; /* atomic GC block: the poller's batch (numbers only) */
    gh_server_config_t cfg;  /* handler_data, conn_state_data, access_log_data traced */
    gh__hjreg_t hj;          /* hijacked registry (lib/hijack.c); hj.links traced */
    /* not traced */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* pool threads wait for the queue or the poller's role */
    pthread_cond_t idle_cv;  /* shutdown waits for active connections */
    int ev_n, ev_next;
    int lfd[GH__MAX_LISTENERS];
    int lport[GH__MAX_LISTENERS];
    uint8_t lowned[GH__MAX_LISTENERS]; /* made by the server: unlink a Unix path at close */
    int n_listeners;
    int epfd, wakefd;
    size_t conns_cap;
    /* q_len and stopping: written under mu with __atomic stores, read under mu, or
     * without it through __atomic loads (kick_queue, gh__server_stopping). */
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
    int active;              /* connections in QUEUED..FINISH (atomic; connset.c) */
    int open;                /* connections in conns[] */
    unsigned long next_id;
    gh_time_t accept_resume_at;
    gh_time_t accept_backoff;
    gh_time_t tl_dur[GH__TL_COUNT];
    gh_server_stats_t st;
};

/* ---- connset.c: the connection set ------------------------------------------------- */
static inline int gh__conn_phase(const gh_conn_t *c)
{
    return __atomic_load_n(&c->phase, __ATOMIC_ACQUIRE);
}
/* A new connection (phase WAIT_HEAD, under the header timeout from now). 0 or GH_ENOMEM. */
int gh__connset_add(gh_server_t *s, gh_conn_t *c);
/* The connection whose event carries (fd, id), or NULL. */
gh_conn_t *gh__connset_lookup(gh_server_t *s, int fd, unsigned long id);
/* The poller claims a parked connection (IDLE or WAIT_HEAD -> PREAD) to read its head.
 * 0 if someone else owns it now. */
int gh__connset_claim(gh_conn_t *c);
/* The head read by the poller is still incomplete: PREAD -> WAIT_HEAD, timer kept. */
void gh__connset_wait_head(gh_conn_t *c);
/* The poller serves c itself: PREAD -> ACTIVE. 0 if it was closed meanwhile. */
int gh__connset_activate(gh_conn_t *c);
/* c waits for a worker: -> QUEUED (off its timer list). mu held. */
void gh__connset_queued(gh_server_t *s, gh_conn_t *c);
/* The next expired connection (taken off its list, phase PREAD) or NULL; *next gets the
 * earliest deadline left (0: none). */
gh_conn_t *gh__connset_expired(gh_server_t *s, gh_time_t now, gh_time_t *next);
/* Scans from *i: the next connection (any phase), or the next idle one (idle=1:
 * parked without a partial head, or lingering; taken to phase PREAD). NULL at the end. */
gh_conn_t *gh__connset_scan(gh_server_t *s, size_t *i, int idle);

/* ---- loop.c: the poller, the pool, the monitor ------------------------------------- */
/* Start the monitor (when handoff > 0) and the first pool thread, which takes the
 * poller's role. */
int gh__loop_start(gh_server_t *s);
/* Wake the poller (shutdown, a new first timer). */
void gh__loop_wake(gh_server_t *s);
/* Set c's interest: input (the poller owns it) or only a hang-up (a worker does). */
void gh__loop_interest(gh_server_t *s, gh_conn_t *c, int input, int op);
/* The pool and monitor threads see `closed` and end: wake them all. */
void gh__loop_wake_all(gh_server_t *s);
/* Join the monitor and the pool threads (closed is set; not from one of them). */
void gh__loop_join(gh_server_t *s);

#endif
