/*
 * tests/support/gc.h: helpers the collection tests share (tests/support/gc.c).
 */
#ifndef GH_TEST_SUPPORT_GC_H
#define GH_TEST_SUPPORT_GC_H

/* Throwaway allocations, 4096 * (k + 1) small objects: between collection passes they
 * overwrite free-list links and stale words in the collector's own frames that can
 * keep a dropped object alive for one more cycle (docs/DESIGN.md §3.2, §4). Not inlined,
 * so its frame is gone when it returns. */
void th_churn(int k);

#endif
