/*
 * tests/support/server.h: the server fixture the network suites share
 * (tests/support/server.c): start a server on 127.0.0.1:0, read its figures, wait
 * (bounded) for them to change, connect to it, exchange a request.
 *
 * One server per test: Check forks a child per test, so each test starts with none
 * (th_srv NULL) and a suite's teardown calls th_server_close(). The helpers assert on
 * the calling (test) thread; never call them from a handler.
 */
#ifndef GH_TEST_SUPPORT_SERVER_H
#define GH_TEST_SUPPORT_SERVER_H

#include <gchttp.h>

/* Bound on every read of a response, in milliseconds. */
#define TH_IO_MS 5000

/* The current test's server and its port. Globals, so the collector sees the server. */
extern gh_server_t *th_srv;
extern int th_port;
/* The last response th_read_status read (plain bytes, NUL-terminated). */
extern char th_rbuf[1 << 16];

/* Start th_srv with cfg on 127.0.0.1:0 and set th_port (asserts each step). */
void th_server_start(const gh_server_config_t *cfg);
/* Start th_srv with the default configuration and handler h (the common fixture). */
void th_server_start_handler(gh_handler_fn h);
/* Close th_srv if one was started; th_srv is NULL afterwards. */
void th_server_close(void);

/* th_srv's figures now. */
gh_server_stats_t th_stats(void);
/* Wait, polling every 2 ms for at most ms, until pred(th_srv's figures) holds: the
 * server gets there asynchronously, on its poller and workers. 1, or 0 on timeout. */
int th_wait_stats(int (*pred)(const gh_server_stats_t *), int ms);
/* Predicates for th_wait_stats. */
int th_no_open_conns(const gh_server_stats_t *st);
/* No request in progress and every worker back waiting, i.e. past the stack scrub
 * that follows each request. */
int th_quiescent(const gh_server_stats_t *st);
/* th_quiescent, and no connection open. */
int th_all_closed(const gh_server_stats_t *st);

/* A new connection to th_port (asserts). */
int th_connect_srv(void);
/* Send s on fd (asserts). */
void th_send_str(int fd, const char *s);
/* Read one response on fd into th_rbuf within TH_IO_MS (asserts one came); its status. */
int th_read_status(int fd);
/* The body of the response in th_rbuf ("" when there is none). */
const char *th_rbody(void);

/* Wait at most ms for sig to be cancelled (asserts it was). */
void th_wait_sig(gh_ctx_t *sig, int ms);
/* Milliseconds since t0. */
long th_ms_since(gh_time_t t0);
/* 1 if r's target (its path, for an absolute-form target) is path, or path followed
 * by a query. */
int th_path_is(const gh_request_t *r, const char *path);

#endif
