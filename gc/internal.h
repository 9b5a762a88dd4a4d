/*
 * gc/internal.h: private to gchttp's gc/ layer and lib/; not installed.
 *
 * Names here carry the gh__ prefix and are hidden (-fvisibility=hidden): they are
 * shared between the library's own files and never exported.
 */
#ifndef GCHTTP_GC_INTERNAL_H
#define GCHTTP_GC_INTERNAL_H

#ifndef GC_THREADS
#define GC_THREADS /* AM_CPPFLAGS defines it; stated again so no file forgets it */
#endif
#include <gc/gc.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gchttp/common.h"
#include "gchttp/errno.h"
#include "gchttp/obj.h"

/*
 * The hidden header in front of every gh_obj_new object.
 *
 * Two words, so that the user struct keeps the collector's 16-byte alignment. Both are
 * declared non-pointer in the type's descriptor: `type` points to static storage, which
 * the collector need not trace, and `check` is `type ^ GH__OBJ_MAGIC`, a cheap filter so
 * that gh_obj_type() on a foreign object rarely needs the registry walk.
 */
typedef struct gh__objhdr_s {
    gh_type_t *type;
    uintptr_t check;
} gh__objhdr_t;

#define GH__OBJ_HDR sizeof(gh__objhdr_t)
#define GH__OBJ_MAGIC ((uintptr_t)0x6768747470a5c3e1ull)

/* The type of the object starting at `base` (a GC_base result), or NULL when it is not
 * a gh object. Safe on any heap object. */
gh_type_t *gh__obj_type_of_base(const void *base);

/* A zeroed, conservatively scanned array of n pointers (GC_MALLOC), counted in
 * gh_alloc_stats. For growable pointer arrays inside typed objects. Returns void *
 * so that it converts to any T ** (lib/context.c relies on it). NULL on OOM. */
void *gh__ptrs_new(size_t n);
/* The "about to block" hook, called by gh_fd waits and gh_ctx_wait (lib/internal.h
 * has gh__will_block); set by lib/server.c. */
extern void (*gh__block_hook)(void);
/* gh_thread_start for the library's own threads: SIGINT, SIGTERM, SIGHUP, SIGQUIT,
 * SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGCHLD, SIGWINCH... blocked (every signal but
 * the synchronous ones and the collector's own stop-the-world pair), so that a
 * program's sigwait or signalfd in its main thread sees them (Go routes them the
 * same way). */
int gh__thread_start_quiet(pthread_t *t, void *(*fn)(void *), void *arg);
/* Detach a thread from gh_thread_start: it ends on its own, unjoined. */
int gh__thread_detach(pthread_t t);
/* A gh_fd for an accepted socket that is already non-blocking (gc/fd.c). */
struct gh_fd_s *gh__fd_new_socket(int fd);
/* sendfile(2) of n bytes of in_fd from *off (advanced) to a socket, with its write
 * deadline; n, GH_EOF if the file ended first, or a code (gc/fd.c). */
ssize_t gh__fd_sendfile(struct gh_fd_s *f, int in_fd, int64_t *off, size_t n);

/* Bump the process-wide allocation counters for one object of GC size `bytes`. */
void gh__count_alloc(size_t bytes);

#endif
