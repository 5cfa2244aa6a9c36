#!/usr/bin/env bash
# make bench: runs the benchmarks on the local cluster (the e2e tests named
# TestBench*, which skip unless EBB_BENCH is set) and writes their BENCH
# lines into docs/benchmarks.md with the machine they ran on.
#
#   EBB_BENCH_OBJECTS=1000 make bench   # a quicker run at a smaller N

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"
cd "${EBB_ROOT}"

bash hack/install-event-sources.sh
bash hack/build-cluster-bins.sh >/dev/null

out="$(mktemp)"
trap 'rm -f "${out}"' EXIT
EBB_BENCH=1 go test -C e2e -run '^TestBench' -v -count=1 -timeout 90m . 2>&1 | tee "${out}"

report="docs/benchmarks.md"
{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` (hack/bench.sh) on $(date -u +%Y-%m-%d): $(nproc) cores,"
  echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3),"
  echo "the local cluster of e2e/cluster (kube-apiserver and kube-controller-manager v1.36.3)."
  echo "Other work may have shared the machine; each figure is one run."
  echo
  echo "| benchmark | figures |"
  echo "|---|---|"
  grep -o 'BENCH| .*' "${out}" | sed 's/^BENCH| /| /'
  echo
  echo "Reproduce one: \`EBB_BENCH=1 go test -C e2e -run '^TestBenchWebhookAdmission\$' -v .\`"
  echo "(\`EBB_BENCH_OBJECTS\` sets the number of objects; 10,000 by default)."
} > "${report}"
echo "Wrote ${report}"
