/*
 * lib/internal.h: private to gchttp; not installed.
 *
 * The per-connection object graph, as in Go's net/http server (see
 * docs/DESIGN.md §1 and README "Object graph"):
 *
 *   server --conns[fd]--> conn --fd--------> gh_fd (raw descriptor)
 *                           |--r-----------> conn_reader --conn--> conn   (cycle)
 *                           |--bufr--------> bufio.Reader --src--> conn_reader
 *                           |--bufw--------> bufio.Writer --dst--> gh_fd
 *                           |--ctx---------> conn context
 *                           |--cur_req-----> response --conn--> conn   (cycle)
 *                                              |--req--> request --ctx--> request context
 *                                              |           |--body--> body --bufr--> bufio.Reader
 *                                              |--req_body--> body
 *
 * Cycles are fine: nothing in the graph has an ordered finalizer (obj.h).
 */
#ifndef GH_LIB_INTERNAL_H
#define GH_LIB_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <gchttp.h>

#include "parse.h"

/* A scanned (conservatively traced) array of n pointer-sized words, zeroed. Counted in
 * gh_alloc_stats. NULL when out of memory. */
void *gh__ptrs_new(size_t n);
/*
 * The transport between a connection's socket and its buffered reader and writer: what
 * the loop and the connection call to move bytes, so that a TLS layer can sit there
 * later without another redesign. Today every connection uses gh__transport_plain
 * (gh_fd calls on the socket). A TLS transport would keep its session in the object it
 * is handed, report through want() that a read first needs the socket writable (or the
 * reverse) during a handshake, and send close_notify in close().
 *   read    up to n bytes; nowait: GH_EAGAIN rather than wait (the loop reading a head);
 *           otherwise waits within the descriptor's deadlines. 0 at EOF, or GH_E*.
 *   write   all of buf within the write deadline: n, or GH_E*.
 *   want    the epoll events to wait for before the next read (EPOLLIN for plain).
 *   close   release the transport and the socket (idempotent).
 * Threads: one reader and one writer at a time, as for gh_fd.
 */
typedef struct gh__transport {
    ssize_t (*read)(gh_fd_t *fd, void *buf, size_t n, int nowait);
    ssize_t (*write)(gh_fd_t *fd, const void *buf, size_t n);
    uint32_t (*want)(gh_fd_t *fd);
    int (*close)(gh_fd_t *fd);
} gh__transport_t;
extern const gh__transport_t gh__transport_plain;
/* The transport of a connection (lib/conn.c). */
#define GH__CONN_TR(c) (&gh__transport_plain)

/* The one "about to block" hook: gh_fd waits (gc/fd.c) and gh_ctx_wait (lib/context.c)
 * call it through gh__will_block before they block; lib/server.c sets it to
 * gh__server_will_block. Atomic: a later server stores it while another one runs. */
extern void (*gh__block_hook)(void);
static inline void gh__will_block(void)
{
    void (*hook)(void) = __atomic_load_n(&gh__block_hook, __ATOMIC_ACQUIRE);
    if (hook)
        hook();
}
/* A gh_fd for an accepted socket that is already non-blocking (gc/fd.c). */
gh_fd_t *gh__fd_new_socket(int fd);
/* gh_thread_start for the library's own threads (gc/thread.c): they start with the
 * asynchronous signals blocked, so that the program's main thread gets them. */
int gh__thread_start_quiet(pthread_t *t, void *(*fn)(void *), void *arg);
int gh__thread_detach(pthread_t t);
/* sendfile(2) of n bytes of in_fd from *off (advanced) to a socket, with its write
 * deadline; n, GH_EOF if the file ended first, or a code (gc/fd.c). */
ssize_t gh__fd_sendfile(gh_fd_t *f, int in_fd, int64_t *off, size_t n);

/* bufio internals (lib/bufio.c) */
extern gh_type_t gh__reader_type, gh__writer_type, gh__ctx_type;
int gh__writer_alloc(gh_writer_t *w);
int gh__reader_unread(gh_reader_t *r, const char *p, size_t n);
/* The calling thread's scratch buffers (lib/bufio.c): plain memory, one per slot, lent
 * until gh__scratch_give(slot) on the same thread; NULL if n is larger than the slot,
 * the slot is lent already (a nested reader) or out of memory. The read slot is lent
 * within one call (a source read, a head parse); the write slot for one request's
 * handler (conn.c: the response writer's bufw and prebuf). */
