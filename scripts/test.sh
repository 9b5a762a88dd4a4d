#!/usr/bin/env bash
# scripts/test.sh: install what is missing, build, and run the whole test suite
# (make check). Exits non-zero if any test fails; then prints the failing tests' logs.
set -eu
# Packages: what make check needs (a wider purpose set by the caller, such as
# .ci/run's, is kept).
GH_SETUP_PURPOSE=${GH_SETUP_PURPOSE:-test}
# shellcheck source=scripts/setup.sh
. "$(dirname "$0")/setup.sh"

rm -f test-suite.log
gh_log "running make -j$(nproc) check"
rc=0
make -j"$(nproc)" check || rc=$?
if [ "$rc" -ne 0 ]; then
    # test-suite.log holds the logs of the failing tests only.
    if [ -f test-suite.log ]; then
        gh_log "failing tests (test-suite.log):"
        cat test-suite.log >&2
    fi
    gh_die "make check failed (exit $rc)"
fi
