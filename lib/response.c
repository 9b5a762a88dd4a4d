/*
 * lib/response.c: the response writer (Go's response + chunkWriter).
 *
 * Write chain: handler -> conn->prebuf (2 KiB, until the header is committed) ->
 * conn->bufw (4 KiB) -> conn_check_write -> the descriptor. Keeping the pre-chunking
 * buffer on the connection, not on each response as Go does, saves a 2 KiB allocation
 * per request; it is free again once the header is committed. In the default stage
 * both are the serving thread's write scratch slot, lent for the handler's run
 * (conn.c: lend_write_slot), so an idle connection holds neither.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "internal.h"

static const size_t resp_ptrs[] = {
    offsetof(struct gh_response_s, conn),     offsetof(struct gh_response_s, req),
    offsetof(struct gh_response_s, req_body), offsetof(struct gh_response_s, hdr_ext),
    offsetof(struct gh_response_s, x),
};
static const char *const resp_names[] = {"conn", "req", "reqBody", "header", "extra"};
gh_type_t gh__response_type =
    GH_TYPE_INIT_NAMED("response", struct gh_response_s, resp_ptrs, resp_names);

static const size_t x_ptrs[] = {offsetof(struct gh__resp_extra, trailers),
                                offsetof(struct gh__resp_extra, cn),
                                offsetof(struct gh__resp_extra, cn_fd)};
static const char *const x_names[] = {"trailers", "closeNotify", "closeNotifyFd"};
gh_type_t gh__resp_extra_type =
    GH_TYPE_INIT_NAMED("responseExtra", struct gh__resp_extra, x_ptrs, x_names);

gh__resp_extra_t *gh__resp_extra(gh_response_t *w)
{
    gh_conn_t *c = w->conn;
    pthread_mutex_lock(&c->mu);
    gh__resp_extra_t *x = w->x;
    pthread_mutex_unlock(&c->mu);
    if (x)
        return x;
    x = gh_obj_new(&gh__resp_extra_type);
    if (!x)
        return NULL;
    pthread_mutex_lock(&c->mu);
    if (!w->x)
        w->x = x;
    x = w->x;
    pthread_mutex_unlock(&c->mu);
    return x;
}

/* Reason phrases: every code of the IANA HTTP Status Code Registry, with the phrases of
 * RFC 9110 §15 (so 413 "Content Too Large", not Go's older "Request Entity Too Large"). */
const char *gh_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 306: return "Unused";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: return "";
    }
}

const char *gh__status_text(int status)
{
    const char *t = gh_status_text(status);
    return *t ? t : "status code";
}

void gh__http_date(char out[30])
{
    static __thread time_t cached_sec;
    static __thread char cached[30];
    time_t now = time(NULL);
    if (now != cached_sec || !cached[0]) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof cached, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_sec = now;
    }
    memcpy(out, cached, 30);
}

gh_response_t *gh__response_new(gh_conn_t *c, gh_request_t *r)
{
    gh_response_t *w = gh_obj_new(&gh__response_type);
    if (!w)
        return NULL;
    w->conn = c;
    w->req = r;
    w->declared_len = -1;
    w->body_allowed = 1;
    w->can_continue = r->expect_continue;
    if (r->expect_continue && r->body)
        r->body->resp = w;
    /* Before Go PR #70756 every request got its CloseNotify channel up front. */
    gh_hijack_stage_t stage = gh__server_config(c->server)->hijack_stage;
    if ((stage == GH_HIJACK_BEFORE || stage == GH_HIJACK_WRITER) && !gh__close_notify_make(w))
        return NULL;
    return w;
}

/* ---- header block: "Name: value\r\n" lines, inline while small ---------------------- */

static char *hdr_bytes(gh_response_t *w) { return w->hdr_ext ? w->hdr_ext : w->inline_hdr; }

static int valid_name(const char *n) { return n && gh__is_token(n, strlen(n)); }

static int valid_value(const char *v)
{
    if (!v)
        return 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0; /* CR/LF would let a value inject headers */
    return 1;
}

/* Find the line of `name` starting at or after offset *pos. Returns its offset and
 * length, or -1. */
