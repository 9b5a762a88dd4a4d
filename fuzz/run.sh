#!/bin/sh
# fuzz/run.sh: run libFuzzer targets for a fixed time each, all at once, and print one
# summary line per target (execs, execs/s, coverage) from libFuzzer's own output.
# Called by `make fuzz`; usable by hand:
#
#   fuzz/run.sh SRCDIR SECONDS TARGET...      (TARGET: request-head, chunked, conn)
#
# Each target is the binary fuzz/fuzz-TARGET in the current (build) directory. New
# inputs go to fuzz/work/TARGET (the first corpus directory, grown across runs); the
# seed corpus SRCDIR/fuzz/corpus/TARGET and SRCDIR/fuzz/regressions/TARGET are read
# only. Crashes, leaks and timeouts are written as fuzz/artifacts/TARGET-*; the full
# output of a run is fuzz/TARGET.log. Extra libFuzzer flags: FUZZ_FLAGS.
# Exit status: 0 if every target ran clean for the whole time, 1 otherwise.
set -u
srcdir=$1
seconds=$2
shift 2

# ASan: leak reports about memory referenced only from the collector's heap are
# suppressed by name (see tools/lsan.supp). Fake stacks stay off (the default): the
# collector does not scan them, so objects referenced only from a frame moved there
# would be freed under the program.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=0:allocator_may_return_null=1}
LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$srcdir/tools/lsan.supp:print_suppressions=0}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS

pids=""
for t in "$@"; do
    mkdir -p "fuzz/work/$t" fuzz/artifacts
    seeds="$srcdir/fuzz/corpus/$t"
    [ -d "$srcdir/fuzz/regressions/$t" ] && seeds="$seeds $srcdir/fuzz/regressions/$t"
    # shellcheck disable=SC2086 # FUZZ_FLAGS and seeds are lists
    "./fuzz/fuzz-$t" -max_total_time="$seconds" -timeout=25 -max_len=8192 \
        -dict="$srcdir/fuzz/http.dict" -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t-" ${FUZZ_FLAGS:-} \
        "fuzz/work/$t" $seeds >"fuzz/$t.log" 2>&1 &
    pids="$pids $!"
done

rc=0
for pid in $pids; do
    t=$1
    shift
    trc=0
    wait "$pid" || trc=$?
    log="fuzz/$t.log"
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
    cov=$(printf '%s\n' "$last" | sed -n 's/.*\(cov: [0-9]*\) \(ft: [0-9]*\) \(corp: [^ ]*\).*/\1 \2 \3/p')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    if [ "$trc" -eq 0 ]; then
        verdict="clean"
    else
        rc=1
        verdict="FAILED (exit $trc; see $log and fuzz/artifacts/$t-*)"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz-conn:)' "$log" | head -n 5
    fi
    printf 'fuzz-%s: %ss, %s execs (%s/s), %s, peak rss %s MB: %s\n' \
        "$t" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-no coverage line}" "${rss:-?}" \
        "$verdict"
done
exit "$rc"
