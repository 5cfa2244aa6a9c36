#!/usr/bin/env bash
# Builds every module of go.work on its own (GOWORK=off), proving that each
# service module's go.mod, with its replace of ../../pkg, is complete.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"
cd "${EBB_ROOT}"

for mod in $(ebb::modules); do
  echo ">> GOWORK=off go build ./... in ${mod}"
  GOWORK=off go -C "${mod}" build ./...
  GOWORK=off go -C "${mod}" vet ./... >/dev/null
done