static long find_line(gh_response_t *w, const char *name, size_t from, size_t *linelen)
{
    const char *b = hdr_bytes(w);
    size_t nl = strlen(name);
    size_t i = from;
    while (i < w->hdr_len) {
        const char *e = memchr(b + i, '\n', w->hdr_len - i);
        size_t len = (size_t)(e - (b + i)) + 1;
        if (len > nl + 1 && b[i + nl] == ':' && strncasecmp(b + i, name, nl) == 0) {
            *linelen = len;
            return (long)i;
        }
        i += len;
    }
    return -1;
}

static int has_header(gh_response_t *w, const char *name)
{
    size_t len;
    return find_line(w, name, 0, &len) >= 0;
}

int gh_response_header_del(gh_response_t *w, const char *name)
{
    int n = 0;
    size_t len;
    long at;
    if (w->committed)
        return 0;
    while ((at = find_line(w, name, 0, &len)) >= 0) {
        char *b = hdr_bytes(w);
        memmove(b + at, b + at + len, w->hdr_len - (size_t)at - len);
        w->hdr_len -= (uint32_t)len;
        n++;
    }
    if (n && strcasecmp(name, "content-length") == 0)
        w->declared_len = -1; /* the length is no longer promised */
    return n;
}

int gh_response_header_add(gh_response_t *w, const char *name, const char *value)
{
    if (w->handler_done)
        return GH_EHANDLERDONE;
    if (w->hijacked)
        return GH_EHIJACKED;
    if (w->committed)
        return GH_EBUSY;
    if (!valid_name(name) || !valid_value(value))
        return GH_EINVAL;
    size_t nl = strlen(name), vl = strlen(value);
    size_t need = w->hdr_len + nl + 2 + vl + 2;
    size_t cap = w->hdr_ext ? w->hdr_cap : GH__INLINE_HDR;
    if (need > cap) {
        size_t ncap = cap * 2;
        while (ncap < need)
            ncap *= 2;
        char *nb = gh_bytes_new(ncap);
        if (!nb)
            return GH_ENOMEM;
        memcpy(nb, hdr_bytes(w), w->hdr_len);
        w->hdr_ext = nb;
        w->hdr_cap = (uint32_t)ncap;
    }
    char *b = hdr_bytes(w) + w->hdr_len;
    memcpy(b, name, nl);
    b[nl] = ':';
    b[nl + 1] = ' ';
    memcpy(b + nl + 2, value, vl);
    b[nl + 2 + vl] = '\r';
    b[nl + 3 + vl] = '\n';
    w->hdr_len = (uint32_t)need;
    if (strcasecmp(name, "content-length") == 0) {
        /* A declared length is enforced (Go: ErrContentLength). */
        char *end;
        long long v = strtoll(value, &end, 10);
        if (*value && !*end && v >= 0)
            w->declared_len = v;
    }
    return 0;
}

int gh_response_header_set(gh_response_t *w, const char *name, const char *value)
{
    if (!w->committed && !w->handler_done && valid_name(name) && valid_value(value)) {
        gh_response_header_del(w, name);
        if (strcasecmp(name, "content-length") == 0)
            w->declared_len = -1;
    }
    return gh_response_header_add(w, name, value);
}

const char *gh_response_header_get(const gh_response_t *w, const char *name)
{
    /* Values are returned from a per-thread copy: the block holds no NULs. */
    static __thread char out[1024];
    size_t len;
    long at = find_line((gh_response_t *)w, name, 0, &len);
    if (at < 0)
        return NULL;
    const char *b = hdr_bytes((gh_response_t *)w) + at + strlen(name) + 1;
    size_t vl = len - strlen(name) - 1 - 2;
    while (vl && *b == ' ') {
        b++;
        vl--;
    }
    if (vl >= sizeof out)
        vl = sizeof out - 1;
    memcpy(out, b, vl);
    out[vl] = 0;
    return out;
}

