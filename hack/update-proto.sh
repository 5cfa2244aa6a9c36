#!/usr/bin/env bash
# Regenerates the Go code for every .proto file under proto/ into pkg/ (each
# file lands at the path its go_package names, relative to the pkg module):
# pkg/rpc/metricsv1 and pkg/rpc/externalscaler. The generated files are
# committed; hack/verify-proto.sh checks they are current.
#
# Tools:
#   - protoc at exactly PROTOC_VERSION. When protoc is missing and the script
#     runs as root with apt-get, it installs Debian's protobuf-compiler (and
#     libprotobuf-dev, which holds the well-known types). Set PROTOC to use
#     another binary of the same version.
#   - protoc-gen-go and protoc-gen-go-grpc at the versions pinned in
#     hack/tools/go.mod, built once per version into
#     ${EBB_CACHE}/bin/<name>-<version>/ (outside the clone; see
#     hack/lib/init.sh).

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

# PROTOC_VERSION is the protoc release the committed code is generated with:
# the one Debian bookworm ships (protobuf-compiler 3.21.12-3*). protoc writes
# its version into every generated file, so any other version would make
# hack/verify-proto.sh fail.
readonly PROTOC_VERSION="3.21.12"

# GO_MODULE owns pkg/; with protoc's module= option each generated file lands
# at its go_package path relative to pkg/.
readonly GO_MODULE="github.com/ebb-autoscaler/ebb/pkg"

readonly PROTOC="${PROTOC:-protoc}"

log() {
  echo ">> $*" >&2
}

die() {
  echo "update-proto: ERROR: $*" >&2
  exit 1
}

# apt_install installs the Debian packages $2... when running as root with
# apt-get; otherwise it fails, explaining $1 (what is missing).
apt_install() {
  local why="$1"
  shift
  if [[ "$(id -u)" != "0" ]]; then
    die "${why}; install protoc ${PROTOC_VERSION} with its well-known types (Debian bookworm: apt-get install $*) or run this script as root"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    die "${why} and apt-get is not available; install protoc ${PROTOC_VERSION} with its include directory and put it on PATH (or set PROTOC)"
  fi
  log "${why}: installing Debian packages: apt-get update -qq && apt-get install -y -qq $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ensure_protoc installs protoc when it is missing, and checks its version and
# that its well-known types (google/protobuf/*.proto) are installed.
ensure_protoc() {
  if ! command -v "${PROTOC}" >/dev/null 2>&1; then
    if [[ "${PROTOC}" != "protoc" ]]; then
      die "PROTOC=${PROTOC} not found"
    fi
    # libprotobuf-dev is only a Recommends of protobuf-compiler: name it.
    apt_install "protoc not found" protobuf-compiler libprotobuf-dev
  fi

  local path got
  path="$(command -v "${PROTOC}")"
  got="$("${PROTOC}" --version)"
  if [[ "${got}" != "libprotoc ${PROTOC_VERSION}" ]]; then
    die "${path} reports \"${got}\", want \"libprotoc ${PROTOC_VERSION}\"; the generated code records the protoc version, so it must be exactly ${PROTOC_VERSION} (Debian bookworm's protobuf-compiler)"
  fi

  # protoc finds the well-known types in <prefix>/include beside <prefix>/bin.
  local wkt
  wkt="$(dirname "${path}")/../include/google/protobuf/timestamp.proto"
  if [[ ! -f "${wkt}" ]]; then
    if [[ "${path}" != "/usr/bin/protoc" ]]; then
      die "protoc's well-known types are missing: no ${wkt}; install them beside ${path}"
    fi
    apt_install "protoc's well-known types are missing (no ${wkt})" libprotobuf-dev
  fi
}

main() {
  ensure_protoc
  local gen_go gen_go_grpc
  gen_go="$(ebb::tool google.golang.org/protobuf/cmd/protoc-gen-go)"
  gen_go_grpc="$(ebb::tool google.golang.org/grpc/cmd/protoc-gen-go-grpc)"

  local protos=() f
  while IFS= read -r -d '' f; do
    protos+=("${f#./}")
  done < <(cd "${EBB_ROOT}/proto" && find . -name '*.proto' -print0 | LC_ALL=C sort -z)
  [[ ${#protos[@]} -gt 0 ]] || die "no .proto files under ${EBB_ROOT}/proto"

  # Remove what an earlier run generated, so code for a deleted or renamed
  # proto does not linger.
  if [[ -d "${EBB_ROOT}/pkg/rpc" ]]; then
    find "${EBB_ROOT}/pkg/rpc" -name '*.pb.go' -type f -delete
  fi

  log "generating Go code for ${protos[*]} ($("${PROTOC}" --version), ${gen_go##*/bin/}, ${gen_go_grpc##*/bin/})"
  (
    cd "${EBB_ROOT}/proto"
    "${PROTOC}" \
      --proto_path=. \
      --plugin=protoc-gen-go="${gen_go}" \
      --plugin=protoc-gen-go-grpc="${gen_go_grpc}" \
      --go_out="${EBB_ROOT}/pkg" --go_opt=module="${GO_MODULE}" \
      --go-grpc_out="${EBB_ROOT}/pkg" --go-grpc_opt=module="${GO_MODULE}" \
      "${protos[@]}"
  )
}

main "$@"
