/* tests/test-parse.c: request-head parsing and chunked decoding (lib/parse.c). */
#include "config.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test-common.h"

/* The parser's symbols are internal (the library is built with -fvisibility=hidden),
 * so the unit is compiled into this test directly. */
#include "../lib/parse.c"

#define DEFAULT_MAX_HEAD 8192
#define NFIELDS 64

/* ---- guard pages ------------------------------------------------------------------------
 * Every input is copied so that it ends exactly where a PROT_NONE page begins: reading
 * buf[len] faults, and Check reports the signal as a failure. */

typedef struct guard {
    char *map;
    size_t map_len, data_len;
} guard_t;

static char *guard_copy(guard_t *g, const char *in, size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (n + page - 1) / page + 1;
    g->map_len = pages * page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(g->map, MAP_FAILED);
    ck_assert_int_eq(mprotect(g->map + g->map_len - page, page, PROT_NONE), 0);
    char *dst = g->map + g->map_len - page - n;
    if (n > 0)
        memcpy(dst, in, n);
    g->data_len = n;
    return dst;
}

static void guard_free(guard_t *g)
{
    ck_assert_int_eq(munmap(g->map, g->map_len), 0);
}

/* ---- request-head harness ------------------------------------------------------------ */

typedef struct head_result {
    int ret, status;
    gh__reqhead_t h;
    gh__hfield_t f[NFIELDS];
} head_result_t;

static void head_once(const char *in, size_t n, size_t max_head, size_t cap, head_result_t *r)
{
    guard_t g;
    char *buf = guard_copy(&g, in, n);
    memset(r, 0xa5, sizeof *r);
    r->ret = gh__parse_request_head(buf, n, max_head, &r->h, r->f, cap, &r->status);
    guard_free(&g);
}

static void assert_same_head(const head_result_t *a, const head_result_t *b, size_t cap)
{
    ck_assert_int_eq(a->ret, b->ret);
    ck_assert_int_eq(a->status, b->status);
    if (a->ret <= 0)
        return;
    ck_assert_uint_eq(a->h.method_off, b->h.method_off);
    ck_assert_uint_eq(a->h.method_len, b->h.method_len);
    ck_assert_uint_eq(a->h.target_off, b->h.target_off);
    ck_assert_uint_eq(a->h.target_len, b->h.target_len);
    ck_assert_uint_eq(a->h.proto_off, b->h.proto_off);
    ck_assert_uint_eq(a->h.proto_len, b->h.proto_len);
    ck_assert_int_eq(a->h.major, b->h.major);
    ck_assert_int_eq(a->h.minor, b->h.minor);
    ck_assert_int_eq(a->h.form, b->h.form);
    ck_assert_uint_eq(a->h.skipped, b->h.skipped);
    ck_assert_uint_eq(a->h.n_fields, b->h.n_fields);
    size_t stored = a->h.n_fields < cap ? a->h.n_fields : cap;
    ck_assert_int_eq(memcmp(a->f, b->f, stored * sizeof a->f[0]), 0);
}

/*
 * Parse in[0..n) whole, then as every growing prefix. A prefix shorter than the head
 * gives GH_EAGAIN; a malformed input gives GH_EAGAIN up to the byte that shows the
 * fault and the final error from there on, never another one. Returns the whole
 * parse in *r.
 */
static void parse_head_both(const char *in, size_t n, size_t max_head, size_t cap, head_result_t *r)
{
    head_result_t p;

    head_once(in, n, max_head, cap, r);
    int failed_at = -1;
    for (size_t k = 0; k <= n; k++) {
        head_once(in, k, max_head, cap, &p);
        if (r->ret > 0 && k < (size_t)r->ret) {
            ck_assert_msg(p.ret == GH_EAGAIN, "prefix %zu of %zu gave %d, want GH_EAGAIN", k, n,
                          p.ret);
        } else if (r->ret > 0) {
            assert_same_head(r, &p, cap);
        } else if (p.ret != GH_EAGAIN) {
            if (failed_at < 0)
                failed_at = (int)k;
            ck_assert_msg(p.ret == r->ret && p.status == r->status,
                          "prefix %zu of %zu gave %d/%d, want %d/%d", k, n, p.ret, p.status, r->ret,
                          r->status);
        } else {
            ck_assert_msg(failed_at < 0, "prefix %zu went back to GH_EAGAIN", k);
        }
    }
    if (r->ret != GH_EAGAIN)
        ck_assert_int_ge(failed_at < 0 ? (int)n : failed_at, 0);
}

typedef struct head_vec {
    const char *in;
    size_t len;
    int ret;    /* > 0: the head is the whole input; GH_EAGAIN; or GH_EPROTO */
    int status; /* with GH_EPROTO */
} head_vec_t;

/* clang-format off */
#define OK(s) {s, sizeof(s) - 1, (int)(sizeof(s) - 1), 0}
#define BAD(s, st) {s, sizeof(s) - 1, GH_EPROTO, st}
#define MORE(s) {s, sizeof(s) - 1, GH_EAGAIN, 0}
/* clang-format on */

static void run_head_vectors(const head_vec_t *v, size_t nv)
{
    head_result_t r;
    for (size_t i = 0; i < nv; i++) {
        parse_head_both(v[i].in, v[i].len, DEFAULT_MAX_HEAD, NFIELDS, &r);
        ck_assert_msg(r.ret == v[i].ret && r.status == v[i].status,
                      "vector %zu (\"%.40s\"): got %d/%d, want %d/%d", i, v[i].in, r.ret, r.status,
                      v[i].ret, v[i].status);
    }
}

#define RUN_HEADS(tab) run_head_vectors(tab, sizeof(tab) / sizeof(tab[0]))

/* Field i's name and value of a parse of `in` equal the expected strings. */
static void assert_field(const char *in, const head_result_t *r, size_t i, const char *name,
                         const char *value)
{
    ck_assert_uint_gt(r->h.n_fields, i);
    ck_assert_uint_eq(r->f[i].name_len, strlen(name));
    ck_assert_int_eq(memcmp(in + r->f[i].name_off, name, strlen(name)), 0);
    ck_assert_uint_eq(r->f[i].value_len, strlen(value));
    ck_assert_int_eq(memcmp(in + r->f[i].value_off, value, strlen(value)), 0);
}

