/* lib/mime.c: media types by extension (gchttp/mime.h). Sniffing itself is
 * lib/response.c's gh__sniff_type, shared with the response writer. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* Sorted by extension (binary search), lower case. */
static const struct {
    const char *ext, *type;
} builtin[] = {
    {"7z", "application/x-7z-compressed"},
    {"aac", "audio/aac"},
    {"apng", "image/apng"},
    {"avif", "image/avif"},
    {"bin", "application/octet-stream"},
    {"bmp", "image/bmp"},
    {"bz2", "application/x-bzip2"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"epub", "application/epub+zip"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/vnd.microsoft.icon"},
    {"ics", "text/calendar; charset=utf-8"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"jsonld", "application/ld+json"},
    {"m4a", "audio/mp4"},
    {"map", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpeg", "video/mpeg"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"rss", "application/rss+xml"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"weba", "audio/webm"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xml", "text/xml; charset=utf-8"},
    {"xz", "application/x-xz"},
    {"yaml", "application/yaml"},
    {"zip", "application/zip"},
    {"zst", "application/zstd"},
};

/* Loaded entries: a malloc'd array of malloc'd strings, never freed (process-wide),
 * searched linearly (a mime.types file has about a thousand). Plain memory: no GC
 * pointer lives here. */
static pthread_rwlock_t loaded_mu = PTHREAD_RWLOCK_INITIALIZER;
static struct loaded {
    char *ext, *type;
} *loaded;
static size_t n_loaded, cap_loaded;

static const char *ext_of(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    return dot && dot[1] ? dot + 1 : NULL;
}

const char *gh_mime_type(const char *name)
{
    const char *ext = ext_of(name);
    if (!ext || strlen(ext) > 32)
        return NULL;
    if (__atomic_load_n(&n_loaded, __ATOMIC_ACQUIRE)) {
        const char *t = NULL;
        pthread_rwlock_rdlock(&loaded_mu);
        for (size_t i = n_loaded; i-- > 0;)
            if (strcasecmp(loaded[i].ext, ext) == 0) {
                t = loaded[i].type;
                break;
            }
        pthread_rwlock_unlock(&loaded_mu);
        if (t)
            return t;
    }
    size_t lo = 0, hi = sizeof builtin / sizeof builtin[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcasecmp(ext, builtin[mid].ext);
        if (c == 0)
            return builtin[mid].type;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *gh_mime_sniff(const void *data, size_t n)
{
    return gh__sniff_type(data, n < 512 ? n : 512);
}

static int add_loaded(const char *ext, const char *type)
{
    if (n_loaded == cap_loaded) {
        size_t nc = cap_loaded ? cap_loaded * 2 : 256;
        struct loaded *nl = realloc(loaded, nc * sizeof *nl);
        if (!nl)
            return GH_ENOMEM;
        loaded = nl;
        cap_loaded = nc;
    }
    char *e = strdup(ext);
    /* Text types get the charset Go's table gives them. */
    size_t tl = strlen(type);
    int text = strncmp(type, "text/", 5) == 0 && !strchr(type, ';');
    char *t = malloc(tl + (text ? 16 : 1));
    if (!e || !t) {
        free(e);
        free(t);
        return GH_ENOMEM;
    }
    memcpy(t, type, tl + 1);
    if (text)
        memcpy(t + tl, "; charset=utf-8", 16);
    loaded[n_loaded].ext = e;
    loaded[n_loaded].type = t;
    __atomic_store_n(&n_loaded, n_loaded + 1, __ATOMIC_RELEASE);
    return 0;
}

int gh_mime_load(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char line[1024];
    int added = 0, rc = 0;
    pthread_rwlock_wrlock(&loaded_mu);
    while (rc == 0 && fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *save = NULL;
        char *type = strtok_r(line, " \t\r\n", &save);
        if (!type || !strchr(type, '/'))
            continue;
        for (char *ext; rc == 0 && (ext = strtok_r(NULL, " \t\r\n", &save));) {
            if (strlen(ext) > 32)
                continue;
            rc = add_loaded(ext, type);
            added += rc == 0;
        }
    }
    pthread_rwlock_unlock(&loaded_mu);
    fclose(f);
    return rc < 0 ? rc : added;
}
