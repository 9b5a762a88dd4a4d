/*
 * lib/websocket.c: RFC 6455 server side over watches (gchttp/websocket.h), with
 * permessage-deflate (RFC 7692).
 *
 * Input is parsed on the loop's thread as it arrives, in place in the thread's read
 * buffer: a frame header is gathered in ws->hdr (it may arrive split), the
 * payload is unmasked where it lies and either copied into the message buffer, inflated
 * into it, or handed to on_fragment. Nothing is kept between messages.
 *
 * Output is framed under ws->smu (one sender at a time: the deflate stream and the
 * order of frames on the wire must agree) and handed to the watch, which writes it at
 * once or queues it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <zlib.h>

#include "internal.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define DEFAULT_MAX_MESSAGE ((size_t)16 << 20)

/* zlib's state for one connection: malloc'd by zlib, so it lives outside the GC heap
 * and is ended explicitly at the close (ws_zfree), or by the finalizer as a backstop. */
typedef struct ws_z {
    z_stream in, out;
    int in_ok, out_ok;
} ws_z_t;

/*
 * The WebSocket: see gchttp/websocket.h.
 * Alloc:     gh_obj_new in gh_ws_upgrade; msg is atomic; z is malloc'd (zlib).
 * Kept by:   its watch (watch->data) while the loop serves it; the program.
 * OS state:  none of its own (the watch's descriptor); z freed at the close.
 * Threads:   input state (hdr..utf8, msg) on the loop's thread; send state
 *            (close_sent, frag_out, the deflate stream) under smu.
 */
struct gh_ws_s {
    gh_watch_t *watch;
    const gh_ws_config_t *cfg;
    void *user;
    char *msg;              /* atomic: the message being assembled, NULL between */
    char *proto;            /* atomic: the chosen subprotocol */
    char *ctl;              /* atomic: a control frame's payload, while one is read */
    char *reason;           /* atomic: the close reason, once a close was sent */
    /* not traced */
    ws_z_t *z;
    pthread_mutex_t smu;
    size_t msg_len, msg_cap;
    size_t msg_wire;        /* compressed bytes of the message so far */
    uint64_t left, pos;     /* payload bytes left in the frame; offset (mask phase) */
    uint32_t utf8;          /* incremental UTF-8 state: need | lo << 8 | hi << 16 */
    int close_code;
    uint8_t hdr[14], hdr_len;
    uint8_t ctl_len;
    uint8_t mask[4];
    uint8_t op, fin, in_frame;
    uint8_t msg_op;         /* opcode of the message in progress, 0: none */
    uint8_t msg_z;          /* it is compressed */
    uint8_t failed;         /* 1: data ignored, framing kept; 2: all input ignored */
    uint8_t close_sent, frag_out, ping_out, ended;
    uint8_t deflate, srv_nct, cli_nct, srv_bits;
};

static const size_t ws_ptrs[] = {offsetof(gh_ws_t, watch), offsetof(gh_ws_t, cfg),
                                 offsetof(gh_ws_t, user),  offsetof(gh_ws_t, msg),
                                 offsetof(gh_ws_t, proto), offsetof(gh_ws_t, ctl),
                                 offsetof(gh_ws_t, reason)};
static const char *const ws_names[] = {"watch", "cfg", "user", "msg", "proto", "ctl", "reason"};

static void ws_zfree(ws_z_t *z)
{
    if (!z)
        return;
    if (z->in_ok)
        inflateEnd(&z->in);
    if (z->out_ok)
        deflateEnd(&z->out);
    free(z);
}

/* Backstop for a WebSocket dropped without its close having run (no I/O, no locks). */
static void ws_finalize(void *obj)
{
    gh_ws_t *ws = obj;
    ws_zfree(ws->z);
    ws->z = NULL;
}

static gh_type_t ws_type = {"webSocket", sizeof(gh_ws_t), ws_ptrs,
                            sizeof ws_ptrs / sizeof ws_ptrs[0], ws_names, ws_finalize,
                            0, 0, 0, 0, 0, 0};

/* A broadcast frame. Alloc: gh_ws_frame_new; bytes atomic. Kept by its holders. */
struct gh_ws_frame_s {
    char *bytes;
    /* not traced */
    size_t len;
};
static const size_t fr_ptrs[] = {offsetof(gh_ws_frame_t, bytes)};
static const char *const fr_names[] = {"bytes"};
static gh_type_t frame_type = GH_TYPE_INIT_NAMED("wsFrame", gh_ws_frame_t, fr_ptrs, fr_names);

void gh_ws_config_init(gh_ws_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_message = DEFAULT_MAX_MESSAGE;
    cfg->close_timeout = 5 * GH_SEC;
    cfg->deflate = 1;
    cfg->server_max_window_bits = 15;
    cfg->deflate_min = 64;
}

/* ---- UTF-8 (RFC 3629), incrementally ------------------------------------------------ */

#define UTF8_BAD UINT32_MAX

/* Feed n bytes; the state carries a sequence split across calls. UTF8_BAD at the first
 * byte that cannot be part of valid UTF-8 (overlong forms, surrogates, > U+10FFFF). */
