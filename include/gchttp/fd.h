/*
 * gchttp/fd.h: reference-counted file descriptors with deadlines.
 *
 * A gh_fd_t is a GC object wrapping one OS descriptor, in the manner of Go's
 * internal/poll.FD: every operation holds a reference on the descriptor for as long
 * as it runs, so
 *  - gh_fd_close() from another thread wakes an operation blocked in read or write
 *    (sockets are shut down; the blocked call returns GH_EBADF), and
 *  - the descriptor number is not close()d, and so cannot be reused by the kernel for
 *    another file, until the last operation in flight has returned.
 *
 * Alloc:     gh_fd_new(); GC object, no _free.
 * Lifetime:  alive while referenced. Close explicitly with gh_fd_close() (idempotent).
 *            If an open gh_fd_t becomes unreachable, a no-order finalizer close()s the
 *            descriptor as a backstop and counts it in gh_fd_leaked(): a leak made
 *            visible, never silent.
 * Threads:   any; one reader and one writer may run concurrently. gh_fd_close from
 *            any thread wakes a blocked socket operation at once (shutdown); on pipes
 *            and other non-sockets the operation notices at the next poll slice.
 * Blocking:  the descriptor is switched to O_NONBLOCK; blocking calls wait in poll()
 *            bounded by the deadline, retrying on EINTR (the collector's stop-the-world
 *            signals interrupt poll on every collection). A deadline changed while a
 *            call is waiting takes effect within GH_FD_POLL_SLICE_MS.
 * Signals:   writes to sockets use MSG_NOSIGNAL; a broken pipe is GH_EPIPE, never SIGPIPE
 *            (for non-socket descriptors ignore SIGPIPE yourself).
 */
#ifndef GCHTTP_FD_H
#define GCHTTP_FD_H

#include <sys/types.h>
#include "common.h"

GH_BEGIN_DECLS

typedef struct gh_fd_s gh_fd_t;

#define GH_FD_POLL_SLICE_MS 250

/** Wrap fd, taking ownership (it will be closed by gh_fd_close or the backstop).
 * @return the object, or NULL (errno set; fd left open) on failure. */
GH_EXTERN gh_fd_t *gh_fd_new(int fd) GH_WARN_UNUSED;

/** Read up to n bytes. Waits for data until the read deadline.
 * @return bytes read (>0), 0 at end of stream, or GH_ETIMEDOUT, GH_EBADF (closed),
 *         GH_ECONNRESET or another -errno. */
GH_EXTERN ssize_t gh_fd_read(gh_fd_t *f, void *buf, size_t n) GH_WARN_UNUSED GH_NONNULL(1);
/** Read what is available now without waiting; GH_EAGAIN if nothing is. */
GH_EXTERN ssize_t gh_fd_read_nowait(gh_fd_t *f, void *buf, size_t n) GH_WARN_UNUSED GH_NONNULL(1);

/** Write all n bytes (looping over short writes) before the write deadline.
 * @return n, or a negative code; on error some prefix may have been written. */
GH_EXTERN ssize_t gh_fd_write(gh_fd_t *f, const void *buf, size_t n) GH_NONNULL(1);

/** Write two buffers with one writev where possible; same contract as gh_fd_write
 * for n1 + n2 bytes. */
GH_EXTERN ssize_t gh_fd_write2(gh_fd_t *f, const void *b1, size_t n1, const void *b2,
                               size_t n2) GH_NONNULL(1);

/** Absolute deadlines on CLOCK_MONOTONIC (gh_now() + d); 0 means none. */
GH_EXTERN void gh_fd_set_read_deadline(gh_fd_t *f, gh_time_t at) GH_NONNULL(1);
GH_EXTERN void gh_fd_set_write_deadline(gh_fd_t *f, gh_time_t at) GH_NONNULL(1);
GH_EXTERN gh_time_t gh_fd_read_deadline(const gh_fd_t *f) GH_NONNULL(1);
GH_EXTERN gh_time_t gh_fd_write_deadline(const gh_fd_t *f) GH_NONNULL(1);

/** Close: mark closed, shut a socket down so blocked calls wake, and close() the
 * descriptor once no call holds it. Idempotent.
 * @return 0, or GH_EBADF if it was already closed. */
GH_EXTERN int gh_fd_close(gh_fd_t *f) GH_NONNULL(1);

/** Shut down the write side of a socket (half close). */
GH_EXTERN int gh_fd_shutdown_write(gh_fd_t *f) GH_NONNULL(1);

/** 1 once gh_fd_close has been called. */
GH_EXTERN int gh_fd_is_closed(const gh_fd_t *f) GH_NONNULL(1);

/** The descriptor number, or -1 once closed. Only meaningful while you hold a
 * reference (see gh_fd_acquire). */
GH_EXTERN int gh_fd_fileno(const gh_fd_t *f) GH_NONNULL(1);

/** Take / drop an operation reference around your own syscall on gh_fd_fileno().
 * @return 0, or GH_EBADF if the descriptor is closed (no reference taken). */
GH_EXTERN int gh_fd_acquire(gh_fd_t *f) GH_WARN_UNUSED GH_NONNULL(1);
GH_EXTERN void gh_fd_release(gh_fd_t *f) GH_NONNULL(1);

/** Descriptors closed by the finalizer backstop since start (leaks made visible). */
GH_EXTERN unsigned long gh_fd_leaked(void);

GH_END_DECLS

#endif
