#!/usr/bin/env bash
# Installs, from Debian's packages, the event sources that ebb's scaler
# tests run against (real servers, never mocks), when they are missing.
# Each test starts and stops its own server on a free loopback port; the
# system services the packages may start are stopped again.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

# command -> Debian package (PostgreSQL's server commands are not on PATH:
# they are looked for under /usr/lib/postgresql/<version>/bin too)
declare -A wanted=(
  [redis-server]=redis-server
  [initdb]=postgresql
)

missing=()
for cmd in "${!wanted[@]}"; do
  command -v "${cmd}" >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/${cmd}" >/dev/null ||
    missing+=("${wanted[${cmd}]}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing event sources for the tests: ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) or run as root." >&2
  exit 1
fi
echo ">> installing event sources: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The tests run their own servers; do not leave the packaged services up.
for pkg in "${missing[@]}"; do
  service "${pkg}" stop >/dev/null 2>&1 || true
done
