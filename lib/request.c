/*
 * lib/request.c: building a request from a parsed head, and its accessors.
 *
 * Framing decisions (RFC 9112 §6, with Go's net/http where the RFC leaves a choice):
 *  - Transfer-Encoding other than exactly "chunked" -> 501 (Go: "unsupported transfer
 *    encoding"); more than one Transfer-Encoding field -> 400.
 *  - Transfer-Encoding together with Content-Length -> 400. RFC 9112 §6.3 lets a
 *    server reject such a request (a smuggling vector); Go accepts it and drops the
 *    Content-Length. A documented deviation.
 *  - Transfer-Encoding in an HTTP/1.0 request -> 400 (RFC 9112 §6.1: faulty framing;
 *    Go ignores the header).
 *  - Content-Length must be 1*DIGIT without overflow; several fields or a list must all
 *    hold the same value (RFC 9110 §8.6), else 400.
 *  - HTTP/1.1 requires exactly one Host field (RFC 9112 §3.2), except CONNECT and the
 *    PRI preface as in Go; a Host value with characters outside the URI host grammar
 *    -> 400.
 *  - Expect: 100-continue (case-insensitive) is honoured for HTTP/1.1; any other
 *    expectation -> 417 (RFC 9110 §10.1.1).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static const size_t req_ptrs[] = {
    offsetof(struct gh_request_s, block),  offsetof(struct gh_request_s, ctx),
    offsetof(struct gh_request_s, parent_ctx), offsetof(struct gh_request_s, body),
    offsetof(struct gh_request_s, remote), offsetof(struct gh_request_s, tblock),
    offsetof(struct gh_request_s, host_copy), offsetof(struct gh_request_s, pathvals),
};
static const char *const req_names[] = {"header", "ctx",      "parentCtx", "Body",
                                        "remote", "trailers", "hostCopy", "pathValues"};
gh_type_t gh__request_type = GH_TYPE_INIT_NAMED("Request", struct gh_request_s, req_ptrs, req_names);

/* Parse a Content-Length value that may be a list of identical values.
 * Returns the length, or -1 if malformed. */
static int64_t parse_clen(const char *p, size_t n)
{
    int64_t val = -1;
    size_t i = 0;
    while (i < n) {
        while (i < n && (p[i] == ' ' || p[i] == '\t'))
            i++;
        if (i == n || p[i] < '0' || p[i] > '9')
            return -1;
        int64_t v = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            if (v > (INT64_MAX - (p[i] - '0')) / 10)
                return -1;
            v = v * 10 + (p[i] - '0');
            i++;
        }
        while (i < n && (p[i] == ' ' || p[i] == '\t'))
            i++;
        if (i < n && p[i] != ',')
            return -1;
        if (i < n)
            i++;
        if (val >= 0 && v != val)
            return -1;
        val = v;
    }
    return val;
}

static int valid_host(const char *p, size_t n)
{
    /* reg-name / IP-literal / IPv4 with an optional port; what Go's
     * httpguts.ValidHostHeader allows. */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
            continue;
        if (strchr("!$%&'()*+,-.:;=[]_~", ch) && ch)
            continue;
        return 0;
    }
    return 1;
}

