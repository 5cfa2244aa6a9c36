package app

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebb-autoscaler/ebb/services/operator/app/options"
)

// TestSlimRefMetadata checks that a cached Secret keeps its identity and
// resourceVersion only: kubectl's last-applied-configuration annotation
// holds the data of a Secret applied with kubectl.
func TestSlimRefMetadata(t *testing.T) {
	in := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: "redis-auth", UID: "u1", ResourceVersion: "42", Generation: 3,
			Labels:          map[string]string{"app": "shop"},
			Annotations:     map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"password":"czNjcjN0"}}`},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			OwnerReferences: []metav1.OwnerReference{{Name: "owner"}},
			Finalizers:      []string{"f"},
		},
	}
	out, err := slimRefMetadata(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &metav1.PartialObjectMetadata{
		TypeMeta:   in.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "redis-auth", UID: "u1", ResourceVersion: "42"},
	}
	got, ok := out.(*metav1.PartialObjectMetadata)
	if !ok || got.String() != want.String() {
		t.Errorf("slimRefMetadata() = %v, want %v", out, want)
	}
}

func TestRefNamespaces(t *testing.T) {
	for _, tc := range []struct {
		watch, cluster string
		want           []string
	}{
		{"", "ebb-system", []string{""}},
		{"team-a", "ebb-system", []string{"team-a", "ebb-system"}},
		{"team-a", "team-a", []string{"team-a"}},
	} {
		got := refNamespaces(&options.Config{WatchNamespace: tc.watch, ClusterObjectNamespace: tc.cluster})
		if !slices.Equal(got, tc.want) {
			t.Errorf("refNamespaces(watch %q, cluster %q) = %q, want %q", tc.watch, tc.cluster, got, tc.want)
		}
	}
}
