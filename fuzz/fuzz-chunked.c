/*
 * fuzz/fuzz-chunked.c: libFuzzer target for the incremental chunked decoder,
 * gh__chunked_step / gh__chunked_unread (lib/parse.c, compiled into the target).
 *
 * Input: bytes 0-3 seed a small PRNG; the rest is a chunked body. The body is decoded
 * twice: once in one piece (the reference) and once fed in random split sizes, with the
 * caller sometimes taking less of a data span than offered (gh__chunked_unread) and
 * re-feeding the rest. Checked:
 *  - every call: *used <= n; a data span lies inside the input, is non-empty and ends
 *    at *used; GH__CHUNK_NEED consumed everything;
 *  - GH__CHUNK_TRAILERS and errors are sticky (the next call uses nothing and returns
 *    the same);
 *  - the split decode yields the same body bytes and the same outcome (trailers /
 *    error / need more) as the one-piece decode: splitting never changes the meaning;
 *  - when both reach the trailers, they start at the same offset of the input.
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

typedef struct outcome {
    int end;          /* GH__CHUNK_TRAILERS, GH__CHUNK_NEED or GH_EPROTO */
    size_t trailers;  /* input offset of the trailer section */
    size_t err_at;    /* input offset where the error was reported */
    char *body;
    size_t body_len;
} outcome_t;

static uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x ? x : 0x9e3779b9u;
}

/* One step with the per-call invariants checked. */
static int step(gh__chunked_t *c, const char *in, size_t n, size_t *used, size_t *off,
                size_t *dlen)
{
    *used = (size_t)-1;
    int rc = gh__chunked_step(c, in, n, used, off, dlen);
    CHECK(*used <= n);
    switch (rc) {
    case GH__CHUNK_DATA:
        CHECK(*dlen > 0);
        CHECK(*off <= n && *dlen <= n - *off);
        CHECK(*off + *dlen == *used);
        break;
    case GH__CHUNK_NEED:
        CHECK(*used == n);
        CHECK(*dlen == 0);
        break;
    case GH__CHUNK_TRAILERS:
    case GH_EPROTO: {
        /* Sticky: again, with the rest of the input, uses nothing. */
        gh__chunked_t again = *c;
        size_t u2, o2, l2;
        int rc2 = gh__chunked_step(&again, in + *used, n - *used, &u2, &o2, &l2);
        CHECK(rc2 == rc && u2 == 0 && l2 == 0);
        break;
    }
    default:
        CHECK(0);
    }
    return rc;
}

/* Decode in[0..n) in pieces of at most `max_piece` (0: one piece); when `rng` is
 * set, sometimes take only part of a data span. */
static void decode(const char *in, size_t n, uint32_t *rng, outcome_t *o)
{
    gh__chunked_t c;
    gh__chunked_init(&c);
    size_t pos = 0;
    o->body = malloc(n + 1);
    CHECK(o->body != NULL);
    o->body_len = 0;
    o->end = GH__CHUNK_NEED;
    o->trailers = o->err_at = 0;
    for (int guard = 0; guard < 1000000; guard++) {
        size_t piece = n - pos;
        if (rng && piece > 0) {
            uint32_t r = rng_next(rng);
            size_t lim = (r & 3) == 0 ? 1 : (r & 3) == 1 ? 7 : (r & 3) == 2 ? 64 : 4096;
            size_t want = 1 + (r >> 8) % lim;
            if (want < piece)
                piece = want;
        }
        /* An exact-size copy, so a read past the piece is an ASan report. */
        char *buf = malloc(piece ? piece : 1);
        CHECK(buf != NULL);
        memcpy(buf, in + pos, piece);
        size_t used, off, dlen;
        int rc = step(&c, buf, piece, &used, &off, &dlen);
        if (rc == GH__CHUNK_DATA) {
            size_t take = dlen;
            if (rng && dlen > 1 && (rng_next(rng) & 7) == 0) {
                take = 1 + rng_next(rng) % (dlen - 1);
                gh__chunked_unread(&c, dlen - take);
            }
            CHECK(memcmp(buf + off, in + pos + off, take) == 0);
            memcpy(o->body + o->body_len, buf + off, take);
            o->body_len += take;
            pos += off + take;
        } else {
            pos += used;
        }
        free(buf);
        CHECK(pos <= n);
        if (rc == GH__CHUNK_TRAILERS) {
            o->end = rc;
            o->trailers = pos;
            return;
        }
        if (rc == GH_EPROTO) {
            o->end = rc;
            o->err_at = pos;
            return;
        }
        if (rc == GH__CHUNK_NEED && pos == n)
            return;
    }
    CHECK(0); /* no progress */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint32_t seed;
    memcpy(&seed, data, 4);
    seed |= 1;
    const char *in = (const char *)data + 4;
    size_t n = size - 4;

    outcome_t whole, split;
    decode(in, n, NULL, &whole);
    decode(in, n, &seed, &split);

    CHECK(whole.end == split.end);
    if (whole.end == GH_EPROTO) {
        /* The error is seen at the same byte, and the body before it agrees. */
        CHECK(whole.err_at == split.err_at);
    }
    if (whole.end == GH__CHUNK_TRAILERS)
        CHECK(whole.trailers == split.trailers);
    CHECK(whole.body_len == split.body_len);
    CHECK(memcmp(whole.body, split.body, whole.body_len) == 0);
    free(whole.body);
    free(split.body);
    return 0;
}
