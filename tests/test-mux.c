/* tests/test-mux.c: the request multiplexer (lib/mux.c) against Go 1.22 ServeMux
 * semantics: a table of requests routed through gh_mux_match (precedence, wildcards,
 * {$}, methods with HEAD, 405/Allow, hosts, redirects), registration conflicts and
 * malformed patterns, allocation on a hit, and gh_mux_serve on a real server. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test-common.h"
#include <gchttp/mux.h>

#define IO_MS 5000

static void noop(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)w;
    (void)r;
    (void)data;
}

static gh_mux_t *mux_of(const char *const *pats)
{
    gh_mux_t *m = gh_mux_new();
    ck_assert_ptr_nonnull(m);
    for (size_t i = 0; pats[i]; i++) {
        int rc = gh_mux_handle(m, pats[i], noop, (void *)pats[i]);
        if (rc != 0)
            ck_abort_msg("registering %s: %s (%s)", pats[i], gh_err_name(rc), gh_mux_error(m));
    }
    return m;
}

/* ---- the routing table ------------------------------------------------------------- */

/* The tree of Go's routing_tree_test.go, plus methods, hosts and redirects. */
static const char *const tree[] = {
    "/a",
    "/a/b",
    "/a/{x}",
    "/g/h/i",
    "/g/{x}/j",
    "/a/b/{x...}",
    "/a/b/{y}",
    "/a/b/{$}",
    "GET /get",
    "HEAD /headwins",
    "GET /headwins",
    "POST /post",
    "GET /items/{id}",
    "DELETE /items/{id}",
    "example.com/a/{x}",
    "example.com/a/b",
    "/static/",
    "/files/{path...}",
    "/lit/a%2Fb",
    "/{$}",
    "/b/{bucket}/o/{objectname...}",
    "/images/",
    "/images/thumbnails/",
    NULL,
};

typedef struct row {
    const char *method, *host, *target;
    int status;
    const char *pattern; /* 200: the winner */
    const char *values;  /* "name=value;name=value" expected, or NULL for none */
    const char *extra;   /* 301: Location; 405: Allow */
} row_t;

static const row_t tree_rows[] = {
    /* literals, then wildcards, then multi-wildcards; backtracking */
    {"GET", "", "/a", 200, "/a", NULL, NULL},
    {"GET", "", "/a/b", 200, "/a/b", NULL, NULL},
    {"GET", "", "/a/c", 200, "/a/{x}", "x=c", NULL},
    {"GET", "", "/g/h/i", 200, "/g/h/i", NULL, NULL},
    {"GET", "", "/g/h/j", 200, "/g/{x}/j", "x=h", NULL},
    {"GET", "", "/a/b/c", 200, "/a/b/{y}", "y=c", NULL},
    {"GET", "", "/a/b/c/d", 200, "/a/b/{x...}", "x=c/d", NULL},
    {"GET", "", "/a/b/", 200, "/a/b/{$}", NULL, NULL},
    {"GET", "", "/", 200, "/{$}", NULL, NULL},
    {"GET", "", "/nothing", 404, NULL, NULL, NULL},
    {"GET", "", "/g/h/k", 404, NULL, NULL, NULL},
    /* wildcard values are decoded segments; {x...} takes the decoded rest */
    {"GET", "", "/a/c%20d", 200, "/a/{x}", "x=c d", NULL},
    {"GET", "", "/files/a%2Fb/c", 200, "/files/{path...}", "path=a/b/c", NULL},
    {"GET", "", "/files/", 200, "/files/{path...}", "path=", NULL},
    {"GET", "", "/lit/a%2Fb", 200, "/lit/a%2Fb", NULL, NULL},
    {"GET", "", "/lit/a/b", 404, NULL, NULL, NULL},
    /* methods: exact first, GET serves HEAD, 405 lists what would match */
    {"GET", "", "/headwins", 200, "GET /headwins", NULL, NULL},
    {"HEAD", "", "/headwins", 200, "HEAD /headwins", NULL, NULL},
    {"HEAD", "", "/get", 200, "GET /get", NULL, NULL},
    {"POST", "", "/get", 405, NULL, NULL, "GET, HEAD"},
    {"GET", "", "/post", 405, NULL, NULL, "POST"},
    {"GET", "", "/items/42", 200, "GET /items/{id}", "id=42", NULL},
    {"DELETE", "", "/items/42", 200, "DELETE /items/{id}", "id=42", NULL},
    {"PUT", "", "/items/42", 405, NULL, NULL, "DELETE, GET, HEAD"},
    {"PUT", "", "/a", 200, "/a", NULL, NULL},
    /* hosts: a host pattern first (port stripped, case ignored), else host-less */
    {"GET", "example.com", "/a/b", 200, "example.com/a/b", NULL, NULL},
    {"GET", "example.com:8080", "/a/c", 200, "example.com/a/{x}", "x=c", NULL},
    {"GET", "EXAMPLE.com", "/a/b", 200, "example.com/a/b", NULL, NULL},
    {"GET", "example.com", "/g/h/i", 200, "/g/h/i", NULL, NULL},
    {"GET", "other.org", "/a/c", 200, "/a/{x}", "x=c", NULL},
    {"GET", "", "http://example.com/a/b", 200, "example.com/a/b", NULL, NULL},
    /* trailing-slash redirect: "/static/" registered, "/static" asked for */
    {"GET", "", "/static", 301, NULL, NULL, "/static/"},
    {"GET", "", "/static?q=1", 301, NULL, NULL, "/static/?q=1"},
    {"GET", "", "/static/x/y", 200, "/static/", NULL, NULL},
    {"GET", "", "/files", 301, NULL, NULL, "/files/"},
    {"POST", "", "/static", 301, NULL, NULL, "/static/"},
    /* cleaning: unclean paths answer 301 to the clean one, query kept */
    {"GET", "", "/a/../g/h/i", 301, NULL, NULL, "/g/h/i"},
    {"GET", "", "/a//b", 301, NULL, NULL, "/a/b"},
    {"GET", "", "/a/./b?z=2", 301, NULL, NULL, "/a/b?z=2"},
    {"GET", "", "/..", 301, NULL, NULL, "/"},
    /* the examples of Go's ServeMux documentation */
    {"GET", "", "/b/mybucket/o/a/b/c.txt", 200, "/b/{bucket}/o/{objectname...}",
     "bucket=mybucket;objectname=a/b/c.txt", NULL},
    {"GET", "", "/images/thumbnails/x.png", 200, "/images/thumbnails/", NULL, NULL},
    {"GET", "", "/images/x.png", 200, "/images/", NULL, NULL},
    {"GET", "", "/images/thumbnails", 301, NULL, NULL, "/images/thumbnails/"},
    /* the server-wide target and bad escapes */
    {"OPTIONS", "", "*", 400, NULL, NULL, NULL},
    {"GET", "", "/a/%zz", 400, NULL, NULL, NULL},
    {"GET", "", "/a/%4", 400, NULL, NULL, NULL},
};