static uint32_t utf8_feed(uint32_t st, const unsigned char *s, size_t n)
{
    unsigned need = st & 0xff, lo = (st >> 8) & 0xff, hi = st >> 16;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (need == 0) {
            if (c < 0x80) {
                /* ASCII runs, eight at a time */
                while (i + 8 <= n) {
                    uint64_t v;
                    memcpy(&v, s + i, 8);
                    if (v & 0x8080808080808080ull)
                        break;
                    i += 8;
                }
                if (i < n && s[i] < 0x80)
                    i++;
                continue;
            }
            lo = 0x80;
            hi = 0xbf;
            if (c >= 0xc2 && c <= 0xdf)
                need = 1;
            else if (c == 0xe0)
                need = 2, lo = 0xa0;
            else if (c == 0xed)
                need = 2, hi = 0x9f;
            else if (c >= 0xe1 && c <= 0xef)
                need = 2;
            else if (c == 0xf0)
                need = 3, lo = 0x90;
            else if (c >= 0xf1 && c <= 0xf3)
                need = 3;
            else if (c == 0xf4)
                need = 3, hi = 0x8f;
            else
                return UTF8_BAD;
        } else {
            if (c < lo || c > hi)
                return UTF8_BAD;
            need--;
            lo = 0x80;
            hi = 0xbf;
        }
        i++;
    }
    return need | lo << 8 | hi << 16;
}

static int utf8_complete(uint32_t st) { return (st & 0xff) == 0; }

static int utf8_valid(const void *p, size_t n)
{
    uint32_t st = utf8_feed(0, p, n);
    return st != UTF8_BAD && utf8_complete(st);
}

/* ---- sending ------------------------------------------------------------------------ */

/* A frame header (server frames are never masked, §5.1). Returns its length. */
static size_t frame_header(unsigned char *h, int b0, uint64_t n)
{
    h[0] = (unsigned char)b0;
    if (n < 126) {
        h[1] = (unsigned char)n;
        return 2;
    }
    if (n <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)(n >> (56 - 8 * i));
    return 10;
}

/* Under smu. */
static ssize_t send_raw(gh_ws_t *ws, int b0, const void *p, size_t n)
{
    unsigned char h[10];
    size_t hl = frame_header(h, b0, n);
    return gh_watch_write2(ws->watch, h, hl, p, n);
}

