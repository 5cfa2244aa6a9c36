#!/usr/bin/env bash
# make up: the whole system on the local cluster, and a demo.
#
#  1. builds ebb's three binaries and the cluster's (cached after the first run);
#  2. starts the local cluster with cert-manager and the harness's node, which
#     runs the charts' images as these binaries in their own network namespaces;
#  3. installs the three Helm charts into ebb-system, as a user would;
#  4. applies deploy/demo/demo.yaml (Redis, a worker Deployment at zero and a
#     KEDA ScaledObject), pushes 20 items into the Redis list and shows the
#     worker scale from 0 to 4 through ebb and the HPA, and the metric as
#     `kubectl get --raw` reads it.
#
# The cluster keeps running; `make down` stops it.

source "$(dirname "${BASH_SOURCE[0]}")/lib/init.sh"
cd "${EBB_ROOT}"

state_dir="${EBB_ROOT}/.ebb"
bin_dir="${EBB_ROOT}/bin"

echo ">> building ebb"
mkdir -p "${bin_dir}"
for svc in operator webhook metrics-apiserver; do
  go build -o "${bin_dir}/ebb-${svc}" "./services/${svc}"
done
go build -o "${bin_dir}/ebb-cluster" ./e2e/cmd/ebb-cluster

echo ">> the event source and the cluster's binaries"
bash hack/install-event-sources.sh redis-server
bins="$(bash hack/build-cluster-bins.sh)"
helm="$(sed -n 's/^helm=//p' <<<"${bins}")"
kubectl="$(sed -n 's/^kubectl=//p' <<<"${bins}")"
redis_server="$(command -v redis-server)"
redis_cli="$(command -v redis-cli)"

echo ">> starting the local cluster"
"${bin_dir}/ebb-cluster" up --detach --state-dir "${state_dir}" \
  --image "ghcr.io/ebb-autoscaler/ebb-operator=${bin_dir}/ebb-operator" \
  --image "ghcr.io/ebb-autoscaler/ebb-webhook=${bin_dir}/ebb-webhook" \
  --image "ghcr.io/ebb-autoscaler/ebb-metrics-apiserver=${bin_dir}/ebb-metrics-apiserver" \
  --image "docker.io/library/redis=${redis_server}"
export KUBECONFIG="${state_dir}/kubeconfig"
k() { "${kubectl}" "$@"; }

echo ">> installing the charts"
"${helm}" upgrade --install ebb-operator deploy/charts/ebb-operator \
  --namespace ebb-system --create-namespace --set certManager.createCA=true --wait --timeout 5m
"${helm}" upgrade --install ebb-webhook deploy/charts/ebb-webhook \
  --namespace ebb-system --wait --timeout 5m
"${helm}" upgrade --install ebb-metrics-apiserver deploy/charts/ebb-metrics-apiserver \
  --namespace ebb-system --wait --timeout 5m
k wait --for=condition=Available apiservice/v1beta1.external.metrics.k8s.io --timeout=3m

echo ">> the demo"
k apply -f deploy/demo/demo.yaml
k -n ebb-demo rollout status deployment/redis --timeout=3m
k -n ebb-demo wait --for=condition=Ready scaledobject/worker --timeout=3m
redis_ip="$(k -n ebb-demo get pods -l app=redis -o jsonpath='{.items[0].status.podIP}')"
"${redis_cli}" -h "${redis_ip}" del jobs >/dev/null
"${redis_cli}" -h "${redis_ip}" rpush jobs $(seq 1 20) >/dev/null
echo "Pushed 20 items into the Redis list 'jobs' (${redis_ip}:6379); one worker per 5 items"
k -n ebb-demo wait --for=jsonpath='{.spec.replicas}'=4 deployment/worker --timeout=3m
echo
k -n ebb-demo get scaledobject,hpa,deployment
echo
k get --raw "/apis/external.metrics.k8s.io/v1beta1/namespaces/ebb-demo/s0-redis-jobs?labelSelector=scaledobject.keda.sh%2Fname%3Dworker"
echo
cat <<MSG

ebb is running: the three services in ebb-system, installed by Helm.
  export KUBECONFIG=${state_dir}/kubeconfig
  ${kubectl} -n ebb-demo get scaledobject,hpa,deployment -w
  ${redis_cli} -h ${redis_ip} del jobs     # the worker goes back to 0 after the cooldown (30 s)
  make down                               # stops everything
MSG
