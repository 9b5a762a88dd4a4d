/*
 * lib/conn.c: one connection's request loop (Go's conn.serve), the connReader, the
 * server's own error answers, the hang-up evaluation while a handler runs, ConnState
 * reports and the gh_conn_* accessors.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

static const size_t conn_ptrs[] = {
    offsetof(struct gh_conn_s, server), offsetof(struct gh_conn_s, fd),
    offsetof(struct gh_conn_s, r),      offsetof(struct gh_conn_s, bufr),
    offsetof(struct gh_conn_s, bufw),   offsetof(struct gh_conn_s, cur_req),
    offsetof(struct gh_conn_s, ctx),    offsetof(struct gh_conn_s, remote),
    offsetof(struct gh_conn_s, local),  offsetof(struct gh_conn_s, big_head),
    offsetof(struct gh_conn_s, prebuf), offsetof(struct gh_conn_s, tnext),
    offsetof(struct gh_conn_s, tprev),  offsetof(struct gh_conn_s, head_block),
};
static const char *const conn_names[] = {"server", "fd",     "r",      "bufr",   "bufw",
                                         "curReq", "ctx",    "remote", "local",  "bigHead",
                                         "prebuf", "tnext",  "tprev",  "headBlock"};
gh_type_t gh__conn_type = GH_TYPE_INIT_NAMED("conn", struct gh_conn_s, conn_ptrs, conn_names);

static const size_t cr_ptrs[] = {offsetof(struct gh__conn_reader, conn)};
static const char *const cr_names[] = {"conn"};
gh_type_t gh__conn_reader_type =
    GH_TYPE_INIT_NAMED("connReader", struct gh__conn_reader, cr_ptrs, cr_names);

/* Go's checkConnErrorWriter: the sink of conn->bufw. The first write error is kept in
 * werr and cancels the request in progress, so a handler blocked on its context
 * learns that the client is gone. */
static ssize_t conn_check_write(void *self, const void *buf, size_t n)
{
    gh_conn_t *c = self;
    ssize_t k = GH__CONN_TR(c)->write(c->fd, buf, n);
    if (k < 0)
        gh__conn_write_failed(c, (int)k);
    return k;
}

gh_conn_t *gh__conn_new(gh_server_t *s, int fd, unsigned long id)
{
    gh_conn_t *c = gh_obj_new(&gh__conn_type);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->server = s;
    c->id = id;
    c->fdnum = fd;
    c->state = -1; /* nothing reported yet: GH_STATE_NEW is 0, and must be reported */
    c->fd = gh__fd_new_socket(fd); /* accept4 made it non-blocking */
    c->r = gh_obj_new(&gh__conn_reader_type);
    c->ctx = gh_ctx_new(NULL);
    if (!c->fd || !c->r || !c->ctx)
        return NULL;
    c->r->conn = c;
    c->bufr = gh_reader_new(c->r, gh__conn_reader_read, 0);
    c->bufw = gh_writer_new(c, conn_check_write, 0);
    if (!c->bufr || !c->bufw)
        return NULL;
    /* Go 1.23 allocates the connection's 4 KiB writer when it starts serving; the
     * `before` stage of the retention study reproduces that. Later stages, like
     * gchttp's default, allocate it on first write. */
    if (gh__server_config(s)->hijack_stage == GH_HIJACK_BEFORE && gh__writer_alloc(c->bufw) < 0)
        return NULL;
    /* The default stage holds no buffer while the connection waits (nginx does the same
     * for keep-alive): heads are read through the thread's scratch slot, responses are
     * written through its write slot. The earlier stages keep the buffers they model. */
    c->lean = gh__server_config(s)->hijack_stage == GH_HIJACK_RELEASE;
    return c;
}

