/* tests/support/gc.c: helpers the collection tests share (tests/support/gc.h). */
#include "config.h"

#include "../test-common.h"

__attribute__((noinline)) void th_churn(int k)
{
    for (int i = 0; i < 4096 * (k + 1); i++)
        (void)GC_MALLOC(16 + 16 * (i % 8));
}
