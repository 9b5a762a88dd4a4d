/* tests/test-websocket.c: gchttp/websocket.h (and the watches under it) against raw
 * loopback sockets, for protocol violations and exact bytes, and against real clients:
 * Debian's python3-websockets (tests/ws/pyclient.py) and npm's `ws` (tests/ws/client.js,
 * installed into tests/ws/node_modules by tests/ws/install-node-ws.sh, which
 * scripts/setup.sh runs). When a client is missing its cases do not run and the program
 * ends SKIP (77), or FAIL under GH_REQUIRE_CLIENTS=1 (th_client), never PASS. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "test-common.h"
#include "support/ws.h"

#define WAIT_MS 15000
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define MANY 1000           /* concurrent sockets */
#define CLOSE_TIMEOUT_MS 300 /* /quick's close timeout */

/* ---- the server under test ------------------------------------------------------------ */

static gh_server_t *srv;
static int port;
static gh_ws_config_t echo_cfg, small_cfg, stream_cfg, proto_cfg, hold_cfg, quick_cfg,
    probe_cfg, plain_cfg, text_cfg, ping_cfg, doomed_cfg;
static const char *const protos[] = {"chat.v2", "chat.v1", NULL};

/* What the callbacks saw; read on the test thread under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
/* Wait (bounded) until *counter >= want (tests/support/client.h). */
static int wait_count(int *counter, int want)
{
    return th_wait_count(&mu, &cv, counter, want, WAIT_MS);
}
static int n_opened, n_closed, last_code, n_drained;
static char last_reason[128];
static gh_ws_t *held[4];        /* /hold connections (static storage: a GC root) */
static int n_held;
static gh_probe_t *probes[8];   /* /probe: its gh_ws_t and watch, watched, not kept */

static void on_echo(gh_ws_t *ws, int op, char *p, size_t n, void *data)
{
    (void)data;
    if (op == GH_WS_TEXT && n == 8 && memcmp(p, "close-me", 8) == 0) {
        ck_assert_int_eq(gh_ws_close(ws, 4000, "bye"), 0);
        return;
    }
    (void)gh_ws_send(ws, op, p, n);
}

/* Stream mode: every piece goes back as a fragment of the same message. */
static void on_piece(gh_ws_t *ws, int op, const char *p, size_t n, int fin, void *data)
{
    (void)data;
    int started = gh_ws_user(ws) != NULL;
    (void)gh_ws_send_fragment(ws, started ? GH_WS_CONT : op, p, n, fin);
    gh_ws_set_user(ws, fin ? NULL : ws);
}