static int z_out_init(gh_ws_t *ws)
{
    if (!ws->z) {
        ws->z = calloc(1, sizeof *ws->z);
        if (!ws->z)
            return GH_ENOMEM;
    }
    if (!ws->z->out_ok) {
        /* Raw deflate (negative window bits), RFC 7692 §7.2.1. */
        if (deflateInit2(&ws->z->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -(int)ws->srv_bits, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return GH_ENOMEM;
        ws->z->out_ok = 1;
    }
    return 0;
}

/* Compress a message (RFC 7692 §7.2.1): deflate, sync flush, drop the final
 * 00 00 ff ff. Under smu. Returns 0 with the bytes in out and outn, or a negative code. */
static int compress_msg(gh_ws_t *ws, const void *p, size_t n, char **out, size_t *outn)
{
    int rc = z_out_init(ws);
    if (rc < 0)
        return rc;
    z_stream *z = &ws->z->out;
    size_t cap = deflateBound(z, n) + 16, len = 0;
    char *b = gh_bytes_new(cap);
    if (!b)
        return GH_ENOMEM;
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)n;
    for (;;) {
        z->next_out = (Bytef *)b + len;
        z->avail_out = (uInt)(cap - len);
        int zr = deflate(z, Z_SYNC_FLUSH);
        len = cap - z->avail_out;
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return GH_EPROTO;
        if (z->avail_in == 0 && z->avail_out > 0)
            break;
        char *nb = gh_bytes_new(cap * 2);
        if (!nb)
            return GH_ENOMEM;
        memcpy(nb, b, len);
        b = nb;
        cap *= 2;
    }
    z->next_in = z->next_out = NULL;
    if (len >= 4 && memcmp(b + len - 4, "\0\0\xff\xff", 4) == 0)
        len -= 4;
    if (ws->srv_nct)
        deflateReset(z);
    *out = b;
    *outn = len;
    return 0;
}

ssize_t gh_ws_send(gh_ws_t *ws, int op, const void *p, size_t n)
{
    if (op != GH_WS_TEXT && op != GH_WS_BINARY)
        return GH_EINVAL;
    pthread_mutex_lock(&ws->smu);
    ssize_t rc;
    if (ws->close_sent)
        rc = GH_EBADF;
    else if (ws->frag_out)
        rc = GH_EBUSY;
    else if (ws->deflate && n >= ws->cfg->deflate_min) {
        char *c;
        size_t cn;
        rc = compress_msg(ws, p, n, &c, &cn);
        if (rc == 0)
            rc = send_raw(ws, 0x80 | 0x40 | op, c, cn); /* FIN, RSV1: compressed */
    } else {
        rc = send_raw(ws, 0x80 | op, p, n);
    }
    pthread_mutex_unlock(&ws->smu);
    return rc;
}

ssize_t gh_ws_send_fragment(gh_ws_t *ws, int op, const void *p, size_t n, int fin)
{
    pthread_mutex_lock(&ws->smu);
    ssize_t rc;
    if (ws->close_sent)
        rc = GH_EBADF;
    else if (op == GH_WS_CONT ? !ws->frag_out : (op != GH_WS_TEXT && op != GH_WS_BINARY))
        rc = GH_EINVAL;
    else if (op != GH_WS_CONT && ws->frag_out)
        rc = GH_EBUSY;
    else {
        /* Fragmented messages go uncompressed: each frame is sent as it comes. */
        rc = send_raw(ws, (fin ? 0x80 : 0) | op, p, n);
        if (rc >= 0)
            ws->frag_out = !fin;
    }
    pthread_mutex_unlock(&ws->smu);
    return rc;
}

ssize_t gh_ws_ping(gh_ws_t *ws, const void *p, size_t n)
{
    if (n > 125)
        return GH_EINVAL;
    pthread_mutex_lock(&ws->smu);
    ssize_t rc = ws->close_sent ? GH_EBADF : send_raw(ws, 0x80 | GH_WS_PING, p, n);
    pthread_mutex_unlock(&ws->smu);
    return rc;
}

static int close_code_valid(int code)
{
    /* §7.4.1 and the IANA registry: 1004-1006 and 1015 are never sent; 1016-2999 are
     * reserved; 3000-4999 are for libraries and applications. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* Send a close frame once (under smu). Returns 0, GH_EBADF if one was sent. */
static int send_close_locked(gh_ws_t *ws, int code, const char *reason, size_t rlen)
{
    if (ws->close_sent)
        return GH_EBADF;
    unsigned char b[125];
    size_t n = 0;
    if (code) {
        b[0] = (unsigned char)(code >> 8);
        b[1] = (unsigned char)code;
        memcpy(b + 2, reason, rlen);
        n = 2 + rlen;
    }
    ws->close_sent = 1;
    ws->close_code = code ? code : GH_WS_NO_STATUS;
    ws->reason = rlen ? gh_strndup(reason, rlen) : NULL; /* NULL: "" */
    ssize_t rc = send_raw(ws, 0x80 | GH_WS_CLOSE, b, n);
    return rc < 0 ? (int)rc : 0;
}

int gh_ws_close(gh_ws_t *ws, int code, const char *reason)
{
    size_t rlen = reason ? strlen(reason) : 0;
    if (!close_code_valid(code) || rlen > 123 || !utf8_valid(reason ? reason : "", rlen))
        return GH_EINVAL;
    pthread_mutex_lock(&ws->smu);
    int rc = send_close_locked(ws, code, reason ? reason : "", rlen);
    pthread_mutex_unlock(&ws->smu);
    if (rc == 0) /* wait (bounded) for the peer's close (§7.1.2) */
        gh_watch_set_timer(ws->watch, gh_now() + ws->cfg->close_timeout);
    return rc == GH_EBADF ? rc : 0;
}

size_t gh_ws_queued(gh_ws_t *ws) { return gh_watch_queued(ws->watch); }
const char *gh_ws_subprotocol(const gh_ws_t *ws) { return ws->proto; }
int gh_ws_compressed(const gh_ws_t *ws) { return ws->deflate; }
gh_watch_t *gh_ws_watch(gh_ws_t *ws) { return ws->watch; }
void gh_ws_set_user(gh_ws_t *ws, void *user) { ws->user = user; }
void *gh_ws_user(const gh_ws_t *ws) { return ws->user; }

/* ---- broadcast ---------------------------------------------------------------------- */

gh_ws_frame_t *gh_ws_frame_new(int op, const void *p, size_t n)
{
    if (op != GH_WS_TEXT && op != GH_WS_BINARY)
        return NULL;
    gh_ws_frame_t *f = gh_obj_new(&frame_type);
    char *b = gh_bytes_new(n + 10);
    if (!f || !b)
        return NULL;
    size_t hl = frame_header((unsigned char *)b, 0x80 | op, n);
    if (n)
        memcpy(b + hl, p, n);
    f->bytes = b;
    f->len = hl + n;
    return f;
}

ssize_t gh_ws_send_frame(gh_ws_t *ws, const gh_ws_frame_t *f)
{
    pthread_mutex_lock(&ws->smu);
    ssize_t rc = ws->close_sent ? GH_EBADF
                 : ws->frag_out ? GH_EBUSY
                                : gh_watch_write_shared(ws->watch, f->bytes, f->len);
    pthread_mutex_unlock(&ws->smu);
    return rc;
}

size_t gh_ws_broadcast(const gh_ws_frame_t *f, gh_ws_t *const *set, size_t n)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        if (set[i] && gh_ws_send_frame(set[i], f) >= 0)
            ok++;
    return ok;
}

/* ---- receiving ------------------------------------------------------------------------ */

/* Fail the connection (§7.1.7): send a close with code, ignore what follows. lost: the
 * framing cannot be trusted, so nothing more is parsed and our side is shut so that the
 * peer sees the end at once. */
static void ws_fail(gh_ws_t *ws, int code, int lost)
{
    pthread_mutex_lock(&ws->smu);
    int sent = send_close_locked(ws, code, "", 0) == 0;
    pthread_mutex_unlock(&ws->smu);
    ws->failed = lost ? 2 : 1;
    ws->msg = NULL;
    ws->msg_len = ws->msg_cap = 0;
    if (!sent && ws->failed == 2) {
        gh_watch_abort(ws->watch); /* already closing, and now lost: end it */
        return;
    }
    if (lost && gh_watch_queued(ws->watch) == 0)
        gh_fd_shutdown_write(gh_netconn_fd(gh_watch_netconn(ws->watch)));
    gh_watch_set_timer(ws->watch, gh_now() + ws->cfg->close_timeout);
}

static void unmask(unsigned char *p, size_t n, const uint8_t mask[4], uint64_t pos)
{
    unsigned char m[8];
    for (int i = 0; i < 8; i++)
        m[i] = mask[(pos + (uint64_t)i) & 3];
    size_t i = 0;
    uint64_t mw;
    memcpy(&mw, m, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= mw;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] ^= m[i & 7];
}

/* Make room for n more bytes (+1 for a NUL) in the message buffer. */
static int msg_reserve(gh_ws_t *ws, size_t n)
{
    if (ws->msg_cap - ws->msg_len > n)
        return 0;
    size_t cap = ws->msg_cap * 2;
    if (cap < ws->msg_len + n + 1)
        cap = ws->msg_len + n + 1;
    char *b = gh_bytes_new(cap);
    if (!b)
        return GH_ENOMEM;
    if (ws->msg_len)
        memcpy(b, ws->msg, ws->msg_len);
    ws->msg = b;
    ws->msg_cap = cap;
    return 0;
}

/* Bytes of the message's content (after inflating). Returns 0, or -1 if failed. */
static int content(gh_ws_t *ws, const char *p, size_t n, int in_buffer)
{
    const gh_ws_config_t *cfg = ws->cfg;
    if (ws->msg_op == GH_WS_TEXT) {
        ws->utf8 = utf8_feed(ws->utf8, (const unsigned char *)p, n);
        if (ws->utf8 == UTF8_BAD) {
            ws_fail(ws, GH_WS_INVALID_DATA, 0); /* at once, before the message ends */
            return -1;
        }
    }
    if (cfg->on_fragment) {
        if (n)
            cfg->on_fragment(ws, ws->msg_op, p, n, 0, cfg->data);
        if (in_buffer)
            ws->msg_len = 0;
        return 0;
    }
    if (!in_buffer) {
        if (ws->msg_len + n > cfg->max_message) {
            ws_fail(ws, GH_WS_TOO_BIG, 0);
            return -1;
        }
        if (msg_reserve(ws, n) < 0) {
            ws_fail(ws, GH_WS_INTERNAL, 0);
            return -1;
        }
        memcpy(ws->msg + ws->msg_len, p, n);
        ws->msg_len += n;
    }
    return 0;
}

/* Inflate compressed payload into the message buffer (§7.2.2). */
static int inflate_bytes(gh_ws_t *ws, const char *p, size_t n)
{
    if (!ws->z) {
        ws->z = calloc(1, sizeof *ws->z);
        if (!ws->z)
            return ws_fail(ws, GH_WS_INTERNAL, 0), -1;
    }
    if (!ws->z->in_ok) {
        /* Any client window up to 15 bits decodes with a 15-bit window. */
        if (inflateInit2(&ws->z->in, -15) != Z_OK)
            return ws_fail(ws, GH_WS_INTERNAL, 0), -1;
        ws->z->in_ok = 1;
    }
    z_stream *z = &ws->z->in;
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)n;
    size_t limit = ws->cfg->on_fragment ? SIZE_MAX : ws->cfg->max_message;
    do {
        size_t chunk = n * 4 < 4096 ? 4096 : n * 4;
        if (ws->cfg->on_fragment && chunk > 65536)
            chunk = 65536;
        if (msg_reserve(ws, chunk) < 0)
            return ws_fail(ws, GH_WS_INTERNAL, 0), -1;
        size_t room = ws->msg_cap - ws->msg_len - 1;
        z->next_out = (Bytef *)ws->msg + ws->msg_len;
        z->avail_out = (uInt)room;
        int zr = inflate(z, Z_SYNC_FLUSH);
        size_t got = room - z->avail_out;
        if (zr != Z_OK && zr != Z_BUF_ERROR && zr != Z_STREAM_END)
            return ws_fail(ws, GH_WS_INVALID_DATA, 0), -1;
        const char *q = ws->msg + ws->msg_len;
        ws->msg_len += got;
        if (ws->msg_len > limit)
            return ws_fail(ws, GH_WS_TOO_BIG, 0), -1;
        if (got && content(ws, q, got, 1) < 0)
            return -1;
        if (zr == Z_BUF_ERROR || (got == 0 && z->avail_in == 0))
            break;
    } while (z->avail_in > 0 || z->avail_out == 0);
    z->next_in = z->next_out = NULL;
    return 0;
}