void gh__conn_write_failed(gh_conn_t *c, int err)
{
    pthread_mutex_lock(&c->mu);
    if (!c->werr)
        c->werr = (int16_t)err;
    gh_response_t *w = c->cur_req;
    pthread_mutex_unlock(&c->mu);
    if (w)
        gh__request_cancel(w->req, err == GH_ETIMEDOUT ? GH_ETIMEDOUT : GH_EPIPE);
}

void gh__conn_peer_gone(gh_conn_t *c)
{
    pthread_mutex_lock(&c->mu);
    c->peer_gone = 1;
    __atomic_store_n(&c->watching, 0, __ATOMIC_SEQ_CST);
    gh_response_t *w = c->cur_req;
    pthread_mutex_unlock(&c->mu);
    if (w) {
        gh__request_cancel(w->req, GH_ECONNRESET);
        gh__close_notify_fire(w);
    }
}

/* The connReader (Go: connReader.Read). While the poller assembles a request head it
 * reads without blocking; a worker reads with the descriptor's deadlines. A read error
 * while a handler runs means the client is gone (Go: handleReadError). */
ssize_t gh__conn_reader_read(void *self, void *buf, size_t n)
{
    gh__conn_reader_t *cr = self;
    gh_conn_t *c = cr->conn;
    if (!c)
        return GH_EBADF;
    ssize_t k = GH__CONN_TR(c)->read(c->fd, buf, n, c->read_nowait);
    /* A short read left the socket empty: see gh__conn_next. */
    c->drained = k == GH_EAGAIN || (k >= 0 && (size_t)k < n);
    /* End of stream counts too: while a request is being served the client closing
     * its side means it is gone (Go: handleReadError sees io.EOF). */
    if (k <= 0 && k != GH_EAGAIN && k != GH_ETIMEDOUT) {
        pthread_mutex_lock(&c->mu);
        gh_response_t *w = c->cur_req;
        pthread_mutex_unlock(&c->mu);
        if (w && !w->handler_done) {
            gh__request_cancel(w->req, GH_ECONNRESET);
            gh__close_notify_fire(w);
        }
    }
    return k;
}

/* ---- request heads ------------------------------------------------------------------ */

static int big_append(gh_conn_t *c, const char *p, size_t n, size_t limit)
{
    if (c->big_len + n > c->big_cap) {
        size_t cap = c->big_cap ? c->big_cap : 8192;
        while (cap < c->big_len + n)
            cap *= 2;
        if (cap > limit + 8192)
            cap = limit + 8192;
        if (cap < c->big_len + n)
            return GH_EMSGSIZE;
        char *nb = gh_bytes_new(cap);
        if (!nb)
            return GH_ENOMEM;
        if (c->big_len)
            memcpy(nb, c->big_head, c->big_len);
        c->big_head = nb;
        c->big_cap = (uint32_t)cap;
    }
    memcpy(c->big_head + c->big_len, p, n);
    c->big_len += (uint32_t)n;
    return 0;
}

/* A lean connection with nothing buffered reads through the thread's scratch slot. A
 * head that arrives whole (the usual keep-alive request) goes straight into its
 * request's block, which the request needs anyway, so it costs no buffer; only bytes
 * past it (a body, a pipelined request) or a partial head are copied into bufr.
 * Returns as gh__conn_poll_head does, or 2: bytes are in bufr now (or the slot was not
 * available), go on the usual way. */
