#!/usr/bin/env bash
# Builds the pinned binaries of ebb's local cluster from the Go module proxy
# into ${EBB_CACHE}/bin/<component>-<version>/, skipping any already there:
#   kube-apiserver, kube-controller-manager, kubectl  (k8s.io/kubernetes ${KUBE_VERSION})
#   etcd                                              (go.etcd.io/etcd/server/v3 ${ETCD_VERSION})
#   helm                                              (helm.sh/helm/v4 ${HELM_VERSION})
# Prints "name=path" lines for the built binaries on stdout; progress goes to
# stderr.
#
# k8s.io/kubernetes is not meant to be used as a module: its go.mod replaces
# the staging modules with local directories. The wrapper module below
# requires it and replaces each staging module with its published
# k8s.io/<name> v0.x.y instead.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.8}"
HELM_VERSION="${HELM_VERSION:-v4.3.1}"

bindir() { echo "${EBB_CACHE}/bin/$1-$2"; }

# One build at a time: test binaries of several packages may call this
# script at once, and they must not write the same files.
mkdir -p "${EBB_CACHE}/bin"
exec 9>"${EBB_CACHE}/bin/.build-cluster-bins.lock"
flock 9

# build_wrapper NAME VERSION REQUIRE_LINES REPLACE_LINES MAIN_DIRS...
# (with extra -ldflags from WRAPPER_LDFLAGS) and sets WRAPPER_OUT to that
# directory.
# writes a throw-away module with one main package per MAIN_DIRS entry
# (the file content comes from the main_<dir> variable) and builds each into
# bindir NAME VERSION.
build_wrapper() {
  local name="$1" version="$2" require="$3" replace="$4"
  shift 4
  # The directory is keyed by the recipe too (module lines, main packages,
  # flags), so changing how a binary is built rebuilds it.
  local recipe="${require}${replace}${WRAPPER_LDFLAGS:-}" cmd var
  for cmd in "$@"; do
    var="main_${cmd//-/_}"
    recipe+="${!var}"
  done
  local out
  out="$(bindir "${name}" "${version}")-$(sha256sum <<<"${recipe}" | cut -c1-8)"
  WRAPPER_OUT="${out}"
  local missing=()
  for cmd in "$@"; do
    [[ -x "${out}/${cmd}" ]] || missing+=("${cmd}")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0

  echo ">> building ${missing[*]} ${version} (a cold build takes minutes)" >&2
  (
    work="$(mktemp -d)"
    trap 'rm -rf "${work}"' EXIT
    {
      echo "module ebb.local/${name}-wrapper"
      echo
      echo "go 1.26.0"
      echo
      echo "require ("
      echo "${require}"
      echo ")"
      if [[ -n "${replace}" ]]; then
        echo
        echo "replace ("
        echo "${replace}"
        echo ")"
      fi
    } >"${work}/go.mod"
    for cmd in "${missing[@]}"; do
      mkdir -p "${work}/${cmd}"
      var="main_${cmd//-/_}"
      printf '%s\n' "${!var}" >"${work}/${cmd}/main.go"
    done
    cd "${work}"
    export GOWORK=off GOFLAGS=-mod=mod
    go mod tidy >&2
    mkdir -p "${out}"
    for cmd in "${missing[@]}"; do
      go build -trimpath -buildvcs=false -ldflags "-s -w ${WRAPPER_LDFLAGS:-}" -o "${out}/${cmd}.tmp" "./${cmd}" >&2
      mv "${out}/${cmd}.tmp" "${out}/${cmd}"
    done
  )
}

# --- kube-apiserver, kube-controller-manager, kubectl ---------------------
kube_minor="${KUBE_VERSION#v1.}"
staging_version="v0.${kube_minor}"
kube_mod="$(mktemp)"
trap 'rm -f "${kube_mod}"' EXIT
kube_gomod() {
  # The path of the module's go.mod in the module cache (downloaded if needed).
  GOWORK=off GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)".*/\1/p'
}
cp "$(kube_gomod)" "${kube_mod}"
staging_replaces="$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"${staging_version}"'#p' "${kube_mod}")"
if [[ "$(wc -l <<<"${staging_replaces}")" -lt 30 ]]; then
  echo "Found only $(wc -l <<<"${staging_replaces}") staging modules in k8s.io/kubernetes ${KUBE_VERSION}'s go.mod; expected about 33" >&2
  exit 1
