/*
 * lib/form.c: key/value lists (Go's url.Values), query strings and urlencoded forms
 * (WHATWG URL "application/x-www-form-urlencoded", as Go parses it).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

struct gh_values_s {
    char **kv; /* scanned: key, value, key, value... */
    /* not traced */
    size_t n, cap; /* pairs */
};

static const size_t values_ptrs[] = {offsetof(struct gh_values_s, kv)};
static gh_type_t values_type = GH_TYPE_INIT("values", struct gh_values_s, values_ptrs);

gh_values_t *gh_values_new(void)
{
    return gh_obj_new(&values_type);
}

static int add_owned(gh_values_t *v, char *k, char *val)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 8;
        char **nkv = gh_ptrs_new(2 * ncap);
        if (!nkv)
            return GH_ENOMEM;
        if (v->n)
            memcpy(nkv, v->kv, 2 * v->n * sizeof(char *));
        v->kv = nkv;
        v->cap = ncap;
    }
    v->kv[2 * v->n] = k;
    v->kv[2 * v->n + 1] = val;
    v->n++;
    return 0;
}

int gh_values_add(gh_values_t *v, const char *key, const char *value)
{
    char *k = gh_strdup(key), *val = gh_strdup(value);
    if (!k || !val)
        return GH_ENOMEM;
    return add_owned(v, k, val);
}

int gh_values_del(gh_values_t *v, const char *key)
{
    size_t w = 0;
    int removed = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (strcmp(v->kv[2 * i], key) == 0) {
            removed++;
            continue;
        }
        v->kv[2 * w] = v->kv[2 * i];
        v->kv[2 * w + 1] = v->kv[2 * i + 1];
        w++;
    }
    for (size_t i = w; i < v->n; i++)
        v->kv[2 * i] = v->kv[2 * i + 1] = NULL;
    v->n = w;
    return removed;
}

int gh_values_set(gh_values_t *v, const char *key, const char *value)
{
    char *k = gh_strdup(key), *val = gh_strdup(value);
    if (!k || !val)
        return GH_ENOMEM;
    gh_values_del(v, key);
    return add_owned(v, k, val);
}

const char *gh_values_get_nth(const gh_values_t *v, const char *key, size_t n)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->kv[2 * i], key) == 0 && n-- == 0)
            return v->kv[2 * i + 1];
    return NULL;
}

const char *gh_values_get(const gh_values_t *v, const char *key)
{
    return gh_values_get_nth(v, key, 0);
}

int gh_values_has(const gh_values_t *v, const char *key)
{
    return gh_values_get(v, key) != NULL;
}
size_t gh_values_count(const gh_values_t *v)
{
    return v->n;
}

int gh_values_at(const gh_values_t *v, size_t i, const char **key, const char **value)
{
    if (i >= v->n)
        return GH_EINVAL;
    *key = v->kv[2 * i];
    *value = v->kv[2 * i + 1];
    return 0;
}

/* Parse s[0..n) into v (Go's parseQuery). */
static int parse_into(gh_values_t *v, const char *s, size_t n)
{
    int err = 0;
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(s + i, '&', n - i);
        size_t e = amp ? (size_t)(amp - s) : n;
        const char *p = s + i;
        size_t pl = e - i;
        i = amp ? e + 1 : n;
        if (pl == 0)
            continue;
        /* Go 1.17: a ';' is no separator; the pair is dropped and reported. */
        if (memchr(p, ';', pl)) {
            err = GH_EINVAL;
            continue;
        }
        const char *eq = memchr(p, '=', pl);
        size_t kl = eq ? (size_t)(eq - p) : pl;
        const char *val = eq ? eq + 1 : p + pl;
        size_t vl = eq ? pl - kl - 1 : 0;
        char *k = gh_bytes_new(kl + 1), *vv = gh_bytes_new(vl + 1);
        if (!k || !vv)
            return GH_ENOMEM;
        ssize_t a = gh__unescape(p, kl, k, 1), b = gh__unescape(val, vl, vv, 1);
        if (a < 0 || b < 0) {
            err = GH_EINVAL;
            continue;
        }
        k[a] = 0;
        vv[b] = 0;
        if (add_owned(v, k, vv) < 0)
            return GH_ENOMEM;
    }
    return err;
}

