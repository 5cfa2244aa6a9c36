#!/usr/bin/env bash
# Copies the generated CRDs (deploy/crds, written by hack/update-codegen.sh)
# into the ebb-operator chart's crds/ directory, which Helm installs before
# the chart's templates. hack/verify-chart-crds.sh checks that they match.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

src="${EBB_ROOT}/deploy/crds"
dst="${EBB_ROOT}/deploy/charts/ebb-operator/crds"

mkdir -p "${dst}"
rm -f "${dst}"/*.yaml
cp "${src}"/*.yaml "${dst}/"
echo "Copied $(find "${dst}" -name '*.yaml' | wc -l) CRDs into ${dst#"${EBB_ROOT}/"}."
