/*
 * lib/context.c: cancellation contexts (gchttp/context.h).
 *
 * Lock order: a context's own lock is never held while another context's lock is
 * taken, except child -> parent in unlink_from_parent(), and the parent never takes a
 * child's lock while holding its own; so there is no cycle.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "internal.h"

typedef struct ctx_cb {
    gh_ctx_fn fn;
    void *data; /* kept alive: the array is scanned */
    long id;
} ctx_cb_t;

/*
 * Alloc:     gh_obj_new(&gh__ctx_type); children and callback arrays are scanned GC
 *            arrays, grown on demand.
 * Kept by:   its holder (a request, a connection, the user), its parent while it is
 *            live, its live children (through `parent`).
 * OS state:  none.
 * Threads:   any; the fields after `parent` are guarded by the context's stripe lock.
 *
 * Locks are striped: a context hashes to one of GH__CTX_STRIPES mutex/condition pairs
 * in static storage, so a context costs 96 bytes instead of carrying its own mutex and
 * condition variable (one per connection and per request that asks for one). A waiter
 * re-checks its own context after every wake-up, so sharing a condition is harmless.
 */
struct gh_ctx_s {
    gh_ctx_t *parent;
    gh_ctx_t **children; /* live children; slot i's child has index_in_parent == i */
    ctx_cb_t *cbs;
    /* not traced */
    uint32_t n_children, n_cbs;
    uint32_t index_in_parent; /* guarded by the parent's stripe */
    int16_t reason; /* 0 while live; written under the stripe lock, read without it by
                     * gh_ctx_done: every access is __atomic (relaxed under the lock) */
    uint8_t lg_children, lg_cbs; /* array capacities, log2 (0: no array) */
    /* 40 bytes: with the object header and the typed-allocation word, a 64-byte block. */
};

static const size_t ctx_ptrs[] = {offsetof(struct gh_ctx_s, parent),
                                  offsetof(struct gh_ctx_s, children),
                                  offsetof(struct gh_ctx_s, cbs)};
static const char *const ctx_names[] = {"parent", "children", "cbs"};
gh_type_t gh__ctx_type = GH_TYPE_INIT_NAMED("context", struct gh_ctx_s, ctx_ptrs, ctx_names);

#define GH__CTX_STRIPES 64

static struct stripe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
} stripes[GH__CTX_STRIPES];
static pthread_once_t stripes_once = PTHREAD_ONCE_INIT;

static void stripes_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (int i = 0; i < GH__CTX_STRIPES; i++) {
        pthread_mutex_init(&stripes[i].mu, NULL);
        pthread_cond_init(&stripes[i].cv, &ca);
    }
    pthread_condattr_destroy(&ca);
}

static struct stripe *stripe_of(const gh_ctx_t *c)
{
    /* Objects are at least 16-byte aligned; mix the address so that neighbours
     * spread over the stripes. */
    uintptr_t a = (uintptr_t)c >> 4;
    a ^= a >> 7;
    return &stripes[a % GH__CTX_STRIPES];
}

static pthread_mutex_t *lock_of(const gh_ctx_t *c) { return &stripe_of(c)->mu; }

gh_ctx_t *gh_ctx_new(gh_ctx_t *parent)
{
    gh_ctx_t *c = gh_obj_new(&gh__ctx_type);
    if (!c)
        return NULL;
    pthread_once(&stripes_once, stripes_init);
    if (!parent)
        return c;
    c->parent = parent;
    pthread_mutex_lock(lock_of(parent));
    int16_t pr = __atomic_load_n(&parent->reason, __ATOMIC_RELAXED);
    if (pr) {
        __atomic_store_n(&c->reason, pr, __ATOMIC_RELAXED); /* c is not shared yet */
    } else {
        size_t cur = parent->lg_children ? (size_t)1 << parent->lg_children : 0;
        if (parent->n_children == cur) {
            size_t cap = cur ? cur * 2 : 4;
            gh_ctx_t **nc = gh__ptrs_new(cap);
            if (!nc) {
                pthread_mutex_unlock(lock_of(parent));
                return NULL;
            }
            if (parent->n_children)
                memcpy(nc, parent->children, parent->n_children * sizeof *nc);
            parent->children = nc;
            parent->lg_children = (uint8_t)(cur ? parent->lg_children + 1 : 2);
        }
        c->index_in_parent = parent->n_children;
        parent->children[parent->n_children++] = c;
    }
    pthread_mutex_unlock(lock_of(parent));
    return c;
}

static void unlink_from_parent(gh_ctx_t *c)
{
    gh_ctx_t *p = c->parent;
    if (!p)
        return;
    pthread_mutex_lock(lock_of(p));
    size_t i = c->index_in_parent;
    if (i < p->n_children && p->children[i] == c) {
        gh_ctx_t *last = p->children[--p->n_children];
        p->children[i] = last;
        last->index_in_parent = i;
        p->children[p->n_children] = NULL;
        /* Shrink a mostly empty array, so a connection that once had many requests
         * in flight does not keep the large array forever. */
        if (p->n_children == 0 && p->lg_children > 4) {
            p->children = NULL;
            p->lg_children = 0;
        }
    }
    pthread_mutex_unlock(lock_of(p));
}

