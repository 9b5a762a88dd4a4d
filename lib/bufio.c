/*
 * lib/bufio.c: buffered reader and writer (gchttp/bufio.h).
 *
 * Modelled on Go's bufio, with one addition the hijack path needs: the buffer may be
 * released while empty and comes back on the next use, so an idle hijacked connection
 * holds no 4 KiB blocks (valyala/fasthttp#2363). With autorelease on, that happens
 * whenever the buffer is empty again, and a released reader reads through a per-thread
 * scratch buffer, so a read that takes everything the source gave allocates nothing.
 */
#include "config.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * A buffered reader.
 * Alloc:     gh_obj_new(&gh__reader_type); buffer: gh_bytes_new (atomic), lazily.
 * Kept by:   whoever reads through it: a connection (bufr), a request body, the user
 *            after hijack. It keeps its source object alive.
 * OS state:  none (the source owns it).
 * Threads:   one at a time.
 */
struct gh_reader_s {
    char *buf;        /* atomic; NULL while released */
    void *src;        /* GC object (or NULL) passed to fn */
    gh_read_fn fn;    /* code pointer: not traced */
    uint32_t size : 29; /* capacity when allocated */
    uint32_t small : 1; /* buf was made to keep only what a read left over (no room to
                         * fill: a fill first moves the bytes into a full buffer) */
    uint32_t eof : 1;   /* the source reported end of stream */
    uint32_t autorel : 1; /* release the buffer whenever a read or consume drains it */
    uint32_t r, w;    /* buf[r..w) is unread */
    int err;          /* sticky error, or 0 */
};

static const size_t reader_ptrs[] = {offsetof(struct gh_reader_s, buf),
                                     offsetof(struct gh_reader_s, src)};
static const char *const reader_names[] = {"buf", "src"};
gh_type_t gh__reader_type = GH_TYPE_INIT_NAMED("bufio.Reader", struct gh_reader_s, reader_ptrs,
                                               reader_names);

/*
 * A buffered writer.
 * Alloc:     gh_obj_new(&gh__writer_type); buffer allocated on first write.
 * Kept by:   a connection (bufw), the user after hijack. It keeps its sink alive.
 */
struct gh_writer_s {
    char *buf;
    void *dst;
    gh_write_fn fn;
    uint32_t size;
    uint32_t n; /* bytes buffered */
    int err;
    int autorel; /* release the buffer after each gh_writer_flush */
};

static const size_t writer_ptrs[] = {offsetof(struct gh_writer_s, buf),
                                     offsetof(struct gh_writer_s, dst)};
static const char *const writer_names[] = {"buf", "dst"};
gh_type_t gh__writer_type = GH_TYPE_INIT_NAMED("bufio.Writer", struct gh_writer_s, writer_ptrs,
                                               writer_names);

/* ---- the per-thread scratch buffers ----------------------------------------------
 *
 * Plain (malloc) memory per thread that uses it, freed when the thread exits: a read
 * slot (a source read, the parse of a request head) and a write slot (the response
 * writer's buffers while a handler runs, see conn.c). They only ever hold bytes, never
 * a GC pointer, so the collector need not see them. A slot is lent to one user at a
 * time, and taken back before the lender's call returns (the read slot) or before the
 * handler's thread leaves the request (the write slot): whatever must outlive that is
 * copied into GC storage. A source may itself read through a reader; the busy flag
 * makes the nested call allocate instead. */

static const size_t scratch_size[GH__SCRATCH_SLOTS] = {GH__SCRATCH_READ_SIZE,
                                                        GH__SCRATCH_WRITE_SIZE};
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static __thread char *tls_scratch; /* both slots, one block */
static __thread uint8_t tls_scratch_busy[GH__SCRATCH_SLOTS];

static void scratch_key_make(void) { (void)pthread_key_create(&scratch_key, free); }

char *gh__scratch_take(int slot, size_t n)
{
    if (n > scratch_size[slot] || tls_scratch_busy[slot])
        return NULL;
    if (!tls_scratch) {
        (void)pthread_once(&scratch_once, scratch_key_make);
        char *p = malloc(GH__SCRATCH_READ_SIZE + GH__SCRATCH_WRITE_SIZE);
        if (!p)
            return NULL;
        if (pthread_setspecific(scratch_key, p) != 0) {
            free(p);
            return NULL;
        }
        tls_scratch = p;
    }
    tls_scratch_busy[slot] = 1;
    return slot == GH__SCRATCH_READ ? tls_scratch : tls_scratch + GH__SCRATCH_READ_SIZE;
}

void gh__scratch_give(int slot) { tls_scratch_busy[slot] = 0; }