static int poll_head_scratch(gh_conn_t *c, size_t max)
{
    size_t cap = gh__reader_cap(c->bufr);
    char *sc = gh__scratch_take(GH__SCRATCH_READ, cap);
    if (!sc)
        return 2;
    ssize_t k = gh__conn_reader_read(c->r, sc, cap);
    int rc;
    if (k <= 0) {
        rc = k == GH_EAGAIN ? 0 : -1; /* EOF or an error ends the connection */
    } else {
        gh__reqhead_t h;
        int status = 0;
        int hl = gh__parse_request_head(sc, (size_t)k, max, &h, NULL, 0, &status);
        if (hl > 0) {
            size_t fsz = (size_t)h.n_fields * sizeof(gh__hfield_t);
            char *block = gh_bytes_new(fsz + (size_t)hl + 1);
            rc = block ? 1 : -1;
            if (block) {
                memcpy(block + fsz, sc, (size_t)hl);
                if ((size_t)k > (size_t)hl &&
                    gh__reader_keep(c->bufr, sc + hl, (size_t)k - (size_t)hl) < 0)
                    rc = -1;
                c->head_block = block;
                c->head_len = (uint32_t)hl;
                c->head_nfields = (uint32_t)h.n_fields;
                c->head_status = 0;
            }
        } else if (hl != GH_EAGAIN) {
            c->head_len = 0;
            c->head_nfields = 0;
            c->head_status = (int16_t)status;
            rc = 1;
        } else {
            /* Part of a head: it waits in bufr for the rest. */
            rc = gh__reader_unread(c->bufr, sc, (size_t)k) < 0 ? -1 : 2;
        }
    }
    gh__scratch_give(GH__SCRATCH_READ);
    return rc;
}

int gh__conn_poll_head(gh_conn_t *c)
{
    const gh_server_config_t *cfg = gh__server_config(c->server);
    size_t max = cfg->max_header_bytes;
    gh__reqhead_t h;
    int status = 0;
    c->read_nowait = 1;
    if (c->lean && c->big_len == 0 && gh_reader_size(c->bufr) == 0) {
        int rc = poll_head_scratch(c, max);
        if (rc != 2) {
            c->read_nowait = 0;
            return rc;
        }
    }
    for (;;) { /* edge-triggered: read until EAGAIN, a complete head or an error */
        const char *p;
        size_t have = gh_reader_buffered(c->bufr, &p);
        if (c->big_len == 0 && have) {
            int rc = gh__parse_request_head(p, have, max, &h, NULL, 0, &status);
            if (rc > 0 || rc != GH_EAGAIN) {
                c->head_len = rc > 0 ? (uint32_t)rc : 0;
                c->head_nfields = rc > 0 ? (uint32_t)h.n_fields : 0;
                c->head_status = (int16_t)(rc > 0 ? 0 : status);
                c->read_nowait = 0;
                return 1;
            }
            if (have == gh__reader_cap(c->bufr)) {
                /* The head outgrows the buffer: accumulate it on the side (RFC 9112
                 * sets no limit; max_header_bytes does). */
                if (big_append(c, p, have, max) < 0) {
                    c->head_status = 431;
                    c->read_nowait = 0;
                    return 1;
                }
                gh_reader_consume(c->bufr, have);
                have = 0;
            }
        } else if (c->big_len && have) {
            size_t old = c->big_len;
            if (big_append(c, p, have, max) < 0) {
                c->head_status = 431;
                c->read_nowait = 0;
                return 1;
            }
            gh_reader_consume(c->bufr, have);
            /* Re-parse only once the end of the head may be here: scanning the whole
             * accumulated head on every read would cost O(n^2) against a client that
             * trickles a large head. */
            size_t from = old >= 3 ? old - 3 : 0;
            if (!memmem(c->big_head + from, c->big_len - from, "\r\n\r\n", 4) &&
                c->big_len <= max) {
                have = 0;
                goto fill;
            }
            int rc = gh__parse_request_head(c->big_head, c->big_len, max, &h, NULL, 0, &status);
            if (rc > 0) {
                /* Bytes past the head (body, next request) go back to bufr, which was
                 * just emptied; they came from a single read, so they fit. */
                size_t extra = c->big_len - (size_t)rc;
                gh__reader_unread(c->bufr, c->big_head + rc, extra);
                c->big_len = (uint32_t)rc;
                c->head_len = (uint32_t)rc;
                c->head_nfields = (uint32_t)h.n_fields;
                c->head_status = 0;
                c->read_nowait = 0;
                return 1;
            }
            if (rc != GH_EAGAIN) {
                c->head_status = (int16_t)status;
                c->read_nowait = 0;
                return 1;
            }
        }
    fill:;
        ssize_t k = gh_reader_fill(c->bufr);
        if (k == GH_EAGAIN) {
            c->read_nowait = 0;
            return 0;
        }
        if (k <= 0) {
            c->read_nowait = 0;
            return -1;
        }
    }
}

