/*
 * gchttp/server.h: the HTTP/1.1 server.
 *
 * Threads: the server runs `loops` event loops (by default one per CPU the process may
 * run on), served by one pool of GC-registered threads grown on demand. Each loop has
 * its own epoll set, timers and connections: it accepts (one SO_REUSEPORT socket per
 * loop for a listener the server opened itself; a listener handed in is shared), owns
 * every idle connection it accepted and reads request heads without blocking, so a
 * slow client holds no thread. At any time one pool thread holds each loop's poller
 * role. A complete head is served right there, on that thread, with blocking I/O
 * bounded by deadlines: a batch of ready keep-alive connections is answered with no
 * thread hand-over and no epoll_ctl, as an event loop would. A monitor thread watches
 * every loop for a handler that runs longer than handoff_timeout (1 ms by default;
 * blocked, or busy): another pool thread then takes that loop's role, and the first
 * finishes its request as a worker. So a handler may block (long polls, body uploads,
 * its own I/O): it delays other connections of its loop by one or two handoff periods,
 * those of other loops not at all, and holds a thread only while it blocks. At most
 * max_workers threads serve requests as workers at once; more requests wait in a
 * queue. Handlers run on whichever pool thread, one request at a time per connection,
 * in order. While a handler runs, its loop keeps watching its connection for the peer
 * going away (EPOLLRDHUP), so a disconnect cancels the request context without a read
 * in flight (Go's "background read", without its limits).
 *
 * Signals: the server's threads (pool and monitor) start with the asynchronous signals
 * blocked (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM,
 * SIGCHLD, the real-time ones, ...), whatever the creating thread's mask, so a program
 * may take them in its main thread with sigwait(), signalfd() or a handler, without
 * blocking them before gh_server_new. The collector's own stop-the-world signals stay
 * open, as do the synchronous ones and SIGPROF. One caveat is bdwgc's: while a
 * collection holds a thread stopped, that thread waits with SIGINT, SIGQUIT, SIGTERM
 * and SIGABRT unblocked (so that a stuck process can still be killed), so one of
 * those four may land on a server thread then: give them a handler (it may run on any
 * thread; examples/ex-common.h writes to a pipe) rather than the default action with
 * sigwait alone. The other signals never reach a server thread.
 *
 * Half-close: a client that shuts down its sending side while its request is being
 * handled is treated as gone (the request context is cancelled and close-notify fires),
 * as Go's background read does when it sees EOF. Bytes of a pipelined next request
 * never count as gone, whether they still wait in the socket or were already read with
 * the current request: a client that sends two requests and half-closes gets both
 * answers, then the connection closes.
 */
#ifndef GCHTTP_SERVER_H
#define GCHTTP_SERVER_H

#include "common.h"
#include "request.h"
#include "response.h"

GH_BEGIN_DECLS

typedef struct gh_server_s gh_server_t;

/** A connection as the ConnState hook sees it. Opaque GC object; holding it keeps
 * only the connection's bookkeeping alive, never its descriptor open. */
typedef struct gh_conn_s gh_conn_t;

/** Connection states, as Go's http.ConnState. Transitions:
 *   New -> Active            first byte of a request arrived
 *   Active -> Idle           response finished, connection kept alive
 *   Idle -> Active           next request
 *   Active -> Hijacked       the handler took the connection (terminal)
 *   New|Active|Idle -> Closed  (terminal) */
typedef enum {
    GH_STATE_NEW = 0,
    GH_STATE_ACTIVE,
    GH_STATE_IDLE,
    GH_STATE_HIJACKED,
    GH_STATE_CLOSED
} gh_conn_state_t;

/** Which hijack design to use (the retention study; see README). */
typedef enum {
    GH_HIJACK_RELEASE = 0,   /*< default: `reader` + buffers released whenever empty */
    GH_HIJACK_BEFORE,        /*< Go 1.23: new writer, eager notify, reader through conn */
    GH_HIJACK_WRITER,        /*< conn's own writer retargeted at the raw conn */
    GH_HIJACK_LAZY_NOTIFY,   /*< + close-notify created only on demand */
    GH_HIJACK_READER         /*< + reader retargeted through a weak response link */
} gh_hijack_stage_t;

typedef void (*gh_handler_fn)(gh_response_t *w, gh_request_t *r, void *data);

/** One finished request, as the access log hook sees it. The strings are valid until
 * the hook returns. */
