/*
 * gchttp/websocket.h: RFC 6455 WebSockets, server side, served by the server's loops.
 *
 * A handler upgrades its request with gh_ws_upgrade(); from then on the connection is
 * served by the server's loop that accepted it (gchttp/watch.h) and the program hears
 * about it through the callbacks of its gh_ws_config_t, on that loop's thread (they
 * must not block; one that does is handed off like a blocking handler). Sends work
 * from any thread. gh_server_shutdown closes every WebSocket with 1001 Going Away and
 * waits for the closing handshakes (to its deadline); gh_server_close ends those left
 * (on_close: 1001, the code sent, if the shutdown came first; else GH_WS_ABNORMAL).
 *
 *     static void on_message(gh_ws_t *ws, int op, char *p, size_t n, void *data)
 *     {
 *         (void)gh_ws_send(ws, op, p, n); // echo
 *     }
 *     static gh_ws_config_t cfg; // gh_ws_config_init(&cfg); cfg.on_message = on_message;
 *     static void handler(gh_response_t *w, gh_request_t *r, void *data)
 *     {
 *         gh_ws_t *ws;
 *         (void)gh_ws_upgrade(w, r, &cfg, &ws); // a bad handshake is answered 400/426
 *     }
 *
 * What is checked for you: the opening handshake (§4.2.1: GET, HTTP/1.1, Upgrade and
 * Connection tokens, a Sec-WebSocket-Key that is 16 bytes of base64, version 13 or a
 * 426 listing it, the origin hook: 403); masking, reserved bits and opcodes, control
 * frame rules and fragmentation order (1002); UTF-8 of text messages and close reasons,
 * checked as the bytes arrive, so a bad sequence fails the connection with 1007 before
 * the message ends, even when split across fragments; the size limit (1009); pings
 * (answered with pongs); the closing handshake, with a timeout.
 *
 * SHA-1 and base64 come from GNU Nettle (small, LGPL, no global initialisation,
 * maintained in Debian as libnettle); compression (permessage-deflate, RFC 7692) from
 * zlib.
 *
 * Memory: an idle WebSocket holds its gh_ws_t, the watch and the netconn (a few hundred
 * bytes); a message being assembled holds its buffer, released when delivered. With
 * permessage-deflate, zlib's state (about 300 KiB with context takeover) is made on the
 * first compressed message and kept until the close; negotiate
 * server_no_context_takeover to keep it small.
 */
#ifndef GCHTTP_WEBSOCKET_H
#define GCHTTP_WEBSOCKET_H

#include <sys/types.h>
#include "common.h"
#include "request.h"
#include "response.h"
#include "watch.h"

GH_BEGIN_DECLS

/**
 * One WebSocket connection.
 * Alloc:     gh_ws_upgrade (GC object). No _free.
 * Lifetime:  kept by its watch (so by its loop) until on_close has run; then by
 *            whoever still holds it (sends then fail with GH_EBADF). It keeps its
 *            config's `data` alive through the watch.
 * OS state:  the connection's descriptor, closed by the loop at the end.
 * Threads:   callbacks on its loop's thread, one at a time; gh_ws_send*, gh_ws_ping,
 *            gh_ws_close, gh_ws_queued from any thread.
 */
typedef struct gh_ws_s gh_ws_t;

/** Opcodes (RFC 6455 §5.2). */
enum { GH_WS_CONT = 0, GH_WS_TEXT = 1, GH_WS_BINARY = 2, GH_WS_CLOSE = 8, GH_WS_PING = 9,
       GH_WS_PONG = 10 };

/** Close codes (RFC 6455 §7.4.1). */
enum {
    GH_WS_NORMAL = 1000,
    GH_WS_GOING_AWAY = 1001,
    GH_WS_PROTOCOL_ERROR = 1002,
    GH_WS_UNSUPPORTED = 1003,
    GH_WS_NO_STATUS = 1005,  /* never sent: the peer's close had no code */
    GH_WS_ABNORMAL = 1006,   /* never sent: the connection ended without a close */
    GH_WS_INVALID_DATA = 1007,
    GH_WS_POLICY = 1008,
    GH_WS_TOO_BIG = 1009,
    GH_WS_INTERNAL = 1011
};