int gh_response_trailer_set(gh_response_t *w, const char *name, const char *value)
{
    if (w->handler_done)
        return GH_EHANDLERDONE;
    if (w->hijacked)
        return GH_EHIJACKED;
    if (!valid_name(name) || !valid_value(value))
        return GH_EINVAL;
    if (w->committed && !w->chunking)
        return GH_EBUSY;
    gh__resp_extra_t *x = gh__resp_extra(w);
    if (!x)
        return GH_ENOMEM;
    size_t nl = strlen(name), vl = strlen(value);
    size_t need = x->trailers_len + nl + vl + 4;
    if (need > x->trailers_cap) {
        size_t ncap = x->trailers_cap ? x->trailers_cap * 2 : 128;
        while (ncap < need)
            ncap *= 2;
        char *nb = gh_bytes_new(ncap);
        if (!nb)
            return GH_ENOMEM;
        if (x->trailers_len)
            memcpy(nb, x->trailers, x->trailers_len);
        x->trailers = nb;
        x->trailers_cap = (uint32_t)ncap;
    }
    char *b = x->trailers + x->trailers_len;
    memcpy(b, name, nl);
    memcpy(b + nl, ": ", 2);
    memcpy(b + nl + 2, value, vl);
    memcpy(b + nl + 2 + vl, "\r\n", 2);
    x->trailers_len = (uint32_t)need;
    return 0;
}

int gh_response_status(const gh_response_t *w) { return w->status; }
void gh_response_close_after(gh_response_t *w) { w->close_after = 1; }

/* ---- content sniffing (the WHATWG algorithm's common part, as Go's DetectContentType) -- */

static int prefix_ci(const unsigned char *p, size_t n, const char *sig)
{
    size_t k = strlen(sig);
    if (n < k)
        return 0;
    for (size_t i = 0; i < k; i++) {
        unsigned char a = p[i], b = (unsigned char)sig[i];
        if (a >= 'a' && a <= 'z')
            a = (unsigned char)(a - 32);
        if (a != b)
            return 0;
    }
    return 1;
}

