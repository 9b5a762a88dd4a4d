/*
 * bench/ws/ws-server.c: the gchttp side of bench/ws/run.
 *
 *   ws-server [--listen HOST:PORT]
 *
 * Every WebSocket message is echoed, except a text message starting with "bcast": its
 * rest goes to every connection, as one frame shared by all (gh_ws_broadcast). GET /stats
 * answers "websockets N", "live_bytes B" (after two full collections), "threads T" and
 * "rss_kb K" (from /proc/self/status); GET /types, live objects per type (with WS_TYPES=1
 * in the environment, which turns on per-object accounting). No compression.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <gchttp.h>

#define MAX_CONNS 65536

static gh_ws_config_t ws_cfg;
static gh_ws_t **conns; /* gh_ptrs_new: scanned */
static size_t n_conns;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void on_open(gh_ws_t *ws, void *data)
{
    (void)data;
    pthread_mutex_lock(&mu);
    if (n_conns < MAX_CONNS)
        conns[n_conns++] = ws;
    pthread_mutex_unlock(&mu);
}

static void on_close(gh_ws_t *ws, int code, const char *reason, void *data)
{
    (void)code, (void)reason, (void)data;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_conns; i++)
        if (conns[i] == ws) {
            conns[i] = conns[--n_conns];
            conns[n_conns] = NULL;
            break;
        }
    pthread_mutex_unlock(&mu);
}

static void on_message(gh_ws_t *ws, int op, char *p, size_t n, void *data)
{
    (void)data;
    if (op == GH_WS_TEXT && n >= 5 && memcmp(p, "bcast", 5) == 0) {
        gh_ws_frame_t *f = gh_ws_frame_new(GH_WS_TEXT, p + 5, n - 5);
        if (!f)
            return;
        pthread_mutex_lock(&mu);
        gh_ws_broadcast(f, conns, n_conns);
        pthread_mutex_unlock(&mu);
        return;
    }
    (void)gh_ws_send(ws, op, p, n);
}

static long proc_status(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl))
            v = atol(line + kl);
    if (f)
        fclose(f);
    return v;
}

static void print_type(gh_type_t *t, void *data)
{
    gh_type_stats_t st;
    gh_type_stats(t, &st);
    if (st.live > 0)
        gh_response_printf(data, "type %s %ld live, %lu B each\n", st.name, st.live,
                           st.allocated ? st.bytes / st.allocated : 0);
}

static void on_request(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    gh_ws_t *ws;
    if (gh_request_header(r, "Upgrade")) {
        if (gh_ws_upgrade(w, r, &ws_cfg, &ws) < 0)
            return;
        return;
    }
    if (!strcmp(gh_request_target(r), "/types")) {
        /* Live objects per type (WS_TYPES=1 turns the accounting on at start). */
        gh_gc_collect(2);
        gh_type_foreach(print_type, w);
        return;
    }
    gh_gc_collect(2);
    size_t live = gh_gc_live_bytes();
    pthread_mutex_lock(&mu);
    size_t n = n_conns;
    pthread_mutex_unlock(&mu);
    gh_response_printf(w, "websockets %zu\nlive_bytes %zu\nthreads %ld\nrss_kb %ld\n", n, live,
                       proc_status("Threads:"), proc_status("VmRSS:"));
}

#include "../../examples/ex-common.h"

int main(int argc, char **argv)
{
    const char *listen = argc > 2 && !strcmp(argv[1], "--listen") ? argv[2] : "127.0.0.1:0";
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    gh_gc_init();
    if (getenv("WS_TYPES"))
        gh_obj_set_accounting(1);
    conns = gh_ptrs_new(MAX_CONNS);
    gh_ws_config_init(&ws_cfg);
    ws_cfg.deflate = 0;
    ws_cfg.on_open = on_open;
    ws_cfg.on_close = on_close;
    ws_cfg.on_message = on_message;
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = on_request;
    gh_server_t *srv = ex_start("ws-server", &cfg, listen, NULL);
    if (!srv)
        return 1;
    signal_next();
    gh_server_shutdown(srv, GH_SEC);
    return 0;
}