static int payload(gh_ws_t *ws, const char *p, size_t n)
{
    if (ws->msg_z) {
        ws->msg_wire += n;
        if (!ws->cfg->on_fragment && ws->msg_wire > ws->cfg->max_message)
            return ws_fail(ws, GH_WS_TOO_BIG, 0), -1;
        return inflate_bytes(ws, p, n);
    }
    return content(ws, p, n, 0);
}

static void message_end(gh_ws_t *ws)
{
    const gh_ws_config_t *cfg = ws->cfg;
    if (ws->msg_z) {
        if (inflate_bytes(ws, "\0\0\xff\xff", 4) < 0)
            return;
        if (ws->cli_nct)
            inflateReset(&ws->z->in);
    }
    if (ws->msg_op == GH_WS_TEXT && !utf8_complete(ws->utf8)) {
        ws_fail(ws, GH_WS_INVALID_DATA, 0);
        return;
    }
    int op = ws->msg_op;
    ws->msg_op = 0;
    if (cfg->on_fragment) {
        ws->msg = NULL;
        ws->msg_len = ws->msg_cap = 0;
        cfg->on_fragment(ws, op, "", 0, 1, cfg->data);
        return;
    }
    if (msg_reserve(ws, 0) < 0) {
        ws_fail(ws, GH_WS_INTERNAL, 0);
        return;
    }
    char *m = ws->msg;
    size_t n = ws->msg_len;
    m[n] = 0;
    /* Between messages nothing is held: the buffer is the callback's now. */
    ws->msg = NULL;
    ws->msg_len = ws->msg_cap = 0;
    if (cfg->on_message)
        cfg->on_message(ws, op, m, n, cfg->data);
}

