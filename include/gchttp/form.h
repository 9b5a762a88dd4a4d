/*
 * gchttp/form.h: query strings and application/x-www-form-urlencoded bodies as ordered
 * key/value lists (Go's url.Values, ParseQuery, Request.ParseForm).
 */
#ifndef GCHTTP_FORM_H
#define GCHTTP_FORM_H

#include <sys/types.h>
#include "common.h"
#include "request.h"

GH_BEGIN_DECLS

/**
 * An ordered list of key/value pairs; a key may repeat.
 * Alloc:     gh_values_new or a parse call (GC object; keys and values are atomic
 *            copies); there is no free.
 * Lifetime:  as long as the program points to it.
 * OS state:  none.
 * Threads:   one writer at a time; reads may run together once it is no longer changed.
 */
typedef struct gh_values_s gh_values_t;

/** An empty list. NULL when out of memory. */
GH_EXTERN gh_values_t *gh_values_new(void) GH_WARN_UNUSED;

/**
 * Parse "a=1&b=2&a=3" as Go's url.ParseQuery does: pairs split on '&', key and value
 * percent-decoded with '+' as a space, a pair without '=' has the value "". A pair that
 * holds a ';' (Go 1.17 stopped accepting it as a separator) or a bad escape is skipped
 * and reported. *out always gets the pairs that parsed (or NULL when out of memory).
 * @return 0, GH_EINVAL (some pair was skipped; the rest is in *out), GH_ENOMEM.
 */
GH_EXTERN int gh_values_parse(const char *query, gh_values_t **out) GH_NONNULL(1, 2);

/** The first value of key, or NULL. */
GH_EXTERN const char *gh_values_get(const gh_values_t *v, const char *key) GH_NONNULL(1, 2);
/** The n-th value (from 0) of key, or NULL. */
GH_EXTERN const char *gh_values_get_nth(const gh_values_t *v, const char *key, size_t n)
    GH_NONNULL(1, 2);
/** 1 if key is present (even with the value ""), else 0. */
GH_EXTERN int gh_values_has(const gh_values_t *v, const char *key) GH_NONNULL(1, 2);
/** Number of pairs. */
GH_EXTERN size_t gh_values_count(const gh_values_t *v) GH_NONNULL(1);
/** The i-th pair, in order. @return 0, or GH_EINVAL when i is out of range. */
GH_EXTERN int gh_values_at(const gh_values_t *v, size_t i, const char **key, const char **value)
    GH_NONNULL(1, 3, 4);
/** Append a pair (copies both). @return 0 or GH_ENOMEM. */
GH_EXTERN int gh_values_add(gh_values_t *v, const char *key, const char *value) GH_NONNULL(1, 2, 3);
/** Replace every value of key with one. @return 0 or GH_ENOMEM. */
GH_EXTERN int gh_values_set(gh_values_t *v, const char *key, const char *value) GH_NONNULL(1, 2, 3);
/** Remove every pair of key. @return how many were removed. */
GH_EXTERN int gh_values_del(gh_values_t *v, const char *key) GH_NONNULL(1, 2);
/** "a=1&b=x+y" sorted by key (pairs of one key keep their order), percent-encoded as
 * Go's Values.Encode does. NULL when out of memory. */
GH_EXTERN char *gh_values_encode(const gh_values_t *v) GH_NONNULL(1);

/** The request's query (what follows '?' in its target), parsed as gh_values_parse.
 * @return as gh_values_parse. */
GH_EXTERN int gh_request_query(const gh_request_t *r, gh_values_t **out) GH_NONNULL(1, 2);

/**
 * Read and parse an application/x-www-form-urlencoded body (Go's PostForm): only for
 * POST, PUT and PATCH with that Content-Type; any other request gets an empty list and
 * leaves the body unread. At most max bytes are read (0: Go's 10 MiB).
 * @return 0; GH_EINVAL (a pair skipped, as gh_values_parse); GH_EBODYLIMIT (body larger
 * than max; *out is NULL); a read error of gh_request_read; GH_ENOMEM.
 */
GH_EXTERN int gh_request_post_form(gh_request_t *r, size_t max, gh_values_t **out) GH_NONNULL(1, 3);
/** The body's form values (gh_request_post_form) followed by the query's (Go's Form:
 * a body value comes first). @return as gh_request_post_form; GH_EINVAL if either had a
 * skipped pair. */
GH_EXTERN int gh_request_form(gh_request_t *r, size_t max, gh_values_t **out) GH_NONNULL(1, 3);

GH_END_DECLS

#endif
