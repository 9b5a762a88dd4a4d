/* tests/test-multipart.c: multipart/form-data read as a stream (lib/multipart.c) over a
 * real socket: parts and their headers, delimiters split across reads, skipped parts,
 * limits, malformed bodies, a 100 MiB part in bounded memory, and curl -F. */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-common.h"
#include <gchttp/multipart.h>

static const char *curl;

#define BIG ((uint64_t)100 << 20)

/* The handler reports what it read, one "[name|filename|type|length|data]" per part
 * (data: the first bytes of a small part, or "pattern-ok"/"pattern-bad" for parts named
 * "big", whose byte i must be i % 251), then " end=<code>" and, for /big, the bytes the
 * collector was asked for while reading. */
static void handler(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    gh_alloc_stats_t a0, a1;
    gh_alloc_stats(&a0);
    gh_multipart_limits_t lim = {0};
    if (th_path_is(r, "/limits")) {
        lim.max_header_bytes = 100;
        lim.max_parts = 2;
    }
    int skip = th_path_is(r, "/skip");
    gh_multipart_t *m;
    int rc = gh_multipart_new(r, &lim, &m);
    if (rc < 0) {
        gh_response_printf(w, "new=%s", gh_err_name(rc));
        return;
    }
    static __thread char buf[10007];
    char rep[4096];
    size_t n = 0;
    gh_part_t *p;
    while ((rc = gh_multipart_next(m, &p)) == 1) {
        uint64_t len = 0;
        int ok = 1;
        char head[40] = "";
        ssize_t k = 0;
        const char *name = gh_part_name(p);
        int big = name && strcmp(name, "big") == 0;
        while (!skip && (k = gh_part_read(p, buf, sizeof buf)) > 0) {
            if (big) {
                for (ssize_t i = 0; i < k; i++)
                    ok &= (unsigned char)buf[i] == (len + (uint64_t)i) % 251;
            } else if (len < sizeof head - 1) {
                size_t c = (size_t)k < sizeof head - 1 - len ? (size_t)k : sizeof head - 1 - len;
                memcpy(head + len, buf, c);
                head[len + c] = 0;
            }
            len += (uint64_t)k;
        }
        const char *ct = gh_part_header(p, "content-type");
        const char *fn = gh_part_filename(p);
        n += (size_t)snprintf(rep + n, sizeof rep - n, "[%s|%s|%s|%llu|%s]", name ? name : "-",
                              fn ? fn : "-", ct ? ct : "-", (unsigned long long)len,
                              big ? (ok ? "pattern-ok" : "pattern-bad") : head);
        if (k < 0) {
            rc = (int)k;
            break;
        }
        if (n >= sizeof rep - 200)
            break;
    }
    gh_alloc_stats(&a1);
    n += (size_t)snprintf(rep + n, sizeof rep - n, " end=%s", rc == 0 ? "0" : gh_err_name(rc));
    if (th_path_is(r, "/big"))
        snprintf(rep + n, sizeof rep - n, " alloc=%lu", a1.bytes - a0.bytes);
    gh_response_puts(w, rep);
}

static void setup(void)
{
    th_server_start_handler(handler);
}

static void teardown(void)
{
    th_server_close();
}

#define B "BOUNDARY-xyz"

static const char body1[] =
    "This is the preamble; it is ignored.\r\n"
    "--" B "\r\n"
    "Content-Disposition: form-data; name=\"title\"\r\n"
    "\r\n"
    "hello world\r\n"
    "--" B "  \r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"../../dir/a b.txt\"\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "line1\r\nline2\r\n--" B "X is data\r\n"
    "--" B "\r\n"
    "Content-Disposition: form-data; name=u; filename*=UTF-8''na%C3%AFve.txt\r\n"
    "\r\n"
    "x\r\n"
    "--" B "\r\n"
    "\r\n"
    "no headers\r\n"
    "--" B "--\r\n"
    "epilogue, ignored\r\n";

static const char want1[] = "[title|-|-|11|hello world]"
                            "[file|a b.txt|text/plain|37|line1\r\nline2\r\n--" B "X is data]"
                            "[u|na\xc3\xafve.txt|-|1|x]"
                            "[-|-|-|10|no headers]"
                            " end=0";

