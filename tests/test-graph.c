/* tests/test-graph.c: examples/graph (built with -DGRAPH_NO_MAIN and linked in): the
 * DOT drawn from what a hijacker holds after its handler returned, stages `before` and
 * `release`, checked against the example's walker and the library's gh_gc_write_dot. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-common.h"
#include "../examples/graph.h"

/* 1 if the DOT text has a node of this type (labels are "type\nSIZE B"). */
static int has_node(const char *dot, const char *type)
{
    char pat[64];
    snprintf(pat, sizeof pat, "label=\"%s\\n", type);
    return strstr(dot, pat) != NULL;
}

/* 1 if the space-separated list names this type. */
static int has_word(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; (p = strstr(p, w)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

static const char *const server_side[] = {"conn",    "connReader", "response",
                                          "Request", "body",       "context"};
#define N_SERVER_SIDE (sizeof server_side / sizeof server_side[0])

static void check_user_roots(const char *dot)
{
    ck_assert(has_node(dot, "user"));
    ck_assert(has_node(dot, "netConn"));
    ck_assert(has_node(dot, "bufio.Reader"));
    ck_assert(has_node(dot, "bufio.Writer"));
    ck_assert(has_node(dot, "gh_fd"));
}

/* (a) is the whole connection in every stage. */
static void check_moment_a(const graph_result_t *res)
{
    for (size_t i = 0; i < N_SERVER_SIDE; i++)
        ck_assert_msg(has_node(res->dot[GRAPH_A], server_side[i]), "(a) lacks %s", server_side[i]);
    ck_assert(has_node(res->dot[GRAPH_A], "server"));
}

START_TEST(test_graph_release)
{
    graph_result_t res;
    ck_assert_int_eq(graph_run(GH_HIJACK_RELEASE, "release", &res), 0);
    check_moment_a(&res);
    const char *texts[] = {res.dot[GRAPH_B], res.dot[GRAPH_C], res.lib_dot_c};
    for (size_t t = 0; t < 3; t++) {
        ck_assert_ptr_nonnull(texts[t]);
        check_user_roots(texts[t]);
        for (size_t i = 0; i < N_SERVER_SIDE; i++)
            ck_assert_msg(!has_node(texts[t], server_side[i]), "release: %s reachable (%zu)",
                          server_side[i], t);
    }
    /* The response's on-demand extra (close-notify, trailers) is not made here at all. */
    ck_assert(!has_node(res.dot[GRAPH_C], "responseExtra"));
    /* Idle: both 4 KiB buffers released, so (c) is user, netConn, reader, writer, fd,
     * the address string. */
    ck_assert_int_le(res.n_c, 6);
    /* The probes saw the server side collected. */
    ck_assert_msg(has_word(res.died, "conn") && has_word(res.died, "response") &&
                      has_word(res.died, "Request") && has_word(res.died, "connReader"),
                  "release: collected only: %s", res.died);
    ck_assert_msg(!has_word(res.kept, "conn"), "release: kept %s", res.kept);
    ck_assert(strstr(res.dot[GRAPH_A_MARKED], "style=dashed") != NULL);
    ck_assert(strstr(res.dot[GRAPH_ALL], "subgraph cluster_c") != NULL);
    graph_result_free(&res);
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

START_TEST(test_graph_before)
{
    graph_result_t res;
    ck_assert_int_eq(graph_run(GH_HIJACK_BEFORE, "before", &res), 0);
    check_moment_a(&res);
    const char *texts[] = {res.dot[GRAPH_B], res.dot[GRAPH_C], res.lib_dot_c};
    for (size_t t = 0; t < 3; t++) {
        ck_assert_ptr_nonnull(texts[t]);
        check_user_roots(texts[t]);
        /* Go 1.23: the reader still reads through connReader -> conn -> curReq. */
        ck_assert(has_node(texts[t], "connReader"));
        ck_assert(has_node(texts[t], "conn"));
        ck_assert(has_node(texts[t], "response"));
        ck_assert(has_node(texts[t], "Request"));
    }
    ck_assert_msg(has_word(res.kept, "conn") && has_word(res.kept, "response") &&
                      has_word(res.kept, "Request"),
                  "before: held only: %s", res.kept);
    ck_assert_msg(!has_word(res.died, "conn"), "before: collected %s", res.died);
    graph_result_free(&res);
    GH_ASSERT_NO_FINALIZATION_CYCLES();
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("stages");
    tcase_set_timeout(tc, GH_TEST_TIMEOUT);
    tcase_add_loop_test(tc, test_graph_release, 0, 20);
    tcase_add_loop_test(tc, test_graph_before, 0, 20);
    suite_add_tcase(s, tc);
    return s;
}
