package e2e

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// operatorRBAC is the committed expectation of the ebb-operator chart's
// RBAC: the least the operator needs, written out here so that a change
// to the chart's rules is a change to this file too. TestCharts checks the
// rendered ClusterRole against it. It runs nothing: the e2e tests run the
// operator with the RBAC the chart itself renders (applyChartRBAC).
func operatorRBAC() (*rbacv1.ClusterRole, *rbacv1.Role) {
	cluster := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "ebb-operator"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"keda.sh"}, Resources: []string{"scaledobjects", "scaledobjects/finalizers"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
			{APIGroups: []string{"keda.sh"}, Resources: []string{"scaledobjects/status"}, Verbs: []string{"get", "update", "patch"}},
			// ScaledJobs, and the Jobs they run.
			{APIGroups: []string{"keda.sh"}, Resources: []string{"scaledjobs", "scaledjobs/finalizers"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
			{APIGroups: []string{"keda.sh"}, Resources: []string{"scaledjobs/status"}, Verbs: []string{"get", "update", "patch"}},
			{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch", "create", "delete"}},
			{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
			{APIGroups: []string{"*"}, Resources: []string{"*/scale"}, Verbs: []string{"get", "update", "patch"}},
			{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			// Resolving triggers: authentication objects (informers, and
			// their status lists), the Secrets and ConfigMaps they name
			// (GET on resolution; list and watch of their metadata only,
			// to rebuild triggers when they change), and the target's
			// environment; the scale loop watches workloads' replicas.
			{APIGroups: []string{"keda.sh"}, Resources: []string{"triggerauthentications", "clustertriggerauthentications"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"keda.sh"}, Resources: []string{"triggerauthentications/status", "clustertriggerauthentications/status"}, Verbs: []string{"update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"secrets", "configmaps"}, Verbs: []string{"get", "list", "watch"}},
			// kubernetes-workload triggers count pods; the ScaledJob loop
			// watches its Jobs' pods.
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"get", "list", "watch"}},
			// The other built-in scalable kinds' replicas, from caches
			// (custom resources: rbac.extraTargetResources).
			{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"replicationcontrollers"}, Verbs: []string{"list", "watch"}},
		},
	}
	// Leader election: create cannot be limited to a name (the Lease does
	// not exist yet); get and update are limited to the Lease.
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "ebb-operator", Namespace: operatorNamespace},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"ebb-operator"}, Verbs: []string{"get", "update"}},
		},
	}
	return cluster, role
}
