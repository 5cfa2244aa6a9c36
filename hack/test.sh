#!/usr/bin/env bash
# Runs go test (with the race detector) over the package patterns given as
# arguments, through gotestsum for a readable summary. The JSON event stream
# is kept in _output/test.json for tooling.
#
# Tests that need real components (a local cluster, event sources) install
# and build them themselves through hack/ scripts, cached in ${EBB_CACHE}.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"
cd "${EBB_ROOT}"

if [[ $# -eq 0 ]]; then
  echo "usage: hack/test.sh PACKAGE_PATTERN..." >&2
  exit 2
fi

GOTESTSUM="$(ebb::tool gotest.tools/gotestsum)"

# Scaler tests run against real event sources from Debian's packages.
bash "${EBB_ROOT}/hack/install-event-sources.sh"
bash "${EBB_ROOT}/hack/install-azurite.sh" >/dev/null # Azurite (npm), for the azure-queue and azure-blob scalers

# The e2e tests run a local cluster, and the etcd scaler's test its etcd;
# build the binaries now (minutes when cold, instant when cached) rather
# than inside a test's deadline.
if [[ " $* " == *" ./e2e/"* || " $* " == *"services/operator"* ]]; then
  echo ">> cluster binaries (hack/build-cluster-bins.sh)"
  bash "${EBB_ROOT}/hack/build-cluster-bins.sh" >/dev/null
fi
mkdir -p _output
"${GOTESTSUM}" \
  --format pkgname-and-test-fails \
  --jsonfile _output/test.json \
  -- -race -count=1 -timeout "${EBB_TEST_TIMEOUT:-60m}" "$@"
