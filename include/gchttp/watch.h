/*
 * gchttp/watch.h: serving a hijacked connection from the server's event loop, with
 * callbacks.
 *
 * After gh_response_hijack() a program may hand the connection back to the loop that
 * accepted it instead of keeping a thread per connection: the loop reads when the
 * socket is readable and calls back with the bytes, writes what could not be written
 * at once when the socket becomes writable, runs a per-connection timer and reports
 * the end. An idle watched connection costs its gh_watch_t, the netconn and the
 * descriptor: input is read into the thread's read buffer and only bytes a callback
 * leaves unconsumed are kept (in a buffer released once drained); output is queued only
 * when the kernel's send buffer is full, and the queue is released once written.
 * Watches need no thread of their own: they share the loops (and their epoll sets)
 * with the server's HTTP connections. epoll carries descriptor numbers only; the loop
 * keeps the watch in a table the collector traces.
 *
 * Callbacks run on the thread holding the loop's poller role, between its other
 * connections' events, and must not block: while one runs, that loop serves nothing
 * else. If one does run long or block anyway, the loop treats it as a blocking handler:
 * after handoff_timeout (or at once, when it blocks in a gchttp wait) another pool
 * thread takes the loop's role and goes on; the first finishes the callback on its own
 * and leaves. A watch's own callbacks still never overlap: events for it that come
 * meanwhile are delivered, in order, after that callback returns. With handoff_timeout
 * < 0 (no monitor) a blocking callback stalls its loop. A callback that must wait (a
 * database, a file) is better handing the work to another thread and answering with
 * gh_watch_write from there.
 *
 * The server ends its watches: gh_server_shutdown calls each one's `shutdown`
 * callback and waits (to its deadline) for those that have one; gh_server_close ends
 * every watch left, with GH_ECLOSED. gh_watch_stop gives a connection back to the
 * program, which then owns it like any hijacked connection.
 */
#ifndef GCHTTP_WATCH_H
#define GCHTTP_WATCH_H

#include <sys/types.h>
#include "common.h"
#include "bufio.h"
#include "hijack.h"
#include "response.h"

GH_BEGIN_DECLS

/**
 * A hijacked connection watched by the loop.
 * Alloc:     gh_watch_start (GC object). No _free.
 * Lifetime:  kept by its loop (the loop's traced tables) from gh_watch_start until the
 *            watch ends (the closed callback has run) or is given back (gh_watch_stop);
 *            also by whoever else holds it. The watch keeps its netconn, its server,
 *            its callbacks' `data` (traced: it may be a GC object) and its queued
 *            output alive.
 * OS state:  the netconn's descriptor is the watch's: closed when the watch ends
 *            (at the latest by gh_server_close), returned to the caller by
 *            gh_watch_stop. gh_netconn_close on a watched connection ends the watch
 *            as gh_watch_abort does (the watch closes the descriptor once it is off
 *            the loop); closing the descriptor any other way (close() on its number)
 *            is not allowed.
 * Threads:   callbacks on the loop's poller thread, one at a time per watch;
 *            gh_watch_write*, gh_watch_queued, gh_watch_set_timer, gh_watch_close and
 *            gh_watch_abort from any thread (writes from several threads are each
 *            written whole, in the order of their calls); gh_watch_stop from one of
 *            the watch's own callbacks only.
 */
typedef struct gh_watch_s gh_watch_t;

/** Bytes arrived: p[0..n) are the connection's unconsumed input (bytes a previous
 * call left, then the new ones). Return how many were consumed (<= n); the rest are
 * kept and offered again, before newer bytes, on the next call. The callback may
 * modify p[0..n] in place (unmasking, for instance; p[n] is a spare byte, to
 * NUL-terminate a piece for a moment). p is valid only during the call. */
typedef size_t (*gh_watch_read_fn)(gh_watch_t *w, char *p, size_t n, void *data);
/** writable: output that had to be queued is now all written (after a short write).
 * timer: the time set with gh_watch_set_timer has come (the timer is then unset). */
typedef void (*gh_watch_event_fn)(gh_watch_t *w, void *data);
/** The watch ended: err is 0 after gh_watch_close / gh_watch_abort (or a
 * gh_netconn_close of its connection, gh_server_close_hijacked's too), GH_EOF when the
 * peer closed, GH_ECLOSED when the server closed, or the read or write error
 * (GH_ECONNRESET, GH_EPIPE...). The descriptor is closed. Called once, on the loop's
 * thread (on gh_server_close's thread for GH_ECLOSED); never after gh_watch_stop. */
typedef void (*gh_watch_closed_fn)(gh_watch_t *w, int err, void *data);

/** The callbacks of a watch. Any may be NULL (readable NULL: input is discarded). */
typedef struct gh_watch_ops_s {
    gh_watch_read_fn readable;
    gh_watch_event_fn writable;
    gh_watch_event_fn timer;
    gh_watch_closed_fn closed;
    /** gh_server_shutdown began (or had begun when the watch started): end the
     * conversation politely and close (gh_watch_close). A watch with this callback is
     * waited for by the shutdown, up to its deadline; one without it is ended by the
     * close that follows. */
    gh_watch_event_fn shutdown;
} gh_watch_ops_t;

