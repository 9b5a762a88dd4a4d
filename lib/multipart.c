/*
 * lib/multipart.c: multipart/form-data bodies as a stream (RFC 2046 §5.1.1, RFC 7578).
 *
 * The body is read through a fixed window. The stream is treated as if it began with
 * CRLF, so every delimiter, the first included, is CRLF "--" boundary (RFC 2046: the
 * CRLF before a delimiter belongs to it). Part data is handed out up to the next
 * delimiter; bytes at the window's end that could begin one are held back until more
 * arrive, so a delimiter split across reads is still found.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "internal.h"

#define WINDOW 65536
#define MAX_HEADER_CAP 32768
#define MAX_BOUNDARY 70

enum { ST_PREAMBLE, ST_PART, ST_DELIM, ST_DONE };

struct gh_multipart_s {
    gh_request_t *req;
    char *delim;    /* atomic: CRLF "--" boundary */
    char *buf;      /* atomic: the window */
    gh_part_t *cur; /* the part being read */
    /* not traced */
    size_t dl, pos, end;
    size_t max_header, max_parts, nparts;
    int state;
    int err; /* sticky */
    int eof; /* the request body has ended */
};

struct gh_part_s {
    gh_multipart_t *m;
    char *head;     /* atomic: field table, then the NUL-separated header text */
    char *name;     /* atomic or NULL */
    char *filename; /* atomic or NULL */
    /* not traced */
    size_t nfields;
    int done;
};

static const size_t mp_ptrs[] = {
    offsetof(struct gh_multipart_s, req), offsetof(struct gh_multipart_s, delim),
    offsetof(struct gh_multipart_s, buf), offsetof(struct gh_multipart_s, cur)};
static gh_type_t multipart_type = GH_TYPE_INIT("multipart", struct gh_multipart_s, mp_ptrs);
static const size_t part_ptrs[] = {offsetof(struct gh_part_s, m), offsetof(struct gh_part_s, head),
                                   offsetof(struct gh_part_s, name),
                                   offsetof(struct gh_part_s, filename)};
static gh_type_t part_type = GH_TYPE_INIT("multipartPart", struct gh_part_s, part_ptrs);

/* The parameter `key` of a header value "type; a=b; c=\"d\"" (RFC 9110 §5.6.6), a new
 * string; NULL when absent or malformed. */
static char *param(const char *v, const char *key)
{
    size_t keyl = strlen(key);
    const char *p = strchr(v, ';');
    while (p) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *k = p;
        while (*p && *p != '=' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t kl = (size_t)(p - k);
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '=') {
            p = strchr(p, ';');
            continue;
        }
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        char *val;
        if (*p == '"') {
            p++;
            val = gh_bytes_new(strlen(p) + 1);
            if (!val)
                return NULL;
            size_t w = 0;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                val[w++] = *p++;
            }
            if (*p != '"')
                return NULL;
            p++;
            val[w] = 0;
        } else {
            const char *s = p;
            while (*p && *p != ';' && *p != ' ' && *p != '\t')
                p++;
            val = gh_strndup(s, (size_t)(p - s));
            if (!val)
                return NULL;
        }
        if (kl == keyl && strncasecmp(k, key, kl) == 0)
            return val;
        p = strchr(p, ';');
    }
    return NULL;
}

int gh_multipart_new(gh_request_t *r, const gh_multipart_limits_t *lim, gh_multipart_t **out)
{
    *out = NULL;
    if (!gh__content_type_is(r, "multipart/form-data"))
        return GH_EINVAL;
    char *b = param(gh_request_header(r, "Content-Type"), "boundary");
    size_t bl = b ? strlen(b) : 0;
    if (bl == 0 || bl > MAX_BOUNDARY)
        return GH_EINVAL;
    gh_multipart_t *m = gh_obj_new(&multipart_type);
    char *delim = gh_bytes_new(bl + 5);
    char *buf = gh_bytes_new(WINDOW);
    if (!m || !delim || !buf)
        return GH_ENOMEM;
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, b, bl + 1);
    m->req = r;
    m->delim = delim;
    m->dl = bl + 4;
    m->buf = buf;
    /* The CRLF the first delimiter lacks (see the top of the file). */
    memcpy(buf, "\r\n", 2);
    m->end = 2;
    m->max_header = lim && lim->max_header_bytes ? lim->max_header_bytes : 16384;
    if (m->max_header > MAX_HEADER_CAP)
        m->max_header = MAX_HEADER_CAP;
    m->max_parts = lim && lim->max_parts ? lim->max_parts : 1000;
    m->state = ST_PREAMBLE;
    *out = m;
    return 0;
}

