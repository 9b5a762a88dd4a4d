/*
 * lib/mux.c: Go 1.22's ServeMux (pattern.go, routing_tree.go, server.go findHandler).
 *
 * The routing tree branches on the host, then on the method, then on one path segment
 * per level. A node's literal children sit in a table that is small and scanned
 * (at most LINEAR_MAX) or hashed; the single-wildcard, multi-wildcard and "{$}" children
 * have their own slots. Matching tries the literal child, then the wildcard, then the
 * multi-wildcard, backtracking on failure: registration refused every pair of patterns
 * where neither is more specific, so the first match in that order is the most
 * specific pattern (Go's argument in routing_tree.go).
 *
 * Readers take no lock. Registration (under mu) never changes a table that readers may
 * be walking: it builds a new one and publishes it with a release store; the collector
 * frees the old one once no reader holds it. Node slots and a leaf's pattern are
 * published the same way, after the object they point to is complete.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

enum { SEG_LIT, SEG_WILD, SEG_MULTI, SEG_SLASH };

/* A pattern segment: kind, and for a literal its decoded text, for a wildcard its name
 * (empty for the anonymous multi of a trailing slash), at text + off. */
typedef struct pseg {
    uint32_t off, len, kind;
} pseg_t;

/*
 * A registered pattern.
 * Alloc:     gh_obj_new at registration; its strings are atomic blocks.
 * Lifetime:  kept by the mux (pats) and by its leaf node.
 * OS state:  none.
 * Threads:   immutable once published.
 */
typedef struct pattern {
    char *str;    /* as registered */
    char *method; /* "" for any */
    char *host;   /* lower case; "" for any */
    char *text;   /* segment texts, NUL-separated */
    pseg_t *segs; /* atomic */
    void *data;
    /* not traced */
    gh_handler_fn fn;
    uint32_t nsegs;
    uint32_t names_bytes; /* sum over named wildcards of strlen(name) + 1 */
} pattern_t;

static const size_t pat_ptrs[] = {offsetof(pattern_t, str),  offsetof(pattern_t, method),
                                  offsetof(pattern_t, host), offsetof(pattern_t, text),
                                  offsetof(pattern_t, segs), offsetof(pattern_t, data)};
static gh_type_t pattern_type = GH_TYPE_INIT("muxPattern", pattern_t, pat_ptrs);

/*
 * A node of the routing tree.
 * Alloc:     gh_obj_new at registration.
 * Lifetime:  kept by its parent (the root by the mux).
 * OS state:  none.
 * Threads:   written under the mux's mu by release stores; read by any thread.
 */
typedef struct node {
    char *key;          /* atomic: host, method or decoded literal segment */
    void **kids;        /* [0] count, [1] capacity, then children with a key */
    struct node *wild;  /* "{x}" (and, at the host and method levels, "any") */
    struct node *multi; /* "{x...}" or a trailing slash: always a leaf */
    struct node *slash; /* "{$}": a trailing slash */
    pattern_t *pat;     /* set on a leaf */
    /* not traced */
    uint32_t klen, hash;
} node_t;

static const size_t node_ptrs[] = {offsetof(node_t, key),   offsetof(node_t, kids),
                                   offsetof(node_t, wild),  offsetof(node_t, multi),
                                   offsetof(node_t, slash), offsetof(node_t, pat)};
static gh_type_t node_type = GH_TYPE_INIT("muxNode", node_t, node_ptrs);

struct gh_mux_s {
    node_t *root; /* host level */
    void **pats;  /* every registered pattern, for conflict checks */
    char *err;    /* last registration error */
    /* not traced */
    pthread_mutex_t mu;
    uint32_t npats, cap_pats;
    uint32_t depth; /* most segments of any pattern (atomic) */
};

static const size_t mux_ptrs[] = {offsetof(struct gh_mux_s, root), offsetof(struct gh_mux_s, pats),
                                  offsetof(struct gh_mux_s, err)};
static gh_type_t mux_type = GH_TYPE_INIT("mux", struct gh_mux_s, mux_ptrs);

#define LOAD(p) __atomic_load_n(&(p), __ATOMIC_ACQUIRE)
#define PUBLISH(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELEASE)
#define LINEAR_MAX 8

gh_mux_t *gh_mux_new(void)
{
    gh_mux_t *m = gh_obj_new(&mux_type);
    if (!m)
        return NULL;
    m->root = gh_obj_new(&node_type);
    if (!m->root)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->err = "";
    return m;
}

const char *gh_mux_error(const gh_mux_t *m)
{
    return m->err ? m->err : "";
}

/* ---- the children table ---------------------------------------------------------------- */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static node_t *find_kid(const node_t *n, const char *k, size_t len)
{
    void **t = LOAD(n->kids);
    if (!t)
        return NULL;
    size_t cnt = (uintptr_t)t[0], cap = (uintptr_t)t[1];
    node_t **s = (node_t **)(t + 2);
    if (cap <= LINEAR_MAX) {
        for (size_t i = 0; i < cnt; i++)
            if (s[i]->klen == len && memcmp(s[i]->key, k, len) == 0)
                return s[i];
        return NULL;
    }
    uint32_t h = hash_bytes(k, len);
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        node_t *c = s[i];
        if (!c)
            return NULL;
        if (c->hash == h && c->klen == len && memcmp(c->key, k, len) == 0)
            return c;
    }
}