static void send_multipart(int fd, const char *path, const char *ctype, const char *body,
                           size_t blen, int trickle)
{
    char req[512];
    snprintf(req, sizeof req,
             "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: %s\r\n"
             "Content-Length: %zu\r\n\r\n",
             path, ctype, blen);
    th_send_str(fd, req);
    if (!trickle) {
        ck_assert_int_eq(th_send(fd, body, blen), 0);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (size_t i = 0; i < blen; i++)
        ck_assert_int_eq(th_send(fd, body + i, 1), 0);
}

static const char *exchange(const char *path, const char *ctype, const char *body, size_t blen,
                            int trickle)
{
    int fd = th_connect_srv();
    send_multipart(fd, path, ctype, body, blen, trickle);
    ck_assert_int_eq(th_read_status(fd), 200);
    close(fd);
    return th_rbody();
}

START_TEST(test_multipart_reads_parts_and_their_headers)
{
    ck_assert_str_eq(
        exchange("/", "multipart/form-data; boundary=\"" B "\"", body1, sizeof body1 - 1, 0),
        want1);
    /* The media type is case-insensitive and the boundary may be a bare token. */
    ck_assert_str_eq(
        exchange("/", "Multipart/Form-Data;boundary=" B "; charset=x", body1, sizeof body1 - 1, 0),
        want1);
}
END_TEST

START_TEST(test_multipart_finds_delimiters_split_across_reads)
{
    ck_assert_str_eq(exchange("/", "multipart/form-data; boundary=" B, body1, sizeof body1 - 1, 1),
                     want1);
}
END_TEST

START_TEST(test_multipart_skips_the_parts_not_read)
{
    ck_assert_str_eq(
        exchange("/skip", "multipart/form-data; boundary=" B, body1, sizeof body1 - 1, 0),
        "[title|-|-|0|][file|a b.txt|text/plain|0|][u|na\xc3\xafve.txt|-|0|]"
        "[-|-|-|0|] end=0");
}
END_TEST

START_TEST(test_multipart_enforces_header_and_part_limits)
{
    static const char long_header[] =
        "--" B "\r\n"
        "Content-Disposition: form-data; name=\"a-rather-long-field-name-to-pass-one-hundred"
        "-bytes-of-header\"\r\n"
        "\r\n"
        "x\r\n"
        "--" B "--\r\n";
    ck_assert_str_eq(exchange("/limits", "multipart/form-data; boundary=" B, long_header,
                              sizeof long_header - 1, 0),
                     " end=GH_EMSGSIZE");
    static const char three[] = "--" B "\r\n\r\n1\r\n--" B "\r\n\r\n2\r\n--" B "\r\n\r\n3\r\n"
                                "--" B "--\r\n";
    ck_assert_str_eq(
        exchange("/limits", "multipart/form-data; boundary=" B, three, sizeof three - 1, 0),
        "[-|-|-|1|1][-|-|-|1|2] end=GH_EMSGSIZE");
}
END_TEST

START_TEST(test_multipart_rejects_malformed_bodies)
{
    static const char ok[] = "--" B "\r\n\r\nx\r\n--" B "--";
    ck_assert_str_eq(exchange("/", "text/plain", ok, sizeof ok - 1, 0), "new=GH_EINVAL");
    ck_assert_str_eq(exchange("/", "multipart/form-data", ok, sizeof ok - 1, 0), "new=GH_EINVAL");
    ck_assert_str_eq(exchange("/", "multipart/form-data; boundary=\"\"", ok, sizeof ok - 1, 0),
                     "new=GH_EINVAL");
    ck_assert_str_eq(
        exchange("/",
                 "multipart/form-data; boundary=0123456789012345678901234567890123456789"
                 "01234567890123456789012345678901",
                 ok, sizeof ok - 1, 0),
        "new=GH_EINVAL");
    /* The close delimiter with nothing after it is a complete body. */
    ck_assert_str_eq(exchange("/", "multipart/form-data; boundary=" B, ok, sizeof ok - 1, 0),
                     "[-|-|-|1|x] end=0");
    static const char truncated[] = "--" B "\r\n\r\nthe body ends insi";
    ck_assert_str_eq(
        exchange("/", "multipart/form-data; boundary=" B, truncated, sizeof truncated - 1, 0),
        "[-|-|-|18|the body ends insi] end=GH_EPROTO");
    static const char none[] = "no delimiter at all";
    ck_assert_str_eq(exchange("/", "multipart/form-data; boundary=" B, none, sizeof none - 1, 0),
                     " end=GH_EPROTO");
    /* A boundary followed by anything but "--", padding or CRLF is no delimiter (Go):
     * here it is preamble, and the body holds no part. */
    static const char junk[] = "--" B "junk\r\n\r\nx\r\n--" B "--";
    ck_assert_str_eq(exchange("/", "multipart/form-data; boundary=" B, junk, sizeof junk - 1, 0),
                     " end=0");
    static const char nocrlf[] = "--" B " \t x\r\n\r\nx\r\n--" B "--";
    ck_assert_str_eq(
        exchange("/", "multipart/form-data; boundary=" B, nocrlf, sizeof nocrlf - 1, 0),
        " end=GH_EPROTO");
    static const char badhdr[] = "--" B "\r\nno colon here\r\n\r\nx\r\n--" B "--";
    ck_assert_str_eq(
        exchange("/", "multipart/form-data; boundary=" B, badhdr, sizeof badhdr - 1, 0),
        " end=GH_EPROTO");
}
END_TEST

/* ---- 100 MiB ---------------------------------------------------------------------------- */

static const char big_head[] =
    "--" B "\r\n"
    "Content-Disposition: form-data; name=\"big\"; filename=\"big.bin\"\r\n"
    "Content-Type: application/octet-stream\r\n\r\n";
static const char big_tail[] = "\r\n--" B "\r\n"
                               "Content-Disposition: form-data; name=\"after\"\r\n\r\n"
                               "done\r\n--" B "--\r\n";

/* The writer: plain memory only, result recorded for the test thread. */
static int writer_fd;
static int writer_rc;

static void *writer(void *arg)
{
    (void)arg;
    static char chunk[65536];
    char req[512];
    uint64_t total = (sizeof big_head - 1) + BIG + (sizeof big_tail - 1);
    snprintf(req, sizeof req,
             "POST /big HTTP/1.1\r\nHost: t\r\nContent-Type: "
             "multipart/form-data; boundary=" B "\r\nContent-Length: %llu\r\n\r\n",
             (unsigned long long)total);
    if (th_sends(writer_fd, req) < 0 || th_sends(writer_fd, big_head) < 0) {
        writer_rc = -1;
        return NULL;
    }
    for (uint64_t off = 0; off < BIG; off += sizeof chunk) {
        size_t n = BIG - off < sizeof chunk ? (size_t)(BIG - off) : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = (char)((off + i) % 251);
        if (th_send(writer_fd, chunk, n) < 0) {
            writer_rc = -1;
            return NULL;
        }
    }
    writer_rc = th_sends(writer_fd, big_tail);
    return NULL;
}

START_TEST(test_multipart_streams_a_100_mib_part_in_bounded_memory)
{
    writer_fd = th_connect_srv();
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, writer, NULL), 0);
    static char resp[8192];
    ssize_t n = th_read_response(writer_fd, resp, sizeof resp - 1, 120000);
    pthread_join(t, NULL);
    ck_assert_int_eq(writer_rc, 0);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(th_status(resp), 200);
    const char *body = th_body(resp);
    unsigned long alloc = 0;
    const char *a = strstr(body, " alloc=");
    ck_assert_ptr_nonnull(a);
    alloc = strtoul(a + 7, NULL, 10);
    char want[256];
    snprintf(want, sizeof want,
             "[big|big.bin|application/octet-stream|%llu|pattern-ok][after|-|-|4|done] end=0",
             (unsigned long long)BIG);
    ck_assert_int_eq(strncmp(body, want, strlen(want)), 0);
    /* The window (64 KiB), the readers and two part headers: far below one MiB, and
     * nothing that grows with the part. */
    ck_assert_msg(alloc < (1u << 20), "the handler allocated %lu bytes", alloc);
    printf("multipart: reading a 100 MiB part allocated %lu bytes\n", alloc);
    close(writer_fd);
}
END_TEST

