/*
 * tests/support/client.h: the Check suites' loopback HTTP client (tests/support/client.c).
 *
 * Plain sockets and plain memory (no GC pointers). Connecting and sending go through
 * examples/httpc.h, the tree's one small loopback client; this adds what tests need on
 * top: reads bounded by a deadline, response framing (Content-Length, chunked,
 * until-close), a per-descriptor stash for pipelined responses, header probes, and
 * running external clients (curl, python3).
 */
#ifndef GH_TEST_SUPPORT_CLIENT_H
#define GH_TEST_SUPPORT_CLIENT_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

/* Connect to 127.0.0.1:port (blocking). Returns the fd or -1. */
int th_connect(int port);
/* Write all of buf. Returns 0 or -1. */
int th_send(int fd, const void *buf, size_t n);
int th_sends(int fd, const char *s);
/* Read until the peer closes, cap is full or timeout_ms passes. Returns bytes read
 * (NUL-terminated in buf, which must hold cap + 1), or -1 on error. *closed is set to 1
 * when EOF was seen. */
ssize_t th_read_all(int fd, char *buf, size_t cap, int timeout_ms, int *closed);
/* Read exactly n bytes within timeout_ms. 0, or -1 on EOF, error or timeout. */
int th_read_exact(int fd, void *buf, size_t n, int timeout_ms);
/* Read one HTTP response (headers + Content-Length or chunked body, or until close).
 * Returns its length in buf (NUL-terminated), 0 on clean EOF before any byte, -1 on
 * error or timeout. Leftover bytes are kept in the per-fd stash for the next call. */
ssize_t th_read_response(int fd, char *buf, size_t cap, int timeout_ms);
/* Status code of a response in buf, or -1. */
int th_status(const char *resp);
/* Pointer to the body of a response in buf (after CRLFCRLF), or NULL. */
const char *th_body(const char *resp);
/* 1 if the response's header block contains "name: value" (case-insensitive name). */
int th_has_header(const char *resp, const char *name, const char *value);
/* Wait until the peer closes fd (read returns 0 or ECONNRESET) within timeout_ms.
 * Returns 1 if closed, 0 on timeout. Discards any data. */
int th_wait_closed(int fd, int timeout_ms);
/* Run a shell command and capture stdout (NUL-terminated) into out; returns exit status
 * or -1. */
int th_run(const char *cmd, char *out, size_t cap);
/* Wait at most ms for *counter (guarded by mu, signalled on cv by whoever raises it) to
 * reach want. 1 if it did, 0 on timeout. */
int th_wait_count(pthread_mutex_t *mu, pthread_cond_t *cv, const int *counter, int want, int ms);
/* Raise the soft limit on open descriptors to the hard one (suites with 1,000 sockets;
 * children inherit it). */
void th_raise_nofile(void);
/* Path of a program from the environment (e.g. "CURL") or PATH; NULL if unavailable. */
const char *th_tool(const char *envname, const char *fallback);
/* A real client some tests of the suite need (curl, python3 with a module): call it
 * from test_suite(), before the tests fork. Returns th_tool(envname, prog) when
 * `PROG probe` exits 0 (probe: shell words, e.g. "-c 'import websockets'"), else NULL
 * after noting the client missing; the tests that need it then return without
 * asserting, and the program ends SKIP (77) when every test that ran passed, or FAIL
 * when the environment says GH_REQUIRE_CLIENTS=1 (CI): a test that could not run
 * never reports PASS. */
const char *th_client(const char *envname, const char *prog, const char *probe);
/* How many clients th_client found missing. */
int th_clients_missing(void);
/* 1 when GH_REQUIRE_CLIENTS is set (and not "0"): a missing client fails the suite. */
int th_clients_required(void);

#endif