/* ---- errors the server answers itself --------------------------------------------- */

/* The access log hook (config access_log), if any, for one finished request. */
static void log_access(gh_conn_t *c, const char *method, const char *target, int status,
                       int64_t bytes, gh_time_t t0, int err, int hijacked)
{
    const gh_server_config_t *cfg = gh__server_config(c->server);
    if (!cfg->access_log)
        return;
    gh_access_entry_t e = {.method = method,
                           .target = target,
                           .remote_addr = c->remote ? c->remote : "",
                           .status = status,
                           .bytes = bytes,
                           .duration = t0 ? gh_now() - t0 : 0,
                           .err = err,
                           .hijacked = hijacked};
    cfg->access_log(&e, cfg->access_log_data);
}

static void log_response(gh_conn_t *c, gh_request_t *req, gh_response_t *w, gh_time_t t0,
                         int err)
{
    int64_t bytes = req->is_head || !w->body_allowed ? 0 : w->written;
    log_access(c, gh_request_method(req), gh_request_target(req), w->status, bytes, t0, err,
               w->hijacked);
}

void gh__conn_write_error(gh_conn_t *c, int status, const char *why, int blocking)
{
    char buf[512];
    const char *text = gh__status_text(status);
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Connection: close\r\n\r\n%d %s%s%s",
                     status, text, status, text, why ? ": " : "", why ? why : "");
    if (n < 0 || (size_t)n >= sizeof buf)
        n = (int)strlen(buf);
    gh__server_count_request(c, 1);
    const char *body = strstr(buf, "\r\n\r\n");
    if (gh__server_config(c->server)->access_log)
        log_access(c, "", "", status, body ? (int64_t)(buf + n - body - 4) : 0, 0, 0, 0);
    if (blocking) {
        gh_fd_set_write_deadline(c->fd, gh_now() + GH_SEC);
        (void)gh_writer_flush(c->bufw);
        (void)GH__CONN_TR(c)->write(c->fd, buf, (size_t)n);
    } else if (gh_fd_acquire(c->fd) == 0) {
        /* The socket's send buffer is empty at this point, so a few hundred bytes go
         * out at once; if not, the client gets a plain close. */
        ssize_t k;
        do
            k = send(gh_fd_fileno(c->fd), buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (k < 0 && errno == EINTR);
        gh_fd_release(c->fd);
    }
    /* RFC 9112 §9.6: close after the answer, but read what the client still sends for
     * a moment so that our close does not turn into a reset that destroys the answer
     * in flight. The poller does that without a worker. */
    gh__server_conn_linger(c);
}

/* ---- the request loop ------------------------------------------------------------- */

static int take_head(gh_conn_t *c, const char **p, size_t *len)
{
    if (c->head_block) {
        *p = c->head_block + (size_t)c->head_nfields * sizeof(gh__hfield_t);
        *len = c->head_len;
        return 1;
    }
    if (c->big_len) {
        *p = c->big_head;
        *len = c->head_len;
        return 1;
    }
    size_t have = gh_reader_buffered(c->bufr, p);
    *len = c->head_len;
    return have >= c->head_len;
}

static void drop_head(gh_conn_t *c)
{
    if (c->head_block) {
        c->head_block = NULL; /* the request took it, or failed to */
    } else if (c->big_len) {
        c->big_head = NULL;
        c->big_len = c->big_cap = 0;
    } else {
        gh_reader_consume(c->bufr, c->head_len);
    }
    c->head_len = 0;
}

