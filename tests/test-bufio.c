/* tests/test-bufio.c: buffered reader and writer over scripted in-memory sources and
 * sinks (lib/bufio.c). */
#include "config.h"

#include <string.h>

#include "test-common.h"

/* ---- a scripted source ------------------------------------------------------------- */

#define SCRIPT_MAX 16

/* One step of a source: `len` bytes of `data` (or of 'x' when data is NULL), or, when
 * err is set, that error; past the last step the source reports end of stream. */
typedef struct step {
    const char *data; /* static strings only: the source's type traces nothing */
    size_t len;
    int err;
} step_t;

/* A GC object: what the reader keeps alive as its source. */
typedef struct src {
    step_t steps[SCRIPT_MAX];
    size_t n_steps, pos;
    size_t off;          /* bytes of steps[pos] already handed out */
    int calls;           /* reads asked of the source */
    size_t last_n;       /* size of the last read asked */
    uintptr_t last_buf;  /* where it was asked to write (an integer: pins nothing) */
} src_t;

static gh_type_t src_type = GH_TYPE_INIT_NOPTRS("test.src", src_t);

static src_t *src_new(void) { return gh_obj_new(&src_type); }

static void src_data(src_t *s, const char *d) { s->steps[s->n_steps++] = (step_t){d, strlen(d), 0}; }
static void src_fill(src_t *s, size_t n) { s->steps[s->n_steps++] = (step_t){NULL, n, 0}; }
static void src_err(src_t *s, int err) { s->steps[s->n_steps++] = (step_t){NULL, 0, err}; }

static ssize_t src_read(void *self, void *buf, size_t n)
{
    src_t *s = self;
    s->calls++;
    s->last_n = n;
    s->last_buf = (uintptr_t)buf;
    if (s->pos == s->n_steps)
        return 0;
    step_t *st = &s->steps[s->pos];
    if (st->err) {
        s->pos++;
        return st->err;
    }
    size_t k = st->len - s->off;
    if (k > n)
        k = n;
    if (st->data)
        memcpy(buf, st->data + s->off, k);
    else
        memset(buf, 'x', k);
    s->off += k;
    if (s->off == st->len) {
        s->pos++;
        s->off = 0;
    }
    return (ssize_t)k;
}

/* ---- a recording sink ------------------------------------------------------------- */

#define SINK_CAP (64 * 1024)

typedef struct sink {
    char out[SINK_CAP];
    size_t len;
    int calls;
    size_t last_n;
    int fail_at; /* the fail_at-th write (1-based) fails with err; 0 never */
    int err;
} sink_t;

static gh_type_t sink_type = GH_TYPE_INIT_NOPTRS("test.sink", sink_t);

static sink_t *sink_new(void) { return gh_obj_new(&sink_type); }

static ssize_t sink_write(void *self, const void *buf, size_t n)
{
    sink_t *s = self;
    s->calls++;
    s->last_n = n;
    if (s->fail_at && s->calls == s->fail_at)
        return s->err;
    size_t k = n < SINK_CAP - s->len ? n : SINK_CAP - s->len;
    memcpy(s->out + s->len, buf, k);
    s->len += k;
    return (ssize_t)n;
}

/* ---- reader ----------------------------------------------------------------------- */

START_TEST(test_bufio_read_returns_buffered_bytes_then_eof)
{
    src_t *s = src_new();
    src_data(s, "hello ");
    src_data(s, "world");
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(gh_reader_size(r), 0); /* allocated on first use */
    char buf[64];
    ck_assert_int_eq(gh_reader_read(r, buf, 3), 3);
    ck_assert_int_eq(memcmp(buf, "hel", 3), 0);
    ck_assert_uint_eq(gh_reader_buffered(r, NULL), 3);
    /* Buffered bytes come first, without another read from the source. */
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 3);
    ck_assert_int_eq(memcmp(buf, "lo ", 3), 0);
    ck_assert_int_eq(s->calls, 1);
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 5);
    ck_assert_int_eq(memcmp(buf, "world", 5), 0);
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 0);
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 0);
    ck_assert_int_eq(gh_reader_error(r), 0);
}
END_TEST