/**
 * Start watching a hijacked connection, on the loop of its server that accepted it.
 * Bytes already buffered in r (the reader returned by the hijack: a first frame that
 * came with the upgrade request) are taken from it and offered to `readable` first, on
 * the loop's thread. Call it from the handler right after the hijack, or from any
 * thread later.
 * @param nc    the hijacked connection; from now on the watch's (do not read it)
 * @param r     the hijack's reader, or NULL; it must not be used afterwards
 * @param ops   callbacks, in storage that outlives the watch (usually static)
 * @param data  passed to the callbacks (traced: a GC object is kept alive)
 * @param[out] out  the watch
 * @return 0; GH_EBADF if nc is closed; GH_ECLOSED if its server is closed; GH_ENOMEM;
 *         or the epoll error. On error the connection is left to the caller, untouched.
 */
GH_EXTERN GH_WARN_UNUSED int gh_watch_start(gh_netconn_t *nc, gh_reader_t *r,
                                            const gh_watch_ops_t *ops, void *data,
                                            gh_watch_t **out) GH_NONNULL(1, 3, 5);

/**
 * Write n bytes, from any thread. What the socket takes at once is written now (only
 * when nothing is queued before it, so order holds); the rest is copied to the queue
 * and written by the loop. Never blocks.
 * @return the bytes queued after this write (0: all written), the backpressure figure;
 *         or GH_EBADF once the watch ended or is closing, or the write error.
 */
GH_EXTERN ssize_t gh_watch_write(gh_watch_t *w, const void *buf, size_t n) GH_NONNULL(1);
/** Write two buffers as one (a header and a payload), as gh_watch_write. */
GH_EXTERN ssize_t gh_watch_write2(gh_watch_t *w, const void *b1, size_t n1, const void *b2,
                                  size_t n2) GH_NONNULL(1);
/**
 * Write bytes of a shared, immutable GC buffer without copying it: if they cannot all
 * be written at once, the queue refers to `bytes` itself (for broadcast: one frame,
 * many connections). `bytes` must be the start of a GC allocation (gh_bytes_new) that
 * nobody modifies afterwards.
 * @return as gh_watch_write.
 */
GH_EXTERN ssize_t gh_watch_write_shared(gh_watch_t *w, const void *bytes, size_t n)
    GH_NONNULL(1, 2);
/** Bytes queued and not yet written (any thread). */
GH_EXTERN size_t gh_watch_queued(gh_watch_t *w) GH_NONNULL(1);
/** Run the timer callback at `at` (absolute, gh_now() based), never before it and
 * usually within 4 ms after it (timers share a 4 ms grid); 0 unsets. Any thread. */
GH_EXTERN void gh_watch_set_timer(gh_watch_t *w, gh_time_t at) GH_NONNULL(1);
/** Close once the queued output is written (no more writes are accepted); the closed
 * callback follows with 0. A peer that never reads keeps it open: bound it with a
 * timer and gh_watch_abort. Any thread, idempotent. */
GH_EXTERN void gh_watch_close(gh_watch_t *w) GH_NONNULL(1);
/** Close now, dropping queued output; the closed callback follows with 0. */
GH_EXTERN void gh_watch_abort(gh_watch_t *w) GH_NONNULL(1);
/**
 * Give the connection back (from one of this watch's callbacks):
 * it is no longer watched, nothing is called any more, and the loop no longer keeps it.
 * @param consumed  from `readable`: how many bytes of its p the callback consumed (the
 *                  rest go into rw); elsewhere 0
 * @param[out] nc  the connection
 * @param[out] rw  a new reader holding the unconsumed input (and reading nc after it)
 *                 and a new writer over nc; may be NULL if no input is pending
 * @return 0; GH_EBUSY if output is still queued (wait for `writable`); GH_EINVAL
 *         outside the watch's callbacks, or with input pending and rw NULL; GH_EBADF
 *         if the watch ended or is ending (gh_watch_close, gh_watch_abort,
 *         gh_netconn_close, or a failed write, from any thread); GH_ENOMEM.
 */
GH_EXTERN GH_WARN_UNUSED int gh_watch_stop(gh_watch_t *w, size_t consumed, gh_netconn_t **nc,
                                           gh_bufrw_t *rw) GH_NONNULL(1, 3);
/** The watched connection (for its addresses). */
GH_EXTERN gh_netconn_t *gh_watch_netconn(gh_watch_t *w) GH_NONNULL(1);
/** The callbacks' data. */
GH_EXTERN void *gh_watch_data(gh_watch_t *w) GH_NONNULL(1);
/** The index of the server's loop that serves it (see gh_server_loop_stats). */
GH_EXTERN int gh_watch_loop(const gh_watch_t *w) GH_NONNULL(1);
/** 1 while the calling thread runs a watch's callback. */
GH_EXTERN int gh_watch_on_loop(void);
/** Connections being watched now, on every server's loops. */
GH_EXTERN size_t gh_watch_count(void);
/** Threads started for watches: 0 (they run on the servers' loops; kept for the
 * programs written when one watch thread served every watch). */
GH_EXTERN int gh_watch_loop_threads(void);

GH_END_DECLS

#endif
