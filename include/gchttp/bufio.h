/*
 * gchttp/bufio.h: buffered reader and writer over any byte source or sink.
 *
 * These are the `bufr` / `bufw` of a connection, and what gh_response_hijack() hands
 * back. A source (sink) is a GC object plus a read (write) function; the reader or
 * writer keeps the object alive, so retargeting with _reset is how a path to an
 * object is cut.
 *
 * Alloc:     gh_reader_new / gh_writer_new: GC objects, no _free. The buffer is atomic
 *            storage of gh_bytes_good_size(size) bytes (4095 for the 4 KiB default, so
 *            it costs one 4 KiB block, not two).
 * Lifetime:  while referenced. Buffers may be released while empty (_release) and are
 *            allocated again on the next use; with autorelease on (_set_autorelease,
 *            what a hijack in the default stage returns) that happens whenever they are
 *            empty again.
 * OS state:  none of their own; the source/sink owns any descriptor.
 * Threads:   one thread at a time per reader and per writer.
 * Errors:    the first error from the source or sink is sticky, as in Go's bufio.
 */
#ifndef GCHTTP_BUFIO_H
#define GCHTTP_BUFIO_H

#include <sys/types.h>
#include "common.h"

GH_BEGIN_DECLS

/** Read up to n bytes from src: >0 bytes, 0 at end of stream, or a negative GH_E*. */
typedef ssize_t (*gh_read_fn)(void *src, void *buf, size_t n);
/** Write all n bytes to dst: n, or a negative GH_E*. */
typedef ssize_t (*gh_write_fn)(void *dst, const void *buf, size_t n);

typedef struct gh_reader_s gh_reader_t;
typedef struct gh_writer_s gh_writer_t;

#define GH_BUFIO_DEFAULT_SIZE 4096

/** A reader over src. size 0 means GH_BUFIO_DEFAULT_SIZE. The buffer is allocated on
 * first use. NULL when out of memory. */
GH_EXTERN gh_reader_t *gh_reader_new(void *src, gh_read_fn fn, size_t size) GH_WARN_UNUSED;
/** Retarget at another source. Buffered bytes are kept and read first. */
GH_EXTERN void gh_reader_reset(gh_reader_t *r, void *src, gh_read_fn fn) GH_NONNULL(1);
/** Read up to n bytes: buffered bytes first; otherwise at most one read from the
 * source (directly into buf when n >= the buffer size). Returns >0, 0 at EOF (only
 * once the buffer is empty), or a negative code. */
GH_EXTERN ssize_t gh_reader_read(gh_reader_t *r, void *buf, size_t n) GH_WARN_UNUSED GH_NONNULL(1);
/** Read exactly n bytes unless EOF or an error comes first; returns the count read
 * (< n at EOF) or a negative code when nothing was read. */
GH_EXTERN ssize_t gh_reader_read_full(gh_reader_t *r, void *buf, size_t n) GH_WARN_UNUSED
    GH_NONNULL(1);
/** Make at least n bytes available (n <= buffer size) and point *p at them, reading
 * from the source as needed. Returns the bytes available (< n only at EOF or error,
 * in which case a short count or the negative code comes back). */
GH_EXTERN ssize_t gh_reader_peek(gh_reader_t *r, size_t n, const char **p) GH_WARN_UNUSED
    GH_NONNULL(1);
/** Read from the source once into the free buffer space (compacting first). Returns
 * bytes added, 0 at EOF, GH_EMSGSIZE if the buffer is full, or a negative code. */
GH_EXTERN ssize_t gh_reader_fill(gh_reader_t *r) GH_WARN_UNUSED GH_NONNULL(1);
/** Bytes buffered and not consumed; *p (if not NULL) points at them. */
GH_EXTERN size_t gh_reader_buffered(const gh_reader_t *r, const char **p) GH_NONNULL(1);
/** Drop n buffered bytes (n <= gh_reader_buffered). */
GH_EXTERN void gh_reader_consume(gh_reader_t *r, size_t n) GH_NONNULL(1);
/** Read one line ending in LF into *line (pointing into the buffer, valid until the
 * next call), of at most limit bytes (<= buffer size) including the LF. Returns the
 * length, 0 at EOF, GH_EMSGSIZE if no LF within limit, or <0. */
