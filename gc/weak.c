/* gc/weak.c: weak references over bdwgc disappearing links (gchttp/weak.h). */
#include "config.h"

#include "internal.h"
#include "gchttp/weak.h"

enum { WEAK_SHORT = 1, WEAK_LONG = 2 };

static void weak_unregister(gh_weak_t *w)
{
    /* The slot is in at most one of the two tables; asking both keeps gh_weak_t one word
     * (it sits in every hijacked connection). 0 ("not found") is expected, also when the
     * collector already cleared the link: clearing drops its table entry. */
    (void)GC_unregister_disappearing_link((void **)&w->_hidden);
    (void)GC_unregister_long_link((void **)&w->_hidden);
}

static int weak_set(gh_weak_t *w, void *obj, int kind)
{
    if (!obj) {
        gh_weak_clear(w);
        return 0;
    }
    void *base = GC_base(obj);
    if (!base)
        return GH_EINVAL;
    /* Unregister before writing the slot, even for the same kind: while the old link is
     * registered, a collection could zero the slot on behalf of the old target after we
     * stored the new one. Unregistering also prevents a short and a long link from
     * watching the same slot. */
    weak_unregister(w);
    __atomic_store_n(&w->_hidden, (uintptr_t)GC_HIDE_POINTER(obj), __ATOMIC_RELAXED);
    /* The link watches the object (the base), the slot keeps the caller's pointer, so
     * an interior pointer comes back unchanged from gh_weak_get. */
    int rc = kind == WEAK_SHORT ? GC_general_register_disappearing_link((void **)&w->_hidden, base)
                                : GC_register_long_link((void **)&w->_hidden, base);
    if (rc != GC_SUCCESS && rc != GC_DUPLICATE) {
        __atomic_store_n(&w->_hidden, 0, __ATOMIC_RELAXED);
        return GH_ENOMEM;
    }
    /* obj must stay visible until the link exists, or it could be collected in between
     * and the slot would hold a dangling hidden pointer. */
    GC_reachable_here(obj);
    return 0;
}

int gh_weak_set(gh_weak_t *w, void *obj)
{
    return weak_set(w, obj, WEAK_SHORT);
}

int gh_weak_set_long(gh_weak_t *w, void *obj)
{
    return weak_set(w, obj, WEAK_LONG);
}

/* Runs with the allocator lock held, so the collector cannot clear the slot between
 * our test and the reveal; once revealed, the caller's stack holds a strong pointer. */
static void *weak_reveal(void *arg)
{
    uintptr_t h = *(volatile uintptr_t *)arg;
    return h ? GC_REVEAL_POINTER(h) : NULL;
}

void *gh_weak_get(gh_weak_t *w)
{
    return GC_call_with_alloc_lock(weak_reveal, &w->_hidden);
}

int gh_weak_is_cleared(const gh_weak_t *w)
{
    return __atomic_load_n(&w->_hidden, __ATOMIC_RELAXED) == 0;
}

void gh_weak_clear(gh_weak_t *w)
{
    weak_unregister(w);
    __atomic_store_n(&w->_hidden, 0, __ATOMIC_RELAXED);
}