START_TEST(test_bufio_read_full_spans_source_reads_and_stops_at_eof)
{
    src_t *s = src_new();
    src_data(s, "ab");
    src_data(s, "cde");
    src_data(s, "fgh");
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    char buf[16];
    ck_assert_int_eq(gh_reader_read_full(r, buf, 6), 6);
    ck_assert_int_eq(memcmp(buf, "abcdef", 6), 0);
    /* Short at EOF: the count read. */
    ck_assert_int_eq(gh_reader_read_full(r, buf, 10), 2);
    ck_assert_int_eq(memcmp(buf, "gh", 2), 0);
    ck_assert_int_eq(gh_reader_read_full(r, buf, 10), 0);
}
END_TEST

START_TEST(test_bufio_read_full_returns_the_count_before_an_error)
{
    src_t *s = src_new();
    src_data(s, "abc");
    src_err(s, GH_ECONNRESET);
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    char buf[16];
    ck_assert_int_eq(gh_reader_read_full(r, buf, 10), 3);
    /* Nothing read: the (sticky) error. */
    ck_assert_int_eq(gh_reader_read_full(r, buf, 10), GH_ECONNRESET);
}
END_TEST

START_TEST(test_bufio_peek_fills_across_source_reads_without_consuming)
{
    src_t *s = src_new();
    src_data(s, "GET ");
    src_data(s, "/ HT");
    src_data(s, "TP/1.1");
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    const char *p = NULL;
    ck_assert_int_eq(gh_reader_peek(r, 10, &p), 14);
    ck_assert_int_eq(memcmp(p, "GET / HTTP", 10), 0);
    ck_assert_int_eq(s->calls, 3);
    ck_assert_uint_eq(gh_reader_buffered(r, NULL), 14);
    /* Peeking what is buffered reads nothing more. */
    ck_assert_int_eq(gh_reader_peek(r, 4, &p), 14);
    ck_assert_int_eq(s->calls, 3);
    char buf[16];
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 14);
    ck_assert_int_eq(memcmp(buf, "GET / HTTP/1.1", 14), 0);
}
END_TEST

START_TEST(test_bufio_peek_returns_a_short_count_at_eof)
{
    src_t *s = src_new();
    src_data(s, "abc");
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    const char *p = NULL;
    ck_assert_int_eq(gh_reader_peek(r, 10, &p), 3);
    ck_assert_int_eq(memcmp(p, "abc", 3), 0);
    gh_reader_consume(r, 3);
    ck_assert_int_eq(gh_reader_peek(r, 1, &p), 0);
}
END_TEST

START_TEST(test_bufio_peek_compacts_consumed_bytes_to_fit)
{
    src_t *s = src_new();
    src_fill(s, 60);
    src_data(s, "0123456789");
    gh_reader_t *r = gh_reader_new(s, src_read, 64);
    const char *p;
    ck_assert_int_eq(gh_reader_peek(r, 1, &p), 60);
    size_t cap = gh_reader_size(r);
    ck_assert_uint_ge(cap, 60);
    gh_reader_consume(r, 58);
    /* 2 buffered at the end of the buffer; 12 more need the consumed space back. */
    ck_assert_int_ge(gh_reader_peek(r, 12, &p), 12);
    ck_assert_int_eq(memcmp(p, "xx0123456789", 12), 0);
}
END_TEST

START_TEST(test_bufio_read_line_returns_lines_split_across_reads)
{
    src_t *s = src_new();
    src_data(s, "first li");
    src_data(s, "ne\nsecond\r\nth");
    src_data(s, "ird\n");
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    const char *line;
    ck_assert_int_eq(gh_reader_read_line(r, &line, 0), 11);
    ck_assert_int_eq(memcmp(line, "first line\n", 11), 0);
    ck_assert_int_eq(gh_reader_read_line(r, &line, 0), 8);
    ck_assert_int_eq(memcmp(line, "second\r\n", 8), 0);
    ck_assert_int_eq(gh_reader_read_line(r, &line, 0), 6);
    ck_assert_int_eq(memcmp(line, "third\n", 6), 0);
    ck_assert_int_eq(gh_reader_read_line(r, &line, 0), 0);
}
END_TEST

START_TEST(test_bufio_read_line_enforces_its_limit_including_the_lf)
{
    src_t *s = src_new();
    src_data(s, "abcd\nabcdefgh\n");
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    const char *line;
    ck_assert_int_eq(gh_reader_read_line(r, &line, 5), 5); /* "abcd\n" is exactly 5 */
    ck_assert_int_eq(gh_reader_read_line(r, &line, 5), GH_EMSGSIZE);
    /* Nothing consumed by the failed call. */
    ck_assert_int_eq(gh_reader_read_line(r, &line, 9), 9);
    ck_assert_int_eq(memcmp(line, "abcdefgh\n", 9), 0);
}
END_TEST

