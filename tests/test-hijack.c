/* tests/test-hijack.c: placeholder until the suite is written. */
#include "config.h"
#include "test-common.h"
Suite *test_suite(void) { return suite_create("hijack"); }
