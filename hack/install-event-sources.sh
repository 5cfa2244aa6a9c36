#!/usr/bin/env bash
# Installs, from Debian's packages, the event sources that ebb's scaler
# tests run against (real servers, never mocks), when they are missing:
# all of them, or the commands given as arguments.
# Each test starts and stops its own server on a free loopback port; the
# system services the packages may start are stopped again.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

# command -> Debian package (PostgreSQL's server commands are not on PATH:
# they are looked for under /usr/lib/postgresql/<version>/bin too)
declare -A wanted=(
  [redis-server]=redis-server
  [redis-sentinel]=redis-sentinel
  [redis-cli]=redis-tools
  [initdb]=postgresql
  [mariadbd]=mariadb-server
  [beanstalkd]=beanstalkd
  [rabbitmq-server]=rabbitmq-server
  [nats-server]=nats-server
  [prometheus]=prometheus
  [carbon-cache]=graphite-carbon
  [graphite-manage]=graphite-web
)

# With arguments, only those commands (make up needs redis-server alone).
commands=("$@")
[[ ${#commands[@]} -eq 0 ]] && commands=("${!wanted[@]}")

missing=()
for cmd in "${commands[@]}"; do
  [[ -n "${wanted[${cmd}]:-}" ]] || { echo "install-event-sources.sh: unknown command ${cmd}" >&2; exit 2; }
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
# mysql scaler tests: mariadb-server's service is named "mariadb", not
# after the package, so the loop above does not stop it.
if [[ " ${missing[*]} " == *" mariadb-server "* ]]; then
  service mariadb stop >/dev/null 2>&1 || true
fi
# rabbitmq scaler tests: stopping rabbitmq-server can leave the Erlang port
# mapper (epmd, default port 4369) that the packaged node started; the
# tests run their own node with their own epmd on free ports.
if [[ " ${missing[*]} " == *" rabbitmq-server "* ]]; then
  epmd -kill >/dev/null 2>&1 || true
fi
# graphite scaler tests: graphite-carbon's service is named carbon-cache
# (disabled by default in /etc/default/graphite-carbon); graphite-web runs
# no service of its own. The tests run their own carbon-cache and
# graphite-web (a WSGI server) on free ports, with their data in a temp dir.
if [[ " ${missing[*]} " == *" graphite-carbon "* ]]; then
  service carbon-cache stop >/dev/null 2>&1 || true
fi
