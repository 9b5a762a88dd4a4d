/* tests/test-fileserver.c: the file server (lib/fileserver.c), gh_content_serve,
 * gh_response_sendfile, HTTP dates (lib/date.c) and MIME types (lib/mime.c), against
 * the loopback client, curl and python3's http.client. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-common.h"

/* A marker that only files outside the root contain: no response may carry it. */
#define SECRET "TOP-SECRET-OUTSIDE-THE-ROOT"
#define BIG_SIZE (8u << 20) /* larger than any loopback socket buffer */

static char base[64];  /* temp dir: base/root is served, base/secret.txt is outside */
static char root[96];
static gh_fileserver_t *fs;
static char resp[BIG_SIZE + 65536];
static const char *curl, *py;

/* ---- fixture ------------------------------------------------------------------------ */

static void put(const char *rel, const void *data, size_t n)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static void sub(const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    ck_assert_int_eq(mkdir(p, 0755), 0);
}

static void link_to(const char *target, const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    ck_assert_int_eq(symlink(target, p), 0);
}

/* Byte i of big.bin: a pattern no prefix of which repeats at small offsets. */
static unsigned char big_byte(size_t i) { return (unsigned char)((i * 2654435761u) >> 13); }

static void make_tree(void)
{
    snprintf(base, sizeof base, "/tmp/gh-fs.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(base));
    snprintf(root, sizeof root, "%s/root", base);
    put("secret.txt", SECRET "\n", strlen(SECRET) + 1);
    sub("secretdir");
    put("secretdir/s.txt", SECRET "\n", strlen(SECRET) + 1);
    sub("root");
    put("root/a.txt", "hello world\n", 12);
    put("root/index.html", "<html>home</html>\n", 18);
    sub("root/sub");
    put("root/sub/index.html", "<p>sub</p>\n", 11);
    sub("root/plain");
    put("root/plain/<b>&.txt", "x", 1);
    sub("root/plain/d");
    put("root/empty.txt", "", 0);
    put("root/.hidden", "dot\n", 4);
    /* PNG signature, no extension: sniffed from the start, also for a range */
    static const unsigned char png[32] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a,
                                          0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    put("root/picture", png, sizeof png);
    unsigned char *big = malloc(BIG_SIZE);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < BIG_SIZE; i++)
        big[i] = big_byte(i);
    put("root/big.bin", big, BIG_SIZE);
    free(big);
    char abs[200];
    snprintf(abs, sizeof abs, "%s/secret.txt", base);
    link_to(abs, "root/escape-abs");
    link_to("../secret.txt", "root/escape-rel");
    link_to("../secretdir", "root/escape-dir");
    link_to("a.txt", "root/link-in");
    snprintf(abs, sizeof abs, "%s/a.txt", root);
    link_to(abs, "root/link-in-abs");
    char fifo[200];
    snprintf(fifo, sizeof fifo, "%s/fifo", root);
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
}

static void start(gh_symlinks_t links, int list, int hide, const char *prefix)
{
    make_tree();
    gh_fileserver_config_t fc;
    gh_fileserver_config_init(&fc);
    fc.root = root;
    fc.symlinks = links;
    fc.list_dirs = list;
    fc.hide_dotfiles = hide;
    fc.strip_prefix = prefix;
    ck_assert_int_eq(gh_fileserver_new(&fs, &fc), 0);
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = gh_fileserver_serve;
    cfg.handler_data = fs;
    th_server_start(&cfg);
}

static void setup(void) { start(GH_SYMLINKS_BENEATH, 0, 0, NULL); }

