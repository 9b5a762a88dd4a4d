/*
 * gchttp/mux.h: a request multiplexer with Go 1.22 ServeMux patterns.
 *
 * A pattern is "[METHOD ][HOST]/[PATH]":
 *  - METHOD (an HTTP token followed by one space) restricts the method; a GET pattern
 *    also serves HEAD. Without one, every method matches.
 *  - HOST restricts the Host (port stripped; compared without regard to case).
 *    Host patterns are tried first; when none matches, the host-less ones are.
 *  - PATH is '/'-separated segments. A segment is a literal (percent-decoded before
 *    comparison, so "/a%20b" and "/a b" are one pattern), "{name}" (one whole
 *    segment), or last: "{name...}" (the rest of the path, possibly empty) or "{$}"
 *    (the path ends here, after a slash). A path ending in '/' matches everything
 *    below it ("/static/" matches "/static/a/b"); "/" matches every path.
 *
 * Precedence: the more specific pattern wins, one pattern being more specific than
 * another when it matches a strict subset of the other's requests ("/a/b" over
 * "/a/{x}", "GET /a" over "/a", "/a/{$}" over "/a/"). Two patterns that match some
 * request in common with neither more specific (same host) conflict: the second one
 * registered is refused with GH_EEXIST and a message naming both.
 *
 * Serving (gh_mux_serve), as Go's ServeMux does: the path is cleaned first ("/a/../b"
 * answers 301 to "/b", except for CONNECT); a path "/dir" with no match of its own
 * while "/dir/" is registered answers 301 to "/dir/" (the query kept); no pattern for
 * the path answers 404; patterns for the path but none for the method answer 405 with
 * `Allow` listing the methods that would match; the target "*" answers 400 and
 * closes. A bad percent escape in the path answers 400.
 *
 * Lookup is a walk down a routing tree (host, method, then one level per segment) that
 * costs O(path length), not O(number of patterns), and allocates nothing on a hit
 * except one block for the path values when the pattern has wildcards (paths of more
 * than about 500 bytes, or with escapes and more than 256, take a scratch block too).
 */
#ifndef GCHTTP_MUX_H
#define GCHTTP_MUX_H

#include "common.h"
#include "request.h"
#include "response.h"
#include "server.h"

GH_BEGIN_DECLS

/**
 * A request multiplexer.
 * Alloc:     gh_mux_new (GC object, traced); there is no free.
 * Lifetime:  kept by whoever holds it: the server, once it is cfg.handler_data.
 *            Patterns and their handler data are kept by the mux.
 * OS state:  none.
 * Threads:   lookups (gh_mux_serve, gh_mux_match) run on any threads at once, without
 *            a lock; registration may run concurrently with them (serialised among
 *            registrations by an internal mutex).
 */
typedef struct gh_mux_s gh_mux_t;

/** A new, empty mux. NULL when out of memory. */
GH_EXTERN gh_mux_t *gh_mux_new(void) GH_WARN_UNUSED;

/**
 * Register handler h (with data, kept alive by the mux) for pattern.
 * @return 0; GH_EINVAL for a malformed pattern; GH_EEXIST when it conflicts with a
 * registered pattern (including an identical one); GH_ENOMEM. On failure
 * gh_mux_error() says why, naming both patterns for a conflict.
 */
GH_EXTERN int gh_mux_handle(gh_mux_t *m, const char *pattern, gh_handler_fn h,
                            void *data) GH_WARN_UNUSED GH_NONNULL(1, 2, 3);

/** The message of the last failed gh_mux_handle on m ("" if none), e.g.
 * `pattern "GET /a/{x}" conflicts with pattern "/a/b": ...`. The string stays valid. */
GH_EXTERN const char *gh_mux_error(const gh_mux_t *m) GH_NONNULL(1);

/** A gh_handler_fn: pass it as cfg.handler with the mux as cfg.handler_data, or call it
 * from a handler of your own. Dispatches as described above. */
GH_EXTERN void gh_mux_serve(gh_response_t *w, gh_request_t *r, void *mux);

/**
 * What the mux decides for a request, without a request or a response.
 * Alloc:     caller storage, filled by gh_mux_match; strings are GC blocks or the
 *            mux's own.
 * Lifetime:  the caller's.
 * OS state:  none.
 * Threads:   plain data.
 */
typedef struct gh_mux_match_s {
    int status;            /**< 200: pattern matched; 301, 400, 404 or 405 */
    const char *pattern;   /**< 200 (and 301 from path cleaning, when known): the
                              *   winning pattern as registered; else NULL */
    gh_handler_fn handler; /**< 200: its handler and data */
    void *data;
    const char *location; /**< 301: where to */
    const char *allow;    /**< 405: the Allow value, e.g. "GET, HEAD, POST" */
    const char *_values;  /**< private: the path values */
} gh_mux_match_t;

/**
 * Route a request given by method, Host value (a port is ignored; "" for none) and
 * target (origin form "/p?q" or absolute form). @return 0 (see out->status) or
 * GH_ENOMEM.
 */
GH_EXTERN int gh_mux_match(gh_mux_t *m, const char *method, const char *host, const char *target,
                           gh_mux_match_t *out) GH_WARN_UNUSED GH_NONNULL(1, 2, 3, 4, 5);
/** The value of wildcard `name` in a match (status 200), or NULL. */
GH_EXTERN const char *gh_mux_match_value(const gh_mux_match_t *mt, const char *name)
    GH_NONNULL(1, 2);

/** The value the mux matched for wildcard `name` ("{name}" or "{name...}",
 * percent-decoded), or NULL if the pattern has no such wildcard (or no mux served
 * the request). Lives as long as the request. */
GH_EXTERN const char *gh_request_path_value(const gh_request_t *r, const char *name)
    GH_NONNULL(1, 2);
/** Set (or replace) a path value, e.g. in a middleware or a test (Go's SetPathValue).
 * Copies both. @return 0, GH_EINVAL (empty name), GH_ENOMEM. */
GH_EXTERN int gh_request_set_path_value(gh_request_t *r, const char *name, const char *value)
    GH_NONNULL(1, 2, 3);

GH_END_DECLS

#endif