START_TEST(test_bufio_read_line_limit_is_capped_by_the_buffer)
{
    src_t *s = src_new();
    src_fill(s, 100); /* no LF at all */
    gh_reader_t *r = gh_reader_new(s, src_read, 32);
    const char *line;
    ck_assert_int_eq(gh_reader_read_line(r, &line, 1000), GH_EMSGSIZE);
    ck_assert_uint_eq(gh_reader_buffered(r, NULL), gh_reader_size(r));
}
END_TEST

START_TEST(test_bufio_read_line_reports_eof_in_the_middle_of_a_line)
{
    src_t *s = src_new();
    src_data(s, "ok\npartial");
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    const char *line;
    ck_assert_int_eq(gh_reader_read_line(r, &line, 0), 3);
    ck_assert_int_eq(gh_reader_read_line(r, &line, 0), GH_EOF);
    /* The partial line is still there to be read. */
    char buf[16];
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 7);
    ck_assert_int_eq(memcmp(buf, "partial", 7), 0);
    ck_assert_int_eq(gh_reader_read_line(r, &line, 0), 0);
}
END_TEST

START_TEST(test_bufio_consume_drops_buffered_bytes_and_is_capped)
{
    src_t *s = src_new();
    src_data(s, "0123456789");
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    const char *p;
    ck_assert_int_eq(gh_reader_fill(r), 10);
    gh_reader_consume(r, 4);
    ck_assert_uint_eq(gh_reader_buffered(r, &p), 6);
    ck_assert_int_eq(memcmp(p, "456789", 6), 0);
    gh_reader_consume(r, 100);
    ck_assert_uint_eq(gh_reader_buffered(r, NULL), 0);
    ck_assert_int_eq(gh_reader_fill(r), 0); /* EOF */
}
END_TEST

START_TEST(test_bufio_fill_reports_a_full_buffer)
{
    src_t *s = src_new();
    src_fill(s, 1000);
    gh_reader_t *r = gh_reader_new(s, src_read, 32);
    ssize_t got = 0, k;
    while ((k = gh_reader_fill(r)) > 0 && got < 10000)
        got += k;
    ck_assert_int_eq(k, GH_EMSGSIZE);
    ck_assert_int_eq(got, (ssize_t)gh_reader_size(r));
}
END_TEST

START_TEST(test_bufio_reset_keeps_buffered_bytes_and_reads_the_new_source)
{
    src_t *a = src_new(), *b = src_new();
    src_data(a, "from-a");
    src_data(b, "from-b");
    gh_reader_t *r = gh_reader_new(a, src_read, 0);
    char buf[16];
    ck_assert_int_eq(gh_reader_read(r, buf, 2), 2);
    gh_reader_reset(r, b, src_read);
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 4);
    ck_assert_int_eq(memcmp(buf, "om-a", 4), 0);
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 6);
    ck_assert_int_eq(memcmp(buf, "from-b", 6), 0);
    ck_assert_int_eq(a->calls, 1);
}
END_TEST

START_TEST(test_bufio_reset_clears_eof_and_errors)
{
    src_t *a = src_new(), *b = src_new();
    src_err(a, GH_EPIPE);
    src_data(b, "b");
    gh_reader_t *r = gh_reader_new(a, src_read, 0);
    char buf[4];
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), GH_EPIPE);
    ck_assert_int_eq(gh_reader_error(r), GH_EPIPE);
    gh_reader_reset(r, b, src_read);
    ck_assert_int_eq(gh_reader_error(r), 0);
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 1);
}
END_TEST

START_TEST(test_bufio_release_only_when_empty_then_reallocates)
{
    src_t *s = src_new();
    src_data(s, "abcdef");
    src_data(s, "ghi");
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    ck_assert_int_eq(gh_reader_release(r), 0); /* nothing allocated yet */
    char buf[16];
    ck_assert_int_eq(gh_reader_read(r, buf, 3), 3);
    ck_assert_uint_gt(gh_reader_size(r), 0);
    ck_assert_int_eq(gh_reader_release(r), 0); /* 3 bytes still buffered */
    ck_assert_uint_eq(gh_reader_buffered(r, NULL), 3);
    ck_assert_int_eq(gh_reader_read(r, buf, 3), 3);
    ck_assert_int_eq(gh_reader_release(r), 1);
    ck_assert_uint_eq(gh_reader_size(r), 0);
    ck_assert_uint_eq(gh_reader_buffered(r, NULL), 0);
    /* The next read allocates a buffer again. */
    ck_assert_int_eq(gh_reader_read(r, buf, 2), 2);
    ck_assert_int_eq(memcmp(buf, "gh", 2), 0);
    ck_assert_uint_gt(gh_reader_size(r), 0);
    ck_assert_uint_eq(gh_reader_buffered(r, NULL), 1);
}
END_TEST

