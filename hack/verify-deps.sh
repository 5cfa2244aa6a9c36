#!/usr/bin/env bash
# Fails on dependency drift between ebb's Go modules:
#   1. every module of go.work, built on its own (GOWORK=off), must compile
#      each dependency (its packages and tests' imports) at the same version
#      the workspace selects, so a service never builds differently alone
#      than in the workspace, and so all modules share one version of each;
#   2. every Kubernetes staging module (k8s.io/<name> v0.x.y) that is
#      compiled is at ${K8S_VERSION}, and sigs.k8s.io/custom-metrics-apiserver
#      at ${CMA_VERSION} (modules only present in the graph, never built,
#      do not count: go mod tidy would drop a pin on them);
#   3. every module declares the same go version;
#   4. go.mod files are tidy.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"
cd "${EBB_ROOT}"

K8S_VERSION="v0.37.2"
CMA_VERSION="v1.37.0"

status=0
fail() {
  echo "verify-deps: $*" >&2
  status=1
}

scratch="$(mktemp -d)"
trap 'rm -rf "${scratch}"' EXIT
# Every module (path and version) compiled by any module of the workspace.
compiled="${scratch}/compiled"
: >"${compiled}"

go_version=""
for mod in $(ebb::modules); do
  v="$(GOWORK=off go -C "${mod}" mod edit -json | sed -n 's/^[[:space:]]*"Go": "\(.*\)".*/\1/p')"
  if [[ -z "${go_version}" ]]; then
    go_version="${v}"
  elif [[ "${v}" != "${go_version}" ]]; then
    fail "${mod}/go.mod says go ${v}, others say go ${go_version}"
  fi

  # Versions of the modules this module compiles, alone and in the workspace.
  deps_format='{{with .Module}}{{if .Version}}{{.Path}} {{.Version}}{{end}}{{end}}'
  go -C "${mod}" list -deps -test -f "${deps_format}" ./... | sort -u >"${scratch}/workspace"
  cat "${scratch}/workspace" >>"${compiled}"
  drift="$(GOWORK=off go -C "${mod}" list -deps -test -f "${deps_format}" ./... | sort -u |
    awk 'NR==FNR { ws[$1] = $2; next } $1 !~ /^github.com\/ebb-autoscaler\/ebb\// && ws[$1] != $2 { print "  " $1 ": " $2 " alone, " (($1 in ws) ? ws[$1] : "absent") " in the workspace" }' "${scratch}/workspace" -)"
  if [[ -n "${drift}" ]]; then
    fail "${mod} resolves dependencies differently from the workspace (run 'go work sync'):"$'\n'"${drift}"
  fi

  if ! GOWORK=off go -C "${mod}" mod tidy -diff >/dev/null 2>&1; then
    fail "${mod}/go.mod is not tidy: run 'cd ${mod} && GOWORK=off go mod tidy'"
  fi
done

while read -r path version; do
  if [[ "${path}" == k8s.io/* && "${version}" =~ ^v0\.[0-9]+\.[0-9]+$ && "${version}" != "${K8S_VERSION}" ]]; then
    fail "${path} ${version} is compiled; Kubernetes modules must all be ${K8S_VERSION}"
  fi
  if [[ "${path}" == sigs.k8s.io/custom-metrics-apiserver && "${version}" != "${CMA_VERSION}" ]]; then
    fail "${path} ${version} is compiled; it must be ${CMA_VERSION}"
  fi
done < <(sort -u "${compiled}")

if [[ ${status} -ne 0 ]]; then
  exit 1
fi
echo "Dependencies: one version of each across $(ebb::modules | wc -l) modules; Kubernetes ${K8S_VERSION}, custom-metrics-apiserver ${CMA_VERSION}."
