/*
 * gchttp/fileserver.h: serving files, as Go's http.FileServer and http.ServeContent.
 *
 * gh_content_serve answers a request from an open file the handler chose: type by
 * extension or sniffed from the file's first 512 bytes, Last-Modified, conditional
 * requests (RFC 9110 §13.1 and §13.2: If-Match, If-Unmodified-Since, If-None-Match,
 * If-Modified-Since, If-Range), byte ranges (RFC 9110 §14: one range -> 206 with
 * Content-Range; several -> multipart/byteranges; none satisfiable -> 416 with
 * "Content-Range: bytes *" "/size"), HEAD; the body goes out with sendfile(2).
 *
 * A gh_fileserver_t maps request paths onto a directory: paths are percent-decoded and
 * cleaned, "..", NUL and backslashes are refused (400), and files are opened beneath
 * the root so that neither a path nor (by default) a symbolic link leads out of it
 * (openat2 with RESOLVE_BENEATH where the kernel has it, else the opened file's real
 * path is checked). Directories get index.html, a redirect when the trailing slash is
 * missing (301, relative Location as Go), and optionally a listing.
 *
 * ETag of a file (gh_fileserver_t): strong, "<inode>-<mtime ns>-<size>" in hex. It
 * changes whenever the file is replaced or written through the file system (mtime),
 * and does not pretend to hash the content.
 */
#ifndef GCHTTP_FILESERVER_H
#define GCHTTP_FILESERVER_H

#include <sys/types.h>
#include "common.h"
#include "request.h"
#include "response.h"

GH_BEGIN_DECLS

/** What gh_content_serve sends: a file the caller opened (and closes afterwards). */
typedef struct gh_content_s {
    int fd;          /*< readable with pread/sendfile; its offset is not used */
    int64_t size;    /*< bytes from offset 0 */
    int64_t mtime;   /*< seconds since the epoch; <= 0: unknown (no Last-Modified, and
                      *  If-Modified-Since/If-Unmodified-Since are ignored) */
    const char *name; /*< for the type by extension; NULL or no known extension: sniffed */
} gh_content_t;

/**
 * Answer r from c. A Content-Type the handler set is kept (else by extension of name,
 * else sniffed from the start of the file, never from a range); an ETag the handler
 * set takes part in If-Match/If-None-Match/If-Range. Every method gets the content
 * (HEAD without body); call it for GET and HEAD. The response is complete when it
 * returns (do not write more).
 * @return 0, or a negative code when writing failed (the client went away, ...). */
GH_EXTERN int gh_content_serve(gh_response_t *w, gh_request_t *r, const gh_content_t *c)
    GH_NONNULL(1, 2, 3);

/** How a gh_fileserver_t treats symbolic links under its root. */
typedef enum {
    GH_SYMLINKS_BENEATH = 0, /*< default: followed while their target is inside the root */
    GH_SYMLINKS_NONE,        /*< never followed (404) */
    GH_SYMLINKS_ANY          /*< followed anywhere (Go's http.Dir) */
} gh_symlinks_t;

/** File server settings; fill with gh_fileserver_config_init. */
typedef struct gh_fileserver_config_s {
    const char *root;          /*< required: the directory served */
    const char *strip_prefix;  /*< removed from the path first (Go's StripPrefix); a
                                *  path without it is 404 */
    const char *index;         /*< served for a directory; default "index.html", "" none */
    int list_dirs;             /*< list a directory without index (Go does; off here) */
    int hide_dotfiles;         /*< 404 for any path element starting with '.' */
    gh_symlinks_t symlinks;
} gh_fileserver_config_t;

/**
 * A directory served over HTTP.
 * Alloc:     gh_fileserver_new (GC object); no _free.
 * Lifetime:  while referenced (as handler_data the server keeps it).
 * OS state:  a descriptor on the root directory, closed by gh_fileserver_close (a
 *            finalizer closes a forgotten one as a backstop).
 * Threads:   any number of requests at once; the configuration is fixed at _new.
 */
typedef struct gh_fileserver_s gh_fileserver_t;

GH_EXTERN void gh_fileserver_config_init(gh_fileserver_config_t *cfg) GH_NONNULL(1);
/** @return 0, GH_EINVAL (no root), GH_ENOMEM, or -errno opening the root (ENOENT,
 * ENOTDIR, EACCES). */
GH_EXTERN int gh_fileserver_new(gh_fileserver_t **out, const gh_fileserver_config_t *cfg)
    GH_WARN_UNUSED GH_NONNULL(1, 2);
/** Close the root descriptor; later requests get 503. Idempotent. */
GH_EXTERN void gh_fileserver_close(gh_fileserver_t *fs) GH_NONNULL(1);

/**
 * The handler (a gh_handler_fn: pass the file server as handler_data). GET and HEAD
 * are served; other methods get 405 with "Allow: GET, HEAD". Statuses: 200/206/304/
 * 412/416 as gh_content_serve; 301 directory redirects; 400 for a path that is not
 * clean ("..", NUL, backslash, bad %-escape); 403 for a file the process may not
 * read; 404 for what does not exist, is outside the root, hidden, or is not a regular
 * file or directory.
 */
GH_EXTERN void gh_fileserver_serve(gh_response_t *w, gh_request_t *r, void *fs);

GH_END_DECLS

#endif
