/*
 * gchttp/multipart.h: a multipart/form-data request body read as a stream of parts
 * (RFC 7578, RFC 2046 §5.1; Go's Request.MultipartReader).
 *
 * Nothing is buffered beyond one fixed window (64 KiB) and the current part's header
 * block: a part of any size is read piece by piece with gh_part_read, in memory that
 * does not grow with it.
 */
#ifndef GCHTTP_MULTIPART_H
#define GCHTTP_MULTIPART_H

#include <sys/types.h>
#include "common.h"
#include "request.h"

GH_BEGIN_DECLS

/**
 * A reader of a request's multipart body.
 * Alloc:     gh_multipart_new (GC object; its window is one atomic block); no free.
 * Lifetime:  as long as the handler holds it; reading it after the handler returned
 *            fails as gh_request_read does.
 * OS state:  none (it reads through gh_request_read).
 * Threads:   the handler's thread (or one thread at a time).
 */
typedef struct gh_multipart_s gh_multipart_t;
/**
 * One part: its headers, and its data through gh_part_read.
 * Alloc:     by gh_multipart_next (GC object; headers in one atomic block).
 * Lifetime:  its headers stay readable as long as it is held; its data only until the
 *            next gh_multipart_next.
 * OS state:  none.
 * Threads:   as its reader.
 */
typedef struct gh_part_s gh_part_t;

/** Limits; zero fields take the defaults. */
typedef struct gh_multipart_limits_s {
    size_t max_header_bytes; /**< one part's header block; default 16 KiB (at most 32 KiB) */
    size_t max_parts;        /**< parts in the body; default 1000 (Go's multipartmaxparts) */
} gh_multipart_limits_t;

/**
 * Start reading r's body as multipart/form-data. lim may be NULL (defaults).
 * @return 0 and *out; GH_EINVAL when the Content-Type is not multipart/form-data or has
 * no valid boundary (RFC 2046 §5.1.1: 1 to 70 characters); GH_ENOMEM.
 */
GH_EXTERN int gh_multipart_new(gh_request_t *r, const gh_multipart_limits_t *lim,
                               gh_multipart_t **out) GH_WARN_UNUSED GH_NONNULL(1, 3);

/**
 * Move to the next part, skipping what is left of the current one.
 * @return 1 and *out (a part), 0 at the end of the body (the close delimiter),
 * GH_EPROTO (malformed body: no delimiter, bad part header, body ended inside a part),
 * GH_EMSGSIZE (a header block over max_header_bytes, more than max_parts parts), or a
 * read error of gh_request_read (GH_EBODYLIMIT, GH_ETIMEDOUT...). Errors are sticky.
 */
GH_EXTERN int gh_multipart_next(gh_multipart_t *m, gh_part_t **out) GH_WARN_UNUSED GH_NONNULL(1, 2);

/** Read up to n bytes of the part's data. @return bytes (>0), 0 at the end of the part
 * (or once the reader moved on), or a negative code as gh_multipart_next. */
GH_EXTERN ssize_t gh_part_read(gh_part_t *p, void *buf, size_t n) GH_WARN_UNUSED GH_NONNULL(1, 2);

/** The part's header `name` (case-insensitive), or NULL. */
GH_EXTERN const char *gh_part_header(const gh_part_t *p, const char *name) GH_NONNULL(1, 2);
/** The "name" parameter of a form-data Content-Disposition, or NULL. */
GH_EXTERN const char *gh_part_name(const gh_part_t *p) GH_NONNULL(1);
/** The "filename" parameter (RFC 2231 "filename*" preferred), reduced to its last path
 * element as Go's FileName does ("../../x.txt" is "x.txt"), or NULL when none. */
GH_EXTERN const char *gh_part_filename(const gh_part_t *p) GH_NONNULL(1);

GH_END_DECLS

#endif