static size_t pick_size(size_t size)
{
    if (size == 0)
        size = GH_BUFIO_DEFAULT_SIZE;
    if (size < 16)
        size = 16;
    if (size > (1u << 28))
        size = 1u << 28; /* the reader's size is a 29-bit field */
    /* 4096 would cost two 4 KiB blocks with interior pointers on (see gc.h). */
    return gh_bytes_good_size(size);
}

gh_reader_t *gh_reader_new(void *src, gh_read_fn fn, size_t size)
{
    gh_reader_t *r = gh_obj_new(&gh__reader_type);
    if (!r)
        return NULL;
    r->src = src;
    r->fn = fn;
    r->size = (uint32_t)pick_size(size) & 0x1fffffffu;
    return r;
}

void gh_reader_reset(gh_reader_t *r, void *src, gh_read_fn fn)
{
    r->src = src;
    r->fn = fn;
    r->eof = 0;
    r->err = 0;
}

static int reader_ensure_buf(gh_reader_t *r)
{
    if (r->buf)
        return 0;
    r->buf = gh_bytes_new(r->size);
    if (!r->buf)
        return GH_ENOMEM;
    r->small = 0;
    r->r = r->w = 0;
    return 0;
}

/* Keep n bytes (the reader has no buffer) in one allocated for them alone: the rest of
 * a read the caller did not take is usually small (a body after its head, the payload
 * after a frame header). 0 or GH_ENOMEM. */
static int reader_keep(gh_reader_t *r, const char *p, size_t n)
{
    char *b = gh_bytes_new(n);
    if (!b)
        return GH_ENOMEM;
    memcpy(b, p, n);
    r->buf = b;
    r->small = 1;
    r->r = 0;
    r->w = (uint32_t)n;
    return 0;
}

/* An empty reader with autorelease on gives its buffer back. */
static void reader_drained(gh_reader_t *r)
{
    r->r = r->w = 0;
    if (r->autorel)
        r->buf = NULL;
}

/* One read from the source into the free space at the end of the buffer. */
static ssize_t reader_fill_once(gh_reader_t *r)
{
    if (r->err)
        return r->err;
    if (r->eof)
        return 0;
    int rc = reader_ensure_buf(r);
    if (rc)
        return rc;
    if (r->small) {
        /* A buffer that kept leftovers only: the full one, with them at its start. */
        char *b = gh_bytes_new(r->size);
        if (!b)
            return GH_ENOMEM;
        memcpy(b, r->buf + r->r, r->w - r->r);
        r->buf = b;
        r->small = 0;
        r->w -= r->r;
        r->r = 0;
    } else if (r->r > 0) {
        memmove(r->buf, r->buf + r->r, r->w - r->r);
        r->w -= r->r;
        r->r = 0;
    }
    if (r->w == r->size)
        return GH_EMSGSIZE;
    if (!r->fn)
        return GH_EBADF;
    ssize_t n = r->fn(r->src, r->buf + r->w, r->size - r->w);
    if (n > 0) {
        r->w += (uint32_t)n;
        return n;
    }
    if (r->w == r->r)
        reader_drained(r); /* nothing came: an autorelease buffer goes back at once */
    if (n == 0) {
        r->eof = 1;
        return 0;
    }
    /* A timeout is not sticky: the caller may extend the deadline and retry. */
    if (n != GH_ETIMEDOUT && n != GH_EAGAIN)
        r->err = (int)n;
    return n;
}

ssize_t gh_reader_fill(gh_reader_t *r) { return reader_fill_once(r); }

/* What a direct read from the source returned: EOF and errors are recorded as in
 * reader_fill_once. */
static ssize_t reader_note(gh_reader_t *r, ssize_t k)
{
    if (k == 0)
        r->eof = 1;
    else if (k < 0 && k != GH_ETIMEDOUT && k != GH_EAGAIN)
        r->err = (int)k;
    return k;
}


/* A released reader with autorelease on: one read from the source into the thread's
 * scratch buffer; the caller gets up to n bytes, and only what it does not take is
 * kept, in a buffer allocated for it. *used is 0 when the scratch buffer could not be
 * lent (too small, or lent already further up this thread's calls): read the usual way. */
static ssize_t reader_read_scratch(gh_reader_t *r, void *buf, size_t n, int *used)
{
    char *sc = gh__scratch_take(GH__SCRATCH_READ, r->size);
    *used = sc != NULL;
    if (!sc)
        return 0;
    ssize_t k = reader_note(r, r->fn(r->src, sc, r->size));
    if (k > 0) {
        size_t give = (size_t)k < n ? (size_t)k : n;
        memcpy(buf, sc, give);
        if ((size_t)k > give && reader_keep(r, sc + give, (size_t)k - give) < 0) {
            gh__scratch_give(GH__SCRATCH_READ);
            return r->err = GH_ENOMEM;
        }
        k = (ssize_t)give;
    }
    gh__scratch_give(GH__SCRATCH_READ);
    return k;
}

