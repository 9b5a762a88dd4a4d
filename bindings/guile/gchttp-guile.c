/*
 * bindings/guile/gchttp-guile.c: a Guile 3.0 extension over gchttp.
 *
 *   (load-extension "libguile-gchttp" "init_gchttp")   ; or (use-modules (gchttp))
 *
 * Guile and gchttp share one bdwgc heap (Debian's libguile-3.0 links libgc.so.1, as
 * libgchttp does), so this file follows three rules; README.md explains them.
 *
 *  1. GC set-up. Guile initialised the collector before any extension can load, with
 *     all-interior-pointers OFF and finalize-on-demand ON. gh_gc_init() sees
 *     GC_is_init_called() and does not call GC_INIT again; Guile's settings stay. With
 *     interior pointers off, the collector only recognises a heap word that points at
 *     an object's start or at a registered displacement; every gchttp object pointer
 *     is base + header (gh_obj_new), so that displacement must be registered. Without
 *     it, the server's objects, reachable only through each other, are collected under
 *     the running server. gh_gc_init() registers it (gc/gc.c); init_gchttp registers
 *     it again, measured on a real object, so an older libgchttp is covered too.
 *  2. Threads. The handler runs on a gchttp worker (started with GC_pthread_create,
 *     hence already registered with the collector) and enters Guile with
 *     scm_with_guile. Guile's GC_register_my_thread then returns GC_DUPLICATE, which
 *     Guile ignores; the thread becomes a Guile thread once and later calls only
 *     re-enter Guile mode. On thread exit Guile re-registers, runs its exit hooks and
 *     unregisters; gh_server_close joins the workers after that.
 *  3. Reachability. The Scheme handler is stored in handler_data, a gh_ptrs_new block
 *     (scanned conservatively) that the server keeps alive through a traced field. An
 *     SCM for a heap object is a plain pointer into the same heap, so the server keeps
 *     the procedure alive for as long as the server itself lives, and no longer:
 *     scm_gc_protect_object (a permanent root until unprotected) is not needed.
 *     gchttp objects held by Scheme objects sit in foreign-object slots, which the
 *     collector scans (Guile allocates foreign objects as ordinary scanned blocks).
 *     The per-request wrapper is cleared when the handler returns, so nothing Scheme
 *     keeps reaches the server's request, response or connection afterwards.
 */
#ifndef GC_THREADS
#define GC_THREADS
#endif
#include <gc/gc.h>
#include <libguile.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <unistd.h>

#include <gchttp.h>

#define GH_GUILE_EXPORT __attribute__((visibility("default")))

GH_GUILE_EXPORT void init_gchttp(void);

static SCM server_type, request_type, conn_type, probe_type;
static size_t obj_displacement;

/* ---- errors -------------------------------------------------------------------------- */

/* Raise a &gchttp-error condition (defined in gchttp.scm): origin who, the readable
 * message of code, and the code's name (GH_EADDRINUSE...) as its `code` field. */
static void gh_guile_error(const char *who, int code)
{
    static SCM raise_var = SCM_BOOL_F;
    if (scm_is_false(raise_var))
        raise_var = scm_permanent_object(scm_c_private_variable("gchttp", "%raise-gchttp-error"));
    scm_call_3(scm_variable_ref(raise_var), scm_from_utf8_symbol(who),
               scm_from_utf8_symbol(gh_err_name(code)), scm_from_utf8_string(gh_strerror(code)));
    abort(); /* not reached: the procedure raises */
}

/* The same for a misuse the library does not number (a request used too late...). */
static void gh_guile_misuse(const char *who, const char *msg)
{
    static SCM raise_var = SCM_BOOL_F;
    if (scm_is_false(raise_var))
        raise_var = scm_permanent_object(scm_c_private_variable("gchttp", "%raise-gchttp-error"));
    scm_call_3(scm_variable_ref(raise_var), scm_from_utf8_symbol(who), SCM_BOOL_F,
               scm_from_utf8_string(msg));
    abort();
}

/* ---- server ---------------------------------------------------------------------------- */

enum { SRV_PTR, SRV_CLOSED, SRV_NSLOTS };

static gh_server_t *server_ptr(SCM srv, const char *who)
{
    scm_assert_foreign_object_type(server_type, srv);
    gh_server_t *s = scm_foreign_object_ref(srv, SRV_PTR);
    if (!s)
        gh_guile_misuse(who, "server is not started");
    return s;
}

/* ---- the request wrapper --------------------------------------------------------------- */

/* Slots: the response and request (valid while the handler runs, NULL afterwards) and
 * whether the handler hijacked the connection. */
enum { REQ_W, REQ_R, REQ_HIJACKED, REQ_NSLOTS };

static gh_request_t *req_r(SCM req, const char *who)
{
    scm_assert_foreign_object_type(request_type, req);
    gh_request_t *r = scm_foreign_object_ref(req, REQ_R);
    if (!r)
        gh_guile_misuse(who, "request used after its handler returned");
    return r;
}

static gh_response_t *req_w(SCM req, const char *who)
{
    scm_assert_foreign_object_type(request_type, req);
    gh_response_t *w = scm_foreign_object_ref(req, REQ_W);
    if (!w)
        gh_guile_misuse(who, "request used after its handler returned");
    return w;
}

static SCM str_or_false(const char *s)
{
    return s ? scm_from_utf8_string(s) : SCM_BOOL_F;
}

static SCM req_method(SCM req)
{
    return str_or_false(gh_request_method(req_r(req, "gchttp-request-method")));
}
static SCM req_target(SCM req)
{
    return str_or_false(gh_request_target(req_r(req, "gchttp-request-target")));
}
static SCM req_proto(SCM req)
{
    return str_or_false(gh_request_proto(req_r(req, "gchttp-request-proto")));
}
static SCM req_host(SCM req)
{
    return str_or_false(gh_request_host(req_r(req, "gchttp-request-host")));
}
static SCM req_remote_addr(SCM req)
{
    return str_or_false(gh_request_remote_addr(req_r(req, "gchttp-request-remote-addr")));
}

/* The header fields in received order, as an alist of strings. */
static SCM req_headers(SCM req)
{
    gh_request_t *r = req_r(req, "gchttp-request-headers");
    size_t n = gh_request_header_count(r);
    SCM out = SCM_EOL;
    for (size_t i = n; i-- > 0;) {
        const char *name, *value;
        if (gh_request_header_at(r, i, &name, &value) == 0)
            out = scm_cons(scm_cons(scm_from_utf8_string(name), scm_from_utf8_string(value)), out);
    }
    return out;
}