static void assert_span(const char *in, uint32_t off, uint32_t len, const char *want)
{
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_int_eq(memcmp(in + off, want, len), 0);
}

/* ---- request line ---------------------------------------------------------------------- */

START_TEST(test_parse_simple_get)
{
    static const char in[] = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
    head_result_t r;
    parse_head_both(in, sizeof in - 1, DEFAULT_MAX_HEAD, NFIELDS, &r);
    ck_assert_int_eq(r.ret, (int)(sizeof in - 1));
    assert_span(in, r.h.method_off, r.h.method_len, "GET");
    assert_span(in, r.h.target_off, r.h.target_len, "/index.html?q=1");
    assert_span(in, r.h.proto_off, r.h.proto_len, "HTTP/1.1");
    ck_assert_int_eq(r.h.major, 1);
    ck_assert_int_eq(r.h.minor, 1);
    ck_assert_int_eq(r.h.form, GH__TARGET_ORIGIN);
    ck_assert_uint_eq(r.h.skipped, 0);
    ck_assert_uint_eq(r.h.n_fields, 1);
    assert_field(in, &r, 0, "Host", "example.com");
}
END_TEST

START_TEST(test_parse_returns_head_length_before_body)
{
    static const char in[] = "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    head_result_t r;
    parse_head_both(in, sizeof in - 1, DEFAULT_MAX_HEAD, NFIELDS, &r);
    ck_assert_int_eq(r.ret, (int)(sizeof in - 1 - 5));
}
END_TEST

START_TEST(test_parse_http10)
{
    static const char in[] = "GET / HTTP/1.0\r\n\r\n";
    head_result_t r;
    parse_head_both(in, sizeof in - 1, DEFAULT_MAX_HEAD, NFIELDS, &r);
    ck_assert_int_eq(r.ret, (int)(sizeof in - 1));
    ck_assert_int_eq(r.h.major, 1);
    ck_assert_int_eq(r.h.minor, 0);
    ck_assert_uint_eq(r.h.n_fields, 0);
}
END_TEST

START_TEST(test_parse_accepts_any_http1_minor)
{
    static const head_vec_t v[] = {OK("GET / HTTP/1.9\r\n\r\n"), OK("GET / HTTP/1.2\r\n\r\n")};
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_target_forms)
{
    static const struct {
        const char *in;
        gh__target_form_t form;
    } v[] = {
        {"GET / HTTP/1.1\r\n\r\n", GH__TARGET_ORIGIN},
        {"GET /a/b?c=d#e HTTP/1.1\r\n\r\n", GH__TARGET_ORIGIN},
        {"GET http://example.com/x HTTP/1.1\r\n\r\n", GH__TARGET_ABSOLUTE},
        {"GET coap+tcp.v-1://h HTTP/1.1\r\n\r\n", GH__TARGET_ABSOLUTE},
        {"GET urn:isbn:123 HTTP/1.1\r\n\r\n", GH__TARGET_ABSOLUTE},
        {"GET http://u:p@h:1/x HTTP/1.1\r\n\r\n", GH__TARGET_ABSOLUTE},
        {"GET HTTPS://[::1]?q HTTP/1.1\r\n\r\n", GH__TARGET_ABSOLUTE},
        {"GET http://h HTTP/1.1\r\n\r\n", GH__TARGET_ABSOLUTE},
        {"GET file:///etc HTTP/1.1\r\n\r\n", GH__TARGET_ABSOLUTE}, /* not an http URI */
        {"CONNECT example.com:443 HTTP/1.1\r\n\r\n", GH__TARGET_AUTHORITY},
        {"CONNECT 127.0.0.1:8080 HTTP/1.1\r\n\r\n", GH__TARGET_AUTHORITY},
        {"CONNECT [::1]:443 HTTP/1.1\r\n\r\n", GH__TARGET_AUTHORITY},
        {"OPTIONS * HTTP/1.1\r\n\r\n", GH__TARGET_ASTERISK},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        head_result_t r;
        parse_head_both(v[i].in, strlen(v[i].in), DEFAULT_MAX_HEAD, NFIELDS, &r);
        ck_assert_msg(r.ret == (int)strlen(v[i].in), "\"%s\" gave %d/%d", v[i].in, r.ret, r.status);
        ck_assert_int_eq(r.h.form, v[i].form);
    }
}
END_TEST

