/*
 * lib/hijack.c: gh_response_hijack, the netconn it returns, close-notify, and the
 * server's registry of hijacked connections (track_hijacked).
 *
 * The five stages of the retention study (gh_hijack_stage_t) differ only here and in
 * gh__response_new (eager close-notify). Go's hijack path before and after PR #70756:
 *
 *   before       bufr (source: connReader -> conn -> curReq -> response -> request)
 *                + a NEW 4 KiB writer over the raw conn; CloseNotify made per request.
 *   writer       the conn's own bufw, flushed and retargeted at the raw conn.
 *   lazy-notify  + close-notify made only when the handler asks.
 *   reader       + bufr's source swapped for a close-notify reader: the raw conn and a
 *                weak link to the response, cleared once the response is unreachable.
 *   release      + buffers released whenever they are empty (default).
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

/*
 * netconn: the hijacked raw connection, and (stages reader and release) the source of
 * the returned reader: Go PR #70756's connCloseNotify folded into the connection object.
 * Alloc:     per hijack (gh_obj_new). Kept by the caller and by the returned reader's
 *            source and writer's sink.
 * OS state:  fd, closed by gh_netconn_close or the gh_fd finalizer backstop.
 * Threads:   one reader and one writer.
 * The weak link to the response is the point: it does not keep the response alive, so
 * once the handler has returned and the server dropped the response, the collector
 * clears it and reads are a pure proxy to the descriptor.
 */
struct gh_netconn_s {
    gh_fd_t *fd;
    char *addrs;        /* "remote\0local\0" (atomic), made on first use */
    /* not traced */
    gh_weak_t resp;     /* weak: the response, while it lives */
    gh_weak_t srv;      /* weak: the server, for gh_watch_start (lib/watch.c) */
    uint8_t loop;       /* the loop that accepted it (watched there) */
    uint8_t watched;    /* atomic: a watch has it on its loop (lib/watch.c) */
    /* 40 bytes: with the header and the typed-allocation word, a 64-byte block. It is
     * what an idle hijacked connection costs, with the descriptor and the two bufio
     * objects; the conn's address string is not kept. The server is reached weakly so
     * that a hijacked connection does not keep a closed server's tables alive. */
};

static const size_t nc_ptrs[] = {offsetof(struct gh_netconn_s, fd),
                                 offsetof(struct gh_netconn_s, addrs)};
static const char *const nc_names[] = {"fd", "addrs"};
gh_type_t gh__netconn_type = GH_TYPE_INIT_NAMED("netConn", struct gh_netconn_s, nc_ptrs, nc_names);

/* ---- netconn ------------------------------------------------------------------------ */

ssize_t gh_netconn_read(gh_netconn_t *c, void *buf, size_t n) { return gh_fd_read(c->fd, buf, n); }
ssize_t gh_netconn_write(gh_netconn_t *c, const void *buf, size_t n)
{
    return gh_fd_write(c->fd, buf, n);
}
/* A watched connection's descriptor is registered on its loop by number: closing it
 * behind the watch would leave the registration to a number the kernel may give to the
 * next connection. The watch closes it (off its loop first). */