/* Separate sets for the precedence rules a single tree cannot hold together. */
static const char *const methods_set[] = {"/", "GET /", "GET /x/{$}", NULL};
static const row_t methods_rows[] = {
    {"GET", "", "/anything", 200, "GET /", NULL, NULL},
    {"HEAD", "", "/anything", 200, "GET /", NULL, NULL},
    {"POST", "", "/anything", 200, "/", NULL, NULL},
    {"POST", "", "/x/", 200, "/", NULL, NULL},
    {"GET", "", "/x/", 200, "GET /x/{$}", NULL, NULL},
    {"GET", "", "/x/y", 200, "GET /", NULL, NULL},
};

static const char *const host_set[] = {"GET /v/{x}", "h.test/v/", "h.test/w/{$}", NULL};
static const row_t host_rows[] = {
    /* A host pattern wins even when a host-less one has a method: Go matches the host
     * first, and the two cannot conflict. */
    {"GET", "h.test", "/v/1", 200, "h.test/v/", NULL, NULL},
    {"GET", "x.test", "/v/1", 200, "GET /v/{x}", "x=1", NULL},
    {"POST", "x.test", "/v/1", 405, NULL, NULL, "GET, HEAD"},
    {"GET", "h.test", "/w", 301, NULL, NULL, "/w/"},
    {"GET", "x.test", "/w/", 404, NULL, NULL, NULL},
};

static void check_values(const gh_mux_match_t *mt, const char *spec, const char *what)
{
    if (!spec) {
        ck_assert_msg(mt->_values == NULL, "%s: unexpected path values", what);
        return;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        *eq = 0;
        const char *got = gh_mux_match_value(mt, kv);
        ck_assert_msg(got != NULL, "%s: no value for %s", what, kv);
        ck_assert_msg(strcmp(got, eq + 1) == 0, "%s: %s = \"%s\", want \"%s\"", what, kv, got,
                      eq + 1);
    }
}

static void run_rows(const char *const *pats, const row_t *rows, size_t n)
{
    gh_mux_t *m = mux_of(pats);
    for (size_t i = 0; i < n; i++) {
        const row_t *w = &rows[i];
        char what[300];
        snprintf(what, sizeof what, "%s %s (host \"%s\")", w->method, w->target, w->host);
        gh_mux_match_t mt;
        ck_assert_int_eq(gh_mux_match(m, w->method, w->host, w->target, &mt), 0);
        ck_assert_msg(mt.status == w->status, "%s: status %d, want %d", what, mt.status, w->status);
        if (w->status == 200) {
            ck_assert_msg(mt.pattern && strcmp(mt.pattern, w->pattern) == 0,
                          "%s: matched \"%s\", want \"%s\"", what,
                          mt.pattern ? mt.pattern : "(none)", w->pattern);
            /* The handler data registered with the pattern comes back. */
            ck_assert_msg(mt.data && strcmp(mt.data, w->pattern) == 0, "%s: wrong data", what);
            check_values(&mt, w->values, what);
        } else if (w->status == 301) {
            ck_assert_msg(mt.location && strcmp(mt.location, w->extra) == 0,
                          "%s: Location \"%s\", want \"%s\"", what,
                          mt.location ? mt.location : "(none)", w->extra);
        } else if (w->status == 405) {
            ck_assert_msg(mt.allow && strcmp(mt.allow, w->extra) == 0,
                          "%s: Allow \"%s\", want \"%s\"", what, mt.allow ? mt.allow : "(none)",
                          w->extra);
        }
    }
}

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_mux_routes_like_go_servemux)
{
    run_rows(tree, tree_rows, NROWS(tree_rows));
}
END_TEST

