/*
 * gchttp/url.h: the request target as a URL (Go's url.ParseRequestURI), percent
 * decoding and encoding, and path cleaning.
 *
 * Every string these calls return is a new GC block (atomic, NUL-terminated): keep it
 * as long as you like, there is nothing to free.
 */
#ifndef GCHTTP_URL_H
#define GCHTTP_URL_H

#include <sys/types.h>
#include "common.h"
#include "request.h"

GH_BEGIN_DECLS

/**
 * A request target split into its parts.
 * Alloc:     filled in by gh_url_parse / gh_request_url into caller storage; the strings
 *            are GC blocks (or static "").
 * Lifetime:  the strings live as long as the program points to them.
 * OS state:  none.
 * Threads:   plain data; no locking.
 */
typedef struct gh_url_s {
    const char *scheme;    /**< "http" for an absolute-form target, else "" */
    const char *host;      /**< authority of an absolute- or authority-form target, else "" */
    const char *path;      /**< the path, percent-decoded ("/a b" for "/a%20b"); "*" for
                            *   the asterisk form; "" for the authority form */
    const char *raw_path;  /**< the path exactly as sent, still encoded ("/a%20b") */
    const char *raw_query; /**< what follows the first '?', without it; "" if none */
} gh_url_t;

/**
 * Split a request target: origin form ("/p?q"), absolute form ("http://h/p?q"),
 * authority form ("host:port", as CONNECT sends) or "*" (RFC 9112 §3.2).
 * @return 0; GH_EINVAL for an empty target or a bad percent escape in the path
 * (Go answers such a request 400); GH_ENOMEM.
 */
GH_EXTERN int gh_url_parse(const char *target, gh_url_t *u) GH_WARN_UNUSED GH_NONNULL(1, 2);
/** gh_url_parse of the request's target. */
GH_EXTERN int gh_request_url(const gh_request_t *r, gh_url_t *u) GH_WARN_UNUSED GH_NONNULL(1, 2);

/** Percent-decode a path (or a path segment): "%xx" becomes a byte, '+' stays '+'.
 * @return a new string, or NULL for a bad escape (or out of memory). */
GH_EXTERN char *gh_path_unescape(const char *s) GH_NONNULL(1);
/** Percent-decode a query component: as gh_path_unescape, and '+' becomes a space.
 * @return a new string, or NULL for a bad escape (or out of memory). */
GH_EXTERN char *gh_query_unescape(const char *s) GH_NONNULL(1);
/** Percent-encode s for a query component (Go's url.QueryEscape: space becomes '+';
 * everything but ALPHA / DIGIT / "-._~" is escaped). NULL when out of memory. */
GH_EXTERN char *gh_query_escape(const char *s) GH_NONNULL(1);
/** Percent-encode s as one path segment (Go's url.PathEscape: '/' is escaped too).
 * NULL when out of memory. */
GH_EXTERN char *gh_path_escape(const char *s) GH_NONNULL(1);

/**
 * The canonical form of a URL path, as Go's ServeMux cleans one: a leading '/' added
 * if missing, repeated slashes collapsed, "." and ".." elements resolved (no ".."
 * climbs above the root), and a trailing slash kept ("" -> "/", "a/../b/" -> "/b/").
 * Works on encoded and decoded paths alike. NULL when out of memory.
 */
GH_EXTERN char *gh_path_clean(const char *p) GH_NONNULL(1);

GH_END_DECLS

#endif