/* A lean connection's response is written through the thread's write scratch slot
 * while its handler runs on this thread: bufw's buffer and the pre-chunking buffer,
 * taken back once the response is finished (or hijacked), so a keep-alive request
 * allocates neither. A handler may hand its response to another thread meanwhile: the
 * slot stays lent, and this thread, inside the handler, does not use it. */
_Static_assert(GH__SCRATCH_WRITE_SIZE >= GH_BUFIO_DEFAULT_SIZE + GH__PREBUF_SIZE,
               "the write slot holds bufw's buffer, then the pre-chunking buffer");

static void lend_write_slot(gh_conn_t *c)
{
    if (!c->lean || c->lent)
        return;
    char *slot = gh__scratch_take(GH__SCRATCH_WRITE, GH__SCRATCH_WRITE_SIZE);
    if (!slot)
        return; /* lent further up this thread (not expected): allocate as usual */
    c->lent = slot;
    (void)gh__writer_lend(c->bufw, slot);
    if (!c->prebuf)
        c->prebuf = slot + GH_BUFIO_DEFAULT_SIZE;
}

/* hijacked: bufw is the hijacker's now (it may already write from another thread) and
 * holds no part of the slot: the hijack flushed it and released its buffer. */
static void unlend_write_slot(gh_conn_t *c, int hijacked)
{
    if (!c->lean)
        return;
    char *slot = c->lent;
    if (slot) {
        if (!hijacked)
            (void)gh__writer_unlend(c->bufw, slot);
        c->lent = NULL;
        gh__scratch_give(GH__SCRATCH_WRITE);
    }
    /* Nothing waits in them once the response is finished: a buffer allocated because
     * the slot was not available goes too. */
    c->prebuf = NULL;
    if (!hijacked)
        (void)gh_writer_release(c->bufw);
}

/* One request: build it, run the handler, finish the response.
 * Returns 1 to keep the connection, 0 when the connection was handed off (closed,
 * lingering or hijacked). noinline: its frame holds the request and response, and
 * the caller scrubs below it. */