static void control(gh_ws_t *ws)
{
    const unsigned char *p = (const unsigned char *)ws->ctl;
    size_t n = ws->ctl_len;
    ws->ctl = NULL; /* p stays valid: it is on our stack */
    switch (ws->op) {
    case GH_WS_PING:
        pthread_mutex_lock(&ws->smu);
        if (!ws->close_sent) /* §5.5.2: answer with the same payload */
            send_raw(ws, 0x80 | GH_WS_PONG, p, n);
        pthread_mutex_unlock(&ws->smu);
        return;
    case GH_WS_PONG:
        ws->ping_out = 0;
        return;
    default: /* GH_WS_CLOSE */
        break;
    }
    int code = n >= 2 ? p[0] << 8 | p[1] : 0;
    if (n == 1 || (n >= 2 && !close_code_valid(code))) {
        ws_fail(ws, GH_WS_PROTOCOL_ERROR, 0);
        gh_watch_close(ws->watch);
        return;
    }
    if (n > 2 && !utf8_valid(p + 2, n - 2)) {
        ws_fail(ws, GH_WS_INVALID_DATA, 0);
        gh_watch_close(ws->watch);
        return;
    }
    pthread_mutex_lock(&ws->smu);
    int ours = ws->close_sent;
    if (!ours) {
        /* §5.5.1: answer with the same code; the server then closes TCP first. */
        send_close_locked(ws, code, (const char *)p + 2, n > 2 ? n - 2 : 0);
    }
    pthread_mutex_unlock(&ws->smu);
    gh_watch_close(ws->watch);
}

/* A complete header is in ws->hdr. Returns 0, or -1 if the connection failed. */
static int frame_start(gh_ws_t *ws)
{
    const uint8_t *h = ws->hdr;
    int fin = h[0] >> 7, rsv = (h[0] >> 4) & 7, op = h[0] & 15, len7 = h[1] & 0x7f;
    uint64_t len = (uint64_t)len7;
    size_t at = 2;
    if (len7 == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        at = 4;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        at = 10;
    }
    memcpy(ws->mask, h + at, 4);
    int bad = !(h[1] & 0x80);                                 /* §5.1: clients mask */
    bad |= (op > GH_WS_BINARY && op < GH_WS_CLOSE) || op > GH_WS_PONG; /* §5.2 */
    bad |= len7 == 127 && (len >> 63);
    bad |= op >= GH_WS_CLOSE && (!fin || len > 125 || rsv);  /* §5.5 */
    /* RSV1 marks a compressed message (RFC 7692 §6): only on its first frame, only
     * when negotiated. RSV2 and RSV3 mean nothing here (§5.2). */
    bad |= (rsv & 3) != 0;
    bad |= (rsv & 4) && (!ws->deflate || op == GH_WS_CONT);
    if (!bad && op < GH_WS_CLOSE && !ws->failed)
        bad = (op == GH_WS_CONT) != (ws->msg_op != 0); /* §5.4 */
    if (bad) {
        ws_fail(ws, GH_WS_PROTOCOL_ERROR, 1);
        return -1;
    }
    ws->op = (uint8_t)op;
    ws->fin = (uint8_t)fin;
    ws->left = len;
    ws->pos = 0;
    ws->in_frame = 1;
    ws->ctl_len = 0;
    if (op >= GH_WS_CLOSE) {
        ws->ctl = gh_bytes_new(len ? (size_t)len : 1);
        if (!ws->ctl) {
            ws_fail(ws, GH_WS_INTERNAL, 1);
            return -1;
        }
        return 0;
    }
    if (ws->failed)
        return 0;
    if ((op == GH_WS_TEXT && ws->cfg->refuse_text) || (op == GH_WS_BINARY && ws->cfg->refuse_binary)) {
        ws_fail(ws, GH_WS_UNSUPPORTED, 0); /* §7.4.1: a kind of data it cannot accept */
        return -1;
    }
    if (op != GH_WS_CONT) {
        ws->msg_op = (uint8_t)op;
        ws->msg_z = (rsv & 4) != 0;
        ws->msg_wire = 0;
        ws->utf8 = 0;
        ws->msg_len = 0;
    }
    if (!ws->cfg->on_fragment && !ws->msg_z && len > ws->cfg->max_message - ws->msg_len) {
        ws_fail(ws, GH_WS_TOO_BIG, 0); /* refused on the length alone */
        return -1;
    }
    return 0;
}

static void frame_end(gh_ws_t *ws)
{
    ws->in_frame = 0;
    ws->hdr_len = 0;
    if (ws->op >= GH_WS_CLOSE) {
        control(ws);
        return;
    }
    if (ws->fin && !ws->failed)
        message_end(ws);
}

