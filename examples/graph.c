/*
 * examples/graph.c: pictures of one connection's object graph, for each hijack stage of
 * the retention study (README "Retention study", lib/hijack.c).
 *
 * For each stage it starts a server, opens one connection and sends one request whose
 * handler reads the small body, asks for the request context, answers
 * "101 Switching Protocols" and hijacks, like a WebSocket upgrade. It draws three moments:
 *
 *   (a) the handler is running, right before the hijack; root: the connection
 *       (w->conn), so the whole per-connection graph shows
 *   (b) right after the hijack; root: what the handler keeps, an object of the small
 *       type "user" with the three fields netConn, reader and writer
 *   (c) the handler returned, its worker is idle, two collections ran; same root
 *
 * and (a) once more, marked with what each of (a)'s objects became at (c) (a probe,
 * gh_probe_new, watches every object of (a) without retaining it): collected (grey,
 * dashed), still reachable from what the user holds (red), or alive for another reason
 * (black: the server, which is not followed).
 *
 * Files, per stage S in DIR: S-a.dot, S-b.dot, S-c.dot, S-a-marked.dot and S.dot (the
 * three moments side by side, (a) marked). With Graphviz's `dot` on PATH they are also
 * rendered as SVG (default) or PNG. A one-line summary per stage says what died.
 *
 * The walker below mirrors gh_gc_write_dot (gchttp/gc.h: typed pointer fields, labelled
 * with the type's field names) and adds two things the library walker leaves out: it
 * keeps the nodes, as hidden pointers in malloc'd memory that the collector does not
 * scan, so (a) can be drawn again later without keeping anything alive, and it follows
 * the words of untyped scanned blocks (a context's children array) as the collector does.
 * It does not follow the server object (its connection table would pull in everything).
 *
 * This example includes lib/internal.h for one thing: w->conn, the root of (a).
 *
 * Built with -DGRAPH_NO_MAIN, it is the core of tests/test-graph.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gc/gc.h>
#include <gc/gc_inline.h> /* GC_I_PTRFREE */
#include <gc/gc_mark.h>   /* GC_get_kind_and_size */

#include <gchttp.h>

#include "ex-common.h"
#include "httpc.h"
#include "../lib/internal.h" /* struct gh_response_s: w->conn */
#include "graph.h"

extern char **environ;

/* ---- a graph kept outside the collector's sight ---------------------------------------- */

#define GRAPH_MAX_NODES 256
#define GRAPH_MAX_WORDS 64 /* words followed in an untyped scanned block */

typedef struct gnode {
    GC_hidden_pointer base; /* hidden: this table must not keep the object alive */
    char label[48];         /* type name, "bytes" (atomic) or "gc" (untyped, scanned) */
    size_t size;            /* GC_size */
    int typed;
    int leaf; /* drawn, not followed (the server) */
} gnode_t;

typedef struct gedge {
    int from, to;
    char label[24];
} gedge_t;

typedef struct graph {
    gnode_t *n;
    size_t nn;
    gedge_t *e;
    size_t ne, cape;
} graph_t;

static int graph_find(const graph_t *g, const void *base)
{
    GC_hidden_pointer h = GC_HIDE_POINTER(base);
    for (size_t i = 0; i < g->nn; i++)
        if (g->n[i].base == h)
            return (int)i;
    return -1;
}

/* The user pointer of a typed object (what gh_obj_new returned), or NULL. */
static void *typed_ptr(void *base, void *seen, gh_type_t **t)
{
    if (seen && (*t = gh_obj_type(seen)) != NULL)
        return seen;
    /* The object header is two words (gc/internal.h); gh_obj_type checks it. */
    void *p = (char *)base + 2 * sizeof(void *);
    if ((*t = gh_obj_type(p)) != NULL)
        return p;
    return NULL;
}

