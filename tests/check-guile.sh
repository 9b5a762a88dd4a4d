#!/bin/sh
# tests/check-guile.sh: run bindings/guile/test.scm against the built Guile extension.
#
# Run by `make check` with top_srcdir, top_builddir and CURL from TESTS_ENVIRONMENT; works in
# VPATH builds. Exit 77 (skip) only when Guile 3.0 is not installed. When Guile 3.0 and its
# development files are installed but the extension was not built (configure ran before
# guile-3.0-dev was installed), this fails: re-run ./configure.
set -u

top_srcdir=${top_srcdir:-.}
top_builddir=${top_builddir:-.}
GUILE=${GUILE:-$(command -v guile-3.0 || command -v guile || true)}

if [ -z "$GUILE" ]; then
    echo "SKIP: guile not installed (Debian: apt-get install guile-3.0 guile-3.0-dev)"
    exit 77
fi
ext="$top_builddir/bindings/guile/.libs/libguile-gchttp.so"
if [ ! -f "$ext" ]; then
    if pkg-config --exists guile-3.0 2>/dev/null; then
        echo "FAIL: guile-3.0 is installed but $ext was not built; re-run ./configure"
        exit 1
    fi
    echo "SKIP: guile-3.0-dev not installed, the extension is not built"
    exit 77
fi

# The uninstalled extension's run path names the install libdir: point the loader at the
# freshly built libgchttp instead.
LD_LIBRARY_PATH="$top_builddir/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
GUILE_EXTENSIONS_PATH="$top_builddir/bindings/guile/.libs"
GUILE_LOAD_COMPILED_PATH="$top_builddir/bindings/guile"
export LD_LIBRARY_PATH GUILE_EXTENSIONS_PATH GUILE_LOAD_COMPILED_PATH
GUILE_AUTO_COMPILE=0
export GUILE_AUTO_COMPILE

# The whole script is bounded; its own clients wait at most as long.
exec timeout -k 5 120 "$GUILE" --no-auto-compile -L "$top_srcdir/bindings/guile" \
    "$top_srcdir/bindings/guile/test.scm"