enum { GH__SCRATCH_READ, GH__SCRATCH_WRITE, GH__SCRATCH_SLOTS };
#define GH__SCRATCH_READ_SIZE 4096
#define GH__SCRATCH_WRITE_SIZE (4096 + 2048) /* bufw, then prebuf */
char *gh__scratch_take(int slot, size_t n);
void gh__scratch_give(int slot);
size_t gh__reader_cap(const gh_reader_t *r);
int gh__reader_keep(gh_reader_t *r, const char *p, size_t n);
int gh__writer_lend(gh_writer_t *w, char *buf);
int gh__writer_unlend(gh_writer_t *w, const char *buf);

/* Connection phases: who owns the connection now. Transitions:
 *   accept -> WAIT_HEAD (poller; header deadline from accept)
 *   WAIT_HEAD -(complete head)-> ACTIVE (served by the poller's thread itself)
 *   WAIT_HEAD -(complete head, no thread to spare)-> QUEUED -(worker)-> ACTIVE
 *   ACTIVE -(handler returns)-> FINISH -(next head readable now)-> ACTIVE
 *   FINISH -(keep-alive, nothing to read)-> IDLE (parked with the poller; idle deadline)
 *   IDLE|WAIT_HEAD -(edge: the poller claims it)-> PREAD -> WAIT_HEAD | ACTIVE | QUEUED
 *   ACTIVE -(hijack)-> HIJACKED
 *   any -> LINGER (error answered; poller drains until EOF or 500 ms) -> CLOSED
 *   any -> CLOSED */
enum {
    GH__PH_WAIT_HEAD = 1,
    GH__PH_PREAD,     /* the poller is reading the head (claimed from IDLE/WAIT_HEAD) */
    GH__PH_QUEUED,
    GH__PH_ACTIVE,
    GH__PH_FINISH,
    GH__PH_IDLE,
    GH__PH_LINGER,
    GH__PH_HIJACKED,
    GH__PH_CLOSED
};

/* Timer lists of the poller (FIFO: constant duration per list keeps them sorted). */
enum { GH__TL_NONE = 0, GH__TL_HEAD, GH__TL_IDLE, GH__TL_LINGER, GH__TL_COUNT };

typedef struct gh__conn_reader gh__conn_reader_t;
typedef struct gh__body gh__body_t;

/*
 * connReader: the source of conn->bufr while the server owns the connection.
 * Alloc:     one per connection, gh_obj_new.
 * Kept by:   conn->r and bufr->src (and so by whoever holds bufr: the request body,
 *            a hijacker in stage `before`).
 * Threads:   poller (non-blocking reads of a request head) or the worker.
 */
struct gh__conn_reader {
    gh_conn_t *conn; /* its mode (blocking or not) is conn->read_nowait */
};

/*
 * conn: one accepted connection.
 * Alloc:     gh_obj_new in the poller at accept.
 * Kept by:   server->conns[fd] until it is closed or hijacked; the worker's stack while
 *            it serves a request; conn_reader->conn; response->conn. After hijack (stages
 *            writer and later) nothing the user holds reaches it.
 * OS state:  conn->fd is closed by gh__server_conn_close (server side) or belongs to the user
 *            after hijack.
 * Threads:   the phase says who may touch it: the poller (WAIT_HEAD, IDLE, LINGER) or
 *            exactly one thread serving it (QUEUED..FINISH: the poller's, or a worker). `mu` guards cur_req against the
 *            poller's disconnect notification.
 */
