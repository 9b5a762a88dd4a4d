/*
 * gchttp/obj.h: typed GC objects, atomic byte storage, per-type accounting.
 *
 * The object model every gchttp node (conn, response, request, ...) is built on, and
 * that embedders may use for their own objects.
 *
 * GC rules (read these once):
 *  - There is no _free. An object lives while the collector can reach it from a root:
 *    a registered thread's stack or registers, the data/bss of a loaded object, or
 *    another reachable GC object (through a pointer field declared in its type).
 *  - A pointer stored only in memory the collector does not scan (malloc'd blocks,
 *    epoll_event.data, thread-specific data, the kernel) does NOT keep the object
 *    alive: the object may be collected under you. Use gh_ref() (ref.h) for that.
 *  - Byte storage (gh_bytes_new) is atomic: it is never scanned, so pointers stored in
 *    it keep nothing alive.
 *  - In a typed object only the fields listed in the type's pointer offsets are
 *    scanned. An integer field that happens to hold an address pins nothing.
 *  - Finalizers are "no order" (GC_register_finalizer_no_order): cycles such as
 *    conn <-> response are finalized and freed. A finalizer never does I/O beyond a
 *    backstop close(), never allocates, and never calls user code.
 *  - Release OS resources explicitly (gh_fd_close); finalizers run late or never.
 */
#ifndef GCHTTP_OBJ_H
#define GCHTTP_OBJ_H

#include "common.h"

GH_BEGIN_DECLS

/**
 * A type descriptor. Declare one per C struct, in static storage, with GH_TYPE_INIT:
 *
 *     struct node { long id; struct node *next; void *payload; };
 *     static const size_t node_ptrs[] = { offsetof(struct node, next),
 *                                         offsetof(struct node, payload) };
 *     static gh_type_t node_type = GH_TYPE_INIT("node", struct node, node_ptrs);
 *
 * Alloc:     static storage, owned by the caller; never freed (objects refer to it).
 * Threads:   any; it is initialised lazily and thread-safely on first allocation.
 * The fields after `finalize` are private.
 */
typedef struct gh_type_s {
    const char *name;           /*< shown in statistics and DOT output */
    size_t size;                /*< sizeof the struct */
    const size_t *ptr_offsets;  /*< byte offsets of the pointer fields (word aligned) */
    size_t n_ptrs;              /*< number of entries in ptr_offsets */
    const char *const *ptr_names; /*< optional field names, n_ptrs of them (DOT labels) */
    /** Optional backstop, run by the collector's finalizer pass (no order) with the
     * object. It must not allocate, lock, do I/O other than close(), or call user code. */
    void (*finalize)(void *obj);
    /* private */
    struct gh_type_s *_next;    /*< registry of initialised types */
    uintptr_t _descr;           /*< GC_descr */
    int _state;                 /*< 0 new, 1 initialising, 2 ready */
    unsigned long _n_alloc;     /*< objects allocated (atomic) */
    unsigned long _n_bytes;     /*< bytes allocated, GC_size of each object (atomic) */
    unsigned long _n_final;     /*< objects finalized while accounting was on (atomic) */
} gh_type_t;

#define GH_TYPE_INIT(name_, ctype_, offsets_)                                              \
    { (name_), sizeof(ctype_), (offsets_), sizeof(offsets_) / sizeof((offsets_)[0]), 0, 0, \
      0, 0, 0, 0, 0, 0 }
/** The same, with field names for the graph walker (an array parallel to offsets_). */
#define GH_TYPE_INIT_NAMED(name_, ctype_, offsets_, names_)                                \
    { (name_), sizeof(ctype_), (offsets_), sizeof(offsets_) / sizeof((offsets_)[0]),       \
      (names_), 0, 0, 0, 0, 0, 0, 0 }
/** A type with no pointer fields. */
#define GH_TYPE_INIT_NOPTRS(name_, ctype_) { (name_), sizeof(ctype_), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/** Per-type figures. live = allocated - finalized, meaningful only while accounting is on
 * for the type's whole life. */
