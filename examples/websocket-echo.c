/*
 * examples/websocket-echo.c: an RFC 6455 echo server built on gh_response_hijack.
 *
 *   examples/websocket-echo --listen 127.0.0.1:PORT [--stats] [--max-message BYTES]
 *
 * The handler validates the opening handshake (RFC 6455 §4.2.1), answers 101 with
 * Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) and hijacks the connection. It then
 * hands the connection to this program's own event loop: one GC-registered thread
 * with an epoll set, so that 1,000 idle WebSockets cost 1,000 small GC objects and no
 * threads (the server's workers go back to serving HTTP).
 *
 * The loop reassembles fragmented messages, answers pings, runs the closing handshake
 * (echoing the client's code), and fails the connection with 1002 (protocol error),
 * 1007 (invalid UTF-8 in a text message) or 1009 (message larger than --max-message,
 * 16 MiB by default). Every text and binary message is echoed back unfragmented.
 *
 * GC visibility: epoll_event.data is kernel memory the collector never scans, so it
 * carries only the descriptor number; each connection's state lives in `conns`, a
 * conservatively scanned array indexed by descriptor and held in a static.
 *
 * With --stats, GET /stats (a plain HTTP request) and SIGUSR1 report the number of open
 * WebSockets and the live GC bytes after two full collections.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gchttp.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WRITE_TIMEOUT (10 * GH_SEC) /* a client that stops reading is dropped */
#define CLOSE_TIMEOUT (5 * GH_SEC)  /* how long we wait for the peer's close after ours */
#define MAX_TABLE 65536             /* descriptors the connection table can index */

/* Close codes, RFC 6455 §7.4.1. */
enum {
    WS_NORMAL = 1000,
    WS_GOING_AWAY = 1001,
    WS_PROTOCOL_ERROR = 1002,
    WS_INVALID_DATA = 1007,
    WS_TOO_BIG = 1009,
    WS_TRY_LATER = 1013,
};

/* Opcodes, RFC 6455 §5.2. */
enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

/* ---- SHA-1 (FIPS 180-4) and base64 (RFC 4648), just enough for the handshake ---------- */

typedef struct sha1 {
    uint32_t h[5];
    uint64_t len;
    unsigned char blk[64];
    size_t n;
} sha1_t;

static uint32_t rol(uint32_t x, int k)
{
    return (x << k) | (x >> (32 - k));
}

static void sha1_block(sha1_t *s, const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}

