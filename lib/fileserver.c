/*
 * lib/fileserver.c: gh_content_serve (Go's serveContent: preconditions, ranges) and the
 * file server (Go's FileServer: paths, opening beneath the root, directories).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define GH__HAVE_OPENAT2 1
#endif
#endif

#include "internal.h"
#include "gchttp/date.h"
#include "gchttp/fileserver.h"
#include "gchttp/mime.h"

/* More ranges than this in one request are not worth a multipart answer: the whole
 * content is sent instead (RFC 9110 §14.2 lets a server ignore Range). */
#define GH__MAX_RANGES 64

/* ---- small answers ------------------------------------------------------------------ */

static void answer(gh_response_t *w, int status, const char *msg)
{
    /* The validators and range fields of the file do not describe this body. */
    gh_response_header_del(w, "ETag");
    gh_response_header_del(w, "Last-Modified");
    gh_response_header_del(w, "Accept-Ranges");
    (void)gh_response_error(w, msg, status);
}

/* ---- entity tags (RFC 9110 §8.8.3) ------------------------------------------------ */

/* Scan one entity-tag at *p (after optional whitespace and commas). Sets the opaque
 * tag (with its quotes) in [*ts, *te) and *weak. Returns 1 on a tag, 2 on "*", 0 at the
 * end, -1 on a syntax error. */
static int next_etag(const char **p, const char **ts, const char **te, int *weak)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t' || *s == ',')
        s++;
    if (!*s)
        return 0;
    if (*s == '*') {
        *p = s + 1;
        return 2;
    }
    *weak = 0;
    if (s[0] == 'W' && s[1] == '/') {
        *weak = 1;
        s += 2;
    }
    if (*s != '"')
        return -1;
    const char *e = s + 1;
    while (*e && *e != '"') {
        unsigned char c = (unsigned char)*e;
        if (c != 0x21 && (c < 0x23 || c == 0x7f)) /* etagc */
            return -1;
        e++;
    }
    if (*e != '"')
        return -1;
    *ts = s;
    *te = e + 1;
    *p = e + 1;
    return 1;
}

/* Does list match ours ("\"...\"" or "W/\"...\"")? strong: the strong comparison (both
 * tags strong and equal, §8.8.3.2), else the weak one (opaque tags equal). */
static int etag_list_matches(const char *list, const char *ours, int strong)
{
    if (!ours || !*ours)
        return 0;
    int oweak = strncmp(ours, "W/", 2) == 0;
    const char *o = oweak ? ours + 2 : ours;
    size_t ol = strlen(o);
    const char *p = list, *ts, *te;
    int weak, k;
    while ((k = next_etag(&p, &ts, &te, &weak)) > 0) {
        if (k == 2)
            return 1;
        if (strong && (weak || oweak))
            continue;
        if ((size_t)(te - ts) == ol && memcmp(ts, o, ol) == 0)
            return 1;
    }
    return 0;
}

/* ---- preconditions (RFC 9110 §13.2.2, in its order; Go's checkPreconditions) -------- */

enum { COND_NONE, COND_TRUE, COND_FALSE };

static int method_is(const gh_request_t *r, const char *m) { return strcmp(gh_request_method(r), m) == 0; }
static int is_get_or_head(const gh_request_t *r) { return method_is(r, "GET") || method_is(r, "HEAD"); }

static int check_if_match(const gh_request_t *r, const char *etag)
{
    const char *im = gh_request_header(r, "If-Match");
    if (!im)
        return COND_NONE;
    return etag_list_matches(im, etag, 1) ? COND_TRUE : COND_FALSE;
}

static int check_if_unmodified_since(const gh_request_t *r, int64_t mtime)
{
    const char *v = gh_request_header(r, "If-Unmodified-Since");
    int64_t t;
    if (!v || mtime <= 0 || gh_date_parse(v, &t) < 0)
        return COND_NONE; /* an invalid date is ignored (§13.1.4) */
    return mtime <= t ? COND_TRUE : COND_FALSE;
}

static int check_if_none_match(const gh_request_t *r, const char *etag)
{
    const char *v = gh_request_header(r, "If-None-Match");
    if (!v)
        return COND_NONE;
    return etag_list_matches(v, etag, 0) ? COND_FALSE : COND_TRUE;
}