static int graph_add(graph_t *g, void *base, void *seen)
{
    if (g->nn >= GRAPH_MAX_NODES)
        return -1;
    gnode_t *n = &g->n[g->nn];
    memset(n, 0, sizeof *n);
    n->base = GC_HIDE_POINTER(base);
    size_t sz = 0;
    int kind = GC_get_kind_and_size(base, &sz);
    n->size = sz;
    gh_type_t *t = NULL;
    if (typed_ptr(base, seen, &t)) {
        n->typed = 1;
        snprintf(n->label, sizeof n->label, "%s", t->name ? t->name : "?");
        n->leaf = t->name && !strcmp(t->name, "server");
    } else {
        snprintf(n->label, sizeof n->label, "%s", kind == GC_I_PTRFREE ? "bytes" : "gc");
        n->leaf = kind == GC_I_PTRFREE;
    }
    return (int)g->nn++;
}

static void graph_edge(graph_t *g, int from, void *q, const char *label)
{
    void *qb = q ? GC_base(q) : NULL;
    if (!qb)
        return;
    int to = graph_find(g, qb);
    if (to < 0 && (to = graph_add(g, qb, q)) < 0)
        return;
    if (g->ne == g->cape) {
        size_t cap = g->cape ? 2 * g->cape : 64;
        gedge_t *e = realloc(g->e, cap * sizeof *e);
        if (!e)
            return;
        g->e = e;
        g->cape = cap;
    }
    gedge_t *e = &g->e[g->ne++];
    e->from = from;
    e->to = to;
    snprintf(e->label, sizeof e->label, "%s", label);
}

/* Breadth-first from root, through typed pointer fields and the words of untyped
 * scanned blocks. Called while root is reachable (the handler's stack, a static). */
__attribute__((noinline)) static int graph_walk(graph_t *g, const void *root)
{
    memset(g, 0, sizeof *g);
    g->n = calloc(GRAPH_MAX_NODES, sizeof *g->n);
    void *rb = root ? GC_base((void *)root) : NULL;
    if (!g->n || !rb)
        return -1;
    graph_add(g, rb, (void *)root);
    for (size_t i = 0; i < g->nn; i++) {
        if (g->n[i].leaf)
            continue;
        char *base = GC_REVEAL_POINTER(g->n[i].base);
        gh_type_t *t = NULL;
        char *obj = typed_ptr(base, NULL, &t);
        if (obj) {
            for (size_t j = 0; j < t->n_ptrs; j++) {
                char off[24];
                snprintf(off, sizeof off, "+%zu", t->ptr_offsets[j]);
                graph_edge(g, (int)i, *(void *volatile *)(obj + t->ptr_offsets[j]),
                           t->ptr_names && t->ptr_names[j] ? t->ptr_names[j] : off);
            }
        } else {
            size_t words = g->n[i].size / sizeof(void *);
            for (size_t j = 0; j < words && j < GRAPH_MAX_WORDS; j++) {
                char idx[24];
                snprintf(idx, sizeof idx, "[%zu]", j);
                graph_edge(g, (int)i, ((void *volatile *)base)[j], idx);
            }
        }
    }
    return (int)g->nn;
}

static void graph_free(graph_t *g)
{
    free(g->n);
    free(g->e);
    memset(g, 0, sizeof *g);
}

/* ---- DOT --------------------------------------------------------------------------------- */

/* What became of each node of (a) at (c). */
enum { FATE_NONE = 0, FATE_DEAD, FATE_HELD, FATE_ALIVE };

/* Per-connection objects of the server: in (b) and (c) they should not be there. */
static int server_side(const char *label)
{
    static const char *const names[] = {"conn",    "connReader", "response", "responseExtra",
                                        "Request", "body",       "context"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(label, names[i]))
            return 1;
    return 0;
}