static SCM req_header(SCM req, SCM name)
{
    gh_request_t *r = req_r(req, "gchttp-request-header");
    char *n = scm_to_utf8_string(name);
    const char *v = gh_request_header(r, n);
    free(n);
    return str_or_false(v);
}

/* The whole body as a bytevector (gh_request_read_all), at most max bytes (1 MiB). */
static SCM req_body(SCM req, SCM max)
{
    gh_request_t *r = req_r(req, "gchttp-request-body");
    size_t lim = SCM_UNBNDP(max) ? (size_t)1 << 20 : scm_to_size_t(max);
    char *buf = NULL;
    ssize_t n = gh_request_read_all(r, lim, &buf);
    if (n < 0)
        gh_guile_error("gchttp-request-body", (int)n);
    SCM bv = scm_c_make_bytevector((size_t)n);
    if (n > 0)
        memcpy(SCM_BYTEVECTOR_CONTENTS(bv), buf, (size_t)n);
    return bv;
}

/* ---- writing a response ---------------------------------------------------------------- */

static void set_headers(gh_response_t *w, SCM headers, const char *who)
{
    for (SCM l = headers; scm_is_pair(l); l = scm_cdr(l)) {
        SCM h = scm_car(l);
        if (!scm_is_pair(h) || !scm_is_string(scm_car(h)) || !scm_is_string(scm_cdr(h)))
            scm_wrong_type_arg_msg(who, 2, h, "pair of strings (name . value)");
        char *name = scm_to_utf8_string(scm_car(h));
        char *value = scm_to_utf8_string(scm_cdr(h));
        int rc = gh_response_header_add(w, name, value);
        free(name);
        free(value);
        if (rc < 0)
            gh_guile_error(who, rc);
    }
}

static void write_body(gh_response_t *w, SCM body, const char *who)
{
    if (scm_is_false(body) || scm_is_null(body))
        return;
    ssize_t rc;
    if (scm_is_bytevector(body)) {
        rc = gh_response_write(w, SCM_BYTEVECTOR_CONTENTS(body), SCM_BYTEVECTOR_LENGTH(body));
    } else if (scm_is_string(body)) {
        size_t len;
        char *s = scm_to_utf8_stringn(body, &len);
        rc = gh_response_write(w, s, len);
        free(s);
    } else {
        scm_wrong_type_arg_msg(who, 3, body, "string, bytevector or #f");
        return;
    }
    if (rc < 0)
        gh_guile_error(who, (int)rc);
}

static void respond(gh_response_t *w, SCM status, SCM headers, SCM body)
{
    const char *who = "gchttp handler result";
    int st = scm_to_int(status);
    set_headers(w, headers, who);
    int rc = gh_response_write_header(w, st);
    if (rc < 0)
        gh_guile_error(who, rc);
    write_body(w, body, who);
}

/* ---- hijack ----------------------------------------------------------------------------- */

/* Slots: the raw connection and the buffered reader and writer over it. The conn
 * wrapper is what keeps them alive (the server forgot them at the hijack). */
enum { CONN_NC, CONN_R, CONN_W, CONN_NSLOTS };

static SCM req_hijack(SCM req, SCM status, SCM headers)
{
    const char *who = "gchttp-hijack";
    gh_response_t *w = req_w(req, who);
    if (!SCM_UNBNDP(status) && scm_is_true(status)) {
        if (!SCM_UNBNDP(headers))
            set_headers(w, headers, who);
        int rc = gh_response_write_header(w, scm_to_int(status));
        if (rc < 0)
            gh_guile_error(who, rc);
    }
    gh_netconn_t *nc = NULL;
    gh_bufrw_t rw = {0};
    int rc = gh_response_hijack(w, &nc, &rw);
    if (rc < 0)
        gh_guile_error(who, rc);
    scm_foreign_object_signed_set_x(req, REQ_HIJACKED, 1);
    void *slots[CONN_NSLOTS] = {nc, rw.r, rw.w};
    return scm_make_foreign_object_n(conn_type, CONN_NSLOTS, slots);
}

static gh_netconn_t *conn_nc(SCM conn)
{
    scm_assert_foreign_object_type(conn_type, conn);
    return scm_foreign_object_ref(conn, CONN_NC);
}

/* The bytes [start, start + count) of bytevector bv, checked (wrong type or a range past
 * its end raise the usual Guile errors, naming who); *n is count. */
static char *bv_slice(SCM bv, SCM start, SCM count, const char *who, size_t *n)
{
    if (!scm_is_bytevector(bv))
        scm_wrong_type_arg_msg(who, 2, bv, "bytevector");
    size_t len = SCM_BYTEVECTOR_LENGTH(bv);
    size_t s = scm_to_size_t(start);
    *n = scm_to_size_t(count);
    if (s > len || *n > len - s)
        scm_out_of_range(who, count);
    return (char *)SCM_BYTEVECTOR_CONTENTS(bv) + s;
}

/* (gchttp-conn-read! conn bv start count) -> bytes read, 0 at end of stream. Buffered
 * bytes (sent after the request head) come first. */
static SCM conn_read_x(SCM conn, SCM bv, SCM start, SCM count)
{
    const char *who = "gchttp-conn-read!";
    scm_assert_foreign_object_type(conn_type, conn);
    gh_reader_t *r = scm_foreign_object_ref(conn, CONN_R);
    size_t n;
    char *p = bv_slice(bv, start, count, who, &n);
    if (n == 0)
        return scm_from_int(0);
    ssize_t got = gh_reader_read(r, p, n);
    if (got == GH_EOF)
        got = 0;
    if (got < 0)
        gh_guile_error(who, (int)got);
    return scm_from_ssize_t(got);
}