static int check_if_modified_since(const gh_request_t *r, int64_t mtime)
{
    const char *v = gh_request_header(r, "If-Modified-Since");
    int64_t t;
    if (!v || mtime <= 0 || !is_get_or_head(r) || gh_date_parse(v, &t) < 0)
        return COND_NONE;
    return mtime <= t ? COND_FALSE : COND_TRUE;
}

/* §13.1.5: the range applies only if the representation is unchanged: a strong ETag
 * match, or a date equal to Last-Modified. */
static int check_if_range(const gh_request_t *r, const char *etag, int64_t mtime)
{
    const char *v = gh_request_header(r, "If-Range");
    if (!v)
        return COND_NONE;
    while (*v == ' ' || *v == '\t')
        v++;
    if (v[0] == '"' || (v[0] == 'W' && v[1] == '/')) {
        const char *p = v, *ts, *te;
        int weak;
        if (next_etag(&p, &ts, &te, &weak) != 1 || weak || !etag || strncmp(etag, "W/", 2) == 0)
            return COND_FALSE;
        return (size_t)(te - ts) == strlen(etag) && memcmp(ts, etag, strlen(etag)) == 0
                   ? COND_TRUE
                   : COND_FALSE;
    }
    int64_t t;
    if (mtime <= 0 || gh_date_parse(v, &t) < 0)
        return COND_FALSE;
    return t == mtime ? COND_TRUE : COND_FALSE;
}

static void not_modified(gh_response_t *w)
{
    /* §15.4.5: the fields a 200 would have carried that help caches; no content
     * fields. Go also drops Last-Modified when an ETag is there. */
    gh_response_header_del(w, "Content-Type");
    gh_response_header_del(w, "Content-Length");
    gh_response_header_del(w, "Content-Encoding");
    if (gh_response_header_get(w, "ETag"))
        gh_response_header_del(w, "Last-Modified");
    gh_response_write_header(w, 304);
}

/* ---- ranges (RFC 9110 §14.1.2) ------------------------------------------------------ */

typedef struct {
    int64_t start, len;
} range_t;

/* Parse "bytes=a-b, c-, -n" against size. Returns the number of satisfiable ranges
 * (0: none overlaps the content), -1 when the header is malformed, -2 when there are
 * too many ranges to bother (serve it all). */
static int parse_ranges(const char *s, int64_t size, range_t *out, int max)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (strncasecmp(s, "bytes=", 6) != 0)
        return -1;
    s += 6;
    int n = 0, any = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        if (!*s)
            break;
        any = 1;
        int64_t a = -1, b = -1;
        if (*s >= '0' && *s <= '9') {
            a = 0;
            while (*s >= '0' && *s <= '9') {
                if (a > (INT64_MAX - 9) / 10)
                    return -1;
                a = a * 10 + (*s++ - '0');
            }
        }
        if (*s++ != '-')
            return -1;
        if (*s >= '0' && *s <= '9') {
            b = 0;
            while (*s >= '0' && *s <= '9') {
                if (b > (INT64_MAX - 9) / 10)
                    return -1;
                b = b * 10 + (*s++ - '0');
            }
        }
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s && *s != ',')
            return -1;
        range_t r;
        if (a < 0) {
            if (b < 0)
                return -1; /* "-" alone */
            /* suffix: the last b bytes (§14.1.3); "-0" selects nothing */
            if (b == 0)
                continue;
            r.start = b >= size ? 0 : size - b;
            r.len = size - r.start;
        } else {
            if (b >= 0 && b < a)
                return -1;
            if (a >= size)
                continue; /* does not overlap: skipped, 416 if none does */
            r.start = a;
            r.len = (b < 0 || b >= size ? size - 1 : b) - a + 1;
        }
        if (n == max)
            return -2;
        out[n++] = r;
    }
    return any ? n : -1;
}

/* The length of a multipart/byteranges body: each part's head and data, the closing
 * delimiter (RFC 2046 §5.1.1; the first delimiter has no CRLF in front, as Go's
 * mime/multipart writes it). */
static void part_head(char *buf, size_t cap, int first, const char *boundary, const char *type,
                      const range_t *r, int64_t size, int *len)
{
    *len = snprintf(buf, cap, "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %lld-%lld/%lld\r\n\r\n",
                    first ? "" : "\r\n", boundary, type, (long long)r->start,
                    (long long)(r->start + r->len - 1), (long long)size);
}

