#!/usr/bin/env bash
# scripts/demo.sh: install what is missing, build, and run the main demo.
# Arguments are passed to the demo program.
set -eu
# Packages: what the build needs (a wider purpose set by the caller, such as
# .ci/run's, is kept).
GH_SETUP_PURPOSE=${GH_SETUP_PURPOSE:-build}
# shellcheck source=scripts/setup.sh
. "$(dirname "$0")/setup.sh"

# The retention demo once it exists, the object-model walkthrough until then.
demo=examples/objmodel
if [ -x examples/retention ]; then
    demo=examples/retention
fi
gh_log "running $demo $*"
exec "./$demo" "$@"
