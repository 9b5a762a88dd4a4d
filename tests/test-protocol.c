/* tests/test-protocol.c: HTTP/1.1 on the wire against the real server on loopback
 * (framing, smuggling, keep-alive, pipelining, chunked, 100-continue, HEAD, 1xx, real
 * clients). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"
#include <gchttp/server.h>

#define SMALL_HEAD 1024 /* max_header_bytes of the strict fixture */
#define BIG_HEAD 20000  /* max_header_bytes beyond the read buffer (accumulated heads) */

/* The server of the current test is tests/support's th_srv (Check forks per test:
 * each child starts its own). */
/* Requests the handler saw for /smuggled; written on workers, read on the test thread. */
static int n_smuggled;

static char rbuf[4 << 20]; /* responses; plain bytes */

/* ---- the handler ------------------------------------------------------------------ */

static long query_num(const gh_request_t *r, const char *key, long dflt)
{
    const char *q = strchr(gh_request_target(r), '?');
    size_t kl = strlen(key);
    if (q && strncmp(q + 1, key, kl) == 0 && q[1 + kl] == '=')
        return strtol(q + 2 + kl, NULL, 10);
    return dflt;
}

static uint32_t fnv1a(uint32_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static char pattern_byte(size_t i) { return (char)('a' + (i * 7 + i / 26) % 26); }

/* Routes:
 *   /smuggled     counts itself (must never run in the rejection tests)
 *   /echo         reads the whole body; answers it, with X-Got-Trailer from the trailer
 *                 X-Trailer; a body error is answered 400
 *   /sum          reads the body in pieces; answers "len=N fnv=H"
 *   /nobody       never reads the body
 *   /big?n=N      N pattern bytes
 *   /trailer      a small body and the trailer X-Sum: 42
 *   /status?c=N   status N, tries to write a body
 *   /early        103 with a Link header, then 200
 *   /host         answers gh_request_host
 *   /html, /bin   an untyped HTML page, untyped binary bytes (content sniffing)
 *   /html5000     an untyped 5,000-byte HTML page in one write
 *   /html-late    100 spaces, then a 5,000-byte HTML page in a second write
 *   /typed        sets its own Content-Type
 *   /te           sets a Transfer-Encoding of its own (the server must not trust it)
 *   anything else answers "METHOD TARGET" */
static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    if (th_path_is(r, "/smuggled")) {
        __atomic_add_fetch(&n_smuggled, 1, __ATOMIC_SEQ_CST);
        gh_response_puts(w, "smuggled");
    } else if (th_path_is(r, "/echo")) {
        char *body = NULL;
        ssize_t n = gh_request_read_all(r, 4 << 20, &body);
        if (n < 0) {
            gh_response_write_header(w, 400);
            gh_response_printf(w, "body error %s", gh_err_name((int)n));
            return;
        }
        const char *t = gh_request_trailer(r, "X-Trailer");
        if (t)
            gh_response_header_set(w, "X-Got-Trailer", t);
        gh_response_write(w, body, (size_t)n);
    } else if (th_path_is(r, "/sum")) {
        static __thread char tmp[8192];
        uint32_t h = 2166136261u;
        size_t len = 0;
        ssize_t k;
        while ((k = gh_request_read(r, tmp, sizeof tmp)) > 0) {
            h = fnv1a(h, (const unsigned char *)tmp, (size_t)k);
            len += (size_t)k;
        }
        if (k < 0) {
            gh_response_write_header(w, 400);
            gh_response_printf(w, "body error %s", gh_err_name((int)k));
            return;
        }
        gh_response_printf(w, "len=%zu fnv=%08x", len, h);
    } else if (th_path_is(r, "/nobody")) {
        gh_response_puts(w, "ok");
    } else if (th_path_is(r, "/big")) {
        long n = query_num(r, "n", 5000);
        char chunk[1000];
        for (long i = 0; i < n; i += (long)sizeof chunk) {
            size_t k = (size_t)(n - i) < sizeof chunk ? (size_t)(n - i) : sizeof chunk;
            for (size_t j = 0; j < k; j++)
                chunk[j] = pattern_byte((size_t)i + j);
            if (gh_response_write(w, chunk, k) < 0)
                return;
        }
    } else if (th_path_is(r, "/trailer")) {
        gh_response_trailer_set(w, "X-Sum", "42");
        gh_response_puts(w, "abc");
    } else if (th_path_is(r, "/status")) {
        gh_response_write_header(w, (int)query_num(r, "c", 200));
        gh_response_puts(w, "must not be sent");
    } else if (th_path_is(r, "/early")) {
        gh_response_header_set(w, "Link", "</style.css>; rel=preload");
        gh_response_write_header(w, 103);
        gh_response_puts(w, "final");
    } else if (th_path_is(r, "/short")) {
        gh_response_header_set(w, "Content-Length", "10");
        gh_response_puts(w, "abc");
    } else if (th_path_is(r, "/host")) {
        gh_response_puts(w, gh_request_host(r));
    } else if (th_path_is(r, "/html")) {
        gh_response_puts(w, "  <html><body>hi</body></html>");
    } else if (th_path_is(r, "/html5000") || th_path_is(r, "/html-late")) {
        static char page[5000], spaces[100];
        memset(page, 'a', sizeof page);
        memcpy(page, "<html><body>", 12);
        memset(spaces, ' ', sizeof spaces);
        if (th_path_is(r, "/html-late"))
            gh_response_write(w, spaces, sizeof spaces);
        gh_response_write(w, page, sizeof page);
    } else if (th_path_is(r, "/bin")) {
        gh_response_write(w, "\x01\x02\x03\x00" "data", 8); /* split: \x00d would be one escape */
    } else if (th_path_is(r, "/typed")) {
        gh_response_header_set(w, "Content-Type", "application/json");
        gh_response_puts(w, "{\"a\":1}");
    } else if (th_path_is(r, "/te")) {
        gh_response_header_set(w, "Transfer-Encoding", "gzip");
        gh_response_puts(w, "abc");
    } else {
        gh_response_printf(w, "%s %s", gh_request_method(r), gh_request_target(r));
    }
}

