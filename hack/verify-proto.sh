#!/usr/bin/env bash
# Fails when the generated Go code under pkg/rpc differs from what
# hack/update-proto.sh produces from proto/. It regenerates into a scratch
# copy of the tree, so the working tree is never modified.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

scratch="$(mktemp -d)"
trap 'rm -rf "${scratch}"' EXIT
ebb::copy_tree "${scratch}"
bash "${scratch}/hack/update-proto.sh"

if ! diff -Naupr "${EBB_ROOT}/pkg/rpc" "${scratch}/pkg/rpc"; then
  echo "Generated protobuf code is out of date: run 'make generate' (hack/update-proto.sh) and commit the result." >&2
  exit 1
fi
echo "Generated protobuf code is up to date."
