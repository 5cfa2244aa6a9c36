#!/usr/bin/env bash
# Common setup sourced by every hack/ script: strict mode, the repository
# root, the tool cache outside the clone, and ebb::tool, which builds a tool
# pinned in hack/tools/go.mod once per version and prints its path.

set -o errexit -o nounset -o pipefail

EBB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# EBB_CACHE holds built tools and binaries between runs, keyed by version,
# outside the clone so a fresh clone (CI) reuses them.
EBB_CACHE="${EBB_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/ebb}"
export EBB_ROOT EBB_CACHE

# ebb::tools_go runs the go command inside the pinned tools module, which is
# deliberately outside go.work.
ebb::tools_go() {
  GOWORK=off go -C "${EBB_ROOT}/hack/tools" "$@"
}

# ebb::tool_version prints the version of the module that provides a tool
# package (or module path) pinned in hack/tools/go.mod.
ebb::tool_version() {
  ebb::tools_go list -m -f '{{.Version}}' "$1"
}

# ebb::tool builds the main package $1 (pinned in hack/tools/go.mod) into
# ${EBB_CACHE}/bin/<name>-<version>/<name> unless it is already there, and
# prints the binary's path.
ebb::tool() {
  local pkg="$1"
  local name="${pkg##*/}"
  local version
  version="$(ebb::tools_go list -f '{{.Module.Version}}' "${pkg}")"
  local bin="${EBB_CACHE}/bin/${name}-${version}/${name}"
  if [[ ! -x "${bin}" ]]; then
    echo ">> building ${name} ${version} into ${bin%/*}" >&2
    ebb::tools_go build -buildvcs=false -o "${bin}" "${pkg}"
  fi
  echo "${bin}"
}

# ebb::modules prints the directories of the Go modules listed in go.work,
# relative to the repository root, one per line.
ebb::modules() {
  go -C "${EBB_ROOT}" work edit -json | sed -n 's/^[[:space:]]*"DiskPath": "\.\/\(.*\)".*/\1/p'
}

# ebb::copy_tree copies the working tree (without .git and build output) into
# directory $1, so verify scripts can regenerate into a scratch copy.
ebb::copy_tree() {
  tar -C "${EBB_ROOT}" --exclude=./.git --exclude=./bin --exclude=./_output -cf - . | tar -C "$1" -xf -
}
