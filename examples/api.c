/*
 * examples/api.c: a JSON API of three routes on the request multiplexer (gchttp/mux.h).
 *   examples/api [--listen HOST:PORT]
 * GET /items (the list), POST /items (create from the form field "name": 201, or 422),
 * GET /items/{id} (one item, 404 if none); other methods get 405 with Allow.
 */
#include <pthread.h>
#include <stdlib.h>

#include "ex-common.h"

#define SAFE "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-"
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *items[1024]; /* GC strings: static data is a root of the collector */
static int n_items;

static const char *lookup(int id)
{
    pthread_mutex_lock(&mu);
    const char *name = id >= 1 && id <= n_items ? items[id - 1] : NULL;
    pthread_mutex_unlock(&mu);
    return name;
}

static void list(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)gh_response_header_set(w, "Content-Type", "application/json");
    gh_response_puts(w, "[");
    for (int id = 1; lookup(id); id++)
        gh_response_printf(w, "%s{\"id\":%d,\"name\":\"%s\"}", id > 1 ? "," : "", id, lookup(id));
    gh_response_puts(w, "]\n");
}

static void create(gh_response_t *w, gh_request_t *r, void *data)
{
    gh_values_t *form;
    const char *name = gh_request_post_form(r, 4096, &form) ? NULL : gh_values_get(form, "name");
    if (!name || !*name || strlen(name) > 64 || strspn(name, SAFE) != strlen(name)) {
        gh_response_error(w, "name: 1 to 64 letters, digits, spaces, _ or -", 422);
        return;
    }
    char *copy = gh_strdup(name);
    pthread_mutex_lock(&mu);
    int id = copy && n_items < 1024 ? ++n_items : 0;
    if (id)
        items[id - 1] = copy;
    pthread_mutex_unlock(&mu);
    if (!id) {
        gh_response_error(w, "no room", 507);
        return;
    }
    (void)gh_response_header_set(w, "Content-Type", "application/json");
    gh_response_write_header(w, 201);
    gh_response_printf(w, "{\"id\":%d,\"name\":\"%s\"}\n", id, name);
}

static void show(gh_response_t *w, gh_request_t *r, void *data)
{
    int id = atoi(gh_request_path_value(r, "id")); /* from "GET /items/{id}" */
    const char *name = lookup(id);
    if (!name) {
        gh_response_error(w, "no such item", 404);
        return;
    }
    (void)gh_response_header_set(w, "Content-Type", "application/json");
    gh_response_printf(w, "{\"id\":%d,\"name\":\"%s\"}\n", id, name);
}

int main(int argc, char **argv)
{
    if (argc != 1 && (argc != 3 || strcmp(argv[1], "--listen"))) {
        printf("usage: api [--listen HOST:PORT]\n");
        return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    gh_gc_init();
    gh_mux_t *mux = gh_mux_new();
    if (!mux || gh_mux_handle(mux, "GET /items", list, NULL) ||
        gh_mux_handle(mux, "POST /items", create, NULL) ||
        gh_mux_handle(mux, "GET /items/{id}", show, NULL))
        return 1; /* a conflict: gh_mux_error(mux) names both patterns */
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = gh_mux_serve;
    cfg.handler_data = mux;
    gh_server_t *srv = ex_start("api", &cfg, argc == 3 ? argv[2] : "127.0.0.1:8080", NULL);
    if (!srv)
        return 1;
    signal_next(); /* SIGINT or SIGTERM */
    return gh_server_shutdown(srv, 5 * GH_SEC) ? 1 : 0;
}