static void on_open(gh_ws_t *ws, void *data)
{
    pthread_mutex_lock(&mu);
    n_opened++;
    if (data == &hold_cfg && n_held < 4)
        held[n_held++] = ws;
    if (data == &probe_cfg) {
        probes[0] = gh_probe_new(ws);
        probes[1] = gh_probe_new(gh_ws_watch(ws));
    }
    /* Aborted before its watch is started: the abort is posted to a watch whose loop
     * has not seen it yet, and must still end it once it starts. */
    if (data == &doomed_cfg)
        gh_watch_abort(gh_ws_watch(ws));
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void on_closed(gh_ws_t *ws, int code, const char *reason, void *data)
{
    (void)ws, (void)data;
    pthread_mutex_lock(&mu);
    n_closed++;
    last_code = code;
    snprintf(last_reason, sizeof last_reason, "%s", reason);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void on_drain(gh_ws_t *ws, void *data)
{
    (void)ws, (void)data;
    pthread_mutex_lock(&mu);
    n_drained++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int refuse_evil(const gh_request_t *r, const char *origin, void *data)
{
    (void)r, (void)data;
    return origin && strcmp(origin, "http://evil.example") == 0;
}

static void handler(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    const char *t = gh_request_target(r);
    const gh_ws_config_t *cfg = !strcmp(t, "/small")    ? &small_cfg
                                : !strcmp(t, "/stream") ? &stream_cfg
                                : !strcmp(t, "/proto")  ? &proto_cfg
                                : !strcmp(t, "/hold")   ? &hold_cfg
                                : !strcmp(t, "/quick")  ? &quick_cfg
                                : !strcmp(t, "/probe")  ? &probe_cfg
                                : !strcmp(t, "/plain")  ? &plain_cfg
                                : !strcmp(t, "/text")   ? &text_cfg
                                : !strcmp(t, "/ping")   ? &ping_cfg
                                : !strcmp(t, "/doomed") ? &doomed_cfg
                                                        : &echo_cfg;
    gh_ws_t *ws;
    if (gh_ws_upgrade(w, r, cfg, &ws) < 0)
        return; /* a bad handshake was answered by it */
}

static void config(gh_ws_config_t *c)
{
    gh_ws_config_init(c);
    c->on_open = on_open;
    c->on_message = on_echo;
    c->on_close = on_closed;
    c->on_drain = on_drain;
    c->data = c;
}

static void setup(void)
{
    config(&echo_cfg);
    config(&small_cfg);
    small_cfg.max_message = 1024;
    config(&stream_cfg);
    stream_cfg.on_fragment = on_piece;
    config(&proto_cfg);
    proto_cfg.subprotocols = protos;
    proto_cfg.check_origin = refuse_evil;
    config(&hold_cfg);
    config(&quick_cfg);
    quick_cfg.close_timeout = CLOSE_TIMEOUT_MS * GH_MSEC;
    config(&probe_cfg);
    config(&plain_cfg);
    plain_cfg.deflate = 0;
    config(&text_cfg);
    text_cfg.refuse_binary = 1;
    config(&ping_cfg);
    ping_cfg.ping_interval = 100 * GH_MSEC;
    config(&doomed_cfg);
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = handler;
    ck_assert_int_eq(gh_server_new(&srv, &cfg), 0);
    ck_assert_int_eq(gh_server_listen(srv, "127.0.0.1", 0), 0);
    ck_assert_int_eq(gh_server_start(srv), 0);
    port = gh_server_port(srv, 0);
    ck_assert_int_gt(port, 0);
}

static void teardown(void)
{
    if (srv)
        gh_server_close(srv);
    srv = NULL;
}

/* ---- a raw client ---------------------------------------------------------------------- */

static char resp[8192];

/* Send a handshake for path with extra header lines; read the response head (byte by
 * byte, so no frame byte is read past it) into resp; returns the status. */
static int handshake(int fd, const char *path, const char *extra)
{
    char req[1024];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "%s\r\n",
             path, extra);
    ck_assert_int_eq(th_sends(fd, req), 0);
    size_t len = 0;
    while (len < 4 || memcmp(resp + len - 4, "\r\n\r\n", 4) != 0) {
        ck_assert_uint_lt(len, sizeof resp - 1);
        ck_assert_int_eq(th_read_exact(fd, resp + len, 1, WAIT_MS), 0);
        len++;
    }
    resp[len] = 0;
    return th_status(resp);
}

static int ws_connect(const char *path)
{
    int fd = th_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(handshake(fd, path, "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"),
                     101);
    ck_assert(th_has_header(resp, "Sec-WebSocket-Accept", ACCEPT));
    return fd;
}

static void send_frame(int fd, int b0, int masked, const void *p, size_t n)
{
    unsigned char *f = malloc(n + 14);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(th_send(fd, f, th_ws_frame(f, b0, masked, p, n)), 0);
    free(f);
}

/* Expect a close frame with code (read past data frames), then the server's TCP close
 * after we answer. */
static void expect_close(int fd, int code)
{
    static unsigned char b[1 << 16];
    size_t n;
    int b0;
    do
        b0 = th_ws_read_frame(fd, b, sizeof b, &n, WAIT_MS);
    while (b0 >= 0 && (b0 & 15) != 8);
    ck_assert_int_eq(b0, 0x88);
    ck_assert_uint_ge(n, 2);
    ck_assert_int_eq(b[0] << 8 | b[1], code);
    unsigned char out[16];
    (void)send(fd, out, th_ws_frame(out, 0x88, 1, b, 2), MSG_NOSIGNAL);
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
}

static void expect_message(int fd, int b0, const void *p, size_t n)
{
    static unsigned char b[1 << 17];
    size_t got;
    ck_assert_int_eq(th_ws_read_frame(fd, b, sizeof b, &got, WAIT_MS), b0);
    ck_assert_uint_eq(got, n);
    ck_assert_int_eq(memcmp(b, p, n), 0);
}

/* ---- handshake -------------------------------------------------------------------------- */

START_TEST(test_handshake_answers_accept_key)
{
    char out[29];
    ck_assert_int_eq(gh_ws_accept_key(KEY, out), 0); /* RFC 6455 §1.3's example */
    ck_assert_str_eq(out, ACCEPT);
    ck_assert_int_eq(gh_ws_accept_key("c2hvcnQ=", out), GH_EINVAL);
    int fd = ws_connect("/echo");
    ck_assert(th_has_header(resp, "Upgrade", "websocket"));
    ck_assert(!th_has_header(resp, "Sec-WebSocket-Extensions", "permessage-deflate"));
    close(fd);
}
END_TEST

START_TEST(test_handshake_other_version_gets_426)
{
    int fd = th_connect(port);
    ck_assert_int_eq(handshake(fd, "/echo", "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 8\r\n"),
                     426);
    ck_assert(th_has_header(resp, "Sec-WebSocket-Version", "13"));
    close(fd);
}
END_TEST

START_TEST(test_handshake_bad_key_gets_400_with_reason)
{
    int fd = th_connect(port);
    ck_assert_int_eq(handshake(fd, "/echo", "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n"),
                     400);
    char body[512];
    int closed;
    ck_assert_int_gt(th_read_all(fd, body, sizeof body - 1, WAIT_MS, &closed), 0);
    ck_assert_ptr_nonnull(strstr(body, "Sec-WebSocket-Key"));
    close(fd);
    fd = th_connect(port);
    ck_assert_int_eq(handshake(fd, "/echo", "Sec-WebSocket-Version: 13\r\n"), 400);
    close(fd);
}
END_TEST

START_TEST(test_handshake_origin_hook_refuses_with_403)
{
    int fd = th_connect(port);
    ck_assert_int_eq(handshake(fd, "/proto", "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"
                                             "Origin: http://evil.example\r\n"),
                     403);
    close(fd);
}
END_TEST

START_TEST(test_handshake_picks_server_preferred_subprotocol)
{
    int fd = th_connect(port);
    ck_assert_int_eq(handshake(fd, "/proto", "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"
                                             "Origin: http://good.example\r\n"
                                             "Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n"),
                     101);
    ck_assert(th_has_header(resp, "Sec-WebSocket-Protocol", "chat.v2"));
    close(fd);
    fd = th_connect(port);
    ck_assert_int_eq(handshake(fd, "/proto", "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"
                                             "Sec-WebSocket-Protocol: mqtt\r\n"),
                     101);
    ck_assert_ptr_null(strstr(resp, "Sec-WebSocket-Protocol"));
    close(fd);
}
END_TEST

START_TEST(test_handshake_negotiates_permessage_deflate_parameters)
{
    int fd = th_connect(port);
    ck_assert_int_eq(
        handshake(fd, "/echo", "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"
                               "Sec-WebSocket-Extensions: x-unknown, permessage-deflate; "
                               "server_max_window_bits=8, permessage-deflate; "
                               "server_no_context_takeover; server_max_window_bits=10; "
                               "client_max_window_bits\r\n"),
        101);
    /* The 8-bit offer is declined (zlib cannot), the next one accepted as asked. */
    ck_assert(th_has_header(resp, "Sec-WebSocket-Extensions",
                            "permessage-deflate; server_no_context_takeover; "
                            "server_max_window_bits=10"));
    close(fd);
    fd = th_connect(port);
    ck_assert_int_eq(handshake(fd, "/plain", "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"
                                             "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                     101);
    ck_assert_ptr_null(strstr(resp, "Sec-WebSocket-Extensions"));
    close(fd);
}
END_TEST

/* ---- messages --------------------------------------------------------------------------- */

START_TEST(test_echoes_text_and_binary_of_every_length_class)
{
    static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 100000};
    static unsigned char buf[100000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)('a' + i % 26);
    int fd = ws_connect("/echo");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        send_frame(fd, 0x81, 1, buf, sizes[i]);
        expect_message(fd, 0x81, buf, sizes[i]);
        send_frame(fd, 0x82, 1, buf, sizes[i]);
        expect_message(fd, 0x82, buf, sizes[i]);
    }
    send_frame(fd, 0x88, 1, "\x03\xe8", 2);
    expect_message(fd, 0x88, "\x03\xe8", 2);
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_code, 1000);
    close(fd);
}
END_TEST

START_TEST(test_first_frame_in_upgrade_segment_is_served)
{
    int fd = th_connect(port);
    char req[512];
    unsigned char f[32];
    int n = snprintf(req, sizeof req,
                     "GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: "
                     "Upgrade\r\nSec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n");
    size_t fl = th_ws_frame(f, 0x81, 1, "first", 5);
    memcpy(req + n, f, fl);
    ck_assert_int_eq(th_send(fd, req, (size_t)n + fl), 0);
    size_t len = 0;
    while (len < 4 || memcmp(resp + len - 4, "\r\n\r\n", 4) != 0)
        ck_assert_int_eq(th_read_exact(fd, resp + len++, 1, WAIT_MS), 0);
    expect_message(fd, 0x81, "first", 5);
    close(fd);
}
END_TEST

START_TEST(test_fragments_with_interleaved_control_frames_come_back_whole)
{
    unsigned char msg[512];
    size_t n = 0;
    n += th_ws_frame(msg + n, 0x01, 1, "frag", 4);
    n += th_ws_frame(msg + n, 0x89, 1, "p1", 2);
    n += th_ws_frame(msg + n, 0x00, 1, "", 0);
    n += th_ws_frame(msg + n, 0x8a, 1, "unsolicited", 11); /* a pong nobody asked for */
    n += th_ws_frame(msg + n, 0x00, 1, "men", 3);
    n += th_ws_frame(msg + n, 0x89, 1, "p2", 2);
    n += th_ws_frame(msg + n, 0x80, 1, "ted \xe2\x9c\x93", 7);
    int fd = ws_connect("/echo");
    /* One byte per send(): every split of header and payload. */
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(th_send(fd, msg + i, 1), 0);
    expect_message(fd, 0x8a, "p1", 2);
    expect_message(fd, 0x8a, "p2", 2);
    expect_message(fd, 0x81, "fragmented \xe2\x9c\x93", 14);
    close(fd);
}
END_TEST

START_TEST(test_stream_mode_delivers_pieces_before_the_end)
{
    int fd = ws_connect("/stream");
    send_frame(fd, 0x02, 1, "one", 3);
    /* The first piece comes back before the message is complete. */
    expect_message(fd, 0x02, "one", 3);
    send_frame(fd, 0x00, 1, "two", 3);
    expect_message(fd, 0x00, "two", 3);
    send_frame(fd, 0x80, 1, "", 0);
    expect_message(fd, 0x80, "", 0);
    close(fd);
}
END_TEST

/* A raw-deflated message (RFC 7692 §7.2.1), as a client with context takeover sends. */
static size_t deflate_raw(z_stream *z, const void *p, size_t n, unsigned char *out, size_t cap)
{
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)n;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(z, Z_SYNC_FLUSH), Z_OK);
    size_t len = cap - z->avail_out;
    ck_assert_int_eq(memcmp(out + len - 4, "\0\0\xff\xff", 4), 0);
    return len - 4;
}