/* Autorelease: a read that takes all the source gave holds no buffer (the source is
 * still asked for a whole buffer's worth); a read that leaves bytes keeps only those,
 * until a read or consume drains them. */
START_TEST(test_bufio_autorelease_reader_holds_a_buffer_only_while_bytes_wait)
{
    src_t *s = src_new();
    src_data(s, "hello");
    src_data(s, "world!");
    src_data(s, "line\nrest");
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    gh_reader_set_autorelease(r, 1);
    char buf[16];
    ck_assert_int_eq(gh_reader_read(r, buf, 8), 5);
    ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
    ck_assert_uint_eq(s->last_n, GH_BUFIO_DEFAULT_SIZE - 1); /* the source's reads keep their size */
    ck_assert_uint_eq(gh_reader_size(r), 0);
    ck_assert_int_eq(gh_reader_read(r, buf, 2), 2);
    ck_assert_int_eq(memcmp(buf, "wo", 2), 0);
    ck_assert_uint_gt(gh_reader_size(r), 0);
    ck_assert_uint_eq(gh_reader_buffered(r, NULL), 4);
    ck_assert_int_eq(gh_reader_read(r, buf, 3), 3);
    ck_assert_uint_gt(gh_reader_size(r), 0); /* "!" still waits */
    gh_reader_consume(r, 1);
    ck_assert_uint_eq(gh_reader_size(r), 0);
    /* A line points into the buffer: it is kept until a later read drains it. */
    const char *line;
    ck_assert_int_eq(gh_reader_read_line(r, &line, 0), 5);
    ck_assert_int_eq(memcmp(line, "line\n", 5), 0);
    ck_assert_uint_gt(gh_reader_size(r), 0);
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 4);
    ck_assert_int_eq(memcmp(buf, "rest", 4), 0);
    ck_assert_uint_eq(gh_reader_size(r), 0);
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 0); /* EOF */
    ck_assert_uint_eq(gh_reader_size(r), 0);
}
END_TEST

/* A source that reads through another autorelease reader: the inner read cannot borrow
 * the thread's scratch buffer the outer one holds, and both still deliver every byte. */
typedef struct nested {
    gh_reader_t *inner;
} nested_t;
static const size_t nested_ptrs[] = {offsetof(nested_t, inner)};
static gh_type_t nested_type = GH_TYPE_INIT("test.nested", nested_t, nested_ptrs);

static ssize_t nested_read(void *self, void *buf, size_t n)
{
    nested_t *ns = self;
    return gh_reader_read(ns->inner, buf, n < 3 ? n : 3);
}

START_TEST(test_bufio_autorelease_reader_over_an_autorelease_reader)
{
    src_t *s = src_new();
    src_data(s, "abcdefgh");
    nested_t *ns = gh_obj_new(&nested_type);
    ns->inner = gh_reader_new(s, src_read, 0);
    gh_reader_set_autorelease(ns->inner, 1);
    gh_reader_t *r = gh_reader_new(ns, nested_read, 0);
    gh_reader_set_autorelease(r, 1);
    char out[16];
    size_t got = 0;
    for (int i = 0; i < 16 && got < 8; i++) {
        ssize_t k = gh_reader_read(r, out + got, 2);
        ck_assert_int_gt(k, 0);
        got += (size_t)k;
    }
    ck_assert_uint_eq(got, 8);
    ck_assert_int_eq(memcmp(out, "abcdefgh", 8), 0);
    ck_assert_int_eq(gh_reader_read(r, out, 2), 0);
    ck_assert_uint_eq(gh_reader_size(r), 0);
    ck_assert_uint_eq(gh_reader_size(ns->inner), 0);
}
END_TEST

/* What a read leaves over is kept in a buffer just large enough; a line or peek that
 * needs more moves it into a full buffer first, with nothing lost or reordered. */
