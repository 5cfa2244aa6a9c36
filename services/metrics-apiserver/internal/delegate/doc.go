// Package delegate forwards the external metric requests that are not ebb's
// to another external metrics adapter.
//
// Only one APIService can serve v1beta1.external.metrics.k8s.io in a
// cluster. With a delegate, ebb's metrics-apiserver holds that APIService
// and passes every request whose selector names no ScaledObject, or whose
// metric name is not one of ebb's, to the other adapter (for example a
// Prometheus adapter), so both serve one cluster.
package delegate
