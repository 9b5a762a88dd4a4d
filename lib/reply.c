/*
 * lib/reply.c: canned answers a handler gives (Go's http.Error and http.Redirect).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "internal.h"

int gh_response_error(gh_response_t *w, const char *msg, int status)
{
    /* A length set for the body the handler meant to send would not fit this one. */
    gh_response_header_del(w, "Content-Length");
    int rc = gh_response_header_set(w, "Content-Type", "text/plain; charset=utf-8");
    if (rc < 0)
        return rc;
    /* The body is the message, never to be sniffed as HTML by a browser. */
    rc = gh_response_header_set(w, "X-Content-Type-Options", "nosniff");
    if (rc < 0)
        return rc;
    rc = gh_response_write_header(w, status);
    if (rc < 0)
        return rc;
    ssize_t k = gh_response_puts(w, msg);
    if (k >= 0)
        k = gh_response_write(w, "\n", 1);
    return k < 0 ? (int)k : 0;
}

/* Does url name a scheme or a host ("http:...", "//host")? RFC 3986 §3.1: a scheme is
 * ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) followed by ':'. */
static int has_scheme_or_host(const char *u)
{
    if (u[0] == '/' && u[1] == '/')
        return 1;
    if (!((u[0] >= 'a' && u[0] <= 'z') || (u[0] >= 'A' && u[0] <= 'Z')))
        return 0;
    for (const char *p = u + 1; *p; p++) {
        char c = *p;
        if (c == ':')
            return 1;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.'))
            return 0;
    }
    return 0;
}

static size_t html_escape(const char *s, char *out)
{
    size_t w = 0;
    for (; *s; s++) {
        const char *e = NULL;
        switch (*s) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&#34;";
            break;
        case '\'':
            e = "&#39;";
            break;
        default:
            break;
        }
        if (e) {
            if (out)
                memcpy(out + w, e, strlen(e));
            w += strlen(e);
        } else {
            if (out)
                out[w] = *s;
            w++;
        }
    }
    return w;
}

int gh_response_redirect(gh_response_t *w, const gh_request_t *r, const char *url, int status)
{
    if (status < 300 || status > 399)
        return GH_EINVAL;
    const char *loc = url;
    if (!has_scheme_or_host(url)) {
        /* Relative: resolve against the request path's directory, then clean, keeping a
         * trailing slash and the query (RFC 9110 §10.2.2 allows a relative Location; an
         * absolute path is what old clients understand). The path is the one the client
         * sent, still encoded. */
        gh__target_t t;
        const char *dir = "/";
        size_t dl = 1;
        if (gh__target_split(gh_request_target(r), &t) == 0 && t.path_len && t.path[0] == '/') {
            dir = t.path;
            dl = t.path_len;
            while (dl > 0 && dir[dl - 1] != '/')
                dl--;
        }
        const char *q = strchr(url, '?');
        size_t ul = q ? (size_t)(q - url) : strlen(url);
        size_t ql = q ? strlen(q) : 0;
        size_t pl = url[0] == '/' ? ul : dl + ul;
        char *joined = gh_bytes_new(pl + 1);
        char *clean = gh_bytes_new(pl + 3 + ql);
        if (!joined || !clean)
            return GH_ENOMEM;
        if (url[0] == '/') {
            memcpy(joined, url, ul);
        } else {
            memcpy(joined, dir, dl);
            memcpy(joined + dl, url, ul);
        }
        size_t cl = gh__path_clean(joined, pl, clean);
        memcpy(clean + cl, q ? q : "", ql + 1);
        loc = clean;
    }
    /* Bytes outside ASCII are percent-encoded (Go: hexEscapeNonASCII). */
    size_t extra = 0, n = strlen(loc);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)loc[i] >= 0x80)
            extra += 2;
    if (extra) {
        static const char hex[] = "0123456789ABCDEF";
        char *e = gh_bytes_new(n + extra + 1);
        if (!e)
            return GH_ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)loc[i];
            if (c >= 0x80) {
                e[k++] = '%';
                e[k++] = hex[c >> 4];
                e[k++] = hex[c & 15];
            } else {
                e[k++] = (char)c;
            }
        }
        e[k] = 0;
        loc = e;
    }
    int had_ct = gh_response_header_get(w, "Content-Type") != NULL;
    int rc = gh_response_header_set(w, "Location", loc);
    if (rc < 0)
        return rc;
    const char *m = gh_request_method(r);
    int get = strcmp(m, "GET") == 0;
    /* RFC 9110 §15.4: a short hypertext note with a link, for user agents that do not
     * follow the redirect; only when the handler did not type the body itself. */
    if (!had_ct && (get || strcmp(m, "HEAD") == 0)) {
        rc = gh_response_header_set(w, "Content-Type", "text/html; charset=utf-8");
        if (rc < 0)
            return rc;
    }
    rc = gh_response_write_header(w, status);
    if (rc < 0)
        return rc;
    if (!had_ct && get) {
        size_t hl = html_escape(loc, NULL);
        const char *text = gh_status_text(status);
        size_t tl = strlen(text);
        char *body = gh_bytes_new(hl + tl + 32);
        if (!body)
            return GH_ENOMEM;
        size_t k = 0;
        memcpy(body, "<a href=\"", 9);
        k = 9;
        k += html_escape(loc, body + k);
        memcpy(body + k, "\">", 2);
        k += 2;
        memcpy(body + k, text, tl);
        k += tl;
        memcpy(body + k, "</a>.\n\n", 7);
        k += 7;
        ssize_t wr = gh_response_write(w, body, k);
        if (wr < 0)
            return (int)wr;
    }
    return 0;
}
