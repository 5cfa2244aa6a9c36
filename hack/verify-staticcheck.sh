#!/usr/bin/env bash
# Runs staticcheck (pinned in hack/tools/go.mod) over the package patterns
# given as arguments.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"
cd "${EBB_ROOT}"

STATICCHECK="$(ebb::tool honnef.co/go/tools/cmd/staticcheck)"
echo ">> staticcheck"
"${STATICCHECK}" "$@"