static int set_err(gh_multipart_t *m, int err)
{
    if (!m->err)
        m->err = err;
    return m->err;
}

/* Read more of the body into the window (moving what is left to its start). */
static int fill(gh_multipart_t *m)
{
    if (m->pos) {
        memmove(m->buf, m->buf + m->pos, m->end - m->pos);
        m->end -= m->pos;
        m->pos = 0;
    }
    if (m->end == WINDOW)
        return set_err(m, GH_EPROTO);
    ssize_t k = gh_request_read(m->req, m->buf + m->end, WINDOW - m->end);
    if (k < 0)
        return set_err(m, (int)k);
    if (k == 0)
        m->eof = 1;
    m->end += (size_t)k;
    return 0;
}

/* Is the delimiter candidate at d (dl bytes) one? What follows a delimiter is "--",
 * transport padding or CRLF (RFC 2046 §5.1.1); anything else makes it data, as Go's
 * matchAfterPrefix decides. 1 yes, 0 cannot tell yet, -1 no. */
static int delim_follows(const gh_multipart_t *m, const char *d)
{
    const char *e = m->buf + m->end, *a = d + m->dl;
    if (a == e)
        return m->eof ? 1 : 0;
    if (*a == ' ' || *a == '\t' || *a == '\r' || *a == '\n')
        return 1;
    if (*a == '-') {
        if (a + 1 == e)
            return m->eof ? -1 : 0;
        return a[1] == '-' ? 1 : -1;
    }
    return -1;
}

/* Bytes of the window, from pos, that are surely data: up to a delimiter, or up to what
 * might begin one. *at_delim is set when a delimiter starts there. */
static size_t safe_data(const gh_multipart_t *m, int *at_delim)
{
    const char *p = m->buf + m->pos;
    size_t avail = m->end - m->pos;
    *at_delim = 0;
    size_t off = 0;
    const char *d;
    while (off < avail && (d = memmem(p + off, avail - off, m->delim, m->dl))) {
        int f = delim_follows(m, d);
        if (f >= 0) {
            *at_delim = f;
            return (size_t)(d - p);
        }
        off = (size_t)(d - p) + 1;
    }
    size_t from = avail >= m->dl ? avail - m->dl + 1 : 0;
    for (size_t i = from; i < avail; i++)
        if (p[i] == '\r' && memcmp(p + i, m->delim, avail - i) == 0)
            return i;
    return avail;
}

ssize_t gh_part_read(gh_part_t *p, void *buf, size_t n)
{
    gh_multipart_t *m = p->m;
    if (p->done || m->cur != p)
        return 0;
    if (m->err)
        return m->err;
    if (n == 0)
        return 0;
    for (;;) {
        int at_delim;
        size_t k = safe_data(m, &at_delim);
        if (k > 0) {
            if (k > n)
                k = n;
            memcpy(buf, m->buf + m->pos, k);
            m->pos += k;
            return (ssize_t)k;
        }
        if (at_delim) {
            p->done = 1;
            m->state = ST_DELIM;
            return 0;
        }
        if (m->eof)
            return set_err(m, GH_EPROTO); /* the body ended inside a part */
        int rc = fill(m);
        if (rc < 0)
            return rc;
    }
}

