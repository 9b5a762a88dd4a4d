/*
 * lib/parse.c: the strict HTTP/1.1 request-head parser and the chunked-body decoder
 * (RFC 9112). See lib/parse.h for the contract and the strictness rules.
 *
 * Both are leaves: no allocation, no state outside the caller's structs, and no read
 * at or past `len`. Every check is one lookup in a 256-entry class table, so the hot
 * path (plain ASCII) is a tight loop per line.
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include <gchttp/errno.h>

#include "parse.h"

/* Character classes (bits of cls[]). Generated; keep the generator's rules in sync:
 *   C_TCHAR   tchar (RFC 9110 §5.6.2): ALPHA DIGIT and !#$%&'*+-.^_`|~
 *   C_VCHAR   field-vchar: VCHAR (0x21-0x7E) or obs-text (0x80-0xFF)
 *   C_TARGET  request-target byte: anything but CTL, SP and DEL
 *   C_HEX     HEXDIG
 *   C_SCHEME  ALPHA DIGIT + - . (scheme after its first ALPHA, RFC 3986 §3.1)
 *   C_OWS     SP HTAB
 *   C_QDTEXT  qdtext (RFC 9110 §5.6.4): HTAB SP 0x21 0x23-0x5B 0x5D-0x7E obs-text
 *   C_REGNAME reg-name (RFC 3986 §3.2.2): unreserved / pct-encoded / sub-delims */
enum {
    C_TCHAR = 0x01,
    C_VCHAR = 0x02,
    C_TARGET = 0x04,
    C_HEX = 0x08,
    C_SCHEME = 0x10,
    C_OWS = 0x20,
    C_QDTEXT = 0x40,
    C_REGNAME = 0x80
};

static const unsigned char cls[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x00 */
    0x00, 0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x08 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x10 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x18 */
    0x60, 0xc7, 0x06, 0x47, 0xc7, 0xc7, 0xc7, 0xc7, /* 0x20 */
    0xc6, 0xc6, 0xc7, 0xd7, 0xc6, 0xd7, 0xd7, 0x46, /* 0x28 */
    0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, /* 0x30 */
    0xdf, 0xdf, 0x46, 0xc6, 0x46, 0xc6, 0x46, 0x46, /* 0x38 */
    0x46, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xd7, /* 0x40 */
    0xd7, 0xd7, 0xd7, 0xd7, 0xd7, 0xd7, 0xd7, 0xd7, /* 0x48 */
    0xd7, 0xd7, 0xd7, 0xd7, 0xd7, 0xd7, 0xd7, 0xd7, /* 0x50 */
    0xd7, 0xd7, 0xd7, 0x46, 0x06, 0x46, 0x47, 0xc7, /* 0x58 */
    0x47, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xd7, /* 0x60 */
    0xd7, 0xd7, 0xd7, 0xd7, 0xd7, 0xd7, 0xd7, 0xd7, /* 0x68 */
    0xd7, 0xd7, 0xd7, 0xd7, 0xd7, 0xd7, 0xd7, 0xd7, /* 0x70 */
    0xd7, 0xd7, 0xd7, 0x46, 0x47, 0x46, 0xc7, 0x00, /* 0x78 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0x80 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0x88 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0x90 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0x98 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0xa0 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0xa8 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0xb0 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0xb8 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0xc0 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0xc8 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0xd0 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0xd8 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0xe0 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0xe8 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0xf0 */
    0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, 0x46, /* 0xf8 */

};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))
#define IS_ALPHA(c) ((unsigned)(((unsigned char)(c) | 0x20) - 'a') < 26u)
#define IS_DIGIT(c) ((unsigned)((unsigned char)(c) - '0') < 10u)

int gh__token_eq(const char *p, size_t n, const char *lower)
{
    size_t i = 0;

    /* Walk `lower` up to its NUL, so neither string is read past its end. */
    for (; lower[i] != '\0'; i++) {
        if (i == n)
            return 0;
        unsigned char c = (unsigned char)p[i];
        if (c >= 'A' && c <= 'Z')
            c |= 0x20;
        if (c != (unsigned char)lower[i])
            return 0;
    }
    return i == n;
}

int gh__is_token(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!IS(p[i], C_TCHAR))
            return 0;
    return 1;
}

static int bytes_eq(const char *p, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(p, s, n) == 0;
}

/*
 * Parse field lines and the final empty line at [p, end). On success returns the
 * position after the empty line's CRLF; otherwise NULL with *ret set to GH_EAGAIN
 * (ran out of bytes) or GH_EPROTO (*status = 400). Offsets are taken from `base`.
 */
