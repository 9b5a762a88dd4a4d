#!/bin/sh
# tests/check-surface.sh: prove the public surface, not just the behaviour.
#
# (a) Every public header (include/gchttp.h, include/gchttp/*.h) compiles on its own, twice
#     included, as strict C99: it includes what it uses and has an include guard.
# (b) The shared library exports only gh_ names (not the internal gh__ ones), and every
#     global symbol the static archive defines starts with gh_ (gh__ allowed there:
#     hidden visibility does not apply to an archive).
#
# Run by `make check` with top_srcdir, top_builddir, CC and NM from TESTS_ENVIRONMENT; works
# in VPATH builds (make distcheck). Exit 77 (skip) only when the shared library is absent.
set -u

top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
CC=${CC:-cc}
NM=${NM:-nm}
# Public headers may use bdwgc's; its include path, if pkg-config knows one.
GC_CFLAGS=${GC_CFLAGS:-$(pkg-config --cflags bdw-gc 2>/dev/null || true)}

fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gh-surface.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 99' HUP INT TERM

# ---- (a) headers ----------------------------------------------------------------------
nhdr=0
for h in "$top_srcdir"/include/gchttp.h "$top_srcdir"/include/gchttp/*.h; do
    [ -f "$h" ] || continue
    rel=${h#"$top_srcdir"/include/}
    nhdr=$((nhdr + 1))
    printf '#include <%s>\n#include <%s>\n' "$rel" "$rel" >"$tmp/hdr.c"
    # shellcheck disable=SC2086 # CC and GC_CFLAGS may carry several words
    if $CC -std=c99 -pedantic -Werror -Wall -Wextra -fsyntax-only $GC_CFLAGS \
        -I"$top_srcdir/include" "$tmp/hdr.c" >"$tmp/hdr.out" 2>&1; then
        echo "ok: $rel compiles alone (C99, -pedantic -Werror)"
    else
        echo "FAIL: $rel does not compile alone:"
        sed 's/^/    /' "$tmp/hdr.out"
        fail=1
    fi
done
if [ "$nhdr" -eq 0 ]; then
    echo "FAIL: no public headers under $top_srcdir/include"
    fail=1
fi

# ---- (b) exported symbols -------------------------------------------------------------
# defined_globals OUT NM-ARGS...: write "type name" to OUT for each global symbol nm reports
# defined (types of code and data: T D B R W V i, plus G S for small data, u for unique
# globals, C for commons), leaving out the symbols the linker itself defines (_end,
# __bss_start, ...), which ld may put in a shared library's dynamic symbol table. Fails if
# nm does.
defined_globals() {
    out=$1
    shift
    # shellcheck disable=SC2086 # NM may carry options (libtool sets "nm -B")
    $NM "$@" >"$tmp/nm.out" 2>"$tmp/nm.err" || return 1
    awk 'NF == 3 && $2 ~ /^[TDBRWVGSiuC]$/ && !($3 in ld) { print $2, $3 }
         BEGIN { split("_init _fini _edata _end __bss_start __end__ __bss_start__ " \
                       "__bss_end__ _bss_end__ __data_start", l); for (i in l) ld[l[i]] }' \
        "$tmp/nm.out" >"$out"
}

so="$top_builddir/.libs/libgchttp.so"
a="$top_builddir/.libs/libgchttp.a"
so_present=0
if [ -e "$so" ]; then
    so_present=1
    if ! defined_globals "$tmp/so.syms" -D --defined-only "$so"; then
        echo "FAIL: $NM -D could not read $so:"
        sed 's/^/    /' "$tmp/nm.err"
        fail=1
    elif awk '$2 !~ /^gh_/ || $2 ~ /^gh__/' "$tmp/so.syms" >"$tmp/so.bad" && [ -s "$tmp/so.bad" ]; then
        echo "FAIL: libgchttp.so exports names outside gh_ (mark them static, or drop GH_EXTERN):"
        sed 's/^/    /' "$tmp/so.bad"
        fail=1
    else
        echo "ok: libgchttp.so exports $(wc -l <"$tmp/so.syms") symbols, all gh_"
    fi
fi
if [ -e "$a" ]; then
    if ! defined_globals "$tmp/a.syms" -g --defined-only "$a"; then
        echo "FAIL: $NM could not read $a:"
        sed 's/^/    /' "$tmp/nm.err"
        fail=1
    elif awk '$2 !~ /^gh_/' "$tmp/a.syms" | sort -u >"$tmp/a.bad" && [ -s "$tmp/a.bad" ]; then
        echo "FAIL: libgchttp.a defines globals outside gh_/gh__ (make them static or rename):"
        sed 's/^/    /' "$tmp/a.bad"
        fail=1
    else
        echo "ok: libgchttp.a defines $(wc -l <"$tmp/a.syms") globals, all gh_ or gh__"
    fi
else
    echo "note: no $a (--disable-static?); archive check not run"
fi

if [ "$fail" -ne 0 ]; then
    exit 1
fi
if [ "$so_present" -eq 0 ]; then
    echo "SKIP: no $so (--disable-shared?); export check not run"
    exit 77
fi
exit 0
