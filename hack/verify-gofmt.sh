#!/usr/bin/env bash
# Fails when any Go file in the repository is not gofmt-formatted.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"
cd "${EBB_ROOT}"

echo ">> gofmt"
unformatted="$(git ls-files --cached --others --exclude-standard -- '*.go' | xargs -r gofmt -l)"
if [[ -n "${unformatted}" ]]; then
  echo "These files are not gofmt-formatted (run 'gofmt -w' on them):" >&2
  echo "${unformatted}" >&2
  exit 1
fi