START_TEST(test_deflated_messages_are_inflated_and_answered_compressed)
{
    int fd = th_connect(port);
    ck_assert_int_eq(handshake(fd, "/echo", "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"
                                            "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                     101);
    ck_assert(th_has_header(resp, "Sec-WebSocket-Extensions", "permessage-deflate"));
    z_stream zc, zd;
    memset(&zc, 0, sizeof zc);
    memset(&zd, 0, sizeof zd);
    ck_assert_int_eq(deflateInit2(&zc, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    ck_assert_int_eq(inflateInit2(&zd, -15), Z_OK);
    static char text[5000], c[8192], back[8192];
    for (size_t i = 0; i < sizeof text - 1; i++)
        text[i] = "lorem ipsum dolor sit amet "[i % 27];
    for (int round = 0; round < 3; round++) { /* context taken over between messages */
        size_t cn = deflate_raw(&zc, text, sizeof text - 1, (unsigned char *)c, sizeof c);
        ck_assert_uint_lt(cn, 500);
        send_frame(fd, 0xc1, 1, c, cn); /* FIN, RSV1, text */
        size_t n;
        ck_assert_int_eq(th_ws_read_frame(fd, (unsigned char *)c, sizeof c, &n, WAIT_MS), 0xc1);
        memcpy(c + n, "\0\0\xff\xff", 4);
        zd.next_in = (Bytef *)c;
        zd.avail_in = (uInt)n + 4;
        zd.next_out = (Bytef *)back;
        zd.avail_out = sizeof back;
        ck_assert_int_eq(inflate(&zd, Z_SYNC_FLUSH), Z_OK);
        ck_assert_uint_eq(sizeof back - zd.avail_out, sizeof text - 1);
        ck_assert_int_eq(memcmp(back, text, sizeof text - 1), 0);
    }
    /* Short messages go back uncompressed (RSV1 clear). */
    size_t cn = deflate_raw(&zc, "hi", 2, (unsigned char *)c, sizeof c);
    send_frame(fd, 0xc1, 1, c, cn);
    expect_message(fd, 0x81, "hi", 2);
    deflateEnd(&zc);
    inflateEnd(&zd);
    close(fd);
}
END_TEST

/* ---- failures --------------------------------------------------------------------------- */

static void violation(const char *path, const void *bytes, size_t n, int code)
{
    /* Several violations run in one test: count this connection's close alone, or the
     * wait below returns at once on the previous one's and last_code is still its code. */
    pthread_mutex_lock(&mu);
    n_closed = 0;
    last_code = 0;
    pthread_mutex_unlock(&mu);
    int fd = ws_connect(path);
    ck_assert_int_eq(th_send(fd, bytes, n), 0);
    expect_close(fd, code);
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_code, code);
    close(fd);
}

START_TEST(test_unmasked_frame_is_1002)
{
    unsigned char f[32];
    violation("/echo", f, th_ws_frame(f, 0x81, 0, "hi", 2), 1002);
}
END_TEST

START_TEST(test_reserved_bits_and_opcodes_are_1002)
{
    unsigned char f[32];
    violation("/plain", f, th_ws_frame(f, 0xc1, 1, "hi", 2), 1002); /* RSV1, not negotiated */
    violation("/echo", f, th_ws_frame(f, 0xa1, 1, "hi", 2), 1002);  /* RSV2 */
    violation("/echo", f, th_ws_frame(f, 0x83, 1, "hi", 2), 1002);  /* opcode 3 */
    violation("/echo", f, th_ws_frame(f, 0x8b, 1, "hi", 2), 1002);  /* opcode 11 */
}
END_TEST

START_TEST(test_fragmented_control_frame_and_bad_order_are_1002)
{
    unsigned char f[256];
    violation("/echo", f, th_ws_frame(f, 0x09, 1, "ping", 4), 1002); /* ping without FIN */
    static unsigned char big[126];
    violation("/echo", f, th_ws_frame(f, 0x89, 1, big, sizeof big), 1002); /* ping > 125 */
    violation("/echo", f, th_ws_frame(f, 0x80, 1, "x", 1), 1002); /* continuation first */
    size_t n = th_ws_frame(f, 0x01, 1, "a", 1);
    n += th_ws_frame(f + n, 0x81, 1, "b", 1); /* a new message inside another */
    violation("/echo", f, n, 1002);
}
END_TEST

START_TEST(test_invalid_utf8_split_across_fragments_fails_before_the_end)
{
    /* "€" is e2 82 ac: the first fragment ends after e2 82 (valid so far), the second
     * starts with '(' -- invalid. No final fragment is ever sent. */
    unsigned char f[64];
    size_t n = th_ws_frame(f, 0x01, 1, "ok \xe2\x82", 5);
    int fd = ws_connect("/echo");
    ck_assert_int_eq(th_send(fd, f, n), 0);
    ck_assert_int_eq(th_send(fd, f, th_ws_frame(f, 0x00, 1, "(more", 5)), 0);
    expect_close(fd, 1007);
    close(fd);
    /* Stream mode: the same, and the piece before the bad byte was already delivered. */
    fd = ws_connect("/stream");
    ck_assert_int_eq(th_send(fd, f, th_ws_frame(f, 0x01, 1, "ok \xed\xa0", 5)), 0); /* surrogate */
    expect_close(fd, 1007);
    close(fd);
}
END_TEST

START_TEST(test_invalid_close_frames_are_1002_or_1007)
{
    unsigned char f[64];
    violation("/echo", f, th_ws_frame(f, 0x88, 1, "\x03", 1), 1002);         /* 1-byte payload */
    violation("/echo", f, th_ws_frame(f, 0x88, 1, "\x03\xe7", 2), 1002);     /* code 999 */
    violation("/echo", f, th_ws_frame(f, 0x88, 1, "\x03\xed", 2), 1002);     /* 1005 */
    violation("/echo", f, th_ws_frame(f, 0x88, 1, "\x03\xe8\xc0\xaf", 4), 1007); /* bad reason */
}
END_TEST

START_TEST(test_refused_kind_of_data_is_1003)
{
    unsigned char f[32];
    int fd = ws_connect("/text");
    send_frame(fd, 0x81, 1, "text is fine", 12);
    expect_message(fd, 0x81, "text is fine", 12);
    close(fd);
    /* That connection ends without a close frame: 1006, reported before the next one
     * opens (its report must not be taken for the violation's). */
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_code, 1006);
    violation("/text", f, th_ws_frame(f, 0x82, 1, "bin", 3), 1003);
}
END_TEST

START_TEST(test_oversized_message_is_1009)
{
    unsigned char f[2100];
    static char big[2000];
    memset(big, 'x', sizeof big);
    violation("/small", f, th_ws_frame(f, 0x82, 1, big, sizeof big), 1009);
    /* Fragments that add up past the limit. */
    size_t n = th_ws_frame(f, 0x02, 1, big, 600);
    n += th_ws_frame(f + n, 0x80, 1, big, 600);
    violation("/small", f, n, 1009);
    /* The length alone, 17 MiB, against the 16 MiB default. */
    violation("/echo", f, th_ws_frame(f, 0x82, 1, NULL, 17u << 20), 1009);
}
END_TEST

/* ---- closing ---------------------------------------------------------------------------- */

START_TEST(test_close_code_and_reason_are_echoed_and_reported)
{
    int fd = ws_connect("/echo");
    send_frame(fd, 0x88, 1, "\x0f\xa1see you", 9); /* 4001 */
    expect_message(fd, 0x88, "\x0f\xa1see you", 9);
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1); /* the server closes TCP first */
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_code, 4001);
    ck_assert_str_eq(last_reason, "see you");
    close(fd);
    /* An empty close: answered empty, reported as 1005. */
    fd = ws_connect("/echo");
    send_frame(fd, 0x88, 1, "", 0);
    expect_message(fd, 0x88, "", 0);
    ck_assert(wait_count(&n_closed, 2));
    ck_assert_int_eq(last_code, 1005);
    close(fd);
}
END_TEST

