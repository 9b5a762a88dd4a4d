/*
 * examples/fileserver.c: serve a directory (gchttp/fileserver.h).
 *
 *   examples/fileserver --root DIR [--listen HOST:PORT | unix:/path | systemd]
 *                       [--list] [--no-symlinks] [--log] [--workers N]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gchttp.h>

#include "ex-common.h"

/* One line per request on stderr (the access log hook runs on the serving thread). */
static void log_line(const gh_access_entry_t *e, void *data)
{
    (void)data;
    fprintf(stderr, "%s \"%s %s\" %d %lld %.3fms%s\n", e->remote_addr, e->method, e->target,
            e->status, (long long)e->bytes, (double)e->duration / 1e6,
            e->err ? " (cut short)" : "");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fileserver --root DIR [--listen HOST:PORT] [--list] [--no-symlinks]\n"
            "                  [--log] [--workers N]\n"
            "Serve the files under DIR (default listen address 127.0.0.1:8080; also\n"
            "unix:/path, or \"systemd\" for the sockets of socket activation).\n"
            "--list lists directories without index.html; --no-symlinks refuses every\n"
            "symbolic link (by default links are followed while they stay inside DIR).\n"
            "--log prints one line per request on stderr.\n"
            "Prints the bound address on stdout, then serves until SIGINT/SIGTERM.\n");
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8080";
    gh_fileserver_config_t fcfg;
    gh_fileserver_config_init(&fcfg);
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--root") && i + 1 < argc) {
            fcfg.root = argv[++i];
        } else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            listen = argv[++i];
        } else if (!strcmp(argv[i], "--list")) {
            fcfg.list_dirs = 1;
        } else if (!strcmp(argv[i], "--log")) {
            cfg.access_log = log_line;
        } else if (!strcmp(argv[i], "--no-symlinks")) {
            fcfg.symlinks = GH_SYMLINKS_NONE;
        } else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            cfg.max_workers = atoi(argv[++i]);
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!fcfg.root) {
        usage(stderr);
        return 2;
    }
    int sigs[] = {SIGINT, SIGTERM, 0};
    if (signals_init(sigs) < 0)
        return 1;
    gh_fileserver_t *fs;
    int rc = gh_fileserver_new(&fs, &fcfg);
    if (rc < 0) {
        fprintf(stderr, "fileserver: %s: %s\n", fcfg.root, gh_strerror(rc));
        return 1;
    }
    cfg.handler = gh_fileserver_serve;
    cfg.handler_data = fs;
    gh_server_t *srv;
    rc = gh_server_new(&srv, &cfg);
    if (rc == 0)
        rc = strcmp(listen, "systemd") == 0 ? gh_server_listen_systemd(srv)
                                            : gh_server_listen_addr(srv, listen);
    if (rc == 0 && strcmp(listen, "systemd") == 0)
        rc = GH_ENOENT; /* LISTEN_FDS=0: nothing to serve */
    if (rc >= 0)
        rc = gh_server_start(srv);
    if (rc < 0) {
        fprintf(stderr, "fileserver: %s: %s\n", listen, gh_strerror(rc));
        return 1;
    }
    printf("listening on port %d\n", gh_server_port(srv, 0));
    fflush(stdout);
    signal_next();
    gh_server_shutdown(srv, 5 * GH_SEC);
    gh_fileserver_close(fs);
    return 0;
}