static const char *parse_fields(const char *base, const char *p, const char *end,
                                gh__hfield_t *fields, size_t cap, size_t *n_fields, int *ret,
                                int *status)
{
    size_t n = 0;

    for (;;) {
        if (p == end)
            goto eagain;
        if (*p == '\r') {
            if (p + 1 == end)
                goto eagain;
            if (p[1] != '\n')
                goto bad; /* bare CR */
            *n_fields = n;
            return p + 2;
        }
        /* A line starting with SP/HTAB is obs-fold (RFC 9112 §5.2), or whitespace
         * after the start line (§2.2): rejected either way. A bare LF, an empty name
         * (":v"), a CTL and a space before the colon (§5.1) all fail the token scan. */
        const char *name = p;
        while (p != end && IS(*p, C_TCHAR))
            p++;
        if (p == end)
            goto eagain;
        if (*p != ':' || p == name)
            goto bad;
        const char *name_end = p++;

        while (p != end && IS(*p, C_OWS))
            p++;
        const char *value = p;
        while (p != end && IS(*p, C_VCHAR | C_OWS))
            p++;
        if (p == end)
            goto eagain;
        const char *value_end = p;
        while (value_end != value && IS(value_end[-1], C_OWS))
            value_end--;
        /* Only CR LF may end the value: NUL, DEL, other CTLs, a bare CR or LF are 400
         * (RFC 9110 §5.5). */
        if (*p != '\r')
            goto bad;
        if (p + 1 == end)
            goto eagain;
        if (p[1] != '\n')
            goto bad;
        p += 2;

        if (n < cap) {
            fields[n].name_off = (uint32_t)(name - base);
            fields[n].name_len = (uint32_t)(name_end - name);
            fields[n].value_off = (uint32_t)(value - base);
            fields[n].value_len = (uint32_t)(value_end - value);
        }
        n++;
    }

eagain:
    *n_fields = n;
    *ret = GH_EAGAIN;
    return NULL;
bad:
    *n_fields = n;
    *ret = GH_EPROTO;
    *status = 400;
    return NULL;
}

/* authority-form (RFC 9112 §3.2.3): uri-host ":" port, no userinfo. We want a port of
 * 1-5 digits not above 65535, and a non-empty host: a reg-name or IPv4 address, or a
 * bracketed IP-literal. */
static int is_authority(const char *t, size_t n)
{
    size_t i = 0;

    if (n == 0)
        return 0;
    if (t[0] == '[') {
        for (i = 1; i < n && (IS(t[i], C_REGNAME) || t[i] == ':'); i++)
            ;
        if (i == 1 || i == n || t[i] != ']')
            return 0;
        i++;
    } else {
        while (i < n && IS(t[i], C_REGNAME))
            i++;
        if (i == 0)
            return 0;
    }
    if (i == n || t[i] != ':')
        return 0;
    i++;
    size_t digits = n - i;
    if (digits == 0 || digits > 5)
        return 0;
    unsigned port = 0;
    for (; i < n; i++) {
        if (!IS_DIGIT(t[i]))
            return 0;
        port = port * 10 + (unsigned)(t[i] - '0');
    }
    return port <= 65535;
}

/* An "http" or "https" URI (RFC 9110 §4.2.1, §4.2.2) after its scheme: "//"
 * authority with a non-empty host. "A recipient that processes such a URI reference
 * MUST reject it as invalid" when the host is empty: http:///p, http://:80/p,
 * https://user@/p, and http:/p (no authority at all). t[0..n) follows the ':'. */
static int http_uri_has_host(const char *t, size_t n)
{
    if (n < 2 || t[0] != '/' || t[1] != '/')
        return 0;
    size_t a = 2, e = 2;
    while (e < n && t[e] != '/' && t[e] != '?' && t[e] != '#')
        e++;
    /* userinfo "@" (RFC 3986 §3.2.1) is not the host. */
    for (size_t j = e; j > a; j--)
        if (t[j - 1] == '@') {
            a = j;
            break;
        }
    if (a < e && t[a] == '[')
        return e - a > 2 && t[a + 1] != ']'; /* an IP-literal: "[]" is empty */
    return a < e && t[a] != ':';
}

/* The scheme t[0..n) (scheme characters only) is lower, case-insensitively (RFC 3986
 * §3.1), whatever the locale. */