static void teardown(void)
{
    th_server_close();
    if (fs)
        gh_fileserver_close(fs);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (base[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", base);
}

/* One request (head lines after the request line, CRLF-terminated each) on a new
 * connection; the response in resp. Returns its length. */
static ssize_t request(const char *method, const char *target, const char *hdrs)
{
    int fd = th_connect_srv();
    char req[2048];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n", method,
             target, hdrs ? hdrs : "");
    th_send_str(fd, req);
    int closed = 0;
    ssize_t n = th_read_all(fd, resp, sizeof resp - 1, TH_IO_MS, &closed);
    close(fd);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(closed, 1);
    return n;
}

static int get(const char *target, const char *hdrs)
{
    request("GET", target, hdrs);
    return th_status(resp);
}

/* The value of header name in resp (into out), or NULL. */
static const char *header(const char *name, char *out, size_t cap)
{
    const char *end = strstr(resp, "\r\n\r\n");
    size_t nl = strlen(name);
    for (const char *p = strstr(resp, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 3 + nl;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(strstr(v, "\r\n") - v);
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
            return out;
        }
    }
    return NULL;
}

static size_t body_len(ssize_t n)
{
    const char *b = th_body(resp);
    ck_assert_ptr_nonnull(b);
    return (size_t)(resp + n - b);
}

/* ---- files -------------------------------------------------------------------------- */

START_TEST(test_file_is_served_with_type_length_and_validators)
{
    ssize_t n = request("GET", "/a.txt", NULL);
    char v[256];
    ck_assert_int_eq(th_status(resp), 200);
    ck_assert_str_eq(th_body(resp), "hello world\n");
    ck_assert_uint_eq(body_len(n), 12);
    ck_assert_str_eq(header("Content-Type", v, sizeof v), "text/plain; charset=utf-8");
    ck_assert_str_eq(header("Content-Length", v, sizeof v), "12");
    ck_assert_str_eq(header("Accept-Ranges", v, sizeof v), "bytes");
    ck_assert_ptr_nonnull(header("ETag", v, sizeof v));
    ck_assert_int_eq(v[0], '"');
    ck_assert_ptr_nonnull(header("Last-Modified", v, sizeof v));
    int64_t t;
    ck_assert_int_eq(gh_date_parse(v, &t), 0);
    struct stat st;
    char p[200];
    snprintf(p, sizeof p, "%s/a.txt", root);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(t, st.st_mtime);
}
END_TEST

START_TEST(test_unknown_extension_is_sniffed_from_the_start_even_for_a_range)
{
    char v[128];
    ck_assert_int_eq(get("/picture", NULL), 200);
    ck_assert_str_eq(header("Content-Type", v, sizeof v), "image/png");
    /* bytes 16..31 are zeros: sniffed alone they would be octet-stream */
    ck_assert_int_eq(get("/picture", "Range: bytes=16-31\r\n"), 206);
    ck_assert_str_eq(header("Content-Type", v, sizeof v), "image/png");
}
END_TEST

START_TEST(test_big_file_goes_out_whole_by_sendfile)
{
    /* Twice on one keep-alive connection: the sendfile path leaves the connection
     * usable, and the bytes are the file's. */
    int fd = th_connect_srv();
    for (int round = 0; round < 2; round++) {
        th_send_str(fd, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        ssize_t n = th_read_response(fd, resp, sizeof resp - 1, 20000);
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(th_status(resp), 200);
        size_t bl = body_len(n);
        ck_assert_uint_eq(bl, BIG_SIZE);
        const unsigned char *b = (const unsigned char *)th_body(resp);
        size_t bad = 0;
        for (size_t i = 0; i < bl; i++)
            bad += b[i] != big_byte(i);
        ck_assert_uint_eq(bad, 0);
    }
    close(fd);
}
END_TEST

START_TEST(test_client_leaving_mid_file_does_not_hold_the_server)
{
    /* Ask for the big file, read a little, reset. The server's send fails or times
     * out; it must go on serving. */
    for (int i = 0; i < 3; i++) {
        int fd = th_connect_srv();
        int small = 4096;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        th_send_str(fd, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
        char buf[1024];
        ck_assert_int_gt(read(fd, buf, sizeof buf), 0);
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
    }
    ck_assert_int_eq(th_wait_stats(th_all_closed, 10000), 1);
    ck_assert_int_eq(get("/a.txt", NULL), 200);
}
END_TEST

START_TEST(test_head_has_headers_and_no_body)
{
    ssize_t n = request("HEAD", "/big.bin", NULL);
    char v[64];
    ck_assert_int_eq(th_status(resp), 200);
    ck_assert_str_eq(header("Content-Length", v, sizeof v), "8388608");
    ck_assert_uint_eq(body_len(n), 0);
    n = request("HEAD", "/a.txt", "Range: bytes=0-3\r\n");
    ck_assert_int_eq(th_status(resp), 206);
    ck_assert_str_eq(header("Content-Length", v, sizeof v), "4");
    ck_assert_uint_eq(body_len(n), 0);
}
END_TEST

START_TEST(test_other_methods_get_405_with_allow)
{
    char v[64];
    request("POST", "/a.txt", "Content-Length: 0\r\n");
    ck_assert_int_eq(th_status(resp), 405);
    ck_assert_str_eq(header("Allow", v, sizeof v), "GET, HEAD");
}
END_TEST

/* ---- directories -------------------------------------------------------------------- */

START_TEST(test_directory_without_slash_redirects)
{
    char v[128];
    ck_assert_int_eq(get("/sub?x=1", NULL), 301);
    ck_assert_str_eq(header("Location", v, sizeof v), "sub/?x=1");
    ck_assert_int_eq(get("/a.txt/", NULL), 301);
    ck_assert_str_eq(header("Location", v, sizeof v), "../a.txt");
    ck_assert_int_eq(get("/sub/index.html", NULL), 301);
    ck_assert_str_eq(header("Location", v, sizeof v), "./");
}
END_TEST

START_TEST(test_directory_serves_its_index)
{
    ck_assert_int_eq(get("/", NULL), 200);
    ck_assert_str_eq(th_body(resp), "<html>home</html>\n");
    ck_assert_int_eq(get("/sub/", NULL), 200);
    ck_assert_str_eq(th_body(resp), "<p>sub</p>\n");
}
END_TEST

START_TEST(test_directory_without_index_is_404_unless_listing)
{
    ck_assert_int_eq(get("/plain/", NULL), 404);
}
END_TEST

START_TEST(test_listing_escapes_names)
{
    ck_assert_int_eq(get("/plain/", NULL), 200);
    const char *b = th_body(resp);
    ck_assert_ptr_nonnull(strstr(b, "<a href=\"%3Cb%3E&amp;.txt\">&lt;b&gt;&amp;.txt</a>\n"
                                    "<a href=\"d/\">d/</a>\n</pre>"));
}
END_TEST

/* ---- the root is a wall -------------------------------------------------------------- */

START_TEST(test_traversal_attempts_never_leave_the_root)
{
    static const char *const targets[] = {
        "/../secret.txt",        "/..%2fsecret.txt",       "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",  "/sub/../../secret.txt",  "/sub/%2e%2e/%2e%2e/secret.txt",
        "/%2e%2e%5csecret.txt",  "/..\\secret.txt",        "/a.txt%00.html",
        "/%00",                  "//../secret.txt",        "/./../secret.txt",
        "/escape-abs",           "/escape-rel",            "/escape-dir/s.txt",
        "/escape-dir/",          "/%65scape-rel",          "http://x/../secret.txt",
        "/fifo",                 "/%zz",                   "/%2",
        "/.%2e/secret.txt",      "/sub/%2e%2e%2f%2e%2e%2fsecret.txt",
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        int fd = th_connect_srv();
        char req[512];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 targets[i]);
        th_send_str(fd, req);
        int closed = 0;
        ssize_t n = th_read_all(fd, resp, sizeof resp - 1, TH_IO_MS, &closed);
        close(fd);
        ck_assert_int_gt(n, 0);
        int st = th_status(resp);
        ck_assert_msg(st == 400 || st == 404, "%s: status %d", targets[i], st);
        ck_assert_msg(!memmem(resp, (size_t)n, SECRET, strlen(SECRET)), "%s leaked", targets[i]);
    }
}
END_TEST

START_TEST(test_symlinks_inside_the_root_are_followed)
{
    ck_assert_int_eq(get("/link-in", NULL), 200);
    ck_assert_str_eq(th_body(resp), "hello world\n");
    ck_assert_int_eq(get("/link-in-abs", NULL), 200); /* absolute, but inside */
    ck_assert_str_eq(th_body(resp), "hello world\n");
}
END_TEST

START_TEST(test_no_symlinks_refuses_every_link)
{
    ck_assert_int_eq(get("/link-in", NULL), 404);
    ck_assert_int_eq(get("/link-in-abs", NULL), 404);
    ck_assert_int_eq(get("/escape-rel", NULL), 404);
    ck_assert_int_eq(get("/a.txt", NULL), 200);
}
END_TEST

START_TEST(test_hidden_dotfiles_are_404)
{
    ck_assert_int_eq(get("/.hidden", NULL), 404);
    ck_assert_int_eq(get("/a.txt", NULL), 200);
}
END_TEST

START_TEST(test_dotfiles_are_served_by_default)
{
    ck_assert_int_eq(get("/.hidden", NULL), 200);
    ck_assert_str_eq(th_body(resp), "dot\n");
}
END_TEST

START_TEST(test_strip_prefix)
{
    ck_assert_int_eq(get("/static/a.txt", NULL), 200);
    ck_assert_str_eq(th_body(resp), "hello world\n");
    ck_assert_int_eq(get("/a.txt", NULL), 404);
}
END_TEST

/* ---- conditional requests (RFC 9110 §13) ------------------------------------------- */

static void etag_of_a(char *out, size_t cap)
{
    request("HEAD", "/a.txt", NULL);
    ck_assert_ptr_nonnull(header("ETag", out, cap));
}

START_TEST(test_if_none_match_weak_comparison_gives_304)
{
    char et[128], h[256], v[128];
    etag_of_a(et, sizeof et);
    snprintf(h, sizeof h, "If-None-Match: \"other\", W/%s\r\n", et);
    ssize_t n = request("GET", "/a.txt", h);
    ck_assert_int_eq(th_status(resp), 304);
    ck_assert_uint_eq(body_len(n), 0);
    ck_assert_str_eq(header("ETag", v, sizeof v), et);
    ck_assert_ptr_null(header("Content-Length", v, sizeof v));
    ck_assert_int_eq(get("/a.txt", "If-None-Match: \"other\"\r\n"), 200);
    ck_assert_int_eq(get("/a.txt", "If-None-Match: *\r\n"), 304);
    /* not GET/HEAD: 412 (§13.1.2) */
    snprintf(h, sizeof h, "If-None-Match: %s\r\nContent-Length: 0\r\n", et);
    request("DELETE", "/a.txt", h);
    ck_assert_int_eq(th_status(resp), 405); /* the file server answers GET/HEAD only */
}
END_TEST

START_TEST(test_if_modified_since)
{
    char lm[64], h[128];
    request("HEAD", "/a.txt", NULL);
    ck_assert_ptr_nonnull(header("Last-Modified", lm, sizeof lm));
    snprintf(h, sizeof h, "If-Modified-Since: %s\r\n", lm);
    ck_assert_int_eq(get("/a.txt", h), 304);
    ck_assert_int_eq(get("/a.txt", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), 200);
    ck_assert_int_eq(get("/a.txt", "If-Modified-Since: garbage\r\n"), 200);
    /* If-None-Match wins over If-Modified-Since (§13.2.2 step 4) */
    snprintf(h, sizeof h, "If-None-Match: \"x\"\r\nIf-Modified-Since: %s\r\n", lm);
    ck_assert_int_eq(get("/a.txt", h), 200);
}
END_TEST

START_TEST(test_if_match_and_if_unmodified_since_give_412)
{
    char et[128], h[256];
    etag_of_a(et, sizeof et);
    ck_assert_int_eq(get("/a.txt", "If-Match: \"nope\"\r\n"), 412);
    snprintf(h, sizeof h, "If-Match: %s\r\n", et);
    ck_assert_int_eq(get("/a.txt", h), 200);
    /* If-Match uses the strong comparison: a weak tag never matches */
    snprintf(h, sizeof h, "If-Match: W/%s\r\n", et);
    ck_assert_int_eq(get("/a.txt", h), 412);
    ck_assert_int_eq(get("/a.txt", "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
                     412);
    ck_assert_int_eq(get("/a.txt", "If-Unmodified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n"),
                     200);
}
END_TEST

START_TEST(test_if_range)
{
    char et[128], lm[64], h[256];
    etag_of_a(et, sizeof et);
    ck_assert_ptr_nonnull(header("Last-Modified", lm, sizeof lm));
    snprintf(h, sizeof h, "Range: bytes=0-4\r\nIf-Range: %s\r\n", et);
    ck_assert_int_eq(get("/a.txt", h), 206);
    ck_assert_str_eq(th_body(resp), "hello");
    ck_assert_int_eq(get("/a.txt", "Range: bytes=0-4\r\nIf-Range: \"changed\"\r\n"), 200);
    ck_assert_str_eq(th_body(resp), "hello world\n");
    snprintf(h, sizeof h, "Range: bytes=6-\r\nIf-Range: %s\r\n", lm);
    ck_assert_int_eq(get("/a.txt", h), 206);
    ck_assert_str_eq(th_body(resp), "world\n");
    ck_assert_int_eq(
        get("/a.txt", "Range: bytes=6-\r\nIf-Range: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), 200);
}
END_TEST

/* ---- ranges (RFC 9110 §14) ----------------------------------------------------------- */

START_TEST(test_single_ranges)
{
    char v[64];
    ck_assert_int_eq(get("/a.txt", "Range: bytes=0-4\r\n"), 206);
    ck_assert_str_eq(th_body(resp), "hello");
    ck_assert_str_eq(header("Content-Range", v, sizeof v), "bytes 0-4/12");
    ck_assert_int_eq(get("/a.txt", "Range: bytes=-6\r\n"), 206);
    ck_assert_str_eq(th_body(resp), "world\n");
    ck_assert_int_eq(get("/a.txt", "Range: bytes=6-100\r\n"), 206);
    ck_assert_str_eq(header("Content-Range", v, sizeof v), "bytes 6-11/12");
    ck_assert_int_eq(get("/a.txt", "Range: bytes=-100\r\n"), 206);
    ck_assert_str_eq(th_body(resp), "hello world\n");
    /* a range of the big file: through sendfile, from the right offset */
    ssize_t n = request("GET", "/big.bin", "Range: bytes=5000000-5999999\r\n");
    ck_assert_int_eq(th_status(resp), 206);
    ck_assert_uint_eq(body_len(n), 1000000);
    const unsigned char *b = (const unsigned char *)th_body(resp);
    size_t bad = 0;
    for (size_t i = 0; i < 1000000; i++)
        bad += b[i] != big_byte(5000000 + i);
    ck_assert_uint_eq(bad, 0);
}
END_TEST

START_TEST(test_unsatisfiable_or_malformed_range_is_416)
{
    char v[64];
    ck_assert_int_eq(get("/a.txt", "Range: bytes=12-\r\n"), 416);
    ck_assert_str_eq(header("Content-Range", v, sizeof v), "bytes */12");
    ck_assert_int_eq(get("/a.txt", "Range: bytes=5-2\r\n"), 416);
    ck_assert_int_eq(get("/a.txt", "Range: bytes=x-\r\n"), 416);
    ck_assert_int_eq(get("/a.txt", "Range: bytes=-0\r\n"), 416);
    /* another unit: ignored */
    ck_assert_int_eq(get("/a.txt", "Range: lines=1-2\r\n"), 416);
    /* an empty file answers 200, as Go (clients that always send Range) */
    ck_assert_int_eq(get("/empty.txt", "Range: bytes=0-10\r\n"), 200);
}
END_TEST

START_TEST(test_overlapping_ranges_larger_than_the_file_get_it_whole)
{
    ck_assert_int_eq(get("/a.txt", "Range: bytes=0-11,0-11\r\n"), 200);
    ck_assert_str_eq(th_body(resp), "hello world\n");
}
END_TEST

/* Parse a multipart/byteranges body back: parts' ranges and bytes must be the file's. */
START_TEST(test_multiple_ranges_are_multipart_byteranges)
{
    ssize_t n = request("GET", "/big.bin", "Range: bytes=0-9, 100-199,-5\r\n");
    char ct[256], cl[32];
    ck_assert_int_eq(th_status(resp), 206);
    ck_assert_ptr_nonnull(header("Content-Type", ct, sizeof ct));
    ck_assert_int_eq(strncmp(ct, "multipart/byteranges; boundary=", 31), 0);
    const char *boundary = ct + 31;
    ck_assert_ptr_nonnull(header("Content-Length", cl, sizeof cl));
    size_t bl = body_len(n);
    ck_assert_uint_eq(bl, strtoul(cl, NULL, 10));
    const char *b = th_body(resp), *end = b + bl;
    char delim[300];
    snprintf(delim, sizeof delim, "--%s", boundary);
    static const long want[3][2] = {{0, 9}, {100, 199}, {BIG_SIZE - 5, BIG_SIZE - 1}};
    const char *p = b;
    for (int part = 0; part < 3; part++) {
        p = memmem(p, (size_t)(end - p), delim, strlen(delim));
        ck_assert_ptr_nonnull(p);
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        ck_assert_ptr_nonnull(hend);
        char want_cr[96];
        snprintf(want_cr, sizeof want_cr, "Content-Range: bytes %ld-%ld/%u", want[part][0],
                 want[part][1], BIG_SIZE);
        ck_assert_ptr_nonnull(memmem(p, (size_t)(hend - p), want_cr, strlen(want_cr)));
        ck_assert_ptr_nonnull(memmem(p, (size_t)(hend - p), "Content-Type: application/octet-stream", 38));
        const unsigned char *d = (const unsigned char *)hend + 4;
        long len = want[part][1] - want[part][0] + 1;
        for (long i = 0; i < len; i++)
            ck_assert_uint_eq(d[i], big_byte((size_t)(want[part][0] + i)));
        ck_assert_int_eq(memcmp(d + len, "\r\n--", 4), 0);
        p = (const char *)d + len;
    }
    char closing[300];
    snprintf(closing, sizeof closing, "\r\n--%s--\r\n", boundary);
    ck_assert_int_eq((long)(end - p), (long)strlen(closing));
    ck_assert_int_eq(memcmp(p, closing, strlen(closing)), 0);
}
END_TEST

/* ---- real clients ------------------------------------------------------------------- */

static char out[1 << 16];

START_TEST(test_curl_range_z_and_if_none_match)
{
    if (!curl)
        return; /* th_client: the suite ends SKIP, or FAIL in CI */
    char cmd[1024], et[128];
    snprintf(cmd, sizeof cmd, "'%s' -sS --max-time 10 --range 6-10 http://127.0.0.1:%d/a.txt",
             curl, th_port);
    ck_assert_int_eq(th_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "world");
    /* -z with the file's own date: not modified, curl prints nothing and reports 304 */
    snprintf(cmd, sizeof cmd,
             "'%s' -sS --max-time 10 -o /dev/null -w '%%{http_code}' -z '%s/a.txt' "
             "http://127.0.0.1:%d/a.txt",
             curl, root, th_port);
    ck_assert_int_eq(th_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "304");
    /* -z with an older date: the file comes */
    snprintf(cmd, sizeof cmd,
             "'%s' -sS --max-time 10 -z 'Sun, 06 Nov 1994 08:49:37 GMT' http://127.0.0.1:%d/a.txt",
             curl, th_port);
    ck_assert_int_eq(th_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "hello world\n");
    etag_of_a(et, sizeof et);
    snprintf(cmd, sizeof cmd,
             "'%s' -sS --max-time 10 -o /dev/null -w '%%{http_code}' -H 'If-None-Match: %s' "
             "http://127.0.0.1:%d/a.txt",
             curl, et, th_port);
    ck_assert_int_eq(th_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "304");
    /* the big file, through sendfile, checked by curl's byte count */
    snprintf(cmd, sizeof cmd,
             "'%s' -sS --max-time 20 -o /dev/null -w '%%{http_code} %%{size_download}' "
             "http://127.0.0.1:%d/big.bin",
             curl, th_port);
    ck_assert_int_eq(th_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "200 8388608");
}
END_TEST

START_TEST(test_python_http_client_multirange_and_conditional)
{
    if (!py)
        return; /* th_client: the suite ends SKIP, or FAIL in CI */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' - <<'EOF'\n"
             "import http.client, email.parser\n"
             "c = http.client.HTTPConnection('127.0.0.1', %d, timeout=10)\n"
             "c.request('GET', '/a.txt', headers={'Range': 'bytes=0-1,6-7'})\n"
             "r = c.getresponse(); body = r.read()\n"
             "assert r.status == 206, r.status\n"
             "msg = email.parser.BytesParser().parsebytes(\n"
             "    b'Content-Type: ' + r.getheader('Content-Type').encode() + b'\\r\\n\\r\\n' + body)\n"
             "parts = [(p['Content-Range'], p.get_payload(decode=True)) for p in msg.get_payload()]\n"
             "assert parts == [('bytes 0-1/12', b'he'), ('bytes 6-7/12', b'wo')], parts\n"
             "c.request('GET', '/a.txt')\n"
             "r = c.getresponse(); r.read(); et = r.getheader('ETag')\n"
             "c.request('GET', '/a.txt', headers={'If-None-Match': et})\n"
             "r = c.getresponse(); assert r.status == 304 and r.read() == b'', r.status\n"
             "c.request('HEAD', '/big.bin')\n"
             "r = c.getresponse(); assert r.read() == b'' and r.getheader('Content-Length') == '8388608'\n"
             "print('ok')\n"
             "EOF",
             py, th_port);
    ck_assert_int_eq(th_run(cmd, out, sizeof out), 0);
    ck_assert_str_eq(out, "ok\n");
}
END_TEST

/* ---- gh_content_serve and gh_response_sendfile from a handler ---------------------- */

static int big_fd = -1;
static int sendfile_rc;       /* what gh_response_sendfile returned in /short or /stall */
static gh_ctx_t *sendfile_done; /* cancelled once it is recorded */

static void own_handler(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    if (th_path_is(r, "/short") || th_path_is(r, "/stall")) {
        /* /short: asks for more than the file has; /stall: the whole file to a client
         * that reads nothing, under a 300 ms write timeout */
        int shrunk = th_path_is(r, "/short");
        size_t n = shrunk ? BIG_SIZE + 100 : BIG_SIZE;
        char cl[32];
        snprintf(cl, sizeof cl, "%zu", n);
        (void)gh_response_header_set(w, "Content-Length", cl);
        sendfile_rc = (int)gh_response_sendfile(w, big_fd, 0, n);
        gh_ctx_cancel(sendfile_done, 0);
        return;
    }
    if (th_path_is(r, "/chunked")) {
        /* no Content-Length: the file goes out in one chunk */
        gh_response_header_set(w, "Content-Type", "application/octet-stream");
        gh_response_sendfile(w, big_fd, 10, 100000);
        gh_response_sendfile(w, big_fd, 0, 10);
        return;
    }
    if (th_path_is(r, "/typed")) {
        gh_response_header_set(w, "Content-Type", "application/x-mine");
        gh_response_header_set(w, "ETag", "\"v1\"");
    }
    gh_content_t c = {.fd = big_fd, .size = 1000, .mtime = 784111777, .name = "x.json"};
    gh_content_serve(w, r, &c);
}

static void own_setup(void)
{
    make_tree();
    char p[200];
    snprintf(p, sizeof p, "%s/big.bin", root);
    big_fd = open(p, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(big_fd, 0);
    sendfile_done = gh_ctx_new(NULL);
    ck_assert_ptr_nonnull(sendfile_done);
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = own_handler;
    cfg.write_timeout = 300 * GH_MSEC;
    th_server_start(&cfg);
}

START_TEST(test_content_serve_uses_the_handlers_type_etag_and_mtime)
{
    char v[128];
    ck_assert_int_eq(get("/x", NULL), 200);
    ck_assert_str_eq(header("Content-Type", v, sizeof v), "application/json");
    ck_assert_str_eq(header("Last-Modified", v, sizeof v), "Sun, 06 Nov 1994 08:49:37 GMT");
    ck_assert_str_eq(header("Content-Length", v, sizeof v), "1000");
    ck_assert_int_eq(get("/typed", "If-None-Match: \"v1\"\r\n"), 304);
    ck_assert_int_eq(get("/typed", "Range: bytes=0-0\r\n"), 206);
    ck_assert_str_eq(header("Content-Type", v, sizeof v), "application/x-mine");
    ck_assert_int_eq(get("/x", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), 304);
}
END_TEST

START_TEST(test_sendfile_inside_a_chunked_body)
{
    int fd = th_connect_srv();
    th_send_str(fd, "GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    int closed = 0;
    ssize_t n = th_read_all(fd, resp, sizeof resp - 1, TH_IO_MS, &closed);
    close(fd);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(th_status(resp), 200);
    ck_assert_int_eq(th_has_header(resp, "Transfer-Encoding", "chunked"), 1);
    /* decode the chunks */
    const char *p = th_body(resp), *end = resp + n;
    static unsigned char body[200000];
    size_t bl = 0;
    for (int guard = 0; guard < 100; guard++) {
        char *e;
        unsigned long sz = strtoul(p, &e, 16);
        ck_assert_int_eq(memcmp(e, "\r\n", 2), 0);
        p = e + 2;
        if (sz == 0)
            break;
        ck_assert_int_le((long)sz, (long)(end - p));
        memcpy(body + bl, p, sz);
        bl += sz;
        p += sz;
        ck_assert_int_eq(memcmp(p, "\r\n", 2), 0);
        p += 2;
    }
    ck_assert_uint_eq(bl, 100010);
    size_t bad = 0;
    for (size_t i = 0; i < 100000; i++)
        bad += body[i] != big_byte(10 + i);
    for (size_t i = 0; i < 10; i++)
        bad += body[100000 + i] != big_byte(i);
    ck_assert_uint_eq(bad, 0);
}
END_TEST

START_TEST(test_sendfile_past_the_end_of_the_file_closes_the_connection)
{
    int fd = th_connect_srv();
    th_send_str(fd, "GET /short HTTP/1.1\r\nHost: x\r\n\r\n");
    int closed = 0;
    ssize_t n = th_read_all(fd, resp, sizeof resp - 1, 20000, &closed);
    close(fd);
    th_wait_sig(sendfile_done, TH_IO_MS);
    ck_assert_int_eq(sendfile_rc, GH_EOF);
    /* the client got the file's bytes, then the close: never a reused connection whose
     * framing is wrong */
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(th_status(resp), 200);
    ck_assert_uint_eq(body_len(n), BIG_SIZE);
}
END_TEST

START_TEST(test_sendfile_to_a_client_that_reads_nothing_times_out)
{
    int fd = th_connect_srv();
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    th_send_str(fd, "GET /stall HTTP/1.1\r\nHost: x\r\n\r\n");
    gh_time_t t0 = gh_now();
    th_wait_sig(sendfile_done, 10000);
    long ms = th_ms_since(t0);
    close(fd);
    ck_assert_int_eq(sendfile_rc, GH_ETIMEDOUT);
    ck_assert_int_ge(ms, 250);
    ck_assert_int_lt(ms, 5000);
}
END_TEST

/* ---- systemd socket activation, through the example ------------------------------ */

START_TEST(test_example_serves_a_socket_from_systemd)
{
    const char *dir = getenv("EXAMPLES_DIR");
    char prog[512];
    snprintf(prog, sizeof prog, "%s/fileserver", dir ? dir : "examples");
    ck_assert_int_eq(access(prog, X_OK), 0);
    make_tree();
    int port;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7f000001);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(lfd, 16), 0);
    socklen_t sl = sizeof a;
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&a, &sl), 0);
    port = ntohs(a.sin_port);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* the child: fd 3 is the socket, LISTEN_PID is this process (exec keeps it) */
        if (dup2(lfd, 3) < 0)
            _exit(126);
        char spid[32];
        snprintf(spid, sizeof spid, "%d", (int)getpid());
        setenv("LISTEN_PID", spid, 1);
        setenv("LISTEN_FDS", "1", 1);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl(prog, prog, "--root", root, "--listen", "systemd", (char *)NULL);
        _exit(127);
    }
    close(lfd);
    /* The socket listens already: the connection waits in its backlog until the
     * example accepts it, so no readiness signal is needed. */
    int fd = th_connect(port);
    ck_assert_int_ge(fd, 0);
    th_send_str(fd, "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    int closed = 0;
    ssize_t n = th_read_all(fd, resp, sizeof resp - 1, 10000, &closed);
    close(fd);
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(th_status(resp), 200);
    ck_assert_str_eq(th_body(resp), "hello world\n");
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* ---- dates and types ---------------------------------------------------------------- */

START_TEST(test_dates_format_and_parse_all_three_forms)
{
    char d[GH_DATE_LEN];
    ck_assert_int_eq(gh_date_format(784111777, d), 0);
    ck_assert_str_eq(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    ck_assert_int_eq(gh_date_format(0, d), 0);
    ck_assert_str_eq(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    ck_assert_int_eq(gh_date_format(951782400, d), 0); /* a leap day */
    ck_assert_str_eq(d, "Tue, 29 Feb 2000 00:00:00 GMT");
    int64_t t = 0;
    ck_assert_int_eq(gh_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    ck_assert_int_eq(t, 784111777);
    t = 0;
    ck_assert_int_eq(gh_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
    ck_assert_int_eq(t, 784111777);
    t = 0;
    ck_assert_int_eq(gh_date_parse("Sun Nov  6 08:49:37 1994", &t), 0);
    ck_assert_int_eq(t, 784111777);
    ck_assert_int_eq(gh_date_parse("Tue, 29 Feb 2000 00:00:00 GMT", &t), 0);
    ck_assert_int_eq(t, 951782400);
    static const char *const bad[] = {
        "",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT junk",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(gh_date_parse(bad[i], &t) == GH_EINVAL, "accepted '%s'", bad[i]);
    /* every day of a few years round-trips */
    for (int64_t s = 0; s < 4 * 366 * 86400LL; s += 86400 + 3661) {
        ck_assert_int_eq(gh_date_format(s, d), 0);
        ck_assert_int_eq(gh_date_parse(d, &t), 0);
        ck_assert_int_eq(t, s);
    }
}
END_TEST

START_TEST(test_mime_types_by_extension_and_from_a_file)
{
    ck_assert_str_eq(gh_mime_type("a/b/INDEX.HTML"), "text/html; charset=utf-8");
    ck_assert_str_eq(gh_mime_type("x.css"), "text/css; charset=utf-8");
    ck_assert_str_eq(gh_mime_type("x.wasm"), "application/wasm");
    ck_assert_ptr_null(gh_mime_type("x.nosuchext"));
    ck_assert_ptr_null(gh_mime_type("dir.d/noext"));
    ck_assert_ptr_null(gh_mime_type("trailingdot."));
    ck_assert_str_eq(gh_mime_sniff("%PDF-1.4", 8), "application/pdf");
    char p[] = "/tmp/gh-mime.XXXXXX";
    int fd = mkstemp(p);
    ck_assert_int_ge(fd, 0);
    const char *txt = "# comment\napplication/x-gh-test\tghx ghy\ntext/x-gh\tghtext\n";
    ck_assert_int_eq(write(fd, txt, strlen(txt)), (ssize_t)strlen(txt));
    close(fd);
    ck_assert_int_eq(gh_mime_load(p), 3);
    unlink(p);
    ck_assert_str_eq(gh_mime_type("f.GHY"), "application/x-gh-test");
    ck_assert_str_eq(gh_mime_type("f.ghtext"), "text/x-gh; charset=utf-8");
    ck_assert_int_eq(gh_mime_load("/nonexistent/mime.types"), -ENOENT);
}
END_TEST

static void setup_nolinks(void) { start(GH_SYMLINKS_NONE, 0, 0, NULL); }
static void setup_list(void) { start(GH_SYMLINKS_BENEATH, 1, 0, NULL); }
static void setup_hide(void) { start(GH_SYMLINKS_BENEATH, 0, 1, NULL); }
static void setup_prefix(void) { start(GH_SYMLINKS_BENEATH, 0, 0, "/static"); }
static void plain_teardown(void)
{
    th_server_close();
    if (big_fd >= 0)
        close(big_fd);
    teardown();
}

static TCase *tcase(const char *name, void (*su)(void), void (*td)(void))
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    if (su)
        tcase_add_checked_fixture(tc, su, td);
    return tc;
}

Suite *test_suite(void)
{
    curl = th_client("CURL", "curl", "--version");
    py = th_client("PYTHON3", "python3", "-c 'import http.client, email.parser'");
    Suite *s = suite_create("fileserver");
    TCase *tc = tcase("files", setup, teardown);
    tcase_add_test(tc, test_file_is_served_with_type_length_and_validators);
    tcase_add_test(tc, test_unknown_extension_is_sniffed_from_the_start_even_for_a_range);
    tcase_add_test(tc, test_big_file_goes_out_whole_by_sendfile);
    tcase_add_test(tc, test_client_leaving_mid_file_does_not_hold_the_server);
    tcase_add_test(tc, test_head_has_headers_and_no_body);
    tcase_add_test(tc, test_other_methods_get_405_with_allow);
    tcase_add_test(tc, test_directory_without_slash_redirects);
    tcase_add_test(tc, test_directory_serves_its_index);
    tcase_add_test(tc, test_directory_without_index_is_404_unless_listing);
    tcase_add_test(tc, test_traversal_attempts_never_leave_the_root);
    tcase_add_test(tc, test_symlinks_inside_the_root_are_followed);
    tcase_add_test(tc, test_dotfiles_are_served_by_default);
    tcase_add_test(tc, test_if_none_match_weak_comparison_gives_304);
    tcase_add_test(tc, test_if_modified_since);
    tcase_add_test(tc, test_if_match_and_if_unmodified_since_give_412);
    tcase_add_test(tc, test_if_range);
    tcase_add_test(tc, test_single_ranges);
    tcase_add_test(tc, test_unsatisfiable_or_malformed_range_is_416);
    tcase_add_test(tc, test_overlapping_ranges_larger_than_the_file_get_it_whole);
    tcase_add_test(tc, test_multiple_ranges_are_multipart_byteranges);
    tcase_add_test(tc, test_curl_range_z_and_if_none_match);
    tcase_add_test(tc, test_python_http_client_multirange_and_conditional);
    suite_add_tcase(s, tc);
    tc = tcase("nolinks", setup_nolinks, teardown);
    tcase_add_test(tc, test_no_symlinks_refuses_every_link);
    tcase_add_test(tc, test_traversal_attempts_never_leave_the_root);
    suite_add_tcase(s, tc);
    tc = tcase("listing", setup_list, teardown);
    tcase_add_test(tc, test_listing_escapes_names);
    tcase_add_test(tc, test_traversal_attempts_never_leave_the_root);
    suite_add_tcase(s, tc);
    tc = tcase("hidden", setup_hide, teardown);
    tcase_add_test(tc, test_hidden_dotfiles_are_404);
    suite_add_tcase(s, tc);
    tc = tcase("prefix", setup_prefix, teardown);
    tcase_add_test(tc, test_strip_prefix);
    suite_add_tcase(s, tc);
    tc = tcase("content", own_setup, plain_teardown);
    tcase_add_test(tc, test_content_serve_uses_the_handlers_type_etag_and_mtime);
    tcase_add_test(tc, test_sendfile_inside_a_chunked_body);
    tcase_add_test(tc, test_sendfile_past_the_end_of_the_file_closes_the_connection);
    tcase_add_test(tc, test_sendfile_to_a_client_that_reads_nothing_times_out);
    suite_add_tcase(s, tc);
    tc = tcase("example", NULL, NULL);
    tcase_add_test(tc, test_example_serves_a_socket_from_systemd);
    tcase_add_checked_fixture(tc, NULL, teardown);
    suite_add_tcase(s, tc);
    tc = tcase("units", NULL, NULL);
    tcase_add_test(tc, test_dates_format_and_parse_all_three_forms);
    tcase_add_test(tc, test_mime_types_by_extension_and_from_a_file);
    suite_add_tcase(s, tc);
    return s;
}