fi

main_kube_apiserver='package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }'

main_kube_controller_manager='package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() { os.Exit(cli.Run(app.NewControllerManagerCommand())) }'

main_kubectl='package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}'

# Stamp the version a release build would report (/version, kubectl version).
kube_ldflags=""
for version_pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X ${version_pkg}.gitVersion=${KUBE_VERSION} -X ${version_pkg}.gitMajor=1"
  kube_ldflags+=" -X ${version_pkg}.gitMinor=${kube_minor%%.*} -X ${version_pkg}.gitTreeState=clean"
done
WRAPPER_LDFLAGS="${kube_ldflags}" build_wrapper kube "${KUBE_VERSION}" "	k8s.io/kubernetes ${KUBE_VERSION}" "${staging_replaces}" \
  kube-apiserver kube-controller-manager kubectl
kube_dir="${WRAPPER_OUT}"

# --- etcd ------------------------------------------------------------------
main_etcd='package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }'

build_wrapper etcd "${ETCD_VERSION}" "	go.etcd.io/etcd/server/v3 ${ETCD_VERSION}" "" etcd
etcd_dir="${WRAPPER_OUT}"

# --- helm ------------------------------------------------------------------
helm_dir="$(bindir helm "${HELM_VERSION}")"
if [[ ! -x "${helm_dir}/helm" ]]; then
  echo ">> building helm ${HELM_VERSION}" >&2
  GOWORK=off GOBIN="${helm_dir}" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}" >&2
fi

echo "kube-apiserver=${kube_dir}/kube-apiserver"
echo "kube-controller-manager=${kube_dir}/kube-controller-manager"
echo "kubectl=${kube_dir}/kubectl"
echo "etcd=${etcd_dir}/etcd"
echo "helm=${helm_dir}/helm"

# --- cert-manager ------------------------------------------------------------
# hack/cert-manager is ebb's launcher of cert-manager's controllers and CA
# injector (its own module, pinned to the k8s.io versions cert-manager needs).
# The directory carries a hash of the launcher's source, so an edit rebuilds.
cm_src="${EBB_ROOT}/hack/cert-manager"
cm_go() { GOWORK=off go -C "${cm_src}" "$@"; }
cm_version="$(cm_go list -m -f '{{.Version}}' github.com/cert-manager/cert-manager)"
cm_hash="$(cd "${cm_src}" && cat go.mod go.sum *.go | sha256sum | cut -c1-12)"
cm_dir="$(bindir cert-manager "${cm_version}-${cm_hash}")"
if [[ ! -x "${cm_dir}/cert-manager" ]]; then
  echo ">> building cert-manager ${cm_version} (launcher ${cm_hash})" >&2
  mkdir -p "${cm_dir}"
  cm_go build -trimpath -buildvcs=false -ldflags "-s -w" -o "${cm_dir}/cert-manager.tmp" . >&2
  mv "${cm_dir}/cert-manager.tmp" "${cm_dir}/cert-manager"
fi
# The plain CRD manifests (controller-gen output; the same specs as the Helm
# chart's templates, without the chart's labels) shipped in the module.
cm_module_dir="$(cm_go mod download -json github.com/cert-manager/cert-manager |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)".*/\1/p')"
if [[ ! -f "${cm_module_dir}/deploy/crds/cert-manager.io_certificates.yaml" ]]; then
  echo "No CRD manifests in ${cm_module_dir}/deploy/crds" >&2
  exit 1
fi
echo "cert-manager=${cm_dir}/cert-manager"
echo "cert-manager-crds=${cm_module_dir}/deploy/crds"
