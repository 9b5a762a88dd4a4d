/*
 * gchttp/common.h: export macro and the few types every gchttp header shares.
 *
 * gchttp is built with -fvisibility=hidden; only declarations marked GH_EXTERN are
 * exported, and every exported name starts with gh_ (checked by `make check`).
 */
#ifndef GCHTTP_COMMON_H
#define GCHTTP_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && __GNUC__ >= 4
#define GH_EXTERN __attribute__((visibility("default")))
#else
#define GH_EXTERN
#endif

/* Compiler checks on the public API: a result that must be looked at (an error code,
 * an object the caller owns) and pointer parameters that must not be NULL (1-based
 * positions). Empty on compilers without GNU attributes. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define GH_WARN_UNUSED __attribute__((warn_unused_result))
#define GH_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#else
#define GH_WARN_UNUSED
#define GH_NONNULL(...)
#endif

#ifdef __cplusplus
#define GH_BEGIN_DECLS extern "C" {
#define GH_END_DECLS }
#else
#define GH_BEGIN_DECLS
#define GH_END_DECLS
#endif

GH_BEGIN_DECLS

/** A point in time or a duration, in nanoseconds of CLOCK_MONOTONIC. */
typedef int64_t gh_time_t;

#define GH_MSEC ((gh_time_t)1000000)
#define GH_SEC ((gh_time_t)1000000000)

/** Now, on CLOCK_MONOTONIC, in nanoseconds. Never fails. */
GH_EXTERN gh_time_t gh_now(void);

GH_END_DECLS

#endif