typedef struct gh_access_entry_s {
    const char *method;      /*< "GET"...; "" when the server refused the request head */
    const char *target;      /*< the request-target as sent; "" likewise */
    const char *remote_addr; /*< the peer, as gh_conn_remote_addr */
    int status;              /*< the status sent; 0 when none was (a hijacked connection
                              *  whose handler wrote no status) */
    int64_t bytes;           /*< body bytes the handler wrote (0 for HEAD, 204, 304; the
                              *  server's own error answers count their short text). After
                              *  a write error some may not have reached the client. */
    gh_time_t duration;      /*< from the complete request head to the end of the
                              *  response, in ns (0 for the server's own error answers) */
    int err;                 /*< 0, or the write error that cut the response short */
    int hijacked;            /*< 1 when the handler took the connection (logged when the
                              *  handler returns) */
} gh_access_entry_t;

/** Access log hook: called once per request after its response is finished (flushed,
 * or failed), on the thread that served it, before the connection reads the next
 * request; also for the error answers the server sends itself (400, 408, 413, 431, 501,
 * 505... with method and target ""), which the poller's thread may send. Keep it short:
 * the connection waits for it, and on the poller's thread so do others. */
typedef void (*gh_access_log_fn)(const gh_access_entry_t *e, void *data);
typedef void (*gh_conn_state_fn)(gh_conn_t *c, gh_conn_state_t state, void *data);

/**
 * Server settings. Fill with gh_server_config_init(), then set what you need.
 * Timeouts are durations in gh_time_t nanoseconds: 0 selects the default, a negative
 * value disables the timeout.
 */
typedef struct gh_server_config_s {
    gh_handler_fn handler;       /*< required */
    void *handler_data;          /*< passed to handler; kept alive by the server */
    /** ReadHeaderTimeout: from the first byte of a request (or from accept for a new
     * connection) to the end of its head. Default 10 s. */
    gh_time_t read_header_timeout;
    /** ReadTimeout: from the first byte of a request to the end of its body.
     * Default 5 min. */
    gh_time_t read_timeout;
    /** WriteTimeout: from the end of the request head to the end of the response.
     * Default 5 min. */
    gh_time_t write_timeout;
    /** IdleTimeout: how long a keep-alive connection may wait for its next request.
     * Default 2 min. */
    gh_time_t idle_timeout;
    /** Largest request head (request line + header section + empty line), exact.
     * Larger heads are answered 431. Default 1 MiB. */
    size_t max_header_bytes;
    /** Unread request body drained after the handler to keep the connection
     * (Go: 256 KiB). Beyond it the connection is closed. Default 256 KiB. */
    size_t max_body_drain;
    /** Threads serving requests at once as workers (a handler that outran
     * handoff_timeout, or every request when it is negative); default 64. One more
     * thread per loop holds that loop's poller role. */
    int max_workers;
    /** Event loops (each with its own epoll set, timers and connections, see above).
     * 0: one per CPU this process may run on (sched_getaffinity, so taskset and
     * cpusets count), the default. At most 256. gh_server_loops says how many run. */
    int loops;
    /** How long a handler may run on the poller's thread before the monitor gives the
     * poller's role to another thread (it does so within one to two of these periods).
     * Default (0): 1 ms. Negative: never serve on the poller's thread; every request
     * is handed to a worker (a thread wake-up per request). */
    gh_time_t handoff_timeout;
    /** Grow the collector's heap to at least this many bytes when the server starts,
     * so that a busy server does not collect every few milliseconds: each collection
     * stops every thread, workers included, and shows in tail latency. Raise it when
     * handlers allocate much per request; make it negative to leave the heap to the
     * collector's own policy or to a host runtime that sizes it (Guile). 0: 16 MiB per
     * loop (at most 256 MiB): N loops allocate N times as fast, and the floor keeps
     * collections as rare as one loop's. */
    long gc_heap_min;
    int disable_keepalive;       /*< answer every request with Connection: close */
    gh_hijack_stage_t hijack_stage;
    /** Remember hijacked connections through weak references, for
     * gh_server_hijacked_foreach / gh_server_close_hijacked (golang/go#17721). The
     * registry never keeps a connection alive. Off by default. */
    int track_hijacked;
    gh_conn_state_fn conn_state; /*< optional; runs on a pool thread (the poller's or a worker) */
    void *conn_state_data;       /*< kept alive by the server */
    gh_access_log_fn access_log; /*< optional; see gh_access_log_fn */
    void *access_log_data;       /*< kept alive by the server */
} gh_server_config_t;

/** Fill cfg with defaults (all timeouts 0 = default, no handler). */
GH_EXTERN void gh_server_config_init(gh_server_config_t *cfg) GH_NONNULL(1);