int gh_netconn_close(gh_netconn_t *c)
{
    if (__atomic_load_n(&c->watched, __ATOMIC_ACQUIRE))
        return gh__watch_netconn_close(c);
    return gh_fd_close(c->fd);
}
void gh__netconn_set_watched(gh_netconn_t *c, int on)
{
    __atomic_store_n(&c->watched, (uint8_t)on, __ATOMIC_RELEASE);
}
void gh_netconn_set_deadline(gh_netconn_t *c, gh_time_t at)
{
    gh_fd_set_read_deadline(c->fd, at);
    gh_fd_set_write_deadline(c->fd, at);
}
void gh_netconn_set_read_deadline(gh_netconn_t *c, gh_time_t at) { gh_fd_set_read_deadline(c->fd, at); }
void gh_netconn_set_write_deadline(gh_netconn_t *c, gh_time_t at) { gh_fd_set_write_deadline(c->fd, at); }
/* Both addresses, read from the socket on first use and kept. */
static const char *netconn_addrs(const gh_netconn_t *c)
{
    gh_netconn_t *m = (gh_netconn_t *)c;
    char *a = __atomic_load_n(&m->addrs, __ATOMIC_ACQUIRE);
    if (a || gh_fd_acquire(m->fd) < 0)
        return a;
    int fd = gh_fd_fileno(m->fd);
    char *r = gh__sockname(fd, 1), *l = gh__sockname(fd, 0);
    gh_fd_release(m->fd);
    size_t rl = r ? strlen(r) : 0, ll = l ? strlen(l) : 0;
    char *n = gh_bytes_new(rl + ll + 2);
    if (!n)
        return NULL;
    memcpy(n, r ? r : "", rl + 1);
    memcpy(n + rl + 1, l ? l : "", ll + 1);
    char *expected = NULL;
    if (!__atomic_compare_exchange_n(&m->addrs, &expected, n, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return expected;
    return n;
}

const char *gh_netconn_remote_addr(const gh_netconn_t *c)
{
    const char *a = netconn_addrs(c);
    return a ? a : "";
}

const char *gh_netconn_local_addr(const gh_netconn_t *c)
{
    const char *a = netconn_addrs(c);
    return a ? a + strlen(a) + 1 : "";
}
gh_fd_t *gh_netconn_fd(gh_netconn_t *c) { return c->fd; }
gh_server_t *gh__netconn_server(gh_netconn_t *c, int *loop)
{
    *loop = c->loop;
    return gh_weak_get(&c->srv); /* under the allocator lock */
}
ssize_t gh_netconn_read_fn(void *c, void *buf, size_t n) { return gh_netconn_read(c, buf, n); }
ssize_t gh_netconn_write_fn(void *c, const void *buf, size_t n) { return gh_netconn_write(c, buf, n); }

static ssize_t cn_reader_read(void *self, void *buf, size_t n)
{
    gh_netconn_t *cr = self;
    ssize_t k = gh_fd_read(cr->fd, buf, n);
    if (k <= 0 && k != GH_ETIMEDOUT && k != GH_EAGAIN && !gh_weak_is_cleared(&cr->resp)) {
        /* While the handler runs, a failed read means the client is gone: tell the
         * handler (Go: connCloseNotify). gh_weak_get reads under the allocator lock;
         * NULL once the response was collected. */
        gh_response_t *w = gh_weak_get(&cr->resp);
        if (w && !w->handler_done) {
            gh__request_cancel(w->req, GH_ECONNRESET);
            gh__close_notify_fire(w);
        }
    }
    return k;
}

/* ---- close-notify ------------------------------------------------------------------- */

gh_ctx_t *gh__close_notify_make(gh_response_t *w)
{
    gh_conn_t *c = w->conn;
    gh__resp_extra_t *x = gh__resp_extra(w);
    if (!x)
        return NULL;
    pthread_mutex_lock(&c->mu);
    gh_ctx_t *cn = x->cn;
    int gone = c->peer_gone;
    pthread_mutex_unlock(&c->mu);
    if (cn)
        return cn;
    cn = gh_ctx_new(NULL);
    if (!cn)
        return NULL;
    pthread_mutex_lock(&c->mu);
    if (x->cn) {
        gh_ctx_t *other = x->cn;
        pthread_mutex_unlock(&c->mu);
        return other;
    }
    x->cn = cn;
    gone = gone || c->peer_gone;
    pthread_mutex_unlock(&c->mu);
    /* A disconnect seen before anyone asked still counts: the pipelined check was made
     * when it was seen. */
    if (gone || gh_request_done(w->req) == GH_ECONNRESET)
        gh_ctx_cancel(cn, GH_ECONNRESET);
    return cn;
}

static void cn_signal_fd(gh_ctx_t *ctx, int reason, void *data)
{
    gh_fd_t *efd = data;
    uint64_t one = 1;
    if (gh_fd_acquire(efd) == 0) {
        ssize_t k;
        do
            k = write(gh_fd_fileno(efd), &one, sizeof one);
        while (k < 0 && errno == EINTR);
        gh_fd_release(efd);
    }
}

void gh__close_notify_fire(gh_response_t *w)
{
    gh_conn_t *c = w->conn;
    pthread_mutex_lock(&c->mu);
    gh_ctx_t *cn = w->x ? w->x->cn : NULL;
    pthread_mutex_unlock(&c->mu);
    if (cn)
        gh_ctx_cancel(cn, GH_ECONNRESET); /* once: later cancels are no-ops */
}

void gh__close_notify_done(gh_response_t *w)
{
    gh_conn_t *c = w->conn;
    pthread_mutex_lock(&c->mu);
    gh_fd_t *efd = w->x ? w->x->cn_fd : NULL;
    if (efd)
        w->x->cn_fd = NULL;
    pthread_mutex_unlock(&c->mu);
    if (efd)
        gh_fd_close(efd);
}

gh_ctx_t *gh_response_close_notify(gh_response_t *w)
{
    if (w->handler_done)
        return NULL;
    return gh__close_notify_make(w);
}

int gh_response_close_notify_fd(gh_response_t *w)
{
    if (w->handler_done)
        return GH_EHANDLERDONE;
    gh_ctx_t *cn = gh__close_notify_make(w);
    if (!cn)
        return GH_ENOMEM;
    gh_conn_t *c = w->conn;
    gh__resp_extra_t *x = w->x; /* made by gh__close_notify_make above */
    pthread_mutex_lock(&c->mu);
    gh_fd_t *efd = x->cn_fd;
    pthread_mutex_unlock(&c->mu);
    if (efd)
        return gh_fd_fileno(efd);
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    efd = gh_fd_new(fd);
    if (!efd) {
        close(fd);
        return GH_ENOMEM;
    }
    pthread_mutex_lock(&c->mu);
    x->cn_fd = efd;
    pthread_mutex_unlock(&c->mu);
    long id = gh_ctx_on_cancel(cn, cn_signal_fd, efd);
    if (id < 0)
        return (int)id;
    return fd;
}

/* ---- hijack ------------------------------------------------------------------------- */

int gh_response_hijack(gh_response_t *w, gh_netconn_t **out, gh_bufrw_t *rw)
{
    gh_conn_t *c = w->conn;
    gh_server_t *s = c->server;
    gh_hijack_stage_t stage = gh__server_config(s)->hijack_stage;
    /* On any failure the caller's outputs are empty, never half-filled. */
    if (out)
        *out = NULL;
    if (rw)
        rw->r = NULL, rw->w = NULL;
    if (w->handler_done)
        return GH_EHANDLERDONE;
    if (w->hijacked)
        return GH_EHIJACKED;
    /* No 100 Continue may be written from now on (Go: disableWriteContinue). */
    w->can_continue = 0;
    if (w->wrote_header) {
        /* Flush the header the handler already chose to send, e.g. "101 Switching
         * Protocols" (Go: cw.flush). Body bytes still in the pre-chunking buffer are
         * dropped, as Go 1.19 drops its unflushed bufio.Writer (hijack.h). */
        w->pre_len = 0;
        int rc = gh_response_flush(w);
        if (rc < 0)
            return rc;
    }
    gh_netconn_t *nc = gh_obj_new(&gh__netconn_type);
    if (!nc || gh_weak_set(&nc->srv, s) < 0)
        return GH_ENOMEM;
    nc->fd = c->fd;
    nc->loop = c->loop;

    gh_reader_t *br = c->bufr;
    gh_writer_t *bw;
    if (stage == GH_HIJACK_BEFORE) {
        /* Go 1.23: a second writer straight to the raw conn; the conn's bufw stays. */
        bw = gh_writer_new(nc, gh_netconn_write_fn, 0);
        if (!bw)
            return GH_ENOMEM;
        int rc = gh_writer_flush(c->bufw);
        if (rc < 0)
            return rc;
    } else {
        /* The conn's own writer, flushed, now writing to the raw conn: nothing in it
         * points back at the conn. */
        bw = c->bufw;
        int rc = gh_writer_flush(bw);
        if (rc < 0)
            return rc;
        gh_writer_reset(bw, nc, gh_netconn_write_fn);
    }
    if (stage == GH_HIJACK_READER || stage == GH_HIJACK_RELEASE) {
        if (gh_weak_set(&nc->resp, w) < 0)
            return GH_ENOMEM;
        /* Buffered bytes (pipelined data, a body, a first WebSocket frame) stay in
         * the buffer and are read first. */
        gh_reader_reset(br, nc, cn_reader_read);
    }
    if (stage == GH_HIJACK_RELEASE) {
        /* An idle hijacked connection keeps no 4 KiB blocks (fasthttp#2363), and one that
         * exchanged messages neither: both buffers go back whenever they are empty again
         * (after a read that drains the reader, after each flush). */
        gh_reader_set_autorelease(br, 1);
        gh_writer_set_autorelease(bw, 1);
    }

    w->hijacked = 1;
    if (w->req_body)
        w->req_body->closed = GH_EHIJACKED;
    /* The server forgets the connection: table, timers, poller watch. */
    gh__server_conn_forget(c);
    gh_fd_set_read_deadline(c->fd, 0);
    gh_fd_set_write_deadline(c->fd, 0);
    gh__server_set_state(c, GH_STATE_HIJACKED);
    if (gh__server_config(s)->track_hijacked)
        gh__server_track_hijacked(s, nc);
    if (out)
        *out = nc;
    if (rw) {
        rw->r = br;
        rw->w = bw;
    }
    return 0;
}

/* ---- hijacked-connection registry (golang/go#17721) ---------------------------------- */

void gh__server_track_hijacked(gh_server_t *srv, gh_netconn_t *nc)
{
    gh__hjreg_t *s = gh__server_hijacked(srv);
    pthread_mutex_lock(&s->mu);
    if (s->n == s->cap) {
        /* Keep the live entries only, in a larger array when needed. Each move
         * re-registers the link on the new slot. */
        size_t live = 0;
        for (size_t i = 0; i < s->n; i++)
            live += !gh_weak_is_cleared(&s->links[i]);
        size_t cap = s->cap ? s->cap : 16;
        while (cap < 2 * (live + 1))
            cap *= 2;
        gh_weak_t *n = gh_bytes_new(cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&s->mu);
            return;
        }
        memset(n, 0, cap * sizeof *n);
        size_t j = 0;
        for (size_t i = 0; i < s->n; i++) {
            void *p = gh_weak_get(&s->links[i]);
            gh_weak_clear(&s->links[i]);
            if (p && gh_weak_set(&n[j], p) == 0)
                j++;
        }
        s->links = n;
        s->n = j;
        s->cap = cap;
    }
    if (gh_weak_set(&s->links[s->n], nc) == 0)
        s->n++;
    pthread_mutex_unlock(&s->mu);
}

/* Strong references to the live, open tracked connections, in a scanned array. */
static gh_netconn_t **hijacked_snapshot(gh_server_t *srv, size_t *n)
{
    gh__hjreg_t *s = gh__server_hijacked(srv);
    pthread_mutex_lock(&s->mu);
    gh_netconn_t **v = s->n ? gh__ptrs_new(s->n) : NULL;
    size_t k = 0;
    for (size_t i = 0; v && i < s->n; i++) {
        gh_netconn_t *nc = gh_weak_get(&s->links[i]);
        if (nc && !gh_fd_is_closed(gh_netconn_fd(nc)))
            v[k++] = nc;
    }
    pthread_mutex_unlock(&s->mu);
    *n = k;
    return v;
}

int gh_server_hijacked_foreach(gh_server_t *s, void (*fn)(gh_netconn_t *c, void *data), void *data)
{
    size_t n;
    gh_netconn_t **v = hijacked_snapshot(s, &n);
    for (size_t i = 0; i < n; i++)
        fn(v[i], data);
    return (int)n;
}

int gh_server_close_hijacked(gh_server_t *s)
{
    size_t n;
    int closed = 0;
    gh_netconn_t **v = hijacked_snapshot(s, &n);
    for (size_t i = 0; i < n; i++)
        closed += gh_netconn_close(v[i]) == 0;
    return closed;
}
