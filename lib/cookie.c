/*
 * lib/cookie.c: the Cookie request header and Set-Cookie (RFC 6265 §4.1 and §5.4; Go's
 * net/http cookie.go for what the RFC leaves open).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

/* cookie-octet (RFC 6265 §4.1.1): US-ASCII except CTLs, whitespace, DQUOTE, comma,
 * semicolon and backslash. */
static int cookie_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2B) || (c >= 0x2D && c <= 0x3A) ||
           (c >= 0x3C && c <= 0x5B) || (c >= 0x5D && c <= 0x7E);
}

static int valid_value(const char *v)
{
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    for (size_t i = 0; i < n; i++)
        if (!cookie_octet((unsigned char)v[i]))
            return 0;
    return 1;
}

/* path-value: any CHAR except CTLs or ";" (RFC 6265 §4.1.1). */
static int valid_path(const char *p)
{
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c >= 0x7f || c == ';')
            return 0;
    }
    return 1;
}

/* A host name (RFC 1034 §3.5, as browsers take it; Go's isCookieDomainName): labels of
 * letters, digits, '-' and '_', not starting or ending with '-', at most 63 bytes, at
 * most 255 in all. IPv4 addresses pass as all-digit labels. */
static int valid_domain(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > 255)
        return 0;
    size_t label = 0;
    char last = '.';
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_') {
            label++;
        } else if (c == '-') {
            if (last == '.')
                return 0;
            label++;
        } else if (c == '.') {
            if (last == '.' || last == '-')
                return 0;
            label = 0;
        } else {
            return 0;
        }
        if (label > 63)
            return 0;
        last = c;
    }
    return last != '-' && last != '.';
}

/* IMF-fixdate (RFC 9110 §5.6.7) of t seconds since the epoch, locale-free. */
static void imf_date(int64_t t, char out[32])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int gh_cookie_format(const gh_cookie_t *c, char **out)
{
    *out = NULL;
    const char *value = c->value ? c->value : "";
    const char *domain = c->domain;
    if (domain && domain[0] == '.')
        domain++; /* RFC 6265 §5.2.3: a leading dot is ignored */
    /* Year 1601 starts at -11644473600 s: the earliest date Go writes. */
    if (!c->name || !gh__is_token(c->name, strlen(c->name)) || !valid_value(value) ||
        (c->path && !valid_path(c->path)) || (domain && !valid_domain(domain)) ||
        (c->expires && c->expires < -11644473600LL) || (c->partitioned && !c->secure) ||
        c->same_site < GH_SAMESITE_DEFAULT || c->same_site > GH_SAMESITE_NONE)
        return GH_EINVAL;
    size_t need = strlen(c->name) + strlen(value) + 2 + (c->path ? strlen(c->path) + 7 : 0) +
                  (domain ? strlen(domain) + 9 : 0) + 160;
    char *b = gh_bytes_new(need);
    if (!b)
        return GH_ENOMEM;
    size_t w = (size_t)snprintf(b, need, "%s=%s", c->name, value);
    if (c->path)
        w += (size_t)snprintf(b + w, need - w, "; Path=%s", c->path);
    if (domain)
        w += (size_t)snprintf(b + w, need - w, "; Domain=%s", domain);
    if (c->expires) {
        char d[32];
        imf_date(c->expires, d);
        w += (size_t)snprintf(b + w, need - w, "; Expires=%s", d);
    }
    if (c->max_age > 0)
        w += (size_t)snprintf(b + w, need - w, "; Max-Age=%lld", (long long)c->max_age);
    else if (c->max_age < 0)
        w += (size_t)snprintf(b + w, need - w, "; Max-Age=0");
    if (c->http_only)
        w += (size_t)snprintf(b + w, need - w, "; HttpOnly");
    if (c->secure)
        w += (size_t)snprintf(b + w, need - w, "; Secure");
    static const char *const ss[] = {NULL, "Lax", "Strict", "None"};
    if (c->same_site != GH_SAMESITE_DEFAULT)
        w += (size_t)snprintf(b + w, need - w, "; SameSite=%s", ss[c->same_site]);
    if (c->partitioned)
        (void)snprintf(b + w, need - w, "; Partitioned");
    *out = b;
    return 0;
}

int gh_response_set_cookie(gh_response_t *w, const gh_cookie_t *c)
{
    char *v;
    int rc = gh_cookie_format(c, &v);
    if (rc < 0)
        return rc;
    return gh_response_header_add(w, "Set-Cookie", v);
}

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Go's validCookieValueByte, lenient on what browsers send: space and comma pass. */
static int lenient_octet(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != ';' && c != '\\';
}

/* Split one Cookie field value into v (RFC 6265 §5.4 and §4.2.1). */
static int parse_line(gh_values_t *v, const char *line, const char *only)
{
    const char *p = line;
    while (*p) {
        const char *e = strchr(p, ';');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *part = p;
        p = e ? e + 1 : p + n;
        while (n && ows(*part)) {
            part++;
            n--;
        }
        while (n && ows(part[n - 1]))
            n--;
        if (n == 0)
            continue;
        const char *eq = memchr(part, '=', n);
        size_t nl = eq ? (size_t)(eq - part) : n;
        const char *val = eq ? eq + 1 : part + n;
        size_t vl = eq ? n - nl - 1 : 0;
        while (nl && ows(part[nl - 1]))
            nl--;
        while (vl && ows(*val)) {
            val++;
            vl--;
        }
        if (nl == 0 || !gh__is_token(part, nl))
            continue;
        if (only && (strlen(only) != nl || memcmp(only, part, nl) != 0))
            continue;
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val++;
            vl -= 2;
        }
        size_t i;
        for (i = 0; i < vl && lenient_octet((unsigned char)val[i]); i++)
            ;
        if (i < vl)
            continue;
        char *k = gh_strndup(part, nl), *vv = gh_strndup(val, vl);
        if (!k || !vv || gh_values_add(v, k, vv) < 0)
            return GH_ENOMEM;
        if (only)
            return 1;
    }
    return 0;
}

static int read_cookies(const gh_request_t *r, gh_values_t *v, const char *only)
{
    size_t n = gh_request_header_count(r);
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        if (gh_request_header_at(r, i, &name, &value) < 0 || strcasecmp(name, "Cookie") != 0)
            continue;
        int rc = parse_line(v, value, only);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int gh_request_cookies(const gh_request_t *r, gh_values_t **out)
{
    gh_values_t *v = gh_values_new();
    *out = v;
    if (!v)
        return GH_ENOMEM;
    if (read_cookies(r, v, NULL) < 0) {
        *out = NULL;
        return GH_ENOMEM;
    }
    return 0;
}

const char *gh_request_cookie(const gh_request_t *r, const char *name)
{
    gh_values_t *v = gh_values_new();
    if (!v || read_cookies(r, v, name) < 0)
        return NULL;
    return gh_values_get(v, name);
}