struct gh_conn_s {
    gh_server_t *server;
    gh_fd_t *fd;
    gh__conn_reader_t *r;
    gh_reader_t *bufr;
    gh_writer_t *bufw;
    gh_response_t *cur_req;
    gh_ctx_t *ctx;
    char *remote;   /* "ip:port", atomic */
    char *local;
    char *big_head; /* a head larger than bufr's buffer, being accumulated (atomic) */
    char *prebuf;   /* pre-chunking buffer of the response being written (atomic, or
                     * the write scratch slot while lent; NULL between requests when
                     * lean) */
    char *head_block; /* a complete head read through the scratch slot, already copied
                       * into its request's block (fields table, then the head) */
    gh_conn_t *tnext, *tprev; /* poller timer list */
    /* not traced */
    pthread_mutex_t mu;
    unsigned long id;
    gh_time_t deadline;     /* timer list deadline */
    gh_time_t hdr_deadline; /* end of the current request head */
    gh_time_t req_start;    /* first byte of the current request */
    uint32_t head_len;      /* length of the complete head found by the poller */
    uint32_t head_nfields;  /* its number of header fields */
    uint32_t big_len, big_cap;
    int phase;      /* GH__PH_* (atomic) */
    int fdnum;      /* descriptor number, the key in server->conns */
    int16_t werr;   /* first write error (a GH_E* code) */
    int16_t head_status;    /* error status found by the poller (0: none) */
    int8_t state;   /* gh_conn_state_t last reported, -1 none yet */
    uint8_t loop;   /* index of the loop that owns it (server->loops) */
    uint8_t timer_list; /* GH__TL_* */
    uint8_t peer_gone;  /* the poller saw the peer go away */
    uint8_t watching;   /* poller watches for disconnect (handler running) */
    uint8_t body_pending; /* the current request's body is not read to its end (atomic) */
    uint8_t rdhup_seen; /* a hang-up edge came (atomic) */
    uint8_t next_buffered; /* bytes past the current request (and its body) are already
                            * in bufr: a next request, so a hang-up is not the client
                            * leaving (atomic; set by the serving thread) */
    uint8_t read_nowait; /* the connReader must not block (the poller reads a head) */
    uint8_t drained;    /* the last read came back short: the socket was empty */
    uint8_t lean;       /* hold no buffer between requests (stage release, the default) */
    char *lent;         /* the thread's write scratch slot, lent to bufw and prebuf while
                         * a handler runs (plain memory: not traced) */
};

/*
 * request: see gchttp/request.h.
 * Alloc:     gh_obj_new per request; `block` is one atomic allocation holding the field
 *            table followed by a NUL-separated copy of the head. Laid out to stay within
 *            a 128-byte GC object (the keep-alive budget in bench/).
 * Kept by:   response->req, the handler's stack.
 */
struct gh_request_s {
    char *block;            /* atomic: fields[n_fields] then head bytes */
    gh_ctx_t *ctx;          /* lazily created child of parent_ctx */
    gh_ctx_t *parent_ctx;   /* the connection's context */
    gh__body_t *body;       /* NULL: no body */
    const char *remote;     /* the connection's address string */
    char *tblock;           /* trailers: fields then bytes (atomic) */
    char *host_copy;        /* authority of an absolute-form target (atomic) */
    char *pathvals;         /* atomic "name\0value\0"... "\0": set by the mux */
    /* not traced */
    uint32_t n_fields, n_tfields;
    uint32_t target_off, proto_off;
    uint32_t host_off;      /* host value (a C string in head), 0: none. Its length is
                             * not kept: the request stays in a 128-byte block */
    int cancel_reason;      /* atomic; set before ctx exists too (here: no padding) */
    int64_t content_length; /* -1 chunked */
    uint8_t method_off;     /* after at most 16 skipped CRLFs */
    uint8_t major, minor;
    uint8_t chunked;
    uint8_t expect_continue;
    uint8_t want_close;     /* Connection: close (1.1) / no keep-alive (1.0) */
    uint8_t is_head;
};

#define GH__REQ_FIELDS(r) ((gh__hfield_t *)(void *)(r)->block)
#define GH__REQ_HEAD(r) ((r)->block + (size_t)(r)->n_fields * sizeof(gh__hfield_t))
#define GH__REQ_TFIELDS(r) ((gh__hfield_t *)(void *)(r)->tblock)
#define GH__REQ_TTEXT(r) ((r)->tblock + (size_t)(r)->n_tfields * sizeof(gh__hfield_t))

/*
 * body: the request body reader (Go's transfer.go `body`).
 * Alloc:     per request with a body.
 * Kept by:   request->body, response->req_body.
 * Threads:   the handler's.
 */