GH_EXTERN ssize_t gh_reader_read_line(gh_reader_t *r, const char **line,
                                      size_t limit) GH_WARN_UNUSED GH_NONNULL(1, 2);
/** Release the buffer if nothing is buffered (stage `release`); the next read
 * allocates it again. Returns 1 if released. */
GH_EXTERN int gh_reader_release(gh_reader_t *r) GH_NONNULL(1);
/** Autorelease (on = 1): release the buffer now if it is empty, and from then on each
 * time a gh_reader_read, gh_reader_read_full or gh_reader_consume empties it. While
 * released, a gh_reader_read of fewer bytes than the buffer size reads from the source
 * into a scratch buffer of the calling thread and keeps only the bytes the caller did
 * not take, in a buffer allocated for just them: a read that takes everything the
 * source gave allocates nothing. (A later peek, line or fill that needs room moves
 * them into a full buffer first.) gh_reader_peek, gh_reader_read_line and gh_reader_fill allocate
 * the buffer as usual (their results point into it), and a line or peek keeps it until
 * a later read or consume empties it. Source reads keep their sizes either way. */
GH_EXTERN void gh_reader_set_autorelease(gh_reader_t *r, int on) GH_NONNULL(1);
/** Buffer capacity in bytes (0 while released). */
GH_EXTERN size_t gh_reader_size(const gh_reader_t *r) GH_NONNULL(1);
/** The sticky error, or 0. */
GH_EXTERN int gh_reader_error(const gh_reader_t *r) GH_NONNULL(1);

/** A writer into dst. size 0 means GH_BUFIO_DEFAULT_SIZE; the buffer is allocated on
 * first write. NULL when out of memory. */
GH_EXTERN gh_writer_t *gh_writer_new(void *dst, gh_write_fn fn, size_t size) GH_WARN_UNUSED;
/** Retarget at another sink. Buffered bytes are kept and go to the new sink. */
GH_EXTERN void gh_writer_reset(gh_writer_t *w, void *dst, gh_write_fn fn) GH_NONNULL(1);
/** Buffer n bytes, writing to the sink when the buffer fills (large writes with an
 * empty buffer go straight through). Returns n or the sticky negative code. */
GH_EXTERN ssize_t gh_writer_write(gh_writer_t *w, const void *buf, size_t n) GH_NONNULL(1);
GH_EXTERN ssize_t gh_writer_puts(gh_writer_t *w, const char *s) GH_NONNULL(1, 2);
/** Write everything buffered to the sink. 0 or the sticky negative code. */
GH_EXTERN int gh_writer_flush(gh_writer_t *w) GH_NONNULL(1);
/** Bytes buffered, not yet written. */
GH_EXTERN size_t gh_writer_buffered(const gh_writer_t *w) GH_NONNULL(1);
/** Free space in the buffer (the full size while it is released). */
GH_EXTERN size_t gh_writer_available(const gh_writer_t *w) GH_NONNULL(1);
/** Release the buffer if it is empty; returns 1 if released. */
GH_EXTERN int gh_writer_release(gh_writer_t *w) GH_NONNULL(1);
/** Autorelease (on = 1): release the buffer now if it is empty, and after each
 * successful gh_writer_flush; the next write allocates it again. Writes reach the sink
 * in the same pieces either way (a buffer that fills inside gh_writer_write is flushed
 * and kept for the rest of that write). */
GH_EXTERN void gh_writer_set_autorelease(gh_writer_t *w, int on) GH_NONNULL(1);
GH_EXTERN size_t gh_writer_size(const gh_writer_t *w) GH_NONNULL(1);
GH_EXTERN int gh_writer_error(const gh_writer_t *w) GH_NONNULL(1);

/** A source/sink pair over a gh_fd_t, for gh_reader_new(fd, gh_fd_read_fn, 0). */
GH_EXTERN ssize_t gh_fd_read_fn(void *fd, void *buf, size_t n) GH_WARN_UNUSED GH_NONNULL(1);
GH_EXTERN ssize_t gh_fd_write_fn(void *fd, const void *buf, size_t n) GH_WARN_UNUSED GH_NONNULL(1);

GH_END_DECLS

#endif