static int send_multipart(gh_response_t *w, gh_request_t *r, int fd, int64_t size,
                          const char *type, const range_t *rs, int n)
{
    unsigned char rnd[16];
    char boundary[40], head[512], ctype[96];
    ssize_t got;
    do
        got = getrandom(rnd, sizeof rnd, 0);
    while (got < 0 && errno == EINTR);
    if (got != (ssize_t)sizeof rnd)
        return GH_EAGAIN;
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(boundary + 2 * i, 3, "%02x", rnd[i]);
    int64_t total = 0;
    int hl;
    for (int i = 0; i < n; i++) {
        part_head(head, sizeof head, i == 0, boundary, type, &rs[i], size, &hl);
        total += hl + rs[i].len;
    }
    total += (int64_t)strlen(boundary) + 8; /* "\r\n--" boundary "--\r\n" */
    char cl[24];
    snprintf(cl, sizeof cl, "%lld", (long long)total);
    snprintf(ctype, sizeof ctype, "multipart/byteranges; boundary=%s", boundary);
    gh_response_header_set(w, "Content-Type", ctype);
    gh_response_header_set(w, "Content-Length", cl);
    gh_response_write_header(w, 206);
    if (r->is_head)
        return 0;
    for (int i = 0; i < n; i++) {
        part_head(head, sizeof head, i == 0, boundary, type, &rs[i], size, &hl);
        ssize_t k = gh_response_write(w, head, (size_t)hl);
        if (k < 0)
            return (int)k;
        k = gh_response_sendfile(w, fd, rs[i].start, (size_t)rs[i].len);
        if (k < 0)
            return (int)k;
    }
    snprintf(head, sizeof head, "\r\n--%s--\r\n", boundary);
    ssize_t k = gh_response_puts(w, head);
    return k < 0 ? (int)k : 0;
}

int gh_content_serve(gh_response_t *w, gh_request_t *r, const gh_content_t *c)
{
    int64_t size = c->size;
    int64_t mtime = c->mtime;
    char etag[256] = "";
    const char *e = gh_response_header_get(w, "ETag");
    size_t el = e ? strlen(e) : 0;
    if (e && el < sizeof etag)
        memcpy(etag, e, el + 1);
    if (mtime > 0 && !gh_response_header_get(w, "Last-Modified")) {
        char d[GH_DATE_LEN];
        if (gh_date_format(mtime, d) == 0)
            gh_response_header_set(w, "Last-Modified", d);
    }

    int ch = check_if_match(r, etag);
    if (ch == COND_NONE)
        ch = check_if_unmodified_since(r, mtime);
    if (ch == COND_FALSE) {
        answer(w, 412, "412 precondition failed");
        return 0;
    }
    switch (check_if_none_match(r, etag)) {
    case COND_FALSE:
        if (is_get_or_head(r))
            not_modified(w);
        else
            answer(w, 412, "412 precondition failed");
        return 0;
    case COND_NONE:
        if (check_if_modified_since(r, mtime) == COND_FALSE) {
            not_modified(w);
            return 0;
        }
        break;
    default:
        break;
    }

    /* The type comes from the name or the first bytes of the content, before any range
     * is chosen: a part must not be sniffed as if it were the whole. */
    char type[256];
    const char *ht = gh_response_header_get(w, "Content-Type");
    if (ht) {
        snprintf(type, sizeof type, "%s", ht);
    } else {
        const char *t = c->name ? gh_mime_type(c->name) : NULL;
        if (!t) {
            char head[512];
            ssize_t k;
            do
                k = pread(c->fd, head, size < 512 ? (size_t)size : 512, 0);
            while (k < 0 && errno == EINTR);
            if (k < 0) {
                answer(w, 500, "500 cannot read the file");
                return 0;
            }
            t = gh_mime_sniff(head, (size_t)k);
        }
        snprintf(type, sizeof type, "%s", t);
        gh_response_header_set(w, "Content-Type", type);
    }
    gh_response_header_set(w, "Accept-Ranges", "bytes");

    const char *rh = gh_request_header(r, "Range");
    if (rh && is_get_or_head(r) && check_if_range(r, etag, mtime) != COND_FALSE) {
        range_t rs[GH__MAX_RANGES];
        int n = parse_ranges(rh, size, rs, GH__MAX_RANGES);
        if (n == 0 && size == 0)
            n = -2; /* an empty file: 200 rather than 416, as Go (clients that always
                     * send a Range) */
        if (n == -1 || n == 0) {
            /* §15.5.17: unsatisfiable (and, as Go does, malformed) */
            char cr[48];
            snprintf(cr, sizeof cr, "bytes */%lld", (long long)size);
            gh_response_header_set(w, "Content-Range", cr);
            answer(w, 416, "416 requested range not satisfiable");
            return 0;
        }
        if (n > 0) {
            int64_t sum = 0;
            for (int i = 0; i < n; i++)
                sum += rs[i].len;
            /* Many overlapping ranges could ask for more than the whole: send the
             * whole instead (Go does the same). */
            if (sum <= size) {
                if (n > 1)
                    return send_multipart(w, r, c->fd, size, type, rs, n);
                char cr[80], cl[24];
                snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)rs[0].start,
                         (long long)(rs[0].start + rs[0].len - 1), (long long)size);
                snprintf(cl, sizeof cl, "%lld", (long long)rs[0].len);
                gh_response_header_set(w, "Content-Range", cr);
                gh_response_header_set(w, "Content-Length", cl);
                gh_response_write_header(w, 206);
                if (r->is_head)
                    return 0;
                ssize_t k = gh_response_sendfile(w, c->fd, rs[0].start, (size_t)rs[0].len);
                return k < 0 ? (int)k : 0;
            }
        }
    }
    char cl[24];
    snprintf(cl, sizeof cl, "%lld", (long long)size);
    gh_response_header_set(w, "Content-Length", cl);
    gh_response_write_header(w, 200);
    if (r->is_head || size == 0)
        return 0;
    ssize_t k = gh_response_sendfile(w, c->fd, 0, (size_t)size);
    return k < 0 ? (int)k : 0;
}