START_TEST(test_bufio_leftover_bytes_grow_into_a_full_buffer_when_more_is_needed)
{
    src_t *s = src_new();
    src_data(s, "ab\ncd");
    src_data(s, "efgh\nij");
    src_fill(s, 3000);
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    gh_reader_set_autorelease(r, 1);
    char buf[16];
    ck_assert_int_eq(gh_reader_read(r, buf, 1), 1);
    ck_assert_int_eq(buf[0], 'a');
    const char *line;
    ck_assert_int_eq(gh_reader_read_line(r, &line, 0), 2);
    ck_assert_int_eq(memcmp(line, "b\n", 2), 0);
    ck_assert_int_eq(gh_reader_read_line(r, &line, 0), 7);
    ck_assert_int_eq(memcmp(line, "cdefgh\n", 7), 0);
    const char *p;
    ck_assert_int_ge(gh_reader_peek(r, 1000, &p), 1000);
    ck_assert_int_eq(memcmp(p, "ij", 2), 0);
    ck_assert_int_eq(p[2], 'x');
    gh_reader_consume(r, 1002);
    static char rest[4096];
    ck_assert_int_eq(gh_reader_read_full(r, rest, sizeof rest), 3000 - 1000);
    ck_assert_int_eq(rest[0], 'x');
    ck_assert_uint_eq(gh_reader_size(r), 0); /* drained: released */
}
END_TEST

START_TEST(test_bufio_large_read_bypasses_the_buffer)
{
    src_t *s = src_new();
    src_fill(s, 10000);
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    static char big[8192];
    ck_assert_int_eq(gh_reader_read(r, big, sizeof big), (ssize_t)sizeof big);
    /* One read, straight into the caller's buffer, and no buffer allocated. */
    ck_assert_int_eq(s->calls, 1);
    ck_assert_uint_eq(s->last_buf, (uintptr_t)big);
    ck_assert_uint_eq(s->last_n, sizeof big);
    ck_assert_uint_eq(gh_reader_size(r), 0);
    /* A small read goes through the buffer. */
    char buf[16];
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), sizeof buf);
    ck_assert_uint_ne(s->last_buf, (uintptr_t)buf);
    ck_assert_uint_gt(gh_reader_size(r), 0);
}
END_TEST

START_TEST(test_bufio_reader_errors_are_sticky)
{
    src_t *s = src_new();
    src_data(s, "ab");
    src_err(s, GH_ECONNRESET);
    src_data(s, "never");
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    char buf[16];
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 2);
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), GH_ECONNRESET);
    int calls = s->calls;
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), GH_ECONNRESET);
    ck_assert_int_eq(gh_reader_fill(r), GH_ECONNRESET);
    const char *p;
    ck_assert_int_eq(gh_reader_read_line(r, &p, 0), GH_ECONNRESET);
    ck_assert_int_eq(gh_reader_error(r), GH_ECONNRESET);
    ck_assert_int_eq(s->calls, calls); /* the source is not asked again */
}
END_TEST

START_TEST(test_bufio_large_read_errors_are_sticky_too)
{
    src_t *s = src_new();
    src_err(s, GH_EPIPE);
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    static char big[8192];
    ck_assert_int_eq(gh_reader_read(r, big, sizeof big), GH_EPIPE);
    ck_assert_int_eq(gh_reader_error(r), GH_EPIPE);
    ck_assert_int_eq(gh_reader_read(r, big, 1), GH_EPIPE);
    ck_assert_int_eq(s->calls, 1);
}
END_TEST

START_TEST(test_bufio_timeouts_are_not_sticky)
{
    src_t *s = src_new();
    src_err(s, GH_ETIMEDOUT);
    src_data(s, "late");
    src_err(s, GH_ETIMEDOUT);
    src_data(s, "later");
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    char buf[16];
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), GH_ETIMEDOUT);
    ck_assert_int_eq(gh_reader_error(r), 0);
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 4);
    ck_assert_int_eq(memcmp(buf, "late", 4), 0);
    const char *p;
    ck_assert_int_eq(gh_reader_peek(r, 1, &p), GH_ETIMEDOUT);
    ck_assert_int_eq(gh_reader_peek(r, 5, &p), 5);
    ck_assert_int_eq(memcmp(p, "later", 5), 0);
}
END_TEST