/* (gchttp-conn-write! conn bv-or-string [start count]) -> bytes written; flushed. */
static SCM conn_write_x(SCM conn, SCM data, SCM start, SCM count)
{
    const char *who = "gchttp-conn-write!";
    scm_assert_foreign_object_type(conn_type, conn);
    gh_writer_t *w = scm_foreign_object_ref(conn, CONN_W);
    ssize_t rc;
    size_t n;
    if (scm_is_string(data)) {
        char *s = scm_to_utf8_stringn(data, &n);
        rc = gh_writer_write(w, s, n);
        free(s);
    } else {
        if (!scm_is_bytevector(data))
            scm_wrong_type_arg_msg(who, 2, data, "string or bytevector");
        size_t len = SCM_BYTEVECTOR_LENGTH(data);
        size_t off = SCM_UNBNDP(start) ? 0 : scm_to_size_t(start);
        n = SCM_UNBNDP(count) ? len - (off <= len ? off : len) : scm_to_size_t(count);
        if (off > len || n > len - off)
            scm_out_of_range(who, start);
        rc = gh_writer_write(w, (const char *)SCM_BYTEVECTOR_CONTENTS(data) + off, n);
    }
    if (rc >= 0)
        rc = gh_writer_flush(w);
    if (rc < 0)
        gh_guile_error(who, (int)rc);
    return scm_from_size_t(n);
}

static SCM conn_close(SCM conn)
{
    gh_netconn_t *nc = conn_nc(conn);
    gh_writer_t *w = scm_foreign_object_ref(conn, CONN_W);
    if (w)
        (void)gh_writer_flush(w);
    return scm_from_bool(gh_netconn_close(nc) == 0);
}

static SCM conn_remote_addr(SCM conn)
{
    return str_or_false(gh_netconn_remote_addr(conn_nc(conn)));
}

/* ---- probes: does the collector reclaim the request's C objects? ----------------------- */

enum { PROBE_R, PROBE_W, PROBE_NSLOTS };

/* Watch the request and response of req without retaining them (gh_probe_new: weak
 * links). The probes are GC objects kept alive by the Scheme probe object. */
static SCM req_probe(SCM req)
{
    const char *who = "gchttp-request-probe";
    gh_probe_t *pr = gh_probe_new(req_r(req, who));
    gh_probe_t *pw = gh_probe_new(req_w(req, who));
    if (!pr || !pw)
        gh_guile_error(who, GH_ENOMEM);
    void *slots[PROBE_NSLOTS] = {pr, pw};
    return scm_make_foreign_object_n(probe_type, PROBE_NSLOTS, slots);
}

/* #t once both the request and the response were found unreachable. */
static SCM probe_collected_p(SCM probe)
{
    scm_assert_foreign_object_type(probe_type, probe);
    const gh_probe_t *pr = scm_foreign_object_ref(probe, PROBE_R);
    const gh_probe_t *pw = scm_foreign_object_ref(probe, PROBE_W);
    return scm_from_bool(gh_probe_unreachable(pr) && gh_probe_unreachable(pw));
}

/* ---- the C handler: a gchttp worker enters Guile ---------------------------------------- */

struct call {
    gh_response_t *w;
    gh_request_t *r;
    SCM proc;
    SCM req;
};

static SCM call_body(void *data)
{
    struct call *c = data;
    SCM res = scm_call_1(c->proc, c->req);
    if (scm_foreign_object_signed_ref(c->req, REQ_HIJACKED))
        return SCM_UNSPECIFIED; /* the connection is the handler's now */
    if (scm_c_nvalues(res) == 3) {
        respond(c->w, scm_c_value_ref(res, 0), scm_c_value_ref(res, 1), scm_c_value_ref(res, 2));
    } else if (scm_is_true(scm_list_p(res)) && scm_ilength(res) == 3) {
        respond(c->w, scm_car(res), scm_cadr(res), scm_caddr(res));
    } else {
        scm_error(scm_from_utf8_symbol("wrong-type-arg"), "gchttp handler",
                  "handler must return (values status headers body) or a list "
                  "(status headers body), got ~S",
                  scm_list_1(res), scm_list_1(res));
    }
    return SCM_UNSPECIFIED;
}

/* An error in the handler (or in its result): report it and answer 500 when nothing was
 * sent yet. */
static SCM call_error(void *data, SCM key, SCM args)
{
    struct call *c = data;
    SCM port = scm_current_error_port();
    scm_puts("gchttp: handler error: ", port);
    scm_call_4(scm_c_public_ref("guile", "print-exception"), port, SCM_BOOL_F, key, args);
    if (!scm_foreign_object_signed_ref(c->req, REQ_HIJACKED) && gh_response_status(c->w) == 0) {
        gh_response_header_set(c->w, "Content-Type", "text/plain; charset=utf-8");
        gh_response_write_header(c->w, 500);
        gh_response_puts(c->w, "handler error\n");
    }
    return SCM_UNSPECIFIED;
}

static void *call_in_guile(void *data)
{
    struct call *c = data;
    void *slots[REQ_NSLOTS] = {c->w, c->r, NULL};
    c->req = scm_make_foreign_object_n(request_type, REQ_NSLOTS, slots);
    scm_c_catch(SCM_BOOL_T, call_body, c, call_error, c, NULL, NULL);
    /* The wrapper may outlive the request (the handler can keep it): cut its links so
     * it never retains the server's request, response or connection. */
    scm_foreign_object_set_x(c->req, REQ_W, NULL);
    scm_foreign_object_set_x(c->req, REQ_R, NULL);
    c->req = SCM_BOOL_F;
    return NULL;
}

static void c_handler(gh_response_t *w, gh_request_t *r, void *data)
{
    /* data is the gh_ptrs_new block holding the procedure (see the top of the file). */
    struct call c = {w, r, ((SCM *)data)[0], SCM_BOOL_F};
    scm_with_guile(call_in_guile, &c);
}

/* ---- server procedures --------------------------------------------------------------------- */

static void *close_without_guile(void *s)
{
    return (void *)(intptr_t)gh_server_close(s);
}

/* (gchttp-serve host port handler [max-workers]) -> server */
static SCM serve(SCM host, SCM port, SCM handler, SCM max_workers)
{
    const char *who = "gchttp-serve";
    if (scm_is_false(scm_procedure_p(handler)))
        scm_wrong_type_arg_msg(who, 3, handler, "procedure");
    SCM *box = gh_ptrs_new(1);
    if (!box)
        gh_guile_error(who, GH_ENOMEM);
    box[0] = handler;

    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = c_handler;
    cfg.handler_data = box;
    if (!SCM_UNBNDP(max_workers))
        cfg.max_workers = scm_to_int(max_workers);
    gh_server_t *s = NULL;
    int rc = gh_server_new(&s, &cfg);
    if (rc < 0)
        gh_guile_error(who, rc);
    char *h = scm_to_utf8_string(host);
    rc = gh_server_listen(s, h, scm_to_int(port));
    free(h);
    if (rc == 0)
        rc = gh_server_start(s);
    if (rc < 0) {
        scm_without_guile(close_without_guile, s);
        gh_guile_error(who, rc);
    }
    void *slots[SRV_NSLOTS] = {s, NULL};
    return scm_make_foreign_object_n(server_type, SRV_NSLOTS, slots);
}