START_TEST(test_mux_method_patterns_beat_methodless_ones)
{
    run_rows(methods_set, methods_rows, NROWS(methods_rows));
}
END_TEST

START_TEST(test_mux_host_patterns_are_tried_first)
{
    run_rows(host_set, host_rows, NROWS(host_rows));
}
END_TEST

/* Registration order does not change the winner: the same tree registered backwards. */
START_TEST(test_mux_winner_does_not_depend_on_registration_order)
{
    const char *rev[NROWS(tree)];
    size_t n = NROWS(tree) - 1;
    for (size_t i = 0; i < n; i++)
        rev[i] = tree[n - 1 - i];
    rev[n] = NULL;
    run_rows(rev, tree_rows, NROWS(tree_rows));
}
END_TEST

/* Many literal siblings move a node's children into a hash table; every one is found. */
START_TEST(test_mux_finds_every_sibling_in_a_large_node)
{
    gh_mux_t *m = gh_mux_new();
    ck_assert_ptr_nonnull(m);
    static char pats[300][32];
    for (int i = 0; i < 300; i++) {
        snprintf(pats[i], sizeof pats[i], "GET /r%d/{id}", i);
        ck_assert_int_eq(gh_mux_handle(m, pats[i], noop, pats[i]), 0);
    }
    for (int i = 0; i < 300; i++) {
        char t[32];
        snprintf(t, sizeof t, "/r%d/x%d", i, i);
        gh_mux_match_t mt;
        ck_assert_int_eq(gh_mux_match(m, "GET", "", t, &mt), 0);
        ck_assert_int_eq(mt.status, 200);
        ck_assert_str_eq(mt.pattern, pats[i]);
        char want[32];
        snprintf(want, sizeof want, "x%d", i);
        ck_assert_str_eq(gh_mux_match_value(&mt, "id"), want);
    }
    gh_mux_match_t mt;
    ck_assert_int_eq(gh_mux_match(m, "GET", "", "/r300/x", &mt), 0);
    ck_assert_int_eq(mt.status, 404);
}
END_TEST

/* Paths deeper than the inline token buffer, and values longer than its decode buffer. */
START_TEST(test_mux_handles_deep_patterns_and_long_paths)
{
    gh_mux_t *m = gh_mux_new();
    ck_assert_ptr_nonnull(m);
    static char deep[200];
    size_t w = 0;
    for (int i = 0; i < 40; i++)
        w += (size_t)snprintf(deep + w, sizeof deep - w, "/%c", 'a' + i % 26);
    snprintf(deep + w, sizeof deep - w, "/{last}");
    ck_assert_int_eq(gh_mux_handle(m, deep, noop, NULL), 0);
    ck_assert_int_eq(gh_mux_handle(m, "/f/{rest...}", noop, NULL), 0);
    char t[256];
    snprintf(t, sizeof t, "%.*s/end", (int)w, deep);
    gh_mux_match_t mt;
    ck_assert_int_eq(gh_mux_match(m, "GET", "", t, &mt), 0);
    ck_assert_int_eq(mt.status, 200);
    ck_assert_str_eq(gh_mux_match_value(&mt, "last"), "end");
    static char big[4000], want[4000];
    strcpy(big, "/f/");
    size_t bl = 3, wl = 0;
    for (int i = 0; i < 900; i++) {
        memcpy(big + bl, "%41", 3);
        bl += 3;
        want[wl++] = 'A';
    }
    big[bl] = 0;
    want[wl] = 0;
    ck_assert_int_eq(gh_mux_match(m, "GET", "", big, &mt), 0);
    ck_assert_int_eq(mt.status, 200);
    ck_assert_str_eq(gh_mux_match_value(&mt, "rest"), want);
    /* More segments than any pattern: not found, not a crash. */
    static char many[6000];
    size_t ml = 0;
    for (int i = 0; i < 2000; i++) {
        memcpy(many + ml, "/a", 2);
        ml += 2;
    }
    many[ml] = 0;
    ck_assert_int_eq(gh_mux_match(m, "GET", "", many, &mt), 0);
    ck_assert_int_eq(mt.status, 404);
}
END_TEST

/* ---- registration: conflicts and malformed patterns ---------------------------------- */

typedef struct conflict_row {
    const char *first, *second;
    int conflicts;
    const char *why; /* a part of the message when they conflict */
} conflict_row_t;

