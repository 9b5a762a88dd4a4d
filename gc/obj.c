/* gc/obj.c: typed GC objects, atomic byte storage, per-type accounting (gchttp/obj.h). */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gc/gc_inline.h> /* GC_I_PTRFREE */
#include <gc/gc_mark.h>
#include <gc/gc_typed.h>

#include "internal.h"

/* The registry of initialised types. It is append-only and its nodes are the callers'
 * static gh_type_t, so readers walk it without the lock (acquire loads of _next);
 * the mutex only serialises appends. */
static gh_type_t *reg_head;
static gh_type_t **reg_tail = &reg_head;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

static int accounting;
/* The bdwgc kind of typed objects, learnt from the first allocation (+1, 0 = none yet).
 * gh_obj_type() accepts only objects of this kind, so a look-alike header in a plain
 * GC_MALLOC or atomic block is never taken for a gh object. */
static int obj_kind_plus1;
static unsigned long alloc_objects;
static unsigned long alloc_bytes;

void gh__count_alloc(size_t bytes)
{
    __atomic_add_fetch(&alloc_objects, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&alloc_bytes, (unsigned long)bytes, __ATOMIC_RELAXED);
}

static void type_register(gh_type_t *t)
{
    pthread_mutex_lock(&reg_lock);
    t->_next = NULL;
    __atomic_store_n(reg_tail, t, __ATOMIC_RELEASE);
    reg_tail = &t->_next;
    pthread_mutex_unlock(&reg_lock);
}

/* A bad offset table is a bug in a static declaration, found on the first allocation;
 * carrying on would give the collector a layout that hides live pointers. */
static void type_abort(const gh_type_t *t, size_t i)
{
    fprintf(stderr,
            "gchttp: type \"%s\": pointer offset %zu (%zu) is not a word-aligned "
            "offset inside the struct (size %zu)\n",
            t->name ? t->name : "?", i, t->ptr_offsets[i], t->size);
    abort();
}

/* Build the descriptor: header words are non-pointers, then one bit per declared
 * pointer field. The bitmap is malloc'd and never freed: GC_make_descriptor may keep
 * referring to it, and types live as long as the process anyway. */