/* The fast path of ws_readable: a single-frame message whose payload is all in the
 * watch's buffer is unmasked, checked and delivered there (p[n] is the watch's spare
 * byte, NUL for the call). */
static void deliver_in_place(gh_ws_t *ws, char *p, size_t n)
{
    int op = ws->op;
    unmask((unsigned char *)p, n, ws->mask, 0);
    ws->left = 0;
    ws->in_frame = 0;
    ws->hdr_len = 0;
    ws->msg_op = 0;
    if (op == GH_WS_TEXT && !utf8_valid(p, n)) {
        ws_fail(ws, GH_WS_INVALID_DATA, 0);
        return;
    }
    char save = p[n];
    p[n] = 0;
    if (ws->cfg->on_message)
        ws->cfg->on_message(ws, op, p, n, ws->cfg->data);
    p[n] = save;
}

static size_t ws_readable(gh_watch_t *w, char *p, size_t n, void *data)
{
    (void)w;
    gh_ws_t *ws = data;
    size_t i = 0;
    while (i < n && !ws->ended) {
        if (ws->failed == 2)
            return n;
        if (!ws->in_frame) {
            ws->hdr[ws->hdr_len++] = (uint8_t)p[i++];
            if (ws->hdr_len < 2)
                continue;
            int len7 = ws->hdr[1] & 0x7f;
            size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
            if (!(ws->hdr[1] & 0x80))
                need = 2; /* unmasked: refused in frame_start */
            if (ws->hdr_len < need)
                continue;
            if (frame_start(ws) < 0)
                continue; /* failed: the loop top discards (2) or parses on (1) */
            if (ws->left > 0 && ws->left <= n - i && ws->fin && ws->op != GH_WS_CONT &&
                ws->op < GH_WS_CLOSE && !ws->msg_z && !ws->failed && !ws->cfg->on_fragment) {
                /* A whole message in one frame, all of it here: deliver it in place. */
                size_t len = (size_t)ws->left;
                deliver_in_place(ws, p + i, len);
                i += len;
                continue;
            }
            if (ws->left == 0)
                frame_end(ws);
            continue;
        }
        size_t k = n - i < ws->left ? n - i : (size_t)ws->left;
        unsigned char *q = (unsigned char *)p + i;
        unmask(q, k, ws->mask, ws->pos);
        i += k;
        ws->left -= k;
        ws->pos += k;
        if (ws->op >= GH_WS_CLOSE) {
            memcpy(ws->ctl + ws->ctl_len, q, k);
            ws->ctl_len = (uint8_t)(ws->ctl_len + k);
        } else if (!ws->failed && payload(ws, (const char *)q, k) < 0) {
            /* failed with framing kept: skip the rest of this frame */
        }
        if (ws->left == 0)
            frame_end(ws);
    }
    return n;
}

static void ws_timer(gh_watch_t *w, void *data)
{
    gh_ws_t *ws = data;
    pthread_mutex_lock(&ws->smu);
    int closing = ws->close_sent;
    pthread_mutex_unlock(&ws->smu);
    if (closing || ws->ping_out) {
        /* No close answer within close_timeout, or no pong within a ping interval. */
        if (!closing)
            ws->close_code = GH_WS_ABNORMAL;
        gh_watch_abort(w);
        return;
    }
    if (ws->cfg->ping_interval > 0) {
        ws->ping_out = 1;
        gh_ws_ping(ws, "", 0);
        gh_watch_set_timer(w, gh_now() + ws->cfg->ping_interval);
    }
}

static void ws_writable(gh_watch_t *w, void *data)
{
    (void)w;
    gh_ws_t *ws = data;
    if (ws->failed == 2 && !ws->ended) /* our close is out: now the peer sees the end */
        gh_fd_shutdown_write(gh_netconn_fd(gh_watch_netconn(ws->watch)));
    if (ws->cfg->on_drain)
        ws->cfg->on_drain(ws, ws->cfg->data);
}

static void ws_closed(gh_watch_t *w, int err, void *data)
{
    (void)w;
    (void)err;
    gh_ws_t *ws = data;
    ws->ended = 1;
    ws->msg = NULL;
    ws->msg_len = ws->msg_cap = 0;
    pthread_mutex_lock(&ws->smu);
    ws->close_sent = 1; /* no more sends */
    ws_z_t *z = ws->z;
    ws->z = NULL;
    int code = ws->close_code ? ws->close_code : GH_WS_ABNORMAL;
    pthread_mutex_unlock(&ws->smu);
    ws_zfree(z);
    if (ws->cfg->on_close)
        ws->cfg->on_close(ws, code, ws->reason ? ws->reason : "", ws->cfg->data);
}

/* The server shuts down: 1001 Going Away (RFC 6455 §7.4.1), and the closing handshake
 * runs as usual (the shutdown waits for it, up to its deadline). */
static void ws_shutdown(gh_watch_t *w, void *data)
{
    (void)w;
    (void)gh_ws_close(data, GH_WS_GOING_AWAY, "server shutting down");
}

static const gh_watch_ops_t ws_ops = {ws_readable, ws_writable, ws_timer, ws_closed,
                                      ws_shutdown};

/* ---- the opening handshake ----------------------------------------------------------- */