/* ---- the file server ---------------------------------------------------------------- */

struct gh_fileserver_s {
    char *root_real;  /* atomic: realpath of the root, for the fallback check */
    char *prefix;     /* atomic; NULL: none */
    char *index;      /* atomic; NULL: none */
    /* not traced */
    size_t root_len;
    int rootfd;       /* O_PATH directory; -1 once closed (atomic) */
    int list_dirs, hide_dot;
    gh_symlinks_t symlinks;
    int no_openat2;   /* atomic: the kernel said ENOSYS once */
};

static const size_t fs_ptrs[] = {offsetof(struct gh_fileserver_s, root_real),
                                 offsetof(struct gh_fileserver_s, prefix),
                                 offsetof(struct gh_fileserver_s, index)};

/* Backstop only (obj.h's rules): a file server nobody closed. */
static void fs_finalize(void *obj)
{
    struct gh_fileserver_s *fs = obj;
    int fd = __atomic_exchange_n(&fs->rootfd, -1, __ATOMIC_ACQ_REL);
    if (fd >= 0)
        (void)close(fd);
}

static gh_type_t fs_type = {.name = "fileserver",
                            .size = sizeof(struct gh_fileserver_s),
                            .ptr_offsets = fs_ptrs,
                            .n_ptrs = sizeof fs_ptrs / sizeof fs_ptrs[0],
                            .finalize = fs_finalize};

void gh_fileserver_config_init(gh_fileserver_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
}

