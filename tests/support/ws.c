/* tests/support/ws.c: a raw WebSocket client's framing (tests/support/ws.h). */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "../test-common.h"
#include "ws.h"

size_t th_ws_frame(unsigned char *out, int b0, int masked, const void *payload, size_t n)
{
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = 0;
    int m = masked ? 0x80 : 0;
    out[h++] = (unsigned char)b0;
    if (n < 126) {
        out[h++] = (unsigned char)(m | (int)n);
    } else if (n <= 0xffff) {
        out[h++] = (unsigned char)(m | 126);
        out[h++] = (unsigned char)(n >> 8);
        out[h++] = (unsigned char)n;
    } else {
        out[h++] = (unsigned char)(m | 127);
        for (int i = 0; i < 8; i++)
            out[h++] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(out + h, key, 4);
        h += 4;
    }
    for (size_t i = 0; payload && i < n; i++)
        out[h + i] = ((const unsigned char *)payload)[i] ^ (masked ? key[i & 3] : 0);
    return h + (payload ? n : 0);
}

int th_ws_read_frame(int fd, unsigned char *buf, size_t cap, size_t *n, int timeout_ms)
{
    unsigned char h[10];
    if (th_read_exact(fd, h, 2, timeout_ms) < 0)
        return -1;
    ck_assert_int_eq(h[1] & 0x80, 0); /* servers never mask (§5.1) */
    uint64_t len = h[1] & 0x7f;
    if (len == 126) {
        ck_assert_int_eq(th_read_exact(fd, h + 2, 2, timeout_ms), 0);
        len = (uint64_t)h[2] << 8 | h[3];
    } else if (len == 127) {
        ck_assert_int_eq(th_read_exact(fd, h + 2, 8, timeout_ms), 0);
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
    }
    ck_assert_uint_le(len, cap);
    ck_assert_int_eq(th_read_exact(fd, buf, (size_t)len, timeout_ms), 0);
    *n = (size_t)len;
    return h[0];
}