ssize_t gh_reader_read(gh_reader_t *r, void *buf, size_t n)
{
    if (n == 0)
        return 0;
    if (r->buf && r->w > r->r) {
        size_t k = r->w - r->r;
        if (k > n)
            k = n;
        memcpy(buf, r->buf + r->r, k);
        r->r += (uint32_t)k;
        if (r->r == r->w)
            reader_drained(r);
        return (ssize_t)k;
    }
    if (r->err)
        return r->err;
    if (r->eof)
        return 0;
    if (!r->fn)
        return GH_EBADF;
    if (n >= r->size) {
        /* Large read with an empty buffer: skip the copy (as Go's bufio does). */
        return reader_note(r, r->fn(r->src, buf, n));
    }
    if (r->autorel && !r->buf) {
        int used;
        ssize_t k = reader_read_scratch(r, buf, n, &used);
        if (used)
            return k;
    }
    ssize_t k = reader_fill_once(r);
    if (k <= 0)
        return k;
    return gh_reader_read(r, buf, n);
}

ssize_t gh_reader_read_full(gh_reader_t *r, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = gh_reader_read(r, (char *)buf + got, n - got);
        if (k == 0)
            break;
        if (k < 0)
            return got ? (ssize_t)got : k;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

ssize_t gh_reader_peek(gh_reader_t *r, size_t n, const char **p)
{
    int rc = reader_ensure_buf(r);
    if (rc)
        return rc;
    if (n > r->size)
        n = r->size;
    while (r->w - r->r < n) {
        ssize_t k = reader_fill_once(r);
        if (k <= 0) {
            if (r->w > r->r)
                break;
            return k;
        }
    }
    *p = r->buf + r->r;
    return (ssize_t)(r->w - r->r);
}

size_t gh_reader_buffered(const gh_reader_t *r, const char **p)
{
    if (p)
        *p = r->buf ? r->buf + r->r : NULL;
    return r->buf ? r->w - r->r : 0;
}

void gh_reader_consume(gh_reader_t *r, size_t n)
{
    size_t have = r->buf ? r->w - r->r : 0;
    if (n > have)
        n = have;
    r->r += (uint32_t)n;
    if (r->r == r->w)
        reader_drained(r);
}

ssize_t gh_reader_read_line(gh_reader_t *r, const char **line, size_t limit)
{
    int rc = reader_ensure_buf(r);
    if (rc)
        return rc;
    if (limit == 0 || limit > r->size)
        limit = r->size;
    size_t scanned = 0;
    for (;;) {
        size_t have = r->w - r->r;
        size_t look = have < limit ? have : limit;
        const char *nl = memchr(r->buf + r->r + scanned, '\n', look - scanned);
        if (nl) {
            size_t len = (size_t)(nl - (r->buf + r->r)) + 1;
            *line = r->buf + r->r;
            r->r += (uint32_t)len;
            if (r->r == r->w)
                r->r = r->w = 0;
            /* The line stays valid: compaction only happens on the next fill. */
            return (ssize_t)len;
        }
        scanned = look;
        if (have >= limit)
            return GH_EMSGSIZE;
        ssize_t k = reader_fill_once(r);
        if (k == 0)
            return have ? GH_EOF : 0;
        if (k < 0)
            return k;
    }
}

void gh_reader_set_autorelease(gh_reader_t *r, int on)
{
    r->autorel = on ? 1 : 0;
    if (on)
        (void)gh_reader_release(r);
}

int gh_reader_release(gh_reader_t *r)
{
    if (!r->buf || r->w > r->r)
        return 0;
    r->buf = NULL;
    r->r = r->w = 0;
    return 1;
}

size_t gh_reader_size(const gh_reader_t *r) { return r->buf ? r->size : 0; }
int gh_reader_error(const gh_reader_t *r) { return r->err; }

/* ---- writer ----------------------------------------------------------------------- */

gh_writer_t *gh_writer_new(void *dst, gh_write_fn fn, size_t size)
{
    gh_writer_t *w = gh_obj_new(&gh__writer_type);
    if (!w)
        return NULL;
    w->dst = dst;
    w->fn = fn;
    w->size = (uint32_t)pick_size(size);
    return w;
}

void gh_writer_reset(gh_writer_t *w, void *dst, gh_write_fn fn)
{
    w->dst = dst;
    w->fn = fn;
    w->err = 0;
}

static ssize_t sink_write(gh_writer_t *w, const void *p, size_t n)
{
    if (!w->fn)
        return w->err = GH_EBADF;
    ssize_t k = w->fn(w->dst, p, n);
    if (k < 0) {
        w->err = (int)k;
        return k;
    }
    return (ssize_t)n;
}

static int writer_flush(gh_writer_t *w)
{
    if (w->err)
        return w->err;
    if (w->n == 0)
        return 0;
    ssize_t k = sink_write(w, w->buf, w->n);
    if (k < 0)
        return (int)k;
    w->n = 0;
    return 0;
}

/* The public flush ends a burst of writes: with autorelease on, the emptied buffer goes
 * back (a flush inside gh_writer_write keeps it for the rest of that write). */
int gh_writer_flush(gh_writer_t *w)
{
    int rc = writer_flush(w);
    if (rc == 0 && w->autorel)
        w->buf = NULL;
    return rc;
}

ssize_t gh_writer_write(gh_writer_t *w, const void *buf, size_t n)
{
    if (w->err)
        return w->err;
    const char *p = buf;
    size_t left = n;
    while (left > 0) {
        if (w->n == 0 && left >= w->size) {
            /* Large write, empty buffer: write through. */
            ssize_t k = sink_write(w, p, left);
            return k < 0 ? k : (ssize_t)n;
        }
        if (gh__writer_alloc(w) < 0)
            return GH_ENOMEM;
        size_t room = w->size - w->n;
        size_t k = left < room ? left : room;
        memcpy(w->buf + w->n, p, k);
        w->n += (uint32_t)k;
        p += k;
        left -= k;
        if (w->n == w->size) {
            int rc = writer_flush(w);
            if (rc < 0)
                return rc;
        }
    }
    return (ssize_t)n;
}

ssize_t gh_writer_puts(gh_writer_t *w, const char *s) { return gh_writer_write(w, s, strlen(s)); }

size_t gh_writer_buffered(const gh_writer_t *w) { return w->n; }
size_t gh_writer_available(const gh_writer_t *w) { return w->size - w->n; }

void gh_writer_set_autorelease(gh_writer_t *w, int on)
{
    w->autorel = on ? 1 : 0;
    if (on)
        (void)gh_writer_release(w);
}

int gh_writer_release(gh_writer_t *w)
{
    if (!w->buf || w->n)
        return 0;
    w->buf = NULL;
    return 1;
}

size_t gh_writer_size(const gh_writer_t *w) { return w->buf ? w->size : 0; }
int gh_writer_error(const gh_writer_t *w) { return w->err; }

/* Internal: allocate the buffer now if it is not there (it is otherwise made on the
 * first write). 0 or GH_ENOMEM. */
int gh__writer_alloc(gh_writer_t *w)
{
    if (!w->buf) {
        w->buf = gh_bytes_new(w->size);
        if (!w->buf)
            return GH_ENOMEM;
    }
    return 0;
}

/* Internal: put n bytes back in front of an EMPTY reader (a request head accumulated
 * outside the buffer read past its end). Returns 0, or GH_EINVAL if the reader is not
 * empty or n does not fit. */
int gh__reader_unread(gh_reader_t *r, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if ((r->buf && r->w > r->r) || n > r->size)
        return GH_EINVAL;
    if (r->small)
        r->buf = NULL; /* empty, and maybe too small */
    int rc = reader_ensure_buf(r);
    if (rc)
        return rc;
    memcpy(r->buf, p, n);
    r->r = 0;
    r->w = (uint32_t)n;
    return 0;
}

/* Internal: the buffer size a reader allocates (its capacity even while released). */
size_t gh__reader_cap(const gh_reader_t *r) { return r->size; }

/* Internal: keep n bytes (n <= its size) in an EMPTY reader, in a buffer allocated for
 * them alone (bytes read past a request head: a body, a pipelined request). 0, GH_EINVAL
 * or GH_ENOMEM. */
int gh__reader_keep(gh_reader_t *r, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if ((r->buf && r->w > r->r) || n > r->size)
        return GH_EINVAL;
    return reader_keep(r, p, n);
}

/* Internal: let a writer with no buffer use buf (plain memory of at least its size,
 * lent by the caller) until gh__writer_unlend. 1 if lent. */
int gh__writer_lend(gh_writer_t *w, char *buf)
{
    if (w->buf)
        return 0;
    w->buf = buf;
    return 1;
}

/* Internal: take a lent buffer back. Bytes still in it (a write that failed) move to a
 * buffer of the writer's own. 0, or GH_ENOMEM (the bytes are dropped). */
int gh__writer_unlend(gh_writer_t *w, const char *buf)
{
    if (w->buf != buf)
        return 0;
    w->buf = NULL;
    if (w->n == 0)
        return 0;
    char *b = gh_bytes_new(w->size);
    if (!b) {
        w->n = 0;
        return GH_ENOMEM;
    }
    memcpy(b, buf, w->n);
    w->buf = b;
    return 0;
}