int gh_fileserver_new(gh_fileserver_t **out, const gh_fileserver_config_t *cfg)
{
    *out = NULL;
    if (!cfg->root || !*cfg->root)
        return GH_EINVAL;
    gh_gc_init();
    char *real = realpath(cfg->root, NULL);
    if (!real)
        return -errno;
    gh_fileserver_t *fs = gh_obj_new(&fs_type);
    if (!fs) {
        free(real);
        return GH_ENOMEM;
    }
    fs->rootfd = -1;
    fs->root_real = gh_strdup(real);
    fs->root_len = strlen(real);
    free(real);
    const char *idx = cfg->index ? cfg->index : "index.html";
    fs->index = *idx ? gh_strdup(idx) : NULL;
    fs->prefix = cfg->strip_prefix && *cfg->strip_prefix ? gh_strdup(cfg->strip_prefix) : NULL;
    if (!fs->root_real || (*idx && !fs->index) ||
        (cfg->strip_prefix && *cfg->strip_prefix && !fs->prefix))
        return GH_ENOMEM;
    if (strchr(idx, '/'))
        return GH_EINVAL;
    fs->list_dirs = cfg->list_dirs;
    fs->hide_dot = cfg->hide_dotfiles;
    fs->symlinks = cfg->symlinks;
    int fd = open(fs->root_real, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    __atomic_store_n(&fs->rootfd, fd, __ATOMIC_RELEASE);
    *out = fs;
    return 0;
}

void gh_fileserver_close(gh_fileserver_t *fs)
{
    int fd = __atomic_exchange_n(&fs->rootfd, -1, __ATOMIC_ACQ_REL);
    if (fd >= 0)
        (void)close(fd);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The request path (origin-form, or the path of an absolute-form target), decoded and
 * cleaned into out: "/" or "/a/b" without a trailing slash; *slash says whether the
 * request had one. Returns 0, or the status to answer (400 bad path, 404 hidden). */
static int clean_path(const gh_fileserver_t *fs, const char *target, char *out, size_t cap,
                      int *slash)
{
    const char *p = target;
    if (p[0] != '/') {
        /* absolute-form (RFC 9112 §3.2.2): skip scheme and authority */
        const char *ss = strstr(p, "://");
        if (!ss)
            return 400;
        p = strchr(ss + 3, '/');
        if (!p)
            p = "/";
    }
    size_t rawlen = strcspn(p, "?#");
    char dec[4096];
    size_t dl = 0;
    for (size_t i = 0; i < rawlen; i++) {
        char ch = p[i];
        if (ch == '%') {
            if (i + 2 >= rawlen)
                return 400;
            int hi = hexval(p[i + 1]), lo = hexval(p[i + 2]);
            if (hi < 0 || lo < 0)
                return 400;
            ch = (char)(hi * 16 + lo);
            i += 2;
            if (ch == 0)
                return 400;
        }
        if (ch == '\\')
            return 400; /* a separator elsewhere; never a name here */
        if (dl + 2 >= sizeof dec)
            return 400;
        dec[dl++] = ch;
    }
    dec[dl] = 0;
    const char *d = dec;
    if (fs->prefix) {
        size_t pl = strlen(fs->prefix);
        if (strncmp(d, fs->prefix, pl) != 0)
            return 404;
        d += pl;
    }
    *slash = dl > 0 && dec[dl - 1] == '/';
    size_t ol = 0;
    while (*d) {
        while (*d == '/')
            d++;
        if (!*d)
            break;
        size_t sl = strcspn(d, "/");
        if (sl == 1 && d[0] == '.') {
            d += 1;
            continue;
        }
        if (sl == 2 && d[0] == '.' && d[1] == '.')
            return 400; /* never walk up, even where it would stay inside */
        if (fs->hide_dot && d[0] == '.')
            return 404;
        if (ol + sl + 2 >= cap)
            return 400;
        out[ol++] = '/';
        memcpy(out + ol, d, sl);
        ol += sl;
        d += sl;
    }
    if (ol == 0)
        out[ol++] = '/';
    out[ol] = 0;
    return 0;
}

/* Is the opened fd inside the root (and, for GH_SYMLINKS_NONE, exactly at
 * root + rel: no link on the way)? The kernel's own name for the open file decides,
 * so a link swapped after the open changes nothing. */
static int fd_inside(const gh_fileserver_t *fs, int fd, const char *rel)
{
    char link[64], real[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    if (n < 0)
        return 0; /* cannot tell: refuse */
    real[n] = 0;
    size_t rl = fs->root_len;
    int root_is_slash = rl == 1;
    if (strncmp(real, fs->root_real, rl) != 0 ||
        (!root_is_slash && real[rl] != 0 && real[rl] != '/'))
        return 0;
    if (fs->symlinks == GH_SYMLINKS_NONE) {
        const char *tail = real + (root_is_slash ? 0 : rl);
        if (strcmp(rel, ".") == 0)
            return *tail == 0 || strcmp(tail, "/") == 0;
        return tail[0] == '/' && strcmp(tail + 1, rel) == 0;
    }
    return 1;
}

/* Open rel (no leading slash, no "..") beneath the root. Returns the descriptor or
 * -errno. */
static int open_beneath(gh_fileserver_t *fs, int rootfd, const char *rel)
{
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK; /* a FIFO must not block us */
    if (fs->symlinks == GH_SYMLINKS_ANY) {
        int fd = openat(rootfd, rel, flags);
        if (fd < 0)
            return -errno;
        return fd;
    }
#ifdef GH__HAVE_OPENAT2
    if (!__atomic_load_n(&fs->no_openat2, __ATOMIC_RELAXED)) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = (uint64_t)flags;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
                      (fs->symlinks == GH_SYMLINKS_NONE ? RESOLVE_NO_SYMLINKS : 0);
        long fd;
        do
            fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof how);
        while (fd < 0 && (errno == EINTR || errno == EAGAIN));
        if (fd >= 0)
            return (int)fd;
        if (errno != ENOSYS && errno != EPERM && errno != EXDEV)
            return -errno;
        if (errno == EXDEV && fs->symlinks == GH_SYMLINKS_NONE)
            return -ENOENT;
        if (errno == ENOSYS || errno == EPERM) /* old kernel, or a seccomp filter */
            __atomic_store_n(&fs->no_openat2, 1, __ATOMIC_RELAXED);
        /* EXDEV: an absolute link, which may still point inside the root; the
         * check below decides. */
    }
#endif
    int fd = openat(rootfd, rel, flags | (fs->symlinks == GH_SYMLINKS_NONE ? O_NOFOLLOW : 0));
    if (fd < 0)
        return -errno;
    if (!fd_inside(fs, fd, rel)) {
        close(fd);
        return -ENOENT;
    }
    return fd;
}

static int status_for_errno(int e)
{
    if (e == -EACCES || e == -EPERM)
        return 403;
    if (e == -ENOENT || e == -ENOTDIR || e == -ELOOP || e == -EXDEV || e == -ENAMETOOLONG ||
        e == -ENXIO)
        return 404;
    return 500;
}

/* Location for a redirect relative to the request (Go's localRedirect), keeping the
 * query. */
static void local_redirect(gh_response_t *w, gh_request_t *r, const char *to)
{
    const char *q = strchr(gh_request_target(r), '?');
    char loc[4200];
    snprintf(loc, sizeof loc, "%s%s", to, q ? q : "");
    gh_response_header_set(w, "Location", loc);
    gh_response_header_set(w, "Content-Type", "text/html; charset=utf-8");
    gh_response_write_header(w, 301);
}

/* Percent-encode a name for an href (RFC 3986 unreserved and a few sub-delims kept). */
static void url_escape(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~!$&'()*+,;=@", c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = 0;
}

static void html_escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&#34;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep) {
            size_t k = strlen(rep);
            memcpy(out + o, rep, k);
            o += k;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory listing (Go's dirList): names sorted, directories with a slash. The
 * names live in malloc'd memory that is freed here: no GC pointers among them. */
static void list_dir(gh_fileserver_t *fs, gh_response_t *w, gh_request_t *r, int dirfd)
{
    int dfd = dup(dirfd);
    DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!dir) {
        if (dfd >= 0)
            close(dfd);
        answer(w, 500, "500 cannot read the directory");
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    /* readdir is safe here: this DIR stream is private to this call (glibc locks it);
     * readdir_r is deprecated. */
    // cppcheck-suppress readdirCalled -- a private DIR stream, see above
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fs->hide_dot && de->d_name[0] == '.')
            continue;
        struct stat st;
        int isdir = fstatat(dirfd, de->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn)
                break;
            names = nn;
            cap = nc;
        }
        size_t l = strlen(de->d_name);
        char *copy = malloc(l + 2);
        if (!copy)
            break;
        memcpy(copy, de->d_name, l);
        copy[l] = isdir ? '/' : 0;
        copy[l + 1] = 0;
        names[n++] = copy;
    }
    closedir(dir);
    if (names)
        qsort(names, n, sizeof *names, cmp_names);
    gh_response_header_set(w, "Content-Type", "text/html; charset=utf-8");
    gh_response_write_header(w, 200);
    if (!r->is_head) {
        gh_response_puts(w, "<!doctype html>\n<meta name=\"viewport\" "
                            "content=\"width=device-width\">\n<pre>\n");
        for (size_t i = 0; i < n; i++) {
            char url[3 * 256 + 8], href[6 * 3 * 256 + 8], text[6 * 256 + 8];
            size_t l = strlen(names[i]);
            int isdir = l > 0 && names[i][l - 1] == '/';
            names[i][l - isdir] = 0;
            /* A colon is escaped too, so a name never reads as a scheme. */
            url_escape(names[i], url, sizeof url - 1);
            if (isdir) {
                size_t ul = strlen(url); /* url_escape left a byte for the slash */
                memcpy(url + ul, "/", 2);
                names[i][l - 1] = '/';
            }
            html_escape(url, href, sizeof href);
            html_escape(names[i], text, sizeof text);
            gh_response_printf(w, "<a href=\"%s\">%s</a>\n", href, text);
        }
        gh_response_puts(w, "</pre>\n");
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void etag_for(const struct stat *st, char out[80])
{
    snprintf(out, 80, "\"%llx-%llx-%llx\"", (unsigned long long)st->st_ino,
             (unsigned long long)st->st_mtim.tv_sec * 1000000000ULL +
                 (unsigned long long)st->st_mtim.tv_nsec,
             (unsigned long long)st->st_size);
}

static void serve_regular(gh_response_t *w, gh_request_t *r, int fd, const struct stat *st,
                          const char *name)
{
    char etag[80];
    etag_for(st, etag);
    if (!gh_response_header_get(w, "ETag"))
        gh_response_header_set(w, "ETag", etag);
    gh_content_t c = {.fd = fd, .size = st->st_size, .mtime = st->st_mtim.tv_sec, .name = name};
    (void)gh_content_serve(w, r, &c);
}

void gh_fileserver_serve(gh_response_t *w, gh_request_t *r, void *data)
{
    gh_fileserver_t *fs = data;
    if (!is_get_or_head(r)) {
        gh_response_header_set(w, "Allow", "GET, HEAD");
        answer(w, 405, "405 method not allowed");
        return;
    }
    char path[4096];
    int slash = 0;
    int st = clean_path(fs, gh_request_target(r), path, sizeof path, &slash);
    if (st) {
        answer(w, st, st == 400 ? "400 bad request path" : "404 page not found");
        return;
    }
    int rootfd = __atomic_load_n(&fs->rootfd, __ATOMIC_ACQUIRE);
    if (rootfd < 0) {
        answer(w, 503, "503 file server closed");
        return;
    }
    const char *rel = path[1] ? path + 1 : ".";
    const char *base = strrchr(path, '/') + 1;
    /* Go: ".../index.html" is served as its directory. */
    if (fs->index && strcmp(base, fs->index) == 0) {
        local_redirect(w, r, "./");
        return;
    }
    int fd = open_beneath(fs, rootfd, rel);
    if (fd < 0) {
        int s = status_for_errno(fd);
        answer(w, s, s == 403 ? "403 forbidden" : s == 404 ? "404 page not found" : "500 error");
        return;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        close(fd);
        answer(w, 500, "500 cannot stat");
        return;
    }
    if (S_ISDIR(sb.st_mode)) {
        if (!slash && path[1]) {
            char esc[3300];
            url_escape(base, esc, sizeof esc - 1);
            size_t el2 = strlen(esc); /* url_escape left a byte for the slash */
            memcpy(esc + el2, "/", 2);
            close(fd);
            local_redirect(w, r, esc);
            return;
        }
        if (fs->index) {
            char irel[4200];
            snprintf(irel, sizeof irel, "%s/%s", rel, fs->index);
            int ifd = open_beneath(fs, rootfd, strcmp(rel, ".") == 0 ? fs->index : irel);
            struct stat ib;
            if (ifd >= 0 && fstat(ifd, &ib) == 0 && S_ISREG(ib.st_mode)) {
                close(fd);
                serve_regular(w, r, ifd, &ib, fs->index);
                close(ifd);
                return;
            }
            if (ifd >= 0)
                close(ifd);
        }
        if (fs->list_dirs)
            list_dir(fs, w, r, fd);
        else
            answer(w, 404, "404 page not found");
        close(fd);
        return;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        answer(w, 404, "404 page not found");
        return;
    }
    if (slash) {
        /* a file asked for as a directory: Go redirects to the file */
        char to[3400], esc[3300];
        url_escape(base, esc, sizeof esc);
        snprintf(to, sizeof to, "../%s", esc);
        close(fd);
        local_redirect(w, r, to);
        return;
    }
    serve_regular(w, r, fd, &sb, base);
    close(fd);
}