/* Nodes and edges of g, ids prefixed with `pfx` (so several graphs share one file). */
static void dot_body(FILE *f, const graph_t *g, const char *pfx, const int *fate, int mark_server)
{
    for (size_t i = 0; i < g->nn; i++) {
        const gnode_t *n = &g->n[i];
        fprintf(f, "  %sn%zu [label=\"%s\\n%zu B%s\"", pfx, i, n->label, n->size,
                n->typed && n->leaf ? "\\n(not followed)" : "");
        if (!n->typed)
            fputs(", shape=ellipse", f);
        if (i == 0)
            fputs(", penwidth=2.5", f);
        int fa = fate ? fate[i] : FATE_NONE;
        if (fa == FATE_DEAD)
            fputs(", style=dashed, color=grey60, fontcolor=grey50", f);
        else if (fa == FATE_HELD || (mark_server && server_side(n->label)))
            fputs(", style=filled, fillcolor=\"#f4b6b6\", color=\"#b01c1c\"", f);
        fputs("];\n", f);
    }
    for (size_t i = 0; i < g->ne; i++) {
        const gedge_t *e = &g->e[i];
        fprintf(f, "  %sn%d -> %sn%d [label=\"%s\"", pfx, e->from, pfx, e->to, e->label);
        /* An edge from or to a collected object no longer holds anything. */
        if (fate && (fate[e->from] == FATE_DEAD || fate[e->to] == FATE_DEAD))
            fputs(", style=dashed, color=grey60, fontcolor=grey50", f);
        fputs("];\n", f);
    }
}

static const char dot_head[] = "  graph [fontname=\"Helvetica\", labelloc=t, fontsize=16];\n"
                               "  node [shape=box, fontname=\"monospace\", fontsize=11];\n"
                               "  edge [fontname=\"monospace\", fontsize=9];\n";

static void dot_one(FILE *f, const char *name, const char *title, const graph_t *g, const int *fate,
                    int mark_server)
{
    fprintf(f, "digraph \"%s\" {\n%s  label=\"%s\";\n", name, dot_head, title);
    dot_body(f, g, "", fate, mark_server);
    fputs("}\n", f);
}

/* ---- one stage ------------------------------------------------------------------------ */

/* What the handler keeps: a gh type, so the walkers draw it with named edges. */
typedef struct user_hold {
    gh_netconn_t *netConn;
    gh_reader_t *reader;
    gh_writer_t *writer;
} user_hold_t;
static const size_t user_ptrs[] = {offsetof(user_hold_t, netConn), offsetof(user_hold_t, reader),
                                   offsetof(user_hold_t, writer)};
static const char *const user_names[] = {"netConn", "reader", "writer"};
static gh_type_t user_type = GH_TYPE_INIT_NAMED("user", user_hold_t, user_ptrs, user_names);

/* State shared with the handler. Statics are roots: `held` keeps the user's objects,
 * `probes` (a scanned array of atomic probes) keeps the probes and nothing else. */
static struct {
    graph_t a, b;
    int hijack_rc;
    int done; /* atomic: the handler finished its work */
} run;
static user_hold_t *held;
static gh_probe_t **probes;

static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    char buf[64];
    (void)gh_request_context(r); /* a handler that watches cancellation */
    while (gh_request_read(r, buf, sizeof buf) > 0)
        ;
    gh_response_header_set(w, "Upgrade", "example");
    gh_response_header_set(w, "Connection", "Upgrade");
    gh_response_write_header(w, 101);

    /* (a): the whole connection, right before the hijack. */
    if (graph_walk(&run.a, w->conn) > 0) {
        probes = gh_ptrs_new(run.a.nn);
        for (size_t i = 0; probes && i < run.a.nn; i++)
            probes[i] = gh_probe_new(GC_REVEAL_POINTER(run.a.n[i].base));
    }

    gh_netconn_t *nc = NULL;
    gh_bufrw_t rw = {0, 0};
    run.hijack_rc = gh_response_hijack(w, &nc, &rw);
    user_hold_t *u = gh_obj_new(&user_type);
    if (u && run.hijack_rc == 0) {
        u->netConn = nc;
        u->reader = rw.r;
        u->writer = rw.w;
        held = u;
        /* (b): what the user holds, right after the hijack. */
        graph_walk(&run.b, u);
    } else if (nc) {
        gh_netconn_close(nc);
    }
    __atomic_store_n(&run.done, 1, __ATOMIC_SEQ_CST);
}


/* Wait (bounded) for the handler to finish and every worker to be idle again: its
 * stack was scrubbed after the request. */
static int wait_idle(gh_server_t *s)
{
    gh_time_t end = gh_now() + 10 * GH_SEC;
    while (gh_now() < end) {
        gh_server_stats_t st;
        gh_server_stats(s, &st);
        if (__atomic_load_n(&run.done, __ATOMIC_SEQ_CST) && st.hijacked >= 1 &&
            st.active_conns == 0 && st.idle_workers == st.workers)
            return 0;
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL); /* polling a condition in a bounded loop */
    }
    return -1;
}