__attribute__((noinline)) static int serve_one(gh_conn_t *c)
{
    gh_server_t *s = c->server;
    const gh_server_config_t *cfg = gh__server_config(s);
    const char *p;
    size_t len;
    if (!take_head(c, &p, &len)) {
        gh__server_conn_close(c);
        return 0;
    }
    int status = 0;
    const char *why = NULL;
    gh_request_t *req = gh__request_new(c, p, len, &status, &why);
    drop_head(c);
    if (!req) {
        if (status)
            gh__conn_write_error(c, status, why, 1);
        else
            gh__server_conn_close(c);
        return 0;
    }
    gh_response_t *w = gh__response_new(c, req);
    if (!w) {
        gh__server_conn_close(c);
        return 0;
    }
    if (req->body)
        w->req_body = req->body;
    gh_time_t now = gh_now();
    gh_fd_set_read_deadline(c->fd, cfg->read_timeout ? c->req_start + cfg->read_timeout : 0);
    gh_fd_set_write_deadline(c->fd, cfg->write_timeout ? now + cfg->write_timeout : 0);
    gh__server_set_state(c, GH_STATE_ACTIVE);
    gh__server_count_request(c, 0);

    __atomic_store_n(&c->body_pending, req->body ? 1 : 0, __ATOMIC_RELEASE);
    /* Without a body, what is still buffered is a pipelined request, read before the
     * client half-closed: it must be answered (see gh__conn_eval_hup). */
    __atomic_store_n(&c->next_buffered, !req->body && gh_reader_buffered(c->bufr, NULL) > 0,
                     __ATOMIC_RELEASE);
    pthread_mutex_lock(&c->mu);
    c->cur_req = w;
    int gone = c->peer_gone;
    pthread_mutex_unlock(&c->mu);
    if (gone)
        gh__request_cancel(req, GH_ECONNRESET);
    else
        gh__server_watch(c, 1);

    lend_write_slot(c);
    cfg->handler(w, req, cfg->handler_data);

    if (w->hijacked) {
        unlend_write_slot(c, 1);
        /* The connection is the handler's now; the server forgot it at hijack. As in
         * Go, serve returns here: the request and connection contexts end, and
         * curReq is left as it is (what is still reachable is the point of the
         * retention study). */
        w->handler_done = 1;
        gh__request_cancel(req, GH_EHANDLERDONE);
        if (req->body)
            req->body->closed = GH_EHANDLERDONE; /* one rule after return (request.h) */
        gh__close_notify_done(w);
        gh_ctx_cancel(c->ctx, GH_EHIJACKED);
        if (cfg->access_log)
            log_response(c, req, w, now, 0);
        return 0;
    }
    gh__server_watch(c, 0);
    __atomic_store_n(&c->body_pending, 0, __ATOMIC_RELEASE);
    int rc = gh__response_finish(w);
    unlend_write_slot(c, 0);
    if (cfg->access_log)
        log_response(c, req, w, now, rc);
    w->handler_done = 1;
    gh__request_cancel(req, GH_EHANDLERDONE);
    gh__close_notify_done(w);
    int keep = rc == 0 && gh__response_keepalive(w);
    if (keep && req->body && gh__body_drain(req->body, cfg->max_body_drain) < 0)
        keep = 0;
    if (req->body)
        req->body->closed = GH_EHANDLERDONE;
    pthread_mutex_lock(&c->mu);
    c->cur_req = NULL;
    if (c->peer_gone || c->werr)
        keep = 0;
    pthread_mutex_unlock(&c->mu);
    gh_fd_set_read_deadline(c->fd, 0);
    gh_fd_set_write_deadline(c->fd, 0);
    if (!keep) {
        if (rc == 0 && req->body && !req->body->done && !req->body->err && !c->peer_gone) {
            /* Unread body left: close softly, so the client reads our answer. */
            gh__server_conn_linger(c);
        } else {
            gh__server_conn_close(c);
        }
        return 0;
    }
    return 1;
}

/* After a kept response: look for the next request. Returns 1 when its complete head is
 * in the buffer (serve it), 0 when the connection was handed on: parked with the
 * poller, closed, or answered with an error and lingering.
 *
 * On the poller (on_poller) the connection never stopped being watched for input, so
 * when the last read came back short (the socket was empty then) and nothing is
 * buffered, any later byte raises an edge the poller will see: no read is needed, and
 * parking costs no epoll_ctl. A worker reads what is there and re-arms the interest. */
int gh__conn_next(gh_conn_t *c, int on_poller)
{
    const gh_server_config_t *cfg = gh__server_config(c->server);
    gh__conn_set_serving(c, 0);
    gh__server_set_state(c, GH_STATE_IDLE);
    gh_time_t now = gh_now();
    c->req_start = now;
    int rc = 0;
    /* Between requests a lean connection holds no read buffer: the next head comes
     * through the scratch slot (see poll_head_scratch). */
    if (c->lean && !c->big_len)
        (void)gh_reader_release(c->bufr);
    /* Requests are answered in order (RFC 9112 §9.3.2): read what is there now. */
    if (!on_poller || !c->drained || gh_reader_buffered(c->bufr, NULL) > 0 || c->big_len)
        rc = gh__conn_poll_head(c);
    if (rc < 0) {
        gh__server_conn_close(c);
        return 0;
    }
    if (rc == 1) {
        if (c->head_status) {
            /* Blocking (bounded) even on the poller's thread: the previous response
             * may still fill the socket, and a stalled write hands the role off. */
            gh__conn_write_error(c, c->head_status, NULL, 1);
            return 0;
        }
        return 1;
    }
    if (gh_reader_buffered(c->bufr, NULL) > 0 || c->big_len) {
        /* Part of a head: the poller waits for the rest, under the header timeout, so
         * that a slow client holds no thread. */
        c->hdr_deadline = cfg->read_header_timeout ? now + cfg->read_header_timeout : 0;
        gh__server_conn_park(c, GH__PH_WAIT_HEAD, c->hdr_deadline, !on_poller);
        return 0;
    }
    gh__server_conn_park(c, GH__PH_IDLE, cfg->idle_timeout ? now + cfg->idle_timeout : 0,
                         !on_poller);
    return 0;
}

