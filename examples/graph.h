/*
 * examples/graph.h: the core of examples/graph.c, shared with tests/test-graph.c
 * (which builds graph.c with -DGRAPH_NO_MAIN).
 */
#ifndef GH_EXAMPLES_GRAPH_H
#define GH_EXAMPLES_GRAPH_H

#include <gchttp.h>

/* The DOT texts of one stage: the three moments, (a) marked with what became of each
 * object at (c), and all of it side by side. */
enum { GRAPH_A, GRAPH_B, GRAPH_C, GRAPH_A_MARKED, GRAPH_ALL, GRAPH_N };

typedef struct graph_result {
    char *dot[GRAPH_N]; /* malloc'd DOT texts */
    char *lib_dot_c;    /* gh_gc_write_dot from (c)'s root, for comparison */
    int n_a, n_b, n_c;  /* objects drawn at each moment */
    int n_dead;         /* of (a)'s objects: unreachable at (c) */
    int n_held;         /* of (a)'s objects: reachable from the user's root at (c) */
    char died[512];     /* types of (a)'s typed objects unreachable at (c), space-separated */
    char kept[512];     /* types of (a)'s typed objects the user still reaches at (c) */
} graph_result_t;

/* Run one stage: a server, one connection whose handler hijacks, the three moments.
 * The caller has called gh_gc_init() and gh_gc_set_finalize_on_demand(1).
 * Returns 0, or -1 with a message on stderr. Not reentrant (one stage at a time). */
int graph_run(gh_hijack_stage_t stage, const char *name, graph_result_t *res);
void graph_result_free(graph_result_t *res);

#endif
