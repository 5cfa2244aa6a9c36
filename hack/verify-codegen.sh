#!/usr/bin/env bash
# Fails when the generated code or CRDs in the tree differ from what
# hack/update-codegen.sh produces. It regenerates into a scratch copy of the
# tree, so the working tree is never modified.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"

scratch="$(mktemp -d)"
trap 'rm -rf "${scratch}"' EXIT
ebb::copy_tree "${scratch}"
bash "${scratch}/hack/update-codegen.sh" >/dev/null

status=0
for dir in pkg/apis pkg/client deploy/crds; do
  if ! diff -Naupr "${EBB_ROOT}/${dir}" "${scratch}/${dir}"; then
    status=1
  fi
done
if [[ ${status} -ne 0 ]]; then
  echo "Generated code is out of date: run 'make generate' (hack/update-codegen.sh) and commit the result." >&2
  exit 1
fi
echo "Generated code and CRDs are up to date."
