/*
 * gchttp/date.h: HTTP dates (RFC 9110 §5.6.7).
 *
 * Times are seconds since the Unix epoch (UTC). Formatting writes the preferred
 * IMF-fixdate; parsing also accepts the two obsolete forms a recipient must accept
 * (RFC 850 and asctime), as Go's http.ParseTime does.
 * Threads: any; no state.
 */
#ifndef GCHTTP_DATE_H
#define GCHTTP_DATE_H

#include "common.h"

GH_BEGIN_DECLS

/** Bytes of an IMF-fixdate with its NUL: "Sun, 06 Nov 1994 08:49:37 GMT". */
#define GH_DATE_LEN 30

/** Format t as an IMF-fixdate into out (GH_DATE_LEN bytes, NUL-terminated).
 * @return 0, or GH_EINVAL for a time outside years 0..9999. */
GH_EXTERN int gh_date_format(int64_t t, char out[GH_DATE_LEN]) GH_NONNULL(2);

/** Parse an HTTP date: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), RFC 850
 * ("Sunday, 06-Nov-94 08:49:37 GMT"; two-digit years 70..99 are 19xx, 00..69 20xx)
 * or asctime ("Sun Nov  6 08:49:37 1994"). Surrounding whitespace is allowed; the day
 * name is checked for form, not against the date.
 * @return 0 with *t set, or GH_EINVAL. */
GH_EXTERN int gh_date_parse(const char *s, int64_t *t) GH_WARN_UNUSED GH_NONNULL(1, 2);

GH_END_DECLS

#endif
