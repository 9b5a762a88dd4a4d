/*
 * gchttp/hijack.h: taking over a connection (WebSocket upgrades, CONNECT tunnels,
 * HTTP/2 prior knowledge) and close-notify.
 *
 * After gh_response_hijack() the connection is the caller's: the server forgets it
 * (ConnState Hijacked, no Closed), stops watching it, clears its deadlines and never
 * closes it. Close the returned gh_netconn_t yourself (a finalizer closes a leaked
 * one as a backstop and counts it in gh_fd_leaked()).
 *
 * What the caller holds afterwards, in the default stage (GH_HIJACK_RELEASE): the
 * netconn (descriptor + addresses), a buffered reader whose source is a small
 * close-notify reader (the raw descriptor plus a weak reference to the response) and
 * the connection's own buffered writer retargeted at the netconn. None of them reaches
 * the server's conn, connReader, response, request, body or contexts, so those are
 * collected once the handler has returned (Go PR #70756). The reader and writer have
 * autorelease on (gh_reader_set_autorelease): their 4 KiB buffers are released at the
 * hijack when empty, again after each read that drains the reader and after each flush
 * of the writer, and come back on the next use; so an idle hijacked connection costs a
 * few hundred bytes, whether or not it has exchanged messages. (The earlier stages keep
 * their buffers, as the retention study documents; turn autorelease off to keep them in
 * this one too.)
 *
 * Bytes the client sent after the request head (a pipelined request, a body, the
 * first WebSocket frame in the same segment as the upgrade) are in the returned reader:
 * none is lost.
 */
#ifndef GCHTTP_HIJACK_H
#define GCHTTP_HIJACK_H

#include <sys/types.h>
#include "common.h"
#include "bufio.h"
#include "context.h"
#include "fd.h"
#include "response.h"

GH_BEGIN_DECLS

/**
 * The raw connection returned by a hijack.
 * Alloc:     by gh_response_hijack (GC object). No _free.
 * Lifetime:  while the caller holds it (or the reader/writer, which point to it).
 * OS state:  the descriptor is closed by gh_netconn_close (idempotent), or by the
 *            finalizer backstop if the netconn is dropped open. On a connection handed
 *            to gh_watch_start, gh_netconn_close ends the watch as gh_watch_abort does
 *            (the watch takes the descriptor off its loop, then closes it).
 * Threads:   one reader and one writer may run concurrently.
 */
/* gh_netconn_t is declared in response.h. */

/** The buffered pair returned with a hijacked connection (Go's *bufio.ReadWriter),
 * filled in caller-provided storage. */
typedef struct gh_bufrw_s {
    gh_reader_t *r;
    gh_writer_t *w;
} gh_bufrw_t;

/**
 * Take over the connection of the current request. Flushes a response header that
 * was already written (e.g. 101 Switching Protocols) before returning. Body bytes
 * written but not yet flushed (still in the 2 KiB pre-chunking buffer) are dropped,
 * as Go 1.19's Hijack drops its unflushed buffer: call gh_response_flush() first to
 * send them.
 *
 * After a successful hijack and until the handler returns, the response's calls fail
 * with GH_EHIJACKED and request body reads too (the bytes are in the returned
 * reader); the request and its context stay live (Go: valid until ServeHTTP
 * returns). Once the handler returned, every call on the response and the request
 * fails with GH_EHANDLERDONE, and gh_request_done() and the request context say
 * GH_EHANDLERDONE, as for a request that was not hijacked.
 * @param w          the current request's response, on the handler's thread
 * @param[out] conn  the raw connection (NULL on failure)
 * @param[out] rw    buffered reader and writer over it (may be NULL; both members
 *                   NULL on failure)
 * @return 0; GH_EHIJACKED if already hijacked; GH_EHANDLERDONE after the handler
 *         returned; GH_ENOMEM; or the error of flushing the header.
 */
GH_EXTERN int gh_response_hijack(gh_response_t *w, gh_netconn_t **conn, gh_bufrw_t *rw)
    GH_WARN_UNUSED GH_NONNULL(1);

GH_EXTERN ssize_t gh_netconn_read(gh_netconn_t *c, void *buf, size_t n) GH_WARN_UNUSED GH_NONNULL(1);
GH_EXTERN ssize_t gh_netconn_write(gh_netconn_t *c, const void *buf, size_t n) GH_NONNULL(1);
/** 0, or GH_EBADF if it was closed already (by this call, or as its watch ended). */
GH_EXTERN int gh_netconn_close(gh_netconn_t *c) GH_NONNULL(1);
/** Absolute deadlines (gh_now() + d); 0 clears. */
GH_EXTERN void gh_netconn_set_deadline(gh_netconn_t *c, gh_time_t at) GH_NONNULL(1);
GH_EXTERN void gh_netconn_set_read_deadline(gh_netconn_t *c, gh_time_t at) GH_NONNULL(1);
GH_EXTERN void gh_netconn_set_write_deadline(gh_netconn_t *c, gh_time_t at) GH_NONNULL(1);
/** The peer's and the local address, "ip:port", read from the socket on first use of
 * either and kept for the netconn's life ("" if the socket was already closed then). */
GH_EXTERN const char *gh_netconn_remote_addr(const gh_netconn_t *c) GH_NONNULL(1);
GH_EXTERN const char *gh_netconn_local_addr(const gh_netconn_t *c) GH_NONNULL(1);
/** The underlying gh_fd_t (for gh_fd_fileno, gh_fd_shutdown_write...). */
GH_EXTERN gh_fd_t *gh_netconn_fd(gh_netconn_t *c) GH_NONNULL(1);
/** Adapters for gh_reader_new / gh_writer_new over a netconn. */
GH_EXTERN ssize_t gh_netconn_read_fn(void *c, void *buf, size_t n) GH_NONNULL(1);
GH_EXTERN ssize_t gh_netconn_write_fn(void *c, const void *buf, size_t n) GH_NONNULL(1);

/**
 * Close-notify (Go's deprecated CloseNotifier, kept as a contract): a context that is
 * cancelled with GH_ECONNRESET when the client goes away while the handler runs.
 *  - At most one notification per request.
 *  - Bytes of a pipelined request never fire it; a half-close does (as in Go).
 *  - Not guaranteed after the handler returns.
 *  - Never blocks the server: callbacks registered with gh_ctx_on_cancel run on the
 *    poller thread and must be quick.
 *  - Created on first call (the default stages); a handler that never asks allocates
 *    nothing for it; an ignored one leaks nothing.
 * After a hijack, a read error through the returned reader fires it while the handler
 * runs. @return the context, or NULL when out of memory or after the handler returned.
 */
GH_EXTERN gh_ctx_t *gh_response_close_notify(gh_response_t *w) GH_NONNULL(1);

/**
 * A pollable descriptor that becomes readable when close-notify fires (an eventfd).
 * Valid while the handler runs; the server closes it when the handler returns.
 * @return the descriptor or a negative code.
 */
GH_EXTERN int gh_response_close_notify_fd(gh_response_t *w) GH_NONNULL(1);

GH_END_DECLS

#endif