START_TEST(test_server_initiated_close_completes_on_answer)
{
    int fd = ws_connect("/echo");
    send_frame(fd, 0x81, 1, "close-me", 8);
    expect_close(fd, 4000);
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_code, 4000);
    ck_assert_str_eq(last_reason, "bye");
    close(fd);
}
END_TEST

START_TEST(test_unanswered_close_times_out)
{
    int fd = ws_connect("/quick");
    gh_time_t t0 = gh_now();
    send_frame(fd, 0x81, 1, "close-me", 8);
    unsigned char b[64];
    size_t n;
    ck_assert_int_eq(th_ws_read_frame(fd, b, sizeof b, &n, WAIT_MS), 0x88);
    /* We never answer: the server ends it after its close timeout. */
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    gh_time_t took = gh_now() - t0;
    ck_assert_int_ge(took, (CLOSE_TIMEOUT_MS - 20) * GH_MSEC);
    ck_assert(wait_count(&n_closed, 1));
    close(fd);
}
END_TEST

START_TEST(test_keepalive_pings_and_a_silent_peer_is_dropped)
{
    int fd = ws_connect("/ping");
    unsigned char b[64];
    size_t n;
    for (int i = 0; i < 2; i++) { /* pinged, and kept while it answers */
        ck_assert_int_eq(th_ws_read_frame(fd, b, sizeof b, &n, WAIT_MS), 0x89);
        send_frame(fd, 0x8a, 1, b, n);
    }
    ck_assert_int_eq(th_ws_read_frame(fd, b, sizeof b, &n, WAIT_MS), 0x89);
    /* No pong this time: ended within the next interval, reported abnormal. */
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_code, 1006);
    close(fd);
}
END_TEST

