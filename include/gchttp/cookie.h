/*
 * gchttp/cookie.h: reading the Cookie header and writing Set-Cookie (RFC 6265).
 */
#ifndef GCHTTP_COOKIE_H
#define GCHTTP_COOKIE_H

#include <stdint.h>
#include "common.h"
#include "form.h"
#include "request.h"
#include "response.h"

GH_BEGIN_DECLS

/** The SameSite attribute (RFC 6265bis §4.1.2.7); DEFAULT writes none. */
typedef enum {
    GH_SAMESITE_DEFAULT = 0,
    GH_SAMESITE_LAX,
    GH_SAMESITE_STRICT,
    GH_SAMESITE_NONE
} gh_samesite_t;

/**
 * A cookie to set: fill one (zeroed first) and pass it to gh_response_set_cookie.
 * Alloc:     caller storage; the strings are the caller's.
 * Lifetime:  the call's; gh_response_set_cookie copies what it needs.
 * OS state:  none.
 * Threads:   plain data.
 */
typedef struct gh_cookie_s {
    const char *name;   /**< a token (RFC 6265 §4.1.1), required */
    const char *value;  /**< cookie-octets, optionally in double quotes; NULL is "" */
    const char *path;   /**< Path, or NULL; no CTL and no ';' */
    const char *domain; /**< Domain, or NULL; a host name (a leading '.' is dropped) */
    int64_t expires;    /**< Expires, in seconds since the Unix epoch; 0: none */
    int64_t max_age;    /**< Max-Age in seconds; 0: none; < 0: "Max-Age=0" (delete) */
    int secure;         /**< Secure */
    int http_only;      /**< HttpOnly */
    gh_samesite_t same_site;
    int partitioned; /**< Partitioned (CHIPS); needs secure */
} gh_cookie_t;

/**
 * The Set-Cookie value for c: "name=value; Path=...; Domain=...; Expires=...;
 * Max-Age=...; HttpOnly; Secure; SameSite=...; Partitioned" (those set).
 * Invalid parts are refused, not repaired: a name that is not a token, a value with a
 * byte outside cookie-octet (space, '"', ',', ';', '\\', CTLs, non-ASCII; RFC 6265
 * §4.1.1), a path with a CTL or ';', a domain that is not a host name, an Expires before
 * year 1601, Partitioned without Secure.
 * @return 0 and *out (a new string); GH_EINVAL; GH_ENOMEM.
 */
GH_EXTERN int gh_cookie_format(const gh_cookie_t *c, char **out) GH_WARN_UNUSED GH_NONNULL(1, 2);

/** Add a Set-Cookie header for c (gh_cookie_format, then gh_response_header_add).
 * @return 0, GH_EINVAL, GH_ENOMEM, GH_EBUSY (headers already sent). */
GH_EXTERN int gh_response_set_cookie(gh_response_t *w, const gh_cookie_t *c) GH_WARN_UNUSED
    GH_NONNULL(1, 2);

/**
 * The cookies the request sent, in order, as name/value pairs (every Cookie field,
 * split on ';'; as Go's readCookies: pairs with an invalid name or value are skipped,
 * one pair of double quotes around a value is removed).
 * @return 0 and *out (possibly empty), or GH_ENOMEM.
 */
GH_EXTERN int gh_request_cookies(const gh_request_t *r, gh_values_t **out) GH_NONNULL(1, 2);
/** The value of the first cookie called name, or NULL (a new string). */
GH_EXTERN const char *gh_request_cookie(const gh_request_t *r, const char *name) GH_NONNULL(1, 2);

GH_END_DECLS

#endif
