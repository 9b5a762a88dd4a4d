#!/bin/sh
# tools/sanitizer-test.sh: LOG_COMPILER of the builds of `make check-sanitizers`; SAN
# (ubsan, asan) names the build. Runs a test as usual unless tools/sanitizer-exclude
# lists it for SAN: a suite listed alone is skipped
# (exit 77); a suite listed with test cases runs its other cases, one CK_RUN_CASE at a
# time (the cases are read from the suite's tcase_create calls in tests/SUITE.c).
# Needs top_srcdir (TESTS_ENVIRONMENT sets it).
set -u
test=$1
name=${test##*/}
name=${name%.exe}
excl="${top_srcdir:-.}/tools/sanitizer-exclude"
entry=$(sed -e 's/#.*//' "$excl" |
    awk -v s="${SAN:-}" -v n="$name" '$1 == s && $2 == n { $1 = ""; $2 = ""; print "x" $0 }')
if [ -z "$entry" ]; then
    exec "$@"
fi
skip=${entry#x}
if [ -z "$(echo "$skip" | tr -d ' ')" ]; then
    echo "$name: skipped under $SAN (see tools/sanitizer-exclude)"
    exit 77
fi
src="${top_srcdir:-.}/tests/$name.c"
cases=$(sed -n 's/.*tcase_create("\([^"]*\)").*/\1/p' "$src")
rc=0
for c in $cases; do
    case " $skip " in
    *" $c "*)
        echo "$name: test case $c skipped under $SAN (see tools/sanitizer-exclude)"
        continue
        ;;
    esac
    CK_RUN_CASE=$c "$@" || rc=$?
done
exit "$rc"
