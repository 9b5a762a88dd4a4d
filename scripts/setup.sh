#!/usr/bin/env bash
# scripts/setup.sh: make a checkout buildable and build it. Sourced by scripts/demo.sh and
# scripts/test.sh (it can also be run on its own).
#
# 1. Installs the Debian packages the purpose needs that are missing (as root: apt-get;
#    otherwise it prints the sudo line to run and exits 1).
# 2. Runs ./autogen.sh, ./configure and make -j$(nproc), each only when needed (configure
#    again after packages were installed, so that it finds them).
#
# Progress goes to stderr; the output of a step is shown only when that step fails.
# Knobs (environment):
#   GH_SETUP_PURPOSE    build (default; scripts/demo.sh), test (scripts/test.sh) or ci
#                       (.ci/run): which package lists below to install
#   GH_CONFIGURE_FLAGS  extra ./configure arguments for a first configure (e.g. --enable-asan)
#   GH_SETUP_ROOT       1 or 0: pretend to be root or not (default: id -u)
#   GH_SETUP_NO_APT     1: skip the package check (non-Debian hosts, hand-made environments)
set -eu

# Debian packages per purpose. A purpose installs its own list and those above it:
#   build  ./configure && make: the library, the examples, the demo
#   test   + make check: the real clients the suites drive (curl, python3 with
#          websockets) and Guile, so that the binding is built and tested
#   ci     + the rest of .ci/run: make fuzz (clang, libFuzzer's runtime), make lint
#          (cppcheck, clang-tidy)
# Add a package to the first list whose purpose needs it, and nowhere else.
# nettle-dev, zlib1g-dev: WebSockets (handshake SHA-1/base64, permessage-deflate).
GH_DEB_BUILD="build-essential gcc make autoconf automake libtool pkg-config libgc-dev check \
nettle-dev zlib1g-dev"
# nodejs (with npm): npm's ws client for tests/test-websocket (gh_node_ws installs it).
GH_DEB_TEST="curl python3 python3-websockets nodejs guile-3.0 guile-3.0-dev"
GH_DEB_CI="clang libclang-rt-14-dev cppcheck clang-tidy"
# PACKAGE:COMMAND pairs: the package counts as present when COMMAND is on PATH however it
# got there (node's npm from NodeSource conflicts with Debian's npm package).
GH_DEB_PROVIDED_BY="npm:npm nodejs:node"

gh_purpose_packages() {
    case "${GH_SETUP_PURPOSE:-build}" in
    build) printf '%s\n' "$GH_DEB_BUILD" ;;
    test) printf '%s\n' "$GH_DEB_BUILD $GH_DEB_TEST" ;;
    ci) printf '%s\n' "$GH_DEB_BUILD $GH_DEB_TEST $GH_DEB_CI" ;;
    *)
        printf '%s: error: GH_SETUP_PURPOSE must be build, test or ci (not %s)\n' \
            "${0##*/}" "$GH_SETUP_PURPOSE" >&2
        exit 1
        ;;
    esac
}
GH_DEB_PACKAGES=$(gh_purpose_packages)
GH_INSTALLED_PACKAGES=0

GH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

gh_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
gh_die() {
    gh_log "error: $*"
    exit 1
}

# Run a command with its output going to a log; show the log only when it fails.
gh_quiet() {
    local log rc=0
    log=$(mktemp "${TMPDIR:-/tmp}/gh-setup.XXXXXX")
    "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$log" >&2
        rm -f "$log"
        gh_die "'$*' failed (exit $rc)"
    fi
    rm -f "$log"
}

# 0 if package $1 is in GH_DEB_PROVIDED_BY and its command is on PATH.
gh_provided() {
    local pair
    for pair in $GH_DEB_PROVIDED_BY; do
        if [ "${pair%%:*}" = "$1" ] && command -v "${pair#*:}" >/dev/null 2>&1; then
            return 0
        fi
    done
    return 1
}

# Print the packages of GH_DEB_PACKAGES that dpkg does not report as installed (and
# no command on PATH provides).
gh_missing_packages() {
    local p status missing=""
    for p in $GH_DEB_PACKAGES; do
        if gh_provided "$p"; then
            continue
        fi
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case "$status" in
        *" installed") ;;
        *) missing="$missing $p" ;;
        esac
    done
    printf '%s\n' "${missing# }"
}

gh_install_packages() {
    if [ "${GH_SETUP_NO_APT:-0}" = 1 ]; then
        return 0
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        gh_log "warning: no dpkg-query (not Debian?); make sure these are installed: $GH_DEB_PACKAGES"
        return 0
    fi
    local missing root
    missing=$(gh_missing_packages)
    if [ -z "$missing" ]; then
        return 0
    fi
    root=${GH_SETUP_ROOT:-}
    if [ -z "$root" ]; then
        if [ "$(id -u)" = 0 ]; then root=1; else root=0; fi
    fi
    if [ "$root" != 1 ]; then
        gh_log "missing Debian packages: $missing"
        gh_log "install them, then run this again:"
        printf '    sudo apt-get install -y %s\n' "$missing" >&2
        exit 1
    fi
    gh_log "installing Debian packages: $missing"
    gh_quiet apt-get update
    # shellcheck disable=SC2086 # $missing is a list of package names
    gh_quiet env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends $missing
    missing=$(gh_missing_packages)
    if [ -n "$missing" ]; then
        gh_die "still missing after apt-get install: $missing"
    fi
    GH_INSTALLED_PACKAGES=1
}

gh_build() {
    cd "$GH_ROOT" || exit 1
    if [ ! -f configure ] || [ configure.ac -nt configure ] ||
        [ ! -f Makefile.in ] || [ Makefile.am -nt Makefile.in ]; then
        gh_log "running ./autogen.sh"
        gh_quiet ./autogen.sh
    fi
    if [ ! -f Makefile ] || [ ! -f config.status ]; then
        gh_log "running ./configure ${GH_CONFIGURE_FLAGS:-}"
        # shellcheck disable=SC2086 # word splitting of the flags is wanted
        gh_quiet ./configure ${GH_CONFIGURE_FLAGS:-}
    elif [ configure -nt config.status ] || [ "$GH_INSTALLED_PACKAGES" = 1 ]; then
        # Re-run configure with the arguments it was first given (also after installing
        # packages: Guile's binding, for one, is built only when configure finds it).
        gh_log "re-running configure (./config.status --recheck)"
        gh_quiet ./config.status --recheck
        gh_quiet ./config.status
    fi
    gh_log "building (make -j$(nproc))"
    gh_quiet make -j"$(nproc)"
}

# npm's ws into tests/ws/node_modules (git-ignored); without it tests/test-websocket
# reports SKIP.
gh_node_ws() {
    if [ "${GH_SETUP_PURPOSE:-build}" = build ]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        gh_log "warning: no npm: tests/test-websocket will SKIP its node cases"
        return 0
    fi
    "$GH_ROOT/tests/ws/install-node-ws.sh" ||
        gh_log "warning: npm install ws failed: tests/test-websocket will SKIP"
}

gh_setup() {
    gh_install_packages
    gh_node_ws
    gh_build
}

gh_setup