/** A whole message arrived: op is GH_WS_TEXT (p is valid UTF-8) or GH_WS_BINARY. p is
 * NUL-terminated (p[n] == 0) and may be modified, but is valid only during the call: a
 * message that came in one frame is delivered where it was read, without a copy. */
typedef void (*gh_ws_message_fn)(gh_ws_t *ws, int op, char *p, size_t n, void *data);
/** Stream mode: the next piece of a message. op is the message's opcode; fin is 1 on
 * the last piece. p is valid only during the call (text: pieces end on no particular
 * boundary, the whole is valid UTF-8 when fin comes). */
typedef void (*gh_ws_fragment_fn)(gh_ws_t *ws, int op, const char *p, size_t n, int fin,
                                  void *data);
/** The connection ended. code: the peer's close code (GH_WS_NO_STATUS if none), the
 * code we failed it with, or GH_WS_ABNORMAL when it ended without a closing
 * handshake; reason is a NUL-terminated UTF-8 string, maybe "". Called once. */
typedef void (*gh_ws_close_fn)(gh_ws_t *ws, int code, const char *reason, void *data);
/** After the upgrade, on the handler's thread, before the loop delivers anything (sends
 * are allowed). */
typedef void (*gh_ws_open_fn)(gh_ws_t *ws, void *data);
/** Queued output was all written (after gh_ws_send reported bytes queued). */
typedef void (*gh_ws_drain_fn)(gh_ws_t *ws, void *data);
/** Origin check: return 0 to accept, nonzero to refuse with 403. origin may be NULL. */
typedef int (*gh_ws_origin_fn)(const gh_request_t *r, const char *origin, void *data);

/**
 * Settings of a WebSocket endpoint.
 * Alloc:     the caller's (usually static); gh_ws_config_init fills the defaults.
 * Lifetime:  must outlive every WebSocket upgraded with it (they point to it).
 * Threads:   read-only once used.
 */
typedef struct gh_ws_config_s {
    gh_ws_open_fn on_open;
    gh_ws_message_fn on_message;   /*< whole messages (unless on_fragment is set) */
    gh_ws_fragment_fn on_fragment; /*< set: messages are streamed, max_message ignored */
    gh_ws_close_fn on_close;
    gh_ws_drain_fn on_drain;
    gh_ws_origin_fn check_origin;  /*< NULL: any origin */
    /** Subprotocols this endpoint speaks, in preference order, NULL-terminated; the
     * first one the client also offered is chosen. NULL: none. */
    const char *const *subprotocols;
    void *data;                    /*< passed to every callback (a GC object is kept) */
    size_t max_message;            /*< default 16 MiB: larger ones fail with 1009 */
    gh_time_t close_timeout;       /*< wait for the peer's close: default 5 s */
    gh_time_t ping_interval;       /*< keep-alive pings; 0 (default): none. A pong must
                                       come before the next ping, or the connection ends */
    int refuse_text;               /*< text messages fail the connection with 1003 */
    int refuse_binary;             /*< binary messages fail it with 1003 (§7.4.1) */
    int deflate;                   /*< accept permessage-deflate offers (default 1) */
    int server_no_context_takeover; /*< ask for it even if the client did not */
    int client_no_context_takeover; /*< ask the client for it when it allows */
    int server_max_window_bits;    /*< 9..15 (default 15; 8 offers are declined) */
    size_t deflate_min;            /*< messages shorter than this go uncompressed (64) */
} gh_ws_config_t;

/** Fill in the defaults. */
GH_EXTERN void gh_ws_config_init(gh_ws_config_t *cfg) GH_NONNULL(1);

/**
 * Upgrade the current request to a WebSocket: check the handshake, answer 101 (with
 * the chosen subprotocol and extension), hijack the connection and hand it back to
 * the loop that accepted it. A bad handshake is answered here (400 with a reason; 426 with
 * Sec-WebSocket-Version: 13 for another version; 403 when check_origin refuses) and
 * the handler just returns.
 * @return 0 and *out; GH_EPROTO after answering a bad handshake; or the hijack's or
 *         watch's error (the connection is then closed).
 */
GH_EXTERN GH_WARN_UNUSED int gh_ws_upgrade(gh_response_t *w, gh_request_t *r,
                                           const gh_ws_config_t *cfg, gh_ws_t **out)
    GH_NONNULL(1, 2, 3);

