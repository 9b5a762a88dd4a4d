#!/bin/sh
# tools/check-sanitizers.sh: the full test suite under sanitizers, as `make
# check-sanitizers` runs it. Each build is configured from a clean copy of the
# distributed tree (SRC, made by `make distdir`: an in-tree-configured srcdir cannot
# host VPATH builds) into its own directory under WORK, then `make check`.
#
#   tools/check-sanitizers.sh SRC WORK SANITIZER...     (SANITIZER: ubsan, asan)
#
# ubsan  --enable-ubsan: -fsanitize=undefined -fno-sanitize-recover=undefined; every
#        suite. Any undefined behaviour aborts the suite that hits it.
# asan   --enable-asan: AddressSanitizer with the Boehm collector. Works for the whole
#        suite, with two settings that are part of the contract (see tools/lsan.supp
#        and fuzz/README.md "ASan and the collector"):
#          detect_stack_use_after_return=0  ASan's fake stacks live in memory the
#             collector does not scan: an object referenced only from a frame moved
#             there would be collected while in use. Kept off (the default).
#          LeakSanitizer with tools/lsan.supp: LSan does not scan the collector's heap,
#             so malloc'd blocks referenced only from GC objects look leaked; the file
#             names each such block.
#        Suites and test cases that cannot work under ASan are listed, with the
#        reason, in tools/sanitizer-exclude.
# Both builds run their tests through tools/sanitizer-test.sh (LOG_COMPILER), which
# skips what tools/sanitizer-exclude lists for that sanitizer.
# Extra configure arguments: SAN_CONFIGURE_FLAGS. Exit 0 when every build's check passed.
set -u
src=$1
work=$2
shift 2
jobs=$(nproc 2>/dev/null || echo 2)
rc=0
for san in "$@"; do
    b="$work/$san"
    mkdir -p "$b"
    log="$b/build.log"
    start=$(date +%s)
    printf '==> %s: configure, build, make check (log: %s)\n' "$san" "$log"
    make_args="LOG_COMPILER=$(cd "$src" && pwd)/tools/sanitizer-test.sh"
    case "$san" in
    ubsan) flags=--enable-ubsan ;;
    asan)
        flags=--enable-asan
        ;;
    *)
        echo "unknown sanitizer: $san" >&2
        rc=1
        continue
        ;;
    esac
    # shellcheck disable=SC2086 # flag lists
    if ! (cd "$b" && "$src/configure" $flags ${SAN_CONFIGURE_FLAGS:-} &&
        make -j"$jobs") >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "$san: build FAILED"
        rc=1
        continue
    fi
    srcabs=$(cd "$src" && pwd)
    check_rc=0
    (
        cd "$b" || exit 1
        ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=0:abort_on_error=1}
        LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$srcabs/tools/lsan.supp:print_suppressions=0}
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
        export ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
        SAN=$san
        export SAN
        make -j"$jobs" check "$make_args"
    ) >>"$log" 2>&1 || check_rc=$?
    grep -E '^# (TOTAL|PASS|FAIL|ERROR|SKIP|XFAIL):' "$log" | tail -n 6 | sed "s/^/$san: /"
    if [ "$check_rc" -ne 0 ]; then
        rc=1
        echo "$san: make check FAILED; failing suites:"
        for l in "$b"/tests/*.log; do
            grep -q -E '^:test-result: (FAIL|ERROR)' "${l%.log}.trs" 2>/dev/null || continue
            echo "---- ${l#"$b"/}"
            grep -E 'runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY|:[EF]:' "$l" |
                head -n 20
        done
    fi
    printf '%s: %ds (exit %s)\n' "$san" $(($(date +%s) - start)) "$check_rc"
done
exit "$rc"
