// +k8s:deepcopy-gen=package
// +groupName=keda.sh

// Package v1alpha1 holds the keda.sh/v1alpha1 API types served by ebb:
// ScaledObject, ScaledJob, TriggerAuthentication and
// ClusterTriggerAuthentication. They are field-for-field JSON-compatible
// with KEDA v2.21, so a manifest accepted by KEDA decodes into these types
// and encodes back to the same document.
package v1alpha1