/** Create a server. Calls gh_gc_init(). @return 0, GH_EINVAL (no handler), GH_ENOMEM,
 * or -errno (epoll or eventfd descriptors). */
GH_EXTERN int gh_server_new(gh_server_t **out, const gh_server_config_t *cfg) GH_WARN_UNUSED
    GH_NONNULL(1);

/**
 * Bind and listen on host:port, with SO_REUSEADDR. host is a numeric address
 * ("127.0.0.1", "::1"), a name resolved with getaddrinfo ("localhost": one address,
 * IPv4 first, as Go's Listen), or NULL/"" for every address of both families (one
 * IPv6 socket with IPV6_V6ONLY off, or IPv4 alone on a host without IPv6). Port 0
 * picks one (gh_server_port). May be called several times, up to 8 listeners, before
 * or after gh_server_start.
 * @return 0, GH_EADDRESS (port out of range, host "*"), GH_ENOHOST (the name did not
 * resolve), GH_EADDRINUSE, GH_EBUSY (8 listeners already), GH_ECLOSED, or -errno. */
GH_EXTERN int gh_server_listen(gh_server_t *s, const char *host, int port) GH_WARN_UNUSED
    GH_NONNULL(1);
/**
 * Listen on an address written as Go writes it: "host:port", "[v6]:port", ":port"
 * (every address, both families), or "unix:/path" for a Unix domain socket
 * ("unix:@name": Linux's abstract namespace). A socket file already at the path is
 * not removed (GH_EADDRINUSE: it may belong to a running server); the file the server
 * created is removed when its listener closes. The remote address of a connection on
 * a Unix socket is "@" (an unnamed client, as Go reports it), gh_server_port is 0.
 * "*:8080" and unbracketed IPv6 addresses are refused with GH_EADDRESS.
 * @return as gh_server_listen. */
GH_EXTERN int gh_server_listen_addr(gh_server_t *s, const char *addr) GH_WARN_UNUSED
    GH_NONNULL(1, 2);
/**
 * Serve an already-open listening socket (TCP or Unix, SOCK_STREAM, listen() called).
 * The server takes it over (made non-blocking and close-on-exec) and closes it with
 * its listeners; a Unix socket's file is left in place.
 * @return 0, GH_EBADF (not open), GH_EINVAL (not a listening stream socket; fd stays
 * the caller's), GH_EBUSY, GH_ECLOSED (fd stays the caller's). */
GH_EXTERN int gh_server_listen_fd(gh_server_t *s, int fd) GH_WARN_UNUSED GH_NONNULL(1);
/**
 * systemd socket activation (sd_listen_fds(3)): when LISTEN_PID is this process,
 * serve the LISTEN_FDS descriptors starting at 3 (SD_LISTEN_FDS_START) with
 * gh_server_listen_fd, then unset LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES so that
 * child processes do not take them.
 * @return the number of listeners added (0 when LISTEN_FDS is 0), GH_ENOENT when no
 * descriptors were passed to this process, or a gh_server_listen_fd error. */
GH_EXTERN int gh_server_listen_systemd(gh_server_t *s) GH_WARN_UNUSED GH_NONNULL(1);
/** The port of the i-th listener (0 for a Unix socket), or a negative code. */
GH_EXTERN int gh_server_port(const gh_server_t *s, int i) GH_NONNULL(1);

/** Start one pool thread per loop (each takes a loop's poller role) and the monitor;
 * returns at once. @return 0, GH_EBUSY (started or closed already) or a code. */
GH_EXTERN int gh_server_start(gh_server_t *s) GH_WARN_UNUSED GH_NONNULL(1);

/**
 * Graceful shutdown, on every loop: stop accepting, close idle connections, and wait
 * up to timeout for active requests to finish; what is left is then closed, and the
 * call returns at its deadline (Go's Shutdown): a handler still running then (asleep,
 * or busy with something other than its connection) finishes on its own thread, its
 * writes failing, and that thread ends after it.
 *
 * Called from inside a handler, it does not wait for the calling request (that would
 * only time out): it waits for the others, closes everything else, and returns; the
 * calling request's response is then sent in full when the handler returns, with
 * Connection: close, and its connection closed. (Go's Shutdown from a handler waits
 * for the calling request too, and so always runs into its timeout.)
 *
 * Watched connections (gchttp/watch.h) live on the loops: those with a shutdown
 * callback are told at once (a WebSocket starts its closing handshake with 1001 Going
 * Away) and waited for like requests; whatever is left at the deadline, and every
 * watch without that callback, is ended by the close (its closed callback gets
 * GH_ECLOSED). Hijacked connections that are not watched are not the server's (see
 * gh_server_hijacked_foreach).
 * @return 0 if every request (but the caller's) and every watch with a shutdown
 * callback (but the caller's) finished in time, GH_ETIMEDOUT otherwise.
 */