typedef struct gh_type_stats_s {
    const char *name;
    unsigned long allocated;
    unsigned long bytes;
    unsigned long finalized;
    long live;
} gh_type_stats_t;

/**
 * Allocate a zeroed object of type t with a precise layout (GC_malloc_explicitly_typed).
 * The returned pointer is what the program holds; a hidden word in front of it records
 * the type, so gh_obj_type() and the graph walker can name it.
 * @return the object, or NULL when out of memory.
 */
GH_EXTERN void *gh_obj_new(gh_type_t *t) GH_WARN_UNUSED GH_NONNULL(1);

/** The type of an object from gh_obj_new, or NULL for anything else (bytes, foreign GC
 * objects, non-heap memory). Safe on any pointer. */
GH_EXTERN gh_type_t *gh_obj_type(const void *p);

/**
 * Allocate n bytes of atomic (never scanned, NOT zeroed) storage. Use it for every byte
 * buffer. See gh_bytes_good_size(): with interior pointers on, a 4096-byte request costs
 * 8 KiB of heap, a 4095-byte one 4 KiB.
 */
GH_EXTERN void *gh_bytes_new(size_t n) GH_WARN_UNUSED;

/**
 * The largest request <= n whose GC size does not spill past the power of two at or
 * above n (for n >= 16; smaller n is returned unchanged, as is every n when interior
 * pointers are off). With interior pointers on, bdwgc adds one byte to each request, so
 * 4096 becomes 4097 and takes two heap blocks; gh_bytes_good_size(4096) is 4095.
 * Exact for requests above 2 KiB (large objects); below that bdwgc's size classes, which
 * depend on the allocation history, decide the real size, and the result is merely
 * never worse than n.
 */
GH_EXTERN size_t gh_bytes_good_size(size_t n);

/** A zeroed array of n pointer-sized words that the collector scans conservatively:
 * for tables of GC pointers held by a program (every word that looks like a pointer
 * keeps its target alive). Counted in gh_alloc_stats. NULL when out of memory. */
GH_EXTERN void *gh_ptrs_new(size_t n) GH_WARN_UNUSED;

/** Copy a C string into atomic storage. NULL when out of memory. */
GH_EXTERN char *gh_strdup(const char *s) GH_WARN_UNUSED GH_NONNULL(1);
/** Copy n bytes into atomic storage and add a NUL. NULL when out of memory. */
GH_EXTERN char *gh_strndup(const char *s, size_t n) GH_WARN_UNUSED GH_NONNULL(1);

/**
 * Turn per-object finalization accounting on or off. While on, every gh_obj_new
 * registers a no-order finalizer that counts the object as finalized when the
 * collector reclaims it (and runs the type's finalize hook, if any). Off by default:
 * it costs a finalizer registration per object.
 */
GH_EXTERN void gh_obj_set_accounting(int on);
GH_EXTERN int gh_obj_get_accounting(void);

/** Fill *st for type t (which need not have been used yet). */
GH_EXTERN void gh_type_stats(gh_type_t *t, gh_type_stats_t *st) GH_NONNULL(1, 2);

/** Look up an initialised type by name; NULL if none. */
GH_EXTERN gh_type_t *gh_type_find(const char *name) GH_WARN_UNUSED GH_NONNULL(1);

/** Call fn for each initialised type, in registration order. */
GH_EXTERN void gh_type_foreach(void (*fn)(gh_type_t *t, void *data), void *data) GH_NONNULL(1);

/** Process-wide allocation counters: every gh_obj_new and gh_bytes_new (and the
 * strdup helpers) counts one object and its GC size. Monotonic. */
typedef struct gh_alloc_stats_s {
    unsigned long objects;
    unsigned long bytes;
} gh_alloc_stats_t;

GH_EXTERN void gh_alloc_stats(gh_alloc_stats_t *st) GH_NONNULL(1);

GH_END_DECLS

#endif
