/*
 * lib/url.c: request targets as URLs, percent coding (RFC 3986 §2.1) and path cleaning
 * (Go's path.Clean plus ServeMux's cleanPath).
 */
#include "config.h"

#include <string.h>

#include "internal.h"

int gh__unhex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t gh__unescape(const char *s, size_t n, char *out, int query)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = gh__unhex((unsigned char)s[i + 1]), l = gh__unhex((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            out[j++] = (char)(h << 4 | l);
            i += 2;
        } else if (c == '+' && query) {
            out[j++] = ' ';
        } else {
            out[j++] = c;
        }
    }
    return (ssize_t)j;
}

int gh__escapes_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '%') {
            if (i + 2 >= n || gh__unhex((unsigned char)s[i + 1]) < 0 ||
                gh__unhex((unsigned char)s[i + 2]) < 0)
                return 0;
            i += 2;
        }
    return 1;
}

size_t gh__path_clean(const char *p, size_t n, char *out)
{
    /* out holds n + 2 bytes. Rooted path: write "/" then each kept element. */
    size_t w = 1;
    out[0] = '/';
    size_t i = 0;
    while (i < n) {
        while (i < n && p[i] == '/')
            i++;
        size_t s = i;
        while (i < n && p[i] != '/')
            i++;
        size_t len = i - s;
        if (len == 0 || (len == 1 && p[s] == '.'))
            continue;
        if (len == 2 && p[s] == '.' && p[s + 1] == '.') {
            /* Drop the last element; ".." at the root stays at the root. */
            while (w > 1 && out[w - 1] != '/')
                w--;
            if (w > 1)
                w--;
            continue;
        }
        if (w > 1)
            out[w++] = '/';
        memcpy(out + w, p + s, len);
        w += len;
    }
    /* ServeMux keeps a trailing slash (path.Clean drops it). */
    if (n > 0 && p[n - 1] == '/' && w > 1)
        out[w++] = '/';
    out[w] = 0;
    return w;
}

char *gh_path_clean(const char *p)
{
    size_t n = strlen(p);
    char *out = gh_bytes_new(n + 2);
    if (!out)
        return NULL;
    gh__path_clean(p, n, out);
    return out;
}

static char *unescape_new(const char *s, size_t n, int query)
{
    char *out = gh_bytes_new(n + 1);
    if (!out)
        return NULL;
    ssize_t k = gh__unescape(s, n, out, query);
    if (k < 0)
        return NULL;
    out[k] = 0;
    return out;
}

char *gh_path_unescape(const char *s)
{
    return unescape_new(s, strlen(s), 0);
}
char *gh_query_unescape(const char *s)
{
    return unescape_new(s, strlen(s), 1);
}

/* RFC 3986 §2.3 unreserved characters are never escaped. */
static int unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Go's shouldEscape for encodePathSegment: sub-delims and ':' '@' stay, '/' ';' ','
 * '?' are escaped. */
static int path_keeps(unsigned char c)
{
    return unreserved(c) || c == '$' || c == '&' || c == '+' || c == '=' || c == ':' || c == '@';
}

static char *escape_new(const char *s, int query)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s), extra = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (query ? !(unreserved(c) || c == ' ') : !path_keeps(c))
            extra += 2;
    }
    char *out = gh_bytes_new(n + extra + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (query && c == ' ') {
            out[j++] = '+';
        } else if (query ? unreserved(c) : path_keeps(c)) {
            out[j++] = (char)c;
        } else {
            out[j++] = '%';
            out[j++] = hex[c >> 4];
            out[j++] = hex[c & 15];
        }
    }
    out[j] = 0;
    return out;
}

char *gh_query_escape(const char *s)
{
    return escape_new(s, 1);
}
char *gh_path_escape(const char *s)
{
    return escape_new(s, 0);
}

int gh__target_split(const char *t, gh__target_t *out)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(t);
    if (n == 0)
        return GH_EINVAL;
    if (n == 1 && t[0] == '*') {
        out->path = t;
        out->path_len = 1;
        out->asterisk = 1;
        return 0;
    }
    const char *q = memchr(t, '?', n);
    size_t end = q ? (size_t)(q - t) : n;
    if (q) {
        out->query = q + 1;
        out->query_len = n - end - 1;
        out->has_query = 1;
    }
    if (t[0] == '/') {
        out->path = t;
        out->path_len = end;
        return 0;
    }
    /* absolute-form: scheme "://" authority path (RFC 9112 §3.2.2). */
    const char *a = strstr(t, "://");
    if (a && (size_t)(a - t) < end) {
        out->scheme = t;
        out->scheme_len = (size_t)(a - t);
        const char *h = a + 3;
        size_t k = 0;
        while (h + k < t + end && h[k] != '/')
            k++;
        /* userinfo "@" is not part of the host (RFC 3986 §3.2). */
        for (size_t j = k; j > 0; j--)
            if (h[j - 1] == '@') {
                h += j;
                k -= j;
                break;
            }
        out->host = h;
        out->host_len = k;
        out->path = h + k;
        out->path_len = (size_t)(t + end - (h + k));
        return 0;
    }
    /* authority-form (CONNECT host:port, RFC 9112 §3.2.3): no path. */
    out->host = t;
    out->host_len = end;
    out->path = t + end;
    out->path_len = 0;
    out->authority = 1;
    return 0;
}

static const char *dup_or_empty(const char *p, size_t n)
{
    return n ? gh_strndup(p, n) : "";
}

int gh_url_parse(const char *target, gh_url_t *u)
{
    gh__target_t t;
    int rc = gh__target_split(target, &t);
    if (rc < 0)
        return rc;
    u->scheme = dup_or_empty(t.scheme, t.scheme_len);
    u->host = dup_or_empty(t.host, t.host_len);
    u->raw_path = dup_or_empty(t.path, t.path_len);
    u->raw_query = dup_or_empty(t.query, t.query_len);
    if (t.path_len) {
        u->path = unescape_new(t.path, t.path_len, 0);
        if (!u->path)
            return gh__escapes_valid(t.path, t.path_len) ? GH_ENOMEM : GH_EINVAL;
    } else {
        u->path = "";
    }
    if (!u->scheme || !u->host || !u->raw_path || !u->raw_query)
        return GH_ENOMEM;
    return 0;
}

int gh_request_url(const gh_request_t *r, gh_url_t *u)
{
    return gh_url_parse(gh_request_target(r), u);
}