START_TEST(test_multipart_reads_what_curl_sends)
{
    if (!curl)
        return; /* missing client: the suite reports SKIP (or FAIL under CI) */
    char path[] = "/tmp/gh-mp-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    static char data[300000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i % 251);
    ck_assert_int_eq(write(fd, data, sizeof data), (ssize_t)sizeof data);
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "'%s' -s -F 'title=hello curl' -F 'big=@%s;filename=up.bin;type=application/x-test' "
             "http://127.0.0.1:%d/",
             curl, path, th_port);
    static char out[4096];
    int rc = th_run(cmd, out, sizeof out - 1);
    unlink(path);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(out, "[title|-|-|10|hello curl][big|up.bin|application/x-test|300000|"
                          "pattern-ok] end=0");
}
END_TEST

Suite *test_suite(void)
{
    curl = th_client("CURL", "curl", "--version");
    Suite *s = suite_create("multipart");
    TCase *tc = tcase_create("wire");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_multipart_reads_parts_and_their_headers);
    tcase_add_test(tc, test_multipart_finds_delimiters_split_across_reads);
    tcase_add_test(tc, test_multipart_skips_the_parts_not_read);
    tcase_add_test(tc, test_multipart_enforces_header_and_part_limits);
    tcase_add_test(tc, test_multipart_rejects_malformed_bodies);
    tcase_add_test(tc, test_multipart_reads_what_curl_sends);
    suite_add_tcase(s, tc);
    tc = tcase_create("big");
    tcase_set_timeout(tc, 3 * GH_TEST_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_multipart_streams_a_100_mib_part_in_bounded_memory);
    suite_add_tcase(s, tc);
    return s;
}