static int type_build(gh_type_t *t)
{
    const size_t wbits = 8 * sizeof(GC_word);
    size_t nwords = (GH__OBJ_HDR + t->size + sizeof(GC_word) - 1) / sizeof(GC_word);
    GC_word *bm = calloc((nwords + wbits - 1) / wbits, sizeof(GC_word));
    if (!bm)
        return GH_ENOMEM;
    for (size_t i = 0; i < t->n_ptrs; i++) {
        size_t off = t->ptr_offsets[i];
        if (off % sizeof(void *) != 0 || off + sizeof(void *) > t->size)
            type_abort(t, i);
        size_t bit = (GH__OBJ_HDR + off) / sizeof(GC_word);
        bm[bit / wbits] |= (GC_word)1 << (bit % wbits);
    }
    /* bm is kept on purpose (see above). */
    /* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
    t->_descr = (uintptr_t)GC_make_descriptor(bm, nwords);
    return 0;
}

/* Lazy, thread-safe initialisation: the first allocator moves _state 0 -> 1, builds and
 * publishes 2; concurrent first allocators yield until then. Building is short (one
 * GC_make_descriptor), so yielding beats a lock that every later allocation would
 * have to look at. */
static int type_ready(gh_type_t *t)
{
    for (;;) {
        int s = __atomic_load_n(&t->_state, __ATOMIC_ACQUIRE);
        if (s == 2)
            return 0;
        if (s == 0) {
            int expect = 0;
            if (!__atomic_compare_exchange_n(&t->_state, &expect, 1, 0, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE))
                continue;
            int rc = type_build(t);
            if (rc < 0) {
                __atomic_store_n(&t->_state, 0, __ATOMIC_RELEASE);
                return rc;
            }
            type_register(t);
            __atomic_store_n(&t->_state, 2, __ATOMIC_RELEASE);
            return 0;
        }
        sched_yield();
    }
}

/*
 * The one finalizer of gh objects, registered with GC_register_finalizer_no_order only:
 * an ordered finalizer on a member of a cycle (conn <-> response) is never run and the
 * cycle is never freed. cd is 1 when accounting was on at allocation, so that
 * `finalized` only counts objects that `live` covers. Runs on whichever thread calls
 * GC_invoke_finalizers (or allocates, unless finalize-on-demand).
 */
static void obj_finalizer(void *base, void *cd)
{
    gh_type_t *t = ((gh__objhdr_t *)base)->type;
    if (cd)
        __atomic_add_fetch(&t->_n_final, 1, __ATOMIC_RELAXED);
    if (t->finalize)
        t->finalize((char *)base + GH__OBJ_HDR);
}

void *gh_obj_new(gh_type_t *t)
{
    if (type_ready(t) < 0)
        return NULL;
    char *base = GC_malloc_explicitly_typed(GH__OBJ_HDR + t->size, (GC_descr)t->_descr);
    if (!base)
        return NULL;
    gh__objhdr_t *h = (gh__objhdr_t *)base;
    h->type = t;
    h->check = (uintptr_t)t ^ GH__OBJ_MAGIC;

    size_t sz = 0;
    int kind = GC_get_kind_and_size(base, &sz);
    if (!__atomic_load_n(&obj_kind_plus1, __ATOMIC_RELAXED))
        __atomic_store_n(&obj_kind_plus1, kind + 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&t->_n_alloc, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&t->_n_bytes, (unsigned long)sz, __ATOMIC_RELAXED);
    gh__count_alloc(sz);

    int acct = __atomic_load_n(&accounting, __ATOMIC_RELAXED);
    if (acct || t->finalize)
        GC_register_finalizer_no_order(base, obj_finalizer, (void *)(uintptr_t)(acct != 0), NULL,
                                       NULL);
    return base + GH__OBJ_HDR;
}

static int type_is_registered(const gh_type_t *t)
{
    for (gh_type_t *r = __atomic_load_n(&reg_head, __ATOMIC_ACQUIRE); r;
         r = __atomic_load_n(&r->_next, __ATOMIC_ACQUIRE))
        if (r == t)
            return 1;
    return 0;
}

gh_type_t *gh__obj_type_of_base(const void *base)
{
    size_t sz = 0;
    if (!base)
        return NULL;
    int kind = GC_get_kind_and_size(base, &sz);
    /* Atomic objects are never ours (and their unzeroed contents could look like a
     * header); nor is anything of another kind than the typed one. */
    if (kind == GC_I_PTRFREE || kind + 1 != __atomic_load_n(&obj_kind_plus1, __ATOMIC_RELAXED) ||
        sz < GH__OBJ_HDR)
        return NULL;
    const gh__objhdr_t *h = base;
    if ((h->check ^ GH__OBJ_MAGIC) != (uintptr_t)h->type || !type_is_registered(h->type))
        return NULL;
    return h->type;
}

gh_type_t *gh_obj_type(const void *p)
{
    const char *base = GC_base((void *)p);
    if (!base || (const char *)p != base + GH__OBJ_HDR)
        return NULL;
    return gh__obj_type_of_base(base);
}

void *gh_bytes_new(size_t n)
{
    void *p = GC_MALLOC_ATOMIC(n);
    if (p)
        gh__count_alloc(GC_size(p));
    return p;
}

void *gh__ptrs_new(size_t n)
{
    if (n > SIZE_MAX / sizeof(void *))
        return NULL;
    void *p = GC_MALLOC(n * sizeof(void *));
    if (p)
        gh__count_alloc(GC_size(p));
    return p;
}

/*
 * With all-interior-pointers on, bdwgc adds one byte to every request so that a pointer
 * one past the end still retains the object. A 4096-byte request thus becomes 4097 and
 * costs two 4 KiB blocks; 4095 fits in one. Return the largest m <= n with m + 1 no
 * larger than the smallest power of two >= n, so GC_size(m) stays within that power.
 */
size_t gh_bytes_good_size(size_t n)
{
    if (n < 16 || !GC_get_all_interior_pointers())
        return n;
    size_t p2 = 16;
    while (p2 < n && p2 <= SIZE_MAX / 2)
        p2 <<= 1;
    if (p2 < n)
        return n;
    return n < p2 ? n : p2 - 1;
}

char *gh_strndup(const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = gh_bytes_new(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *gh_strdup(const char *s)
{
    return gh_strndup(s, strlen(s));
}

void gh_obj_set_accounting(int on)
{
    __atomic_store_n(&accounting, on != 0, __ATOMIC_RELAXED);
}

int gh_obj_get_accounting(void)
{
    return __atomic_load_n(&accounting, __ATOMIC_RELAXED);
}

void gh_type_stats(gh_type_t *t, gh_type_stats_t *st)
{
    st->name = t->name;
    st->allocated = __atomic_load_n(&t->_n_alloc, __ATOMIC_RELAXED);
    st->bytes = __atomic_load_n(&t->_n_bytes, __ATOMIC_RELAXED);
    st->finalized = __atomic_load_n(&t->_n_final, __ATOMIC_RELAXED);
    st->live = (long)(st->allocated - st->finalized);
}

gh_type_t *gh_type_find(const char *name)
{
    for (gh_type_t *r = __atomic_load_n(&reg_head, __ATOMIC_ACQUIRE); r;
         r = __atomic_load_n(&r->_next, __ATOMIC_ACQUIRE))
        if (r->name && strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

void gh_type_foreach(void (*fn)(gh_type_t *t, void *data), void *data)
{
    /* No lock held while fn runs: fn may allocate and so initialise a new type. */
    for (gh_type_t *r = __atomic_load_n(&reg_head, __ATOMIC_ACQUIRE); r;
         r = __atomic_load_n(&r->_next, __ATOMIC_ACQUIRE))
        fn(r, data);
}

void gh_alloc_stats(gh_alloc_stats_t *st)
{
    st->objects = __atomic_load_n(&alloc_objects, __ATOMIC_RELAXED);
    st->bytes = __atomic_load_n(&alloc_bytes, __ATOMIC_RELAXED);
}

void *gh_ptrs_new(size_t n)
{
    return gh__ptrs_new(n);
}
