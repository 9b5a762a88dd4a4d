/*
 * tests/support/ws.h: a raw WebSocket client's framing (RFC 6455 §5.2) for the suites
 * that drive a WebSocket server over a plain socket (tests/support/ws.c):
 * tests/test-websocket.c and tests/test-examples.c.
 */
#ifndef GH_TEST_SUPPORT_WS_H
#define GH_TEST_SUPPORT_WS_H

#include <stddef.h>

/* A client frame into out: first byte b0 (FIN | opcode), masked with a fixed key unless
 * masked is 0, n bytes of payload (none when payload is NULL). Returns its length; out
 * must hold n + 14 bytes. */
size_t th_ws_frame(unsigned char *out, int b0, int masked, const void *payload, size_t n);
/* Read one server frame within timeout_ms: returns its first byte (FIN | opcode) and
 * fills buf (cap bytes) and *n; -1 on EOF or timeout before its header. Asserts that the
 * server did not mask (§5.1) and that the payload fits. */
int th_ws_read_frame(int fd, unsigned char *buf, size_t cap, size_t *n, int timeout_ms);

#endif
