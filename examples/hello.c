/*
 * examples/hello.c: keep-alive "Hello world.\n" (13 bytes) for load generators.
 *
 *   examples/hello --listen 127.0.0.1:8080 [--loops N] [--workers N]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gchttp.h>

#include "ex-common.h"

static void hello(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)r;
    (void)data;
    gh_response_header_set(w, "Content-Type", "text/plain; charset=utf-8");
    gh_response_write(w, "Hello world.\n", 13);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: hello [--listen HOST:PORT] [--loops N] [--workers N]\n"
               "Serve \"Hello world.\\n\" on every request (default 127.0.0.1:8080).\n"
               "--loops: event loops (default: one per CPU this process may use).\n"
               "Prints the bound address on stdout, then serves until SIGINT/SIGTERM.\n");
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8080";
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            listen = argv[++i];
        } else if (!strcmp(argv[i], "--loops") && i + 1 < argc) {
            cfg.loops = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            cfg.max_workers = atoi(argv[++i]);
        } else {
            usage(stderr);
            return 2;
        }
    }
    cfg.handler = hello;
    gh_server_t *srv = ex_start("hello", &cfg, listen, NULL);
    if (!srv)
        return 1;
    signal_next();
    gh_server_shutdown(srv, 5 * GH_SEC);
    return 0;
}
