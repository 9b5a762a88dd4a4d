/*
 * examples/objmodel.c: a walk through gchttp's object model.
 *
 * Builds a toy connection graph out of typed GC objects:
 *
 *     conn -> reader -> buffer (atomic bytes)
 *     conn <-> response            (a cycle: no-order finalizers collect it)
 *     notifier ~> response         (weak, short link: "still in use?")
 *     notifier ~> conn             (weak, long link: "really reclaimed?")
 *
 * and prints, step by step, the live objects per type, the graph as Graphviz DOT, and
 * what happens to the weak references when the response and then the connection are
 * dropped and collected.
 *
 *     ./examples/objmodel            run the walk-through
 *     ./examples/objmodel | ...      the DOT block can be cut out and fed to `dot -Tsvg`
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gchttp.h>

struct conn;

struct reader {
    size_t pos, len; /* integers: not scanned */
    char *buf;       /* atomic storage from gh_bytes_new */
};
static const size_t reader_ptrs[] = {offsetof(struct reader, buf)};
static const char *const reader_names[] = {"buf"};
static gh_type_t reader_type =
    GH_TYPE_INIT_NAMED("reader", struct reader, reader_ptrs, reader_names);

struct response {
    int status;
    struct conn *conn; /* back edge of the conn <-> response cycle */
};
static const size_t response_ptrs[] = {offsetof(struct response, conn)};
static const char *const response_names[] = {"conn"};
static gh_type_t response_type =
    GH_TYPE_INIT_NAMED("response", struct response, response_ptrs, response_names);

struct conn {
    int fd; /* a plain int; a real server would hold a gh_fd_t */
    struct reader *reader;
    struct response *resp;
};
static const size_t conn_ptrs[] = {offsetof(struct conn, reader), offsetof(struct conn, resp)};
static const char *const conn_names[] = {"reader", "resp"};
static gh_type_t conn_type = GH_TYPE_INIT_NAMED("conn", struct conn, conn_ptrs, conn_names);

/* A long-lived observer in static storage. Its weak refs keep nothing alive. */
static struct {
    gh_weak_t resp; /* short link */
    gh_weak_t conn; /* long link */
} notifier = {GH_WEAK_INIT, GH_WEAK_INIT};

/* The program's only strong root for the graph. */
static struct conn *g_conn;

static void print_type(gh_type_t *t, void *data)
{
    (void)data;
    gh_type_stats_t st;
    gh_type_stats(t, &st);
    printf("  %-10s allocated %3lu  finalized %3lu  live %3ld  (%lu bytes allocated)\n", st.name,
           st.allocated, st.finalized, st.live, st.bytes);
}

static void print_counts(const char *when)
{
    printf("\nLive objects per type, %s:\n", when);
    gh_type_foreach(print_type, NULL);
}

static void print_weak(void)
{
    printf("  notifier.resp (short link): %s\n",
           gh_weak_is_cleared(&notifier.resp) ? "cleared" : "set");
    printf("  notifier.conn (long link):  %s\n",
           gh_weak_is_cleared(&notifier.conn) ? "cleared" : "set");
}

/* Out of memory or a failed weak link ends the demo with a message. */
static void *need(void *p)
{
    if (!p) {
        fprintf(stderr, "objmodel: out of memory\n");
        exit(EXIT_FAILURE);
    }
    return p;
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "objmodel: %s: %s\n", what, gh_strerror(rc));
        exit(EXIT_FAILURE);
    }
}

/* Built in its own frame so no stale pointer to the graph is left in main's. */
__attribute__((noinline)) static void build(void)
{
    struct conn *c = need(gh_obj_new(&conn_type));
    c->fd = 7;
    c->reader = need(gh_obj_new(&reader_type));
    c->reader->buf = need(gh_bytes_new(gh_bytes_good_size(4096)));
    c->reader->len = 0;
    c->resp = need(gh_obj_new(&response_type));
    c->resp->status = 200;
    c->resp->conn = c;
    check(gh_weak_set(&notifier.resp, c->resp), "weak link to the response");
    check(gh_weak_set_long(&notifier.conn, c), "long link to the conn");
    g_conn = c;
}

__attribute__((noinline)) static void drop_response(void)
{
    g_conn->resp = NULL;
}

/* The next request's response: the conn <-> response cycle exists again. */
__attribute__((noinline)) static void attach_response(void)
{
    struct response *r = need(gh_obj_new(&response_type));
    r->status = 404;
    r->conn = g_conn;
    g_conn->resp = r;
    check(gh_weak_set(&notifier.resp, r), "weak link to the response");
}

__attribute__((noinline)) static void drop_conn(void)
{
    g_conn = NULL;
}

/* Collect until the weak ref clears, at most 4 rounds; returns the collections used. */
static int collect_until_cleared(gh_weak_t *w)
{
    int n = 0;
    for (int round = 0; round < 4 && !gh_weak_is_cleared(w); round++) {
        gh_gc_collect(2);
        n += 2;
    }
    return n;
}

static void usage(FILE *out)
{
    fputs("usage: objmodel [--help]\n"
          "\n"
          "Walks through gchttp's GC object model: builds a toy conn/reader/buffer graph\n"
          "with a conn <-> response cycle and a notifier holding weak references, prints\n"
          "live objects per type and the graph in Graphviz DOT, then drops the response\n"
          "and the connection and shows what the collector and the weak refs report.\n",
          out);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "objmodel: unknown argument '%s'\n\n", argv[i]);
        usage(stderr);
        return 2;
    }

    gh_gc_init();
    gh_gc_set_finalize_on_demand(1); /* finalizers run only inside gh_gc_collect */
    gh_obj_set_accounting(1);        /* count finalized objects per type */

    printf("1. Build: conn -> reader -> buffer, conn <-> response, notifier ~> response.\n");
    build();
    gh_gc_collect(2);
    print_counts("after building (and collecting: everything is reachable)");
    print_weak();

    printf("\n2. The graph reachable from conn (Graphviz DOT):\n\n");
    int nodes = gh_gc_write_dot(stdout, "objmodel", g_conn, 0);
    printf("\n   %d nodes. Edges are the pointer fields declared in each type; the\n"
           "   integer fields (fd, pos, len) are not scanned, and the buffer is atomic.\n",
           nodes);

    printf("\n3. Drop the response (conn->resp = NULL) and collect.\n");
    drop_response();
    gh_gc_scrub_stack();
    int used = collect_until_cleared(&notifier.resp);
    printf("   After %d collections:\n", used);
    print_weak();
    print_counts("after dropping the response");

    printf("\n4. Attach a second response (conn <-> response again), then drop the\n"
           "   connection and collect: the whole cycle is unreachable.\n");
    attach_response();
    print_weak();
    drop_conn();
    /* attach_response's dead frame still holds the conn and the response: stale stack
     * slots are roots to a conservative collector. Zero them before collecting. */
    gh_gc_scrub_stack();
    used = collect_until_cleared(&notifier.conn);
    printf("   After %d collections:\n", used);
    print_weak();
    print_counts("after dropping the connection");

    unsigned long cycles = 0;
    unsigned long warnings = gh_gc_warnings(&cycles);
    size_t bytes = 0;
    size_t objects = gh_gc_live_objects(&bytes);
    printf("\nCollector: %zu objects / %zu bytes live in the whole heap, %lu warnings, "
           "%lu finalization cycles.\n",
           objects, bytes, warnings, cycles);
    printf("The conn <-> response cycle was collected because gchttp registers its\n"
           "finalizers without ordering (GC_register_finalizer_no_order).\n");
    return 0;
}