/* ---- fixtures and client helpers -------------------------------------------------- */

static void start_server(size_t max_header_bytes)
{
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = on_request;
    cfg.max_header_bytes = max_header_bytes;
    n_smuggled = 0;
    th_server_start(&cfg);
}

static void setup_default(void) { start_server(0); }
static void setup_small_heads(void) { start_server(SMALL_HEAD); }
static void setup_big_heads(void) { start_server(BIG_HEAD); }
static void teardown(void) { th_server_close(); }

/* Send req on a new connection and read one response into rbuf. Returns the fd. */
static int roundtrip(const char *req)
{
    int fd = th_connect_srv();
    ck_assert_int_eq(th_sends(fd, req), 0);
    ck_assert_int_gt(th_read_response(fd, rbuf, sizeof rbuf - 1, TH_IO_MS), 0);
    return fd;
}

static void read_next(int fd)
{
    ck_assert_int_gt(th_read_response(fd, rbuf, sizeof rbuf - 1, TH_IO_MS), 0);
}

/* 1 if the peer closes fd within TH_IO_MS without sending another byte. */
static int closes_silently(int fd)
{
    static char rest[65536];
    int closed = 0;
    ssize_t n = th_read_all(fd, rest, sizeof rest - 1, TH_IO_MS, &closed);
    return n == 0 && closed;
}

/* Decode a chunked body (up to the last chunk) into out; -1 if malformed. */
static ssize_t dechunk(const char *p, char *out, size_t cap)
{
    size_t len = 0;
    for (;;) {
        char *end;
        unsigned long sz = strtoul(p, &end, 16);
        if (end == p)
            return -1;
        const char *le = strstr(end, "\r\n");
        if (!le)
            return -1;
        p = le + 2;
        if (sz == 0)
            return (ssize_t)len;
        if (len + sz > cap || strlen(p) < sz + 2 || strncmp(p + sz, "\r\n", 2) != 0)
            return -1;
        memcpy(out + len, p, sz);
        len += sz;
        p += sz + 2;
    }
}

static int is_pattern(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern_byte(i))
            return 0;
    return 1;
}

/* ---- 1. malformed and smuggling requests ------------------------------------------- */

#define NEXT "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
#define CHUNKED_POST "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