static int scheme_is(const char *t, size_t n, const char *lower)
{
    if (strlen(lower) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((t[i] | 0x20) != lower[i])
            return 0;
    return 1;
}

/* absolute-form (RFC 9112 §3.2.2): scheme ":" ...; the rest was checked bytewise,
 * except that an http(s) URI must name a host. */
static int is_absolute(const char *t, size_t n)
{
    if (n == 0 || !IS_ALPHA(t[0]))
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (t[i] == ':') {
            int http = scheme_is(t, i, "http") || scheme_is(t, i, "https");
            return !http || http_uri_has_host(t + i + 1, n - i - 1);
        }
        if (!IS(t[i], C_SCHEME))
            return 0;
    }
    return 0;
}

/*
 * Parse the request line at [p, end) into h. Returns the position after its CRLF, or
 * NULL with *ret and *status set. *preface is set when the line is exactly the HTTP/2
 * connection preface's "PRI * HTTP/2.0".
 */
static const char *parse_request_line(const char *buf, const char *p, const char *end,
                                      gh__reqhead_t *h, int *preface, int *ret, int *status)
{
    static const char http[] = "HTTP/";

    /* method = token, then exactly one SP (RFC 9112 §3). */
    const char *m = p;
    while (p != end && IS(*p, C_TCHAR))
        p++;
    if (p == end)
        goto eagain;
    if (*p != ' ' || p == m)
        goto bad;
    h->method_off = (uint32_t)(m - buf);
    h->method_len = (uint32_t)(p - m);
    p++;

    /* request-target: non-empty, no CTL, SP or DEL; its form is decided below. */
    const char *t = p;
    while (p != end && IS(*p, C_TARGET))
        p++;
    if (p == end)
        goto eagain;
    if (*p != ' ' || p == t)
        goto bad;
    h->target_off = (uint32_t)(t - buf);
    h->target_len = (uint32_t)(p - t);
    p++;

    /* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3); then
     * CRLF. Compared byte by byte so a prefix is never rejected for being short. */
    const char *v = p;
    for (size_t i = 0; i < sizeof http - 1; i++, p++) {
        if (p == end)
            goto eagain;
        if (*p != http[i])
            goto bad;
    }
    if (p == end)
        goto eagain;
    if (!IS_DIGIT(*p))
        goto bad;
    h->major = *p++ - '0';
    if (p == end)
        goto eagain;
    if (*p++ != '.')
        goto bad;
    if (p == end)
        goto eagain;
    if (!IS_DIGIT(*p))
        goto bad;
    h->minor = *p++ - '0';
    h->proto_off = (uint32_t)(v - buf);
    h->proto_len = (uint32_t)(p - v);
    if (p == end)
        goto eagain;
    if (*p != '\r')
        goto bad;
    if (++p == end)
        goto eagain;
    if (*p++ != '\n')
        goto bad;

    const char *method = buf + h->method_off, *target = buf + h->target_off;
    size_t mlen = h->method_len, tlen = h->target_len;
    *preface = h->major == 2 && h->minor == 0 && bytes_eq(method, mlen, "PRI") &&
               bytes_eq(target, tlen, "*");
    if (h->major != 1 && !*preface) {
        *ret = GH_EPROTO;
        *status = 505;
        return NULL;
    }

    /* Methods are case-sensitive (RFC 9110 §9.1): "connect" is just another method. */
    if (bytes_eq(method, mlen, "CONNECT")) {
        if (!is_authority(target, tlen))
            goto bad;
        h->form = GH__TARGET_AUTHORITY;
    } else if (target[0] == '/') {
        h->form = GH__TARGET_ORIGIN;
    } else if (tlen == 1 && target[0] == '*') {
        if (!bytes_eq(method, mlen, "OPTIONS") && !*preface)
            goto bad;
        h->form = GH__TARGET_ASTERISK;
    } else if (is_absolute(target, tlen)) {
        h->form = GH__TARGET_ABSOLUTE;
    } else {
        goto bad;
    }
    return p;

eagain:
    *ret = GH_EAGAIN;
    return NULL;
bad:
    *ret = GH_EPROTO;
    *status = 400;
    return NULL;
}

/* Heads are measured in int (the return value) and in uint32 offsets. */
static size_t head_limit(size_t max)
{
    return max < (size_t)INT_MAX ? max : (size_t)INT_MAX;
}

