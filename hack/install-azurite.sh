#!/usr/bin/env bash
# Installs Azurite, the Azure Storage emulator (npm package azurite), which
# the azure-queue and azure-blob scaler tests run against, with the npm of
# the machine's Node.js (20 or later): `npm ci` of hack/azurite/, whose
# lockfile pins every package, into
# ${EBB_CACHE}/npm/azurite-<version>-<lockfile hash>, once. Idempotent:
# instant when installed.
#
#   hack/install-azurite.sh            install if missing, print the bin directory
#   hack/install-azurite.sh --bin-dir  print the bin directory, install nothing
#
# The bin directory holds azurite-queue and azurite-blob; the tests find it
# with --bin-dir and fail, naming this script, when they are missing.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

src="${EBB_ROOT}/hack/azurite"
version="$(sed -n 's/^ *"azurite": "\([^"]*\)".*/\1/p' "${src}/package.json")"
lockhash="$(sha256sum "${src}/package-lock.json" | cut -c1-8)"
dir="${EBB_CACHE}/npm/azurite-${version}-${lockhash}"
bin="${dir}/node_modules/.bin"

if [[ "${1:-}" == "--bin-dir" ]]; then
  echo "${bin}"
  exit 0
fi
if [[ -x "${bin}/azurite-queue" && -x "${bin}/azurite-blob" ]]; then
  echo "${bin}"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1 && [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
  echo ">> installing Node.js and npm (Debian) for Azurite" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: Azurite ${version} (for the azure-queue and azure-blob scaler tests) needs Node.js 20 or later with npm." >&2
  exit 1
fi

# Install into a scratch directory next to the final one, then move it in
# place, so an interrupted install never looks complete.
mkdir -p "${EBB_CACHE}/npm"
tmp="$(mktemp -d "${EBB_CACHE}/npm/.azurite-${version}.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
cp "${src}/package.json" "${src}/package-lock.json" "${tmp}/"
echo ">> installing azurite ${version} into ${dir} (npm ci; a few minutes the first time)" >&2
npm ci --prefix "${tmp}" --no-audit --no-fund --loglevel=error >&2
rm -rf "${dir}"
mv "${tmp}" "${dir}"
trap - EXIT
echo "${bin}"