struct gh__body {
    gh_reader_t *bufr;          /* the connection's reader */
    gh_conn_t *conn;            /* to watch for disconnects again at the body's end */
    gh_request_t *req;          /* for trailers (Go: body.hdr) */
    gh_response_t *resp;        /* for 100-continue (Go: expectContinueReader.resp) */
    /* not traced */
    gh__chunked_t ch;
    int64_t remaining;          /* Content-Length bytes left */
    int chunked;
    int done;                   /* end of body reached */
    int err;                    /* sticky */
    int closed;                 /* handler returned or hijacked */
    size_t total;               /* decoded bytes read */
    int64_t limit;              /* gh_request_limit_body; -1 none */
    int limit_hit;              /* a read went past limit (answered 413 if unanswered) */
};

#define GH__INLINE_HDR 128
#define GH__PREBUF_SIZE 2047 /* gh_bytes_good_size(2048) */

/*
 * What few responses use, made on demand so that the response itself stays small:
 * trailers and close-notify.
 * Alloc:     gh_obj_new, by the handler's thread (or eagerly in stages before/writer).
 * Kept by:   response->x. The poller reads it under conn->mu.
 */
typedef struct gh__resp_extra {
    char *trailers;            /* atomic "Name: value\r\n"* */
    gh_ctx_t *cn;              /* close-notify */
    gh_fd_t *cn_fd;            /* its eventfd, if asked for */
    /* not traced */
    uint32_t trailers_len, trailers_cap;
} gh__resp_extra_t;

/*
 * response: see gchttp/response.h.
 * Alloc:     gh_obj_new per request; headers live inline up to GH__INLINE_HDR bytes,
 *            then in an atomic block. Laid out to stay within a 240-byte GC block (with
 *            the object header and the typed-allocation word).
 * Kept by:   conn->cur_req, the handler.
 */
struct gh_response_s {
    gh_conn_t *conn;
    gh_request_t *req;
    gh__body_t *req_body;
    char *hdr_ext;             /* atomic; header lines when they outgrow inline_hdr */
    gh__resp_extra_t *x;       /* trailers, close-notify; NULL until needed */
    /* not traced */
    int64_t declared_len;      /* Content-Length set by the handler, -1 none */
    int64_t written;           /* body bytes accepted from the handler */
    uint32_t hdr_len, hdr_cap;
    uint32_t pre_len;          /* bytes in conn->prebuf */
    int status;
    int err;
    uint8_t wrote_header;      /* a final status was chosen */
    uint8_t committed;         /* header bytes are in bufw */
    uint8_t chunking;
    uint8_t close_after;
    uint8_t handler_done;
    uint8_t hijacked;
    uint8_t body_allowed;
    uint8_t sent_continue;
    uint8_t can_continue;
    char inline_hdr[GH__INLINE_HDR];
};

/* The response's extra part, made on first use. NULL when out of memory. */
gh__resp_extra_t *gh__resp_extra(gh_response_t *w);

/*
 * The server's registry of hijacked connections (config track_hijacked): weak links, so
 * that it keeps none of them alive (golang/go#17721).
 * Alloc:     embedded in the server; `links` is an atomic GC array (weak links only).
 * Lifetime:  the server's.
 * Threads:   any, under mu.
 */
typedef struct gh__hjreg {
    gh_weak_t *links;
    /* not traced */
    size_t n, cap;
    pthread_mutex_t mu;
} gh__hjreg_t;

/* ---- server.c, connset.c, loop.c (see lib/loop.h) ---------------------------------- */
/* Hand c back to the poller, parked in phase ph (GH__PH_IDLE or GH__PH_WAIT_HEAD)
 * until deadline (0: none), or close it when the server stops. rearm: turn the input
 * interest back on (a worker; the poller's thread never turned it off). */
void gh__server_conn_park(gh_conn_t *c, int ph, gh_time_t deadline, int rearm);
/* A hang-up was seen while a handler runs: is the client gone? (hard: HUP/ERR) */
void gh__conn_eval_hup(gh_conn_t *c, int hard);
/* Lingering close of a connection after an error answer (poller drains then closes). */
void gh__server_conn_linger(gh_conn_t *c);
/* Close a connection the server owns and forget it. Any thread. */
void gh__server_conn_close(gh_conn_t *c);
/* The calling thread is about to block (gh_ctx_wait, a gh_fd wait): if it serves a
 * request on the poller's role, hand the role to another thread now. */
void gh__server_will_block(void);
/* The serving thread moves c between ACTIVE (serving=1) and FINISH (0); a closed
 * connection stays closed. */