START_TEST(test_bufio_default_buffer_fits_one_4k_block)
{
    src_t *s = src_new();
    src_fill(s, 100);
    gh_reader_t *r = gh_reader_new(s, src_read, 0);
    char buf[10];
    ck_assert_int_eq(gh_reader_read(r, buf, sizeof buf), 10);
    ck_assert_uint_le(gh_reader_size(r), GH_BUFIO_DEFAULT_SIZE);
    ck_assert_uint_ge(gh_reader_size(r), GH_BUFIO_DEFAULT_SIZE - 16);
    const char *p = NULL;
    ck_assert_uint_eq(gh_reader_buffered(r, &p), 90);
    void *base = GC_base((void *)p);
    ck_assert_ptr_nonnull(base);
    /* GC_size counts the extra byte of all-interior-pointers: 4096, not 4112. */
    ck_assert_uint_le(GC_size(base), 4096);
    ck_assert_uint_ge(GC_size(base), gh_reader_size(r));
}
END_TEST

static gh_reader_t *kept_reader;
static gh_probe_t *src_probe;

/* Build the reader and its source in a frame of their own, so the test's frame never
 * holds the source. */
__attribute__((noinline)) static void make_reader_with_probed_source(void)
{
    src_t *s = src_new();
    src_data(s, "alive");
    src_probe = gh_probe_new(s);
    kept_reader = gh_reader_new(s, src_read, 0);
}

START_TEST(test_bufio_reader_keeps_its_source_until_reset)
{
    make_reader_with_probed_source();
    gh_gc_collect(2);
    ck_assert_int_eq(gh_probe_unreachable(src_probe), 0);
    char buf[8];
    ck_assert_int_eq(gh_reader_read(kept_reader, buf, sizeof buf), 5);
    /* Retargeting is how the path to the old source is cut. */
    gh_reader_reset(kept_reader, NULL, NULL);
    for (int a = 0; a < 4 && !gh_probe_unreachable(src_probe); a++) {
        if (a)
            th_churn(a);
        gh_gc_collect(2);
    }
    ck_assert_int_eq(gh_probe_unreachable(src_probe), 1);
    ck_assert_int_eq(gh_reader_read(kept_reader, buf, sizeof buf), GH_EBADF);
}
END_TEST

/* ---- writer ----------------------------------------------------------------------- */

START_TEST(test_bufio_writer_buffers_until_flush)
{
    sink_t *k = sink_new();
    gh_writer_t *w = gh_writer_new(k, sink_write, 0);
    ck_assert_uint_eq(gh_writer_size(w), 0);
    ck_assert_int_eq(gh_writer_write(w, "hello ", 6), 6);
    ck_assert_int_eq(gh_writer_puts(w, "world"), 5);
    ck_assert_int_eq(k->calls, 0);
    ck_assert_uint_eq(gh_writer_buffered(w), 11);
    ck_assert_uint_eq(gh_writer_available(w), gh_writer_size(w) - 11);
    ck_assert_int_eq(gh_writer_flush(w), 0);
    ck_assert_int_eq(k->calls, 1);
    ck_assert_uint_eq(k->len, 11);
    ck_assert_int_eq(memcmp(k->out, "hello world", 11), 0);
    ck_assert_uint_eq(gh_writer_buffered(w), 0);
    /* Flushing nothing writes nothing. */
    ck_assert_int_eq(gh_writer_flush(w), 0);
    ck_assert_int_eq(k->calls, 1);
}
END_TEST

START_TEST(test_bufio_writer_flushes_when_the_buffer_fills)
{
    sink_t *k = sink_new();
    gh_writer_t *w = gh_writer_new(k, sink_write, 64);
    static char data[200];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)('a' + i % 26);
    size_t done = 0;
    /* Small pieces, so nothing is large enough to go straight through. */
    while (done < sizeof data) {
        size_t n = sizeof data - done < 10 ? sizeof data - done : 10;
        ck_assert_int_eq(gh_writer_write(w, data + done, n), (ssize_t)n);
        done += n;
    }
    size_t size = gh_writer_size(w);
    ck_assert_uint_ge(size, 48);
    ck_assert_int_eq(k->calls, (int)(sizeof data / size));
    ck_assert_uint_eq(k->last_n, size);
    ck_assert_int_eq(gh_writer_flush(w), 0);
    ck_assert_uint_eq(k->len, sizeof data);
    ck_assert_int_eq(memcmp(k->out, data, sizeof data), 0);
}
END_TEST