const char *gh__sniff_type(const char *data, size_t n)
{
    const unsigned char *p = (const unsigned char *)data;
    static const struct {
        const char *sig;
        size_t len;
        const char *type;
    } exact[] = {
        {"\xFE\xFF", 2, "text/plain; charset=utf-16be"},
        {"\xFF\xFE", 2, "text/plain; charset=utf-16le"},
        {"\xEF\xBB\xBF", 3, "text/plain; charset=utf-8"},
        {"%PDF-", 5, "application/pdf"},
        {"%!PS-Adobe-", 11, "application/postscript"},
        {"GIF87a", 6, "image/gif"},
        {"GIF89a", 6, "image/gif"},
        {"\x89PNG\x0D\x0A\x1A\x0A", 8, "image/png"},
        {"\xFF\xD8\xFF", 3, "image/jpeg"},
        {"BM", 2, "image/bmp"},
        {"\x00\x00\x01\x00", 4, "image/x-icon"},
        {"PK\x03\x04", 4, "application/zip"},
        {"\x1F\x8B\x08", 3, "application/x-gzip"},
        {"\x00asm", 4, "application/wasm"},
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (n >= exact[i].len && memcmp(p, exact[i].sig, exact[i].len) == 0)
            return exact[i].type;
    if (n >= 14 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBPVP", 6) == 0)
        return "image/webp";
    size_t ws = 0;
    while (ws < n && (p[ws] == '\t' || p[ws] == '\n' || p[ws] == '\f' || p[ws] == '\r' || p[ws] == ' '))
        ws++;
    static const char *const html[] = {"<!DOCTYPE HTML", "<HTML", "<HEAD", "<SCRIPT", "<IFRAME",
                                       "<H1", "<DIV", "<FONT", "<TABLE", "<A", "<STYLE",
                                       "<TITLE", "<B", "<BODY", "<BR", "<P", "<!--"};
    for (size_t i = 0; i < sizeof html / sizeof html[0]; i++) {
        size_t k = strlen(html[i]);
        /* the tag must end: a space or '>' follows */
        if (prefix_ci(p + ws, n - ws, html[i]) && n - ws > k &&
            (p[ws + k] == ' ' || p[ws + k] == '>'))
            return "text/html; charset=utf-8";
    }
    if (n - ws >= 5 && memcmp(p + ws, "<?xml", 5) == 0)
        return "text/xml; charset=utf-8";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        if (ch <= 0x08 || ch == 0x0B || (ch >= 0x0E && ch <= 0x1A) || (ch >= 0x1C && ch <= 0x1F))
            return "application/octet-stream";
    }
    return "text/plain; charset=utf-8";
}

/* ---- committing the header ----------------------------------------------------------- */

static int body_allowed_for(int status)
{
    return !((status >= 100 && status < 200) || status == 204 || status == 304);
}

static int response_wants_close(gh_response_t *w)
{
    gh_request_t *r = w->req;
    gh_conn_t *c = w->conn;
    const gh_server_config_t *cfg = gh__server_config(c->server);
    if (w->close_after || r->want_close || cfg->disable_keepalive || gh__server_stopping(c->server))
        return 1;
    size_t len;
    long at = find_line(w, "connection", 0, &len);
    if (at >= 0) {
        const char *b = hdr_bytes(w) + at;
        for (size_t i = 0; i + 5 <= len; i++)
            if (strncasecmp(b + i, "close", 5) == 0)
                return 1;
    }
    /* A large unread body will not be drained: say so up front (Go does the same). */
    gh__body_t *body = r->body;
    if (body && !body->done && !body->chunked && (uint64_t)body->remaining > cfg->max_body_drain)
        return 1;
    /* An unread chunked body has no known size while the handler runs (it may still
     * read it): the connection ends with this response. When the handler returned
     * first, gh__response_finish drained it before committing (drain_unread_body). */
    if (body && !body->done && body->chunked)
        return 1;
    /* A body that failed to read (bad framing, short body, timeout) leaves the stream
     * position unknown: the connection ends with this response. */
    if (body && body->err)
        return 1;
    /* The client still waits for 100 Continue and will not send the body: the
     * connection cannot be reused (Go: Connection: close). */
    if (body && !body->done && r->expect_continue && !w->sent_continue)
        return 1;
    if (r->major == 2)
        return 1; /* an un-hijacked PRI preface */
    return 0;
}

/* commit's arguments: more (more_n bytes) is the write that overflowed the
 * pre-chunking buffer, not yet sent: the sniffer sees the body's first 512 bytes across
 * both, as Go's (whose chunkWriter gets them in one piece from its bufio.Writer). */
/* The handler returned without reading its whole request body: drain up to
 * max_body_drain (256 KiB, Go's maxPostHandlerReadBytes) before the header is committed,
 * as Go's chunkWriter.writeHeader does, so that a body that does not end there is
 * announced with Connection: close (a chunked body's size is known only at its end). A
 * client still waiting for 100 Continue sends nothing: gh__body_drain refuses, and
 * response_wants_close says close. */
static void drain_unread_body(gh_response_t *w)
{
    gh__body_t *body = w->req->body;
    if (!body || body->done || body->err || w->close_after)
        return;
    const gh_server_config_t *cfg = gh__server_config(w->conn->server);
    if (!body->chunked && (uint64_t)body->remaining > cfg->max_body_drain)
        return; /* announced by response_wants_close */
    if (gh__body_drain(body, cfg->max_body_drain) < 0)
        w->close_after = 1;
}

static int commit(gh_response_t *w, int final, const char *more, size_t more_n)
{
    gh_conn_t *c = w->conn;
    gh_request_t *r = w->req;
    gh_writer_t *bw = c->bufw;
    int is11 = r->major == 1 && r->minor >= 1;
    char line[160];
    int n;

    w->can_continue = 0;
    w->body_allowed = body_allowed_for(w->status) && w->status != 101;
    /* We choose the framing; a Transfer-Encoding from the handler is not trusted. */
    gh_response_header_del(w, "transfer-encoding");
    if (w->status == 204 || (w->status >= 100 && w->status < 200)) {
        gh_response_header_del(w, "content-length");
        w->declared_len = -1;
    }
    /* Like Go, name the type of an untyped body from its first bytes (up to 512). */
    if (w->body_allowed && w->pre_len + more_n > 0 && !has_header(w, "content-type") &&
        !has_header(w, "content-encoding")) {
        char first[512];
        size_t k = w->pre_len < sizeof first ? w->pre_len : sizeof first;
        if (k)
            memcpy(first, c->prebuf, k);
        size_t m = more_n < sizeof first - k ? more_n : sizeof first - k;
        if (m)
            memcpy(first + k, more, m);
        gh_response_header_add(w, "Content-Type", gh__sniff_type(first, k + m));
    }
    w->committed = 1;

    int close = response_wants_close(w);
    char extra[200];
    size_t el = 0;
    if (!has_header(w, "date")) {
        char d[30];
        gh__http_date(d);
        el += (size_t)snprintf(extra + el, sizeof extra - el, "Date: %s\r\n", d);
    }
    int length_known = w->declared_len >= 0;
    if (w->body_allowed || (r->is_head && w->status != 101)) {
        if (!length_known && final && !(w->x && w->x->trailers_len) &&
            (!r->is_head || w->pre_len > 0 || w->written > 0)) {
            el += (size_t)snprintf(extra + el, sizeof extra - el, "Content-Length: %lld\r\n",
                                   (long long)(r->is_head ? w->written : (int64_t)w->pre_len));
            length_known = 1;
        } else if (!length_known && !r->is_head) {
            if (is11) {
                w->chunking = 1;
                el += (size_t)snprintf(extra + el, sizeof extra - el,
                                       "Transfer-Encoding: chunked\r\n");
            } else {
                close = 1; /* HTTP/1.0: the body ends when the connection does */
            }
        } else if (!length_known && r->is_head && !final) {
            close = close || !is11;
        }
    }
    if (close) {
        w->close_after = 1;
        if (!has_header(w, "connection"))
            el += (size_t)snprintf(extra + el, sizeof extra - el, "Connection: close\r\n");
    } else if (!is11) {
        el += (size_t)snprintf(extra + el, sizeof extra - el, "Connection: keep-alive\r\n");
    }
    n = snprintf(line, sizeof line, "HTTP/1.%d %d %s\r\n", is11 ? 1 : 0, w->status,
                 gh__status_text(w->status));
    if (gh_writer_write(bw, line, (size_t)n) < 0 ||
        gh_writer_write(bw, hdr_bytes(w), w->hdr_len) < 0 ||
        gh_writer_write(bw, extra, el) < 0 || gh_writer_write(bw, "\r\n", 2) < 0)
        return w->err = gh_writer_error(bw) ? gh_writer_error(bw) : GH_EPIPE;
    return 0;
}

static ssize_t emit(gh_response_t *w, const void *buf, size_t n)
{
    gh_writer_t *bw = w->conn->bufw;
    if (n == 0)
        return 0;
    if (w->chunking) {
        char h[24];
        int hl = snprintf(h, sizeof h, "%zx\r\n", n);
        if (gh_writer_write(bw, h, (size_t)hl) < 0 || gh_writer_write(bw, buf, n) < 0 ||
            gh_writer_write(bw, "\r\n", 2) < 0)
            return w->err = gh_writer_error(bw);
        return (ssize_t)n;
    }
    if (gh_writer_write(bw, buf, n) < 0)
        return w->err = gh_writer_error(bw);
    return (ssize_t)n;
}

/* Commit and push out what the pre-chunking buffer holds. */
static int commit_and_drain(gh_response_t *w, int final, const char *more, size_t more_n)
{
    int rc = commit(w, final, more, more_n);
    if (rc < 0)
        return rc;
    if (w->pre_len) {
        size_t k = w->pre_len;
        w->pre_len = 0;
        if (w->body_allowed && emit(w, w->conn->prebuf, k) < 0)
            return w->err;
    }
    return 0;
}

int gh_response_write_header(gh_response_t *w, int status)
{
    if (w->handler_done)
        return GH_EHANDLERDONE;
    if (w->hijacked)
        return GH_EHIJACKED;
    if (status < 100 || status > 999)
        return GH_EINVAL;
    if (w->wrote_header)
        return GH_EBUSY;
    if (status >= 100 && status < 200 && status != 101) {
        /* Informational (RFC 9110 §15.2): written and flushed now; the header map is
         * kept for the final response (Go 1.19+). */
        gh_conn_t *c = w->conn;
        char line[64];
        int n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, gh__status_text(status));
        if (gh_writer_write(c->bufw, line, (size_t)n) < 0 ||
            gh_writer_write(c->bufw, hdr_bytes(w), w->hdr_len) < 0 ||
            gh_writer_write(c->bufw, "\r\n", 2) < 0 || gh_writer_flush(c->bufw) < 0)
            return w->err = gh_writer_error(c->bufw);
        if (status == 100)
            w->sent_continue = 1;
        return 0;
    }
    w->status = status;
    w->wrote_header = 1;
    w->can_continue = 0;
    if (status == 101)
        return commit(w, 1, NULL, 0);
    return 0;
}

