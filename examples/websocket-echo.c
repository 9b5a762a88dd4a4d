/*
 * examples/websocket-echo.c: an RFC 6455 echo server over gchttp/websocket.h.
 *
 *   examples/websocket-echo --listen 127.0.0.1:PORT [--stats] [--max-message BYTES]
 *
 * The handler upgrades every request that asks for it (gh_ws_upgrade checks the
 * handshake and answers bad ones); the server's loops then serve the connections, no
 * thread per connection, and every text or binary message is sent back. Requests that
 * are not upgrades get 426. With --stats, GET /stats and SIGUSR1 report the number of
 * open WebSockets and the live GC bytes after two full collections.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <gchttp.h>

static int n_open; /* open WebSockets (atomic) */
static int stats_on;
static gh_ws_config_t ws_cfg;

static void on_message(gh_ws_t *ws, int op, char *p, size_t n, void *data)
{
    (void)data;
    (void)gh_ws_send(ws, op, p, n); /* a peer that stops reading is closed at its end */
}

static void on_close(gh_ws_t *ws, int code, const char *reason, void *data)
{
    (void)ws, (void)code, (void)reason, (void)data;
    __atomic_sub_fetch(&n_open, 1, __ATOMIC_SEQ_CST);
}

static void stats_report(char *buf, size_t cap)
{
    gh_gc_collect(2);
    size_t live = gh_gc_live_bytes();
    snprintf(buf, cap, "websockets %d\nlive_bytes %zu\n",
             __atomic_load_n(&n_open, __ATOMIC_SEQ_CST), live);
}

static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    if (gh_request_header(r, "Upgrade")) {
        gh_ws_t *ws;
        __atomic_add_fetch(&n_open, 1, __ATOMIC_SEQ_CST);
        if (gh_ws_upgrade(w, r, &ws_cfg, &ws) < 0)
            __atomic_sub_fetch(&n_open, 1, __ATOMIC_SEQ_CST);
        return;
    }
    gh_response_header_set(w, "Content-Type", "text/plain; charset=utf-8");
    if (stats_on && strcmp(gh_request_target(r), "/stats") == 0) {
        char buf[128];
        stats_report(buf, sizeof buf);
        gh_response_puts(w, buf);
        return;
    }
    gh_response_header_set(w, "Upgrade", "websocket");
    gh_response_write_header(w, 426);
    gh_response_puts(w, "this is a WebSocket echo server\n");
}

#include "ex-common.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: websocket-echo [--listen HOST:PORT] [--stats] [--max-message BYTES]\n"
               "An RFC 6455 WebSocket echo server: every text or binary message is sent back.\n"
               "  --listen HOST:PORT   address to listen on (default 127.0.0.1:8080)\n"
               "  --stats              GET /stats and SIGUSR1 report open WebSockets and\n"
               "                       live GC bytes after two full collections\n"
               "  --max-message BYTES  largest message accepted, else close 1009 (default 16 MiB)\n"
               "Prints \"listening on port N\" on stdout; serves until SIGINT/SIGTERM.\n");
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8080";
    gh_ws_config_init(&ws_cfg);
    ws_cfg.on_message = on_message;
    ws_cfg.on_close = on_close;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            listen = argv[++i];
        } else if (!strcmp(argv[i], "--stats")) {
            stats_on = 1;
        } else if (!strcmp(argv[i], "--max-message") && i + 1 < argc) {
            ws_cfg.max_message = strtoul(argv[++i], NULL, 10);
        } else {
            usage(stderr);
            return 2;
        }
    }
    /* Every idle WebSocket is a descriptor: allow as many as the hard limit does. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    static const int extra_sigs[] = {SIGUSR1, 0};
    gh_gc_init();
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = on_request;
    gh_server_t *srv = ex_start("websocket-echo", &cfg, listen, extra_sigs);
    if (!srv)
        return 1;
    while (signal_next() == SIGUSR1) {
        if (stats_on) {
            char buf[128];
            stats_report(buf, sizeof buf);
            fputs(buf, stdout);
            fflush(stdout);
        }
    }
    gh_server_shutdown(srv, 5 * GH_SEC);
    return 0;
}
