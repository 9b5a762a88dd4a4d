/*
 * lib/body.c: the request body (Go's transfer.go body plus expectContinueReader).
 *
 * Reads go through the connection's buffered reader with the read deadline the worker
 * set for this request (ReadTimeout), so a client that stops sending mid-body frees the
 * worker when it expires.
 */
#include "config.h"

#include <string.h>

#include "internal.h"

static const size_t body_ptrs[] = {offsetof(struct gh__body, bufr), offsetof(struct gh__body, conn),
                                   offsetof(struct gh__body, req), offsetof(struct gh__body, resp)};
static const char *const body_names[] = {"bufr", "conn", "req", "resp"};
gh_type_t gh__body_type = GH_TYPE_INIT_NAMED("body", struct gh__body, body_ptrs, body_names);

gh__body_t *gh__body_new(gh_request_t *r, gh_conn_t *c)
{
    gh__body_t *b = gh_obj_new(&gh__body_type);
    if (!b)
        return NULL;
    b->bufr = c->bufr;
    b->conn = c;
    b->req = r;
    b->chunked = r->chunked;
    b->remaining = r->chunked ? 0 : r->content_length;
    b->limit = -1;
    if (b->chunked)
        gh__chunked_init(&b->ch);
    return b;
}

/* The body was read to its end. A hang-up that came while it was arriving was judged
 * with the body still pending (gone); one judged "pipelined bytes" is looked at again
 * now, as Go starts its background read at the body's end. */
static void body_finished(gh__body_t *b)
{
    gh_conn_t *c = b->conn;
    b->done = 1;
    if (!c)
        return;
    __atomic_store_n(&c->body_pending, 0, __ATOMIC_RELEASE);
    /* The handler's thread reads the body: what is buffered after it is a next request. */
    if (!b->closed)
        __atomic_store_n(&c->next_buffered, gh_reader_buffered(b->bufr, NULL) > 0,
                         __ATOMIC_RELEASE);
    if (!b->closed && __atomic_load_n(&c->watching, __ATOMIC_SEQ_CST) &&
        __atomic_load_n(&c->rdhup_seen, __ATOMIC_SEQ_CST))
        gh__conn_eval_hup(c, 0);
}

static int fail(gh__body_t *b, int err)
{
    if (!b->err)
        b->err = err;
    return b->err;
}

/* Read the trailer section of a chunked body into the request (RFC 9112 §7.1.2). */
static int read_trailers(gh__body_t *b)
{
    gh_reader_t *br = b->bufr;
    for (;;) {
        const char *p;
        size_t have = gh_reader_buffered(br, &p);
        size_t nf = 0;
        int status = 0;
        int rc = have ? gh__parse_fields(p, have, gh_reader_size(br), NULL, 0, &nf, &status)
                      : GH_EAGAIN;
        if (rc > 0) {
            size_t fsz = nf * sizeof(gh__hfield_t);
            char *block = gh_bytes_new(fsz + (size_t)rc + 1);
            if (!block)
                return fail(b, GH_ENOMEM);
            char *text = block + fsz;
            memcpy(text, p, (size_t)rc);
            text[rc] = 0;
            gh__hfield_t *f = (gh__hfield_t *)(void *)block;
            size_t n2 = 0;
            gh__parse_fields(text, (size_t)rc, (size_t)rc, f, nf, &n2, &status);
            for (size_t i = 0; i < nf; i++) {
                text[f[i].name_off + f[i].name_len] = 0;
                text[f[i].value_off + f[i].value_len] = 0;
            }
            gh_reader_consume(br, (size_t)rc);
            gh_request_t *r = b->req;
            r->n_tfields = (uint32_t)nf;
            r->tblock = block;
            body_finished(b);
            return 0;
        }
        if (rc != GH_EAGAIN)
            return fail(b, GH_EPROTO);
        ssize_t k = gh_reader_fill(br);
        if (k == GH_EMSGSIZE)
            return fail(b, GH_EPROTO);
        if (k == 0)
            return fail(b, GH_EOF);
        if (k < 0)
            return fail(b, (int)k);
    }
}

static ssize_t read_chunked(gh__body_t *b, char *buf, size_t n)
{
    gh_reader_t *br = b->bufr;
    for (;;) {
        const char *p;
        size_t have = gh_reader_buffered(br, &p);
        if (have) {
            size_t used = 0, off = 0, dlen = 0;
            int rc = gh__chunked_step(&b->ch, p, have, &used, &off, &dlen);
            if (rc < 0)
                return fail(b, GH_EPROTO);
            if (rc == GH__CHUNK_DATA) {
                if (dlen > n) {
                    /* Hand back what does not fit; the decoder resumes in the chunk. */
                    gh__chunked_unread(&b->ch, dlen - n);
                    used -= dlen - n;
                    dlen = n;
                }
                memcpy(buf, p + off, dlen);
                gh_reader_consume(br, used);
                b->total += dlen;
                if (dlen)
                    return (ssize_t)dlen;
                continue;
            }
            gh_reader_consume(br, used);
            if (rc == GH__CHUNK_TRAILERS) {
                int e = read_trailers(b);
                return e < 0 ? e : 0;
            }
            /* GH__CHUNK_NEED: everything buffered was framing. */
        }
        ssize_t k = gh_reader_fill(br);
        if (k == 0)
            return fail(b, GH_EOF);
        if (k < 0)
            return fail(b, (int)k);
    }
}

