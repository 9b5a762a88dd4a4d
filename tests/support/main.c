/* tests/support/main.c: the runner shared by every Check suite. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "../test-common.h"

int main(void)
{
    /* Whoever comes first initialises the collector; Check forks a child per test
     * after this point, and bdwgc's fork handling (on in Debian's build) keeps the
     * collector usable there. */
    gh_gc_init();
    gh_gc_set_finalize_on_demand(1);
    /* No core files from deliberately crashing children. */
    struct rlimit rl = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &rl);

    SRunner *sr = srunner_create(test_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed)
        return EXIT_FAILURE;
    /* Tests whose client was missing returned without running (th_client). */
    if (th_clients_missing()) {
        if (th_clients_required()) {
            fprintf(stderr, "FAIL: GH_REQUIRE_CLIENTS is set and %d client(s) are missing\n",
                    th_clients_missing());
            return EXIT_FAILURE;
        }
        return 77; /* automake's SKIP */
    }
    return EXIT_SUCCESS;
}