/* Does a comma-separated header value contain token `tok` (case-insensitive)? */
static int has_token(const char *p, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
            i++;
        size_t s = i;
        while (i < n && p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(p + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

gh_request_t *gh__request_new(gh_conn_t *c, const char *p, size_t len, int *status,
                              const char **why)
{
    size_t nf = c->head_nfields;
    size_t fsz = nf * sizeof(gh__hfield_t);
    *status = 0;
    *why = NULL;
    gh_request_t *r = gh_obj_new(&gh__request_type);
    /* A head read through the scratch slot is already in its block (conn.c). */
    char *block = c->head_block ? c->head_block : gh_bytes_new(fsz + len + 1);
    if (!r || !block)
        return NULL;
    r->block = block;
    r->n_fields = (uint32_t)nf;
    gh__hfield_t *fields = GH__REQ_FIELDS(r);
    char *hm = GH__REQ_HEAD(r);
    if (hm != p)
        memcpy(hm, p, len);
    hm[len] = 0;
    gh__reqhead_t h;
    int st = 0;
    int rc = gh__parse_request_head(hm, len, len, &h, fields, nf, &st);
    if (rc <= 0 || h.n_fields != nf) {
        *status = st ? st : 400;
        return NULL;
    }
    if (h.method_off > 255) {
        *status = 400;
        return NULL;
    }
    r->major = (uint8_t)h.major;
    r->minor = (uint8_t)h.minor;
    r->method_off = (uint8_t)h.method_off;
    r->target_off = h.target_off;
    r->proto_off = h.proto_off;
    r->remote = c->remote;
    r->parent_ctx = c->ctx;
    r->content_length = 0;
    const char *head = hm;
    /* Methods are case-sensitive (RFC 9110 §9.1). */
    int is_connect = h.method_len == 7 && memcmp(head + h.method_off, "CONNECT", 7) == 0;
    int is_pri = h.major == 2;
    r->is_head = h.method_len == 4 && memcmp(head + h.method_off, "HEAD", 4) == 0;

    int n_host = 0, n_te = 0, n_cl = 0;
    int64_t clen = -1;
    int conn_close = 0, conn_keepalive = 0;
    for (size_t i = 0; i < nf; i++) {
        const gh__hfield_t *f = &fields[i];
        const char *name = head + f->name_off, *val = head + f->value_off;
        size_t nl = f->name_len, vl = f->value_len;
        if (nl == 4 && gh__token_eq(name, nl, "host")) {
            n_host++;
            r->host_off = f->value_off;
            if (!valid_host(val, vl)) {
                *status = 400;
                *why = "malformed Host header";
                return NULL;
            }
        } else if (nl == 17 && gh__token_eq(name, nl, "transfer-encoding")) {
            n_te++;
            if (vl != 7 || strncasecmp(val, "chunked", 7) != 0) {
                *status = 501;
                *why = "unsupported transfer encoding";
                return NULL;
            }
        } else if (nl == 14 && gh__token_eq(name, nl, "content-length")) {
            int64_t v = parse_clen(val, vl);
            if (v < 0 || (clen >= 0 && v != clen)) {
                *status = 400;
                *why = "bad Content-Length";
                return NULL;
            }
            clen = v;
            n_cl++;
        } else if (nl == 10 && gh__token_eq(name, nl, "connection")) {
            if (has_token(val, vl, "close"))
                conn_close = 1;
            if (has_token(val, vl, "keep-alive"))
                conn_keepalive = 1;
        } else if (nl == 6 && gh__token_eq(name, nl, "expect")) {
            if (vl == 12 && strncasecmp(val, "100-continue", 12) == 0) {
                if (h.major == 1 && h.minor >= 1)
                    r->expect_continue = 1;
            } else {
                *status = 417;
                *why = "unsupported Expect";
                return NULL;
            }
        }
    }
    if (h.major == 1 && h.minor >= 1 && n_host != 1 && !is_connect && !is_pri) {
        *status = 400;
        *why = n_host ? "too many Host headers" : "missing required Host header";
        return NULL;
    }
    if (n_host > 1) {
        *status = 400;
        *why = "too many Host headers";
        return NULL;
    }
    if (n_te) {
        if (n_te > 1 || n_cl || h.major != 1 || h.minor == 0) {
            *status = 400;
            *why = n_cl ? "both Transfer-Encoding and Content-Length" : "bad Transfer-Encoding";
            return NULL;
        }
        r->chunked = 1;
        r->content_length = -1;
    } else if (clen > 0) {
        r->content_length = clen;
    }
    if (!r->chunked && r->content_length == 0)
        r->expect_continue = 0;
    if (h.major == 1 && h.minor == 0)
        r->want_close = !conn_keepalive || conn_close;
    else
        r->want_close = conn_close;
    int host_in_target = 0;
    size_t host_len = 0;
    if (h.form == GH__TARGET_ABSOLUTE) {
        /* absolute-form: the authority of the target is the host, and a Host field is
         * ignored (RFC 9112 §3.2.2; Go: req.Host = req.URL.Host). */
        const char *t = head + h.target_off;
        const char *a = strstr(t, "://");
        if (a && (size_t)(a - t) < h.target_len) {
            a += 3;
            size_t k = 0;
            while (a + k < t + h.target_len && a[k] != '/' && a[k] != '?' && a[k] != '#')
                k++;
            /* userinfo "@" is not part of the host (RFC 3986 §3.2; Go: URL.Host). */
            for (size_t j = k; j > 0; j--)
                if (a[j - 1] == '@') {
                    a += j;
                    k -= j;
                    break;
                }
            if (k) {
                r->host_off = (uint32_t)(a - head);
                host_len = k;
                host_in_target = 1;
            }
        }
    }

    /* Turn the copy into C strings: every token ends at a delimiter byte (SP, CR, ':'
     * or the OWS after a value) that belongs to no other token. */
    hm[h.method_off + h.method_len] = 0;
    hm[h.target_off + h.target_len] = 0;
    hm[h.proto_off + h.proto_len] = 0;
    for (size_t i = 0; i < nf; i++) {
        hm[fields[i].name_off + fields[i].name_len] = 0;
        hm[fields[i].value_off + fields[i].value_len] = 0;
    }
    if (host_in_target) {
        /* The authority is inside the target string: give it its own copy. */
        char *hc = gh_strndup(head + r->host_off, host_len);
        if (!hc)
            return NULL;
        r->host_copy = hc;
    }
    if (r->chunked || r->content_length > 0) {
        r->body = gh__body_new(r, c);
        if (!r->body)
            return NULL;
    }
    return r;
}

void gh__request_cancel(gh_request_t *r, int reason)
{
    int zero = 0;
    __atomic_compare_exchange_n(&r->cancel_reason, &zero, reason, 0, __ATOMIC_SEQ_CST,
                                __ATOMIC_SEQ_CST);
    gh_ctx_t *ctx = __atomic_load_n(&r->ctx, __ATOMIC_SEQ_CST);
    if (ctx)
        gh_ctx_cancel(ctx, __atomic_load_n(&r->cancel_reason, __ATOMIC_SEQ_CST));
}

gh_ctx_t *gh_request_context(gh_request_t *r)
{
    gh_ctx_t *ctx = __atomic_load_n(&r->ctx, __ATOMIC_SEQ_CST);
    if (ctx)
        return ctx;
    /* A request that already ended gets a context that says why it ended, not why
     * its parent (the connection's, e.g. GH_EHIJACKED) did. */
    int early = __atomic_load_n(&r->cancel_reason, __ATOMIC_SEQ_CST);
    gh_ctx_t *n = gh_ctx_new(early ? NULL : r->parent_ctx);
    if (!n)
        return NULL;
    if (early)
        gh_ctx_cancel(n, early);
    gh_ctx_t *expected = NULL;
    if (!__atomic_compare_exchange_n(&r->ctx, &expected, n, 0, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST)) {
        gh_ctx_cancel(n, GH_ECANCELED); /* lost the race: leave the parent */
        return expected;
    }
    /* A cancellation that came before the context existed is applied now. */
    int reason = __atomic_load_n(&r->cancel_reason, __ATOMIC_SEQ_CST);
    if (reason)
        gh_ctx_cancel(n, reason);
    return n;
}

int gh_request_done(const gh_request_t *r)
{
    return __atomic_load_n(&r->cancel_reason, __ATOMIC_SEQ_CST);
}

const char *gh_request_method(const gh_request_t *r) { return GH__REQ_HEAD(r) + r->method_off; }
const char *gh_request_target(const gh_request_t *r) { return GH__REQ_HEAD(r) + r->target_off; }
const char *gh_request_proto(const gh_request_t *r) { return GH__REQ_HEAD(r) + r->proto_off; }
int gh_request_proto_major(const gh_request_t *r) { return r->major; }
int gh_request_proto_minor(const gh_request_t *r) { return r->minor; }
const char *gh_request_remote_addr(const gh_request_t *r) { return r->remote ? r->remote : ""; }

const char *gh_request_host(const gh_request_t *r)
{
    if (r->host_copy)
        return r->host_copy;
    return r->host_off ? GH__REQ_HEAD(r) + r->host_off : "";
}

static const char *find_field(const char *base, const gh__hfield_t *f, size_t n, const char *name)
{
    if (!base)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(base + f[i].name_off, name) == 0)
            return base + f[i].value_off;
    return NULL;
}

const char *gh_request_header(const gh_request_t *r, const char *name)
{
    return find_field(GH__REQ_HEAD(r), GH__REQ_FIELDS(r), r->n_fields, name);
}

size_t gh_request_header_count(const gh_request_t *r) { return r->n_fields; }

int gh_request_header_at(const gh_request_t *r, size_t i, const char **name, const char **value)
{
    if (i >= r->n_fields)
        return GH_EINVAL;
    *name = GH__REQ_HEAD(r) + GH__REQ_FIELDS(r)[i].name_off;
    *value = GH__REQ_HEAD(r) + GH__REQ_FIELDS(r)[i].value_off;
    return 0;
}

int64_t gh_request_content_length(const gh_request_t *r) { return r->content_length; }
int gh_request_is_chunked(const gh_request_t *r) { return r->chunked; }

static const char *trailer_base(const gh_request_t *r)
{
    return r->tblock ? GH__REQ_TTEXT(r) : NULL;
}

const char *gh_request_trailer(const gh_request_t *r, const char *name)
{
    return find_field(trailer_base(r), GH__REQ_TFIELDS(r), r->n_tfields, name);
}

size_t gh_request_trailer_count(const gh_request_t *r) { return r->n_tfields; }

int gh_request_trailer_at(const gh_request_t *r, size_t i, const char **name, const char **value)
{
    if (i >= r->n_tfields)
        return GH_EINVAL;
    const char *b = trailer_base(r);
    *name = b + GH__REQ_TFIELDS(r)[i].name_off;
    *value = b + GH__REQ_TFIELDS(r)[i].value_off;
    return 0;
}
