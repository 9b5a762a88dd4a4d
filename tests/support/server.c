/* tests/support/server.c: the server fixture the network suites share
 * (tests/support/server.h). */
#include "config.h"

#include <string.h>
#include <time.h>

#include "../test-common.h"

gh_server_t *th_srv;
int th_port;
char th_rbuf[1 << 16];

void th_server_start(const gh_server_config_t *cfg)
{
    ck_assert_int_eq(gh_server_new(&th_srv, cfg), 0);
    ck_assert_int_eq(gh_server_listen(th_srv, "127.0.0.1", 0), 0);
    ck_assert_int_eq(gh_server_start(th_srv), 0);
    th_port = gh_server_port(th_srv, 0);
    ck_assert_int_gt(th_port, 0);
}

void th_server_start_handler(gh_handler_fn h)
{
    gh_server_config_t cfg;
    gh_server_config_init(&cfg);
    cfg.handler = h;
    th_server_start(&cfg);
}

void th_server_close(void)
{
    if (th_srv)
        gh_server_close(th_srv);
    th_srv = NULL;
}

gh_server_stats_t th_stats(void)
{
    gh_server_stats_t st;
    gh_server_stats(th_srv, &st);
    return st;
}

int th_wait_stats(int (*pred)(const gh_server_stats_t *), int ms)
{
    gh_time_t deadline = gh_now() + (gh_time_t)ms * GH_MSEC;
    for (;;) {
        gh_server_stats_t st = th_stats();
        if (pred(&st))
            return 1;
        if (gh_now() >= deadline)
            return 0;
        struct timespec ts = {0, 2 * 1000 * 1000}; /* polling a condition, bounded above */
        nanosleep(&ts, NULL);
    }
}

int th_no_open_conns(const gh_server_stats_t *st) { return st->open_conns == 0; }

int th_quiescent(const gh_server_stats_t *st)
{
    return st->active_conns == 0 && st->idle_workers == st->workers;
}

int th_all_closed(const gh_server_stats_t *st) { return st->open_conns == 0 && th_quiescent(st); }

int th_connect_srv(void)
{
    int fd = th_connect(th_port);
    ck_assert_int_ge(fd, 0);
    return fd;
}

void th_send_str(int fd, const char *s) { ck_assert_int_eq(th_sends(fd, s), 0); }

int th_read_status(int fd)
{
    ck_assert_int_gt(th_read_response(fd, th_rbuf, sizeof th_rbuf - 1, TH_IO_MS), 0);
    return th_status(th_rbuf);
}

const char *th_rbody(void)
{
    const char *b = th_body(th_rbuf);
    return b ? b : "";
}

void th_wait_sig(gh_ctx_t *sig, int ms)
{
    ck_assert_msg(gh_ctx_wait(sig, gh_now() + (gh_time_t)ms * GH_MSEC) != 0,
                  "no signal within %d ms", ms);
}

long th_ms_since(gh_time_t t0) { return (long)((gh_now() - t0) / GH_MSEC); }

int th_path_is(const gh_request_t *r, const char *path)
{
    const char *t = gh_request_target(r);
    const char *scheme_end = strstr(t, "://");
    if (t[0] != '/' && scheme_end) /* absolute-form: the path follows the authority */
        t = strchr(scheme_end + 3, '/') ? strchr(scheme_end + 3, '/') : "";
    size_t n = strlen(path);
    return strncmp(t, path, n) == 0 && (t[n] == 0 || t[n] == '?');
}