void gh_ctx_cancel(gh_ctx_t *c, int reason)
{
    if (!c)
        return;
    if (reason >= 0 || reason < INT16_MIN)
        reason = GH_ECANCELED;
    pthread_mutex_lock(lock_of(c));
    if (__atomic_load_n(&c->reason, __ATOMIC_RELAXED)) {
        pthread_mutex_unlock(lock_of(c));
        return;
    }
    __atomic_store_n(&c->reason, (int16_t)reason, __ATOMIC_RELEASE);
    gh_ctx_t **kids = c->children;
    size_t nk = c->n_children;
    ctx_cb_t *cbs = c->cbs;
    size_t ncb = c->n_cbs;
    c->children = NULL;
    c->n_children = 0;
    c->lg_children = 0;
    c->cbs = NULL;
    c->n_cbs = 0;
    c->lg_cbs = 0;
    pthread_cond_broadcast(&stripe_of(c)->cv);
    pthread_mutex_unlock(lock_of(c));

    unlink_from_parent(c);
    for (size_t i = 0; i < ncb; i++)
        if (cbs[i].fn)
            cbs[i].fn(c, reason, cbs[i].data);
    for (size_t i = 0; i < nk; i++)
        gh_ctx_cancel(kids[i], reason);
}

int gh_ctx_done(const gh_ctx_t *c) { return __atomic_load_n(&c->reason, __ATOMIC_ACQUIRE); }

int gh_ctx_wait(gh_ctx_t *c, gh_time_t deadline)
{
    if (!__atomic_load_n(&c->reason, __ATOMIC_ACQUIRE) && (deadline <= 0 || deadline > gh_now()))
        gh__will_block(); /* a handler waiting on the poller's thread hands it on */
    pthread_mutex_lock(lock_of(c));
    while (!__atomic_load_n(&c->reason, __ATOMIC_RELAXED)) {
        if (deadline <= 0) {
            pthread_cond_wait(&stripe_of(c)->cv, lock_of(c));
            continue;
        }
        gh_time_t now = gh_now();
        if (now >= deadline)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        gh_time_t at = (gh_time_t)ts.tv_sec * GH_SEC + ts.tv_nsec + (deadline - now);
        ts.tv_sec = (time_t)(at / GH_SEC);
        ts.tv_nsec = (long)(at % GH_SEC);
        (void)pthread_cond_timedwait(&stripe_of(c)->cv, lock_of(c), &ts);
    }
    int r = __atomic_load_n(&c->reason, __ATOMIC_RELAXED);
    pthread_mutex_unlock(lock_of(c));
    return r;
}

long gh_ctx_on_cancel(gh_ctx_t *c, gh_ctx_fn cb, void *data)
{
    if (!cb)
        return GH_EINVAL;
    pthread_mutex_lock(lock_of(c));
    int r = __atomic_load_n(&c->reason, __ATOMIC_RELAXED);
    if (r) {
        pthread_mutex_unlock(lock_of(c));
        cb(c, r, data);
        return 0;
    }
    size_t cur = c->lg_cbs ? (size_t)1 << c->lg_cbs : 0;
    if (c->n_cbs == cur) {
        size_t cap = cur ? cur * 2 : 2;
        ctx_cb_t *n = gh__ptrs_new(cap * (sizeof(ctx_cb_t) / sizeof(void *)));
        if (!n) {
            pthread_mutex_unlock(lock_of(c));
            return GH_ENOMEM;
        }
        if (c->n_cbs)
            memcpy(n, c->cbs, c->n_cbs * sizeof *n);
        c->cbs = n;
        c->lg_cbs = (uint8_t)(cur ? c->lg_cbs + 1 : 1);
    }
    /* Ids are unique process-wide, so the context needs no counter of its own. */
    static long next_id;
    long id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    c->cbs[c->n_cbs].fn = cb;
    c->cbs[c->n_cbs].data = data;
    c->cbs[c->n_cbs].id = id;
    c->n_cbs++;
    pthread_mutex_unlock(lock_of(c));
    return id;
}

int gh_ctx_off_cancel(gh_ctx_t *c, long id)
{
    int removed = 0;
    pthread_mutex_lock(lock_of(c));
    for (size_t i = 0; i < c->n_cbs; i++) {
        if (c->cbs[i].id == id) {
            c->cbs[i] = c->cbs[--c->n_cbs];
            memset(&c->cbs[c->n_cbs], 0, sizeof c->cbs[0]);
            removed = 1;
            break;
        }
    }
    pthread_mutex_unlock(lock_of(c));
    return removed;
}

size_t gh_ctx_children(const gh_ctx_t *c)
{
    gh_ctx_t *m = (gh_ctx_t *)c;
    pthread_mutex_lock(lock_of(m));
    size_t n = m->n_children;
    pthread_mutex_unlock(lock_of(m));
    return n;
}
