/*
 * gchttp/mime.h: media types by file extension, and by content (sniffing).
 *
 * The built-in table covers the common web types (Go's mime package's built-ins and
 * more); gh_mime_load adds a mime.types file (e.g. /etc/mime.types). Text types carry
 * "; charset=utf-8", as Go's do.
 * Alloc:     the table is process-wide: built-in entries are static, loaded ones live
 *            in malloc'd memory for the life of the process.
 * Threads:   any; gh_mime_load may run while other threads look types up.
 */
#ifndef GCHTTP_MIME_H
#define GCHTTP_MIME_H

#include <stddef.h>
#include "common.h"

GH_BEGIN_DECLS

/** The media type for a file name or path by its extension (case-insensitive:
 * "a/b.HTML" -> "text/html; charset=utf-8"), or NULL when the extension is unknown or
 * there is none. Loaded entries take precedence over built-in ones. The string is
 * static (or lives as long as the process). */
GH_EXTERN const char *gh_mime_type(const char *name) GH_NONNULL(1);

/** The media type of data from its first bytes (at most 512 are looked at), as Go's
 * http.DetectContentType: never NULL; "application/octet-stream" when unsure. */
GH_EXTERN const char *gh_mime_sniff(const void *data, size_t n);

/** Read a mime.types file ("type ext ext ...", '#' comments) and add its entries.
 * @return the number of extensions added, or -errno (file not readable), GH_ENOMEM. */
GH_EXTERN int gh_mime_load(const char *path) GH_NONNULL(1);

GH_END_DECLS

#endif