START_TEST(test_abrupt_reset_is_reported_1006_and_others_go_on)
{
    int other = ws_connect("/echo");
    int fd = ws_connect("/echo");
    unsigned char f[64];
    size_t n = th_ws_frame(f, 0x81, 1, "half a frame", 12);
    ck_assert_int_eq(th_send(fd, f, n / 2), 0);
    struct linger lg = {1, 0};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(fd); /* RST */
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_code, 1006);
    send_frame(other, 0x81, 1, "still here", 10);
    expect_message(other, 0x81, "still here", 10);
    close(other);
}
END_TEST

START_TEST(test_abort_in_on_open_ends_the_connection_without_input)
{
    int fd = ws_connect("/doomed");
    /* The client sends nothing: only the abort posted before the watch started can
     * end it. */
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_code, GH_WS_ABNORMAL);
    close(fd);
}
END_TEST

/* ---- backpressure, many, broadcast, collection ------------------------------------------ */

START_TEST(test_client_that_stops_reading_gets_bounded_queue_and_drain)
{
    int fd = ws_connect("/hold");
    ck_assert(wait_count(&n_held, 1));
    pthread_mutex_lock(&mu);
    gh_ws_t *ws = held[0];
    pthread_mutex_unlock(&mu);
    static char chunk[65536];
    memset(chunk, 'q', sizeof chunk);
    /* The program sends until the reported queue passes 1 MiB, as a well-behaved
     * sender does; the client reads nothing meanwhile. */
    ssize_t q = 0;
    int sent = 0;
    while (q < (1 << 20) && sent < 4096) {
        q = gh_ws_send(ws, GH_WS_BINARY, chunk, sizeof chunk);
        ck_assert_int_ge(q, 0);
        sent++;
    }
    ck_assert_int_ge(q, 1 << 20);
    ck_assert_int_lt(sent, 4096);
    ck_assert_uint_eq(gh_ws_queued(ws), (size_t)q);
    ck_assert_int_eq(n_drained, 0);
    /* Now read everything: every message arrives whole, and the drain is reported. */
    static unsigned char b[65536];
    for (int i = 0; i < sent; i++) {
        size_t n;
        ck_assert_int_eq(th_ws_read_frame(fd, b, sizeof b, &n, WAIT_MS), 0x82);
        ck_assert_uint_eq(n, sizeof chunk);
    }
    ck_assert(wait_count(&n_drained, 1));
    ck_assert_uint_eq(gh_ws_queued(ws), 0);
    close(fd);
}
END_TEST