static const conflict_row_t conflict_rows[] = {
    {"/a", "/a", 1, "matches the same requests as"},
    {"/a/{x}", "/a/{y}", 1, "matches the same requests as"},
    {"/a/", "/a/{rest...}", 1, "matches the same requests as"},
    {"/a/{x}", "/{y}/b", 1, "both match \"/a/b\""},
    {"/a/{x}/c", "/a/b/{y}", 1, "both match \"/a/b/c\""},
    {"/{x...}", "/a/{y}/{z...}", 0, NULL},
    {"GET /a/{x}", "/a/b", 1, "matches more methods than GET /a/{x}, but has a more specific path"},
    {"/a/b", "GET /a/{x}", 1, "matches fewer methods than /a/b, but has a more general path"},
    {"GET /a", "HEAD /a", 0, NULL},
    {"GET /a", "POST /a", 0, NULL},
    {"GET /a", "/a", 0, NULL},
    {"/a/{x}", "/a/b", 0, NULL},
    {"/a/{x...}", "/a/{$}", 0, NULL},
    {"/{$}", "/", 0, NULL},
    {"/a/{x}", "/a/{$}", 0, NULL},
    {"example.com/a/{x}", "/{y}/b", 0, NULL},
    {"example.com/a/{x}", "example.com/{y}/b", 1, "both match \"/a/b\""},
    {"a.com/x", "b.com/x", 0, NULL},
    /* Go's documentation: neither is more specific, both match "/posts/latest". */
    {"/posts/{id}", "/{resource}/latest", 1, "both match \"/posts/latest\""},
    {"/images/", "/images/thumbnails/", 0, NULL},
};

START_TEST(test_mux_refuses_conflicting_patterns_naming_both)
{
    for (size_t i = 0; i < NROWS(conflict_rows); i++) {
        const conflict_row_t *c = &conflict_rows[i];
        gh_mux_t *m = gh_mux_new();
        ck_assert_ptr_nonnull(m);
        ck_assert_int_eq(gh_mux_handle(m, c->first, noop, NULL), 0);
        int rc = gh_mux_handle(m, c->second, noop, NULL);
        if (!c->conflicts) {
            ck_assert_msg(rc == 0, "%s then %s: %s", c->first, c->second, gh_mux_error(m));
            continue;
        }
        ck_assert_msg(rc == GH_EEXIST, "%s then %s: rc %d", c->first, c->second, rc);
        const char *e = gh_mux_error(m);
        char a[80], b[80];
        snprintf(a, sizeof a, "\"%s\"", c->first);
        snprintf(b, sizeof b, "\"%s\"", c->second);
        ck_assert_msg(strstr(e, a) && strstr(e, b), "message names both: %s", e);
        ck_assert_msg(strstr(e, c->why), "message \"%s\" lacks \"%s\"", e, c->why);
        /* The refused pattern did not replace the first one. */
        gh_mux_match_t mt;
        ck_assert_int_eq(gh_mux_match(m, "GET", "", "/a/b", &mt), 0);
        ck_assert(mt.status != 200 || strcmp(mt.pattern, c->first) == 0);
    }
}
END_TEST

START_TEST(test_mux_refuses_malformed_patterns)
{
    static const char *const bad[] = {
        "",    "a",     "{x}/a",  "/{x",         "/a{x}",     "/{x}/{x}", "/{$}/a", "/{x...}/a",
        "/{}", "/{1x}", "/{a-b}", "GET /a/../b", "GET /a//b", "B@D /a",   "/{...}", "/x/{y}z",
    };
    for (size_t i = 0; i < NROWS(bad); i++) {
        gh_mux_t *m = gh_mux_new();
        ck_assert_ptr_nonnull(m);
        int rc = gh_mux_handle(m, bad[i], noop, NULL);
        ck_assert_msg(rc == GH_EINVAL, "\"%s\": rc %d", bad[i], rc);
        ck_assert_msg(strlen(gh_mux_error(m)) > 0, "\"%s\": no message", bad[i]);
    }
    /* Unclean paths are allowed without a method (they can match CONNECT). */
    gh_mux_t *m = gh_mux_new();
    ck_assert_int_eq(gh_mux_handle(m, "/a/../b", noop, NULL), 0);
    ck_assert_str_eq(gh_mux_error(m), "");
}
END_TEST

/* ---- allocation -------------------------------------------------------------------- */

static unsigned long allocs_of(gh_mux_t *m, const char *target, int *status)
{
    gh_alloc_stats_t a, b;
    gh_mux_match_t mt;
    gh_alloc_stats(&a);
    int rc = gh_mux_match(m, "GET", "", target, &mt);
    gh_alloc_stats(&b);
    ck_assert_int_eq(rc, 0);
    *status = mt.status;
    return (unsigned long)(b.objects - a.objects);
}

START_TEST(test_mux_hit_allocates_only_its_path_values)
{
    gh_mux_t *m = mux_of(tree);
    int st;
    ck_assert_uint_eq(allocs_of(m, "/a/b", &st), 0);
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(allocs_of(m, "/g/h/j", &st), 1);
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(allocs_of(m, "/files/x%20y/z", &st), 1);
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(allocs_of(m, "/nothing/here", &st), 0);
    ck_assert_int_eq(st, 404);
}
END_TEST

/* ---- gh_mux_serve on a real server --------------------------------------------------- */

static gh_server_t *srv;
static int srv_port;
static char rbuf[1 << 16];

static void item(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    const char *id = gh_request_path_value(r, "id");
    const char *none = gh_request_path_value(r, "nope");
    gh_response_printf(w, "item %s %s %s", id ? id : "(null)", none ? none : "(null)",
                       gh_request_method(r));
}

