#!/bin/sh
# tools/lint.sh: static analysis of the library sources (gc/*.c lib/*.c), as `make lint`
# runs it: cppcheck, then clang-tidy with the checks in .clang-tidy. Exit 1 on any
# finding. Suppress a false positive inline, with its reason:
#   cppcheck:    // cppcheck-suppress <id> -- reason        (on the line before)
#   clang-tidy:  // NOLINT(<check>): reason                 (on the line)
#
#   tools/lint.sh SRCDIR BUILDDIR [CPPFLAGS...]
#
# BUILDDIR holds config.h; CPPFLAGS are the flags the library is compiled with (the
# Makefile passes its own: -I, -D and the bdw-gc flags).
set -u
srcdir=$1
builddir=$2
shift 2
rc=0
files=$(cd "$srcdir" && ls gc/*.c lib/*.c)

# cppcheck: warning, performance and portability classes (style is left to review and
# clang-format). missingIncludeSystem: it is not given the system include paths, on
# purpose (it would then analyse glibc's headers); its library configs know libc and posix.
echo "cppcheck: $(echo "$files" | wc -w) files"
# shellcheck disable=SC2086
(cd "$srcdir" && cppcheck --quiet --std=c11 --library=posix \
    --enable=warning,performance,portability --inline-suppr --error-exitcode=1 \
    --suppress=missingIncludeSystem \
    -I"$builddir" -Iinclude -D_GNU_SOURCE -DGC_THREADS $files) || rc=1

# clang-tidy: one file at a time, configuration from $srcdir/.clang-tidy.
echo "clang-tidy: $(echo "$files" | wc -w) files"
for f in $files; do
    out=$(cd "$srcdir" && clang-tidy --quiet "$f" -- -I"$builddir" -Iinclude -D_GNU_SOURCE \
        "$@" 2>&1) || { rc=1; printf '%s\n' "$out"; continue; }
    # Without errors, clang-tidy still prints "N warnings generated" (from headers it
    # filtered out); only real diagnostics matter.
    printf '%s\n' "$out" | grep -E ': (warning|error):' && rc=1
done
[ "$rc" -eq 0 ] && echo "lint: clean"
exit "$rc"