ssize_t gh_response_write(gh_response_t *w, const void *buf, size_t n)
{
    if (w->handler_done)
        return GH_EHANDLERDONE;
    if (w->hijacked)
        return GH_EHIJACKED;
    if (w->err)
        return w->err;
    if (!w->wrote_header)
        gh_response_write_header(w, 200);
    if (w->status == 101)
        return GH_EPROTO;
    if (w->declared_len >= 0 && w->written + (int64_t)n > w->declared_len)
        return GH_ECONTENTLENGTH;
    if (!body_allowed_for(w->status) && !w->req->is_head)
        return GH_EINVAL;
    w->written += (int64_t)n;
    if (w->req->is_head && !w->committed) {
        return (ssize_t)n; /* counted for Content-Length, never sent */
    }
    if (!w->committed) {
        gh_conn_t *c = w->conn;
        if (w->pre_len + n <= GH__PREBUF_SIZE) {
            if (!c->prebuf) {
                c->prebuf = gh_bytes_new(GH__PREBUF_SIZE);
                if (!c->prebuf)
                    return GH_ENOMEM;
            }
            memcpy(c->prebuf + w->pre_len, buf, n);
            w->pre_len += (uint32_t)n;
            return (ssize_t)n;
        }
        int rc = commit_and_drain(w, 0, buf, n);
        if (rc < 0)
            return rc;
    }
    if (!w->body_allowed)
        return (ssize_t)n;
    ssize_t k = emit(w, buf, n);
    return k < 0 ? k : (ssize_t)n;
}