int gh__parse_request_head(const char *buf, size_t len, size_t max_head, gh__reqhead_t *h,
                           gh__hfield_t *fields, size_t cap, int *status)
{
    size_t limit = head_limit(max_head);
    const char *p = buf, *end = buf + (len < limit ? len : limit);
    int ret = GH_EAGAIN, preface = 0;

    memset(h, 0, sizeof *h);
    *status = 0;

    /* RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the
     * request line. We take up to 16, CRLF only. */
    while (p != end && *p == '\r') {
        if (p + 1 == end)
            goto incomplete;
        if (p[1] != '\n' || h->skipped == 16) {
            *status = 400;
            return GH_EPROTO;
        }
        p += 2;
        h->skipped++;
    }

    p = parse_request_line(buf, p, end, h, &preface, &ret, status);
    if (p == NULL)
        goto fail;
    p = parse_fields(buf, p, end, fields, cap, &h->n_fields, &ret, status);
    if (p == NULL)
        goto fail;

    /* The preface has no header section; Go answers "PRI * HTTP/2.0" with fields 505
     * too (isH2Upgrade is false, and the major is 2). */
    if (preface && h->n_fields != 0) {
        *status = 505;
        return GH_EPROTO;
    }
    return (int)(p - buf);

fail:
    if (ret != GH_EAGAIN)
        return ret;
incomplete:
    if (len > limit) {
        *status = 431;
        return GH_EPROTO;
    }
    return GH_EAGAIN;
}

int gh__parse_fields(const char *buf, size_t len, size_t max_len, gh__hfield_t *fields, size_t cap,
                     size_t *n_fields, int *status)
{
    size_t limit = head_limit(max_len);
    const char *end = buf + (len < limit ? len : limit);
    int ret = GH_EAGAIN;

    *status = 0;
    *n_fields = 0;
    const char *p = parse_fields(buf, buf, end, fields, cap, n_fields, &ret, status);
    if (p != NULL)
        return (int)(p - buf);
    if (ret == GH_EAGAIN && len > limit) {
        *status = 431;
        return GH_EPROTO;
    }
    return ret;
}

/* ---- chunked decoder ------------------------------------------------------------------
 *
 * States, per RFC 9112 §7.1:
 *   chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *
 *   SIZE      --HEXDIG--> SIZE; --";"/BWS--> EXT_SEMI/EXT_PRE_NAME; --CR--> LF
 *   EXT_SEMI  (BWS before ";") --";"--> EXT_PRE_NAME
 *   EXT_PRE_NAME --tchar--> EXT_NAME
 *   EXT_NAME  --"="--> EXT_PRE_VAL; --BWS--> EXT_POST_NAME; --";"--> EXT_PRE_NAME; --CR--> LF
 *   EXT_POST_NAME --"="--> EXT_PRE_VAL; --";"--> EXT_PRE_NAME
 *   EXT_PRE_VAL --tchar--> EXT_TOKEN; --DQUOTE--> EXT_QUOTED
 *   EXT_TOKEN / EXT_AFTER_Q --BWS--> EXT_SEMI; --";"--> EXT_PRE_NAME; --CR--> LF
 *   EXT_QUOTED --"\"--> EXT_QESC --> EXT_QUOTED; --DQUOTE--> EXT_AFTER_Q
 *   LF        --LF--> DATA (size > 0) or TRAILERS (last-chunk)
 *   DATA      --size bytes--> DATA_CR --CR--> DATA_LF --LF--> SIZE
 * Anything else moves to ERROR, which is sticky. BWS may only precede ";" or "=" (a
 * size line ending in whitespace is rejected). */
enum {
    CS_SIZE = 0,
    CS_EXT_SEMI,
    CS_EXT_PRE_NAME,
    CS_EXT_NAME,
    CS_EXT_POST_NAME,
    CS_EXT_PRE_VAL,
    CS_EXT_TOKEN,
    CS_EXT_QUOTED,
    CS_EXT_QESC,
    CS_EXT_AFTER_Q,
    CS_LF,
    CS_DATA,
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TRAILERS,
    CS_ERROR
};

/* Longest size line, chunk extensions included, CRLF excluded. */
#define CHUNK_LINE_MAX 4096

void gh__chunked_init(gh__chunked_t *c)
{
    memset(c, 0, sizeof *c);
    c->state = CS_SIZE;
}

static int hexval(unsigned char ch)
{
    if (ch <= '9')
        return ch - '0';
    return (ch | 0x20) - 'a' + 10;
}