static void tagged(gh_response_t *w, gh_request_t *r, void *data)
{
    /* A middleware-style override of a value (results go into the body: no asserts on
     * the server's threads). */
    int a = gh_request_set_path_value(r, "p", "over");
    int b = gh_request_set_path_value(r, "q", "new");
    gh_response_printf(w, "%s %s %s %d %d", (const char *)data, gh_request_path_value(r, "p"),
                       gh_request_path_value(r, "q"), a, b);
}

static void start_mux_server(void)
{
    gh_mux_t *m = gh_mux_new();
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(gh_mux_handle(m, "GET /items/{id}", item, NULL), 0);
    ck_assert_int_eq(gh_mux_handle(m, "/static/", tagged, "static"), 0);
    ck_assert_int_eq(gh_mux_handle(m, "/t/{p}", tagged, "t"), 0);
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = gh_mux_serve;
    cfg.handler_data = m;
    ck_assert_int_eq(gh_server_new(&srv, &cfg), 0);
    ck_assert_int_eq(gh_server_listen(srv, "127.0.0.1", 0), 0);
    ck_assert_int_eq(gh_server_start(srv), 0);
    srv_port = gh_server_port(srv, 0);
}

static void stop_mux_server(void)
{
    gh_server_close(srv);
}

static const char *roundtrip(int fd, const char *req)
{
    ck_assert_int_eq(th_sends(fd, req), 0);
    ssize_t n = th_read_response(fd, rbuf, sizeof rbuf - 1, IO_MS);
    ck_assert_int_gt(n, 0);
    return rbuf;
}