START_TEST(test_bufio_large_write_goes_straight_through)
{
    sink_t *k = sink_new();
    gh_writer_t *w = gh_writer_new(k, sink_write, 0);
    static char big[10000];
    memset(big, 'B', sizeof big);
    ck_assert_int_eq(gh_writer_write(w, big, sizeof big), (ssize_t)sizeof big);
    ck_assert_int_eq(k->calls, 1);
    ck_assert_uint_eq(k->last_n, sizeof big);
    ck_assert_uint_eq(gh_writer_buffered(w), 0);
    ck_assert_uint_eq(gh_writer_size(w), 0); /* no buffer was needed */
    /* With bytes buffered, a large write keeps the order. */
    ck_assert_int_eq(gh_writer_write(w, "head", 4), 4);
    ck_assert_int_eq(gh_writer_write(w, big, sizeof big), (ssize_t)sizeof big);
    ck_assert_int_eq(gh_writer_flush(w), 0);
    ck_assert_uint_eq(k->len, 2 * sizeof big + 4);
    ck_assert_int_eq(memcmp(k->out + sizeof big, "headBBBB", 8), 0);
    ck_assert_int_eq(k->out[k->len - 1], 'B');
}
END_TEST

START_TEST(test_bufio_writer_errors_are_sticky)
{
    sink_t *k = sink_new();
    k->fail_at = 1;
    k->err = GH_EPIPE;
    gh_writer_t *w = gh_writer_new(k, sink_write, 0);
    ck_assert_int_eq(gh_writer_puts(w, "lost"), 4);
    ck_assert_int_eq(gh_writer_flush(w), GH_EPIPE);
    ck_assert_int_eq(gh_writer_error(w), GH_EPIPE);
    ck_assert_int_eq(gh_writer_puts(w, "more"), GH_EPIPE);
    ck_assert_int_eq(gh_writer_flush(w), GH_EPIPE);
    ck_assert_int_eq(k->calls, 1);
}
END_TEST

START_TEST(test_bufio_writer_reset_sends_buffered_bytes_to_the_new_sink)
{
    sink_t *a = sink_new(), *b = sink_new();
    a->fail_at = 1;
    a->err = GH_ECONNRESET;
    gh_writer_t *w = gh_writer_new(a, sink_write, 0);
    ck_assert_int_eq(gh_writer_puts(w, "kept"), 4);
    gh_writer_reset(w, b, sink_write);
    ck_assert_uint_eq(gh_writer_buffered(w), 4);
    ck_assert_int_eq(gh_writer_puts(w, "+more"), 5);
    ck_assert_int_eq(gh_writer_flush(w), 0);
    ck_assert_int_eq(a->calls, 0);
    ck_assert_uint_eq(b->len, 9);
    ck_assert_int_eq(memcmp(b->out, "kept+more", 9), 0);
}
END_TEST

START_TEST(test_bufio_writer_reset_clears_the_sticky_error)
{
    sink_t *a = sink_new(), *b = sink_new();
    a->fail_at = 1;
    a->err = GH_EPIPE;
    gh_writer_t *w = gh_writer_new(a, sink_write, 0);
    ck_assert_int_eq(gh_writer_puts(w, "x"), 1);
    ck_assert_int_eq(gh_writer_flush(w), GH_EPIPE);
    gh_writer_reset(w, b, sink_write);
    ck_assert_int_eq(gh_writer_error(w), 0);
    /* The failed bytes were not dropped: Go's bufio keeps them for a retry too. */
    ck_assert_int_eq(gh_writer_flush(w), 0);
    ck_assert_uint_eq(b->len, 1);
}
END_TEST

START_TEST(test_bufio_writer_release_only_when_empty)
{
    sink_t *k = sink_new();
    gh_writer_t *w = gh_writer_new(k, sink_write, 0);
    ck_assert_int_eq(gh_writer_release(w), 0); /* nothing allocated */
    ck_assert_uint_eq(gh_writer_available(w), GH_BUFIO_DEFAULT_SIZE - 1);
    ck_assert_int_eq(gh_writer_puts(w, "abc"), 3);
    ck_assert_uint_gt(gh_writer_size(w), 0);
    ck_assert_int_eq(gh_writer_release(w), 0);
    ck_assert_int_eq(gh_writer_flush(w), 0);
    ck_assert_int_eq(gh_writer_release(w), 1);
    ck_assert_uint_eq(gh_writer_size(w), 0);
    ck_assert_int_eq(gh_writer_puts(w, "def"), 3);
    ck_assert_uint_gt(gh_writer_size(w), 0);
    ck_assert_int_eq(gh_writer_flush(w), 0);
    ck_assert_uint_eq(k->len, 6);
    ck_assert_int_eq(memcmp(k->out, "abcdef", 6), 0);
}
END_TEST

/* Autorelease: the buffer goes back after each flush, not when it fills inside a write
 * (the sink still gets whole buffers). */
