/*
 * examples/echo.c: answer every request with what the server parsed, as JSON.
 *
 *   examples/echo --listen 127.0.0.1:PORT
 *
 * {"method":…, "target":…, "proto":…, "host":…, "headers":[[name,value],…],
 *  "body":…, "trailers":[[name,value],…]}. A body that fails to read (bad chunking,
 * short body) gets 400 instead. An httpbin-like debugging tool, and a test fixture.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gchttp.h>

#include "ex-common.h"

#define MAX_BODY (16u << 20)

static void json_str(gh_response_t *w, const char *s, size_t n)
{
    char buf[256];
    size_t k = 0;
    buf[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (k > sizeof buf - 8) {
            gh_response_write(w, buf, k);
            k = 0;
        }
        if (ch == '"' || ch == '\\') {
            buf[k++] = '\\';
            buf[k++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            k += (size_t)snprintf(buf + k, 8, "\\u%04x", ch);
        } else {
            buf[k++] = (char)ch; /* UTF-8 passes through; other bytes as they are */
        }
    }
    buf[k++] = '"';
    gh_response_write(w, buf, k);
}

static void json_cstr(gh_response_t *w, const char *s) { json_str(w, s, strlen(s)); }

static void echo(gh_response_t *w, gh_request_t *r, void *data)
{
    (void)data;
    char *body = NULL;
    ssize_t blen = gh_request_read_all(r, MAX_BODY, &body);
    if (blen < 0) {
        gh_response_header_set(w, "Content-Type", "text/plain; charset=utf-8");
        gh_response_header_set(w, "Connection", "close");
        gh_response_write_header(w, 400);
        gh_response_printf(w, "reading the body failed: %s\n", gh_strerror((int)blen));
        return;
    }
    gh_response_header_set(w, "Content-Type", "application/json");
    gh_response_puts(w, "{\"method\":");
    json_cstr(w, gh_request_method(r));
    gh_response_puts(w, ",\"target\":");
    json_cstr(w, gh_request_target(r));
    gh_response_puts(w, ",\"proto\":");
    json_cstr(w, gh_request_proto(r));
    gh_response_puts(w, ",\"host\":");
    json_cstr(w, gh_request_host(r));
    gh_response_puts(w, ",\"headers\":[");
    for (size_t i = 0; i < gh_request_header_count(r); i++) {
        const char *n, *v;
        if (gh_request_header_at(r, i, &n, &v) < 0)
            break;
        gh_response_puts(w, i ? ",[" : "[");
        json_cstr(w, n);
        gh_response_puts(w, ",");
        json_cstr(w, v);
        gh_response_puts(w, "]");
    }
    gh_response_puts(w, "],\"body\":");
    json_str(w, body, (size_t)blen);
    gh_response_puts(w, ",\"trailers\":[");
    for (size_t i = 0; i < gh_request_trailer_count(r); i++) {
        const char *n, *v;
        if (gh_request_trailer_at(r, i, &n, &v) < 0)
            break;
        gh_response_puts(w, i ? ",[" : "[");
        json_cstr(w, n);
        gh_response_puts(w, ",");
        json_cstr(w, v);
        gh_response_puts(w, "]");
    }
    gh_response_puts(w, "]}\n");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: echo [--listen HOST:PORT]\n"
               "Answer every request 200 application/json with what the server parsed:\n"
               "method, target, proto, host, headers (in order), decoded body, trailers.\n"
               "A body that cannot be read (bad chunking, short body) gets 400.\n"
               "Prints \"listening on port N\" on stdout; serves until SIGINT/SIGTERM.\n");
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8080";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
            listen = argv[++i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = echo;
    gh_server_t *srv = ex_start("echo", &cfg, listen, NULL);
    if (!srv)
        return 1;
    signal_next();
    gh_server_shutdown(srv, 5 * GH_SEC);
    return 0;
}