START_TEST(test_thousand_concurrent_websockets)
{
    static int fds[MANY];
    for (int i = 0; i < MANY; i++)
        fds[i] = ws_connect("/echo");
    char m[32];
    for (int i = 0; i < MANY; i++) {
        int k = snprintf(m, sizeof m, "conn %d", i);
        send_frame(fds[i], 0x81, 1, m, (size_t)k);
    }
    for (int i = 0; i < MANY; i++) {
        int k = snprintf(m, sizeof m, "conn %d", i);
        expect_message(fds[i], 0x81, m, (size_t)k);
    }
    ck_assert_uint_ge(gh_watch_count(), MANY);
    gh_server_stats_t st;
    gh_server_stats(srv, &st);
    ck_assert_int_ge(st.watched, MANY);
    ck_assert_int_eq(gh_watch_loop_threads(), 0);
    for (int i = 0; i < MANY; i++)
        send_frame(fds[i], 0x88, 1, "\x03\xe8", 2);
    ck_assert(wait_count(&n_closed, MANY));
    for (int i = 0; i < MANY; i++)
        close(fds[i]);
}
END_TEST

START_TEST(test_broadcast_reaches_every_connection_from_one_frame)
{
    enum { N = 4 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = ws_connect("/hold");
    ck_assert(wait_count(&n_held, N));
    gh_ws_frame_t *f = gh_ws_frame_new(GH_WS_TEXT, "news for all", 12);
    ck_assert_ptr_nonnull(f);
    pthread_mutex_lock(&mu);
    gh_ws_t *set[N + 1] = {held[0], held[1], NULL, held[2], held[3]};
    pthread_mutex_unlock(&mu);
    ck_assert_uint_eq(gh_ws_broadcast(f, set, N + 1), N);
    for (int i = 0; i < N; i++)
        expect_message(fds[i], 0x81, "news for all", 12);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    ck_assert(wait_count(&n_closed, N));
    ck_assert_int_lt(gh_ws_send_frame(set[0], f), 0); /* closed: refused */
}
END_TEST

START_TEST(test_closed_websocket_is_collected)
{
    int fd = ws_connect("/probe");
    send_frame(fd, 0x81, 1, "x", 1);
    expect_message(fd, 0x81, "x", 1);
    send_frame(fd, 0x88, 1, "\x03\xe8", 2);
    expect_message(fd, 0x88, "\x03\xe8", 2);
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    close(fd);
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_ptr_nonnull(probes[0]);
    /* The loop scrubs its stack once it has finished the turn that closed it: collect
     * until both are gone (bounded). */
    gh_time_t deadline = gh_now() + (gh_time_t)WAIT_MS * GH_MSEC;
    while (!(gh_probe_reclaimed(probes[0]) && gh_probe_reclaimed(probes[1])) &&
           gh_now() < deadline) {
        gh_gc_collect(2);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL); /* polling a condition in a bounded loop */
    }
    ck_assert_msg(gh_probe_reclaimed(probes[0]), "the gh_ws_t was not collected");
    ck_assert_msg(gh_probe_reclaimed(probes[1]), "the watch was not collected");
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

/* ---- real clients ----------------------------------------------------------------------- */

static const char *py, *node;
static char node_path[4096];

/* Run a client script to completion (bounded by the script's own timeouts); 0 = ok. */
static void client(const char *prog, const char *script, const char *scenario)
{
    if (!prog)
        return; /* th_client noted it: the program ends SKIP, or FAIL in CI */
    char cmd[12288], out[4096];
    const char *src = getenv("top_srcdir");
    snprintf(cmd, sizeof cmd, "NODE_PATH='%s' timeout 60 '%s' '%s/tests/ws/%s' %d %s 2>&1", node_path,
             prog, src && *src ? src : ".", script, port, scenario);
    int rc = th_run(cmd, out, sizeof out);
    ck_assert_msg(rc == 0, "%s %s: exit %d: %s", script, scenario, rc, out);
    ck_assert_msg(strstr(out, "ok\n") != NULL, "%s %s: %s", script, scenario, out);
}

#define CLIENT_TEST(name, prog, script, scenario)                                         \
    START_TEST(name) { client(prog, script, scenario); }                                   \
    END_TEST
CLIENT_TEST(test_python_echo_sizes_0_to_16mib, py, "pyclient.py", "sizes")
CLIENT_TEST(test_python_fragments_and_ping, py, "pyclient.py", "fragments")
CLIENT_TEST(test_python_close_codes, py, "pyclient.py", "close")
CLIENT_TEST(test_python_deflate_on_and_off, py, "pyclient.py", "deflate")
CLIENT_TEST(test_python_oversize_is_1009, py, "pyclient.py", "oversize")
CLIENT_TEST(test_python_utf8_broken_across_fragments_is_1007, py, "pyclient.py", "badutf8")
CLIENT_TEST(test_node_echo_sizes_0_to_16mib, node, "client.js", "sizes")
CLIENT_TEST(test_node_fragments_and_ping, node, "client.js", "fragments")
CLIENT_TEST(test_node_close_codes, node, "client.js", "close")
CLIENT_TEST(test_node_deflate_on_off_and_parameters, node, "client.js", "deflate")
CLIENT_TEST(test_node_oversize_is_1009, node, "client.js", "oversize")
CLIENT_TEST(test_node_utf8_broken_across_fragments_is_1007, node, "client.js", "badutf8")

static int shut_rc = 1;

static void *shut_main(void *arg)
{
    (void)arg;
    int rc = gh_server_shutdown(srv, (gh_time_t)WAIT_MS * GH_MSEC);
    pthread_mutex_lock(&mu);
    shut_rc = rc;
    pthread_mutex_unlock(&mu);
    return NULL;
}

START_TEST(test_server_shutdown_closes_with_1001_and_waits_for_the_answer)
{
    int fd = ws_connect("/echo");
    send_frame(fd, 0x81, 1, "before", 6);
    expect_message(fd, 0x81, "before", 6);
    pthread_t t;
    ck_assert_int_eq(gh_thread_start(&t, shut_main, NULL), 0);
    static unsigned char b[256];
    size_t n;
    ck_assert_int_eq(th_ws_read_frame(fd, b, sizeof b, &n, WAIT_MS), 0x88);
    ck_assert_uint_ge(n, 2);
    ck_assert_int_eq(b[0] << 8 | b[1], GH_WS_GOING_AWAY);
    /* The shutdown waits for our answer (RFC 6455 §7.1.2), then the server closes. */
    send_frame(fd, 0x88, 1, "\x03\xe9", 2);
    ck_assert_int_eq(th_wait_closed(fd, WAIT_MS), 1);
    ck_assert_int_eq(gh_thread_join(t, NULL), 0);
    ck_assert_int_eq(shut_rc, 0);
    ck_assert(wait_count(&n_closed, 1));
    ck_assert_int_eq(last_code, GH_WS_GOING_AWAY);
    close(fd);
}
END_TEST

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    return tc;
}