static SCM server_port(SCM srv)
{
    int p = gh_server_port(server_ptr(srv, "gchttp-server-port"), 0);
    if (p < 0)
        gh_guile_error("gchttp-server-port", p);
    return scm_from_int(p);
}

/* Close listeners and connections and join the server's threads. The wait runs outside
 * Guile mode: workers may be finishing a Scheme handler. */
static SCM server_close(SCM srv)
{
    gh_server_t *s = server_ptr(srv, "gchttp-close");
    scm_without_guile(close_without_guile, s);
    scm_foreign_object_signed_set_x(srv, SRV_CLOSED, 1);
    return SCM_UNSPECIFIED;
}

#define STAT(name, val) scm_cons(scm_from_utf8_symbol(name), scm_from_ulong((unsigned long)(val)))

static SCM server_stats(SCM srv)
{
    gh_server_stats_t st;
    gh_server_stats(server_ptr(srv, "gchttp-server-stats"), &st);
    return scm_list_n(STAT("accepted", st.accepted), STAT("requests", st.requests),
                      STAT("hijacked", st.hijacked), STAT("closed", st.closed),
                      STAT("open-conns", st.open_conns), STAT("workers", st.workers),
                      STAT("threads", st.threads),
                      SCM_UNDEFINED);
}

/* How the shared collector is set up, for tests and curious users. */
static SCM gc_info(void)
{
    return scm_list_n(
        scm_cons(scm_from_utf8_symbol("gc-version"), scm_from_uint(GC_get_version())),
        scm_cons(scm_from_utf8_symbol("all-interior-pointers"),
                 scm_from_bool(GC_get_all_interior_pointers())),
        scm_cons(scm_from_utf8_symbol("finalize-on-demand"),
                 scm_from_bool(GC_get_finalize_on_demand())),
        scm_cons(scm_from_utf8_symbol("obj-displacement"), scm_from_size_t(obj_displacement)),
        scm_cons(scm_from_utf8_symbol("thread-registered"),
                 scm_from_bool(GC_thread_is_registered())),
        SCM_UNDEFINED);
}

/* Run a full collection from C with gchttp's stack scrubbing (gh_gc_collect). */
static SCM collect(SCM n)
{
    gh_gc_collect(SCM_UNBNDP(n) ? 2 : scm_to_int(n));
    return SCM_UNSPECIFIED;
}

/* ---- the run-server back end: requests handed to Scheme threads ------------------------
 *
 * (web server gchttp) keeps run-server's model: the handler runs on the Scheme thread
 * that asks for the next request (the thread that called run-server, or one of the
 * #:threads loops). A gchttp pool thread that has read a request head queues it here
 * and waits, outside Guile, until a Scheme thread has written the response (response.h:
 * "one other thread at a time while the handler waits for it"). The wait is a
 * gh_ctx_wait, so a request held on the poller's thread hands the poller's role on at
 * once. Scheme threads wait for the queue on an eventfd with scm_std_select, which
 * returns early for Guile's asyncs (SIGINT for run-server), so run-server stays
 * interruptible. */

enum { BC_QUEUED, BC_CLAIMED, BC_FINISHED };
#ifndef GH_GUILE_QUEUE_SPINS
#define GH_GUILE_QUEUE_SPINS 100
#endif

/* One request on its way through Scheme.
 * Alloc:     gh_obj_new in the pool thread's handler, one per request.
 * Lifetime:  the queue or the in-flight list, the pool thread's stack, and the Scheme
 *            client object while a Scheme thread serves it. w and r are cleared when
 *            the Scheme side finishes, so a client object kept by a program reaches
 *            nothing of the server's.
 * OS state:  none (the connection is the server's, or the netconn's after a hijack).
 * Threads:   state, next: under the back end's mu. w, r: the claiming Scheme thread. */
struct bclient {
    gh_response_t *w;
    gh_request_t *r;
    gh_ctx_t *done;        /* cancelled when the Scheme side is finished */
    struct bclient *next;  /* queue or in-flight list */
    int state;
    int hijacked;
};
static const size_t bclient_ptrs[] = {offsetof(struct bclient, w), offsetof(struct bclient, r),
                                      offsetof(struct bclient, done),
                                      offsetof(struct bclient, next)};
static gh_type_t bclient_type = GH_TYPE_INIT("guile-client", struct bclient, bclient_ptrs);

/* The back end's server.
 * Alloc:     gh_obj_new by %gchttp-open.
 * Lifetime:  the Scheme server object, and the gchttp server (its handler_data).
 * OS state:  none of its own (the waiting Scheme threads sleep on eventfds of their own).
 * Threads:   queue fields under mu; s is set once before the server starts. */
struct bsrv {
    gh_server_t *s;
    struct bclient *head, *tail; /* waiting for a Scheme thread */
    struct bclient *inflight;    /* claimed, not finished */
    pthread_mutex_t mu;
    struct sleeper *sleeping;    /* Scheme threads waiting for a request (not traced:
                                  * nodes on their C stacks, no GC pointers in them) */
    int closing;
    size_t body_limit;           /* 0: none */
};
static const size_t bsrv_ptrs[] = {offsetof(struct bsrv, s), offsetof(struct bsrv, head),
                                   offsetof(struct bsrv, tail), offsetof(struct bsrv, inflight)};
static gh_type_t bsrv_type = GH_TYPE_INIT("guile-backend", struct bsrv, bsrv_ptrs);

/* A Scheme thread waiting in %gchttp-next. A new request wakes one sleeper (not all of
 * them: with #:threads 16 that was 15 wake-ups for nothing).
 * Alloc:     on the waiting thread's C stack, in %gchttp-next.
 * Lifetime:  on the back end's sleeping list only while that frame waits; it takes
 *            itself off before the frame can be left (an async may throw).
 * OS state:  fd is the thread's eventfd (thread_efd), closed when the thread exits.
 * Threads:   next and woken under the back end's mu. */
struct sleeper {
    struct sleeper *next;
    int fd;     /* the thread's eventfd */
    int woken;  /* under mu: taken off the list and signalled */
};