START_TEST(test_parse_rejects_bad_targets)
{
    static const head_vec_t v[] = {
        BAD("GET index.html HTTP/1.1\r\n\r\n", 400), /* no form at all */
        BAD("GET 1http://x HTTP/1.1\r\n\r\n", 400),  /* scheme starts with ALPHA */
        BAD("GET ht_tp://x HTTP/1.1\r\n\r\n", 400),  /* "_" is no scheme char */
        BAD("GET :x HTTP/1.1\r\n\r\n", 400),         /* empty scheme */
        BAD("GET *x HTTP/1.1\r\n\r\n", 400),
        /* An http(s) URI needs a host (RFC 9110 §4.2.1: MUST reject). */
        BAD("GET http:///p HTTP/1.1\r\n\r\n", 400),
        BAD("GET HTTP://?q HTTP/1.1\r\n\r\n", 400),
        BAD("GET http:// HTTP/1.1\r\n\r\n", 400),
        BAD("GET http://:8080/p HTTP/1.1\r\n\r\n", 400),
        BAD("GET https://user:pw@/p HTTP/1.1\r\n\r\n", 400),
        BAD("GET https://[]/p HTTP/1.1\r\n\r\n", 400),
        BAD("GET http:/p HTTP/1.1\r\n\r\n", 400),
        BAD("GET http:p HTTP/1.1\r\n\r\n", 400),
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_rejects_asterisk_except_options)
{
    static const head_vec_t v[] = {
        BAD("GET * HTTP/1.1\r\n\r\n", 400),
        BAD("options * HTTP/1.1\r\n\r\n", 400), /* methods are case-sensitive */
        BAD("PRI * HTTP/1.1\r\n\r\n", 400),     /* "*" with PRI only in the preface */
        OK("OPTIONS * HTTP/1.0\r\n\r\n"),
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_connect_requires_authority_form)
{
    static const head_vec_t v[] = {
        BAD("CONNECT / HTTP/1.1\r\n\r\n", 400),
        BAD("CONNECT /x:443 HTTP/1.1\r\n\r\n", 400),
        BAD("CONNECT * HTTP/1.1\r\n\r\n", 400),
        BAD("CONNECT http://example.com:443 HTTP/1.1\r\n\r\n", 400),
        BAD("CONNECT example.com HTTP/1.1\r\n\r\n", 400),       /* no port */
        BAD("CONNECT example.com: HTTP/1.1\r\n\r\n", 400),      /* empty port */
        BAD("CONNECT :443 HTTP/1.1\r\n\r\n", 400),              /* empty host */
        BAD("CONNECT u@example.com:443 HTTP/1.1\r\n\r\n", 400), /* userinfo */
        BAD("CONNECT example.com:65536 HTTP/1.1\r\n\r\n", 400),
        BAD("CONNECT example.com:44x HTTP/1.1\r\n\r\n", 400),
        BAD("CONNECT []:443 HTTP/1.1\r\n\r\n", 400),
        OK("CONNECT example.com:65535 HTTP/1.1\r\n\r\n"),
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_pri_preface)
{
    static const char in[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    head_result_t r;
    parse_head_both(in, sizeof in - 1, DEFAULT_MAX_HEAD, NFIELDS, &r);
    ck_assert_int_eq(r.ret, 18);
    ck_assert_int_eq(r.h.major, 2);
    ck_assert_int_eq(r.h.minor, 0);
    ck_assert_int_eq(r.h.form, GH__TARGET_ASTERISK);
    ck_assert_uint_eq(r.h.n_fields, 0);
}
END_TEST

START_TEST(test_parse_rejects_other_majors_with_505)
{
    static const head_vec_t v[] = {
        BAD("GET / HTTP/2.0\r\n\r\n", 505),
        BAD("GET / HTTP/3.0\r\n\r\n", 505),
        BAD("GET / HTTP/0.9\r\n\r\n", 505),
        BAD("PRI * HTTP/2.1\r\n\r\n", 505),
        BAD("PRI / HTTP/2.0\r\n\r\n", 505),
        BAD("PRI * HTTP/2.0\r\nHost: x\r\n\r\n", 505), /* the preface has no fields */
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_rejects_malformed_version)
{
    static const head_vec_t v[] = {
        BAD("GET / http/1.1\r\n\r\n", 400),  BAD("GET / HTTP/1.1 \r\n\r\n", 400),
        BAD("GET / HTTP/11.1\r\n\r\n", 400), BAD("GET / HTTP/1.10\r\n\r\n", 400),
        BAD("GET / HTTP/1\r\n\r\n", 400),    BAD("GET / HTTP/1,1\r\n\r\n", 400),
        BAD("GET / HTTPS/1.1\r\n\r\n", 400), BAD("GET /\r\n\r\n", 400), /* HTTP/0.9 request line */
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_rejects_bad_method_chars)
{
    static const head_vec_t v[] = {
        BAD("G(T / HTTP/1.1\r\n\r\n", 400),    BAD("GE\"T / HTTP/1.1\r\n\r\n", 400),
        BAD("G\x01T / HTTP/1.1\r\n\r\n", 400), BAD("G\xc3\xa9T / HTTP/1.1\r\n\r\n", 400),
        BAD(" GET / HTTP/1.1\r\n\r\n", 400), /* empty method */
        BAD("GET\t/ HTTP/1.1\r\n\r\n", 400), /* HTAB is no separator */
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_rejects_double_space)
{
    static const head_vec_t v[] = {
        BAD("GET  / HTTP/1.1\r\n\r\n", 400),
        BAD("GET /  HTTP/1.1\r\n\r\n", 400),
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_rejects_missing_target)
{
    static const head_vec_t v[] = {
        BAD("GET HTTP/1.1\r\n\r\n", 400),
        BAD("GET \r\n\r\n", 400),
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_rejects_ctl_in_target)
{
    static const head_vec_t v[] = {
        BAD("GET /a\001b HTTP/1.1\r\n\r\n", 400),
        BAD("GET /a\177b HTTP/1.1\r\n\r\n", 400),
        BAD("GET /a\tb HTTP/1.1\r\n\r\n", 400),
        {"GET /a\0b HTTP/1.1\r\n\r\n", 20, GH_EPROTO, 400},
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_allows_obs_text_in_target)
{
    static const head_vec_t v[] = {OK("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n")};
    RUN_HEADS(v);
}
END_TEST

/* ---- line endings ---------------------------------------------------------------------- */

START_TEST(test_parse_rejects_bare_lf)
{
    static const head_vec_t v[] = {
        BAD("GET / HTTP/1.1\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\n\n", 400),
        BAD("\nGET / HTTP/1.1\r\n\r\n", 400),
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_rejects_bare_cr)
{
    static const head_vec_t v[] = {
        BAD("GET / HTTP/1.1\rX\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost: x\r\n\rX", 400),
        BAD("\rGET / HTTP/1.1\r\n\r\n", 400),
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_skips_leading_crlfs)
{
    static const char in[] = "\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    head_result_t r;
    parse_head_both(in, sizeof in - 1, DEFAULT_MAX_HEAD, NFIELDS, &r);
    ck_assert_int_eq(r.ret, (int)(sizeof in - 1));
    ck_assert_uint_eq(r.h.skipped, 3);
    assert_span(in, r.h.method_off, r.h.method_len, "GET");
}
END_TEST

START_TEST(test_parse_skips_at_most_16_crlfs)
{
    char in[64];
    size_t n = 0;
    for (int i = 0; i < 16; i++, n += 2)
        memcpy(in + n, "\r\n", 2);
    memcpy(in + n, "GET / HTTP/1.1\r\n\r\n", 18);
    head_result_t r;
    parse_head_both(in, n + 18, DEFAULT_MAX_HEAD, NFIELDS, &r);
    ck_assert_int_eq(r.ret, (int)(n + 18));
    ck_assert_uint_eq(r.h.skipped, 16);

    memmove(in + 2, in, n + 18);
    memcpy(in, "\r\n", 2);
    parse_head_both(in, n + 20, DEFAULT_MAX_HEAD, NFIELDS, &r);
    ck_assert_int_eq(r.ret, GH_EPROTO);
    ck_assert_int_eq(r.status, 400);
}
END_TEST

/* ---- header fields --------------------------------------------------------------------- */

START_TEST(test_parse_rejects_obs_fold)
{
    static const head_vec_t v[] = {
        BAD("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400), /* space after the request line */
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_rejects_space_before_colon)
{
    static const head_vec_t v[] = {
        BAD("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400),
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_rejects_bad_field_names)
{
    static const head_vec_t v[] = {
        BAD("GET / HTTP/1.1\r\n: x\r\n\r\n", 400),      /* empty name */
        BAD("GET / HTTP/1.1\r\nHo(st: x\r\n\r\n", 400), /* not a token */
        BAD("GET / HTTP/1.1\r\nHost\r\n\r\n", 400),     /* no colon */
        BAD("GET / HTTP/1.1\r\nH\xc3\xa9: x\r\n\r\n", 400),
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_rejects_nul_in_value)
{
    static const head_vec_t v[] = {
        {"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 27, GH_EPROTO, 400},
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_rejects_ctl_and_del_in_value)
{
    static const head_vec_t v[] = {
        BAD("GET / HTTP/1.1\r\nX: a\177b\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nX: a\001b\r\n\r\n", 400),
        BAD("GET / HTTP/1.1\r\nX: a\033b\r\n\r\n", 400),
    };
    RUN_HEADS(v);
}
END_TEST

START_TEST(test_parse_allows_obs_text_and_htab_in_value)
{
    static const char in[] = "GET / HTTP/1.1\r\nX: caf\xc3\xa9\tau lait \xff\r\n\r\n";
    head_result_t r;
    parse_head_both(in, sizeof in - 1, DEFAULT_MAX_HEAD, NFIELDS, &r);
    ck_assert_int_eq(r.ret, (int)(sizeof in - 1));
    assert_field(in, &r, 0, "X", "caf\xc3\xa9\tau lait \xff");
}
END_TEST

START_TEST(test_parse_trims_ows_around_values)
{
    static const char in[] = "GET / HTTP/1.1\r\n"
                             "A:x\r\n"
                             "B: \t x y \t \r\n"
                             "C:\r\n"
                             "D:   \r\n"
                             "\r\n";
    head_result_t r;
    parse_head_both(in, sizeof in - 1, DEFAULT_MAX_HEAD, NFIELDS, &r);
    ck_assert_int_eq(r.ret, (int)(sizeof in - 1));
    ck_assert_uint_eq(r.h.n_fields, 4);
    assert_field(in, &r, 0, "A", "x");
    assert_field(in, &r, 1, "B", "x y");
    assert_field(in, &r, 2, "C", "");
    assert_field(in, &r, 3, "D", "");
}
END_TEST

START_TEST(test_parse_counts_fields_beyond_cap)
{
    char in[2048];
    size_t n = (size_t)snprintf(in, sizeof in, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(in + n, sizeof in - n, "X-%d: v%d\r\n", i, i);
    n += (size_t)snprintf(in + n, sizeof in - n, "\r\n");

    head_result_t r;
    parse_head_both(in, n, DEFAULT_MAX_HEAD, 8, &r);
    ck_assert_int_eq(r.ret, (int)n);
    ck_assert_uint_eq(r.h.n_fields, 40);
    assert_field(in, &r, 7, "X-7", "v7");

    /* Again with room for all of them. */
    parse_head_both(in, n, DEFAULT_MAX_HEAD, NFIELDS, &r);
    ck_assert_int_eq(r.ret, (int)n);
    ck_assert_uint_eq(r.h.n_fields, 40);
    assert_field(in, &r, 0, "X-0", "v0");
    assert_field(in, &r, 39, "X-39", "v39");

    /* And with no array at all. */
    parse_head_both(in, n, DEFAULT_MAX_HEAD, 0, &r);
    ck_assert_int_eq(r.ret, (int)n);
    ck_assert_uint_eq(r.h.n_fields, 40);
}
END_TEST

/* ---- max_head -------------------------------------------------------------------------- */

/* "GET / HTTP/1.1\r\nX: aaa...\r\n\r\n", exactly n bytes. */
static size_t make_head(char *buf, size_t n)
{
    static const char pre[] = "GET / HTTP/1.1\r\nX: ";
    size_t fill = n - (sizeof pre - 1) - 4;
    memcpy(buf, pre, sizeof pre - 1);
    memset(buf + sizeof pre - 1, 'a', fill);
    memcpy(buf + sizeof pre - 1 + fill, "\r\n\r\n", 4);
    return n;
}

START_TEST(test_parse_accepts_head_of_exactly_max_head)
{
    char in[300];
    size_t n = make_head(in, 300);
    head_result_t r;
    parse_head_both(in, n, 300, NFIELDS, &r);
    ck_assert_int_eq(r.ret, 300);
}
END_TEST

START_TEST(test_parse_rejects_head_one_over_max_head_with_431)
{
    char in[300];
    size_t n = make_head(in, 300);
    head_result_t r;
    parse_head_both(in, n, 299, NFIELDS, &r);
    ck_assert_int_eq(r.ret, GH_EPROTO);
    ck_assert_int_eq(r.status, 431);
}
END_TEST

START_TEST(test_parse_rejects_incomplete_head_beyond_max_head_with_431)
{
    char in[300];
    make_head(in, 300);
    head_result_t r;
    /* 200 bytes, no end in sight: fine at max_head 200, 431 at 199. */
    head_once(in, 200, 200, NFIELDS, &r);
    ck_assert_int_eq(r.ret, GH_EAGAIN);
    parse_head_both(in, 200, 199, NFIELDS, &r);
    ck_assert_int_eq(r.ret, GH_EPROTO);
    ck_assert_int_eq(r.status, 431);
}
END_TEST

START_TEST(test_parse_counts_skipped_crlfs_in_max_head)
{
    static const char in[] = "\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    head_result_t r;
    parse_head_both(in, sizeof in - 1, sizeof in - 1, NFIELDS, &r);
    ck_assert_int_eq(r.ret, (int)(sizeof in - 1));
    parse_head_both(in, sizeof in - 1, sizeof in - 2, NFIELDS, &r);
    ck_assert_int_eq(r.status, 431);
}
END_TEST

/* ---- gh__parse_fields (trailers) ----------------------------------------------------- */

START_TEST(test_parse_fields_trailer_section)
{
    static const char in[] = "X-Sum: 1\r\nY:2\r\n\r\n";
    guard_t g;
    gh__hfield_t f[4];
    size_t nf;
    int status;

    for (size_t k = 0; k < sizeof in - 1; k++) {
        char *b = guard_copy(&g, in, k);
        ck_assert_int_eq(gh__parse_fields(b, k, 1024, f, 4, &nf, &status), GH_EAGAIN);
        guard_free(&g);
    }
    char *b = guard_copy(&g, in, sizeof in - 1);
    ck_assert_int_eq(gh__parse_fields(b, sizeof in - 1, 1024, f, 4, &nf, &status),
                     (int)(sizeof in - 1));
    ck_assert_uint_eq(nf, 2);
    ck_assert_uint_eq(f[1].name_off, 10);
    ck_assert_uint_eq(f[1].value_len, 1);
    ck_assert_int_eq(gh__parse_fields(b, sizeof in - 1, sizeof in - 2, f, 4, &nf, &status),
                     GH_EPROTO);
    ck_assert_int_eq(status, 431);
    guard_free(&g);

    b = guard_copy(&g, "\r\n", 2);
    ck_assert_int_eq(gh__parse_fields(b, 2, 1024, f, 4, &nf, &status), 2);
    ck_assert_uint_eq(nf, 0);
    guard_free(&g);

    b = guard_copy(&g, "X\n\r\n", 4);
    ck_assert_int_eq(gh__parse_fields(b, 4, 1024, f, 4, &nf, &status), GH_EPROTO);
    ck_assert_int_eq(status, 400);
    guard_free(&g);
}
END_TEST

/* ---- tokens ---------------------------------------------------------------------------- */

START_TEST(test_parse_token_helpers)
{
    ck_assert_int_eq(gh__token_eq("Content-Length", 14, "content-length"), 1);
    ck_assert_int_eq(gh__token_eq("CONTENT-LENGTH", 14, "content-length"), 1);
    ck_assert_int_eq(gh__token_eq("Content-Lengt", 13, "content-length"), 0);
    ck_assert_int_eq(gh__token_eq("Content-Lengths", 15, "content-length"), 0);
    ck_assert_int_eq(gh__token_eq("", 0, ""), 1);
    /* '[' | 0x20 is '{': only letters fold. */
    ck_assert_int_eq(gh__token_eq("[", 1, "{"), 0);

    ck_assert_int_eq(gh__is_token("X-Foo_1!#$%&'*+-.^`|~", 21), 1);
    ck_assert_int_eq(gh__is_token("", 0), 0);
    ck_assert_int_eq(gh__is_token("a b", 3), 0);
    ck_assert_int_eq(gh__is_token("a:b", 3), 0);
    ck_assert_int_eq(gh__is_token("a\x80", 2), 0);
}
END_TEST

/* ---- chunked --------------------------------------------------------------------------- */

typedef struct chunk_result {
    int ret;         /* GH__CHUNK_TRAILERS, GH__CHUNK_NEED (input ran out) or GH_EPROTO */
    size_t trailers; /* offset of the trailer section in the input */
    size_t consumed; /* input bytes consumed */
    char data[8192];
    size_t data_len;
} chunk_result_t;

static void chunk_take(chunk_result_t *r, const char *p, size_t n)
{
    ck_assert_uint_le(r->data_len + n, sizeof r->data);
    memcpy(r->data + r->data_len, p, n);
    r->data_len += n;
}

/* Decode in[0..n) in pieces of `piece` bytes (0: whole), each piece ending at a guard
 * page, until the trailers, an error or the end of the input. */
static void chunk_decode(const char *in, size_t n, size_t piece, chunk_result_t *r)
{
    gh__chunked_t c;
    gh__chunked_init(&c);
    memset(r, 0, sizeof *r);
    r->ret = GH__CHUNK_NEED;

    size_t pos = 0;
    while (pos < n || n == 0) {
        size_t k = piece == 0 || n - pos < piece ? n - pos : piece;
        guard_t g;
        char *b = guard_copy(&g, in + pos, k);
        size_t off = 0;
        int ret;
        do {
            size_t used = 0, doff = 0, dlen = 0;
            ret = gh__chunked_step(&c, b + off, k - off, &used, &doff, &dlen);
            ck_assert_uint_le(used, k - off);
            if (ret == GH__CHUNK_DATA) {
                ck_assert_uint_gt(dlen, 0);
                ck_assert_uint_eq(doff + dlen, used);
                chunk_take(r, b + off + doff, dlen);
            } else {
                ck_assert_uint_eq(dlen, 0);
            }
            off += used;
        } while (ret == GH__CHUNK_DATA && off < k);
        guard_free(&g);
        pos += off;
        r->consumed = pos;
        if (ret == GH__CHUNK_TRAILERS) {
            r->ret = ret;
            r->trailers = pos;
            return;
        }
        if (ret < 0) {
            r->ret = ret;
            /* Sticky. */
            size_t used, doff, dlen;
            ck_assert_int_eq(gh__chunked_step(&c, "0\r\n\r\n", 5, &used, &doff, &dlen), ret);
            ck_assert_int_eq(gh__chunked_step(&c, "", 0, &used, &doff, &dlen), ret);
            ck_assert_uint_eq(used, 0);
            return;
        }
        if (ret == GH__CHUNK_NEED)
            ck_assert_uint_eq(off, k);
        if (n == 0)
            return;
    }
}

typedef struct chunk_vec {
    const char *in;
    size_t len;
    int ret;
    const char *data; /* with GH__CHUNK_TRAILERS or GH__CHUNK_NEED */
    size_t trailers;  /* with GH__CHUNK_TRAILERS */
} chunk_vec_t;

/* clang-format off */
#define CHUNKED(s, data, at) {s, sizeof(s) - 1, GH__CHUNK_TRAILERS, data, at}
#define CHUNK_NEED(s, data) {s, sizeof(s) - 1, GH__CHUNK_NEED, data, 0}
#define CHUNK_BAD(s) {s, sizeof(s) - 1, GH_EPROTO, NULL, 0}
/* clang-format on */

/* Whole, byte by byte, and in 3-byte pieces: the same verdict and the same data. */
static void run_chunk_vectors(const chunk_vec_t *v, size_t nv)
{
    static const size_t pieces[] = {0, 1, 3};
    static chunk_result_t r;
    for (size_t i = 0; i < nv; i++) {
        for (size_t j = 0; j < sizeof pieces / sizeof pieces[0]; j++) {
            chunk_decode(v[i].in, v[i].len, pieces[j], &r);
            ck_assert_msg(r.ret == v[i].ret, "vector %zu (\"%.30s\") piece %zu: got %d, want %d", i,
                          v[i].in, pieces[j], r.ret, v[i].ret);
            if (v[i].data != NULL) {
                ck_assert_uint_eq(r.data_len, strlen(v[i].data));
                ck_assert_int_eq(memcmp(r.data, v[i].data, r.data_len), 0);
            }
            if (v[i].ret == GH__CHUNK_TRAILERS)
                ck_assert_uint_eq(r.trailers, v[i].trailers);
        }
    }
}

#define RUN_CHUNKS(tab) run_chunk_vectors(tab, sizeof(tab) / sizeof(tab[0]))

START_TEST(test_chunked_simple)
{
    static const chunk_vec_t v[] = {CHUNKED("5\r\nhello\r\n0\r\n\r\n", "hello", 13)};
    RUN_CHUNKS(v);
}
END_TEST

START_TEST(test_chunked_multiple_chunks)
{
    static const chunk_vec_t v[] = {
        CHUNKED("3\r\nabc\r\n4\r\ndefg\r\n1\r\nh\r\n0\r\n\r\n", "abcdefgh", 26),
        CHUNKED("1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n", "\r\n", 15), /* CR/LF as data */
    };
    RUN_CHUNKS(v);
}
END_TEST

START_TEST(test_chunked_zero_length_body)
{
    static const chunk_vec_t v[] = {CHUNKED("0\r\n\r\n", "", 3)};
    RUN_CHUNKS(v);
}
END_TEST

START_TEST(test_chunked_hex_upper_and_lower)
{
    static const chunk_vec_t v[] = {
        CHUNKED("a\r\n0123456789\r\n0\r\n\r\n", "0123456789", 18),
        CHUNKED("A\r\n0123456789\r\n0\r\n\r\n", "0123456789", 18),
        CHUNKED("1f\r\n0123456789abcdefghijklmnopqrstu\r\n0\r\n\r\n",
                "0123456789abcdefghijklmnopqrstu", 40),
        CHUNKED("1F\r\n0123456789abcdefghijklmnopqrstu\r\n0\r\n\r\n",
                "0123456789abcdefghijklmnopqrstu", 40),
    };
    RUN_CHUNKS(v);
}
END_TEST

START_TEST(test_chunked_leading_zeros)
{
    static const chunk_vec_t v[] = {
        CHUNKED("0005\r\nhello\r\n0000\r\n\r\n", "hello", 19),
        CHUNKED("000000000000000000000000000005\r\nhello\r\n0\r\n\r\n", "hello", 42),
    };
    RUN_CHUNKS(v);
}
END_TEST

START_TEST(test_chunked_rejects_size_overflow)
{
    static const chunk_vec_t v[] = {
        CHUNK_NEED("7fffffffffffffff\r\nab", "ab"), /* 2^63-1 is the largest size */
        CHUNK_BAD("8000000000000000\r\n"),          CHUNK_BAD("ffffffffffffffff\r\n"),
        CHUNK_BAD("10000000000000000\r\n"),         CHUNK_BAD("0000ffffffffffffffff0\r\n"),
    };
    RUN_CHUNKS(v);
}
END_TEST

START_TEST(test_chunked_rejects_bad_size)
{
    static const chunk_vec_t v[] = {
        CHUNK_BAD("\r\n"), /* no digits */
        CHUNK_BAD(";a\r\n"),  CHUNK_BAD("x\r\n"),  CHUNK_BAD("-5\r\n"), CHUNK_BAD("+5\r\n"),
        CHUNK_BAD("0x5\r\n"), CHUNK_BAD(" 5\r\n"), CHUNK_BAD("5 \r\n"), /* BWS only before ";" */
    };
    RUN_CHUNKS(v);
}
END_TEST

START_TEST(test_chunked_accepts_valid_extensions)
{
    static const chunk_vec_t v[] = {
        CHUNKED("5;a\r\nhello\r\n0\r\n\r\n", "hello", 15),
        CHUNKED("5;a=b\r\nhello\r\n0;last\r\n\r\n", "hello", 22),
        CHUNKED("5 ; a = b ;c;d=\"x y\"\r\nhello\r\n0\r\n\r\n", "hello", 32),
        CHUNKED("5;a=\"q\\\"\\\\ \tz\"\r\nhello\r\n0\r\n\r\n", "hello", 26),
        CHUNKED("5;a=\"\"\r\nhello\r\n0\r\n\r\n", "hello", 18),
        CHUNKED("5;a=\"caf\xc3\xa9\"\r\nhello\r\n0\r\n\r\n", "hello", 23),
        CHUNKED("5\t;\ta\t=\tb\r\nhello\r\n0\r\n\r\n", "hello", 21),
    };
    RUN_CHUNKS(v);
}
END_TEST

START_TEST(test_chunked_rejects_invalid_extensions)
{
    static const chunk_vec_t v[] = {
        CHUNK_BAD("5;\r\nhello\r\n"), /* no name */
        CHUNK_BAD("5;=b\r\nhello\r\n"),
        CHUNK_BAD("5;a=\r\nhello\r\n"),  /* no value */
        CHUNK_BAD("5;a b\r\nhello\r\n"), /* two names, no ";" */
        CHUNK_BAD("5;a=b c\r\nhello\r\n"),
        CHUNK_BAD("5;a=\"x\r\nhello\r\n"), /* unterminated quote */
        CHUNK_BAD("5;a=\"x\"y\r\nhello\r\n"),
        CHUNK_BAD("5;a=\"x\x01\"\r\nhello\r\n"), /* CTL in quoted-string */
        CHUNK_BAD("5;a=\"x\\\x7f\"\r\nhello\r\n"),
        CHUNK_BAD("5;a(b)\r\nhello\r\n"),
        CHUNK_BAD("5;a \r\nhello\r\n"), /* trailing BWS */
        CHUNK_BAD("5;a=b \r\nhello\r\n"),
    };
    RUN_CHUNKS(v);
}
END_TEST

START_TEST(test_chunked_rejects_missing_crlf_after_data)
{
    static const chunk_vec_t v[] = {
        CHUNK_BAD("5\r\nhelloX\r\n0\r\n\r\n"),
        CHUNK_BAD("5\r\nhello\n0\r\n\r\n"),
        CHUNK_BAD("5\r\nhello\rX0\r\n\r\n"),
        CHUNK_BAD("5\r\nhello0\r\n\r\n"),
    };
    RUN_CHUNKS(v);
}
END_TEST

START_TEST(test_chunked_rejects_bare_lf_in_size_line)
{
    static const chunk_vec_t v[] = {
        CHUNK_BAD("5\nhello\r\n0\r\n\r\n"), CHUNK_BAD("5;a=b\nhello\r\n0\r\n\r\n"),
        CHUNK_BAD("5\r\nhello\r\n0\n\r\n"), CHUNK_BAD("5\rhello\r\n0\r\n\r\n"), /* bare CR */
    };
    RUN_CHUNKS(v);
}
END_TEST

START_TEST(test_chunked_rejects_size_line_over_4096)
{
    static char ok[4200], bad[4200], zeros[4200];
    static chunk_result_t res;
    chunk_result_t *r = &res;

    /* "5;" + name: 4096 bytes before the CRLF. */
    memcpy(ok, "5;", 2);
    memset(ok + 2, 'a', 4094);
    memcpy(ok + 4096, "\r\nhello\r\n0\r\n\r\n", 15);
    chunk_decode(ok, 4096 + 15, 1, r);
    ck_assert_int_eq(r->ret, GH__CHUNK_TRAILERS);
    ck_assert_uint_eq(r->data_len, 5);
    chunk_decode(ok, 4096 + 15, 0, r);
    ck_assert_int_eq(r->ret, GH__CHUNK_TRAILERS);

    memcpy(bad, "5;", 2);
    memset(bad + 2, 'a', 4095);
    memcpy(bad + 4097, "\r\nhello\r\n0\r\n\r\n", 15);
    chunk_decode(bad, 4097 + 15, 1, r);
    ck_assert_int_eq(r->ret, GH_EPROTO);
    chunk_decode(bad, 4097 + 15, 0, r);
    ck_assert_int_eq(r->ret, GH_EPROTO);
    ck_assert_uint_eq(r->consumed, 4096); /* the 4097th byte is refused */

    memset(zeros, '0', 4097);
    memcpy(zeros + 4097, "\r\n\r\n", 4);
    chunk_decode(zeros, 4097 + 4, 0, r);
    ck_assert_int_eq(r->ret, GH_EPROTO);
    chunk_decode(zeros + 1, 4096 + 4, 0, r);
    ck_assert_int_eq(r->ret, GH__CHUNK_TRAILERS);
}
END_TEST

START_TEST(test_chunked_spans_byte_by_byte)
{
    /* Concatenating the spans from one-byte feeds gives the body back. */
    static char in[4096], body[2048];
    size_t n = 0, blen = 0;
    for (size_t size = 1; size < 60; size += 7) {
        n += (size_t)snprintf(in + n, sizeof in - n, "%zx\r\n", size);
        for (size_t i = 0; i < size; i++, blen++) {
            body[blen] = (char)('a' + blen % 26);
            in[n++] = body[blen];
        }
        memcpy(in + n, "\r\n", 2);
        n += 2;
    }
    size_t trailers = n + 3;
    memcpy(in + n, "0\r\nT: v\r\n\r\n", 11);
    n += 11;

    static chunk_result_t r;
    for (size_t piece = 0; piece < 8; piece++) {
        chunk_decode(in, n, piece, &r);
        ck_assert_int_eq(r.ret, GH__CHUNK_TRAILERS);
        ck_assert_uint_eq(r.data_len, blen);
        ck_assert_int_eq(memcmp(r.data, body, blen), 0);
        ck_assert_uint_eq(r.trailers, trailers);
    }
}
END_TEST

START_TEST(test_chunked_trailers_position)
{
    static const char in[] = "2\r\nhi\r\n0;x=1\r\nX-Sum: 1\r\n\r\n";
    static chunk_result_t r;
    chunk_decode(in, sizeof in - 1, 1, &r);
    ck_assert_int_eq(r.ret, GH__CHUNK_TRAILERS);
    ck_assert_uint_eq(r.trailers, 14);
    ck_assert_int_eq(memcmp(in + r.trailers, "X-Sum", 5), 0);

    gh__hfield_t f[2];
    size_t nf;
    int status;
    guard_t g;
    size_t rest = sizeof in - 1 - r.trailers;
    char *b = guard_copy(&g, in + r.trailers, rest);
    ck_assert_int_eq(gh__parse_fields(b, rest, 1024, f, 2, &nf, &status), (int)rest);
    ck_assert_uint_eq(nf, 1);
    ck_assert_int_eq(memcmp(b + f[0].value_off, "1", 1), 0);
    guard_free(&g);

    /* The decoder stays at the trailers and consumes nothing more. */
    gh__chunked_t c;
    size_t used, doff, dlen;
    gh__chunked_init(&c);
    ck_assert_int_eq(gh__chunked_step(&c, "0\r\nX", 4, &used, &doff, &dlen), GH__CHUNK_TRAILERS);
    ck_assert_uint_eq(used, 3);
    ck_assert_int_eq(gh__chunked_step(&c, "X", 1, &used, &doff, &dlen), GH__CHUNK_TRAILERS);
    ck_assert_uint_eq(used, 0);
}
END_TEST

START_TEST(test_chunked_step_returns_one_span_per_call)
{
    gh__chunked_t c;
    size_t used, doff, dlen;
    static const char in[] = "3\r\nabc\r\n2\r\nde\r\n";
    gh__chunked_init(&c);
    ck_assert_int_eq(gh__chunked_step(&c, in, sizeof in - 1, &used, &doff, &dlen), GH__CHUNK_DATA);
    ck_assert_uint_eq(doff, 3);
    ck_assert_uint_eq(dlen, 3);
    ck_assert_uint_eq(used, 6);
    ck_assert_int_eq(gh__chunked_step(&c, in + 6, sizeof in - 7, &used, &doff, &dlen),
                     GH__CHUNK_DATA);
    ck_assert_uint_eq(doff, 5);
    ck_assert_uint_eq(dlen, 2);
    ck_assert_int_eq(gh__chunked_step(&c, in + 13, 2, &used, &doff, &dlen), GH__CHUNK_NEED);
    ck_assert_uint_eq(used, 2);
    ck_assert_int_eq(gh__chunked_step(&c, in, 0, &used, &doff, &dlen), GH__CHUNK_NEED);
    ck_assert_uint_eq(used, 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("parse");

    TCase *tc = tcase_create("request-line");
    tcase_add_test(tc, test_parse_simple_get);
    tcase_add_test(tc, test_parse_returns_head_length_before_body);
    tcase_add_test(tc, test_parse_http10);
    tcase_add_test(tc, test_parse_accepts_any_http1_minor);
    tcase_add_test(tc, test_parse_target_forms);
    tcase_add_test(tc, test_parse_rejects_bad_targets);
    tcase_add_test(tc, test_parse_rejects_asterisk_except_options);
    tcase_add_test(tc, test_parse_connect_requires_authority_form);
    tcase_add_test(tc, test_parse_pri_preface);
    tcase_add_test(tc, test_parse_rejects_other_majors_with_505);
    tcase_add_test(tc, test_parse_rejects_malformed_version);
    tcase_add_test(tc, test_parse_rejects_bad_method_chars);
    tcase_add_test(tc, test_parse_rejects_double_space);
    tcase_add_test(tc, test_parse_rejects_missing_target);
    tcase_add_test(tc, test_parse_rejects_ctl_in_target);
    tcase_add_test(tc, test_parse_allows_obs_text_in_target);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    suite_add_tcase(s, tc);

    tc = tcase_create("line-endings");
    tcase_add_test(tc, test_parse_rejects_bare_lf);
    tcase_add_test(tc, test_parse_rejects_bare_cr);
    tcase_add_test(tc, test_parse_skips_leading_crlfs);
    tcase_add_test(tc, test_parse_skips_at_most_16_crlfs);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    suite_add_tcase(s, tc);

    tc = tcase_create("fields");
    tcase_add_test(tc, test_parse_rejects_obs_fold);
    tcase_add_test(tc, test_parse_rejects_space_before_colon);
    tcase_add_test(tc, test_parse_rejects_bad_field_names);
    tcase_add_test(tc, test_parse_rejects_nul_in_value);
    tcase_add_test(tc, test_parse_rejects_ctl_and_del_in_value);
    tcase_add_test(tc, test_parse_allows_obs_text_and_htab_in_value);
    tcase_add_test(tc, test_parse_trims_ows_around_values);
    tcase_add_test(tc, test_parse_counts_fields_beyond_cap);
    tcase_add_test(tc, test_parse_fields_trailer_section);
    tcase_add_test(tc, test_parse_token_helpers);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    suite_add_tcase(s, tc);

    tc = tcase_create("max-head");
    tcase_add_test(tc, test_parse_accepts_head_of_exactly_max_head);
    tcase_add_test(tc, test_parse_rejects_head_one_over_max_head_with_431);
    tcase_add_test(tc, test_parse_rejects_incomplete_head_beyond_max_head_with_431);
    tcase_add_test(tc, test_parse_counts_skipped_crlfs_in_max_head);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunked");
    tcase_add_test(tc, test_chunked_simple);
    tcase_add_test(tc, test_chunked_multiple_chunks);
    tcase_add_test(tc, test_chunked_zero_length_body);
    tcase_add_test(tc, test_chunked_hex_upper_and_lower);
    tcase_add_test(tc, test_chunked_leading_zeros);
    tcase_add_test(tc, test_chunked_rejects_size_overflow);
    tcase_add_test(tc, test_chunked_rejects_bad_size);
    tcase_add_test(tc, test_chunked_accepts_valid_extensions);
    tcase_add_test(tc, test_chunked_rejects_invalid_extensions);
    tcase_add_test(tc, test_chunked_rejects_missing_crlf_after_data);
    tcase_add_test(tc, test_chunked_rejects_bare_lf_in_size_line);
    tcase_add_test(tc, test_chunked_rejects_size_line_over_4096);
    tcase_add_test(tc, test_chunked_spans_byte_by_byte);
    tcase_add_test(tc, test_chunked_trailers_position);
    tcase_add_test(tc, test_chunked_step_returns_one_span_per_call);
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    suite_add_tcase(s, tc);

    return s;
}
