package v1alpha1

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestAddToScheme(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		obj  runtime.Object
		kind string
	}{
		"ScaledObject":                     {obj: &ScaledObject{}, kind: "ScaledObject"},
		"ScaledObjectList":                 {obj: &ScaledObjectList{}, kind: "ScaledObjectList"},
		"ScaledJob":                        {obj: &ScaledJob{}, kind: "ScaledJob"},
		"ScaledJobList":                    {obj: &ScaledJobList{}, kind: "ScaledJobList"},
		"TriggerAuthentication":            {obj: &TriggerAuthentication{}, kind: "TriggerAuthentication"},
		"TriggerAuthenticationList":        {obj: &TriggerAuthenticationList{}, kind: "TriggerAuthenticationList"},
		"ClusterTriggerAuthentication":     {obj: &ClusterTriggerAuthentication{}, kind: "ClusterTriggerAuthentication"},
		"ClusterTriggerAuthenticationList": {obj: &ClusterTriggerAuthenticationList{}, kind: "ClusterTriggerAuthenticationList"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			gvks, _, err := scheme.ObjectKinds(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			want := schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: tc.kind}
			if len(gvks) != 1 || gvks[0] != want {
				t.Errorf("ObjectKinds = %v, want [%v]", gvks, want)
			}
		})
	}
	// The meta/v1 option types are registered too, as clients need them.
	if !scheme.Recognizes(SchemeGroupVersion.WithKind("ListOptions")) {
		t.Errorf("ListOptions is not registered for %s", SchemeGroupVersion)
	}
}

func TestKindAndResource(t *testing.T) {
	if got, want := Kind("ScaledObject"), (schema.GroupKind{Group: "keda.sh", Kind: "ScaledObject"}); got != want {
		t.Errorf("Kind() = %v, want %v", got, want)
	}
	if got, want := Resource("scaledjobs"), (schema.GroupResource{Group: "keda.sh", Resource: "scaledjobs"}); got != want {
		t.Errorf("Resource() = %v, want %v", got, want)
	}
}

func TestGroupVersionKindResource(t *testing.T) {
	g := GroupVersionKindResource{Group: "apps", Version: "v1", Kind: "Deployment", Resource: "deployments"}
	if got, want := g.GVKString(), "apps/v1.Deployment"; got != want {
		t.Errorf("GVKString() = %q, want %q", got, want)
	}
	if got, want := g.GroupVersionKind(), (schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}); got != want {
		t.Errorf("GroupVersionKind() = %v, want %v", got, want)
	}
	if got, want := g.GroupResource(), (schema.GroupResource{Group: "apps", Resource: "deployments"}); got != want {
		t.Errorf("GroupResource() = %v, want %v", got, want)
	}
}