static void sha1_init(sha1_t *s)
{
    static const uint32_t h0[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->n = 0;
}

static void sha1_update(sha1_t *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    s->len += n;
    while (n > 0) {
        size_t k = 64 - s->n < n ? 64 - s->n : n;
        memcpy(s->blk + s->n, p, k);
        s->n += k;
        p += k;
        n -= k;
        if (s->n == 64) {
            sha1_block(s, s->blk);
            s->n = 0;
        }
    }
}

static void sha1_final(sha1_t *s, unsigned char out[20])
{
    uint64_t bits = s->len * 8;
    unsigned char pad = 0x80, zero = 0, lenb[8];
    sha1_update(s, &pad, 1);
    while (s->n != 56)
        sha1_update(s, &zero, 1);
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha1_update(s, lenb, 8);
    for (int i = 0; i < 20; i++)
        out[i] = (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* out must hold 4 * ceil(n / 3) + 1 bytes. */
static void base64(const unsigned char *p, size_t n, char *out)
{
    size_t i = 0, k = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[k++] = b64[v >> 18];
        out[k++] = b64[(v >> 12) & 63];
        out[k++] = b64[(v >> 6) & 63];
        out[k++] = b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[k++] = b64[v >> 18];
        out[k++] = b64[(v >> 12) & 63];
        out[k++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[k++] = '=';
    }
    out[k] = 0;
}

/* RFC 6455 §4.2.2: accept = base64(SHA-1(key ++ GUID)); out holds 29 bytes. */
static void ws_accept_key(const char *key, char out[29])
{
    sha1_t s;
    unsigned char d[20];
    sha1_init(&s);
    sha1_update(&s, key, strlen(key));
    sha1_update(&s, WS_GUID, sizeof WS_GUID - 1);
    sha1_final(&s, d);
    base64(d, sizeof d, out);
}

/* The key is the base64 encoding of 16 bytes (§4.1): 22 characters and "==". */
static int ws_key_valid(const char *k)
{
    if (strlen(k) != 24 || strcmp(k + 22, "==") != 0)
        return 0;
    for (int i = 0; i < 22; i++)
        if (!strchr(b64, k[i]) || !k[i])
            return 0;
    return 1;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
            return 0;
        if (k == 3 && (cp < 0x10000 || cp > 0x10ffff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* ---- connection state ---------------------------------------------------------------- */

/**
 * One WebSocket connection after the handshake.
 * Alloc:     gh_obj_new(&ws_conn_type): traced fields nc, r, w, msg; msg is atomic.
 * Lifetime:  rooted by conns[fd] from hand-off until ws_close; then garbage.
 * OS state:  the descriptor inside nc, closed by ws_close (gh_netconn_close).
 * Threads:   created by a server worker, then touched only by the loop thread.
 */
typedef struct ws_conn {
    gh_netconn_t *nc;
    gh_reader_t *r; /*< returned by the hijack: may already hold the first frame */
    gh_writer_t *w;
    char *msg; /*< reassembly buffer (atomic), NULL between messages */
    size_t msg_len, msg_cap;
    int fd;
    int msg_op; /*< OP_TEXT/OP_BINARY while a message is being assembled, else 0 */
    /* the frame being read */
    int in_frame, fin, op, discard;
    uint64_t left, pos;
    unsigned char mask[4];
    /* closing: 1 after we sent a close frame; 2 also when framing is lost */
    int closing;
    gh_time_t close_by;
} ws_conn_t;

static const size_t ws_conn_ptrs[] = {offsetof(ws_conn_t, nc), offsetof(ws_conn_t, r),
                                      offsetof(ws_conn_t, w), offsetof(ws_conn_t, msg)};
static const char *const ws_conn_ptr_names[] = {"nc", "r", "w", "msg"};
static gh_type_t ws_conn_type =
    GH_TYPE_INIT_NAMED("ws_conn", ws_conn_t, ws_conn_ptrs, ws_conn_ptr_names);

static size_t max_message = 16u << 20;
static int stats_on;

static ws_conn_t **conns; /* gh_ptrs_new(table_size): the GC root of every connection */
static int table_size;
static int table_hi; /* highest descriptor ever stored, + 1 (loop thread only) */
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static int n_open;    /* open WebSockets (atomic) */
static int n_closing; /* of which waiting for the peer's close (loop thread only) */
static int epfd = -1;
static int kick[2] = {-1, -1}; /* handler -> loop: descriptor numbers to adopt; -1 stops */

static void ws_close(ws_conn_t *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    pthread_mutex_lock(&table_mu);
    conns[c->fd] = NULL;
    pthread_mutex_unlock(&table_mu);
    __atomic_sub_fetch(&n_open, 1, __ATOMIC_SEQ_CST);
    if (c->closing)
        n_closing--;
    gh_netconn_close(c->nc);
    c->msg = NULL;
}

static int ws_send(ws_conn_t *c, int op, const void *p, size_t n)
{
    unsigned char h[10];
    size_t hl = 2;
    h[0] = (unsigned char)(0x80 | op); /* FIN; servers never mask (§5.1) */
    if (n < 126) {
        h[1] = (unsigned char)n;
    } else if (n <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    gh_netconn_set_write_deadline(c->nc, gh_now() + WRITE_TIMEOUT);
    if (gh_writer_write(c->w, h, hl) < 0 || (n && gh_writer_write(c->w, p, n) < 0) ||
        gh_writer_flush(c->w) < 0)
        return -1;
    return 0;
}

/* Start the closing handshake with code (and no reason). lost_framing: the frames that
 * follow cannot be parsed, so everything until EOF is discarded. */
static int ws_fail(ws_conn_t *c, int code, int lost_framing)
{
    if (c->closing) {
        ws_close(c);
        return -1;
    }
    unsigned char b[2] = {(unsigned char)(code >> 8), (unsigned char)code};
    if (ws_send(c, OP_CLOSE, b, 2) < 0 || gh_fd_shutdown_write(gh_netconn_fd(c->nc)) < 0) {
        ws_close(c);
        return -1;
    }
    /* §7.1.1: the server closes TCP first, but only once the client had the chance
     * to read our close frame: wait (bounded) for its close frame or its EOF. */
    c->closing = lost_framing ? 2 : 1;
    c->close_by = gh_now() + CLOSE_TIMEOUT;
    c->msg = NULL;
    c->msg_op = 0;
    n_closing++;
    return 0;
}

static int close_code_valid(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* A complete control frame (§5.5). Returns 0, or -1 if the connection was closed. */
static int ws_control(ws_conn_t *c, int op, unsigned char *p, size_t n)
{
    switch (op) {
    case OP_PING:
        if (c->closing)
            return 0;
        if (ws_send(c, OP_PONG, p, n) < 0) {
            ws_close(c);
            return -1;
        }
        return 0;
    case OP_PONG:
        return 0; /* unsolicited pongs are allowed and ignored (§5.5.3) */
    default:      /* OP_CLOSE */
        if (c->closing) {
            ws_close(c); /* the reply to our close: the handshake is complete */
            return -1;
        }
        if (n == 1 || (n >= 2 && !close_code_valid(p[0] << 8 | p[1])))
            return ws_fail(c, WS_PROTOCOL_ERROR, 0);
        if (n > 2 && !utf8_valid(p + 2, n - 2))
            return ws_fail(c, WS_INVALID_DATA, 0);
        /* Echo the code and reason (§5.5.1), then close TCP: the server goes first. */
        ws_send(c, OP_CLOSE, p, n);
        ws_close(c);
        return -1;
    }
}

static int ws_message_done(ws_conn_t *c)
{
    int op = c->msg_op;
    c->msg_op = 0;
    if (op == OP_TEXT && !utf8_valid((unsigned char *)c->msg, c->msg_len))
        return ws_fail(c, WS_INVALID_DATA, 0);
    int rc = ws_send(c, op, c->msg, c->msg_len);
    c->msg = NULL; /* between messages a connection holds no buffer */
    c->msg_len = c->msg_cap = 0;
    if (rc < 0) {
        ws_close(c);
        return -1;
    }
    return 0;
}

/* Parse a frame header at p (have bytes). Returns its length, 0 if incomplete, or -1
 * (and fails the connection, or closes it) on a protocol error. */
static ssize_t ws_header(ws_conn_t *c, const unsigned char *p, size_t have, int *closed)
{
    if (have < 2)
        return 0;
    size_t need = 2;
    int len7 = p[1] & 0x7f;
    need += len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    need += (p[1] & 0x80) ? 4 : 0;
    if (have < need)
        return 0;
    int op = p[0] & 0x0f, fin = p[0] >> 7;
    uint64_t len = (uint64_t)len7;
    if (len7 == 126) {
        len = (uint64_t)p[2] << 8 | p[3];
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
    }
    int bad = (p[0] & 0x70) != 0; /* RSV1-3 set without a negotiated extension */
    bad |= !(p[1] & 0x80);        /* clients must mask (§5.1) */
    bad |= (op > OP_BINARY && op < OP_CLOSE) || op > OP_PONG; /* reserved opcodes */
    bad |= len7 == 127 && (len >> 63);                        /* §5.2: the MSB must be 0 */
    bad |= op >= OP_CLOSE && (!fin || len > 125);             /* §5.5: control frames */
    if (!bad && !c->closing && op < OP_CLOSE) {
        /* §5.4: a continuation needs a message in progress; a new message needs none. */
        bad = (op == OP_CONT) != (c->msg_op != 0);
    }
    if (bad) {
        *closed = ws_fail(c, WS_PROTOCOL_ERROR, 1) < 0;
        return -1;
    }
    c->in_frame = 1;
    c->fin = fin;
    c->op = op;
    c->left = len;
    c->pos = 0;
    memcpy(c->mask, p + need - 4, 4);
    c->discard = c->closing != 0;
    if (op >= OP_CLOSE || c->closing)
        return (ssize_t)need;
    if (op != OP_CONT)
        c->msg_op = op;
    if (len > max_message - c->msg_len) {
        /* Too big: the frame's payload is skipped while we wait for the close. */
        *closed = ws_fail(c, WS_TOO_BIG, 0) < 0;
        if (!*closed) {
            c->in_frame = 1;
            c->discard = 1;
            c->left = len;
        }
        return (ssize_t)need;
    }
    if (c->msg_len + len > c->msg_cap) {
        /* Grow geometrically for fragmented messages, exactly for a single frame. */
        size_t cap = c->msg_cap * 2;
        if (cap < c->msg_len + len)
            cap = c->msg_len + (size_t)len;
        if (cap > max_message)
            cap = max_message;
        char *m = gh_bytes_new(cap ? cap : 1);
        if (!m) {
            *closed = ws_fail(c, WS_TOO_BIG, 0) < 0;
            return (ssize_t)need;
        }
        if (c->msg_len)
            memcpy(m, c->msg, c->msg_len);
        c->msg = m;
        c->msg_cap = cap;
    }
    return (ssize_t)need;
}

/* Consume what the reader holds. Returns 0, or -1 once the connection was closed. */
static int ws_process(ws_conn_t *c)
{
    for (;;) {
        const char *bp;
        size_t have = gh_reader_buffered(c->r, &bp);
        const unsigned char *p = (const unsigned char *)bp;
        if (c->closing == 2) {
            gh_reader_consume(c->r, have);
            return 0;
        }
        if (!c->in_frame) {
            int closed = 0;
            ssize_t hl = ws_header(c, p, have, &closed);
            if (closed)
                return -1;
            if (hl <= 0) {
                if (hl < 0)
                    continue; /* failed: drain (closing == 2) */
                return 0;
            }
            gh_reader_consume(c->r, (size_t)hl);
            continue;
        }
        if (c->op >= OP_CLOSE) {
            /* Control frames are at most 125 bytes: handle them whole. */
            unsigned char b[125];
            size_t n = (size_t)c->left;
            if (have < n)
                return 0;
            for (size_t i = 0; i < n; i++)
                b[i] = p[i] ^ c->mask[i & 3];
            gh_reader_consume(c->r, n);
            c->in_frame = 0;
            if (ws_control(c, c->op, b, n) < 0)
                return -1;
            continue;
        }
        size_t k = have < c->left ? have : (size_t)c->left;
        if (!c->discard) {
            unsigned char *dst = (unsigned char *)c->msg + c->msg_len;
            for (size_t i = 0; i < k; i++)
                dst[i] = p[i] ^ c->mask[(c->pos + i) & 3];
            c->msg_len += k;
        }
        c->pos += k;
        c->left -= k;
        gh_reader_consume(c->r, k);
        if (c->left > 0)
            return 0;
        c->in_frame = 0;
        if (c->fin && !c->discard && ws_message_done(c) < 0)
            return -1;
    }
}

static ws_conn_t *ws_lookup(int fd)
{
    if (fd < 0 || fd >= table_size)
        return NULL;
    pthread_mutex_lock(&table_mu);
    ws_conn_t *c = conns[fd];
    pthread_mutex_unlock(&table_mu);
    return c;
}

/* epoll said readable: read what is there (reads never wait, see on_request). */
static void on_readable(ws_conn_t *c)
{
    for (int i = 0; i < 64; i++) {
        ssize_t k = gh_reader_fill(c->r);
        if (k == GH_ETIMEDOUT || k == GH_EAGAIN)
            break;
        if (k <= 0 && k != GH_EMSGSIZE) {
            ws_close(c); /* EOF or a reset: nothing more will come */
            return;
        }
        if (ws_process(c) < 0)
            return;
    }
    /* Idle: give back the 4 KiB buffers (the reader keeps a partial frame). */
    gh_reader_release(c->r);
    gh_writer_release(c->w);
}

static void on_adopt(int fd)
{
    ws_conn_t *c = ws_lookup(fd);
    if (!c)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        ws_close(c);
        return;
    }
    if (fd >= table_hi)
        table_hi = fd + 1;
    /* Bytes that came with the upgrade request are in the reader already: epoll will
     * never report them. */
    if (ws_process(c) == 0) {
        gh_reader_release(c->r);
        gh_writer_release(c->w);
    }
}

static void close_all(int code)
{
    for (int fd = 0; fd < table_hi; fd++) {
        ws_conn_t *c = ws_lookup(fd);
        if (!c)
            continue;
        if (!c->closing) {
            unsigned char b[2] = {(unsigned char)(code >> 8), (unsigned char)code};
            ws_send(c, OP_CLOSE, b, 2);
        }
        ws_close(c);
    }
}

static void *loop_main(void *arg)
{
    (void)arg;
    struct epoll_event ev[64];
    for (;;) {
        /* Stale slots of the last batch would keep closed connections alive. */
        gh_gc_scrub_stack();
        int n = epoll_wait(epfd, ev, 64, n_closing ? 100 : -1);
        if (n < 0 && errno == EINTR)
            continue; /* the collector's stop-the-world signals */
        if (n < 0) {
            perror("websocket-echo: epoll_wait");
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            if (ev[i].data.fd == kick[0]) {
                int fds[256];
                ssize_t k = read(kick[0], fds, sizeof fds);
                for (ssize_t j = 0; j < k / (ssize_t)sizeof(int); j++) {
                    if (fds[j] < 0) {
                        close_all(WS_GOING_AWAY);
                        return NULL;
                    }
                    on_adopt(fds[j]);
                }
                continue;
            }
            ws_conn_t *c = ws_lookup(ev[i].data.fd);
            if (c)
                on_readable(c);
        }
        if (n_closing) {
            gh_time_t now = gh_now();
            for (int fd = 0; fd < table_hi; fd++) {
                ws_conn_t *c = ws_lookup(fd);
                if (c && c->closing && now >= c->close_by)
                    ws_close(c);
            }
        }
    }
}

/* ---- HTTP side: stats and the opening handshake ---------------------------------------- */

static void stats_report(char *buf, size_t cap)
{
    gh_gc_collect(2);
    size_t live = gh_gc_live_bytes();
    snprintf(buf, cap, "websockets %d\nlive_bytes %zu\n",
             __atomic_load_n(&n_open, __ATOMIC_SEQ_CST), live);
}

/* 1 if some `name` field lists `token` (comma-separated, case-insensitive; RFC 9110 §5.6.1). */
static int has_token(const gh_request_t *r, const char *name, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i < gh_request_header_count(r); i++) {
        const char *n, *v;
        if (gh_request_header_at(r, i, &n, &v) < 0)
            break;
        if (strcasecmp(n, name) != 0)
            continue;
        while (*v) {
            while (*v == ' ' || *v == '\t' || *v == ',')
                v++;
            size_t k = strcspn(v, ",");
            size_t e = k;
            while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t'))
                e--;
            if (e == tl && strncasecmp(v, token, tl) == 0)
                return 1;
            v += k;
        }
    }
    return 0;
}

static void reply(gh_response_t *w, int status, const char *msg)
{
    gh_response_header_set(w, "Content-Type", "text/plain; charset=utf-8");
    gh_response_write_header(w, status);
    gh_response_puts(w, msg);
}

static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    int is_get = strcmp(gh_request_method(r), "GET") == 0;
    if (!gh_request_header(r, "Upgrade")) {
        if (stats_on && is_get && strcmp(gh_request_target(r), "/stats") == 0) {
            char buf[128];
            stats_report(buf, sizeof buf);
            reply(w, 200, buf);
            return;
        }
        gh_response_header_set(w, "Upgrade", "websocket");
        reply(w, 426, "this is a WebSocket echo server\n");
        return;
    }
    /* RFC 6455 §4.2.1: what a valid opening handshake must carry. */
    const char *key = gh_request_header(r, "Sec-WebSocket-Key");
    const char *ver = gh_request_header(r, "Sec-WebSocket-Version");
    if (!is_get) {
        gh_response_header_set(w, "Allow", "GET");
        reply(w, 405, "the WebSocket handshake is a GET\n");
        return;
    }
    if (gh_request_proto_major(r) != 1 || gh_request_proto_minor(r) < 1 ||
        !has_token(r, "Upgrade", "websocket") || !has_token(r, "Connection", "Upgrade") || !key ||
        !ws_key_valid(key)) {
        reply(w, 400, "bad WebSocket handshake\n");
        return;
    }
    if (!ver || strcmp(ver, "13") != 0) {
        /* §4.4: say which versions we speak. */
        gh_response_header_set(w, "Sec-WebSocket-Version", "13");
        reply(w, 426, "unsupported WebSocket version\n");
        return;
    }
    char accept[29];
    ws_accept_key(key, accept);
    gh_response_header_set(w, "Upgrade", "websocket");
    gh_response_header_set(w, "Connection", "Upgrade");
    gh_response_header_set(w, "Sec-WebSocket-Accept", accept);
    gh_response_write_header(w, 101);

    gh_netconn_t *nc;
    gh_bufrw_t rw;
    if (gh_response_hijack(w, &nc, &rw) < 0)
        return;
    ws_conn_t *c = gh_obj_new(&ws_conn_type);
    int fd = gh_fd_fileno(gh_netconn_fd(nc));
    if (!c || fd < 0 || fd >= table_size) {
        static const unsigned char later[] = {0x88, 2, WS_TRY_LATER >> 8, WS_TRY_LATER & 0xff};
        gh_netconn_set_write_deadline(nc, gh_now() + WRITE_TIMEOUT);
        gh_netconn_write(nc, later, sizeof later);
        gh_netconn_close(nc);
        return;
    }
    c->nc = nc;
    c->r = rw.r;
    c->w = rw.w;
    c->fd = fd;
    /* The loop reads only when epoll reports the descriptor readable; a deadline in the
     * past makes a spurious wake-up return GH_ETIMEDOUT instead of blocking the loop. */
    gh_netconn_set_read_deadline(nc, 1);
    pthread_mutex_lock(&table_mu);
    conns[fd] = c;
    pthread_mutex_unlock(&table_mu);
    __atomic_add_fetch(&n_open, 1, __ATOMIC_SEQ_CST);
    /* From here on the loop thread owns c (the pipe carries only the number). */
    ssize_t k;
    do
        k = write(kick[1], &fd, sizeof fd);
    while (k < 0 && errno == EINTR);
}

#include "ex-common.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: websocket-echo [--listen HOST:PORT] [--stats] [--max-message BYTES]\n"
               "An RFC 6455 WebSocket echo server: every text or binary message is sent back.\n"
               "Handshakes are served by the HTTP server, then hijacked connections are\n"
               "served by one event-loop thread (epoll).\n"
               "  --listen HOST:PORT   address to listen on (default 127.0.0.1:8080)\n"
               "  --stats              GET /stats and SIGUSR1 report open WebSockets and\n"
               "                       live GC bytes after two full collections\n"
               "  --max-message BYTES  largest message accepted, else close 1009 (default 16 MiB)\n"
               "Prints \"listening on port N\" on stdout; serves until SIGINT/SIGTERM.\n");
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8080";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            listen = argv[++i];
        } else if (!strcmp(argv[i], "--stats")) {
            stats_on = 1;
        } else if (!strcmp(argv[i], "--max-message") && i + 1 < argc) {
            max_message = strtoul(argv[++i], NULL, 10);
        } else {
            usage(stderr);
            return 2;
        }
    }
    /* Every idle WebSocket is a descriptor: allow as many as the hard limit does. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    table_size = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < MAX_TABLE ? (int)rl.rlim_cur
                                                                               : MAX_TABLE;
    static const int extra_sigs[] = {SIGUSR1, 0};
    gh_gc_init();
    conns = gh_ptrs_new((size_t)table_size);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || epfd < 0 || pipe2(kick, O_CLOEXEC) < 0) {
        fprintf(stderr, "websocket-echo: cannot set up the event loop\n");
        return 1;
    }
    fcntl(kick[0], F_SETFL, O_NONBLOCK);
    struct epoll_event kev = {.events = EPOLLIN, .data.fd = kick[0]};
    epoll_ctl(epfd, EPOLL_CTL_ADD, kick[0], &kev);
    pthread_t loop;
    if (gh_thread_start(&loop, loop_main, NULL) != 0) {
        fprintf(stderr, "websocket-echo: cannot start the event loop\n");
        return 1;
    }

    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = on_request;
    gh_server_t *srv = ex_start("websocket-echo", &cfg, listen, extra_sigs);
    if (!srv)
        return 1;
    while (signal_next() == SIGUSR1) {
        if (stats_on) {
            char buf[128];
            stats_report(buf, sizeof buf);
            fputs(buf, stdout);
            fflush(stdout);
        }
    }
    gh_server_shutdown(srv, 5 * GH_SEC);
    int stop = -1;
    if (write(kick[1], &stop, sizeof stop) == sizeof stop)
        gh_thread_join(loop, NULL);
    return 0;
}