/* Under mu: a new table holding n's children and c. */
static int add_kid(node_t *n, node_t *c)
{
    void **t = n->kids;
    size_t cnt = t ? (uintptr_t)t[0] : 0, cap = t ? (uintptr_t)t[1] : 0;
    node_t **old = t ? (node_t **)(t + 2) : NULL;
    size_t ncap = cnt + 1;
    if (ncap > LINEAR_MAX) {
        ncap = 16;
        while (ncap < 2 * (cnt + 1))
            ncap *= 2;
    }
    void **nt = gh_ptrs_new(2 + ncap);
    if (!nt)
        return GH_ENOMEM;
    nt[0] = (void *)(uintptr_t)(cnt + 1);
    nt[1] = (void *)(uintptr_t)ncap;
    node_t **s = (node_t **)(nt + 2);
    if (ncap <= LINEAR_MAX) {
        for (size_t i = 0; i < cnt; i++)
            s[i] = old[i];
        s[cnt] = c;
    } else {
        size_t placed = 0;
        for (size_t i = 0; i < (cap <= LINEAR_MAX ? cnt : cap) + 1; i++) {
            node_t *x = i < (cap <= LINEAR_MAX ? cnt : cap) ? old[i] : c;
            if (!x)
                continue;
            size_t j = x->hash & (ncap - 1);
            while (s[j])
                j = (j + 1) & (ncap - 1);
            s[j] = x;
            placed++;
        }
        (void)placed;
    }
    PUBLISH(n->kids, nt);
    return 0;
}

static node_t *node_new(const char *k, size_t len)
{
    node_t *c = gh_obj_new(&node_type);
    if (!c)
        return NULL;
    c->key = gh_strndup(k, len);
    if (!c->key)
        return NULL;
    c->klen = (uint32_t)len;
    c->hash = hash_bytes(k, len);
    return c;
}

/* Under mu: the child of n for key (wild: the wildcard slot), made if missing. */
static node_t *kid(node_t *n, const char *k, size_t len, int wild)
{
    if (wild) {
        if (!n->wild) {
            node_t *c = node_new("", 0);
            if (!c)
                return NULL;
            PUBLISH(n->wild, c);
        }
        return n->wild;
    }
    node_t *c = find_kid(n, k, len);
    if (c)
        return c;
    c = node_new(k, len);
    if (!c || add_kid(n, c) < 0)
        return NULL;
    return c;
}

/* ---- patterns ---------------------------------------------------------------------- */

static int fail(gh_mux_t *m, int code, const char *pattern, const char *why)
{
    char buf[512];
    snprintf(buf, sizeof buf, "pattern \"%s\": %s", pattern, why);
    char *e = gh_strdup(buf);
    if (e)
        m->err = e;
    return code;
}

