/* gc/ref.c: counted handles for objects held outside the collector's sight (gchttp/ref.h). */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "internal.h"
#include "gchttp/ref.h"

/**
 * One handle: the object pointer itself (strong: the slot array is scanned) and its count.
 * Alloc:     slots[] is one GC_MALLOC block, replaced wholesale when the table grows.
 * Rooted by: `table`, a static (data/bss is a root), so every listed object stays alive
 *            while its count is above zero, wherever else the host keeps it.
 * OS state:  none.
 * Threads:   any; every access holds `lock`.
 */
struct ref_slot {
    void *obj; /*< NULL = empty */
    long count;
};

static struct {
    struct ref_slot *slots;
    size_t cap; /*< power of two, or 0 before first use */
    size_t n;
} table;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static size_t slot_of(const void *obj, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)obj >> 4;
    return (size_t)((x * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

/* Linear probing. Returns the slot holding obj, or the empty slot where it would go. */
static struct ref_slot *find(const void *obj)
{
    size_t i = slot_of(obj, table.cap);
    while (table.slots[i].obj && table.slots[i].obj != obj)
        i = (i + 1) & (table.cap - 1);
    return &table.slots[i];
}

/* Keep the load at most 1/2. The new array is allocated while holding `lock`: a
 * collection triggered here may run finalizers on this thread (unless finalize-on-
 * demand), and those never call gh_ref (obj.h forbids locks in finalizers). */
static int grow(void)
{
    size_t ncap = table.cap ? table.cap * 2 : 64;
    struct ref_slot *ns = GC_MALLOC(ncap * sizeof *ns);
    if (!ns)
        return GH_ENOMEM;
    struct ref_slot *old = table.slots;
    size_t ocap = table.cap;
    table.slots = ns;
    table.cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].obj)
            *find(old[i].obj) = old[i];
    return 0;
}

void *gh_ref(void *obj)
{
    if (!obj)
        return NULL;
    void *ret = obj;
    pthread_mutex_lock(&lock);
    if (2 * (table.n + 1) > table.cap && grow() < 0) {
        ret = NULL;
    } else {
        struct ref_slot *s = find(obj);
        if (!s->obj) {
            s->obj = obj;
            table.n++;
        }
        s->count++;
    }
    pthread_mutex_unlock(&lock);
    return ret;
}

/* Backward-shift deletion, so lookups never need tombstones. */
static void erase(struct ref_slot *s)
{
    size_t mask = table.cap - 1;
    size_t i = (size_t)(s - table.slots);
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!table.slots[j].obj)
            break;
        size_t home = slot_of(table.slots[j].obj, table.cap);
        /* Move j back into the hole at i unless its home lies cyclically in (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            table.slots[i] = table.slots[j];
            i = j;
        }
    }
    table.slots[i].obj = NULL;
    table.slots[i].count = 0;
    table.n--;
}

int gh_unref(void *obj)
{
    int rc = GH_ENOENT;
    if (!obj)
        return rc;
    pthread_mutex_lock(&lock);
    if (table.cap) {
        struct ref_slot *s = find(obj);
        if (s->obj) {
            rc = (int)--s->count;
            if (rc == 0)
                erase(s);
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

int gh_ref_count(const void *obj)
{
    int rc = 0;
    if (!obj)
        return 0;
    pthread_mutex_lock(&lock);
    if (table.cap) {
        struct ref_slot *s = find(obj);
        if (s->obj)
            rc = (int)s->count;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}
