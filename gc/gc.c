/* gc/gc.c: collector set-up, collection helpers, reachability probes, DOT graph dump
 * (gchttp/gc.h). */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <gc/gc_inline.h> /* GC_I_PTRFREE */
#include <gc/gc_mark.h>

#include "internal.h"
#include "gchttp/gc.h"

/* ---- initialisation and the warning hook ------------------------------------------ */

static GC_warn_proc prev_warn;
static unsigned long n_warnings;
static unsigned long n_final_cycles;
static int warn_installed;

/*
 * Counts every bdwgc warning and, separately, "Finalization cycle involving %p": that one
 * means finalizable objects reach each other through ordered finalizers and will never
 * be freed (docs/DESIGN.md §3.4), which tests treat as a failure. Runs with the allocator lock
 * held (during a collection), so it must not allocate; it only counts and forwards.
 */
static void GC_CALLBACK warn_hook(char *msg, GC_word arg)
{
    __atomic_add_fetch(&n_warnings, 1, __ATOMIC_RELAXED);
    if (msg && strstr(msg, "Finalization cycle"))
        __atomic_add_fetch(&n_final_cycles, 1, __ATOMIC_RELAXED);
    if (prev_warn)
        prev_warn(msg, arg);
}

/*
 * bdwgc starts one marker thread per CPU of the machine (it counts /proc/stat), not per
 * CPU the process may run on: pinned to 1 of 16 CPUs, a server got 15 marker threads that
 * took turns on its one CPU in every collection (19 threads where 4 do). Ask for as many
 * markers as sched_getaffinity allows, unless the user chose with GC_MARKERS or GC_NPROCS
 * (bdwgc reads those itself).
 */
static void set_markers_count(void)
{
#if defined(GC_THREADS) && defined(__linux__)
    cpu_set_t set;
    if (getenv("GC_MARKERS") || getenv("GC_NPROCS"))
        return;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        GC_set_markers_count((unsigned)CPU_COUNT(&set));
#endif
}

