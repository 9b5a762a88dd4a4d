/*
 * gchttp/context.h: cancellation contexts (Go's context.WithCancel, minus values).
 *
 * Every connection has a context; every request has a child of it. A context is done
 * once cancelled, or once its parent is. Cancelled children leave their parent, so a
 * long-lived connection does not accumulate dead request contexts.
 *
 * Alloc:     gh_ctx_new(); GC object, no _free.
 * Lifetime:  a parent keeps its live (not yet cancelled) children alive; a child keeps
 *            its parent alive. Callbacks and their data are kept alive until the
 *            context is cancelled or the registration is removed.
 * Threads:   any. Callbacks run on the thread that cancels (for a client disconnect
 *            that is the server's poller thread), outside the context's lock: they
 *            must be quick and must not block. gh_ctx_wait blocks the caller.
 */
#ifndef GCHTTP_CONTEXT_H
#define GCHTTP_CONTEXT_H

#include "common.h"

GH_BEGIN_DECLS

typedef struct gh_ctx_s gh_ctx_t;
typedef void (*gh_ctx_fn)(gh_ctx_t *ctx, int reason, void *data);

/** A new context, child of parent (NULL: a root that is only cancelled explicitly).
 * If parent is already done the child starts done with the same reason.
 * NULL when out of memory. */
GH_EXTERN gh_ctx_t *gh_ctx_new(gh_ctx_t *parent) GH_WARN_UNUSED;
/** Cancel ctx and its descendants with reason (a negative GH_E* code; 0 becomes
 * GH_ECANCELED). Only the first cancellation counts. Runs the callbacks. */
GH_EXTERN void gh_ctx_cancel(gh_ctx_t *ctx, int reason);
/** 0 while live, else the (negative) reason it was cancelled with. Never blocks. */
GH_EXTERN int gh_ctx_done(const gh_ctx_t *ctx) GH_NONNULL(1);
/** Wait until ctx is done or the absolute deadline passes (0: no deadline).
 * @return the reason, or 0 on timeout. */
GH_EXTERN int gh_ctx_wait(gh_ctx_t *ctx, gh_time_t deadline) GH_NONNULL(1);
/** Register cb(ctx, reason, data) to run once when ctx is cancelled. Returns a
 * registration id (> 0); 0 if ctx was done already, in which case cb has run now, on
 * the calling thread; or a negative code (the callback then never runs). */
GH_EXTERN long gh_ctx_on_cancel(gh_ctx_t *ctx, gh_ctx_fn cb, void *data) GH_WARN_UNUSED
    GH_NONNULL(1);
/** Remove a registration; returns 1 if it was removed before running, 0 otherwise. */
GH_EXTERN int gh_ctx_off_cancel(gh_ctx_t *ctx, long id) GH_NONNULL(1);
/** Number of live children (for tests). */
GH_EXTERN size_t gh_ctx_children(const gh_ctx_t *ctx) GH_NONNULL(1);

GH_END_DECLS

#endif
