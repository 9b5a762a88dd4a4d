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
    gh_ctx_cb fn;
    void *data; /* kept alive: the array is scanned */
    long id;
} ctx_cb_t;

/*
 * Alloc:     gh_obj_new(&gh__ctx_type); children and callback arrays are scanned GC
 *            arrays, grown on demand.
 * Kept by:   its holder (a request, a connection, the user), its parent while it is
 *            live, its live children (through `parent`).
 * OS state:  none (a mutex and a condition variable, which need no destruction on Linux).
 * Threads:   any; every field below `mu` is guarded by mu.
 */
struct gh_ctx_s {
    gh_ctx_t *parent;
    gh_ctx_t **children; /* live children; slot i's child has index_in_parent == i */
    ctx_cb_t *cbs;
    /* not traced */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t n_children, cap_children;
    size_t n_cbs, cap_cbs;
    size_t index_in_parent; /* guarded by the parent's lock */
    long next_id;
    int reason; /* 0 while live; written under mu, read racily by gh_ctx_done */
};

static const size_t ctx_ptrs[] = {offsetof(struct gh_ctx_s, parent),
                                  offsetof(struct gh_ctx_s, children),
                                  offsetof(struct gh_ctx_s, cbs)};
static const char *const ctx_names[] = {"parent", "children", "cbs"};
gh_type_t gh__ctx_type = GH_TYPE_INIT_NAMED("context", struct gh_ctx_s, ctx_ptrs, ctx_names);

static void ctx_init_sync(gh_ctx_t *c)
{
    pthread_condattr_t ca;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
}

gh_ctx_t *gh_ctx_new(gh_ctx_t *parent)
{
    gh_ctx_t *c = gh_obj_new(&gh__ctx_type);
    if (!c)
        return NULL;
    ctx_init_sync(c);
    c->next_id = 1;
    if (!parent)
        return c;
    c->parent = parent;
    pthread_mutex_lock(&parent->mu);
    if (parent->reason) {
        c->reason = parent->reason;
    } else {
        if (parent->n_children == parent->cap_children) {
            size_t cap = parent->cap_children ? parent->cap_children * 2 : 4;
            gh_ctx_t **nc = gh__ptrs_new(cap);
            if (!nc) {
                pthread_mutex_unlock(&parent->mu);
                return NULL;
            }
            if (parent->n_children)
                memcpy(nc, parent->children, parent->n_children * sizeof *nc);
            parent->children = nc;
            parent->cap_children = cap;
        }
        c->index_in_parent = parent->n_children;
        parent->children[parent->n_children++] = c;
    }
    pthread_mutex_unlock(&parent->mu);
    return c;
}

static void unlink_from_parent(gh_ctx_t *c)
{
    gh_ctx_t *p = c->parent;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    size_t i = c->index_in_parent;
    if (i < p->n_children && p->children[i] == c) {
        gh_ctx_t *last = p->children[--p->n_children];
        p->children[i] = last;
        last->index_in_parent = i;
        p->children[p->n_children] = NULL;
        /* Shrink a mostly empty array, so a connection that once had many requests
         * in flight does not keep the large array forever. */
        if (p->n_children == 0 && p->cap_children > 16) {
            p->children = NULL;
            p->cap_children = 0;
        }
    }
    pthread_mutex_unlock(&p->mu);
}

void gh_ctx_cancel(gh_ctx_t *c, int reason)
{
    if (!c)
        return;
    if (reason >= 0)
        reason = GH_ECANCELED;
    pthread_mutex_lock(&c->mu);
    if (c->reason) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    __atomic_store_n(&c->reason, reason, __ATOMIC_RELEASE);
    gh_ctx_t **kids = c->children;
    size_t nk = c->n_children;
    ctx_cb_t *cbs = c->cbs;
    size_t ncb = c->n_cbs;
    c->children = NULL;
    c->n_children = c->cap_children = 0;
    c->cbs = NULL;
    c->n_cbs = c->cap_cbs = 0;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);

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
    pthread_mutex_lock(&c->mu);
    while (!c->reason) {
        if (deadline <= 0) {
            pthread_cond_wait(&c->cv, &c->mu);
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
        (void)pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    int r = c->reason;
    pthread_mutex_unlock(&c->mu);
    return r;
}

long gh_ctx_on_cancel(gh_ctx_t *c, gh_ctx_cb cb, void *data)
{
    if (!cb)
        return GH_EINVAL;
    pthread_mutex_lock(&c->mu);
    if (c->reason) {
        int r = c->reason;
        pthread_mutex_unlock(&c->mu);
        cb(c, r, data);
        return 0;
    }
    if (c->n_cbs == c->cap_cbs) {
        size_t cap = c->cap_cbs ? c->cap_cbs * 2 : 2;
        ctx_cb_t *n = gh__ptrs_new(cap * (sizeof(ctx_cb_t) / sizeof(void *)));
        if (!n) {
            pthread_mutex_unlock(&c->mu);
            return GH_ENOMEM;
        }
        if (c->n_cbs)
            memcpy(n, c->cbs, c->n_cbs * sizeof *n);
        c->cbs = n;
        c->cap_cbs = cap;
    }
    long id = c->next_id++;
    c->cbs[c->n_cbs].fn = cb;
    c->cbs[c->n_cbs].data = data;
    c->cbs[c->n_cbs].id = id;
    c->n_cbs++;
    pthread_mutex_unlock(&c->mu);
    return id;
}

int gh_ctx_off_cancel(gh_ctx_t *c, long id)
{
    int removed = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_cbs; i++) {
        if (c->cbs[i].id == id) {
            c->cbs[i] = c->cbs[--c->n_cbs];
            memset(&c->cbs[c->n_cbs], 0, sizeof c->cbs[0]);
            removed = 1;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return removed;
}

size_t gh_ctx_children(const gh_ctx_t *c)
{
    gh_ctx_t *m = (gh_ctx_t *)c;
    pthread_mutex_lock(&m->mu);
    size_t n = m->n_children;
    pthread_mutex_unlock(&m->mu);
    return n;
}
