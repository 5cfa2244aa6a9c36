#!/usr/bin/env bash
# Runs staticcheck (pinned in hack/tools/go.mod) over the package patterns
# given as arguments. The generated client (pkg/client) is left out: its
# informers call the deprecated ListFunc/WatchFunc alongside the context
# variants on purpose, for compatibility, and it is not edited by hand.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"
cd "${EBB_ROOT}"

STATICCHECK="$(ebb::tool honnef.co/go/tools/cmd/staticcheck)"
mapfile -t packages < <(go list "$@" | grep -v '^github.com/ebb-autoscaler/ebb/pkg/client/')
echo ">> staticcheck (${#packages[@]} packages)"
"${STATICCHECK}" "${packages[@]}"