static int is_ident(const char *s, size_t n)
{
    /* A Go identifier; bytes >= 0x80 count as letters (UTF-8). */
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
        if (!letter && !(i > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

static int parse_pattern(gh_mux_t *m, const char *s, pattern_t **out)
{
    size_t n = strlen(s);
    if (n == 0)
        return fail(m, GH_EINVAL, "", "empty pattern");
    pattern_t *p = gh_obj_new(&pattern_type);
    char *text = gh_bytes_new(2 * n + 2);
    pseg_t *segs = gh_bytes_new((n + 1) * sizeof(pseg_t));
    p = p && text && segs ? p : NULL;
    if (!p || !(p->str = gh_strdup(s)))
        return GH_ENOMEM;
    p->text = text;
    p->segs = segs;
    /* "[METHOD ]": a method is followed by spaces or tabs (Go 1.23 allows either). */
    const char *rest = s;
    size_t ml = strcspn(s, " \t");
    p->method = "";
    if (ml < n) {
        if (!gh__is_token(s, ml))
            return fail(m, GH_EINVAL, s, "invalid method");
        if (!(p->method = gh_strndup(s, ml)))
            return GH_ENOMEM;
        rest = s + ml;
        while (*rest == ' ' || *rest == '\t')
            rest++;
    }
    const char *slash = strchr(rest, '/');
    if (!slash)
        return fail(m, GH_EINVAL, s, "host/path missing /");
    size_t hl = (size_t)(slash - rest);
    if (memchr(rest, '{', hl))
        return fail(m, GH_EINVAL, s, "host contains '{' (missing initial '/'?)");
    char *host = gh_strndup(rest, hl);
    if (!host)
        return GH_ENOMEM;
    for (size_t i = 0; i < hl; i++)
        if (host[i] >= 'A' && host[i] <= 'Z')
            host[i] = (char)(host[i] - 'A' + 'a');
    p->host = host;
    const char *path = slash;
    size_t pl = strlen(path);
    /* Paths are cleaned before matching: an unclean pattern could never match. */
    if (p->method[0] && strcmp(p->method, "CONNECT") != 0) {
        char *c = gh_bytes_new(pl + 2);
        if (!c)
            return GH_ENOMEM;
        gh__path_clean(path, pl, c);
        if (strcmp(c, path) != 0)
            return fail(m, GH_EINVAL, s, "non-CONNECT pattern with unclean path can never match");
    }
    size_t tw = 0;
    uint32_t ns = 0, names = 0;
    const char *r = path;
    while (*r) {
        r++; /* the '/' */
        if (!*r) {
            segs[ns++] = (pseg_t){(uint32_t)tw, 0, SEG_MULTI};
            text[tw++] = 0;
            break;
        }
        size_t sl = strcspn(r, "/");
        const char *seg = r;
        r += sl;
        const char *brace = memchr(seg, '{', sl);
        if (!brace) {
            /* A literal, decoded (Go: pathUnescape, the raw text if that fails). */
            ssize_t k = gh__unescape(seg, sl, text + tw, 0);
            if (k < 0) {
                memcpy(text + tw, seg, sl);
                k = (ssize_t)sl;
            }
            segs[ns++] = (pseg_t){(uint32_t)tw, (uint32_t)k, SEG_LIT};
            tw += (size_t)k;
            text[tw++] = 0;
            continue;
        }
        if (brace != seg)
            return fail(m, GH_EINVAL, s, "bad wildcard segment (must start with '{')");
        if (seg[sl - 1] != '}')
            return fail(m, GH_EINVAL, s, "bad wildcard segment (must end with '}')");
        const char *name = seg + 1;
        size_t nl = sl - 2;
        if (nl == 1 && name[0] == '$') {
            if (*r)
                return fail(m, GH_EINVAL, s, "{$} not at end");
            segs[ns++] = (pseg_t){(uint32_t)tw, 0, SEG_SLASH};
            text[tw++] = 0;
            break;
        }
        int multi = nl >= 3 && memcmp(name + nl - 3, "...", 3) == 0;
        if (multi) {
            nl -= 3;
            if (*r)
                return fail(m, GH_EINVAL, s, "{...} wildcard not at end");
        }
        if (nl == 0)
            return fail(m, GH_EINVAL, s, "empty wildcard");
        if (!is_ident(name, nl))
            return fail(m, GH_EINVAL, s, "bad wildcard name");
        for (uint32_t i = 0; i < ns; i++)
            if ((segs[i].kind == SEG_WILD || segs[i].kind == SEG_MULTI) && segs[i].len == nl &&
                memcmp(text + segs[i].off, name, nl) == 0)
                return fail(m, GH_EINVAL, s, "duplicate wildcard name");
        segs[ns++] = (pseg_t){(uint32_t)tw, (uint32_t)nl, multi ? SEG_MULTI : SEG_WILD};
        memcpy(text + tw, name, nl);
        tw += nl;
        text[tw++] = 0;
        names += (uint32_t)nl + 1;
    }
    p->nsegs = ns;
    p->names_bytes = names;
    *out = p;
    return 0;
}

/* ---- precedence (pattern.go: relationships) ------------------------------------------ */

enum { EQUIVALENT, MORE_GENERAL, MORE_SPECIFIC, DISJOINT, OVERLAPS };

static int inverse(int r)
{
    return r == MORE_GENERAL ? MORE_SPECIFIC : r == MORE_SPECIFIC ? MORE_GENERAL : r;
}

static int combine(int r1, int r2)
{
    switch (r1) {
    case EQUIVALENT:
        return r2;
    case DISJOINT:
        return DISJOINT;
    case OVERLAPS:
        return r2 == DISJOINT ? DISJOINT : OVERLAPS;
    default: /* MORE_GENERAL, MORE_SPECIFIC */
        if (r2 == EQUIVALENT)
            return r1;
        if (r2 == inverse(r1))
            return OVERLAPS;
        return r2;
    }
}

static int compare_methods(const pattern_t *a, const pattern_t *b)
{
    if (strcmp(a->method, b->method) == 0)
        return EQUIVALENT;
    if (!a->method[0])
        return MORE_GENERAL;
    if (!b->method[0])
        return MORE_SPECIFIC;
    /* GET also matches HEAD. */
    if (strcmp(a->method, "GET") == 0 && strcmp(b->method, "HEAD") == 0)
        return MORE_GENERAL;
    if (strcmp(b->method, "GET") == 0 && strcmp(a->method, "HEAD") == 0)
        return MORE_SPECIFIC;
    return DISJOINT;
}

static int compare_segs(const pattern_t *a, const pseg_t *s1, const pattern_t *b, const pseg_t *s2)
{
    if (s1->kind == SEG_MULTI && s2->kind == SEG_MULTI)
        return EQUIVALENT;
    if (s1->kind == SEG_MULTI)
        return MORE_GENERAL;
    if (s2->kind == SEG_MULTI)
        return MORE_SPECIFIC;
    if (s1->kind == SEG_WILD && s2->kind == SEG_WILD)
        return EQUIVALENT;
    if (s1->kind == SEG_WILD) /* a single wildcard never matches the trailing slash */
        return s2->kind == SEG_SLASH ? DISJOINT : MORE_GENERAL;
    if (s2->kind == SEG_WILD)
        return s1->kind == SEG_SLASH ? DISJOINT : MORE_SPECIFIC;
    if (s1->kind == SEG_SLASH || s2->kind == SEG_SLASH)
        return s1->kind == s2->kind ? EQUIVALENT : DISJOINT;
    return s1->len == s2->len && memcmp(a->text + s1->off, b->text + s2->off, s1->len) == 0
               ? EQUIVALENT
               : DISJOINT;
}

static int compare_paths(const pattern_t *a, const pattern_t *b)
{
    int last_a_multi = a->segs[a->nsegs - 1].kind == SEG_MULTI;
    int last_b_multi = b->segs[b->nsegs - 1].kind == SEG_MULTI;
    /* Without a multi wildcard a pattern matches one number of segments only. */
    if (a->nsegs != b->nsegs && !last_a_multi && !last_b_multi)
        return DISJOINT;
    int rel = EQUIVALENT;
    uint32_t i;
    for (i = 0; i < a->nsegs && i < b->nsegs; i++) {
        rel = combine(rel, compare_segs(a, &a->segs[i], b, &b->segs[i]));
        if (rel == DISJOINT)
            return rel;
    }
    if (i == a->nsegs && i == b->nsegs)
        return rel;
    /* One ran out first; the other continues. The shorter one ended on a multi (it
     * matched the rest in the loop) or the two are disjoint. */
    if (i == a->nsegs && last_a_multi)
        return combine(rel, MORE_GENERAL);
    if (i == b->nsegs && last_b_multi)
        return combine(rel, MORE_SPECIFIC);
    return DISJOINT;
}

/* A path both patterns match (they overlap), for the conflict message. */
static void common_path(const pattern_t *a, const pattern_t *b, char *out, size_t cap)
{
    size_t w = 0;
    out[0] = 0;
#define PUT(s, n)                                                                                  \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        if (w + n_ + 1 < cap) {                                                                    \
            memcpy(out + w, (s), n_);                                                              \
            w += n_;                                                                               \
            out[w] = 0;                                                                            \
        }                                                                                          \
    } while (0)
    for (uint32_t i = 0;; i++) {
        const pseg_t *x = i < a->nsegs ? &a->segs[i] : NULL;
        const pseg_t *y = i < b->nsegs ? &b->segs[i] : NULL;
        if (x && x->kind == SEG_MULTI && (!y || y->kind == SEG_MULTI)) {
            PUT("/", 1);
            return;
        }
        if (!x || !y)
            return;
        if (x->kind == SEG_MULTI || y->kind == SEG_MULTI) {
            /* Follow the other pattern to its end. */
            const pattern_t *o = x->kind == SEG_MULTI ? b : a;
            for (uint32_t j = i; j < o->nsegs; j++) {
                const pseg_t *z = &o->segs[j];
                if (z->kind == SEG_LIT) {
                    PUT("/", 1);
                    PUT(o->text + z->off, z->len);
                } else if (z->kind == SEG_WILD) {
                    PUT("/x", 2);
                } else {
                    PUT("/", 1);
                }
            }
            return;
        }
        if (x->kind == SEG_SLASH || y->kind == SEG_SLASH) {
            PUT("/", 1);
            return;
        }
        if (x->kind == SEG_LIT) {
            PUT("/", 1);
            PUT(a->text + x->off, x->len);
        } else if (y->kind == SEG_LIT) {
            PUT("/", 1);
            PUT(b->text + y->off, y->len);
        } else {
            PUT("/x", 2);
        }
    }
#undef PUT
}

static int conflict(gh_mux_t *m, const pattern_t *p1, const pattern_t *p2)
{
    if (strcmp(p1->host, p2->host) != 0)
        return 0; /* different hosts never conflict; a host-less one is more general */
    int mrel = compare_methods(p1, p2);
    if (mrel == DISJOINT)
        return 0;
    int prel = compare_paths(p1, p2);
    int rel = combine(mrel, prel);
    if (rel != EQUIVALENT && rel != OVERLAPS)
        return 0;
    char why[600], ex[256];
    if (rel == EQUIVALENT) {
        snprintf(why, sizeof why, "%s matches the same requests as %s", p1->str, p2->str);
    } else if (mrel == MORE_GENERAL && prel == MORE_SPECIFIC) {
        snprintf(why, sizeof why,
                 "%s matches more methods than %s, but has a more specific path pattern", p1->str,
                 p2->str);
    } else if (mrel == MORE_SPECIFIC && prel == MORE_GENERAL) {
        snprintf(why, sizeof why,
                 "%s matches fewer methods than %s, but has a more general path pattern", p1->str,
                 p2->str);
    } else {
        common_path(p1, p2, ex, sizeof ex);
        snprintf(why, sizeof why, "neither is more specific than the other; both match \"%s\"", ex);
    }
    char buf[1400];
    snprintf(buf, sizeof buf, "pattern \"%s\" conflicts with pattern \"%s\": %s", p1->str, p2->str,
             why);
    char *e = gh_strdup(buf);
    if (e)
        m->err = e;
    return 1;
}

static int insert(gh_mux_t *m, pattern_t *p)
{
    /* No host, no method: the wildcard slots of those levels. */
    node_t *n = kid(m->root, p->host, strlen(p->host), !p->host[0]);
    n = n ? kid(n, p->method, strlen(p->method), !p->method[0]) : NULL;
    for (uint32_t i = 0; n && i < p->nsegs; i++) {
        const pseg_t *s = &p->segs[i];
        if (s->kind == SEG_LIT) {
            n = kid(n, p->text + s->off, s->len, 0);
        } else if (s->kind == SEG_WILD) {
            n = kid(n, "", 0, 1);
        } else {
            node_t **slot = s->kind == SEG_MULTI ? &n->multi : &n->slash;
            if (!*slot) {
                node_t *c = node_new(s->kind == SEG_MULTI ? "*" : "/", 1);
                if (!c)
                    return GH_ENOMEM;
                PUBLISH(*slot, c);
            }
            n = *slot;
        }
    }
    if (!n)
        return GH_ENOMEM;
    /* The same leaf means equivalent patterns, refused above. */
    PUBLISH(n->pat, p);
    return 0;
}

int gh_mux_handle(gh_mux_t *m, const char *pattern, gh_handler_fn h, void *data)
{
    pthread_mutex_lock(&m->mu);
    pattern_t *p = NULL;
    int rc = parse_pattern(m, pattern, &p);
    if (rc < 0)
        goto out;
    p->fn = h;
    p->data = data;
    for (uint32_t i = 0; i < m->npats; i++)
        if (conflict(m, p, m->pats[i])) {
            rc = GH_EEXIST;
            goto out;
        }
    if (m->npats == m->cap_pats) {
        uint32_t ncap = m->cap_pats ? 2 * m->cap_pats : 16;
        void **np = gh_ptrs_new(ncap);
        if (!np) {
            rc = GH_ENOMEM;
            goto out;
        }
        if (m->npats)
            memcpy(np, m->pats, m->npats * sizeof(void *));
        m->pats = np;
        m->cap_pats = ncap;
    }
    rc = insert(m, p);
    if (rc < 0)
        goto out;
    m->pats[m->npats++] = p;
    if (p->nsegs > m->depth)
        __atomic_store_n(&m->depth, p->nsegs, __ATOMIC_RELEASE);
    m->err = "";
out:
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ---- matching ---------------------------------------------------------------------- */

/* A request path token: a segment (decoded) or the trailing slash. */
typedef struct tok {
    const char *s;
    uint32_t len;
    uint32_t pos; /* offset of the '/' that starts it */
    uint32_t slash;
} tok_t;

#define MULTI_FLAG 0x80000000u
#define INLINE_TOKS 32

/* One walk's state, on the caller's stack; larger paths spill into GC blocks. */
typedef struct mstate {
    const char *path;
    size_t plen;
    tok_t *toks;
    uint32_t *vals; /* per matched wildcard: its token (MULTI_FLAG: the rest from it) */
    uint32_t ntok, nvals;
    int more; /* the path has more segments than any pattern */
    tok_t tbuf[INLINE_TOKS];
    uint32_t vbuf[INLINE_TOKS + 1];
    char dbuf[256];
} mstate_t;

static int tokenize(mstate_t *st, const char *p, size_t n, uint32_t limit)
{
    st->path = p;
    st->plen = n;
    st->ntok = 0;
    st->nvals = 0;
    st->more = 0;
    if (limit <= INLINE_TOKS) {
        st->toks = st->tbuf;
        st->vals = st->vbuf;
    } else {
        st->toks = gh_bytes_new(limit * sizeof(tok_t));
        st->vals = gh_bytes_new((limit + 1) * sizeof(uint32_t));
        if (!st->toks || !st->vals)
            return GH_ENOMEM;
    }
    char *d = NULL;
    if (memchr(p, '%', n)) {
        d = n <= sizeof st->dbuf ? st->dbuf : gh_bytes_new(n);
        if (!d)
            return GH_ENOMEM;
    }
    size_t pos = 0, dpos = 0;
    while (pos < n) {
        if (st->ntok == limit) {
            st->more = 1;
            break;
        }
        tok_t *t = &st->toks[st->ntok++];
        t->pos = (uint32_t)pos;
        if (n - pos == 1) { /* the trailing slash (path[pos] is '/') */
            t->slash = 1;
            t->s = p + pos;
            t->len = 1;
            break;
        }
        size_t s = pos + 1;
        const char *e = memchr(p + s, '/', n - s);
        size_t end = e ? (size_t)(e - p) : n;
        t->slash = 0;
        t->s = p + s;
        t->len = (uint32_t)(end - s);
        if (d) {
            ssize_t k = gh__unescape(p + s, end - s, d + dpos, 0);
            if (k >= 0) {
                t->s = d + dpos;
                t->len = (uint32_t)k;
                dpos += (size_t)k;
            }
        }
        pos = end;
    }
    return 0;
}

static node_t *match_path(mstate_t *st, const node_t *n, uint32_t ti, uint32_t nv)
{
    if (!n)
        return NULL;
    if (ti == st->ntok) {
        if (st->more || !LOAD(n->pat))
            return NULL;
        st->nvals = nv;
        return (node_t *)n;
    }
    const tok_t *t = &st->toks[ti];
    node_t *r, *c = t->slash ? LOAD(n->slash) : find_kid(n, t->s, t->len);
    /* A literal here is more specific than a wildcard, which is more specific than a
     * multi-wildcard (registration ruled out the other orders). */
    if (c && (r = match_path(st, c, ti + 1, nv)))
        return r;
    if (!t->slash && (c = LOAD(n->wild))) {
        st->vals[nv] = ti;
        if ((r = match_path(st, c, ti + 1, nv + 1)))
            return r;
    }
    if ((c = LOAD(n->multi))) {
        pattern_t *p = LOAD(c->pat);
        if (p) {
            if (p->segs[p->nsegs - 1].len) /* named, not a trailing slash */
                st->vals[nv++] = ti | MULTI_FLAG;
            st->nvals = nv;
            return c;
        }
    }
    return NULL;
}

static node_t *match_method_path(mstate_t *st, const node_t *hn, const char *method, size_t ml)
{
    if (!hn)
        return NULL;
    node_t *r = match_path(st, find_kid(hn, method, ml), 0, 0);
    if (r)
        return r;
    if (ml == 4 && memcmp(method, "HEAD", 4) == 0 &&
        (r = match_path(st, find_kid(hn, "GET", 3), 0, 0)))
        return r;
    return match_path(st, LOAD(hn->wild), 0, 0);
}

static const node_t *host_node(const gh_mux_t *m, const char *host, size_t hl)
{
    char low[256];
    if (hl == 0 || hl >= sizeof low)
        return NULL;
    for (size_t i = 0; i < hl; i++)
        low[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] + ('a' - 'A') : host[i]);
    return find_kid(m->root, low, hl);
}

static node_t *match(const gh_mux_t *m, mstate_t *st, const char *host, size_t hl,
                     const char *method, size_t ml)
{
    node_t *r;
    if (hl && (r = match_method_path(st, host_node(m, host, hl), method, ml)))
        return r;
    return match_method_path(st, LOAD(m->root->wild), method, ml);
}

/* Does leaf n match path exactly, not through a multi-wildcard's non-empty rest? */
static int exact_match(const node_t *n, const char *path, size_t plen)
{
    if (!n)
        return 0;
    const pattern_t *p = LOAD(n->pat);
    if (p->segs[p->nsegs - 1].kind != SEG_MULTI)
        return 1;
    if (plen > 0 && path[plen - 1] != '/')
        return 0;
    size_t slashes = 0;
    for (size_t i = 0; i < plen; i++)
        slashes += path[i] == '/';
    return p->nsegs == slashes;
}

static int walk(const gh_mux_t *m, mstate_t *st, const char *path, size_t plen, const char *host,
                size_t hl, const char *method, size_t ml, node_t **out)
{
    uint32_t limit = __atomic_load_n(&m->depth, __ATOMIC_ACQUIRE) + 2;
    int rc = tokenize(st, path, plen, limit);
    if (rc < 0)
        return rc;
    *out = match(m, st, host, hl, method, ml);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The methods that would match host and path, sorted, GET implying HEAD. */
static char *allowed_methods(const gh_mux_t *m, mstate_t *st, const char *host, size_t hl,
                             const char *path, size_t plen, const char *path2, size_t plen2)
{
    const char *names[64];
    size_t nn = 0;
    const node_t *levels[2] = {hl ? host_node(m, host, hl) : NULL, LOAD(m->root->wild)};
    uint32_t limit = __atomic_load_n(&m->depth, __ATOMIC_ACQUIRE) + 2;
    for (int pass = 0; pass < 2; pass++) {
        const char *pp = pass ? path2 : path;
        size_t pn = pass ? plen2 : plen;
        if (!pp || tokenize(st, pp, pn, limit) < 0)
            continue;
        for (int l = 0; l < 2; l++) {
            const node_t *hn = levels[l];
            void **t = hn ? LOAD(hn->kids) : NULL;
            if (!t)
                continue;
            size_t cnt = (uintptr_t)t[0], cap = (uintptr_t)t[1];
            size_t slots = cap <= LINEAR_MAX ? cnt : cap;
            for (size_t i = 0; i < slots; i++) {
                const node_t *c = ((node_t **)(t + 2))[i];
                if (!c || !match_path(st, c, 0, 0))
                    continue;
                size_t k;
                for (k = 0; k < nn && strcmp(names[k], c->key) != 0; k++)
                    ;
                if (k == nn && nn < 63)
                    names[nn++] = c->key;
            }
        }
    }
    if (nn == 0)
        return NULL;
    size_t k;
    for (k = 0; k < nn && strcmp(names[k], "GET") != 0; k++)
        ;
    if (k < nn) {
        for (k = 0; k < nn && strcmp(names[k], "HEAD") != 0; k++)
            ;
        if (k == nn)
            names[nn++] = "HEAD";
    }
    qsort(names, nn, sizeof names[0], cmp_str);
    size_t len = 0;
    for (k = 0; k < nn; k++)
        len += strlen(names[k]) + 2;
    char *out = gh_bytes_new(len + 1);
    if (!out)
        return NULL;
    size_t w = 0;
    for (k = 0; k < nn; k++) {
        if (k) {
            memcpy(out + w, ", ", 2);
            w += 2;
        }
        size_t l = strlen(names[k]);
        memcpy(out + w, names[k], l);
        w += l;
    }
    out[w] = 0;
    return out;
}

/* The path values of the leaf st matched: "name\0value\0"... "\0" (one block). */
static char *values_block(const mstate_t *st, const pattern_t *p)
{
    if (!p->names_bytes)
        return NULL;
    size_t need = p->names_bytes + 1, k = 0;
    for (uint32_t i = 0; i < st->nvals; i++) {
        uint32_t v = st->vals[i];
        need += (v & MULTI_FLAG ? st->plen : st->toks[v].len) + 1;
    }
    char *b = gh_bytes_new(need);
    if (!b)
        return NULL;
    size_t w = 0;
    for (uint32_t i = 0; i < p->nsegs; i++) {
        const pseg_t *s = &p->segs[i];
        if ((s->kind != SEG_WILD && s->kind != SEG_MULTI) || !s->len || k >= st->nvals)
            continue;
        memcpy(b + w, p->text + s->off, s->len);
        w += s->len;
        b[w++] = 0;
        uint32_t v = st->vals[k++];
        if (v & MULTI_FLAG) {
            /* The rest of the path after the slash, decoded (Go: pathUnescape). */
            const tok_t *t = &st->toks[v & ~MULTI_FLAG];
            const char *r = st->path + t->pos + 1;
            size_t rl = st->plen - t->pos - 1;
            ssize_t n = gh__unescape(r, rl, b + w, 0);
            if (n < 0) {
                memcpy(b + w, r, rl);
                n = (ssize_t)rl;
            }
            w += (size_t)n;
        } else {
            memcpy(b + w, st->toks[v].s, st->toks[v].len);
            w += st->toks[v].len;
        }
        b[w++] = 0;
    }
    b[w] = 0;
    return b;
}

static const char *values_get(const char *b, const char *name)
{
    while (b && *b) {
        size_t nl = strlen(b);
        const char *v = b + nl + 1;
        if (strcmp(b, name) == 0)
            return v;
        b = v + strlen(v) + 1;
    }
    return NULL;
}

/* A string of p[0..n) followed by tail (which may be NULL), with "?query" when asked. */
static char *join(const char *p, size_t n, const char *tail, const char *q, size_t ql, int hq)
{
    size_t tl = tail ? strlen(tail) : 0;
    char *out = gh_bytes_new(n + tl + 1 + ql + 1);
    if (!out)
        return NULL;
    memcpy(out, p, n);
    if (tl)
        memcpy(out + n, tail, tl);
    size_t w = n + tl;
    if (hq) {
        out[w++] = '?';
        memcpy(out + w, q, ql);
        w += ql;
    }
    out[w] = 0;
    return out;
}

/* Go's stripHostPort: "h:port" -> "h", "[v6]:port" -> "v6", anything else as it is. */
static void strip_port(const char *h, size_t *len, const char **start)
{
    size_t n = strlen(h);
    *start = h;
    *len = n;
    if (n && h[0] == '[') {
        const char *e = memchr(h, ']', n);
        if (e && (e[1] == ':' || e[1] == 0)) {
            *start = h + 1;
            *len = (size_t)(e - h - 1);
        }
        return;
    }
    const char *c = memchr(h, ':', n);
    if (c && !memchr(c + 1, ':', n - (size_t)(c - h) - 1))
        *len = (size_t)(c - h);
}

/* Go's ServeMux.findHandler. */
static int route(gh_mux_t *m, const char *method, const char *host_hdr, const char *target,
                 gh_mux_match_t *out)
{
    memset(out, 0, sizeof *out);
    gh__target_t t;
    if (gh__target_split(target, &t) < 0 || t.asterisk) {
        out->status = 400;
        return 0;
    }
    if (!gh__escapes_valid(t.path, t.path_len)) {
        out->status = 400;
        return 0;
    }
    const char *host;
    size_t hl;
    strip_port(host_hdr, &hl, &host);
    if (t.host_len) {
        /* An absolute-form target names the host (RFC 9112 §3.2.2). */
        host = t.host;
        hl = t.host_len;
        for (size_t i = 0; i < hl; i++)
            if (host[i] == ':') {
                hl = i;
                break;
            }
    }
    size_t ml = strlen(method);
    int connect = ml == 7 && memcmp(method, "CONNECT", 7) == 0;
    mstate_t st, st2;
    node_t *n = NULL, *n2 = NULL;
    /* The path, cleaned (CONNECT's is not: Go leaves it as sent), with room for the
     * slash of the redirect probe below. */
    char cbuf[512];
    char *path = t.path_len + 3 <= sizeof cbuf ? cbuf : gh_bytes_new(t.path_len + 3);
    if (!path)
        return GH_ENOMEM;
    size_t plen;
    if (connect) {
        memcpy(path, t.path, t.path_len);
        plen = t.path_len;
    } else {
        plen = gh__path_clean(t.path, t.path_len, path);
    }
    int rc = walk(m, &st, path, plen, host, hl, method, ml, &n);
    if (rc < 0)
        return rc;
    /* "/tree" with no exact match of its own while "/tree/" has one: redirect there.
     * The probe's path is the same bytes plus a slash (st's tokens stay valid). */
    const char *with_slash = NULL;
    if (!exact_match(n, path, plen) && (plen == 0 || path[plen - 1] != '/')) {
        path[plen] = '/';
        with_slash = path;
        rc = walk(m, &st2, with_slash, plen + 1, host, hl, method, ml, &n2);
        if (rc < 0)
            return rc;
        if (exact_match(n2, with_slash, plen + 1)) {
            out->status = 301;
            out->location = join(path, plen, "/", t.query, t.query_len, t.has_query);
            return out->location ? 0 : GH_ENOMEM;
        }
    }
    if (!connect && (plen != t.path_len || memcmp(path, t.path, plen) != 0)) {
        out->status = 301;
        out->pattern = n ? LOAD(n->pat)->str : NULL;
        out->location = join(path, plen, NULL, t.query, t.query_len, t.has_query);
        return out->location ? 0 : GH_ENOMEM;
    }
    if (!n) {
        /* Not found for this method: is it found for another one (405)? */
        int slashed = plen > 0 && path[plen - 1] == '/';
        char *allow =
            allowed_methods(m, &st2, host, hl, path, plen, slashed ? NULL : with_slash, plen + 1);
        out->status = allow ? 405 : 404;
        out->allow = allow;
        return 0;
    }
    pattern_t *p = LOAD(n->pat);
    out->status = 200;
    out->pattern = p->str;
    out->handler = p->fn;
    out->data = p->data;
    if (p->names_bytes && !(out->_values = values_block(&st, p)))
        return GH_ENOMEM;
    return 0;
}

int gh_mux_match(gh_mux_t *m, const char *method, const char *host, const char *target,
                 gh_mux_match_t *out)
{
    return route(m, method, host, target, out);
}

const char *gh_mux_match_value(const gh_mux_match_t *mt, const char *name)
{
    return values_get(mt->_values, name);
}

void gh_mux_serve(gh_response_t *w, gh_request_t *r, void *mux)
{
    gh_mux_t *m = mux;
    gh_mux_match_t mt;
    if (route(m, gh_request_method(r), gh_request_host(r), gh_request_target(r), &mt) < 0) {
        gh_response_error(w, "Internal Server Error", 500);
        return;
    }
    switch (mt.status) {
    case 200:
        r->pathvals = (char *)mt._values;
        mt.handler(w, r, mt.data);
        return;
    case 301:
        gh_response_redirect(w, r, mt.location, 301);
        return;
    case 405:
        (void)gh_response_header_set(w, "Allow", mt.allow);
        gh_response_error(w, "Method Not Allowed", 405);
        return;
    case 404:
        gh_response_error(w, "404 page not found", 404);
        return;
    default:
        /* "*" or a bad escape: Go answers 400 and closes. */
        gh_response_close_after(w);
        gh_response_error(w, "Bad Request", 400);
        return;
    }
}

const char *gh_request_path_value(const gh_request_t *r, const char *name)
{
    return values_get(r->pathvals, name);
}

int gh_request_set_path_value(gh_request_t *r, const char *name, const char *value)
{
    if (!*name)
        return GH_EINVAL;
    size_t need = strlen(name) + strlen(value) + 3;
    const char *b = r->pathvals;
    while (b && *b) {
        size_t nl = strlen(b), vl = strlen(b + nl + 1);
        if (strcmp(b, name) != 0)
            need += nl + vl + 2;
        b += nl + vl + 2;
    }
    char *nb = gh_bytes_new(need);
    if (!nb)
        return GH_ENOMEM;
    size_t w = 0;
    for (b = r->pathvals; b && *b;) {
        size_t nl = strlen(b), vl = strlen(b + nl + 1);
        if (strcmp(b, name) != 0) {
            memcpy(nb + w, b, nl + vl + 2);
            w += nl + vl + 2;
        }
        b += nl + vl + 2;
    }
    size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
    memcpy(nb + w, name, nl);
    memcpy(nb + w + nl, value, vl);
    w += nl + vl;
    nb[w] = 0;
    r->pathvals = nb;
    return 0;
}
