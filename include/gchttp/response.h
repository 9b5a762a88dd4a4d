/*
 * gchttp/response.h: writing a response, flushing, hijacking, close-notify.
 *
 * Alloc:     by the server, one per request (GC object). No _free.
 * Lifetime:  while the handler runs the connection's current-request slot keeps it
 *            alive; afterwards it is collected once the program drops it. Every call
 *            after the handler returned fails with GH_EHANDLERDONE, hijacked or not;
 *            between a hijack and the handler's return they fail with GH_EHIJACKED
 *            (gchttp/hijack.h).
 * Threads:   the handler's thread, or one other thread at a time while the handler
 *            waits for it.
 *
 * Framing (RFC 9112 §6): a body that ends within the 2 KiB pre-chunking buffer gets a
 * Content-Length; a larger one is sent chunked (HTTP/1.1) or delimited by closing the
 * connection (HTTP/1.0). HEAD, 1xx, 204 and 304 responses carry no body: what is written
 * is counted (HEAD: for Content-Length) and dropped. A body sent without a Content-Type
 * gets one sniffed from its first 512 bytes, as Go's DetectContentType does; a
 * Transfer-Encoding set by the handler is dropped (the server frames the body).
 */
#ifndef GCHTTP_RESPONSE_H
#define GCHTTP_RESPONSE_H

#include <sys/types.h>
#include "common.h"
#include "request.h"

GH_BEGIN_DECLS

typedef struct gh_response_s gh_response_t;
/** A hijacked raw connection (see gchttp/hijack.h). */
typedef struct gh_netconn_s gh_netconn_t;

/** Set header name to value, replacing earlier values (name case-insensitive).
 * Copies both. After the header was written: GH_EBUSY.
 * @return 0, GH_EINVAL (bad name or a CR/LF/NUL in value), GH_ENOMEM, GH_EBUSY,
 * GH_EHIJACKED, GH_EHANDLERDONE. */
GH_EXTERN int gh_response_header_set(gh_response_t *w, const char *name, const char *value)
    GH_NONNULL(1, 2, 3);
/** Add a value for name, keeping earlier ones. @return as gh_response_header_set. */
GH_EXTERN int gh_response_header_add(gh_response_t *w, const char *name, const char *value)
    GH_NONNULL(1, 2, 3);
/** Remove every value of name. @return the number removed (0 once the header was
 * written). */
GH_EXTERN int gh_response_header_del(gh_response_t *w, const char *name) GH_NONNULL(1, 2);
/** The first value set for name (at most 1023 bytes of it), or NULL. The string is a
 * per-thread copy, valid until the next call of gh_response_header_get on the same
 * thread. */
GH_EXTERN const char *gh_response_header_get(const gh_response_t *w, const char *name)
    GH_NONNULL(1, 2);

/**
 * Send the status line and headers (lazily: a final header is sent with the first
 * flush or when the handler returns, so a small body can get a Content-Length).
 * 1xx codes other than 101 (e.g. 103 Early Hints) are written and flushed at once and
 * keep the header map. A second final status is ignored and returns GH_EBUSY.
 * @return 0 or a negative code. */
GH_EXTERN int gh_response_write_header(gh_response_t *w, int status) GH_NONNULL(1);

/** Write body bytes (writing a 200 header first if none was). @return n, or a negative
 * code: GH_EHIJACKED, GH_EHANDLERDONE, GH_ECONTENTLENGTH (more than a declared
 * Content-Length), GH_EPIPE/GH_ECONNRESET/GH_ETIMEDOUT (sticky; the request context
 * is cancelled). */
GH_EXTERN ssize_t gh_response_write(gh_response_t *w, const void *buf, size_t n) GH_NONNULL(1);
/**
 * Write n bytes of the open file fd, from offset off, as body (after a 200 header if
 * none was written), without copying them through user space: the header and anything
 * buffered are flushed, then sendfile(2) sends the file's pages (inside one chunk when
 * the response is chunked). A body small enough for the 2 KiB pre-chunking buffer is
 * read into it instead, so it keeps a Content-Length and its sniffed Content-Type.
 * Declare a Content-Length first to send a large file unchunked. fd stays the
 * caller's (not closed, its file offset unchanged). Bounded by the write timeout;
 * short transfers, EINTR and a full socket are handled. HEAD: counted, not sent.
 * @return n, or GH_EINVAL, GH_ECONTENTLENGTH, GH_EOF (the file ended before off + n:
 * the connection is closed after this response), GH_EPIPE/GH_ECONNRESET/GH_ETIMEDOUT
 * (sticky; the request context is cancelled), or another write error. */
GH_EXTERN ssize_t gh_response_sendfile(gh_response_t *w, int fd, int64_t off, size_t n)
    GH_NONNULL(1);
GH_EXTERN ssize_t gh_response_puts(gh_response_t *w, const char *s) GH_NONNULL(1, 2);
GH_EXTERN ssize_t gh_response_printf(gh_response_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))) GH_NONNULL(1, 2);

/** Send the header if not yet sent and everything buffered. @return 0 or a code. */
GH_EXTERN int gh_response_flush(gh_response_t *w) GH_NONNULL(1);

/** Set a trailer field, sent after a chunked body (the response becomes chunked if it
 * was not committed yet and declares no Content-Length). @return 0, GH_EINVAL, GH_ENOMEM,
 * GH_EBUSY (already committed with a Content-Length), GH_EHIJACKED, GH_EHANDLERDONE. */
GH_EXTERN int gh_response_trailer_set(gh_response_t *w, const char *name, const char *value)
    GH_NONNULL(1, 2, 3);

/** The status written so far (0 if none). */
GH_EXTERN int gh_response_status(const gh_response_t *w) GH_NONNULL(1);

/** Ask for the connection to be closed after this response. */
GH_EXTERN void gh_response_close_after(gh_response_t *w) GH_NONNULL(1);

/** The reason phrase of a status code ("Not Found"): every code of the IANA HTTP Status
 * Code Registry, worded as RFC 9110 §15 does; "" for a code it does not list. */
GH_EXTERN const char *gh_status_text(int status);

/**
 * Answer with an error, as Go's http.Error: drop any Content-Length set, set
 * Content-Type "text/plain; charset=utf-8" and "X-Content-Type-Options: nosniff", send
 * status and the body `msg` followed by a newline. Other headers set stay (so a 405 can
 * carry Allow). The handler should write nothing more.
 * @return 0 or the first negative code of the writes (GH_EBUSY if a status was already
 * written).
 */
GH_EXTERN int gh_response_error(gh_response_t *w, const char *msg, int status) GH_NONNULL(1, 2);

/**
 * Redirect, as Go's http.Redirect: status is 3xx (301, 302, 303, 307 or 308 in
 * practice). A url without scheme and host is made absolute against the request's
 * path ("b" from "/a/x" is "/a/b"; ".." resolved; a trailing slash and the query kept),
 * and bytes outside ASCII are percent-encoded. For GET and HEAD without a Content-Type
 * set, the answer is typed text/html and (GET) carries a short link to the target.
 * @return 0; GH_EINVAL (status not 3xx, url with CR/LF); GH_ENOMEM; a write error.
 */
GH_EXTERN int gh_response_redirect(gh_response_t *w, const gh_request_t *r, const char *url,
                                   int status) GH_NONNULL(1, 2, 3);

GH_END_DECLS

#endif
