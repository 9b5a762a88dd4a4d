/* gc/thread.c: GC-registered threads (gchttp/thread.h). */
#include "config.h"

#include <pthread.h>
#include <signal.h>

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

/* The asynchronous signals a program may want to take in one thread of its own
 * (sigwait, signalfd, or a handler it expects to run on its main thread). Synchronous
 * ones (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS, SIGXFSZ) must stay
 * deliverable to the thread that raised them, SIGPROF to the thread a profiler samples,
 * and the collector's stop-the-world pair to every registered thread. */
static void async_signals(sigset_t *set)
{
    static const int sigs[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
                               SIGPIPE, SIGALRM, SIGCHLD, SIGCONT, SIGTSTP, SIGTTIN,
                               SIGTTOU, SIGURG,  SIGWINCH, SIGVTALRM, SIGIO};
    sigemptyset(set);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(set, sigs[i]);
    for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
        sigaddset(set, s);
    sigdelset(set, GC_get_suspend_signal());
    sigdelset(set, GC_get_thr_restart_signal());
}

int gh__thread_start_quiet(pthread_t *t, void *(*fn)(void *), void *arg)
{
    /* A thread inherits its creator's mask: block around the creation, then restore
     * the caller's own mask. */
    sigset_t set, old;
    async_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    int rc = gh_thread_start(t, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int gh__thread_detach(pthread_t t)
{
    return -GC_pthread_detach(t);
}
