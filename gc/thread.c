/* gc/thread.c: GC-registered threads (gchttp/thread.h). */
#include "config.h"

#include "internal.h"
#include "gchttp/thread.h"

/* GC_THREADS redirects pthread_create/join to these already; naming them keeps the
 * registration visible to a reader and independent of the redirect header. bdwgc keeps
 * arg in a scanned start record until fn runs, so a GC pointer in arg is safe. */
int gh_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    return -GC_pthread_create(t, NULL, fn, arg);
}

int gh_thread_join(pthread_t t, void **ret)
{
    return -GC_pthread_join(t, ret);
}

/* A thread created outside bdwgc. GH_EEXIST for a thread already registered (for
 * example one from gh_thread_start): it must then not call gh_thread_unregister. */
int gh_thread_register(void)
{
    struct GC_stack_base sb;
    if (GC_get_stack_base(&sb) != GC_SUCCESS)
        return GH_EINVAL;
    switch (GC_register_my_thread(&sb)) {
    case GC_SUCCESS:
        return 0;
    case GC_DUPLICATE:
        return GH_EEXIST;
    default:
        return GH_EINVAL;
    }
}

int gh_thread_unregister(void)
{
    return GC_unregister_my_thread() == GC_SUCCESS ? 0 : GH_EINVAL;
}