Suite *test_suite(void)
{
    th_raise_nofile();
    /* The real clients: python3-websockets, and npm's ws from tests/ws/node_modules. */
    py = th_client("PYTHON3", "python3", "-c 'import websockets'");
    const char *src = getenv("top_srcdir");
    snprintf(node_path, sizeof node_path, "%s/tests/ws/node_modules", src && *src ? src : ".");
    setenv("NODE_PATH", node_path, 1);
    node = th_client("NODE", "node", "-e 'require(\"ws\")'");

    Suite *s = suite_create("websocket");
    TCase *tc = tcase("handshake");
    tcase_add_test(tc, test_handshake_answers_accept_key);
    tcase_add_test(tc, test_handshake_other_version_gets_426);
    tcase_add_test(tc, test_handshake_bad_key_gets_400_with_reason);
    tcase_add_test(tc, test_handshake_origin_hook_refuses_with_403);
    tcase_add_test(tc, test_handshake_picks_server_preferred_subprotocol);
    tcase_add_test(tc, test_handshake_negotiates_permessage_deflate_parameters);
    suite_add_tcase(s, tc);

    tc = tcase("messages");
    tcase_add_test(tc, test_echoes_text_and_binary_of_every_length_class);
    tcase_add_test(tc, test_first_frame_in_upgrade_segment_is_served);
    tcase_add_test(tc, test_fragments_with_interleaved_control_frames_come_back_whole);
    tcase_add_test(tc, test_stream_mode_delivers_pieces_before_the_end);
    tcase_add_test(tc, test_deflated_messages_are_inflated_and_answered_compressed);
    suite_add_tcase(s, tc);

    tc = tcase("failures");
    tcase_add_test(tc, test_unmasked_frame_is_1002);
    tcase_add_test(tc, test_reserved_bits_and_opcodes_are_1002);
    tcase_add_test(tc, test_fragmented_control_frame_and_bad_order_are_1002);
    tcase_add_test(tc, test_invalid_utf8_split_across_fragments_fails_before_the_end);
    tcase_add_test(tc, test_invalid_close_frames_are_1002_or_1007);
    tcase_add_test(tc, test_refused_kind_of_data_is_1003);
    tcase_add_test(tc, test_oversized_message_is_1009);
    suite_add_tcase(s, tc);

    tc = tcase("closing");
    tcase_add_test(tc, test_close_code_and_reason_are_echoed_and_reported);
    tcase_add_test(tc, test_server_initiated_close_completes_on_answer);
    tcase_add_test(tc, test_unanswered_close_times_out);
    tcase_add_test(tc, test_keepalive_pings_and_a_silent_peer_is_dropped);
    tcase_add_test(tc, test_abrupt_reset_is_reported_1006_and_others_go_on);
    tcase_add_test(tc, test_abort_in_on_open_ends_the_connection_without_input);
    tcase_add_test(tc, test_server_shutdown_closes_with_1001_and_waits_for_the_answer);
    suite_add_tcase(s, tc);

    tc = tcase("load");
    tcase_add_test(tc, test_client_that_stops_reading_gets_bounded_queue_and_drain);
    tcase_add_test(tc, test_thousand_concurrent_websockets);
    tcase_add_test(tc, test_broadcast_reaches_every_connection_from_one_frame);
    tcase_add_test(tc, test_closed_websocket_is_collected);
    suite_add_tcase(s, tc);

    tc = tcase("clients");
    tcase_add_test(tc, test_python_echo_sizes_0_to_16mib);
    tcase_add_test(tc, test_python_fragments_and_ping);
    tcase_add_test(tc, test_python_close_codes);
    tcase_add_test(tc, test_python_deflate_on_and_off);
    tcase_add_test(tc, test_python_oversize_is_1009);
    tcase_add_test(tc, test_python_utf8_broken_across_fragments_is_1007);
    tcase_add_test(tc, test_node_echo_sizes_0_to_16mib);
    tcase_add_test(tc, test_node_fragments_and_ping);
    tcase_add_test(tc, test_node_close_codes);
    tcase_add_test(tc, test_node_deflate_on_off_and_parameters);
    tcase_add_test(tc, test_node_oversize_is_1009);
    tcase_add_test(tc, test_node_utf8_broken_across_fragments_is_1007);
    suite_add_tcase(s, tc);
    return s;
}
