#!/usr/bin/env bash
# make bench: runs ebb's benchmarks and writes docs/benchmarks.md.
#
# Two kinds:
#   - the e2e benchmarks on the local cluster (the tests named TestBench*,
#     which skip unless EBB_BENCH is set); each prints its figures as
#     "BENCH| name | figures |" lines, and the scale benchmark one
#     "BENCHROW| ... |" line per size for the cost table;
#   - the Go benchmarks of the hot paths (go test -bench, with allocations).
#
#   EBB_BENCH_SCALE=100,1000 make bench     # the scale benchmark's sizes
#   EBB_BENCH_OBJECTS=10000 make bench      # the webhook benchmark's sizes
#   EBB_BENCH_RUN='^TestBenchScale$' make bench   # one e2e benchmark
#   hack/bench.sh --from LOG...   # the report from saved e2e benchmark logs
#                                 # (go test -v output), without running them
#
# Figures depend on the machine and on what else runs on it; the report
# records both. CI does not run this (make test runs each benchmark once at
# a small size as a smoke test, see hack/test.sh).

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"
cd "${EBB_ROOT}"

bash hack/install-event-sources.sh redis-server
bash hack/build-cluster-bins.sh >/dev/null

out="$(mktemp)"
gobench="$(mktemp)"
trap 'rm -f "${out}" "${gobench}"' EXIT

run="${EBB_BENCH_RUN:-^TestBench}"
started="$(date +%s)"
from=""
if [[ "${1:-}" == "--from" ]]; then
  shift
  from="$*"
  [[ $# -gt 0 ]] || { echo "usage: hack/bench.sh --from LOG..." >&2; exit 2; }
  cat "$@" > "${out}"
  e2e_status=0
else
  EBB_BENCH=1 go test -C e2e -run "${run}" -v -count=1 -timeout 180m . 2>&1 | tee "${out}"
  e2e_status="${PIPESTATUS[0]}"
fi

echo ">> Go benchmarks"
{
  go test -C services/operator -run '^$' -bench . -benchmem -count=1 ./internal/metricsserver/ ./internal/poller/
  go test -C services/metrics-apiserver -run '^$' -bench . -benchmem -count=1 ./internal/...
} 2>&1 | tee "${gobench}"
elapsed=$(( $(date +%s) - started ))

load="$(cut -d' ' -f1-3 /proc/loadavg)"
report="docs/benchmarks.md"
{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` (hack/bench.sh) on $(date -u +%Y-%m-%d) at ebb $(git describe --tags --always --dirty 2>/dev/null || echo unknown):"
  echo "$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)),"
  echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), Linux $(uname -r);"
  echo "the local cluster of e2e/cluster: etcd 3.6, kube-apiserver and kube-controller-manager v1.36.3"
  echo "(HPA controller at its default 15 s sync period in the scale benchmark), no kubelet but ebb's node agent where pods must run."
  if [[ -n "${from}" ]]; then
    echo "Each figure is one run; other work shared the machine during the e2e runs (their load average is in each line where it matters)."
  else
    echo "Each figure is one run; other work may have shared the machine (load average at the end: ${load}; the run took ${elapsed} s)."
  fi
  echo
  echo "What the figures mean, how they are taken, and KEDA's figures on the same kind of"
  echo "machine for comparison: [benchmarks-method.md](benchmarks-method.md)."
  echo
  if grep -q 'BENCHROW|' "${out}"; then
    echo "## How cost grows with the number of ScaledObjects"
    echo
    echo "| ScaledObjects | created in | all Ready with HPAs, after the last create | settled (last status change), after the last create | operator requests per new ScaledObject | steady-state operator requests/s | operator RSS | Go heap in use | goroutines | CPU (cores) | activation 0→1 p99 |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    grep -o 'BENCHROW| .*' "${out}" | sed 's/^BENCHROW| /| /'
    echo
  fi
  echo "## e2e benchmarks"
  echo
  echo "| benchmark | figures |"
  echo "|---|---|"
  grep -o 'BENCH| .*' "${out}" | sed 's/^BENCH| /| /'
  echo
  echo "## Go benchmarks"
  echo
  echo '```'
  grep -E '^(Benchmark|goos|goarch|pkg|cpu)' "${gobench}" || true
  echo '```'
  echo
  echo "## Reproduce"
  echo
  echo "- everything: \`make bench\`"
  echo "- one e2e benchmark: \`EBB_BENCH=1 go test -C e2e -run '^TestBenchScale\$' -v -timeout 120m .\`"
  echo "  (\`TestBenchWebhookAdmission\`, \`TestBenchMetricsReadPath\` likewise);"
  echo "  \`EBB_BENCH_SCALE=100,1000,10000\` sets the scale benchmark's sizes,"
  echo "  \`EBB_BENCH_PROFILE=<dir>\` saves the operator's CPU and heap profiles from it"
  echo "- the Go benchmarks: \`go test -C services/operator -run '^\$' -bench . -benchmem ./internal/metricsserver/ ./internal/poller/\`"
} > "${report}"
echo "Wrote ${report}"
exit "${e2e_status}"
