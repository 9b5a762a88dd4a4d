#!/bin/sh
# tests/check-guile-web.sh: run-server's 'gchttp back end, (web server gchttp):
# bindings/guile/test-web.scm (errors, bodies, streaming, hijack, close-notify, collection,
# #:threads) and tests/guile/examples.py (the "Web Examples" programs of Guile's manual,
# unchanged, answering the same requests the same way over 'http and 'gchttp).
#
# Run by `make check` with top_srcdir, top_builddir, CURL, PYTHON3 and GUILE from
# TESTS_ENVIRONMENT. Exit 77 (skip) only when Guile 3.0 is not installed; a missing client
# (curl, python3) is a failure when the extension was built.
set -u

top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
GUILE=${GUILE:-$(command -v guile-3.0 || command -v guile || true)}
CURL=${CURL:-$(command -v curl || true)}
PYTHON3=${PYTHON3:-$(command -v python3 || true)}

if [ -z "$GUILE" ]; then
    echo "SKIP: guile not installed (Debian: apt-get install guile-3.0 guile-3.0-dev)"
    exit 77
fi
if [ ! -f "$top_builddir/bindings/guile/.libs/libguile-gchttp.so" ] ||
   [ ! -f "$top_builddir/bindings/guile/web/server/gchttp.go" ]; then
    if pkg-config --exists guile-3.0 2>/dev/null; then
        echo "FAIL: guile-3.0 is installed but the extension or its modules were not built; re-run ./configure && make"
        exit 1
    fi
    echo "SKIP: guile-3.0-dev not installed, the extension is not built"
    exit 77
fi
if [ -z "$CURL" ] || [ -z "$PYTHON3" ]; then
    echo "FAIL: curl and python3 are needed (scripts/setup.sh installs them)"
    exit 1
fi

LD_LIBRARY_PATH="$top_builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
GUILE_EXTENSIONS_PATH="$top_builddir/bindings/guile/.libs"
GUILE_LOAD_PATH="$top_srcdir/bindings/guile"
GUILE_LOAD_COMPILED_PATH="$top_builddir/bindings/guile"
GUILE_AUTO_COMPILE=0
export LD_LIBRARY_PATH GUILE_EXTENSIONS_PATH GUILE_LOAD_PATH GUILE_LOAD_COMPILED_PATH \
    GUILE_AUTO_COMPILE CURL

rc=0
# Each part is bounded; their clients wait at most as long.
timeout -k 5 240 "$GUILE" --no-auto-compile "$top_srcdir/bindings/guile/test-web.scm" || rc=1
timeout -k 5 120 "$PYTHON3" "$top_srcdir/tests/guile/examples.py" "$GUILE" "$top_srcdir" "$CURL" ||
    rc=1
exit $rc