void gh_gc_init(void)
{
    /* A host runtime that initialised the collector first keeps its settings. */
    if (!GC_is_init_called()) {
        set_markers_count();
        GC_INIT();
    }
    int expect = 0;
    if (!__atomic_compare_exchange_n(&warn_installed, &expect, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    GC_allow_register_threads();
    /* Programs hold gh objects by a pointer GH__OBJ_HDR bytes into their block. With
     * interior pointers on (bdwgc's default) that is recognised anyway; a host that
     * turns them off (Guile does) must have the offset registered, or every gh object
     * is collected while in use. A no-op with interior pointers on. */
    GC_register_displacement(GH__OBJ_HDR);
    prev_warn = GC_get_warn_proc();
    GC_set_warn_proc(warn_hook);
}

void gh_gc_set_finalize_on_demand(int on)
{
    GC_set_finalize_on_demand(on != 0);
}

/*
 * Vector registers keep whatever pointer values the last SIMD copies left in them
 * (glibc's memcpy, compiler-vectorised pointer moves). When the collector suspends an
 * idle thread, the kernel saves all of them into the signal frame on that thread's
 * stack, which is scanned conservatively: measured here (AVX-512), 6 in 100 runs of
 * tests/test-collect kept 3-7 closed connections alive through idle server threads,
 * 0 in 100 with this. Every vector register is caller-saved, so clobbering them in a
 * noinline function is free for the caller.
 */
static void clear_vector_registers(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f"))
        __asm__ __volatile__("vpxord %%zmm16, %%zmm16, %%zmm16\n\tvpxord %%zmm17, %%zmm17, %%zmm17\n\t"
                             "vpxord %%zmm18, %%zmm18, %%zmm18\n\tvpxord %%zmm19, %%zmm19, %%zmm19\n\t"
                             "vpxord %%zmm20, %%zmm20, %%zmm20\n\tvpxord %%zmm21, %%zmm21, %%zmm21\n\t"
                             "vpxord %%zmm22, %%zmm22, %%zmm22\n\tvpxord %%zmm23, %%zmm23, %%zmm23\n\t"
                             "vpxord %%zmm24, %%zmm24, %%zmm24\n\tvpxord %%zmm25, %%zmm25, %%zmm25\n\t"
                             "vpxord %%zmm26, %%zmm26, %%zmm26\n\tvpxord %%zmm27, %%zmm27, %%zmm27\n\t"
                             "vpxord %%zmm28, %%zmm28, %%zmm28\n\tvpxord %%zmm29, %%zmm29, %%zmm29\n\t"
                             "vpxord %%zmm30, %%zmm30, %%zmm30\n\tvpxord %%zmm31, %%zmm31, %%zmm31" ::
                                 : "memory");
    if (__builtin_cpu_supports("avx")) {
        __asm__ __volatile__("vzeroall" ::: "memory"); /* ymm0-15 (zmm0-15 too) */
    } else {
        __asm__ __volatile__("pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\tpxor %%xmm2, %%xmm2\n\t"
                             "pxor %%xmm3, %%xmm3\n\tpxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\t"
                             "pxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7\n\tpxor %%xmm8, %%xmm8\n\t"
                             "pxor %%xmm9, %%xmm9\n\tpxor %%xmm10, %%xmm10\n\tpxor %%xmm11, %%xmm11\n\t"
                             "pxor %%xmm12, %%xmm12\n\tpxor %%xmm13, %%xmm13\n\tpxor %%xmm14, %%xmm14\n\t"
                             "pxor %%xmm15, %%xmm15" ::
                                 : "memory");
    }
#endif
}

/*
 * 16 KiB of zeroes below the caller's frame, then clear the vector registers. Stale
 * slots of finished frames (a handler that ran on this thread, a finalizer that
 * GC_invoke_finalizers called) would otherwise be scanned as roots by the next
 * collection (docs/DESIGN.md §3.1, §3.3). GC_clear_stack() is not enough: it clears 2 KiB on
 * most calls. volatile plus the barrier keep the compiler from dropping the dead stores.
 */
__attribute__((noinline)) void gh_gc_scrub_stack(void)
{
    volatile char pad[16384];
    memset((char *)pad, 0, sizeof pad);
    __asm__ __volatile__("" ::: "memory");
    clear_vector_registers();
}

/* noinline: the collection and the finalizers run in frames below this one, which the
 * scrub then overwrites before the caller resumes. The first scrub clears what the
 * caller's previous callees left below its frame (typically the function that just
 * dropped the references); the one after each collection clears the finalizers' frames
 * (docs/DESIGN.md §3.3). */
/* With parallel marking, the thread that starts a collection helps mark with a local
 * mark stack of 4096 entries (64 KiB) on its own stack (bdwgc's GC_help_marker). The
 * entries are object addresses, and they stay there after the collection. When the next
 * collection pushes this thread's stack from a call depth inside that old array, the
 * part above the stack pointer is scanned as roots and pins whatever it names: whole
 * conn/response/request graphs of earlier requests, seen as rare multi-object
 * retention in the hijack collection test. So a collecting thread scrubs deeper than
 * that array before and after each collection. */
#define GH__DEEP_SCRUB (128 * 1024)

__attribute__((noinline)) static void scrub_deep(void)
{
    volatile char pad[GH__DEEP_SCRUB];
    memset((char *)pad, 0, sizeof pad);
    __asm__ __volatile__("" ::: "memory");
    clear_vector_registers();
}

__attribute__((noinline)) void gh_gc_collect(int n)
{
    scrub_deep();
    for (int i = 0; i < n; i++) {
        GC_gcollect();
        (void)GC_invoke_finalizers();
        scrub_deep();
    }
}

/* ---- measurement ------------------------------------------------------------------ */

struct live_acc {
    size_t bytes;
    size_t objects;
};

static void GC_CALLBACK live_cb(void *obj, size_t bytes, void *cd)
{
    struct live_acc *acc = cd;
    (void)obj;
    acc->bytes += bytes;
    acc->objects++;
}

/* GC_enumerate_reachable_objects_inner requires the allocator lock; it reports the mark
 * bits of the last collection. */
static void *live_walk(void *cd)
{
    GC_enumerate_reachable_objects_inner(live_cb, cd);
    return NULL;
}

size_t gh_gc_live_objects(size_t *bytes)
{
    struct live_acc acc = {0, 0};
    (void)GC_call_with_alloc_lock(live_walk, &acc);
    if (bytes)
        *bytes = acc.bytes;
    return acc.objects;
}

size_t gh_gc_live_bytes(void)
{
    size_t bytes = 0;
    (void)gh_gc_live_objects(&bytes);
    return bytes;
}

size_t gh_gc_heap_used(void)
{
    GC_word heap = 0, free_b = 0, unmapped = 0;
    GC_get_heap_usage_safe(&heap, &free_b, &unmapped, NULL, NULL);
    return (size_t)(heap - free_b - unmapped);
}

size_t gh_gc_total_bytes(void)
{
    return (size_t)GC_get_total_bytes();
}

unsigned long gh_gc_warnings(unsigned long *finalization_cycles)
{
    if (finalization_cycles)
        *finalization_cycles = __atomic_load_n(&n_final_cycles, __ATOMIC_RELAXED);
    return __atomic_load_n(&n_warnings, __ATOMIC_RELAXED);
}

/* ---- probes ----------------------------------------------------------------------- */

/**
 * A reachability probe.
 * Alloc:     GC_MALLOC_ATOMIC: the slots hold hidden pointers only, so nothing in it
 *            may be scanned, and the probe never keeps its target alive.
 * Rooted by: whoever watches it (a static array or a GC object); if the probe itself is
 *            collected, its links are dropped with it.
 * OS state:  none.
 * Threads:   any; the collector writes the slots (to 0) with the world stopped, readers
 *            only test for zero, so no lock is needed.
 */
struct gh_probe_s {
    GC_hidden_pointer unreachable; /*< short link: zeroed when first unreachable */
    GC_hidden_pointer reclaimed;   /*< long link: zeroed once reclaimed */
};

gh_probe_t *gh_probe_new(const void *obj)
{
    void *base = GC_base((void *)obj);
    if (!base)
        return NULL;
    gh_probe_t *p = GC_MALLOC_ATOMIC(sizeof *p);
    if (!p)
        return NULL;
    p->unreachable = GC_HIDE_POINTER(obj);
    p->reclaimed = GC_HIDE_POINTER(obj);
    if (GC_general_register_disappearing_link((void **)&p->unreachable, base) != GC_SUCCESS)
        return NULL;
    if (GC_register_long_link((void **)&p->reclaimed, base) != GC_SUCCESS) {
        (void)GC_unregister_disappearing_link((void **)&p->unreachable);
        return NULL;
    }
    GC_reachable_here(obj);
    return p;
}

int gh_probe_unreachable(const gh_probe_t *p)
{
    return __atomic_load_n(&p->unreachable, __ATOMIC_RELAXED) == 0;
}

int gh_probe_reclaimed(const gh_probe_t *p)
{
    return __atomic_load_n(&p->reclaimed, __ATOMIC_RELAXED) == 0;
}

/* ---- DOT dump --------------------------------------------------------------------- */

/*
 * Walk state. The node array and the hash index are GC_MALLOC'd (scanned), so every
 * node found so far stays alive for the walk even if the program drops it meanwhile.
 */
struct dot_walk {
    void **nodes; /*< object bases, in BFS order: node i is "n<i>" */
    size_t n, cap;
    size_t *index; /*< open addressing: node number + 1, 0 = empty */
    size_t icap;
};

static size_t ptr_hash(const void *p, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)p >> 4;
    return (size_t)((x * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

static int dot_index_put(struct dot_walk *w, size_t node)
{
    size_t i = ptr_hash(w->nodes[node], w->icap);
    while (w->index[i])
        i = (i + 1) & (w->icap - 1);
    w->index[i] = node + 1;
    return 0;
}

static long dot_lookup(const struct dot_walk *w, const void *base)
{
    for (size_t i = ptr_hash(base, w->icap); w->index[i]; i = (i + 1) & (w->icap - 1))
        if (w->nodes[w->index[i] - 1] == base)
            return (long)(w->index[i] - 1);
    return -1;
}

static long dot_add(struct dot_walk *w, void *base)
{
    if (w->n == w->cap) {
        size_t ncap = w->cap * 2;
        void **nn = GC_MALLOC(ncap * sizeof *nn);
        if (!nn)
            return GH_ENOMEM;
        memcpy(nn, w->nodes, w->n * sizeof *nn);
        w->nodes = nn;
        w->cap = ncap;
    }
    if (2 * (w->n + 1) > w->icap) {
        size_t *ni = GC_MALLOC_ATOMIC(2 * w->icap * sizeof *ni);
        if (!ni)
            return GH_ENOMEM;
        memset(ni, 0, 2 * w->icap * sizeof *ni);
        w->index = ni;
        w->icap *= 2;
        for (size_t k = 0; k < w->n; k++)
            dot_index_put(w, k);
    }
    w->nodes[w->n] = base;
    dot_index_put(w, w->n);
    return (long)w->n++;
}

/* DOT double-quoted strings: escape the quote and the backslash. */
static void dot_str(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
}

int gh_gc_write_dot(FILE *out, const char *name, const void *root, int max_nodes)
{
    if (!out || !root)
        return GH_EINVAL;
    void *rbase = GC_base((void *)root);
    if (!rbase)
        return GH_EINVAL;
    struct dot_walk w = {0};
    w.cap = 16;
    w.icap = 64;
    w.nodes = GC_MALLOC(w.cap * sizeof *w.nodes);
    w.index = GC_MALLOC_ATOMIC(w.icap * sizeof *w.index);
    if (!w.nodes || !w.index)
        return GH_ENOMEM;
    memset(w.index, 0, w.icap * sizeof *w.index);
    (void)dot_add(&w, rbase);

    fputs("digraph \"", out);
    dot_str(out, name ? name : "gchttp");
    fputs("\" {\n  node [shape=box, fontname=\"monospace\"];\n", out);
    for (size_t i = 0; i < w.n; i++) {
        char *base = w.nodes[i];
        size_t sz = 0;
        int kind = GC_get_kind_and_size(base, &sz);
        gh_type_t *t = gh__obj_type_of_base(base);
        fprintf(out, "  n%zu [label=\"", i);
        if (t) {
            dot_str(out, t->name ? t->name : "?");
            fprintf(out, "\\n%zu B\"];\n", sz);
        } else {
            fprintf(out, "%s\\n%zu B\", shape=ellipse];\n", kind == GC_I_PTRFREE ? "bytes" : "gc",
                    sz);
            continue; /* no layout known: its words are not followed */
        }
        for (size_t j = 0; j < t->n_ptrs; j++) {
            void *q = *(void *volatile *)(base + GH__OBJ_HDR + t->ptr_offsets[j]);
            void *qb = q ? GC_base(q) : NULL;
            if (!qb)
                continue;
            long to = dot_lookup(&w, qb);
            if (to < 0) {
                if (max_nodes > 0 && w.n >= (size_t)max_nodes)
                    continue;
                to = dot_add(&w, qb);
                if (to < 0)
                    return (int)to;
            }
            fprintf(out, "  n%zu -> n%ld [label=\"", i, to);
            if (t->ptr_names && t->ptr_names[j])
                dot_str(out, t->ptr_names[j]);
            else
                fprintf(out, "+%zu", t->ptr_offsets[j]);
            fputs("\"];\n", out);
        }
    }
    fputs("}\n", out);
    if (ferror(out))
        return -EIO;
    return (int)w.n;
}