int gh__conn_serve_one(gh_conn_t *c) { return serve_one(c); }

void gh__conn_serve(gh_conn_t *c)
{
    do {
        gh__conn_set_serving(c, 1);
        if (!serve_one(c))
            return;
    } while (gh__conn_next(c, 0));
}

/* ---- the background read: hang-ups while a handler runs ------------------------------ */

/* Bytes the kernel holds for this socket, not yet read. */
static int pending_bytes(int fd)
{
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) < 0)
        return 0;
    return n;
}

void gh__conn_eval_hup(gh_conn_t *c, int hard)
{
    /* Bytes waiting are a pipelined request, never "gone" (golang/go#23921) -- unless
     * the request's body is still arriving: then they are that body, and a hang-up
     * means the client is gone (golang/go#23262). Waiting bytes are those still in the
     * socket and those already read into the connection's buffer: a client may send
     * two requests in one segment and half-close while the first is served. */
    int body_pending = __atomic_load_n(&c->body_pending, __ATOMIC_ACQUIRE);
    if (!hard && !body_pending) {
        if (__atomic_load_n(&c->next_buffered, __ATOMIC_ACQUIRE))
            return;
        int n = 0;
        if (gh_fd_acquire(c->fd) == 0) {
            n = pending_bytes(gh_fd_fileno(c->fd));
            gh_fd_release(c->fd);
        }
        if (n > 0)
            return;
    }
    gh__conn_peer_gone(c);
}

void gh__server_watch(gh_conn_t *c, int on)
{
    __atomic_store_n(&c->watching, on, __ATOMIC_SEQ_CST);
    /* A hang-up seen before the handler started (the edge came while the request
     * waited for a worker) is acted on now. */
    if (on && __atomic_load_n(&c->rdhup_seen, __ATOMIC_SEQ_CST))
        gh__conn_eval_hup(c, 0);
}

/* ---- ConnState and accessors ------------------------------------------------------ */

void gh__server_set_state(gh_conn_t *c, gh_conn_state_t st)
{
    const gh_server_config_t *cfg = gh__server_config(c->server);
    if (c->state == (int)st && st != GH_STATE_ACTIVE)
        return;
    c->state = (int8_t)st;
    if (cfg->conn_state)
        cfg->conn_state(c, st, cfg->conn_state_data);
}

const char *gh_conn_remote_addr(const gh_conn_t *c) { return c->remote ? c->remote : ""; }
char *gh__sockname(int fd, int peer)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl = sizeof ss;
    char buf[120];
    if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &sl) : getsockname(fd, (struct sockaddr *)&ss, &sl)) < 0)
        return NULL;
    gh__format_addr(&ss, sl, buf, sizeof buf);
    return gh_strdup(buf);
}

const char *gh_conn_local_addr(const gh_conn_t *c)
{
    /* Made on first use: most programs never ask, and it saves an allocation per
     * connection. */
    gh_conn_t *m = (gh_conn_t *)c;
    if (!m->local && gh_fd_acquire(m->fd) == 0) {
        m->local = gh__sockname(gh_fd_fileno(m->fd), 0);
        gh_fd_release(m->fd);
    }
    return m->local ? m->local : "";
}
unsigned long gh_conn_id(const gh_conn_t *c) { return c->id; }

const char *gh_conn_state_name(gh_conn_state_t st)
{
    static const char *const names[] = {"new", "active", "idle", "hijacked", "closed"};
    return (unsigned)st < 5 ? names[st] : "unknown";
}
