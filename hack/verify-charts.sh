#!/usr/bin/env bash
# Checks the Helm charts in deploy/charts: `helm lint --strict` of each, and
# that the ebb-operator chart's CRDs match deploy/crds. The rendered
# manifests are checked in detail by e2e/charts_test.go (TestCharts).

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

helm="$(bash "${EBB_ROOT}/hack/build-cluster-bins.sh" | sed -n 's/^helm=//p')"
if [[ -z "${helm}" ]]; then
  echo "hack/build-cluster-bins.sh did not report helm" >&2
  exit 1
fi

bash "${EBB_ROOT}/hack/verify-chart-crds.sh"
for chart in "${EBB_ROOT}"/deploy/charts/*/; do
  "${helm}" lint --strict "${chart}"
done