/* One eventfd per thread that ever waits, closed when the thread exits. */
static pthread_key_t efd_key;
static pthread_once_t efd_once = PTHREAD_ONCE_INIT;
static void efd_key_free(void *p) { close((int)(intptr_t)p - 1); }
static void efd_key_init(void) { (void)pthread_key_create(&efd_key, efd_key_free); }
static int thread_efd(void)
{
    pthread_once(&efd_once, efd_key_init);
    void *v = pthread_getspecific(efd_key);
    if (v)
        return (int)(intptr_t)v - 1;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    (void)pthread_setspecific(efd_key, (void *)(intptr_t)(fd + 1));
    return fd;
}

static SCM bsrv_type_scm, bclient_type_scm;

static void efd_set(int fd)
{
    uint64_t one = 1;
    while (write(fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}
static void efd_clear(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
}

/* The pool thread's handler: queue the request, wait until Scheme is done with it. */
static void b_handler(gh_response_t *w, gh_request_t *r, void *data)
{
    struct bsrv *b = data;
    struct bclient *c = gh_obj_new(&bclient_type);
    gh_ctx_t *done = gh_ctx_new(NULL);
    if (!c || !done) {
        gh_response_write_header(w, 503);
        return;
    }
    c->w = w;
    c->r = r;
    c->done = done;
    pthread_mutex_lock(&b->mu);
    if (b->closing) {
        pthread_mutex_unlock(&b->mu);
        gh_response_close_after(w);
        gh_response_write_header(w, 503);
        return;
    }
    if (b->tail)
        b->tail->next = c;
    else
        b->head = c;
    b->tail = c;
    /* A busy Scheme thread finds the request when it asks next: no system call. */
    struct sleeper *z = b->sleeping;
    if (z) {
        b->sleeping = z->next;
        z->woken = 1;
        efd_set(z->fd);
    }
    pthread_mutex_unlock(&b->mu);
    (void)gh_ctx_wait(done, 0);
}

static struct bsrv *bsrv_of(SCM srv, const char *who)
{
    scm_assert_foreign_object_type(bsrv_type_scm, srv);
    struct bsrv *b = scm_foreign_object_ref(srv, 0);
    if (!b)
        gh_guile_misuse(who, "server is closed");
    return b;
}

static struct bclient *bclient_of(SCM cl)
{
    scm_assert_foreign_object_type(bclient_type_scm, cl);
    return scm_foreign_object_ref(cl, 0);
}

/* w and r of a client still being served, or a condition. */
static struct bclient *bclient_live(SCM cl, const char *who)
{
    struct bclient *c = bclient_of(cl);
    if (!c->w)
        gh_guile_misuse(who, "request used after its response was sent");
    return c;
}

static gh_time_t opt_duration(SCM alist, const char *key)
{
    SCM v = scm_assq_ref(alist, scm_from_utf8_symbol(key));
    if (scm_is_false(v))
        return 0;
    if (scm_is_eq(v, scm_from_utf8_symbol("none")))
        return -1;
    double sec = scm_to_double(v);
    if (sec <= 0)
        return -1;
    return (gh_time_t)(sec * 1e9);
}

static long opt_long(SCM alist, const char *key, long dflt)
{
    SCM v = scm_assq_ref(alist, scm_from_utf8_symbol(key));
    return scm_is_false(v) ? dflt : scm_to_long(v);
}

/* (%gchttp-open options) -> server. options: an alist of
 * (addr . "host:port" | "unix:/path"), (host . h) (port . p), (fd . listening-fd),
 * (read-header-timeout . s) (read-timeout . s) (write-timeout . s) (idle-timeout . s),
 * (max-header-bytes . n) (max-body-drain . n) (workers . n) (loops . n) (body-limit . n)
 * (keep-alive? . #f). */
static SCM b_open(SCM opts)
{
    const char *who = "gchttp-open";
    struct bsrv *b = gh_obj_new(&bsrv_type);
    if (!b)
        gh_guile_error(who, GH_ENOMEM);
    pthread_mutex_init(&b->mu, NULL);
    b->body_limit = (size_t)opt_long(opts, "body-limit", 0);

    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = b_handler;
    cfg.handler_data = b;
    cfg.read_header_timeout = opt_duration(opts, "read-header-timeout");
    cfg.read_timeout = opt_duration(opts, "read-timeout");
    cfg.write_timeout = opt_duration(opts, "write-timeout");
    cfg.idle_timeout = opt_duration(opts, "idle-timeout");
    cfg.handoff_timeout = opt_duration(opts, "handoff-timeout");
    cfg.max_header_bytes = (size_t)opt_long(opts, "max-header-bytes", 0);
    cfg.max_body_drain = (size_t)opt_long(opts, "max-body-drain", 0);
    cfg.max_workers = (int)opt_long(opts, "workers", 0);
    cfg.loops = (int)opt_long(opts, "loops", 0);
    if (scm_is_eq(scm_assq_ref(opts, scm_from_utf8_symbol("keep-alive?")), SCM_BOOL_F) &&
        scm_is_true(scm_assq(scm_from_utf8_symbol("keep-alive?"), opts)))
        cfg.disable_keepalive = 1;

    gh_server_t *s = NULL;
    int rc = gh_server_new(&s, &cfg);
    if (rc < 0)
        gh_guile_error(who, rc);
    b->s = s;
    SCM fd = scm_assq_ref(opts, scm_from_utf8_symbol("fd"));
    SCM addr = scm_assq_ref(opts, scm_from_utf8_symbol("addr"));
    if (scm_is_true(fd)) {
        int d = dup(scm_to_int(fd));
        rc = d < 0 ? -errno : gh_server_listen_fd(s, d);
        if (rc < 0 && d >= 0)
            close(d);
    } else if (scm_is_true(addr)) {
        char *a = scm_to_utf8_string(addr);
        rc = gh_server_listen_addr(s, a);
        free(a);
    } else {
        SCM host = scm_assq_ref(opts, scm_from_utf8_symbol("host"));
        char *h = scm_is_true(host) ? scm_to_utf8_string(host) : NULL;
        rc = gh_server_listen(s, h ? h : "127.0.0.1", (int)opt_long(opts, "port", 8080));
        free(h);
    }
    if (rc == 0)
        rc = gh_server_start(s);
    if (rc < 0) {
        scm_without_guile(close_without_guile, s);
        gh_guile_error(who, rc);
    }
    return scm_make_foreign_object_1(bsrv_type_scm, b);
}

static SCM b_port(SCM srv)
{
    int p = gh_server_port(bsrv_of(srv, "gchttp-server-port")->s, 0);
    if (p < 0)
        gh_guile_error("gchttp-server-port", p);
    return scm_from_int(p);
}

static struct bclient *b_pop(struct bsrv *b)
{
    struct bclient *c = b->head;
    if (c) {
        b->head = c->next;
        if (!b->head)
            b->tail = NULL;
        c->state = BC_CLAIMED;
        c->next = b->inflight;
        b->inflight = c;
    }
    return c;
}

/* (%gchttp-next server [timeout-seconds]) -> the next client, or #f when the server is
 * closed or the timeout passed. Blocks; Guile's asyncs (SIGINT) run meanwhile. */
static SCM b_next(SCM srv, SCM timeout)
{
    scm_assert_foreign_object_type(bsrv_type_scm, srv);
    struct bsrv *b = scm_foreign_object_ref(srv, 0);
    if (!b)
        return SCM_BOOL_F; /* closed: a #:threads loop asking once more ends quietly */
    gh_time_t deadline = 0;
    if (!SCM_UNBNDP(timeout) && scm_is_true(timeout))
        deadline = gh_now() + (gh_time_t)(scm_to_double(timeout) * 1e9);
    int efd = thread_efd();
    if (efd < 0)
        gh_guile_error("gchttp-read", efd);
    for (;;) {
        pthread_mutex_lock(&b->mu);
        struct bclient *c = b->closing ? NULL : b_pop(b);
        int closing = b->closing;
        pthread_mutex_unlock(&b->mu);
        if (c)
            return scm_make_foreign_object_1(bclient_type_scm, c);
        if (closing)
            return SCM_BOOL_F;
        /* Under load the next request is usually a few microseconds away: look again a
         * few times, yielding the CPU, before paying for a sleep and a wake-up. */
        for (int spin = 0; spin < GH_GUILE_QUEUE_SPINS && !__atomic_load_n(&b->head, __ATOMIC_ACQUIRE); spin++)
            sched_yield();
        struct timeval tv, *tvp = NULL;
        if (deadline) {
            gh_time_t left = deadline - gh_now();
            if (left <= 0)
                return SCM_BOOL_F;
            tv.tv_sec = (time_t)(left / GH_SEC);
            tv.tv_usec = (suseconds_t)((left % GH_SEC) / 1000);
            tvp = &tv;
        }
        struct sleeper me = {NULL, efd, 0};
        pthread_mutex_lock(&b->mu);
        if (b->head || b->closing) {
            pthread_mutex_unlock(&b->mu);
            continue;
        }
        me.next = b->sleeping;
        b->sleeping = &me;
        pthread_mutex_unlock(&b->mu);
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(efd, &rd);
        int rc = scm_std_select(efd + 1, &rd, NULL, NULL, tvp);
        int err = errno;
        /* Off the list before anything can leave this frame (an async may throw). */
        pthread_mutex_lock(&b->mu);
        if (!me.woken)
            for (struct sleeper **pp = &b->sleeping; *pp; pp = &(*pp)->next)
                if (*pp == &me) {
                    *pp = me.next;
                    break;
                }
        pthread_mutex_unlock(&b->mu);
        if (me.woken)
            efd_clear(efd);
        if (rc < 0 && err != EINTR)
            gh_guile_error("gchttp-read", -err);
        scm_async_tick(); /* run pending asyncs: SIGINT throws 'interrupt from here */
    }
}

/* Finish a client: its pool thread returns and completes the response. */
static void b_finish(struct bsrv *b, struct bclient *c)
{
    pthread_mutex_lock(&b->mu);
    int was = c->state;
    if (was == BC_CLAIMED) {
        c->state = BC_FINISHED;
        for (struct bclient **pp = &b->inflight; *pp; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                break;
            }
        c->next = NULL;
    }
    pthread_mutex_unlock(&b->mu);
    c->w = NULL;
    c->r = NULL;
    if (was == BC_CLAIMED)
        gh_ctx_cancel(c->done, GH_ECANCELED);
}

static SCM b_client_finish(SCM srv, SCM cl)
{
    struct bclient *c = bclient_of(cl);
    struct bsrv *b = scm_foreign_object_ref(srv, 0);
    if (b && c->w)
        b_finish(b, c);
    return SCM_UNSPECIFIED;
}

/* The parsed head in one call: #(method target major minor headers remote-addr
 * content-length chunked? has-content-length?), headers as ((lower-case-symbol .
 * "value") ...) in received order. Values and target are Latin-1, as Guile's own
 * reader decodes them. */
static SCM b_head(SCM cl)
{
    struct bclient *c = bclient_live(cl, "gchttp-request-head");
    gh_request_t *r = c->r;
    size_t n = gh_request_header_count(r);
    SCM hs = SCM_EOL;
    int has_cl = 0;
    for (size_t i = n; i-- > 0;) {
        const char *name, *value;
        if (gh_request_header_at(r, i, &name, &value) != 0)
            continue;
        char low[64];
        size_t len = strlen(name);
        SCM sym;
        if (len < sizeof low) {
            for (size_t k = 0; k < len; k++)
                low[k] = (char)((name[k] >= 'A' && name[k] <= 'Z') ? name[k] + 32 : name[k]);
            sym = scm_from_latin1_symboln(low, len);
        } else {
            sym = scm_string_to_symbol(scm_string_downcase(scm_from_latin1_string(name)));
        }
        if (len == 14 && strcmp(low, "content-length") == 0)
            has_cl = 1;
        hs = scm_cons(scm_cons(sym, scm_from_latin1_string(value)), hs);
    }
    SCM v = scm_c_make_vector(9, SCM_BOOL_F);
    scm_c_vector_set_x(v, 0, scm_from_latin1_string(gh_request_method(r)));
    scm_c_vector_set_x(v, 1, scm_from_latin1_string(gh_request_target(r)));
    scm_c_vector_set_x(v, 2, scm_from_int(gh_request_proto_major(r)));
    scm_c_vector_set_x(v, 3, scm_from_int(gh_request_proto_minor(r)));
    scm_c_vector_set_x(v, 4, hs);
    scm_c_vector_set_x(v, 5, str_or_false(gh_request_remote_addr(r)));
    scm_c_vector_set_x(v, 6, scm_from_int64(gh_request_content_length(r)));
    scm_c_vector_set_x(v, 7, scm_from_bool(gh_request_is_chunked(r)));
    scm_c_vector_set_x(v, 8, scm_from_bool(has_cl));
    return v;
}

/* (%gchttp-body-read! client bv start count) -> bytes read, 0 at the end of the body. */
static SCM b_body_read_x(SCM cl, SCM bv, SCM start, SCM count)
{
    const char *who = "gchttp-body-read";
    struct bclient *c = bclient_live(cl, who);
    size_t n;
    char *p = bv_slice(bv, start, count, who, &n);
    if (n == 0)
        return scm_from_int(0);
    ssize_t got = gh_request_read(c->r, p, n);
    if (got < 0)
        gh_guile_error(who, (int)got);
    return scm_from_ssize_t(got);
}

/* (%gchttp-respond-head client status headers close?) headers: (("Name" . "value")...). */
static SCM b_head_x(SCM cl, SCM status, SCM headers, SCM close_p)
{
    const char *who = "gchttp-write";
    struct bclient *c = bclient_live(cl, who);
    set_headers(c->w, headers, who);
    if (scm_is_true(close_p))
        gh_response_close_after(c->w);
    int rc = gh_response_write_header(c->w, scm_to_int(status));
    if (rc < 0 && rc != GH_EBUSY)
        gh_guile_error(who, rc);
    return SCM_UNSPECIFIED;
}

/* (%gchttp-body-write! client bv start count) -> count. */
static SCM b_body_write_x(SCM cl, SCM bv, SCM start, SCM count)
{
    const char *who = "gchttp-write";
    struct bclient *c = bclient_live(cl, who);
    size_t n;
    const char *p = bv_slice(bv, start, count, who, &n);
    if (n == 0)
        return scm_from_int(0);
    ssize_t rc = gh_response_write(c->w, p, n);
    if (rc < 0)
        gh_guile_error(who, (int)rc);
    return scm_from_size_t(n);
}

static SCM b_flush(SCM cl)
{
    struct bclient *c = bclient_live(cl, "gchttp-flush");
    int rc = gh_response_flush(c->w);
    if (rc < 0)
        gh_guile_error("gchttp-flush", rc);
    return SCM_UNSPECIFIED;
}

static SCM b_status(SCM cl)
{
    struct bclient *c = bclient_of(cl);
    return c->w ? scm_from_int(gh_response_status(c->w)) : SCM_BOOL_F;
}

/* (%gchttp-client-hijack client) -> conn (the (gchttp) conn type). */
static SCM b_hijack(SCM cl)
{
    const char *who = "hijack-connection";
    struct bclient *c = bclient_live(cl, who);
    gh_netconn_t *nc = NULL;
    gh_bufrw_t rw = {0};
    int rc = gh_response_hijack(c->w, &nc, &rw);
    if (rc < 0)
        gh_guile_error(who, rc);
    c->hijacked = 1;
    void *slots[CONN_NSLOTS] = {nc, rw.r, rw.w};
    return scm_make_foreign_object_n(conn_type, CONN_NSLOTS, slots);
}

static SCM b_hijacked_p(SCM cl)
{
    return scm_from_bool(bclient_of(cl)->hijacked);
}

static void *ctx_wait_without_guile(void *p)
{
    void **a = p;
    return (void *)(intptr_t)gh_ctx_wait(a[0], *(gh_time_t *)a[1]);
}

/* (%gchttp-close-notify-wait client seconds-or-#f) -> #t once the client went away, #f on
 * timeout. */
static SCM b_close_notify_wait(SCM cl, SCM timeout)
{
    const char *who = "close-notify-wait";
    struct bclient *c = bclient_live(cl, who);
    gh_ctx_t *ctx = gh_response_close_notify(c->w);
    if (!ctx)
        gh_guile_error(who, GH_ENOMEM);
    gh_time_t deadline = 0;
    if (scm_is_true(timeout)) {
        deadline = gh_now() + (gh_time_t)(scm_to_double(timeout) * 1e9);
        if (deadline <= 0)
            deadline = 1;
    }
    void *args[2] = {ctx, &deadline};
    int reason = (int)(intptr_t)scm_without_guile(ctx_wait_without_guile, args);
    return scm_from_bool(reason != 0);
}

/* (%gchttp-close-notify-fd client) -> a new descriptor (dup of the close-notify eventfd)
 * that becomes readable when the client goes away; the caller owns it. */
static SCM b_close_notify_fd(SCM cl)
{
    const char *who = "close-notify-port";
    struct bclient *c = bclient_live(cl, who);
    int fd = gh_response_close_notify_fd(c->w);
    if (fd < 0)
        gh_guile_error(who, fd);
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0)
        gh_guile_error(who, -errno);
    return scm_from_int(d);
}

/* (%gchttp-probe client) -> a probe on the client's C request and response. */
static SCM b_probe(SCM cl)
{
    const char *who = "gchttp-probe";
    struct bclient *c = bclient_live(cl, who);
    gh_probe_t *pr = gh_probe_new(c->r);
    gh_probe_t *pw = gh_probe_new(c->w);
    if (!pr || !pw)
        gh_guile_error(who, GH_ENOMEM);
    void *slots[PROBE_NSLOTS] = {pr, pw};
    return scm_make_foreign_object_n(probe_type, PROBE_NSLOTS, slots);
}

/* Close: queued requests are answered 503 by their pool threads, in-flight ones are
 * released (their later writes fail), then the server closes outside Guile mode. */
static SCM b_close(SCM srv)
{
    scm_assert_foreign_object_type(bsrv_type_scm, srv);
    struct bsrv *b = scm_foreign_object_ref(srv, 0);
    if (!b)
        return SCM_UNSPECIFIED;
    scm_foreign_object_set_x(srv, 0, NULL);
    pthread_mutex_lock(&b->mu);
    b->closing = 1;
    struct bclient *q = b->head, *f = b->inflight;
    b->head = b->tail = b->inflight = NULL;
    for (struct sleeper *z = b->sleeping; z; z = z->next) { /* they see closing */
        z->woken = 1;
        efd_set(z->fd);
    }
    b->sleeping = NULL;
    pthread_mutex_unlock(&b->mu);
    for (struct bclient *c = q, *nx; c; c = nx) {
        nx = c->next;
        c->state = BC_FINISHED;
        gh_response_close_after(c->w);
        gh_response_write_header(c->w, 503);
        gh_ctx_cancel(c->done, GH_ECANCELED);
    }
    for (struct bclient *c = f, *nx; c; c = nx) {
        nx = c->next;
        c->state = BC_FINISHED;
        gh_ctx_cancel(c->done, GH_ECANCELED);
    }
    scm_without_guile(close_without_guile, b->s);
    return SCM_UNSPECIFIED;
}

/* ---- init ------------------------------------------------------------------------------ */

struct disp_probe {
    int x;
};
static gh_type_t disp_type = GH_TYPE_INIT_NOPTRS("guile-displacement", struct disp_probe);

static SCM make_type(const char *name, int nslots, const char *const *slot_names)
{
    SCM slots = SCM_EOL;
    for (int i = nslots; i-- > 0;)
        slots = scm_cons(scm_from_utf8_symbol(slot_names[i]), slots);
    return scm_make_foreign_object_type(scm_from_utf8_symbol(name), slots, NULL);
}

void init_gchttp(void)
{
    /* Guile has initialised the collector: this keeps its settings (no second GC_INIT)
     * and allows the registration of gchttp's threads. */
    gh_gc_init();

    /* gchttp's object pointers are interior (base + header). gh_gc_init registers
     * that displacement; a libgchttp from before it did would not, so measure the
     * header on a real object and register it here too (idempotent, and a no-op with
     * all-interior-pointers on). */
    void *o = gh_obj_new(&disp_type);
    if (o) {
        obj_displacement = (size_t)((char *)o - (char *)GC_base(o));
        GC_register_displacement(obj_displacement);
    }

    static const char *const srv_slots[] = {"server", "closed"};
    static const char *const req_slots[] = {"response", "request", "hijacked"};
    static const char *const conn_slots[] = {"netconn", "reader", "writer"};
    static const char *const probe_slots[] = {"request-probe", "response-probe"};
    server_type = make_type("gchttp-server", SRV_NSLOTS, srv_slots);
    request_type = make_type("gchttp-request", REQ_NSLOTS, req_slots);
    conn_type = make_type("gchttp-conn", CONN_NSLOTS, conn_slots);
    probe_type = make_type("gchttp-probe", PROBE_NSLOTS, probe_slots);
    /* The types are referenced from static storage: make them permanent roots (data
     * segments of a dlopen'ed module are roots too, this only states it). */
    scm_permanent_object(server_type);
    scm_permanent_object(request_type);
    scm_permanent_object(conn_type);
    scm_permanent_object(probe_type);
    static const char *const bsrv_slots[] = {"backend"};
    static const char *const bclient_slots[] = {"client"};
    bsrv_type_scm = scm_permanent_object(make_type("gchttp-backend", 1, bsrv_slots));
    bclient_type_scm = scm_permanent_object(make_type("gchttp-client", 1, bclient_slots));

    scm_c_define_gsubr("gchttp-serve", 3, 1, 0, serve);
    scm_c_define_gsubr("gchttp-server-port", 1, 0, 0, server_port);
    scm_c_define_gsubr("gchttp-close", 1, 0, 0, server_close);
    scm_c_define_gsubr("gchttp-server-stats", 1, 0, 0, server_stats);
    scm_c_define_gsubr("gchttp-request-method", 1, 0, 0, req_method);
    scm_c_define_gsubr("gchttp-request-target", 1, 0, 0, req_target);
    scm_c_define_gsubr("gchttp-request-proto", 1, 0, 0, req_proto);
    scm_c_define_gsubr("gchttp-request-host", 1, 0, 0, req_host);
    scm_c_define_gsubr("gchttp-request-remote-addr", 1, 0, 0, req_remote_addr);
    scm_c_define_gsubr("gchttp-request-headers", 1, 0, 0, req_headers);
    scm_c_define_gsubr("gchttp-request-header", 2, 0, 0, req_header);
    scm_c_define_gsubr("gchttp-request-body", 1, 1, 0, req_body);
    scm_c_define_gsubr("gchttp-request-probe", 1, 0, 0, req_probe);
    scm_c_define_gsubr("gchttp-probe-collected?", 1, 0, 0, probe_collected_p);
    scm_c_define_gsubr("gchttp-hijack", 1, 2, 0, req_hijack);
    scm_c_define_gsubr("gchttp-conn-read!", 4, 0, 0, conn_read_x);
    scm_c_define_gsubr("gchttp-conn-write!", 2, 2, 0, conn_write_x);
    scm_c_define_gsubr("gchttp-conn-close", 1, 0, 0, conn_close);
    scm_c_define_gsubr("gchttp-conn-remote-addr", 1, 0, 0, conn_remote_addr);
    scm_c_define_gsubr("gchttp-gc-info", 0, 0, 0, gc_info);
    scm_c_define_gsubr("gchttp-gc-collect", 0, 1, 0, collect);

    /* The run-server back end's primitives, used by (web server gchttp). */
    scm_c_define_gsubr("%gchttp-open", 1, 0, 0, b_open);
    scm_c_define_gsubr("%gchttp-port", 1, 0, 0, b_port);
    scm_c_define_gsubr("%gchttp-next", 1, 1, 0, b_next);
    scm_c_define_gsubr("%gchttp-finish", 2, 0, 0, b_client_finish);
    scm_c_define_gsubr("%gchttp-head", 1, 0, 0, b_head);
    scm_c_define_gsubr("%gchttp-body-read!", 4, 0, 0, b_body_read_x);
    scm_c_define_gsubr("%gchttp-respond-head!", 4, 0, 0, b_head_x);
    scm_c_define_gsubr("%gchttp-body-write!", 4, 0, 0, b_body_write_x);
    scm_c_define_gsubr("%gchttp-flush", 1, 0, 0, b_flush);
    scm_c_define_gsubr("%gchttp-status", 1, 0, 0, b_status);
    scm_c_define_gsubr("%gchttp-hijack", 1, 0, 0, b_hijack);
    scm_c_define_gsubr("%gchttp-hijacked?", 1, 0, 0, b_hijacked_p);
    scm_c_define_gsubr("%gchttp-close-notify-wait", 2, 0, 0, b_close_notify_wait);
    scm_c_define_gsubr("%gchttp-close-notify-fd", 1, 0, 0, b_close_notify_fd);
    scm_c_define_gsubr("%gchttp-probe", 1, 0, 0, b_probe);
    scm_c_define_gsubr("%gchttp-close", 1, 0, 0, b_close);
}
