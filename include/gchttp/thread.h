/*
 * gchttp/thread.h: GC-registered threads.
 *
 * Rules for every thread gchttp creates, and for yours if they touch GC objects:
 *  - it is registered with the collector (started through gh_thread_start, or
 *    registered with gh_thread_register), otherwise the collector aborts with
 *    "Collecting from unknown thread" or, worse, misses the pointers on its stack;
 *  - every blocking wait retries on EINTR: bdwgc stops the world with signals
 *    (SIGPWR/SIGXCPU on Linux), which interrupt poll and epoll_wait on each collection;
 *  - a thread that runs many jobs scrubs its stack between them (gh_gc_scrub_stack),
 *    otherwise stale slots keep the previous job's objects alive.
 */
#ifndef GCHTTP_THREAD_H
#define GCHTTP_THREAD_H

#include <pthread.h>
#include "common.h"

GH_BEGIN_DECLS

/** Start fn(arg) on a new GC-registered thread. arg may be a GC pointer: it is kept
 * visible until fn runs. @return 0 or a negative code. */
GH_EXTERN int gh_thread_start(pthread_t *t, void *(*fn)(void *), void *arg) GH_WARN_UNUSED
    GH_NONNULL(1, 2);
/** Join a thread started with gh_thread_start. */
GH_EXTERN int gh_thread_join(pthread_t t, void **ret);
/** Register / unregister the calling thread (one the collector did not create).
 * gh_gc_init() must have run. Unregister before the thread exits.
 * @return 0; GH_EEXIST if the thread is already registered (for example it came from
 *         gh_thread_start): it must then not call gh_thread_unregister; GH_EINVAL if
 *         the stack base cannot be found. */
GH_EXTERN int gh_thread_register(void) GH_WARN_UNUSED;
GH_EXTERN int gh_thread_unregister(void);

GH_END_DECLS

#endif