/**
 * Send a whole message (op GH_WS_TEXT or GH_WS_BINARY), from any thread. Text is sent
 * as given (it must be UTF-8). Never blocks: what the socket cannot take is queued.
 * @return bytes queued for this connection afterwards (backpressure: stop sending
 *         when it grows, resume on on_drain); GH_EBADF once closing or closed;
 *         GH_EBUSY while a fragmented message is being sent; GH_EINVAL for another op.
 */
GH_EXTERN ssize_t gh_ws_send(gh_ws_t *ws, int op, const void *p, size_t n) GH_NONNULL(1);
/**
 * Send one fragment of a message: the first with op GH_WS_TEXT or GH_WS_BINARY, the
 * following ones with GH_WS_CONT, the last with fin = 1. Meanwhile gh_ws_send returns
 * GH_EBUSY (control frames still go through). One sender at a time per message.
 * @return as gh_ws_send.
 */
GH_EXTERN ssize_t gh_ws_send_fragment(gh_ws_t *ws, int op, const void *p, size_t n, int fin)
    GH_NONNULL(1);
/** Send a ping (n <= 125). @return as gh_ws_send. */
GH_EXTERN ssize_t gh_ws_ping(gh_ws_t *ws, const void *p, size_t n) GH_NONNULL(1);
/**
 * Start the closing handshake with code (1000..4999, not 1005/1006) and a reason
 * (<= 123 bytes of UTF-8, may be NULL); the connection ends when the peer answers, or
 * after close_timeout. on_close then reports code. Idempotent.
 * @return 0, GH_EINVAL for a bad code or reason, GH_EBADF if already closing.
 */
GH_EXTERN int gh_ws_close(gh_ws_t *ws, int code, const char *reason) GH_NONNULL(1);
/** Bytes queued and not yet written. */
GH_EXTERN size_t gh_ws_queued(gh_ws_t *ws) GH_NONNULL(1);
/** The chosen subprotocol, or NULL. */
GH_EXTERN const char *gh_ws_subprotocol(const gh_ws_t *ws) GH_NONNULL(1);
/** 1 if permessage-deflate was negotiated. */
GH_EXTERN int gh_ws_compressed(const gh_ws_t *ws) GH_NONNULL(1);
/** The watch serving it (for the peer's address: gh_watch_netconn). */
GH_EXTERN gh_watch_t *gh_ws_watch(gh_ws_t *ws) GH_NONNULL(1);
/** A per-connection slot for the program (traced: a GC object is kept alive). */
GH_EXTERN void gh_ws_set_user(gh_ws_t *ws, void *user) GH_NONNULL(1);
GH_EXTERN void *gh_ws_user(const gh_ws_t *ws) GH_NONNULL(1);

/**
 * A frame built once and sent to many connections (broadcast): the bytes are shared,
 * not copied per connection (connections that cannot take it at once queue a
 * reference to it). Sent uncompressed (RFC 7692 §6 lets any message be uncompressed).
 * Alloc:     gh_ws_frame_new (GC object; atomic bytes). Immutable.
 * Lifetime:  while referenced (by the caller or by queues).
 * Threads:   any.
 */
typedef struct gh_ws_frame_s gh_ws_frame_t;
GH_EXTERN gh_ws_frame_t *gh_ws_frame_new(int op, const void *p, size_t n);
/** Send a built frame to one connection. @return as gh_ws_send. */
GH_EXTERN ssize_t gh_ws_send_frame(gh_ws_t *ws, const gh_ws_frame_t *f) GH_NONNULL(1, 2);
/** Send a built frame to n connections (NULL entries skipped). @return how many took
 * it (the others were closing or closed, or failed). */
GH_EXTERN size_t gh_ws_broadcast(const gh_ws_frame_t *f, gh_ws_t *const *set, size_t n)
    GH_NONNULL(1);

/** The Sec-WebSocket-Accept value for a key (RFC 6455 §4.2.2): 28 characters and a
 * NUL in out. @return 0, GH_EINVAL if key is not 16 bytes of base64. */
GH_EXTERN int gh_ws_accept_key(const char *key, char out[29]) GH_NONNULL(1, 2);

GH_END_DECLS

#endif
