#!/usr/bin/env bash
# Regenerates everything derived from the keda.sh/v1alpha1 Go types:
#   - deepcopy functions            pkg/apis/keda/v1alpha1/zz_generated.deepcopy.go
#   - clientset, listers, informers pkg/client/{clientset,listers,informers}
#   - apply configurations          pkg/client/applyconfiguration
#   - CRD manifests, one per kind   deploy/crds/ (and the copy in deploy/charts/ebb-operator/crds/)
# Generators are pinned in hack/tools/go.mod and cached outside the clone.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"
cd "${EBB_ROOT}"

ebb::tools_go mod download k8s.io/code-generator
CODEGEN_PKG="$(ebb::tools_go list -m -f '{{.Dir}}' k8s.io/code-generator)"
CODEGEN_VERSION="$(ebb::tool_version k8s.io/code-generator)"
# kube_codegen.sh installs its generators into GOBIN; keep them in the cache,
# keyed by version.
export GOBIN="${EBB_CACHE}/bin/code-generator-${CODEGEN_VERSION}"
mkdir -p "${GOBIN}"

# shellcheck source=/dev/null
source "${CODEGEN_PKG}/kube_codegen.sh"

BOILERPLATE="${EBB_ROOT}/hack/boilerplate.go.txt"
MODULE_PKG="github.com/ebb-autoscaler/ebb/pkg"

echo ">> deepcopy"
kube::codegen::gen_helpers \
  --boilerplate "${BOILERPLATE}" \
  "${EBB_ROOT}/pkg/apis"

echo ">> clientset, listers, informers, apply configurations"
kube::codegen::gen_client \
  --with-watch \
  --with-applyconfig \
  --output-dir "${EBB_ROOT}/pkg/client" \
  --output-pkg "${MODULE_PKG}/client" \
  --boilerplate "${BOILERPLATE}" \
  "${EBB_ROOT}/pkg/apis"

echo ">> CRDs"
CONTROLLER_GEN="$(ebb::tool sigs.k8s.io/controller-tools/cmd/controller-gen)"
rm -f deploy/crds/keda.sh_*.yaml
"${CONTROLLER_GEN}" \
  crd:crdVersions=v1,generateEmbeddedObjectMeta=true \
  paths=./pkg/apis/... \
  output:crd:artifacts:config=deploy/crds

# The ebb-operator chart carries a copy of the CRDs.
bash "${EBB_ROOT}/hack/update-chart-crds.sh"