static void maybe_continue(gh__body_t *b)
{
    gh_response_t *w = b->resp;
    if (!w || w->sent_continue || !w->can_continue)
        return;
    w->sent_continue = 1;
    w->can_continue = 0;
    /* RFC 9110 §10.1.1: the interim answer tells the client to send the body. */
    gh_writer_t *bw = w->conn->bufw;
    if (gh_writer_puts(bw, "HTTP/1.1 100 Continue\r\n\r\n") >= 0)
        (void)gh_writer_flush(bw);
}

static ssize_t body_read(gh__body_t *b, void *buf, size_t n);

int gh_request_limit_body(gh_request_t *r, int64_t max)
{
    if (max < 0)
        return GH_EINVAL;
    if (r->body && (r->body->limit < 0 || max < r->body->limit))
        r->body->limit = max;
    return 0;
}

ssize_t gh_request_read(gh_request_t *r, void *buf, size_t n)
{
    gh__body_t *b = r->body;
    if (!b || b->limit < 0)
        return body_read(b, buf, n);
    if (b->limit_hit)
        return GH_EBODYLIMIT;
    /* Go's maxBytesReader: ask for one byte more than the limit allows, so that a body
     * of exactly the limit ends cleanly and a longer one is caught. */
    uint64_t left = (uint64_t)b->limit - (uint64_t)b->total;
    if (n > left + 1)
        n = (size_t)(left + 1);
    ssize_t k = body_read(b, buf, n);
    if (k <= 0 || (uint64_t)k <= left)
        return k;
    /* Past the limit: what fits is handed out, the error comes with the next read. The
     * connection cannot be reused (its body is not read to the end). */
    b->limit_hit = 1;
    b->total = (size_t)b->limit;
    if (!b->err)
        b->err = GH_EBODYLIMIT;
    return left ? (ssize_t)left : GH_EBODYLIMIT;
}

static ssize_t body_read(gh__body_t *b, void *buf, size_t n)
{
    if (!b)
        return 0;
    if (b->closed)
        return b->closed;
    if (b->err)
        return b->err;
    if (b->done || n == 0)
        return 0;
    maybe_continue(b);
    if (b->chunked)
        return read_chunked(b, buf, n);
    if ((int64_t)n > b->remaining)
        n = (size_t)b->remaining;
    ssize_t k = gh_reader_read(b->bufr, buf, n);
    if (k == 0)
        return fail(b, GH_EOF); /* the client closed before the declared length */
    if (k < 0)
        return fail(b, (int)k);
    b->remaining -= k;
    b->total += (size_t)k;
    if (b->remaining == 0)
        body_finished(b);
    return k;
}

ssize_t gh_request_read_all(gh_request_t *r, size_t max, char **out)
{
    size_t cap = r->content_length > 0 && (uint64_t)r->content_length <= max
                     ? (size_t)r->content_length + 1
                     : (max < 1024 ? max + 1 : 1024);
    size_t len = 0;
    char *buf = gh_bytes_new(cap);
    if (!buf)
        return GH_ENOMEM;
    for (;;) {
        if (len + 1 == cap) {
            if (cap - 1 >= max) {
                /* Full: a body of exactly max bytes ends here, a larger one does not. */
                char probe;
                ssize_t k = gh_request_read(r, &probe, 1);
                if (k < 0)
                    return k;
                if (k == 0)
                    break;
                return GH_EBODYLIMIT;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = gh_bytes_new(ncap);
            if (!nb)
                return GH_ENOMEM;
            memcpy(nb, buf, len);
            buf = nb;
            cap = ncap;
        }
        ssize_t k = gh_request_read(r, buf + len, cap - 1 - len);
        if (k < 0)
            return k;
        if (k == 0)
            break;
        len += (size_t)k;
    }
    buf[len] = 0;
    *out = buf;
    return (ssize_t)len;
}

int gh__body_drain(gh__body_t *b, size_t max)
{
    char tmp[4096];
    size_t left = max;
    if (b->closed == GH_EHIJACKED)
        return GH_EHIJACKED;
    gh_response_t *w = b->resp;
    /* A client still waiting for 100 Continue will not send its body: the connection
     * cannot be reused (Go: shouldReuseConnection). */
    if (w && !w->sent_continue && b->req->expect_continue && !b->done)
        return GH_EBUSY;
    b->resp = NULL;
    while (!b->done && !b->err) {
        size_t want = left < sizeof tmp ? left : sizeof tmp;
        if (want == 0)
            return GH_EBODYLIMIT;
        ssize_t k = gh_request_read(b->req, tmp, want);
        if (k <= 0)
            break;
        left -= (size_t)k;
    }
    return b->done && !b->err ? 0 : (b->err ? b->err : GH_EBODYLIMIT);
}