GH_EXTERN int gh_server_shutdown(gh_server_t *s, gh_time_t timeout) GH_NONNULL(1);
/** Immediate close of listeners and every connection; joins the server's threads
 * (but the calling one, when called from a handler). Handlers still running see their
 * writes fail. Watched connections are ended once the loops have stopped: their closed
 * callbacks run on the calling thread with GH_ECLOSED (one whose callback still runs
 * on a thread deposed from a loop ends there, when that callback returns).
 * Idempotent. @return 0. */
GH_EXTERN int gh_server_close(gh_server_t *s) GH_NONNULL(1);

/**
 * With track_hijacked on: call fn(c, data) for every hijacked connection that the
 * program still holds and has not closed, on the calling thread. The registry holds
 * weak references only: a connection the program dropped is collected as usual and
 * is simply not visited. @return the number of connections visited.
 */
GH_EXTERN int gh_server_hijacked_foreach(gh_server_t *s, void (*fn)(gh_netconn_t *c, void *data),
                                         void *data) GH_NONNULL(1, 2);
/** Close every tracked hijacked connection still open (e.g. after gh_server_shutdown,
 * which like Go's leaves hijacked connections alone). @return how many were closed. */
GH_EXTERN int gh_server_close_hijacked(gh_server_t *s) GH_NONNULL(1);

/** Live figures, for tests and monitoring. */
typedef struct gh_server_stats_s {
    unsigned long accepted;      /*< connections accepted */
    unsigned long requests;      /*< requests handed to the handler */
    unsigned long bad_requests;  /*< requests answered 4xx/5xx by the server itself */
    unsigned long hijacked;      /*< connections hijacked */
    unsigned long closed;        /*< connections closed by the server */
    int open_conns;              /*< connections owned by the server now */
    int active_conns;            /*< connections with a request in progress */
    int workers;                 /*< pool threads started, less the one holding the
                                  *  poller's role unless it has served a request since
                                  *  it last cleared its stack (end of its batch) */
    int idle_workers;            /*< of which waiting for work in the pool */
    unsigned long accept_backoffs; /*< EMFILE/ENFILE back-offs */
    unsigned long handoffs;      /*< times a long handler made the poller's role move */
    int threads;                 /*< pool threads started (at most max_workers + loops) */
    int watched;                 /*< hijacked connections watched on the loops now
                                  *  (gchttp/watch.h: WebSockets included) */
} gh_server_stats_t;

/** The server's figures, summed over its loops. */
GH_EXTERN void gh_server_stats(gh_server_t *s, gh_server_stats_t *st) GH_NONNULL(1, 2);
/** How many event loops the server runs (config `loops`, resolved). */
GH_EXTERN int gh_server_loops(const gh_server_t *s) GH_NONNULL(1);
/** The figures of loop i (0 <= i < gh_server_loops): accepted, requests, bad_requests,
 * hijacked, closed, open_conns, active_conns, accept_backoffs, handoffs and watched
 * count that loop's connections only; the thread figures (workers, idle_workers, threads) are the
 * pool's, shared by every loop, and are 0 here. @return 0 or GH_EINVAL (no such loop;
 * st is zeroed). */
GH_EXTERN int gh_server_loop_stats(gh_server_t *s, int i, gh_server_stats_t *st) GH_NONNULL(1, 3);

/** The connection's peer and local addresses, "ip:port" or "[v6]:port" (an IPv4 client
 * of a dual-stack listener is printed as IPv4); on a Unix socket the path, or "@" for
 * an unnamed peer (static per connection). */
GH_EXTERN const char *gh_conn_remote_addr(const gh_conn_t *c) GH_NONNULL(1);
GH_EXTERN const char *gh_conn_local_addr(const gh_conn_t *c) GH_NONNULL(1);
/** A number unique per connection within a server (1, 2, ...). */
GH_EXTERN unsigned long gh_conn_id(const gh_conn_t *c) GH_NONNULL(1);

/** The name of a state ("new", "active", ...). */
GH_EXTERN const char *gh_conn_state_name(gh_conn_state_t st);

GH_END_DECLS

#endif
