/*
 * gchttp/ref.h: handles for embedders.
 *
 * A host that stores a gchttp object in memory the collector does not scan (a malloc'd
 * table, a kernel cookie, another runtime's heap) must hold it with gh_ref(): while
 * the count is above zero, the object is kept in a GC-visible table and cannot be
 * collected. At zero the table entry goes and the object is an ordinary GC object
 * again, collected once nothing else reaches it.
 *
 * Threads: any; the table is guarded by one mutex. Cost: O(1) expected per call.
 */
#ifndef GCHTTP_REF_H
#define GCHTTP_REF_H

#include "common.h"

GH_BEGIN_DECLS

/** Add one reference to obj (a pointer into a GC object). Returns obj; NULL on NULL
 * or out of memory. */
GH_EXTERN void *gh_ref(void *obj);
/** Drop one reference. Dropping a reference that was never taken is ignored and
 * returns GH_ENOENT. @return the remaining count (>= 0) or GH_ENOENT. */
GH_EXTERN int gh_unref(void *obj);
/** The current count for obj (0 if none). */
GH_EXTERN int gh_ref_count(const void *obj);

GH_END_DECLS

#endif
