/*
 * gchttp/weak.h: weak references over bdwgc disappearing links.
 *
 * A gh_weak_t holds its target hidden (GC_HIDE_POINTER), so it keeps nothing alive, and
 * registers the slot with GC_general_register_disappearing_link (never the 1-argument
 * call, which watches the slot's own holder) or GC_register_long_link.
 *
 *  - short link: cleared when the target first becomes unreachable, before finalizers
 *    run. This is "unreachable", the right test for "is the response still in use".
 *  - long link: cleared only once the target is really reclaimed (its finalizer has
 *    run and it was not revived).
 *
 * Where a gh_weak_t may live: inside a GC object (the link is dropped when the holder
 * is collected), in static storage, or anywhere else that outlives the registration;
 * in the last case call gh_weak_clear() before the memory goes away. Never copy a
 * registered gh_weak_t with memcpy or assignment.
 *
 * Reads take the allocator lock (GC_call_with_alloc_lock): reading the hidden slot
 * without it races with the collector clearing it.
 *
 * Threads: any thread may read; set/clear a given gh_weak_t from one thread at a time.
 */
#ifndef GCHTTP_WEAK_H
#define GCHTTP_WEAK_H

#include "common.h"

GH_BEGIN_DECLS

typedef struct gh_weak_s {
    uintptr_t _hidden; /*< ~target, or 0; written by the collector */
} gh_weak_t;

#define GH_WEAK_INIT { 0 }

/** Point w at obj (any pointer into a GC object; the whole object is watched) with a
 * short link. Re-pointing an already set w is allowed. obj NULL clears.
 * @return 0, GH_EINVAL if obj is not in the GC heap, GH_ENOMEM. */
GH_EXTERN int gh_weak_set(gh_weak_t *w, void *obj) GH_WARN_UNUSED GH_NONNULL(1);
/** Same with a long link ("really reclaimed"). */
GH_EXTERN int gh_weak_set_long(gh_weak_t *w, void *obj) GH_WARN_UNUSED GH_NONNULL(1);
/** The target, or NULL once the link was cleared. Takes the allocator lock. The caller
 * then holds a strong reference on its stack. */
GH_EXTERN void *gh_weak_get(gh_weak_t *w) GH_NONNULL(1);
/** 1 once the collector (or gh_weak_clear) cleared the link, else 0; also 1 for a
 * gh_weak_t that was never set. Does not reveal the pointer, so needs no lock. */
GH_EXTERN int gh_weak_is_cleared(const gh_weak_t *w) GH_NONNULL(1);
/** Unregister and zero. Idempotent. */
GH_EXTERN void gh_weak_clear(gh_weak_t *w) GH_NONNULL(1);

GH_END_DECLS

#endif
