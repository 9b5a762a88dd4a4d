/*
 * gchttp/gc.h: collector set-up and reachability tools for tests, benchmarks and users.
 *
 * Who calls GC_INIT: whoever comes first. gh_gc_init() calls GC_INIT() only if the
 * collector is not initialised yet, so a host runtime (Guile, ECL...) that already did
 * it keeps its settings. Call gh_gc_init() from the main thread before anything else.
 */
#ifndef GCHTTP_GC_H
#define GCHTTP_GC_H

#include <stdio.h>
#include "common.h"

GH_BEGIN_DECLS

/**
 * Initialise the collector if needed, allow thread registration, and install a warning
 * hook that counts bdwgc warnings (and "Finalization cycle" ones separately) before
 * passing them on. When it initialises the collector itself, it asks for one parallel
 * marker per CPU the process may run on (sched_getaffinity), where bdwgc would count the
 * machine's CPUs; the GC_MARKERS or GC_NPROCS environment variables still decide when set.
 * Idempotent; must first run on the main thread (or a registered one).
 */
GH_EXTERN void gh_gc_init(void);

/**
 * Make finalizers run only inside gh_gc_collect (GC_set_finalize_on_demand(1)) instead
 * of in whichever thread allocates. Tests use it for determinism.
 */
GH_EXTERN void gh_gc_set_finalize_on_demand(int on);

/**
 * Scrub the stack below the caller, then n times: full collection, run pending
 * finalizers, scrub again. Scrubbing matters: the dead frame of the function that just
 * dropped its references, or of a finalizer, would otherwise keep objects visible to the
 * next collection. Typical use in tests: gh_gc_collect(2) (no-order finalizers run in the
 * first collection, their objects are reclaimed in the second).
 */
GH_EXTERN void gh_gc_collect(int n);

/** Zero 16 KiB of stack below the caller, so stale slots of finished frames no longer
 * pin objects. Call it from long-lived threads between jobs. */
GH_EXTERN void gh_gc_scrub_stack(void);

/** Exact bytes in objects marked by the last collection (GC_size of each), walked
 * under the allocator lock. Run gh_gc_collect(2) first. */
GH_EXTERN size_t gh_gc_live_bytes(void);
/** Like gh_gc_live_bytes, also counting objects. */
GH_EXTERN size_t gh_gc_live_objects(size_t *bytes);

/** Block-level heap in use: heap - free - unmapped. */
GH_EXTERN size_t gh_gc_heap_used(void);
/** Bytes allocated since start (GC_get_total_bytes; charged per free-list refill). */
GH_EXTERN size_t gh_gc_total_bytes(void);

/** Warnings seen by the hook since start, and how many were "Finalization cycle". */
GH_EXTERN unsigned long gh_gc_warnings(unsigned long *finalization_cycles);

/**
 * A probe watches one object without retaining it: a short link says "unreachable"
 * (no longer reachable from any root), a long link says "reclaimed" (finalized and not
 * revived). The probe itself is a small atomic GC object: keep it reachable (in a
 * static array or a GC object) for as long as you look at it.
 */
typedef struct gh_probe_s gh_probe_t;

/** Watch obj. @return the probe, or NULL if obj is not a GC object or out of memory. */
GH_EXTERN gh_probe_t *gh_probe_new(const void *obj) GH_WARN_UNUSED;
/** 1 once the object was found unreachable. */
GH_EXTERN int gh_probe_unreachable(const gh_probe_t *p) GH_NONNULL(1);
/** 1 once the object was reclaimed. */
GH_EXTERN int gh_probe_reclaimed(const gh_probe_t *p) GH_NONNULL(1);

/**
 * Write the object graph reachable from root through typed pointer fields, as a
 * Graphviz DOT digraph named `name`. Nodes are gh objects (labelled with their type
 * name and GC size) and the other GC objects they point to (labelled "bytes" or "gc",
 * with size); edges are labelled with the field's name from the type's ptr_names, or
 * its byte offset. At most max_nodes nodes are written (0: no limit).
 * @return the number of nodes written, or a negative code.
 */
GH_EXTERN int gh_gc_write_dot(FILE *out, const char *name, const void *root,
                              int max_nodes) GH_WARN_UNUSED;

GH_END_DECLS

#endif
