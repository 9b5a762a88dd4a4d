/*
 * lib/parse.h: the HTTP/1.1 request-head parser and the chunked-body decoder.
 * Private to gchttp; not installed.
 *
 * Both are pure functions over caller-owned bytes: they never allocate, never read past
 * `len`, and report what they found as offsets into the caller's buffer, so the caller
 * may copy the buffer and keep using the offsets. Both are strict (RFC 9112):
 *  - lines end in CRLF; a bare LF or a bare CR is an error (RFC 9112 §2.2 allows the
 *    rejection; Go accepts bare LF: a documented deviation);
 *  - obs-fold (a line starting with SP/HTAB inside the header section) is rejected
 *    with 400 (RFC 9112 §5.2 permits it);
 *  - whitespace between a field name and the colon is rejected (RFC 9112 §5.1);
 *  - field names are tokens; field values may hold VCHAR, SP, HTAB and obs-text
 *    (0x80-0xFF) only: NUL and other CTLs are rejected (RFC 9110 §5.5);
 *  - leading and trailing OWS of a value is not part of the value.
 */
#ifndef GH_LIB_PARSE_H
#define GH_LIB_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* One header field: offsets into the parsed buffer. */
typedef struct gh__hfield {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
} gh__hfield_t;

typedef enum {
    GH__TARGET_ORIGIN = 1,    /* "/path?query" */
    GH__TARGET_ABSOLUTE = 2,  /* "http://host/path" (scheme ":" ...) */
    GH__TARGET_AUTHORITY = 3, /* "host:port", CONNECT only */
    GH__TARGET_ASTERISK = 4   /* "*", OPTIONS (and the PRI preface) only */
} gh__target_form_t;

typedef struct gh__reqhead {
    uint32_t method_off, method_len;
    uint32_t target_off, target_len;
    uint32_t proto_off, proto_len; /* "HTTP/1.1" as sent */
    int major, minor;
    gh__target_form_t form;
    size_t skipped;         /* empty lines (CRLF) skipped before the request line */
    size_t n_fields;        /* out: number of header fields found (may exceed cap) */
} gh__reqhead_t;

/*
 * Parse a request head (request line + header section + empty line) at buf[0..len).
 * Up to `cap` fields are stored in fields[]; h->n_fields is the real count (when it is
 * larger than cap, call again with a larger array).
 * Empty lines before the request line are skipped (RFC 9112 §2.2), at most 16 of them.
 *
 * Returns:
 *   > 0          the head's length in bytes (including skipped CRLFs and the final
 *                CRLF CRLF): a complete, well-formed head;
 *   GH_EAGAIN    incomplete so far and nothing wrong seen yet;
 *   < 0 other    malformed; *status is the HTTP status to answer with:
 *                400 (bad syntax), 505 (HTTP major version other than 1, except the
 *                "PRI * HTTP/2.0" preface, which parses and is reported as major 2),
 *                431 (head longer than max_head), 501 (never from here).
 * max_head bounds the head (skipped CRLFs included): a complete head longer than
 * max_head, or an incomplete one whose len already exceeds max_head, gives 431. Exact:
 * a head of exactly max_head bytes is accepted. (max_head is capped at INT_MAX.)
 *
 * Request line: method is a case-sensitive token; exactly one SP between the parts;
 * the version is "HTTP/" DIGIT "." DIGIT. Target forms (RFC 9112 §3.2): "/..." is
 * origin-form; "*" needs OPTIONS (or the preface); CONNECT needs authority-form
 * (host ":" port, port 1-65535 in at most 5 digits, no userinfo) and nothing else;
 * otherwise scheme ":" makes absolute-form; anything else is 400. "PRI * HTTP/2.0" is
 * the preface only with no header fields; with fields it is 505, as in Go.
 * Errors are reported as soon as the bytes show them, before the head is complete.
 *
 * Cost: each call rescans buf from the start (no state is kept between calls). A caller
 * that reads in small pieces should call again only when the new bytes hold an LF.
 */
int gh__parse_request_head(const char *buf, size_t len, size_t max_head, gh__reqhead_t *h,
                           gh__hfield_t *fields, size_t cap, int *status);

/*
 * Parse a header section alone (the trailer section of a chunked body): field lines
 * up to and including the empty line. Same rules and returns as above (status 400 or
 * 431 with max_len).
 */
int gh__parse_fields(const char *buf, size_t len, size_t max_len, gh__hfield_t *fields,
                     size_t cap, size_t *n_fields, int *status);

/* Case-insensitive comparison of a token with a NUL-terminated lower-case name. */
int gh__token_eq(const char *p, size_t n, const char *lower);
/* 1 if p[0..n) is a non-empty token (RFC 9110 §5.6.2). */
int gh__is_token(const char *p, size_t n);

/*
 * Incremental chunked decoder (RFC 9112 §7.1). Feed it bytes; it consumes framing and
 * hands back spans of body data that sit inside the input. Chunk extensions are
 * validated (token, "=", token or quoted-string) and ignored; BWS is allowed only
 * before ";" and around "=", so a size line ending in SP/HTAB is an error. The trailer
 * section is not parsed here: when the decoder reaches it, it returns
 * GH__CHUNK_TRAILERS and the caller collects the section (up to CRLF CRLF, or the lone
 * CRLF) and parses it with gh__parse_fields. After an error every call returns
 * GH_EPROTO; after the last chunk every call returns GH__CHUNK_TRAILERS, using nothing.
 */
typedef struct gh__chunked {
    int state;           /* private */
    uint64_t remaining;  /* bytes left in the current chunk's data */
    uint32_t line_len;   /* bytes of the current size line seen (bounded) */
    int saw_digit;
    int in_quote, quote_escape; /* unused: the quoted-string states live in `state` */
} gh__chunked_t;

enum {
    GH__CHUNK_DATA = 1,     /* *data_off, *data_len describe body bytes; more may follow */
    GH__CHUNK_NEED = 2,     /* all input consumed; feed more */
    GH__CHUNK_TRAILERS = 3  /* the last chunk was read; trailer section starts at *used */
};

void gh__chunked_init(gh__chunked_t *c);
/*
 * Process in[0..n). Sets *used to the bytes consumed (framing and data). On
 * GH__CHUNK_DATA, data is in[*data_off .. *data_off + *data_len) and
 * *data_off + *data_len == *used. Returns GH__CHUNK_* or a negative GH_EPROTO for
 * malformed framing (bad hex, size overflowing 2^63-1, size line over 4096 bytes, bad
 * extension, missing CRLF after data, bare LF/CR).
 */
/* Give back the last n bytes of the data span just returned (the caller took less). */
void gh__chunked_unread(gh__chunked_t *c, size_t n);

int gh__chunked_step(gh__chunked_t *c, const char *in, size_t n, size_t *used, size_t *data_off,
                     size_t *data_len);

#endif