/* A body from a file: while the header is not committed and the bytes fit the
 * pre-chunking buffer they are read into it (a small body keeps its Content-Length and
 * its sniffed type); otherwise the header and what is buffered go out, and the kernel
 * sends the file's pages with sendfile(2), inside a chunk when the response is
 * chunked. */
ssize_t gh_response_sendfile(gh_response_t *w, int fd, int64_t off, size_t n)
{
    if (w->hijacked)
        return GH_EHIJACKED;
    if (w->handler_done)
        return GH_EHANDLERDONE;
    if (w->err)
        return w->err;
    if (fd < 0 || off < 0 || n > (size_t)INT64_MAX - (size_t)off)
        return GH_EINVAL;
    if (!w->wrote_header)
        gh_response_write_header(w, 200);
    if (w->status == 101)
        return GH_EPROTO;
    if (w->declared_len >= 0 && w->written + (int64_t)n > w->declared_len)
        return GH_ECONTENTLENGTH;
    if (!body_allowed_for(w->status) && !w->req->is_head)
        return GH_EINVAL;
    if (n == 0)
        return 0;
    gh_conn_t *c = w->conn;
    if (w->req->is_head && !w->committed) {
        w->written += (int64_t)n;
        return (ssize_t)n; /* counted for Content-Length, never sent */
    }
    if (!w->committed && w->pre_len + n <= GH__PREBUF_SIZE) {
        if (!c->prebuf) {
            c->prebuf = gh_bytes_new(GH__PREBUF_SIZE);
            if (!c->prebuf)
                return GH_ENOMEM;
        }
        size_t got = 0;
        while (got < n) {
            ssize_t k = pread(fd, c->prebuf + w->pre_len + got, n - got, (off_t)(off + (int64_t)got));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return k < 0 ? -errno : GH_EOF; /* nothing was accepted */
            got += (size_t)k;
        }
        w->pre_len += (uint32_t)n;
        w->written += (int64_t)n;
        return (ssize_t)n;
    }
    if (!w->committed) {
        /* An untyped body is sniffed from its first bytes: here, the file's. */
        char head[512];
        ssize_t hn = 0;
        if (w->pre_len < sizeof head && !has_header(w, "content-type")) {
            do
                hn = pread(fd, head,
                           n < sizeof head - w->pre_len ? n : sizeof head - w->pre_len,
                           (off_t)off);
            while (hn < 0 && errno == EINTR);
            if (hn < 0)
                hn = 0;
        }
        int rc = commit_and_drain(w, 0, head, (size_t)hn);
        if (rc < 0)
            return rc;
    }
    w->written += (int64_t)n;
    if (!w->body_allowed)
        return (ssize_t)n;
    gh_writer_t *bw = c->bufw;
    if (w->chunking) {
        char h[24];
        int hl = snprintf(h, sizeof h, "%zx\r\n", n);
        if (gh_writer_write(bw, h, (size_t)hl) < 0)
            return w->err = gh_writer_error(bw);
    }
    /* Cork the socket while the header and the file go out (as nginx's tcp_nopush):
     * without it TCP_NODELAY sends the header as a segment of its own and each of
     * sendfile's internal batches as it comes, and the client pays a wake-up per small
     * segment (1 MiB files went 2 to 4 times slower to wrk on loopback). The reference
     * keeps the descriptor number ours while it is used. Not TCP (a Unix socket):
     * setsockopt fails and nothing changes. */
    int one = 1, zero = 0, corked = 0, held = gh_fd_acquire(c->fd) == 0;
    int sfd = held ? gh_fd_fileno(c->fd) : -1;
    if (sfd >= 0)
        corked = setsockopt(sfd, IPPROTO_TCP, TCP_CORK, &one, sizeof one) == 0;
    int64_t pos = off;
    ssize_t k;
    if (gh_writer_flush(bw) < 0)
        k = w->err = gh_writer_error(bw); /* the writer already reported it */
    else
        k = gh__fd_sendfile(c->fd, fd, &pos, n);
    if (corked)
        (void)setsockopt(sfd, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero);
    if (held)
        gh_fd_release(c->fd);
    if (k < 0 && w->err == (int)k)
        return k;
    if (k < 0) {
        /* The file ending early (it shrank) leaves the framing short: the connection
         * cannot be reused. Anything else is the socket's failure. */
        if (k != GH_EOF)
            gh__conn_write_failed(c, (int)k);
        w->close_after = 1;
        return w->err = (int)k;
    }
    if (w->chunking && gh_writer_write(bw, "\r\n", 2) < 0)
        return w->err = gh_writer_error(bw);
    return (ssize_t)n;
}

