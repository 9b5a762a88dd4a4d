/*
 * fuzz/fuzz-request-head.c: libFuzzer target for the request-head parser and the
 * header-section (trailer) parser, lib/parse.c, compiled into the target (its gh__
 * symbols are hidden in the shared library).
 *
 * Input: byte 0 picks the field-array capacity and max_head; the rest is the head.
 * Checked beyond "no crash, no out-of-bounds read" (ASan sees reads past the input
 * because libFuzzer hands over an exact-size heap copy):
 *  - a complete head: its length is within the input and within max_head, every
 *    offset (method, target, proto, fields) lies inside the head, n_fields is exact
 *    when it fits, and the status is untouched;
 *  - the same head given byte-exact parses identically; every shorter prefix of a
 *    complete head is GH_EAGAIN (a well-formed head never looks malformed early);
 *  - an error carries a status of 400, 431 or 505 (never 501 from here);
 *  - the trailer parser on the same bytes obeys the same bounds.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/parse.c"

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond))                                                                       \
            __builtin_trap();                                                              \
    } while (0)

static void check_field(const gh__hfield_t *f, size_t end)
{
    CHECK(f->name_len > 0);
    CHECK((size_t)f->name_off + f->name_len <= end);
    CHECK((size_t)f->value_off + f->value_len <= end);
    CHECK(f->value_off >= f->name_off + f->name_len);
}

static void check_error(int ret, int status, int trailers)
{
    CHECK(ret < 0);
    if (trailers)
        CHECK(status == 400 || status == 431);
    else
        CHECK(status == 400 || status == 431 || status == 505);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const size_t caps[4] = {0, 1, 8, 64};
    static const size_t maxes[4] = {8192, 64, 1 << 20, 300};
    size_t cap = caps[data[0] & 3];
    size_t max_head = maxes[(data[0] >> 2) & 3];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;

    gh__hfield_t fields[64];
    gh__reqhead_t h;
    int status = -1;
    int ret = gh__parse_request_head(buf, len, max_head, &h, fields, cap, &status);
    if (ret > 0) {
        size_t end = (size_t)ret;
        CHECK(end <= len && end <= max_head);
        CHECK(status == 0);
        CHECK(end >= 4 && memcmp(buf + end - 4, "\r\n\r\n", 4) == 0);
        CHECK(h.method_len > 0 && (size_t)h.method_off + h.method_len <= end);
        CHECK(h.target_len > 0 && (size_t)h.target_off + h.target_len <= end);
        CHECK(h.proto_len > 0 && (size_t)h.proto_off + h.proto_len <= end);
        CHECK(h.form >= GH__TARGET_ORIGIN && h.form <= GH__TARGET_ASTERISK);
        CHECK(h.skipped <= 16 && 2 * h.skipped < end);
        CHECK(h.major == 1 || (h.major == 2 && h.n_fields == 0));
        for (size_t i = 0; i < h.n_fields && i < cap; i++)
            check_field(&fields[i], end);

        /* The head alone, in an exact-size buffer: same answer. */
        char *copy = malloc(end);
        CHECK(copy != NULL);
        memcpy(copy, buf, end);
        gh__reqhead_t h2;
        gh__hfield_t f2[64];
        int st2 = -1;
        CHECK(gh__parse_request_head(copy, end, max_head, &h2, f2, cap, &st2) == ret);
        CHECK(h2.n_fields == h.n_fields && h2.target_off == h.target_off &&
              h2.target_len == h.target_len && h2.form == h.form);
        if (cap > 0 && h.n_fields > 0)
            CHECK(memcmp(f2, fields, sizeof(gh__hfield_t) *
                                         (h.n_fields < cap ? h.n_fields : cap)) == 0);
        /* Prefixes of a complete, valid head are incomplete, never errors. */
        size_t cut = end - 1 - (size_t)data[0] % end;
        int st3 = -1;
        CHECK(gh__parse_request_head(copy, cut, max_head, &h2, f2, cap, &st3) == GH_EAGAIN);
        CHECK(gh__parse_request_head(copy, end - 1, max_head, &h2, f2, cap, &st3) ==
              GH_EAGAIN);
        free(copy);
    } else if (ret != GH_EAGAIN) {
        check_error(ret, status, 0);
    } else {
        CHECK(len <= max_head);
    }

    /* The same bytes as a trailer section. */
    size_t nf = 0;
    status = -1;
    ret = gh__parse_fields(buf, len, max_head, fields, cap, &nf, &status);
    if (ret > 0) {
        CHECK((size_t)ret <= len && (size_t)ret <= max_head);
        CHECK(status == 0);
        CHECK(ret >= 2 && memcmp(buf + ret - 2, "\r\n", 2) == 0);
        for (size_t i = 0; i < nf && i < cap; i++)
            check_field(&fields[i], (size_t)ret);
    } else if (ret != GH_EAGAIN) {
        check_error(ret, status, 1);
    }

    /* The token helpers over the same bytes. */
    size_t tl = len < 32 ? len : 32;
    if (gh__is_token(buf, tl))
        CHECK(tl > 0);
    (void)gh__token_eq(buf, tl, "transfer-encoding");
    return 0;
}