void gh__conn_set_serving(gh_conn_t *c, int serving);
/* Drop the server's references to a hijacked connection. */
void gh__server_conn_forget(gh_conn_t *c);
/* Watch a connection for the peer going away while its handler runs; unwatch. */
void gh__server_watch(gh_conn_t *c, int on);
const gh_server_config_t *gh__server_config(const gh_server_t *s);
int gh__server_stopping(gh_server_t *s);
void gh__server_count_request(gh_conn_t *c, int bad);
/* "ip:port" of a socket's local (peer=0) or remote (peer=1) end, atomic; NULL on error. */
char *gh__sockname(int fd, int peer);
/* The server's registry of hijacked connections. */
gh__hjreg_t *gh__server_hijacked(gh_server_t *s);
/* A watch ended while the server shuts down: wake gh_server_shutdown's wait. */
void gh__server_idle_changed(gh_server_t *s);

/* ---- hijack.c, watch.c: watched hijacked connections --------------------------------- */
/* The server that accepted c (NULL once collected) and the loop that did. */
gh_server_t *gh__netconn_server(gh_netconn_t *c, int *loop);
/* c is watched (on: from gh__watch_go until the watch has closed it or given it back):
 * gh_netconn_close then goes through gh__watch_netconn_close. */
void gh__netconn_set_watched(gh_netconn_t *c, int on);
/* gh_netconn_close of a watched connection: the watch ends as by gh_watch_abort. */
int gh__watch_netconn_close(gh_netconn_t *c);
/* gh_watch_start in two steps, so that a module (websocket.c) can finish the object its
 * callbacks reach before the loop may call them: make the watch, then hand it over. */
int gh__watch_new(gh_netconn_t *nc, gh_reader_t *r, const gh_watch_ops_t *ops, void *data,
                  gh_watch_t **out);
int gh__watch_go(gh_watch_t *w);
/* gh_server_shutdown began: call the watches' shutdown callbacks. */
void gh__watch_shutdown(gh_server_t *s);
/* Watches with a shutdown callback still open (the calling thread's own excepted). */
int gh__watch_lingering(gh_server_t *s);
/* gh_server_close, after the loops stopped: end every watch left with GH_ECLOSED. */
void gh__watch_close_all(gh_server_t *s);
/* Watches on loop i now. */
int gh__watch_loop_count(gh_server_t *s, int i);

/* ---- listen.c: listening sockets (non-blocking, close-on-exec, listening) --------- */
/* Open a listener on host:port (host "" = every address, both families; a name is
 * resolved, IPv4 first) or on addr ("host:port", "[v6]:port", ":port", "unix:/path",
 * "unix:@abstract"). *out gets the descriptor. On error *why (if why) names the problem
 * in a static string. Returns 0 or GH_EADDRESS, GH_ENOHOST, GH_EADDRINUSE, -errno. */
int gh__listen_open(const char *host, int port, int *out, const char **why);
int gh__listen_open_addr(const char *addr, int *out, const char **why);
/* Check that fd is a listening stream socket and make it non-blocking, close-on-exec. */
int gh__listen_adopt(int fd, const char **why);
/* Descriptors passed by systemd socket activation (LISTEN_PID/LISTEN_FDS, from 3),
 * adopted; at most max. Returns their number, GH_ENOENT if none were passed to us. */
int gh__listen_systemd(int *fds, int max, const char **why);
/* The bound port of a listener (0 for a Unix socket) or -errno. */
int gh__listen_port(int fd);
/* Close a listener; unlink_path: remove its Unix socket file (one the server made). */
void gh__listen_close(int fd, int unlink_path);
/* "ip:port", "[v6]:port" (IPv4-mapped printed as IPv4), Unix: the path or "@". */
void gh__format_addr(const struct sockaddr_storage *ss, socklen_t len, char *out, size_t n);

/* ---- conn.c ----------------------------------------------------------------------- */
/* Report a ConnState change to config conn_state (ACTIVE every time, others once). */
void gh__server_set_state(gh_conn_t *c, gh_conn_state_t st);
gh_conn_t *gh__conn_new(gh_server_t *s, int fd, unsigned long id);
/* Try to complete a request head from what is readable now (poller, non-blocking).
 * Returns 1 complete (or an error to answer, head_status set), 0 need more,
 * <0 connection finished (EOF/error: close it). */
