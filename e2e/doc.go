// Package e2e holds ebb's end-to-end tests. They run against a real local
// control plane (etcd, kube-apiserver, kube-controller-manager with the HPA
// controller and garbage collector) and real cert-manager controllers, with
// the three services running as their charts deploy them. The suite is run
// by `make test` and, on its own, by `make e2e`.
package e2e