int gh_values_parse(const char *query, gh_values_t **out)
{
    gh_values_t *v = gh_values_new();
    *out = v;
    if (!v)
        return GH_ENOMEM;
    int rc = parse_into(v, query, strlen(query));
    if (rc == GH_ENOMEM)
        *out = NULL;
    return rc;
}

int gh_request_query(const gh_request_t *r, gh_values_t **out)
{
    gh__target_t t;
    gh_values_t *v = gh_values_new();
    *out = v;
    if (!v)
        return GH_ENOMEM;
    if (gh__target_split(gh_request_target(r), &t) < 0 || !t.has_query)
        return 0;
    int rc = parse_into(v, t.query, t.query_len);
    if (rc == GH_ENOMEM)
        *out = NULL;
    return rc;
}

/* Is the request's Content-Type the media type mt (case-insensitive, parameters
 * ignored; RFC 9110 §8.3.1)? */
int gh__content_type_is(const gh_request_t *r, const char *mt)
{
    const char *ct = gh_request_header(r, "Content-Type");
    if (!ct)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen(mt);
    if (strncasecmp(ct, mt, n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == 0 || *ct == ';';
}

int gh_request_post_form(gh_request_t *r, size_t max, gh_values_t **out)
{
    gh_values_t *v = gh_values_new();
    *out = v;
    if (!v)
        return GH_ENOMEM;
    const char *m = gh_request_method(r);
    if (strcmp(m, "POST") != 0 && strcmp(m, "PUT") != 0 && strcmp(m, "PATCH") != 0)
        return 0;
    if (!gh__content_type_is(r, "application/x-www-form-urlencoded"))
        return 0;
    if (max == 0)
        max = (size_t)10 << 20; /* Go's maxFormSize */
    char *body;
    ssize_t n = gh_request_read_all(r, max, &body);
    if (n < 0) {
        *out = NULL;
        return (int)n;
    }
    int rc = parse_into(v, body, (size_t)n);
    if (rc == GH_ENOMEM)
        *out = NULL;
    return rc;
}

int gh_request_form(gh_request_t *r, size_t max, gh_values_t **out)
{
    gh_values_t *q;
    int rc = gh_request_post_form(r, max, out);
    if (!*out)
        return rc;
    int rq = gh_request_query(r, &q);
    if (!q) {
        *out = NULL;
        return rq;
    }
    for (size_t i = 0; i < q->n; i++)
        if (add_owned(*out, q->kv[2 * i], q->kv[2 * i + 1]) < 0) {
            *out = NULL;
            return GH_ENOMEM;
        }
    return rc < 0 ? rc : rq;
}

/* qsort has no context argument: the list being sorted, per thread. */
static __thread const gh_values_t *sort_v;

static int cmp_pos(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(sort_v->kv[2 * x], sort_v->kv[2 * y]);
    return c ? c : (x > y) - (x < y);
}

char *gh_values_encode(const gh_values_t *v)
{
    if (v->n == 0)
        return gh_strdup("");
    /* Sort positions by key, then position: stable. */
    size_t *idx = gh_bytes_new(v->n * sizeof(size_t));
    if (!idx)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        idx[i] = i;
    sort_v = v;
    qsort(idx, v->n, sizeof idx[0], cmp_pos);
    size_t len = 0;
    char **enc = gh_ptrs_new(2 * v->n);
    if (!enc)
        return NULL;
    for (size_t i = 0; i < v->n; i++) {
        enc[2 * i] = gh_query_escape(v->kv[2 * idx[i]]);
        enc[2 * i + 1] = gh_query_escape(v->kv[2 * idx[i] + 1]);
        if (!enc[2 * i] || !enc[2 * i + 1])
            return NULL;
        len += strlen(enc[2 * i]) + strlen(enc[2 * i + 1]) + 2;
    }
    char *out = gh_bytes_new(len + 1);
    if (!out)
        return NULL;
    size_t w = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (i)
            out[w++] = '&';
        size_t kl = strlen(enc[2 * i]), vl = strlen(enc[2 * i + 1]);
        memcpy(out + w, enc[2 * i], kl);
        w += kl;
        out[w++] = '=';
        memcpy(out + w, enc[2 * i + 1], vl);
        w += vl;
    }
    out[w] = 0;
    return out;
}