int gh_ws_accept_key(const char *key, char out[29])
{
    size_t kl = strlen(key);
    uint8_t raw[BASE64_DECODE_LENGTH(24) + 1];
    size_t rl = sizeof raw;
    struct base64_decode_ctx dc;
    base64_decode_init(&dc);
    /* §4.1: the key is 16 random bytes, base64-encoded: 24 characters. */
    if (kl != 24 || !base64_decode_update(&dc, &rl, raw, kl, key) || !base64_decode_final(&dc) ||
        rl != 16)
        return GH_EINVAL;
    struct sha1_ctx s;
    uint8_t d[SHA1_DIGEST_SIZE];
    sha1_init(&s);
    sha1_update(&s, kl, (const uint8_t *)key);
    sha1_update(&s, sizeof WS_GUID - 1, (const uint8_t *)WS_GUID);
    sha1_digest(&s, sizeof d, d);
    base64_encode_raw(out, sizeof d, d);
    out[28] = 0;
    return 0;
}

/* Call fn for each comma-separated element of every `name` field (RFC 9110 §5.6.1),
 * trimmed; stop when it returns nonzero, and return that. */
static int each_element(const gh_request_t *r, const char *name,
                        int (*fn)(const char *v, size_t n, void *arg), void *arg)
{
    for (size_t i = 0; i < gh_request_header_count(r); i++) {
        const char *fname, *v;
        if (gh_request_header_at(r, i, &fname, &v) < 0 || strcasecmp(fname, name) != 0)
            continue;
        while (*v) {
            while (*v == ' ' || *v == '\t' || *v == ',')
                v++;
            size_t k = strcspn(v, ",");
            size_t e = k;
            while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t'))
                e--;
            if (e) {
                int rc = fn(v, e, arg);
                if (rc)
                    return rc;
            }
            v += k;
        }
    }
    return 0;
}

static int token_is(const char *v, size_t n, void *arg)
{
    const char *t = arg;
    return strlen(t) == n && strncasecmp(v, t, n) == 0;
}

struct proto_pick {
    const char *want;
    size_t n;
};
static int proto_is(const char *v, size_t n, void *arg)
{
    struct proto_pick *pp = arg;
    return n == pp->n && memcmp(v, pp->want, n) == 0; /* subprotocols are case-sensitive */
}

/* permessage-deflate negotiation (RFC 7692 §7.1): the first acceptable offer wins. */
typedef struct pmd {
    const gh_ws_config_t *cfg;
    int accepted, srv_nct, cli_nct, srv_bits, cli_bits; /* cli_bits: 0 none, -1 no value */
} pmd_t;

static int parse_bits(const char *v, size_t n)
{
    if (n == 0 || n > 2)
        return -1;
    int b = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        b = b * 10 + (v[i] - '0');
    }
    if (n == 2 && v[0] == '0')
        return -1;
    return b >= 8 && b <= 15 ? b : -1;
}

