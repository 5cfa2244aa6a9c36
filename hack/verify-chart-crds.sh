#!/usr/bin/env bash
# Fails when the CRDs in the ebb-operator chart (deploy/charts/ebb-operator/crds)
# differ from the generated ones in deploy/crds. hack/update-chart-crds.sh
# copies them over.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

if ! diff -Naupr "${EBB_ROOT}/deploy/crds" "${EBB_ROOT}/deploy/charts/ebb-operator/crds"; then
  echo "The ebb-operator chart's CRDs differ from deploy/crds: run hack/update-chart-crds.sh and commit the result." >&2
  exit 1
fi
echo "The ebb-operator chart's CRDs match deploy/crds."