int gh__chunked_step(gh__chunked_t *c, const char *in, size_t n, size_t *used, size_t *data_off,
                     size_t *data_len)
{
    size_t i = 0;

    *data_off = 0;
    *data_len = 0;
    if (c->state == CS_ERROR)
        goto error;
    while (i < n) {
        unsigned char ch = (unsigned char)in[i];
        int s = c->state;

        if (s == CS_DATA) {
            size_t k = n - i;
            if ((uint64_t)k > c->remaining)
                k = (size_t)c->remaining;
            c->remaining -= k;
            if (c->remaining == 0)
                c->state = CS_DATA_CR;
            *data_off = i;
            *data_len = k;
            *used = i + k;
            return GH__CHUNK_DATA;
        }
        if (s == CS_TRAILERS) {
            *used = i;
            return GH__CHUNK_TRAILERS;
        }

        if (s < CS_LF && ch != '\r' && ++c->line_len > CHUNK_LINE_MAX)
            goto fail;

        switch (s) {
        case CS_SIZE:
            if (IS(ch, C_HEX)) {
                uint64_t d = (uint64_t)hexval(ch);
                if (c->remaining > ((uint64_t)INT64_MAX - d) / 16)
                    goto fail; /* 2^63-1 is the largest size we represent */
                c->remaining = c->remaining * 16 + d;
                c->saw_digit = 1;
                break;
            }
            if (!c->saw_digit)
                goto fail;
            if (ch == ';')
                c->state = CS_EXT_PRE_NAME;
            else if (IS(ch, C_OWS))
                c->state = CS_EXT_SEMI;
            else if (ch == '\r')
                c->state = CS_LF;
            else
                goto fail;
            break;
        case CS_EXT_SEMI:
            if (ch == ';')
                c->state = CS_EXT_PRE_NAME;
            else if (!IS(ch, C_OWS))
                goto fail;
            break;
        case CS_EXT_PRE_NAME:
            if (IS(ch, C_TCHAR))
                c->state = CS_EXT_NAME;
            else if (!IS(ch, C_OWS))
                goto fail;
            break;
        case CS_EXT_NAME:
            if (IS(ch, C_TCHAR))
                break;
            if (ch == '=')
                c->state = CS_EXT_PRE_VAL;
            else if (ch == ';')
                c->state = CS_EXT_PRE_NAME;
            else if (IS(ch, C_OWS))
                c->state = CS_EXT_POST_NAME;
            else if (ch == '\r')
                c->state = CS_LF;
            else
                goto fail;
            break;
        case CS_EXT_POST_NAME:
            if (ch == '=')
                c->state = CS_EXT_PRE_VAL;
            else if (ch == ';')
                c->state = CS_EXT_PRE_NAME;
            else if (!IS(ch, C_OWS))
                goto fail;
            break;
        case CS_EXT_PRE_VAL:
            if (IS(ch, C_TCHAR))
                c->state = CS_EXT_TOKEN;
            else if (ch == '"')
                c->state = CS_EXT_QUOTED;
            else if (!IS(ch, C_OWS))
                goto fail;
            break;
        case CS_EXT_TOKEN:
            if (IS(ch, C_TCHAR))
                break;
            /* fall through */
        case CS_EXT_AFTER_Q:
            if (ch == ';')
                c->state = CS_EXT_PRE_NAME;
            else if (IS(ch, C_OWS))
                c->state = CS_EXT_SEMI;
            else if (ch == '\r')
                c->state = CS_LF;
            else
                goto fail;
            break;
        case CS_EXT_QUOTED:
            if (ch == '"')
                c->state = CS_EXT_AFTER_Q;
            else if (ch == '\\')
                c->state = CS_EXT_QESC;
            else if (!IS(ch, C_QDTEXT))
                goto fail;
            break;
        case CS_EXT_QESC:
            /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
            if (!IS(ch, C_VCHAR | C_OWS))
                goto fail;
            c->state = CS_EXT_QUOTED;
            break;
        case CS_LF:
            if (ch != '\n')
                goto fail;
            c->line_len = 0;
            c->saw_digit = 0;
            c->state = c->remaining == 0 ? CS_TRAILERS : CS_DATA;
            break;
        case CS_DATA_CR:
            if (ch != '\r')
                goto fail;
            c->state = CS_DATA_LF;
            break;
        case CS_DATA_LF:
            if (ch != '\n')
                goto fail;
            c->state = CS_SIZE;
            break;
        default:
            goto fail;
        }
        i++;
    }
    *used = i;
    return c->state == CS_TRAILERS ? GH__CHUNK_TRAILERS : GH__CHUNK_NEED;

fail:
    c->state = CS_ERROR;
error:
    *used = i;
    return GH_EPROTO;
}

/* The body reader got a data span larger than its caller's buffer: give back the
 * last n bytes of it, which stay in the input and are returned by the next step. */
void gh__chunked_unread(gh__chunked_t *c, size_t n)
{
    if (n == 0)
        return;
    c->remaining += n;
    c->state = CS_DATA;
}