static char *dot_string(void (*fn)(FILE *, void *), void *arg)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f)
        return NULL;
    fn(f, arg);
    if (fclose(f) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

typedef struct emit_ctx {
    const char *stage;
    int which;
    const graph_t *c;
    const int *fate;
} emit_ctx_t;

static void emit(FILE *f, void *arg)
{
    const emit_ctx_t *x = arg;
    char name[64], title[256];
    switch (x->which) {
    case GRAPH_A:
        snprintf(name, sizeof name, "%s (a)", x->stage);
        snprintf(title, sizeof title, "stage %s (a): handler running, before hijack (root: conn)",
                 x->stage);
        dot_one(f, name, title, &run.a, NULL, 0);
        break;
    case GRAPH_B:
        snprintf(name, sizeof name, "%s (b)", x->stage);
        snprintf(title, sizeof title,
                 "stage %s (b): right after hijack (root: what the user holds)", x->stage);
        dot_one(f, name, title, &run.b, NULL, 1);
        break;
    case GRAPH_C:
        snprintf(name, sizeof name, "%s (c)", x->stage);
        snprintf(title, sizeof title,
                 "stage %s (c): handler returned, 2 collections (root: what the user holds)",
                 x->stage);
        dot_one(f, name, title, x->c, NULL, 1);
        break;
    case GRAPH_A_MARKED:
        snprintf(name, sizeof name, "%s (a) marked", x->stage);
        snprintf(title, sizeof title,
                 "stage %s: (a) as it ended at (c): grey dashed = collected, red = still "
                 "reachable from what the user holds",
                 x->stage);
        dot_one(f, name, title, &run.a, x->fate, 0);
        break;
    case GRAPH_ALL:
        fprintf(f, "digraph \"%s\" {\n%s  label=\"hijack stage %s\";\n", x->stage, dot_head,
                x->stage);
        fputs("  subgraph cluster_a {\n  label=\"(a) handler running, before hijack\\n"
              "grey dashed: collected by (c); red: reachable from the user at (c)\";\n",
              f);
        dot_body(f, &run.a, "a", x->fate, 0);
        fputs("  }\n  subgraph cluster_b {\n  label=\"(b) right after hijack\\n"
              "root: what the user holds\";\n",
              f);
        dot_body(f, &run.b, "b", NULL, 1);
        fputs("  }\n  subgraph cluster_c {\n  label=\"(c) handler returned, 2 collections\\n"
              "root: what the user holds\";\n",
              f);
        dot_body(f, x->c, "c", NULL, 1);
        fputs("  }\n}\n", f);
        break;
    }
}

static void lib_emit(FILE *f, void *arg)
{
    if (gh_gc_write_dot(f, "c", arg, 0) < 0)
        fputs("/* gh_gc_write_dot failed */\n", f); /* DOT allows C comments */
}

static void append_name(char *buf, size_t cap, const char *label)
{
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s%s", len ? " " : "", label);
}

/* (c), probes and the texts; a separate frame from the one that talked to the server. */
__attribute__((noinline)) static int finish_stage(const char *stage, graph_result_t *res)
{
    graph_t c;
    gh_gc_collect(2);
    if (graph_walk(&c, held) < 0)
        return -1;
    res->lib_dot_c = dot_string(lib_emit, held);
    int *fate = calloc(run.a.nn ? run.a.nn : 1, sizeof *fate);
    if (!fate) {
        graph_free(&c);
        return -1;
    }
    for (size_t i = 0; i < run.a.nn; i++) {
        const gnode_t *n = &run.a.n[i];
        if (probes && probes[i] && gh_probe_unreachable(probes[i])) {
            fate[i] = FATE_DEAD;
            res->n_dead++;
            if (n->typed)
                append_name(res->died, sizeof res->died, n->label);
        } else if (graph_find(&c, GC_REVEAL_POINTER(n->base)) >= 0) {
            fate[i] = FATE_HELD;
            res->n_held++;
            if (n->typed)
                append_name(res->kept, sizeof res->kept, n->label);
        } else {
            fate[i] = FATE_ALIVE;
        }
    }
    res->n_a = (int)run.a.nn;
    res->n_b = (int)run.b.nn;
    res->n_c = (int)c.nn;
    for (int k = 0; k < GRAPH_N; k++) {
        emit_ctx_t x = {stage, k, &c, fate};
        res->dot[k] = dot_string(emit, &x);
        if (!res->dot[k]) {
            free(fate);
            graph_free(&c);
            return -1;
        }
    }
    free(fate);
    graph_free(&c);
    return 0;
}

void graph_result_free(graph_result_t *res)
{
    for (int k = 0; k < GRAPH_N; k++)
        free(res->dot[k]);
    free(res->lib_dot_c);
    memset(res, 0, sizeof *res);
}

/* Run one stage: server, one hijacked connection, the three moments. gh_gc_init() and
 * finalize-on-demand must be set up by the caller. Returns 0 or -1 (message on stderr). */
int graph_run(gh_hijack_stage_t stage, const char *name, graph_result_t *res)
{
    memset(res, 0, sizeof *res);
    graph_free(&run.a);
    graph_free(&run.b);
    run.hijack_rc = -1;
    __atomic_store_n(&run.done, 0, __ATOMIC_SEQ_CST);
    held = NULL;
    probes = NULL;

    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = on_request;
    cfg.hijack_stage = stage;
    cfg.max_workers = 1;
    gh_server_t *s;
    if (gh_server_new(&s, &cfg) < 0 || gh_server_listen(s, "127.0.0.1", 0) < 0 ||
        gh_server_start(s) < 0) {
        fprintf(stderr, "graph: cannot start a server\n");
        return -1;
    }
    int rc = -1;
    int fd = hc_connect(gh_server_port(s, 0));
    static const char req[] = "POST /upgrade HTTP/1.1\r\nHost: graph\r\nUpgrade: example\r\n"
                              "Connection: Upgrade\r\nContent-Length: 4\r\n\r\nping";
    if (fd < 0 || hc_send_all(fd, req, sizeof req - 1) < 0)
        fprintf(stderr, "graph: cannot send the request\n");
    else if (wait_idle(s) < 0)
        fprintf(stderr, "graph: the handler did not finish\n");
    else if (run.hijack_rc != 0 || !held)
        fprintf(stderr, "graph: hijack failed (%d)\n", run.hijack_rc);
    else if (finish_stage(name, res) < 0)
        fprintf(stderr, "graph: out of memory\n");
    else
        rc = 0;
    if (held)
        gh_netconn_close(held->netConn);
    held = NULL;
    probes = NULL;
    if (fd >= 0)
        close(fd);
    gh_server_close(s);
    if (rc < 0)
        graph_result_free(res);
    return rc;
}

#ifndef GRAPH_NO_MAIN

static const char *const graph_suffix[GRAPH_N] = {"-a", "-b", "-c", "-a-marked", ""};

static const struct {
    const char *name;
    gh_hijack_stage_t stage;
} graph_stages[] = {
    {"before", GH_HIJACK_BEFORE},           {"writer", GH_HIJACK_WRITER},
    {"lazy-notify", GH_HIJACK_LAZY_NOTIFY}, {"reader", GH_HIJACK_READER},
    {"release", GH_HIJACK_RELEASE},
};
#define GRAPH_N_STAGES (sizeof graph_stages / sizeof graph_stages[0])

/* Graphviz's dot on PATH? */
static int have_dot(void)
{
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char dir[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < sizeof dir - 5) {
            memcpy(dir, path, n);
            memcpy(dir + n, "/dot", 5);
            if (access(dir, X_OK) == 0)
                return 1;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return 0;
}

static int render(const char *dotfile, const char *fmt)
{
    char out[4096], flag[16];
    snprintf(out, sizeof out, "%.*s.%s", (int)(strlen(dotfile) - 4), dotfile, fmt);
    snprintf(flag, sizeof flag, "-T%s", fmt);
    char *argv[] = {"dot", flag, "-o", out, (char *)dotfile, NULL};
    pid_t pid;
    if (posix_spawnp(&pid, "dot", NULL, NULL, argv, environ) != 0)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: graph [--stage S]... [--out DIR] [--format dot|svg|png]\n"
            "Draw one hijacked connection's object graph at three moments, for each hijack\n"
            "stage (before, writer, lazy-notify, reader, release; default: all five):\n"
            "  (a) handler running, right before the hijack (root: the connection)\n"
            "  (b) right after the hijack (root: the netConn, reader and writer the user holds)\n"
            "  (c) handler returned, two collections (same root)\n"
            "and (a) again with what became of each object at (c): grey dashed = collected,\n"
            "red = still reachable from what the user holds.\n"
            "Writes DIR/S-a.dot, S-b.dot, S-c.dot, S-a-marked.dot and S.dot (all three side by\n"
            "side). With Graphviz's dot on PATH (Debian: apt-get install graphviz) each is also\n"
            "rendered (default svg); without it only DOT is written.\n"
            "  --stage S    only this stage (repeatable)\n"
            "  --out DIR    output directory (default: graphs, created if needed)\n"
            "  --format F   dot (no rendering), svg or png\n");
}

int main(int argc, char **argv)
{
    const char *dir = "graphs", *fmt = NULL;
    int only[GRAPH_N_STAGES] = {0}, any_only = 0;
    static const struct option opts[] = {{"stage", 1, 0, 's'},
                                         {"out", 1, 0, 'o'},
                                         {"format", 1, 0, 'f'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 's': {
            size_t i;
            for (i = 0; i < GRAPH_N_STAGES; i++)
                if (!strcmp(optarg, graph_stages[i].name))
                    break;
            if (i == GRAPH_N_STAGES) {
                fprintf(stderr, "graph: unknown stage '%s'\n", optarg);
                return 2;
            }
            only[i] = any_only = 1;
            break;
        }
        case 'o':
            dir = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "dot") && strcmp(optarg, "svg") && strcmp(optarg, "png")) {
                fprintf(stderr, "graph: unknown format '%s'\n", optarg);
                return 2;
            }
            fmt = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    int dot_ok = have_dot();
    if (!fmt)
        fmt = dot_ok ? "svg" : "dot";
    int want_render = strcmp(fmt, "dot") != 0;
    if (want_render && !dot_ok) {
        fprintf(stderr,
                "graph: Graphviz's dot is not on PATH: writing DOT only.\n"
                "  Install it (Debian: sudo apt-get install graphviz), or render by "
                "hand: dot -T%s -o FILE.%s FILE.dot\n",
                fmt, fmt);
        want_render = 0;
    }
    if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
        fprintf(stderr, "graph: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }

    gh_gc_init();
    gh_gc_set_finalize_on_demand(1);
    int status = 0;
    for (size_t si = 0; si < GRAPH_N_STAGES; si++) {
        if (any_only && !only[si])
            continue;
        const char *name = graph_stages[si].name;
        graph_result_t res;
        if (graph_run(graph_stages[si].stage, name, &res) < 0)
            return 1;
        for (int k = 0; k < GRAPH_N; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s%s.dot", dir, name, graph_suffix[k]);
            if (write_file(path, res.dot[k]) < 0) {
                fprintf(stderr, "graph: cannot write %s\n", path);
                return 1;
            }
            if (want_render && render(path, fmt) < 0) {
                fprintf(stderr, "graph: dot failed on %s\n", path);
                status = 1;
            }
        }
        printf("stage %-11s (a) %2d objects, (b) %2d, (c) %2d; of (a): %2d collected, %2d still "
               "held by the user\n",
               name, res.n_a, res.n_b, res.n_c, res.n_dead, res.n_held);
        printf("  collected: %s\n  held:      %s\n", res.died[0] ? res.died : "-",
               res.kept[0] ? res.kept : "-");
        graph_result_free(&res);
    }
    printf("\nWrote %s/STAGE{-a,-b,-c,-a-marked,}.dot%s%s.\n", dir, want_render ? " and ." : "",
           want_render ? fmt : "");
    if (!want_render)
        printf("Render with Graphviz (Debian: apt-get install graphviz): "
               "dot -Tsvg -o %s/release.svg %s/release.dot\n",
               dir, dir);
    return status;
}

#endif /* GRAPH_NO_MAIN */