ssize_t gh_response_puts(gh_response_t *w, const char *s) { return gh_response_write(w, s, strlen(s)); }

ssize_t gh_response_printf(gh_response_t *w, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return GH_EINVAL;
    if ((size_t)n < sizeof small)
        return gh_response_write(w, small, (size_t)n);
    char *big = gh_bytes_new((size_t)n + 1);
    if (!big)
        return GH_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return gh_response_write(w, big, (size_t)n);
}

int gh_response_flush(gh_response_t *w)
{
    if (w->handler_done)
        return GH_EHANDLERDONE;
    if (w->hijacked)
        return GH_EHIJACKED;
    if (w->err)
        return w->err;
    if (!w->wrote_header)
        gh_response_write_header(w, 200);
    if (!w->committed) {
        int rc = commit_and_drain(w, 0, NULL, 0);
        if (rc < 0)
            return rc;
    }
    int rc = gh_writer_flush(w->conn->bufw);
    return rc < 0 ? (w->err = rc) : 0;
}

int gh__response_finish(gh_response_t *w)
{
    if (w->err)
        return w->err;
    /* A handler that ran into its body limit and answered nothing: 413 (Go's
     * MaxBytesReader leaves that to the handler; gchttp answers for it). */
    if (!w->wrote_header && w->req->body && w->req->body->limit_hit)
        (void)gh_response_error(w, "request body too large", 413);
    if (!w->wrote_header)
        gh_response_write_header(w, 200);
    if (!w->committed) {
        drain_unread_body(w);
        int rc = commit_and_drain(w, 1, NULL, 0);
        if (rc < 0)
            return rc;
    }
    gh_writer_t *bw = w->conn->bufw;
    if (w->chunking) {
        /* Last chunk, trailer section, end (RFC 9112 §7.1). */
        if (gh_writer_write(bw, "0\r\n", 3) < 0 ||
            (w->x && w->x->trailers_len &&
             gh_writer_write(bw, w->x->trailers, w->x->trailers_len) < 0) ||
            gh_writer_write(bw, "\r\n", 2) < 0)
            return w->err = gh_writer_error(bw);
    }
    int rc = gh_writer_flush(bw);
    if (rc < 0)
        return w->err = rc;
    return 0;
}

int gh__response_keepalive(const gh_response_t *w)
{
    if (w->close_after || w->err || w->conn->werr)
        return 0;
    /* A declared Content-Length the handler did not fill leaves the client waiting for
     * bytes that will never come: the connection cannot be reused (Go does the same). */
    if (w->declared_len >= 0 && w->written != w->declared_len && !w->req->is_head &&
        w->body_allowed)
        return 0;
    return 1;
}