/* One offer: "permessage-deflate; p1; p2=v". Elements are split on ',' already. */
static int pmd_offer(const char *v, size_t n, void *arg)
{
    pmd_t *pm = arg;
    const gh_ws_config_t *cfg = pm->cfg;
    size_t k = 0;
    while (k < n && v[k] != ';')
        k++;
    size_t e = k;
    while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t'))
        e--;
    if (e != 18 || strncasecmp(v, "permessage-deflate", 18) != 0)
        return 0;
    int srv_nct = cfg->server_no_context_takeover != 0, cli_nct = 0, cli_bits = 0;
    int srv_bits = cfg->server_max_window_bits, srv_bits_asked = 0;
    int seen = 0;
    while (k < n) {
        k++; /* ';' */
        while (k < n && (v[k] == ' ' || v[k] == '\t'))
            k++;
        size_t s = k;
        while (k < n && v[k] != ';')
            k++;
        size_t end = k;
        while (end > s && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        const char *p = v + s;
        size_t pl = end - s;
        const char *eq = memchr(p, '=', pl);
        size_t nl = eq ? (size_t)(eq - p) : pl;
        const char *val = eq ? eq + 1 : NULL;
        size_t vl = eq ? pl - nl - 1 : 0;
        if (val && vl >= 2 && val[0] == '"' && val[vl - 1] == '"')
            val++, vl -= 2; /* a quoted-string value */
        int bit;
#define PMD_IS(name) (nl == sizeof(name) - 1 && strncasecmp(p, (name), nl) == 0)
        if (PMD_IS("server_no_context_takeover") && !val) {
            bit = 1;
            srv_nct = 1;
        } else if (PMD_IS("client_no_context_takeover") && !val) {
            bit = 2;
            cli_nct = 1;
        } else if (PMD_IS("server_max_window_bits") && val) {
            bit = 4;
            int b = parse_bits(val, vl);
            if (b < 0)
                return 0; /* an invalid offer: declined */
            srv_bits_asked = 1;
            if (b < srv_bits)
                srv_bits = b;
        } else if (PMD_IS("client_max_window_bits")) {
            bit = 8;
            cli_bits = -1;
            if (val && (cli_bits = parse_bits(val, vl)) < 0)
                return 0;
        } else {
            return 0; /* an unknown parameter: declined (§7.1) */
        }
#undef PMD_IS
        if (seen & bit)
            return 0; /* a parameter twice: declined */
        seen |= bit;
    }
    /* zlib cannot deflate with an 8-bit window (it silently uses 9): decline. */
    if (srv_bits < 9)
        return 0;
    pm->accepted = 1;
    pm->srv_nct = srv_nct;
    pm->cli_nct = cli_nct || cfg->client_no_context_takeover;
    /* §7.1.2.1: server_max_window_bits is answered only when offered; otherwise the
     * server may use the full 15 bits. client_max_window_bits needs no answer: we
     * inflate with a 15-bit window, which reads any smaller one. */
    pm->srv_bits = srv_bits_asked ? srv_bits : 0;
    pm->cli_bits = cli_bits;
    return 1;
}

static int refuse(gh_response_t *w, int status, const char *why)
{
    gh_response_header_set(w, "Content-Type", "text/plain; charset=utf-8");
    gh_response_header_set(w, "Connection", "close");
    gh_response_write_header(w, status);
    gh_response_puts(w, why);
    gh_response_puts(w, "\n");
    return GH_EPROTO;
}

int gh_ws_upgrade(gh_response_t *w, gh_request_t *r, const gh_ws_config_t *cfg, gh_ws_t **out)
{
    *out = NULL;
    /* RFC 6455 §4.2.1 */
    if (strcmp(gh_request_method(r), "GET") != 0)
        return refuse(w, 400, "websocket: the opening handshake must be a GET");
    if (gh_request_proto_major(r) != 1 || gh_request_proto_minor(r) < 1)
        return refuse(w, 400, "websocket: the opening handshake needs HTTP/1.1");
    if (!each_element(r, "Upgrade", token_is, "websocket"))
        return refuse(w, 400, "websocket: no 'Upgrade: websocket'");
    if (!each_element(r, "Connection", token_is, "upgrade"))
        return refuse(w, 400, "websocket: no 'Connection: Upgrade'");
    const char *ver = gh_request_header(r, "Sec-WebSocket-Version");
    if (!ver || strcmp(ver, "13") != 0) {
        gh_response_header_set(w, "Sec-WebSocket-Version", "13"); /* §4.4 */
        return refuse(w, 426, "websocket: unsupported Sec-WebSocket-Version (13 is spoken)");
    }
    const char *key = gh_request_header(r, "Sec-WebSocket-Key");
    char accept[29];
    if (!key || gh_ws_accept_key(key, accept) < 0)
        return refuse(w, 400, "websocket: Sec-WebSocket-Key must be 16 bytes in base64");
    if (cfg->check_origin && cfg->check_origin(r, gh_request_header(r, "Origin"), cfg->data))
        return refuse(w, 403, "websocket: origin not allowed");

    const char *proto = NULL;
    for (const char *const *sp = cfg->subprotocols; sp && *sp && !proto; sp++) {
        struct proto_pick pp = {*sp, strlen(*sp)};
        if (each_element(r, "Sec-WebSocket-Protocol", proto_is, &pp))
            proto = *sp;
    }
    pmd_t pm = {cfg, 0, 0, 0, 0, 0};
    if (cfg->deflate)
        each_element(r, "Sec-WebSocket-Extensions", pmd_offer, &pm);

    gh_ws_t *ws = gh_obj_new(&ws_type);
    if (!ws)
        return GH_ENOMEM;
    pthread_mutex_init(&ws->smu, NULL);
    ws->cfg = cfg;
    if (proto && !(ws->proto = gh_strdup(proto)))
        return GH_ENOMEM;
    if (pm.accepted) {
        char ext[160];
        int k = snprintf(ext, sizeof ext, "permessage-deflate");
        if (pm.srv_nct)
            k += snprintf(ext + k, sizeof ext - (size_t)k, "; server_no_context_takeover");
        if (pm.cli_nct)
            k += snprintf(ext + k, sizeof ext - (size_t)k, "; client_no_context_takeover");
        if (pm.srv_bits)
            k += snprintf(ext + k, sizeof ext - (size_t)k, "; server_max_window_bits=%d",
                          pm.srv_bits);
        ws->deflate = 1;
        ws->srv_nct = (uint8_t)pm.srv_nct;
        ws->cli_nct = (uint8_t)pm.cli_nct;
        ws->srv_bits = (uint8_t)(pm.srv_bits ? pm.srv_bits : 15);
        gh_response_header_set(w, "Sec-WebSocket-Extensions", ext);
    }
    gh_response_header_set(w, "Upgrade", "websocket");
    gh_response_header_set(w, "Connection", "Upgrade");
    gh_response_header_set(w, "Sec-WebSocket-Accept", accept);
    if (proto)
        gh_response_header_set(w, "Sec-WebSocket-Protocol", proto);
    gh_response_write_header(w, 101);

    gh_netconn_t *nc;
    gh_bufrw_t rw;
    int rc = gh_response_hijack(w, &nc, &rw);
    if (rc < 0)
        return rc;
    gh_watch_t *wt;
    rc = gh__watch_new(nc, rw.r, &ws_ops, ws, &wt);
    if (rc < 0) {
        gh_netconn_close(nc);
        return rc;
    }
    ws->watch = wt;
    if (cfg->on_open)
        cfg->on_open(ws, cfg->data); /* before the loop can deliver anything */
    if (cfg->ping_interval > 0)
        gh_watch_set_timer(wt, gh_now() + cfg->ping_interval);
    rc = gh__watch_go(wt);
    if (rc < 0) {
        gh_netconn_close(nc);
        return rc;
    }
    *out = ws;
    return 0;
}