int gh__conn_poll_head(gh_conn_t *c);
/* Serve requests on c from a worker until it goes idle, lingers, is hijacked or closes. */
void gh__conn_serve(gh_conn_t *c);
/* One request on c (phase ACTIVE): 1 if the connection is kept, 0 if it was handed off
 * (closed, lingering or hijacked). */
int gh__conn_serve_one(gh_conn_t *c);
/* After a kept response: 1 if the next complete head is buffered, 0 if c was parked,
 * closed or answered with an error (see conn.c). */
int gh__conn_next(gh_conn_t *c, int on_poller);
/* Send a short error answer (non-blocking best effort) and mark the conn to linger. */
void gh__conn_write_error(gh_conn_t *c, int status, const char *why, int blocking);
ssize_t gh__conn_reader_read(void *cr, void *buf, size_t n);
/* The poller saw the peer go away while a handler runs. */
void gh__conn_peer_gone(gh_conn_t *c);
/* Record a write error: cancel the request (Go: checkConnErrorWriter). */
void gh__conn_write_failed(gh_conn_t *c, int err);

/* ---- request.c -------------------------------------------------------------------- */
/* Build the request from the head at p[0..len) (already validated by the parser).
 * *status gets 400/417/501/... on a semantic error. */
gh_request_t *gh__request_new(gh_conn_t *c, const char *p, size_t len, int *status,
                              const char **why);
void gh__request_cancel(gh_request_t *r, int reason);


/* ---- url.c ------------------------------------------------------------------------ */
/* A request target split in place (pointers into it, not NUL-terminated). */
typedef struct gh__target {
    const char *scheme, *host, *path, *query;
    size_t scheme_len, host_len, path_len, query_len;
    uint8_t has_query, asterisk, authority;
} gh__target_t;
int gh__target_split(const char *t, gh__target_t *out);
int gh__unhex(int c);
/* Percent-decode s[0..n) into out (n bytes suffice; out may be s); query: '+' is a
 * space. Returns the length, or -1 for a bad escape. */
ssize_t gh__unescape(const char *s, size_t n, char *out, int query);
/* 1 if every '%' in s[0..n) starts a valid escape. */
int gh__escapes_valid(const char *s, size_t n);
/* ServeMux's cleanPath of p[0..n) into out (n + 2 bytes, NUL-terminated); the length. */
size_t gh__path_clean(const char *p, size_t n, char *out);

/* ---- form.c ----------------------------------------------------------------------- */
/* 1 if the request's Content-Type is media type mt (case-insensitive, parameters ignored). */
int gh__content_type_is(const gh_request_t *r, const char *mt);

/* ---- body.c ----------------------------------------------------------------------- */
gh__body_t *gh__body_new(gh_request_t *r, gh_conn_t *c);
/* After the handler: read and drop what is left of the body, up to max bytes.
 * Returns 0 if the body was consumed (connection reusable), <0 otherwise. */
int gh__body_drain(gh__body_t *b, size_t max);

/* ---- hijack.c --------------------------------------------------------------------- */
/* Remember a hijacked connection weakly (config track_hijacked). */
void gh__server_track_hijacked(gh_server_t *s, gh_netconn_t *nc);
/* Fire close-notify of w (client gone). Any thread. */
void gh__close_notify_fire(gh_response_t *w);
/* Create close-notify now (stages before/writer do it for every request). */
gh_ctx_t *gh__close_notify_make(gh_response_t *w);
/* The handler returned: close the close-notify descriptor, if any. */
void gh__close_notify_done(gh_response_t *w);

/* ---- response.c ------------------------------------------------------------------- */
gh_response_t *gh__response_new(gh_conn_t *c, gh_request_t *r);
/* Finish after the handler: header if unsent, final chunk, trailers, flush.
 * Returns 0 or a negative code. */
int gh__response_finish(gh_response_t *w);
/* 1 if the connection may be reused after this response. */
int gh__response_keepalive(const gh_response_t *w);
/* Date header value for now ("Sun, 06 Nov 1994 08:49:37 GMT"), cached per second. */
void gh__http_date(char out[30]);
const char *gh__status_text(int status);
/* The media type of a body from its first bytes (Go's DetectContentType, common part). */
const char *gh__sniff_type(const char *data, size_t n);

#endif
