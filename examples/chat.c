/*
 * examples/chat.c: a WebSocket chat room: every message goes to everyone connected.
 *
 *   examples/chat --listen 127.0.0.1:PORT
 *
 * Connect with any WebSocket client to ws://HOST:PORT/ (GET /stats answers "members N").
 * Each text message is sent to every member, the sender included, as "<from> text",
 * where from is the sender's address. The frame is built once per message and shared by
 * every connection's queue (gh_ws_broadcast): 10,000 members cost one copy, not 10,000.
 * A member whose queue passes 1 MiB (it stopped reading) is closed with 1008.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <gchttp.h>

#define MAX_MEMBERS 65536
#define MAX_QUEUED (1 << 20)

static gh_ws_config_t ws_cfg;
static gh_ws_t **members; /* gh_ptrs_new: scanned, so it keeps the members alive */
static size_t n_members;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void on_open(gh_ws_t *ws, void *data)
{
    (void)data;
    pthread_mutex_lock(&mu);
    if (n_members < MAX_MEMBERS)
        members[n_members++] = ws;
    else
        (void)gh_ws_close(ws, GH_WS_POLICY, "room full");
    pthread_mutex_unlock(&mu);
}

static void on_close(gh_ws_t *ws, int code, const char *reason, void *data)
{
    (void)code, (void)reason, (void)data;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_members; i++)
        if (members[i] == ws) {
            members[i] = members[--n_members];
            members[n_members] = NULL;
            break;
        }
    pthread_mutex_unlock(&mu);
}

static void on_message(gh_ws_t *ws, int op, char *p, size_t n, void *data)
{
    (void)data;
    if (op != GH_WS_TEXT)
        return;
    const char *from = gh_netconn_remote_addr(gh_watch_netconn(gh_ws_watch(ws)));
    size_t fl = strlen(from);
    char *line = gh_bytes_new(fl + n + 3);
    if (!line)
        return;
    snprintf(line, fl + 4, "<%s> ", from);
    memcpy(line + fl + 3, p, n);
    gh_ws_frame_t *f = gh_ws_frame_new(GH_WS_TEXT, line, fl + 3 + n);
    if (!f)
        return;
    pthread_mutex_lock(&mu);
    gh_ws_broadcast(f, members, n_members);
    for (size_t i = 0; i < n_members; i++)
        if (gh_ws_queued(members[i]) > MAX_QUEUED)
            (void)gh_ws_close(members[i], GH_WS_POLICY, "not reading");
    pthread_mutex_unlock(&mu);
}

static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    gh_ws_t *ws;
    if (gh_request_header(r, "Upgrade")) {
        if (gh_ws_upgrade(w, r, &ws_cfg, &ws) < 0)
            return; /* a bad handshake was answered */
        return;
    }
    pthread_mutex_lock(&mu);
    size_t n = n_members;
    pthread_mutex_unlock(&mu);
    gh_response_header_set(w, "Content-Type", "text/plain; charset=utf-8");
    if (strcmp(gh_request_target(r), "/stats") == 0) {
        gh_response_printf(w, "members %zu\n", n);
        return;
    }
    gh_response_header_set(w, "Upgrade", "websocket");
    gh_response_write_header(w, 426);
    gh_response_printf(w, "a WebSocket chat room: %zu members\n", n);
}

#include "ex-common.h"

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8080";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            listen = argv[++i];
        } else {
            FILE *f = strcmp(argv[i], "--help") ? stderr : stdout;
            fprintf(f, "usage: chat [--listen HOST:PORT]\n"
                       "A WebSocket chat room: each text message goes to every member.\n"
                       "  --listen HOST:PORT   address to listen on (default 127.0.0.1:8080)\n"
                       "GET /stats answers \"members N\". Prints \"listening on port N\".\n");
            return f == stdout ? 0 : 2;
        }
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    gh_gc_init();
    members = gh_ptrs_new(MAX_MEMBERS);
    if (!members)
        return 1;
    gh_ws_config_init(&ws_cfg);
    ws_cfg.on_open = on_open;
    ws_cfg.on_message = on_message;
    ws_cfg.on_close = on_close;
    ws_cfg.max_message = 64 << 10;
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = on_request;
    static const int no_extra[] = {0};
    gh_server_t *srv = ex_start("chat", &cfg, listen, no_extra);
    if (!srv)
        return 1;
    signal_next(); /* SIGINT or SIGTERM */
    gh_server_shutdown(srv, 5 * GH_SEC);
    return 0;
}
