// Package keda names the keda.sh API group that ebb serves. The group is
// KEDA's own, so manifests written for KEDA are served by ebb unchanged; the
// versioned types live in the v1alpha1 subpackage.
package keda
