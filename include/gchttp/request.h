/*
 * gchttp/request.h: the request a handler receives.
 *
 * Alloc:     by the server, one per request (GC object); the head's bytes live in one
 *            atomic block owned by the request. No _free.
 * Lifetime:  reachable from the response while the handler runs; after the handler
 *            returns the server drops it, and it is collected once the program holds
 *            no pointer to it. Strings returned below live as long as the request.
 * Threads:   the handler's thread. gh_request_done() and gh_request_context() may be
 *            used from any thread.
 */
#ifndef GCHTTP_REQUEST_H
#define GCHTTP_REQUEST_H

#include <sys/types.h>
#include "common.h"
#include "context.h"

GH_BEGIN_DECLS

typedef struct gh_request_s gh_request_t;

/** Method, request-target and protocol exactly as sent ("GET", "/a?b", "HTTP/1.1"). */
GH_EXTERN const char *gh_request_method(const gh_request_t *r) GH_NONNULL(1);
GH_EXTERN const char *gh_request_target(const gh_request_t *r) GH_NONNULL(1);
GH_EXTERN const char *gh_request_proto(const gh_request_t *r) GH_NONNULL(1);
/** Protocol version numbers (1 and 0 or 1; 2 and 0 for the "PRI * HTTP/2.0" preface). */
GH_EXTERN int gh_request_proto_major(const gh_request_t *r) GH_NONNULL(1);
GH_EXTERN int gh_request_proto_minor(const gh_request_t *r) GH_NONNULL(1);
/** The host: the authority of an absolute-form target (without userinfo; the Host
 * header is then ignored, RFC 9112 §3.2.2), else the Host header ("" if none). */
GH_EXTERN const char *gh_request_host(const gh_request_t *r) GH_NONNULL(1);
/** The peer's address: "ip:port", "[v6]:port", or on a Unix socket "@" (an unnamed
 * client, as Go reports it). */
GH_EXTERN const char *gh_request_remote_addr(const gh_request_t *r) GH_NONNULL(1);

/** The first value of header `name` (case-insensitive), or NULL. */
GH_EXTERN const char *gh_request_header(const gh_request_t *r, const char *name) GH_NONNULL(1, 2);
/** Number of header fields, in received order. */
GH_EXTERN size_t gh_request_header_count(const gh_request_t *r) GH_NONNULL(1);
/** The i-th field. @return 0, or GH_EINVAL if i is out of range. */
GH_EXTERN int gh_request_header_at(const gh_request_t *r, size_t i, const char **name,
                                   const char **value) GH_WARN_UNUSED GH_NONNULL(1, 3, 4);

/** Declared body length; -1 when chunked; 0 when there is no body. */
GH_EXTERN int64_t gh_request_content_length(const gh_request_t *r) GH_NONNULL(1);
/** 1 if the body is chunked. */
GH_EXTERN int gh_request_is_chunked(const gh_request_t *r) GH_NONNULL(1);

/**
 * Read up to n bytes of the decoded body. The first read of a request that asked for
 * `Expect: 100-continue` sends "100 Continue" first (unless the handler has already
 * answered). Bounded by the server's read timeout.
 * @return bytes (>0), 0 at the end of the body (at once for a request without one),
 * or a negative code: GH_EPROTO (bad chunking), GH_EOF (connection closed before the
 * end), GH_ETIMEDOUT, GH_EHIJACKED (after a hijack, until the handler returns),
 * GH_EHANDLERDONE (after the handler returned, hijacked or not). Errors are sticky.
 */
GH_EXTERN ssize_t gh_request_read(gh_request_t *r, void *buf, size_t n) GH_WARN_UNUSED
    GH_NONNULL(1);
/* A body the handler leaves unread: when the handler returns before the response
 * header went out, the server reads the rest (up to the config's max_body_drain,
 * 256 KiB as in Go) before writing the header, and keeps the connection if the body
 * ended there; otherwise the response says Connection: close. A Content-Length body
 * larger than that, or a chunked body still unread when the header goes out earlier
 * (a flush), gets Connection: close at once. */

/**
 * Limit the body to max bytes (Go's MaxBytesReader): reads return data up to the
 * limit, then GH_EBODYLIMIT (sticky). The connection then closes after the response,
 * and if the handler returns without having written a status the server answers 413
 * "Content Too Large". A second call can only lower the limit. No effect on a request
 * without a body. @return 0, or GH_EINVAL for max < 0.
 */
GH_EXTERN int gh_request_limit_body(gh_request_t *r, int64_t max);
/** Read the whole body into a new atomic, NUL-terminated block of at most max bytes.
 * @return length, or a negative code (GH_EBODYLIMIT when larger than max). */
GH_EXTERN ssize_t gh_request_read_all(gh_request_t *r, size_t max, char **out) GH_WARN_UNUSED
    GH_NONNULL(1, 3);

/** Trailer fields of a chunked body, available once the body was read to its end. */
GH_EXTERN const char *gh_request_trailer(const gh_request_t *r, const char *name) GH_NONNULL(1, 2);
GH_EXTERN size_t gh_request_trailer_count(const gh_request_t *r) GH_NONNULL(1);
GH_EXTERN int gh_request_trailer_at(const gh_request_t *r, size_t i, const char **name,
                                    const char **value) GH_WARN_UNUSED GH_NONNULL(1, 3, 4);

/**
 * The request's context: a child of the connection's, cancelled when the client goes
 * away, when a write to the client fails, and when the handler returns. Created on
 * first use (a request that never asks allocates none); one made after the request
 * ended is cancelled at once with gh_request_done()'s reason (after a hijack too:
 * GH_EHANDLERDONE, not the connection's GH_EHIJACKED). NULL when out of memory.
 */
GH_EXTERN gh_ctx_t *gh_request_context(gh_request_t *r) GH_NONNULL(1);
/** 0 while the request is live (after a hijack too, until the handler returns), else
 * the (negative) reason it was cancelled, the same as its context's: GH_ECONNRESET
 * (client gone), GH_EPIPE (write failed), GH_EHANDLERDONE (the handler returned,
 * hijacked or not). Needs no allocation; callable from any thread. */
GH_EXTERN int gh_request_done(const gh_request_t *r) GH_NONNULL(1);

GH_END_DECLS

#endif