/* Have at least n bytes from pos in the window, or fewer at the end of the body. */
static int want(gh_multipart_t *m, size_t n)
{
    while (m->end - m->pos < n && !m->eof) {
        int rc = fill(m);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static char *base_name(char *f)
{
    /* Go's filepath.Base: the last element, trailing slashes dropped. */
    size_t n = strlen(f);
    while (n > 1 && f[n - 1] == '/')
        f[--n] = 0;
    char *s = strrchr(f, '/');
    return s && s[1] ? s + 1 : f;
}

/* "charset'lang'pct-encoded" (RFC 2231 §4, RFC 8187), for UTF-8 and US-ASCII. */
static char *ext_value(const char *v)
{
    const char *q1 = strchr(v, '\'');
    const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
    if (!q2)
        return NULL;
    size_t cl = (size_t)(q1 - v);
    if (!((cl == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
          (cl == 8 && strncasecmp(v, "us-ascii", 8) == 0)))
        return NULL;
    return gh_path_unescape(q2 + 1);
}

static int read_header(gh_multipart_t *m, gh_part_t *p)
{
    for (;;) {
        size_t avail = m->end - m->pos;
        size_t nf = 0;
        int status = 0;
        int rc =
            avail ? gh__parse_fields(m->buf + m->pos, avail, m->max_header, NULL, 0, &nf, &status)
                  : GH_EAGAIN;
        if (rc > 0) {
            size_t fsz = nf * sizeof(gh__hfield_t);
            char *block = gh_bytes_new(fsz + (size_t)rc + 1);
            if (!block)
                return set_err(m, GH_ENOMEM);
            char *text = block + fsz;
            memcpy(text, m->buf + m->pos, (size_t)rc);
            text[rc] = 0;
            gh__hfield_t *f = (gh__hfield_t *)(void *)block;
            size_t n2 = 0;
            gh__parse_fields(text, (size_t)rc, (size_t)rc, f, nf, &n2, &status);
            for (size_t i = 0; i < nf; i++) {
                text[f[i].name_off + f[i].name_len] = 0;
                text[f[i].value_off + f[i].value_len] = 0;
            }
            p->head = block;
            p->nfields = nf;
            m->pos += (size_t)rc;
            return 0;
        }
        if (rc != GH_EAGAIN)
            return set_err(m, status == 431 ? GH_EMSGSIZE : GH_EPROTO);
        if (avail > m->max_header)
            return set_err(m, GH_EMSGSIZE);
        if (m->eof)
            return set_err(m, GH_EPROTO);
        rc = fill(m);
        if (rc < 0)
            return rc;
    }
}

int gh_multipart_next(gh_multipart_t *m, gh_part_t **out)
{
    *out = NULL;
    if (m->err)
        return m->err;
    if (m->state == ST_DONE)
        return 0;
    if (m->state == ST_PART) {
        /* Skip the rest of the current part. */
        char scratch[4096];
        ssize_t k;
        while ((k = gh_part_read(m->cur, scratch, sizeof scratch)) > 0)
            ;
        if (k < 0)
            return (int)k;
    }
    if (m->state == ST_PREAMBLE) {
        /* Discard everything before the first delimiter (RFC 2046: the preamble). */
        for (;;) {
            int at_delim;
            size_t k = safe_data(m, &at_delim);
            m->pos += k;
            if (at_delim)
                break;
            if (m->eof)
                return set_err(m, GH_EPROTO);
            int rc = fill(m);
            if (rc < 0)
                return rc;
        }
    }
    /* At a delimiter: "--" closes the body; else transport padding, then CRLF. */
    int rc = want(m, m->dl + 2);
    if (rc < 0)
        return rc;
    if (m->end - m->pos < m->dl + 2)
        return set_err(m, GH_EPROTO);
    m->pos += m->dl;
    if (m->buf[m->pos] == '-' && m->buf[m->pos + 1] == '-') {
        m->state = ST_DONE;
        m->cur = NULL;
        return 0; /* the epilogue is left unread (the server drains it) */
    }
    for (int i = 0;; i++) {
        if ((rc = want(m, 2)) < 0)
            return rc;
        if (m->end - m->pos < 2 || i > 256)
            return set_err(m, GH_EPROTO);
        char c = m->buf[m->pos];
        if (c == ' ' || c == '\t') {
            m->pos++;
            continue;
        }
        if (c != '\r' || m->buf[m->pos + 1] != '\n')
            return set_err(m, GH_EPROTO);
        m->pos += 2;
        break;
    }
    if (m->nparts == m->max_parts)
        return set_err(m, GH_EMSGSIZE);
    gh_part_t *p = gh_obj_new(&part_type);
    if (!p)
        return set_err(m, GH_ENOMEM);
    p->m = m;
    if ((rc = read_header(m, p)) < 0)
        return rc;
    const char *cd = gh_part_header(p, "Content-Disposition");
    if (cd) {
        size_t tl = strcspn(cd, "; \t");
        if (tl == 9 && strncasecmp(cd, "form-data", 9) == 0) {
            p->name = param(cd, "name");
            char *fn = param(cd, "filename*");
            fn = fn ? ext_value(fn) : NULL;
            if (!fn)
                fn = param(cd, "filename");
            p->filename = fn && fn[0] ? base_name(fn) : NULL;
        }
    }
    m->nparts++;
    m->cur = p;
    m->state = ST_PART;
    *out = p;
    return 1;
}

const char *gh_part_header(const gh_part_t *p, const char *name)
{
    const gh__hfield_t *f = (const gh__hfield_t *)(const void *)p->head;
    const char *text = p->head + p->nfields * sizeof(gh__hfield_t);
    for (size_t i = 0; i < p->nfields; i++)
        if (strcasecmp(text + f[i].name_off, name) == 0)
            return text + f[i].value_off;
    return NULL;
}

const char *gh_part_name(const gh_part_t *p)
{
    return p->name;
}

const char *gh_part_filename(const gh_part_t *p)
{
    return p->filename;
}