START_TEST(test_bufio_autorelease_writer_releases_after_each_flush)
{
    sink_t *k = sink_new();
    gh_writer_t *w = gh_writer_new(k, sink_write, 64);
    gh_writer_set_autorelease(w, 1);
    ck_assert_uint_eq(gh_writer_size(w), 0);
    ck_assert_int_eq(gh_writer_puts(w, "abc"), 3);
    ck_assert_uint_gt(gh_writer_size(w), 0);
    ck_assert_int_eq(gh_writer_flush(w), 0);
    ck_assert_uint_eq(gh_writer_size(w), 0);
    static char data[150];
    memset(data, 'z', sizeof data);
    size_t size = 0;
    for (size_t done = 0; done < sizeof data; done += 10) {
        ck_assert_int_eq(gh_writer_write(w, data + done, 10), 10);
        size = gh_writer_size(w);
        ck_assert_uint_gt(size, 0);
    }
    ck_assert_int_eq(k->calls, 1 + (int)(sizeof data / size));
    ck_assert_uint_eq(k->last_n, size);
    ck_assert_int_eq(gh_writer_flush(w), 0);
    ck_assert_uint_eq(gh_writer_size(w), 0);
    ck_assert_uint_eq(k->len, 3 + sizeof data);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("bufio");
    TCase *tc = tcase_create("reader");
    tcase_add_test(tc, test_bufio_read_returns_buffered_bytes_then_eof);
    tcase_add_test(tc, test_bufio_read_full_spans_source_reads_and_stops_at_eof);
    tcase_add_test(tc, test_bufio_read_full_returns_the_count_before_an_error);
    tcase_add_test(tc, test_bufio_peek_fills_across_source_reads_without_consuming);
    tcase_add_test(tc, test_bufio_peek_returns_a_short_count_at_eof);
    tcase_add_test(tc, test_bufio_peek_compacts_consumed_bytes_to_fit);
    tcase_add_test(tc, test_bufio_read_line_returns_lines_split_across_reads);
    tcase_add_test(tc, test_bufio_read_line_enforces_its_limit_including_the_lf);
    tcase_add_test(tc, test_bufio_read_line_limit_is_capped_by_the_buffer);
    tcase_add_test(tc, test_bufio_read_line_reports_eof_in_the_middle_of_a_line);
    tcase_add_test(tc, test_bufio_consume_drops_buffered_bytes_and_is_capped);
    tcase_add_test(tc, test_bufio_fill_reports_a_full_buffer);
    tcase_add_test(tc, test_bufio_reset_keeps_buffered_bytes_and_reads_the_new_source);
    tcase_add_test(tc, test_bufio_reset_clears_eof_and_errors);
    tcase_add_test(tc, test_bufio_release_only_when_empty_then_reallocates);
    tcase_add_test(tc, test_bufio_autorelease_reader_holds_a_buffer_only_while_bytes_wait);
    tcase_add_test(tc, test_bufio_autorelease_reader_over_an_autorelease_reader);
    tcase_add_test(tc, test_bufio_leftover_bytes_grow_into_a_full_buffer_when_more_is_needed);
    tcase_add_test(tc, test_bufio_large_read_bypasses_the_buffer);
    tcase_add_test(tc, test_bufio_reader_errors_are_sticky);
    tcase_add_test(tc, test_bufio_large_read_errors_are_sticky_too);
    tcase_add_test(tc, test_bufio_timeouts_are_not_sticky);
    tcase_add_test(tc, test_bufio_default_buffer_fits_one_4k_block);
    tcase_add_test(tc, test_bufio_reader_keeps_its_source_until_reset);
    suite_add_tcase(s, tc);

    tc = tcase_create("writer");
    tcase_add_test(tc, test_bufio_writer_buffers_until_flush);
    tcase_add_test(tc, test_bufio_writer_flushes_when_the_buffer_fills);
    tcase_add_test(tc, test_bufio_large_write_goes_straight_through);
    tcase_add_test(tc, test_bufio_writer_errors_are_sticky);
    tcase_add_test(tc, test_bufio_writer_reset_sends_buffered_bytes_to_the_new_sink);
    tcase_add_test(tc, test_bufio_writer_reset_clears_the_sticky_error);
    tcase_add_test(tc, test_bufio_writer_release_only_when_empty);
    tcase_add_test(tc, test_bufio_autorelease_writer_releases_after_each_flush);
    suite_add_tcase(s, tc);
    return s;
}
