/*
 * gchttp/errno.h: the one error model of gchttp.
 *
 * Every fallible call returns an int: 0 (or a non-negative count) on success, or a
 * negative GH_E* code. Where a POSIX errno exists the code equals -errno, so
 * `gh_strerror(-EPIPE)` works too. Codes with no errno live below -4000.
 *
 * Rule for calls that take a callback: if the call fails, the callback never runs.
 */
#ifndef GCHTTP_ERRNO_H
#define GCHTTP_ERRNO_H

#include <errno.h>
#include "common.h"

GH_BEGIN_DECLS

/* X(name, value, message) */
#define GH_ERRNO_MAP(X)                                                                    \
    X(EAGAIN, -EAGAIN, "resource temporarily unavailable")                                 \
    X(EINVAL, -EINVAL, "invalid argument")                                                 \
    X(ENOMEM, -ENOMEM, "out of memory")                                                    \
    X(EBADF, -EBADF, "bad file descriptor (closed)")                                       \
    X(EPIPE, -EPIPE, "broken pipe")                                                        \
    X(ECONNRESET, -ECONNRESET, "connection reset by peer")                                 \
    X(ETIMEDOUT, -ETIMEDOUT, "deadline exceeded")                                          \
    X(ECANCELED, -ECANCELED, "operation canceled")                                         \
    X(EBUSY, -EBUSY, "resource busy")                                                      \
    X(EEXIST, -EEXIST, "already exists")                                                   \
    X(ENOENT, -ENOENT, "not found")                                                        \
    X(EMSGSIZE, -EMSGSIZE, "message too long")                                             \
    X(EPROTO, -EPROTO, "protocol error")                                                   \
    X(EADDRINUSE, -EADDRINUSE, "address already in use")                                   \
    X(EMFILE, -EMFILE, "too many open files")                                              \
    X(ENOTCONN, -ENOTCONN, "not connected")                                                \
    X(EOVERFLOW, -EOVERFLOW, "value too large")                                            \
    X(EOF, -4095, "end of file")                                                           \
    X(EHIJACKED, -4094, "connection has been hijacked")                                    \
    X(ECLOSED, -4093, "server closed")                                                     \
    X(EHANDLERDONE, -4092, "handler has returned")                                         \
    X(EBODYLIMIT, -4091, "request body too large")                                         \
    X(ECONTENTLENGTH, -4090, "wrote more than the declared Content-Length")                \
    X(EADDRESS, -4089, "bad listen address (want host:port, [v6]:port, :port, unix:/path)") \
    X(ENOHOST, -4088, "host name not found")

enum {
    /** Success: 0, what every call returns when it did what was asked. */
    GH_OK = 0,
#define GH__ERRNO_ENUM(name, val, msg) GH_##name = (val),
    GH_ERRNO_MAP(GH__ERRNO_ENUM)
#undef GH__ERRNO_ENUM
    GH__ERRNO_LAST = 0
};

/** A static English message for a GH_E* code (or -errno). Never NULL. */
GH_EXTERN const char *gh_strerror(int err) GH_WARN_UNUSED;
/** The code's name, e.g. "GH_ETIMEDOUT"; "GH_OK" for 0; "GH_UNKNOWN" for any other
 * value (a positive count, an errno with no GH_E* code). Never NULL. */
GH_EXTERN const char *gh_err_name(int err) GH_WARN_UNUSED;

GH_END_DECLS

#endif