START_TEST(test_mux_serve_dispatches_with_path_values)
{
    int fd = th_connect(srv_port);
    ck_assert_int_ge(fd, 0);
    const char *r = roundtrip(fd, "GET /items/a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_status(r), 200);
    ck_assert_str_eq(th_body(r), "item a/b (null) GET");
    r = roundtrip(fd, "GET /t/v HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_str_eq(th_body(r), "t over new 0 0");
    close(fd);
    /* HEAD is served by the GET pattern; read to the close (no body to delimit). */
    fd = th_connect(srv_port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(th_sends(fd, "HEAD /items/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                     0);
    int closed = 0;
    ck_assert_int_gt(th_read_all(fd, rbuf, sizeof rbuf - 1, IO_MS, &closed), 0);
    ck_assert_int_eq(closed, 1);
    ck_assert_int_eq(th_status(rbuf), 200);
    ck_assert_ptr_nonnull(strstr(rbuf, "Content-Length: 18\r\n"));
    ck_assert_str_eq(th_body(rbuf), "");
    close(fd);
}
END_TEST

START_TEST(test_mux_serve_answers_405_with_allow)
{
    int fd = th_connect(srv_port);
    ck_assert_int_ge(fd, 0);
    const char *r = roundtrip(fd, "POST /items/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    ck_assert_int_eq(th_status(r), 405);
    ck_assert(th_has_header(r, "Allow", "GET, HEAD"));
    ck_assert(th_has_header(r, "Content-Type", "text/plain; charset=utf-8"));
    ck_assert(th_has_header(r, "X-Content-Type-Options", "nosniff"));
    ck_assert_str_eq(th_body(r), "Method Not Allowed\n");
    /* The connection stays usable. */
    r = roundtrip(fd, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_status(r), 404);
    ck_assert_str_eq(th_body(r), "404 page not found\n");
    close(fd);
}
END_TEST

START_TEST(test_mux_serve_redirects_to_the_slash_and_clean_path)
{
    int fd = th_connect(srv_port);
    ck_assert_int_ge(fd, 0);
    const char *r = roundtrip(fd, "GET /static?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_status(r), 301);
    ck_assert(th_has_header(r, "Location", "/static/?x=1"));
    ck_assert(th_has_header(r, "Content-Type", "text/html; charset=utf-8"));
    ck_assert_str_eq(th_body(r), "<a href=\"/static/?x=1\">Moved Permanently</a>.\n\n");
    r = roundtrip(fd, "GET /static/../items/3 HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_status(r), 301);
    ck_assert(th_has_header(r, "Location", "/items/3"));
    close(fd);
}
END_TEST

START_TEST(test_mux_serve_answers_asterisk_with_400_and_closes)
{
    int fd = th_connect(srv_port);
    ck_assert_int_ge(fd, 0);
    const char *r = roundtrip(fd, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(th_status(r), 400);
    ck_assert_int_eq(th_wait_closed(fd, IO_MS), 1);
    close(fd);
}
END_TEST

/* ---- differential: the mux against a brute-force reading of Go's rules ---------------
 * Random pattern sets over a small alphabet; every request of a finite universe (paths of
 * up to four segments over {a, b, c}, with and without a trailing slash, four methods,
 * three hosts) is routed by the mux and by a reference that knows no tree: it matches
 * each pattern on its own, and calls p more specific than q when the requests p matches
 * (in the universe) are a strict subset of those q matches. Registration must refuse
 * exactly the patterns that overlap a registered one of the same host with neither more
 * specific. */

#define U_METHODS 4
#define U_MAXPATHS 256
#define U_WORDS ((U_METHODS * U_MAXPATHS + 63) / 64)

static const char *const u_methods[U_METHODS] = {"GET", "HEAD", "POST", "PUT"};
static char u_paths[U_MAXPATHS][16];
static int u_npaths;

typedef struct rpat {
    char str[64];
    char method[8];
    char host[8];
    char segs[6][8]; /* "a", "b", "{" (single wildcard), "*" (multi), "$" ({$}) */
    int nsegs;
    int registered;
    uint64_t set[U_WORDS]; /* requests (method, path) it matches, host aside */
} rpat_t;

static uint32_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 16) % n;
}

static void universe_init(void)
{
    u_npaths = 0;
    const char *al = "abc";
    for (int k = 0; k <= 4; k++) {
        int count = 1;
        for (int i = 0; i < k; i++)
            count *= 3;
        for (int c = 0; c < count; c++)
            for (int slash = 0; slash < 2; slash++) {
                if (k == 0 && slash)
                    continue;
                char *p = u_paths[u_npaths++];
                int w = 0, v = c;
                for (int i = 0; i < k; i++) {
                    p[w++] = '/';
                    p[w++] = al[v % 3];
                    v /= 3;
                }
                if (k == 0 || slash)
                    p[w++] = '/';
                p[w] = 0;
            }
    }
}

/* Go's matching of one pattern's path, on the request's tokens ("/" is the trailing
 * slash token). */
static int ref_path(const rpat_t *p, int i, char toks[][8], int nt, int j)
{
    if (i == p->nsegs)
        return j == nt;
    const char *s = p->segs[i];
    if (s[0] == '*')
        return j < nt; /* the rest, at least the trailing slash */
    if (s[0] == '$')
        return j == nt - 1 && !strcmp(toks[j], "/");
    if (j == nt || !strcmp(toks[j], "/"))
        return 0;
    if (s[0] == '{' || !strcmp(s, toks[j]))
        return ref_path(p, i + 1, toks, nt, j + 1);
    return 0;
}

static int tokens_of(const char *path, char toks[][8])
{
    int nt = 0;
    const char *q = path;
    while (*q) {
        if (!strcmp(q, "/")) {
            strcpy(toks[nt++], "/");
            break;
        }
        q++;
        size_t l = strcspn(q, "/");
        memcpy(toks[nt], q, l);
        toks[nt++][l] = 0;
        q += l;
    }
    return nt;
}

static int ref_match_path(const rpat_t *p, const char *path)
{
    char toks[12][8];
    int nt = tokens_of(path, toks);
    return ref_path(p, 0, toks, nt, 0);
}

static int ref_method_ok(const rpat_t *p, const char *m)
{
    return !p->method[0] || !strcmp(p->method, m) ||
           (!strcmp(p->method, "GET") && !strcmp(m, "HEAD"));
}

static void ref_set(rpat_t *p)
{
    memset(p->set, 0, sizeof p->set);
    for (int m = 0; m < U_METHODS; m++)
        for (int i = 0; i < u_npaths; i++)
            if (ref_method_ok(p, u_methods[m]) && ref_match_path(p, u_paths[i])) {
                int b = m * U_MAXPATHS + i;
                p->set[b / 64] |= 1ull << (b % 64);
            }
}

static int subset(const uint64_t *a, const uint64_t *b)
{
    for (int i = 0; i < U_WORDS; i++)
        if (a[i] & ~b[i])
            return 0;
    return 1;
}

static int disjoint(const uint64_t *a, const uint64_t *b)
{
    for (int i = 0; i < U_WORDS; i++)
        if (a[i] & b[i])
            return 0;
    return 1;
}

static void gen_pattern(rpat_t *p)
{
    static const char *const methods[] = {"", "", "GET", "POST", "HEAD"};
    strcpy(p->method, methods[rnd(5)]);
    strcpy(p->host, rnd(4) == 0 ? "h.test" : "");
    p->nsegs = 0;
    int n = (int)rnd(4);
    char path[48] = "";
    size_t w = 0;
    for (int i = 0; i < n; i++) {
        int k = (int)rnd(3);
        if (k == 2) {
            strcpy(p->segs[p->nsegs++], "{");
            w += (size_t)snprintf(path + w, sizeof path - w, "/{w%d}", i);
        } else {
            strcpy(p->segs[p->nsegs++], k ? "b" : "a");
            w += (size_t)snprintf(path + w, sizeof path - w, "/%s", k ? "b" : "a");
        }
    }
    int end = (int)rnd(4);
    if (n == 0 && end == 0)
        end = 1;
    if (end == 1) {
        strcpy(p->segs[p->nsegs++], "*");
        snprintf(path + w, sizeof path - w, "/");
    } else if (end == 2) {
        strcpy(p->segs[p->nsegs++], "$");
        snprintf(path + w, sizeof path - w, "/{$}");
    } else if (end == 3) {
        strcpy(p->segs[p->nsegs++], "*");
        snprintf(path + w, sizeof path - w, "/{rest...}");
    }
    snprintf(p->str, sizeof p->str, "%s%s%s%s", p->method, p->method[0] ? " " : "", p->host, path);
    ref_set(p);
}

/* The most specific registered pattern of host level `host` matching (m, path), or -1;
 * *ambiguous when two match with neither more specific. */
static int ref_winner(const rpat_t *ps, int n, const char *host, int m, int pi, int *ambiguous)
{
    int best = -1;
    int b = m * U_MAXPATHS + pi;
    for (int i = 0; i < n; i++) {
        if (!ps[i].registered || strcmp(ps[i].host, host) || !(ps[i].set[b / 64] >> (b % 64) & 1))
            continue;
        if (best < 0 || subset(ps[i].set, ps[best].set)) {
            if (best >= 0 && subset(ps[best].set, ps[i].set))
                *ambiguous = 1; /* equal sets */
            best = i;
        } else if (!subset(ps[best].set, ps[i].set)) {
            *ambiguous = 1;
        }
    }
    return best;
}

static int path_index(const char *path)
{
    for (int i = 0; i < u_npaths; i++)
        if (!strcmp(u_paths[i], path))
            return i;
    return -1;
}

static int ref_route(const rpat_t *ps, int n, const char *host, int m, int pi, int *amb)
{
    int w = -1;
    if (host[0])
        w = ref_winner(ps, n, host, m, pi, amb);
    if (w < 0)
        w = ref_winner(ps, n, "", m, pi, amb);
    return w;
}

/* Go's exactMatch. */
static int ref_exact(const rpat_t *p, const char *path)
{
    if (strcmp(p->segs[p->nsegs - 1], "*"))
        return 1;
    size_t l = strlen(path);
    if (l && path[l - 1] != '/')
        return 0;
    int slashes = 0;
    for (const char *q = path; *q; q++)
        slashes += *q == '/';
    return p->nsegs == slashes;
}

START_TEST(test_mux_agrees_with_a_brute_force_matcher_on_random_sets)
{
    universe_init();
    ck_assert_int_le(u_npaths, U_MAXPATHS);
    static rpat_t ps[24];
    static const char *const hosts[] = {"", "h.test", "o.test"};
    int checked = 0, refused = 0;
    for (int set = 0; set < 60; set++) {
        rng_state = (uint32_t)set * 2654435761u + 1;
        gh_mux_t *m = gh_mux_new();
        ck_assert_ptr_nonnull(m);
        int n = 4 + (int)rnd(20);
        for (int i = 0; i < n; i++) {
            gen_pattern(&ps[i]);
            ps[i].registered = 0;
            /* The reference's verdict: overlapping a registered pattern of the same host
             * with neither a strict subset of the other (or equal) is a conflict. */
            int conflicts = 0;
            for (int j = 0; j < i; j++)
                if (ps[j].registered && !strcmp(ps[j].host, ps[i].host) &&
                    !disjoint(ps[i].set, ps[j].set) &&
                    !((subset(ps[i].set, ps[j].set) || subset(ps[j].set, ps[i].set)) &&
                      !(subset(ps[i].set, ps[j].set) && subset(ps[j].set, ps[i].set))))
                    conflicts = 1;
            int rc = gh_mux_handle(m, ps[i].str, noop, ps[i].str);
            ck_assert_msg(rc == (conflicts ? GH_EEXIST : 0), "set %d: %s: rc %d, reference %s (%s)",
                          set, ps[i].str, rc, conflicts ? "conflict" : "ok", gh_mux_error(m));
            ps[i].registered = rc == 0;
            refused += rc != 0;
        }
        for (int h = 0; h < 3; h++)
            for (int mi = 0; mi < U_METHODS; mi++)
                for (int pi = 0; pi < u_npaths; pi++) {
                    const char *path = u_paths[pi];
                    int amb = 0;
                    int w = ref_route(ps, n, hosts[h], mi, pi, &amb);
                    ck_assert_msg(!amb, "set %d: ambiguous reference for %s", set, path);
                    int want = w >= 0 ? 200 : 0;
                    const char *loc = NULL;
                    char slashed[20];
                    snprintf(slashed, sizeof slashed, "%s/", path);
                    int spi = path_index(slashed);
                    if ((w < 0 || !ref_exact(&ps[w], path)) && path[strlen(path) - 1] != '/' &&
                        spi >= 0) {
                        int w2 = ref_route(ps, n, hosts[h], mi, spi, &amb);
                        if (w2 >= 0 && ref_exact(&ps[w2], slashed)) {
                            want = 301;
                            loc = slashed;
                        }
                    }
                    if (!want) {
                        /* 405 when a pattern with a method matches the path (or the path
                         * with a slash) for another method. */
                        for (int i = 0; i < n && !want; i++) {
                            if (!ps[i].registered || !ps[i].method[0] ||
                                (ps[i].host[0] && strcmp(ps[i].host, hosts[h])))
                                continue;
                            if (ref_match_path(&ps[i], path) ||
                                (spi >= 0 && path[strlen(path) - 1] != '/' &&
                                 ref_match_path(&ps[i], slashed)))
                                want = 405;
                        }
                        if (!want)
                            want = 404;
                    }
                    gh_mux_match_t mt;
                    ck_assert_int_eq(gh_mux_match(m, u_methods[mi], hosts[h], path, &mt), 0);
                    ck_assert_msg(mt.status == want, "set %d: %s %s host %s: status %d, want %d",
                                  set, u_methods[mi], path, hosts[h], mt.status, want);
                    if (want == 200)
                        ck_assert_msg(!strcmp(mt.pattern, ps[w].str),
                                      "set %d: %s %s host %s: %s, want %s", set, u_methods[mi],
                                      path, hosts[h], mt.pattern, ps[w].str);
                    if (want == 301)
                        ck_assert_str_eq(mt.location, loc);
                    checked++;
                }
    }
    /* The generator makes both outcomes common. */
    ck_assert_int_gt(refused, 100);
    ck_assert_int_gt(checked, 100000);
}
END_TEST

/* ---- registration while lookups run ---------------------------------------------------- */

static gh_mux_t *conc_mux;
static int conc_done;   /* set by the registering thread when it has finished */
static int conc_errors; /* lookups that went wrong, recorded by the looking thread */
static long conc_lookups;

static void *conc_register(void *arg)
{
    (void)arg;
    /* Siblings enough to move nodes from scanned tables to hashed ones, and deeper
     * patterns to raise the mux's depth, while the other thread walks the tree. */
    for (int i = 0; i < 600; i++) {
        char pat[64];
        snprintf(pat, sizeof pat, "GET /r%d/{id}/s%d/{x}", i, i % 7);
        if (gh_mux_handle(conc_mux, pat, noop, NULL) != 0)
            __atomic_add_fetch(&conc_errors, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&conc_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

START_TEST(test_mux_lookups_stay_right_while_patterns_are_added)
{
    conc_mux = gh_mux_new();
    ck_assert_ptr_nonnull(conc_mux);
    ck_assert_int_eq(gh_mux_handle(conc_mux, "GET /fixed/{id}", noop, "fixed"), 0);
    ck_assert_int_eq(gh_mux_handle(conc_mux, "/", noop, "root"), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, conc_register, NULL), 0);
    /* Until the registrations end (bounded by the loop count too): the fixed pattern and
     * the catch-all always win where they should, whatever else is being added. */
    for (long i = 0; i < 20000000 && !__atomic_load_n(&conc_done, __ATOMIC_SEQ_CST); i++) {
        gh_mux_match_t mt;
        if (gh_mux_match(conc_mux, "GET", "", "/fixed/7", &mt) != 0 || mt.status != 200 ||
            strcmp(mt.pattern, "GET /fixed/{id}") || strcmp(gh_mux_match_value(&mt, "id"), "7"))
            conc_errors++;
        if (gh_mux_match(conc_mux, "GET", "", "/r5/1/s5/2/x", &mt) != 0 || mt.status != 200 ||
            strcmp(mt.pattern, "/"))
            conc_errors++;
        conc_lookups++;
    }
    pthread_join(t, NULL);
    ck_assert_int_eq(conc_done, 1);
    ck_assert_int_eq(conc_errors, 0);
    ck_assert_int_gt(conc_lookups, 0);
    /* Every pattern is there afterwards. */
    for (int i = 0; i < 600; i++) {
        char target[64], want[64];
        snprintf(target, sizeof target, "/r%d/a/s%d/b", i, i % 7);
        snprintf(want, sizeof want, "GET /r%d/{id}/s%d/{x}", i, i % 7);
        gh_mux_match_t mt;
        ck_assert_int_eq(gh_mux_match(conc_mux, "GET", "", target, &mt), 0);
        ck_assert_int_eq(mt.status, 200);
        ck_assert_str_eq(mt.pattern, want);
        ck_assert_str_eq(gh_mux_match_value(&mt, "x"), "b");
    }
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("mux");
    TCase *tc = tcase_create("routing");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_test(tc, test_mux_routes_like_go_servemux);
    tcase_add_test(tc, test_mux_method_patterns_beat_methodless_ones);
    tcase_add_test(tc, test_mux_host_patterns_are_tried_first);
    tcase_add_test(tc, test_mux_winner_does_not_depend_on_registration_order);
    tcase_add_test(tc, test_mux_finds_every_sibling_in_a_large_node);
    tcase_add_test(tc, test_mux_handles_deep_patterns_and_long_paths);
    tcase_add_test(tc, test_mux_hit_allocates_only_its_path_values);
    tcase_add_test(tc, test_mux_agrees_with_a_brute_force_matcher_on_random_sets);
    tcase_add_test(tc, test_mux_lookups_stay_right_while_patterns_are_added);
    suite_add_tcase(s, tc);
    tc = tcase_create("registration");
    tcase_add_test(tc, test_mux_refuses_conflicting_patterns_naming_both);
    tcase_add_test(tc, test_mux_refuses_malformed_patterns);
    suite_add_tcase(s, tc);
    tc = tcase_create("serve");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_checked_fixture(tc, start_mux_server, stop_mux_server);
    tcase_add_test(tc, test_mux_serve_dispatches_with_path_values);
    tcase_add_test(tc, test_mux_serve_answers_405_with_allow);
    tcase_add_test(tc, test_mux_serve_redirects_to_the_slash_and_clean_path);
    tcase_add_test(tc, test_mux_serve_answers_asterisk_with_400_and_closes);
    suite_add_tcase(s, tc);
    return s;
}
