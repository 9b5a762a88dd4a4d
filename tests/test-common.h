/*
 * tests/test-common.h: what every Check suite of gchttp shares.
 *
 * Each tests/test-<unit>.c defines `Suite *test_suite(void)`; tests/support/main.c runs it.
 * What more than one suite needs (the loopback client, the server fixture) lives in
 * tests/support/, never copied into a suite.
 * Rules (see CONTRIBUTING.md): bind 127.0.0.1:0 only, bound every loop in count and
 * time, never ck_assert on a helper thread (record, then assert on the test thread),
 * never sleep to synchronise, keep GC pointers in GC-visible memory only.
 */
#ifndef GH_TEST_COMMON_H
#define GH_TEST_COMMON_H

#include <gc/gc.h>
#include <check.h>
#include <stddef.h>
#include <sys/types.h>
#include <gchttp.h>

Suite *test_suite(void);

/* Fail the current test if bdwgc reported any "Finalization cycle" warning. */
#define GH_ASSERT_NO_FINALIZATION_CYCLES()                                                 \
    do {                                                                                   \
        unsigned long cyc_ = 0;                                                            \
        (void)gh_gc_warnings(&cyc_);                                                       \
        ck_assert_uint_eq(cyc_, 0);                                                        \
    } while (0)

/* Network tests get this timeout (seconds); GC loops too. */
#define GH_TEST_TIMEOUT 60

#include "support/client.h" /* th_connect, th_read_response, ...: the loopback client */
#include "support/server.h" /* th_server_start, th_stats, ...: the server fixture */
#include "support/gc.h"     /* th_churn: the collection tests' helpers */

#endif