static const struct bad_vector {
    const char *name;
    const char *bytes;
    size_t len;
    int status;
    int by_server; /* answered by the server itself (counted in bad_requests) */
} bad_vectors[] = {
#define BAD(name, bytes, status, by_server) {name, bytes NEXT, sizeof(bytes NEXT) - 1, status, by_server}
    BAD("missing Host", "GET / HTTP/1.1\r\n\r\n", 400, 1),
    BAD("two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, 1),
    BAD("Content-Length with Transfer-Encoding",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        400, 1),
    BAD("Transfer-Encoding with Content-Length",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        "0\r\n\r\n",
        400, 1),
    BAD("two different Content-Lengths",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400,
        1),
    BAD("Content-Length list of different values",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd", 400, 1),
    BAD("Content-Length with plus sign",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400, 1),
    BAD("Content-Length negative",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\nabc", 400, 1),
    BAD("Content-Length hex", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\nabc",
        400, 1),
    BAD("Content-Length trailing junk",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3a\r\n\r\nabc", 400, 1),
    BAD("Content-Length overflow",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\nabc", 400,
        1),
    BAD("Transfer-Encoding gzip",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", 501, 1),
    BAD("Transfer-Encoding gzip, chunked",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
        1),
    BAD("Transfer-Encoding in HTTP/1.0",
        "POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 1),
    BAD("two Transfer-Encoding fields",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400, 1),
    BAD("HTTP/2.0 version", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, 1),
    BAD("lower-case version", "GET / http/1.1\r\nHost: x\r\n\r\n", 400, 1),
    BAD("bare LF line ending", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400, 1),
    BAD("bare LF in header section", "GET / HTTP/1.1\r\nHost: x\n\r\n", 400, 1),
    BAD("bare CR", "GET / HTTP/1.1\rHost: x\r\n\r\n", 400, 1),
    BAD("obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, 1),
    BAD("space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, 1),
    BAD("space before colon in Transfer-Encoding",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n",
        400, 1),
    BAD("NUL in header value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 400, 1),
    BAD("Expect other than 100-continue",
        "GET / HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n\r\n", 417, 1),
    BAD("double space in request line", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, 1),
    BAD("trailing space in request line", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400, 1),
    BAD("bad character in field name", "GET / HTTP/1.1\r\nHost: x\r\nX@A: b\r\n\r\n", 400, 1),
    BAD("empty field name", "GET / HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n", 400, 1),
    BAD("space in Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, 1),
    BAD("slash in Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, 1),
    /* RFC 9110 §4.2.1: an http(s) URI with an empty host MUST be rejected as invalid. */
    BAD("absolute-form with empty authority", "GET http:///p HTTP/1.1\r\nHost: x\r\n\r\n", 400, 1),
    BAD("absolute-form with port only", "GET http://:80/p HTTP/1.1\r\nHost: x\r\n\r\n", 400, 1),
    BAD("absolute-form with userinfo only", "GET https://u@/p HTTP/1.1\r\nHost: x\r\n\r\n", 400,
        1),
    BAD("absolute-form without authority", "GET http:/p HTTP/1.1\r\nHost: x\r\n\r\n", 400, 1),
    BAD("Transfer-Encoding identity",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc",
        501, 1),
    BAD("bad chunk size", CHUNKED_POST "zz\r\nhello\r\n0\r\n\r\n", 400, 0),
    BAD("chunk size with bare LF", CHUNKED_POST "5\nhello\r\n0\r\n\r\n", 400, 0),
    BAD("chunk data without CRLF", CHUNKED_POST "5\r\nhelloXX0\r\n\r\n", 400, 0),
    BAD("chunk size with trailing space", CHUNKED_POST "5 \r\nhello\r\n0\r\n\r\n", 400, 0),
    BAD("chunk size overflow", CHUNKED_POST "10000000000000000\r\nhello\r\n0\r\n\r\n", 400, 0),
    BAD("bare LF in trailer section", CHUNKED_POST "5\r\nhello\r\n0\r\nX-T: 1\n\r\n", 400, 0),
    BAD("obs-fold in trailer section", CHUNKED_POST "5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n", 400,
        0),
#undef BAD
};
#define N_BAD_VECTORS ((int)(sizeof bad_vectors / sizeof bad_vectors[0]))

/* The common proof for every rejected request: the expected status with Connection:
 * close, then the connection closes without a byte more, and the pipelined /smuggled
 * request never reached the handler. */
static void assert_rejected(const char *name, const char *bytes, size_t len, int status,
                            int by_server)
{
    unsigned long bad0 = th_stats().bad_requests;
    int fd = th_connect_srv();
    ck_assert_int_eq(th_send(fd, bytes, len), 0);
    ssize_t n = th_read_response(fd, rbuf, sizeof rbuf - 1, TH_IO_MS);
    ck_assert_msg(n > 0, "%s: no response", name);
    ck_assert_msg(th_status(rbuf) == status, "%s: status %d, want %d", name, th_status(rbuf),
                  status);
    ck_assert_msg(th_has_header(rbuf, "Connection", "close"), "%s: no Connection: close", name);
    ck_assert_msg(closes_silently(fd), "%s: connection not closed, or more bytes sent", name);
    ck_assert_msg(__atomic_load_n(&n_smuggled, __ATOMIC_SEQ_CST) == 0, "%s: /smuggled was served",
                  name);
    if (by_server)
        ck_assert_msg(th_stats().bad_requests == bad0 + 1, "%s: bad_requests %lu, want %lu", name,
                      th_stats().bad_requests, bad0 + 1);
    close(fd);
}

START_TEST(test_protocol_rejects_malformed_without_serving_next)
{
    const struct bad_vector *v = &bad_vectors[_i];
    assert_rejected(v->name, v->bytes, v->len, v->status, v->by_server);
}
END_TEST

START_TEST(test_protocol_valid_request_lets_pipelined_next_through)
{
    /* The control for the table above: the same pipelined request is served, and
     * counted, after a request that is fine. */
    int fd = roundtrip("GET / HTTP/1.1\r\nHost: x\r\n\r\n" NEXT);
    ck_assert_int_eq(th_status(rbuf), 200);
    read_next(fd);
    ck_assert_str_eq(th_body(rbuf), "smuggled");
    ck_assert_int_eq(__atomic_load_n(&n_smuggled, __ATOMIC_SEQ_CST), 1);
    ck_assert_uint_eq(th_stats().bad_requests, 0);
    close(fd);
}
END_TEST

/* A head "GET /x HTTP/1.1\r\nHost: x\r\nX-Pad: aaa...\r\n\r\n" of exactly len bytes. */
static char *head_of_length(size_t len)
{
    static char head[BIG_HEAD * 2];
    const char *pre = "GET /x HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    size_t pl = strlen(pre);
    ck_assert_uint_lt(pl + 4, len);
    memcpy(head, pre, pl);
    memset(head + pl, 'a', len - pl - 4);
    memcpy(head + len - 4, "\r\n\r\n", 5);
    ck_assert_uint_eq(strlen(head), len);
    return head;
}

START_TEST(test_protocol_accepts_head_of_exactly_max_header_bytes)
{
    int fd = roundtrip(head_of_length(SMALL_HEAD));
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "GET /x");
    close(fd);
}
END_TEST

START_TEST(test_protocol_rejects_head_one_byte_over_max_header_bytes_with_431)
{
    static char req[BIG_HEAD * 2 + 64];
    snprintf(req, sizeof req, "%s%s", head_of_length(SMALL_HEAD + 1), NEXT);
    assert_rejected("head of max+1 bytes", req, strlen(req), 431, 1);
}
END_TEST

START_TEST(test_protocol_accepts_accumulated_head_of_exactly_max_header_bytes)
{
    static char req[BIG_HEAD * 2 + 64];
    snprintf(req, sizeof req, "%s%s", head_of_length(BIG_HEAD), NEXT);
    int fd = roundtrip(req);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "GET /x");
    read_next(fd);
    ck_assert_str_eq(th_body(rbuf), "smuggled");
    close(fd);
}
END_TEST

START_TEST(test_protocol_rejects_accumulated_head_one_byte_over_with_431)
{
    static char req[BIG_HEAD * 2 + 64];
    snprintf(req, sizeof req, "%s%s", head_of_length(BIG_HEAD + 1), NEXT);
    assert_rejected("accumulated head of max+1 bytes", req, strlen(req), 431, 1);
}
END_TEST

START_TEST(test_protocol_rejects_huge_head_with_431)
{
    /* Far larger than the reader's buffer: the accumulation path. */
    static char req[64 << 10];
    const char *pre = "GET /x HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    size_t pl = strlen(pre);
    memcpy(req, pre, pl);
    memset(req + pl, 'a', 40000);
    snprintf(req + pl + 40000, sizeof req - pl - 40000, "\r\n\r\n%s", NEXT);
    assert_rejected("huge head", req, strlen(req), 431, 1);
}
END_TEST

START_TEST(test_protocol_identical_content_lengths_are_one_length)
{
    int fd = roundtrip("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                       "Content-Length: 3, 3\r\n\r\nabc" NEXT);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "abc");
    read_next(fd);
    ck_assert_str_eq(th_body(rbuf), "smuggled");
    close(fd);
}
END_TEST

START_TEST(test_protocol_large_head_keeps_pipelined_body_and_request)
{
    /* A head larger than the connection's read buffer, then its body and another
     * request in the same write. */
    static char req[32 << 10];
    int n = snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(req + n, 'p', 10000);
    snprintf(req + n + 10000, sizeof req - (size_t)n - 10000,
             "\r\nContent-Length: 4\r\n\r\nbody" NEXT);
    int fd = roundtrip(req);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "body");
    read_next(fd);
    ck_assert_str_eq(th_body(rbuf), "smuggled");
    close(fd);
}
END_TEST

START_TEST(test_protocol_request_sent_byte_by_byte_is_served)
{
    const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    int fd = th_connect_srv();
    for (size_t i = 0; req[i]; i++)
        ck_assert_int_eq(th_send(fd, req + i, 1), 0);
    read_next(fd);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "hello");
    close(fd);
}
END_TEST

/* ---- 2. keep-alive ----------------------------------------------------------------- */

START_TEST(test_protocol_keepalive_serves_several_requests_on_one_connection)
{
    int fd = th_connect_srv();
    for (int i = 0; i < 5; i++) {
        char req[128], want[64];
        snprintf(req, sizeof req, "GET /k%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        snprintf(want, sizeof want, "GET /k%d", i);
        ck_assert_int_eq(th_sends(fd, req), 0);
        read_next(fd);
        ck_assert_int_eq(th_status(rbuf), 200);
        ck_assert_int_eq(th_has_header(rbuf, "Content-Length", NULL), 1);
        ck_assert_int_eq(th_has_header(rbuf, "Connection", "close"), 0);
        ck_assert_str_eq(th_body(rbuf), want);
    }
    ck_assert_uint_eq(th_stats().accepted, 1);
    ck_assert_uint_eq(th_stats().requests, 5);
    close(fd);
}
END_TEST

START_TEST(test_protocol_http10_without_keepalive_closes)
{
    int fd = roundtrip("GET /a HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_int_eq(strncmp(rbuf, "HTTP/1.0 ", 9), 0);
    ck_assert_int_eq(th_has_header(rbuf, "Connection", "close"), 1);
    ck_assert_str_eq(th_body(rbuf), "GET /a");
    ck_assert_int_eq(closes_silently(fd), 1);
    close(fd);
}
END_TEST

START_TEST(test_protocol_http10_keepalive_is_kept)
{
    int fd = roundtrip("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_int_eq(th_has_header(rbuf, "Connection", "keep-alive"), 1);
    ck_assert_int_eq(th_has_header(rbuf, "Content-Length", "6"), 1);
    ck_assert_int_eq(th_sends(fd, "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0);
    read_next(fd);
    ck_assert_int_eq(th_has_header(rbuf, "Connection", "keep-alive"), 1);
    ck_assert_str_eq(th_body(rbuf), "GET /b");
    ck_assert_uint_eq(th_stats().accepted, 1);
    close(fd);
}
END_TEST

START_TEST(test_protocol_connection_close_is_honoured)
{
    int fd = roundtrip("GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_int_eq(th_has_header(rbuf, "Connection", "close"), 1);
    ck_assert_int_eq(closes_silently(fd), 1);
    close(fd);
}
END_TEST

START_TEST(test_protocol_connection_close_stops_pipelined_requests)
{
    int fd = roundtrip("GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" NEXT);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_int_eq(closes_silently(fd), 1);
    ck_assert_int_eq(__atomic_load_n(&n_smuggled, __ATOMIC_SEQ_CST), 0);
    close(fd);
}
END_TEST

START_TEST(test_protocol_short_declared_content_length_closes)
{
    /* The handler declared 10 bytes and wrote 3: the client must see the connection
     * end rather than wait forever on a reused one. */
    static char all[4096];
    int closed = 0;
    int fd = th_connect_srv();
    ck_assert_int_eq(th_sends(fd, "GET /short HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    ck_assert_int_gt(th_read_all(fd, all, sizeof all - 1, TH_IO_MS, &closed), 0);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(th_has_header(all, "Content-Length", "10"), 1);
    ck_assert_str_eq(th_body(all), "abc");
    close(fd);
}
END_TEST

/* ---- 3. pipelining ----------------------------------------------------------------- */

START_TEST(test_protocol_stray_crlf_after_body_is_tolerated)
{
    int fd = roundtrip("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\n"
                       "GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_str_eq(th_body(rbuf), "abc");
    read_next(fd);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "GET /next");
    close(fd);
}
END_TEST

START_TEST(test_protocol_pipelined_requests_are_answered_in_order)
{
    int fd = th_connect_srv();
    ck_assert_int_eq(th_sends(fd, "GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n"
                                  "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\np2!"
                                  "GET /p3 HTTP/1.1\r\nHost: x\r\n\r\n"),
                     0);
    read_next(fd);
    ck_assert_str_eq(th_body(rbuf), "GET /p1");
    read_next(fd);
    ck_assert_str_eq(th_body(rbuf), "p2!");
    read_next(fd);
    ck_assert_str_eq(th_body(rbuf), "GET /p3");
    ck_assert_uint_eq(th_stats().accepted, 1);
    close(fd);
}
END_TEST

/* ---- 4. chunked both ways ---------------------------------------------------------- */

START_TEST(test_protocol_chunked_request_with_extensions_and_trailers)
{
    int fd = roundtrip(CHUNKED_POST "5;ext=1\r\nhello\r\n"
                                    "6;a=\"q v\";b\r\n world\r\n"
                                    "0;last=yes\r\nX-Trailer: seen\r\nX-Other: 1\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "hello world");
    ck_assert_int_eq(th_has_header(rbuf, "X-Got-Trailer", "seen"), 1);
    /* The connection is still usable after the trailer section. */
    ck_assert_int_eq(th_sends(fd, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    read_next(fd);
    ck_assert_str_eq(th_body(rbuf), "GET /after");
    close(fd);
}
END_TEST

START_TEST(test_protocol_large_response_is_chunked_for_http11)
{
    static char body[8192];
    int fd = roundtrip("GET /big?n=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_int_eq(th_has_header(rbuf, "Transfer-Encoding", "chunked"), 1);
    ck_assert_int_eq(th_has_header(rbuf, "Content-Length", NULL), 0);
    ssize_t n = dechunk(th_body(rbuf), body, sizeof body);
    ck_assert_int_eq(n, 5000);
    ck_assert_int_eq(is_pattern(body, 5000), 1);
    close(fd);
}
END_TEST

START_TEST(test_protocol_large_response_is_close_delimited_for_http10)
{
    int fd = roundtrip("GET /big?n=5000 HTTP/1.0\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_int_eq(th_has_header(rbuf, "Transfer-Encoding", NULL), 0);
    ck_assert_int_eq(th_has_header(rbuf, "Content-Length", NULL), 0);
    ck_assert_int_eq(th_has_header(rbuf, "Connection", "close"), 1);
    const char *b = th_body(rbuf);
    ck_assert_uint_eq(strlen(b), 5000);
    ck_assert_int_eq(is_pattern(b, 5000), 1);
    close(fd);
}
END_TEST

START_TEST(test_protocol_small_response_gets_content_length)
{
    int fd = roundtrip("GET /big?n=2000 HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_has_header(rbuf, "Content-Length", "2000"), 1);
    ck_assert_int_eq(th_has_header(rbuf, "Transfer-Encoding", NULL), 0);
    ck_assert_int_eq(is_pattern(th_body(rbuf), 2000), 1);
    close(fd);
}
END_TEST

START_TEST(test_protocol_response_trailers_follow_last_chunk)
{
    int fd = roundtrip("GET /trailer HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_has_header(rbuf, "Transfer-Encoding", "chunked"), 1);
    ck_assert_str_eq(th_body(rbuf), "3\r\nabc\r\n0\r\nX-Sum: 42\r\n\r\n");
    close(fd);
}
END_TEST

/* ---- 5. 100-continue --------------------------------------------------------------- */

START_TEST(test_protocol_expect_continue_sends_100_before_body)
{
    int fd = th_connect_srv();
    ck_assert_int_eq(th_sends(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                  "Expect: 100-continue\r\n\r\n"),
                     0);
    read_next(fd); /* bounded: fails after TH_IO_MS without the interim answer */
    ck_assert_int_eq(th_status(rbuf), 100);
    ck_assert_int_eq(strncmp(rbuf, "HTTP/1.1 100 Continue\r\n", 23), 0);
    ck_assert_int_eq(th_sends(fd, "hello"), 0);
    read_next(fd);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "hello");
    close(fd);
}
END_TEST

START_TEST(test_protocol_expect_continue_unread_body_sends_no_100_and_closes)
{
    int fd = th_connect_srv();
    ck_assert_int_eq(th_sends(fd, "POST /nobody HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                  "Expect: 100-continue\r\n\r\n"),
                     0);
    read_next(fd);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "ok");
    /* The client never sent its body: the connection cannot carry another request. */
    ck_assert_int_eq(closes_silently(fd), 1);
    close(fd);
}
END_TEST

START_TEST(test_protocol_expect_continue_with_eager_body_keeps_framing)
{
    /* A client that does not wait sends head, body and the next request together; an
     * interim 100, if any, comes before the final answer and the next request is
     * still served. */
    int fd = roundtrip("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       "Expect: 100-continue\r\n\r\nhello" NEXT);
    if (th_status(rbuf) == 100)
        read_next(fd);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "hello");
    read_next(fd);
    ck_assert_str_eq(th_body(rbuf), "smuggled");
    close(fd);
}
END_TEST

/* ---- 6. HEAD, bodiless statuses, 1xx ------------------------------------------------ */

START_TEST(test_protocol_head_sends_no_body_but_get_length)
{
    static char all[8192];
    int closed = 0;
    int fd = th_connect_srv();
    ck_assert_int_eq(th_sends(fd, "HEAD /big?n=1500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                     0);
    ck_assert_int_gt(th_read_all(fd, all, sizeof all - 1, TH_IO_MS, &closed), 0);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(th_status(all), 200);
    ck_assert_int_eq(th_has_header(all, "Content-Length", "1500"), 1);
    ck_assert_str_eq(th_body(all), "");
    close(fd);
}
END_TEST

START_TEST(test_protocol_head_of_large_response_sends_no_body)
{
    static char all[16384];
    int closed = 0;
    int fd = th_connect_srv();
    ck_assert_int_eq(th_sends(fd, "HEAD /big?n=5000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                     0);
    ck_assert_int_gt(th_read_all(fd, all, sizeof all - 1, TH_IO_MS, &closed), 0);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(th_status(all), 200);
    ck_assert_str_eq(th_body(all), "");
    close(fd);
}
END_TEST

START_TEST(test_protocol_head_then_pipelined_get_share_connection)
{
    /* HEAD's answer ends at its header: the next response follows at once. */
    static char all[16384];
    int closed = 0;
    int fd = th_connect_srv();
    ck_assert_int_eq(th_sends(fd, "HEAD /big?n=5000 HTTP/1.1\r\nHost: x\r\n\r\n"
                                  "HEAD /big?n=100 HTTP/1.1\r\nHost: x\r\n\r\n"
                                  "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                     0);
    ck_assert_int_gt(th_read_all(fd, all, sizeof all - 1, TH_IO_MS, &closed), 0);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(th_status(all), 200);
    const char *second = th_body(all);
    ck_assert_int_eq(th_status(second), 200);
    ck_assert_int_eq(th_has_header(second, "Content-Length", "100"), 1);
    const char *third = th_body(second);
    ck_assert_int_eq(th_status(third), 200);
    ck_assert_str_eq(th_body(third), "GET /last");
    close(fd);
}
END_TEST

static void assert_bodiless(int code)
{
    char req[160];
    snprintf(req, sizeof req,
             "GET /status?c=%d HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n", code);
    int fd = roundtrip(req);
    ck_assert_int_eq(th_status(rbuf), code);
    ck_assert_str_eq(th_body(rbuf), "");
    /* Had any body byte been sent, the next response would not start where it should. */
    read_next(fd);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "GET /next");
    close(fd);
}

START_TEST(test_protocol_204_has_no_body)
{
    assert_bodiless(204);
}
END_TEST

START_TEST(test_protocol_204_has_no_framing_headers)
{
    int fd = roundtrip("GET /status?c=204 HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 204);
    ck_assert_int_eq(th_has_header(rbuf, "Content-Length", NULL), 0);
    ck_assert_int_eq(th_has_header(rbuf, "Transfer-Encoding", NULL), 0);
    close(fd);
}
END_TEST

START_TEST(test_protocol_304_has_no_body)
{
    assert_bodiless(304);
}
END_TEST

START_TEST(test_protocol_103_early_hints_precede_final_response)
{
    int fd = roundtrip("GET /early HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 103);
    ck_assert_int_eq(th_has_header(rbuf, "Link", "</style.css>; rel=preload"), 1);
    read_next(fd);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_int_eq(th_has_header(rbuf, "Link", "</style.css>; rel=preload"), 1);
    ck_assert_str_eq(th_body(rbuf), "final");
    close(fd);
}
END_TEST

/* ---- 7. unread request bodies -------------------------------------------------------- */

START_TEST(test_protocol_small_unread_body_is_drained_and_connection_reused)
{
    static char req[4096];
    int n = snprintf(req, sizeof req, "POST /nobody HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
    memset(req + n, 'z', 1000);
    int fd = th_connect_srv();
    ck_assert_int_eq(th_send(fd, req, (size_t)n + 1000), 0);
    read_next(fd);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_int_eq(th_has_header(rbuf, "Connection", "close"), 0);
    ck_assert_int_eq(th_sends(fd, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    read_next(fd);
    ck_assert_str_eq(th_body(rbuf), "GET /after");
    ck_assert_uint_eq(th_stats().accepted, 1);
    close(fd);
}
END_TEST

START_TEST(test_protocol_large_unread_body_gets_connection_close)
{
    static char part[16384];
    int fd = th_connect_srv();
    ck_assert_int_eq(th_sends(fd, "POST /nobody HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n"),
                     0);
    memset(part, 'z', sizeof part);
    ck_assert_int_eq(th_send(fd, part, sizeof part), 0);
    read_next(fd);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_int_eq(th_has_header(rbuf, "Connection", "close"), 1);
    ck_assert_int_eq(th_wait_closed(fd, TH_IO_MS), 1);
    close(fd);
}
END_TEST

/* A chunked body the handler never reads is drained after it, up to max_body_drain
 * (256 KiB, Go's maxPostHandlerReadBytes): a small one ends there and the connection
 * is kept. */
START_TEST(test_protocol_small_unread_chunked_body_is_drained_and_connection_reused)
{
    int fd = th_connect_srv();
    ck_assert_int_eq(th_sends(fd, "POST /nobody HTTP/1.1\r\nHost: x\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n"
                                  "5\r\nhello\r\n3e8\r\n"),
                     0);
    static char part[1000 + 2];
    memset(part, 'z', 1000);
    memcpy(part + 1000, "\r\n", 2);
    ck_assert_int_eq(th_send(fd, part, sizeof part), 0);
    ck_assert_int_eq(th_sends(fd, "0\r\n\r\n"), 0);
    read_next(fd);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_int_eq(th_has_header(rbuf, "Connection", "close"), 0);
    ck_assert_int_eq(th_sends(fd, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    read_next(fd);
    ck_assert_str_eq(th_body(rbuf), "GET /after");
    ck_assert_uint_eq(th_stats().accepted, 1);
    close(fd);
}
END_TEST

/* One that does not end within 256 KiB: the response says Connection: close before the
 * server closes, as for a large Content-Length (Go: requestTooLarge). */
START_TEST(test_protocol_large_unread_chunked_body_gets_connection_close)
{
    static char chunk[16384 + 16];
    int hl = snprintf(chunk, sizeof chunk, "%x\r\n", 16384);
    memset(chunk + hl, 'z', 16384);
    memcpy(chunk + hl + 16384, "\r\n", 2);
    size_t cl = (size_t)hl + 16384 + 2;
    int fd = th_connect_srv();
    ck_assert_int_eq(th_sends(fd, "POST /nobody HTTP/1.1\r\nHost: x\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n"),
                     0);
    for (int i = 0; i < 18; i++) /* 288 KiB, no last chunk */
        ck_assert_int_eq(th_send(fd, chunk, cl), 0);
    read_next(fd);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_int_eq(th_has_header(rbuf, "Connection", "close"), 1);
    ck_assert_int_eq(th_wait_closed(fd, TH_IO_MS), 1);
    close(fd);
}
END_TEST

/* ---- 8. real clients ----------------------------------------------------------------- */

static char out[65536];
/* The real clients, found by test_suite (th_client); NULL: the tests that need one
 * return at once and the suite ends SKIP, or FAIL in CI. */
static const char *curl, *py;

START_TEST(test_protocol_curl_fetches_over_http11)
{
    if (!curl)
        return;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' -sS --http1.1 --max-time 10 http://127.0.0.1:%d/hello", curl,
             th_port);
    ck_assert_int_eq(th_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "GET /hello");
}
END_TEST

START_TEST(test_protocol_curl_posts_chunked_file)
{
    if (!curl)
        return;
    char path[] = "/tmp/gh-proto-XXXXXX";
    int tfd = mkstemp(path);
    ck_assert_int_ge(tfd, 0);
    static unsigned char data[100 << 10];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 131 + (i >> 9));
    ck_assert_int_eq(write(tfd, data, sizeof data), (ssize_t)sizeof data);
    close(tfd);
    char cmd[512], want[64];
    snprintf(cmd, sizeof cmd,
             "'%s' -sS --http1.1 --max-time 10 -H 'Transfer-Encoding: chunked' "
             "--data-binary @%s http://127.0.0.1:%d/sum",
             curl, path, th_port);
    int rc = th_run(cmd, out, sizeof out);
    unlink(path);
    ck_assert_int_eq(rc, 0);
    snprintf(want, sizeof want, "len=%zu fnv=%08x", sizeof data, fnv1a(2166136261u, data, sizeof data));
    ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(test_protocol_curl_reuses_connection_for_two_urls)
{
    if (!curl)
        return;
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "'%s' -sS --http1.1 --max-time 10 -o /dev/null -o /dev/null -w '%%{num_connects}\\n' "
             "http://127.0.0.1:%d/one http://127.0.0.1:%d/two",
             curl, th_port, th_port);
    ck_assert_int_eq(th_run(cmd, out, sizeof out), 0);
    /* One line per transfer: the first connected, the second reused. */
    ck_assert_str_eq(out, "1\n0\n");
    ck_assert_uint_eq(th_stats().accepted, 1);
    ck_assert_uint_eq(th_stats().requests, 2);
}
END_TEST

START_TEST(test_protocol_python_http_client_reuses_connection)
{
    if (!py)
        return;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "'%s' -c 'import http.client\n"
             "c = http.client.HTTPConnection(\"127.0.0.1\", %d, timeout=10)\n"
             "out = []\n"
             "for p in (\"/a\", \"/b\", \"/c\"):\n"
             "    c.request(\"GET\", p)\n"
             "    r = c.getresponse()\n"
             "    out.append(\"%%d %%s\" %% (r.status, r.read().decode()))\n"
             "print(\";\".join(out))\n'",
             py, th_port);
    ck_assert_int_eq(th_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "200 GET /a;200 GET /b;200 GET /c\n");
    ck_assert_uint_eq(th_stats().accepted, 1);
}
END_TEST

/* Python's http.client sends chunked bodies /nobody never reads, then a GET on the
 * same HTTPConnection: after the small body the connection is reused; after the large
 * one the response said close, so the client opens a new one (without the header it
 * reused a connection the server had closed: RemoteDisconnected). */
START_TEST(test_protocol_python_http_client_after_unread_chunked_bodies)
{
    if (!py)
        return;
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' -c 'import http.client\n"
             "c = http.client.HTTPConnection(\"127.0.0.1\", %d, timeout=10)\n"
             "out = []\n"
             "for n in (1000, 300 * 1024):\n"
             "    body = (b\"z\" * 8192 for _ in range(n // 8192 + 1))\n"
             "    c.request(\"POST\", \"/nobody\", body=body, encode_chunked=True)\n"
             "    r = c.getresponse()\n"
             "    out.append(\"%%d %%s %%s\" %% (r.status, r.read().decode(), r.will_close))\n"
             "    c.request(\"GET\", \"/after\")\n"
             "    r = c.getresponse()\n"
             "    out.append(\"%%d %%s\" %% (r.status, r.read().decode()))\n"
             "print(\";\".join(out))\n'",
             py, th_port);
    ck_assert_int_eq(th_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "200 ok False;200 GET /after;200 ok True;200 GET /after\n");
    ck_assert_uint_eq(th_stats().accepted, 2);
}
END_TEST

/* ---- 9. Date, request-target forms ---------------------------------------------------- */

START_TEST(test_protocol_date_header_is_rfc1123)
{
    int fd = roundtrip("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const char *d = strcasestr(rbuf, "\r\nDate: ");
    ck_assert_ptr_nonnull(d);
    d += 8;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    ck_assert_ptr_nonnull(end);
    ck_assert_int_eq(strncmp(end, "\r\n", 2), 0);
    ck_assert_int_eq((int)(end - d), 29); /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    long skew = (long)(timegm(&tm) - time(NULL));
    ck_assert_int_le(labs(skew), 5);
    close(fd);
}
END_TEST

/* An untyped body is typed from its first bytes, as Go's DetectContentType does; a type
 * the handler set is kept; a body-less status gets none. */
START_TEST(test_protocol_sniffs_untyped_bodies_like_go)
{
    static const struct {
        const char *req, *type;
    } v[] = {
        {"GET /html HTTP/1.1\r\nHost: x\r\n\r\n", "text/html; charset=utf-8"},
        /* Larger than the pre-chunking buffer: still its first 512 bytes, in one write or
         * across writes. */
        {"GET /html5000 HTTP/1.1\r\nHost: x\r\n\r\n", "text/html; charset=utf-8"},
        {"GET /html-late HTTP/1.1\r\nHost: x\r\n\r\n", "text/html; charset=utf-8"},
        {"GET /bin HTTP/1.1\r\nHost: x\r\n\r\n", "application/octet-stream"},
        {"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n", "text/plain; charset=utf-8"},
        {"GET /typed HTTP/1.1\r\nHost: x\r\n\r\n", "application/json"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int fd = roundtrip(v[i].req);
        ck_assert_int_eq(th_status(rbuf), 200);
        ck_assert_msg(th_has_header(rbuf, "Content-Type", v[i].type), "%s: %.300s", v[i].req, rbuf);
        close(fd);
    }
    int fd = roundtrip("GET /status?c=204 HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 204);
    ck_assert(!th_has_header(rbuf, "Content-Type", NULL));
    close(fd);
}
END_TEST

/* The server frames the body itself: a Transfer-Encoding set by the handler is dropped
 * (a response claiming gzip framing over a plain body would desynchronise the client). */
START_TEST(test_protocol_handler_transfer_encoding_is_dropped)
{
    int fd = roundtrip("GET /te HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert(!th_has_header(rbuf, "Transfer-Encoding", NULL));
    ck_assert(th_has_header(rbuf, "Content-Length", "3"));
    ck_assert_str_eq(th_body(rbuf), "abc");
    close(fd);
}
END_TEST

START_TEST(test_protocol_absolute_form_target_gives_host)
{
    int fd = roundtrip("GET http://example.com:8080/x?y HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "GET http://example.com:8080/x?y");
    ck_assert_int_eq(th_sends(fd, "GET http://example.com/host HTTP/1.1\r\nHost: example.com\r\n\r\n"), 0);
    read_next(fd);
    ck_assert_str_eq(th_body(rbuf), "example.com");
    close(fd);
}
END_TEST

START_TEST(test_protocol_absolute_form_authority_overrides_host_header)
{
    /* RFC 9112 §3.2.2: a server MUST ignore Host when the target is absolute-form (Go:
     * req.Host = req.URL.Host). */
    int fd = roundtrip("GET http://example.com/host HTTP/1.1\r\nHost: other.example\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "example.com");
    close(fd);
}
END_TEST

START_TEST(test_protocol_absolute_form_host_excludes_userinfo)
{
    /* The host is the authority's host[:port], without userinfo (Go: URL.Host). */
    int fd = roundtrip("GET http://user:pw@example.com:81/host HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "example.com:81");
    close(fd);
}
END_TEST

START_TEST(test_protocol_options_asterisk_reaches_handler)
{
    int fd = roundtrip("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "OPTIONS *");
    close(fd);
}
END_TEST

START_TEST(test_protocol_connect_authority_form_reaches_handler)
{
    int fd = roundtrip("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_str_eq(th_body(rbuf), "CONNECT example.com:443");
    close(fd);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------ */

static TCase *tcase(Suite *s, const char *name, void (*setup)(void))
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return tc;
}

Suite *test_suite(void)
{
    curl = th_client("CURL", "curl", "--version");
    py = th_client("PYTHON3", "python3", "-c 'import http.client'");
    Suite *s = suite_create("protocol");
    TCase *tc = tcase(s, "reject", setup_small_heads);
    tcase_add_loop_test(tc, test_protocol_rejects_malformed_without_serving_next, 0, N_BAD_VECTORS);
    tcase_add_test(tc, test_protocol_valid_request_lets_pipelined_next_through);
    tcase_add_test(tc, test_protocol_accepts_head_of_exactly_max_header_bytes);
    tcase_add_test(tc, test_protocol_rejects_head_one_byte_over_max_header_bytes_with_431);
    tcase_add_test(tc, test_protocol_rejects_huge_head_with_431);
    tcase_add_test(tc, test_protocol_identical_content_lengths_are_one_length);
    tcase_add_test(tc, test_protocol_request_sent_byte_by_byte_is_served);

    tc = tcase(s, "big-heads", setup_big_heads);
    tcase_add_test(tc, test_protocol_accepts_accumulated_head_of_exactly_max_header_bytes);
    tcase_add_test(tc, test_protocol_rejects_accumulated_head_one_byte_over_with_431);

    tc = tcase(s, "keepalive", setup_default);
    tcase_add_test(tc, test_protocol_keepalive_serves_several_requests_on_one_connection);
    tcase_add_test(tc, test_protocol_http10_without_keepalive_closes);
    tcase_add_test(tc, test_protocol_http10_keepalive_is_kept);
    tcase_add_test(tc, test_protocol_connection_close_is_honoured);
    tcase_add_test(tc, test_protocol_connection_close_stops_pipelined_requests);
    tcase_add_test(tc, test_protocol_short_declared_content_length_closes);
    tcase_add_test(tc, test_protocol_large_head_keeps_pipelined_body_and_request);
    tcase_add_test(tc, test_protocol_stray_crlf_after_body_is_tolerated);
    tcase_add_test(tc, test_protocol_pipelined_requests_are_answered_in_order);

    tc = tcase(s, "chunked", setup_default);
    tcase_add_test(tc, test_protocol_chunked_request_with_extensions_and_trailers);
    tcase_add_test(tc, test_protocol_large_response_is_chunked_for_http11);
    tcase_add_test(tc, test_protocol_large_response_is_close_delimited_for_http10);
    tcase_add_test(tc, test_protocol_small_response_gets_content_length);
    tcase_add_test(tc, test_protocol_response_trailers_follow_last_chunk);

    tc = tcase(s, "continue", setup_default);
    tcase_add_test(tc, test_protocol_expect_continue_sends_100_before_body);
    tcase_add_test(tc, test_protocol_expect_continue_unread_body_sends_no_100_and_closes);
    tcase_add_test(tc, test_protocol_expect_continue_with_eager_body_keeps_framing);

    tc = tcase(s, "bodiless", setup_default);
    tcase_add_test(tc, test_protocol_head_sends_no_body_but_get_length);
    tcase_add_test(tc, test_protocol_head_of_large_response_sends_no_body);
    tcase_add_test(tc, test_protocol_204_has_no_body);
    tcase_add_test(tc, test_protocol_204_has_no_framing_headers);
    tcase_add_test(tc, test_protocol_head_then_pipelined_get_share_connection);
    tcase_add_test(tc, test_protocol_304_has_no_body);
    tcase_add_test(tc, test_protocol_103_early_hints_precede_final_response);

    tc = tcase(s, "drain", setup_default);
    tcase_add_test(tc, test_protocol_small_unread_body_is_drained_and_connection_reused);
    tcase_add_test(tc, test_protocol_large_unread_body_gets_connection_close);
    tcase_add_test(tc, test_protocol_small_unread_chunked_body_is_drained_and_connection_reused);
    tcase_add_test(tc, test_protocol_large_unread_chunked_body_gets_connection_close);

    tc = tcase(s, "clients", setup_default);
    tcase_add_test(tc, test_protocol_curl_fetches_over_http11);
    tcase_add_test(tc, test_protocol_curl_posts_chunked_file);
    tcase_add_test(tc, test_protocol_curl_reuses_connection_for_two_urls);
    tcase_add_test(tc, test_protocol_python_http_client_reuses_connection);
    tcase_add_test(tc, test_protocol_python_http_client_after_unread_chunked_bodies);

    tc = tcase(s, "targets", setup_default);
    tcase_add_test(tc, test_protocol_date_header_is_rfc1123);
    tcase_add_test(tc, test_protocol_sniffs_untyped_bodies_like_go);
    tcase_add_test(tc, test_protocol_handler_transfer_encoding_is_dropped);
    tcase_add_test(tc, test_protocol_absolute_form_target_gives_host);
    tcase_add_test(tc, test_protocol_absolute_form_authority_overrides_host_header);
    tcase_add_test(tc, test_protocol_absolute_form_host_excludes_userinfo);
    tcase_add_test(tc, test_protocol_options_asterisk_reaches_handler);
    tcase_add_test(tc, test_protocol_connect_authority_form_reaches_handler);
    return s;
}
