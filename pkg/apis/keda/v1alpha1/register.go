package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda"
)

// SchemeGroupVersion is the group and version of every type in this package.
var SchemeGroupVersion = schema.GroupVersion{Group: keda.GroupName, Version: "v1alpha1"}

// Kind qualifies an unqualified kind, such as "ScaledObject", with the
// keda.sh group.
func Kind(kind string) schema.GroupKind {
	return SchemeGroupVersion.WithKind(kind).GroupKind()
}

// Resource qualifies an unqualified resource, such as "scaledobjects", with
// the keda.sh group.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

var (
	// SchemeBuilder collects the functions that add this package's types to
	// a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme registers the keda.sh/v1alpha1 kinds and their lists with
	// a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers the four kinds, their lists, and the meta/v1
// option types (ListOptions, GetOptions, ...) under keda.sh/v1alpha1.
func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&ScaledObject{},
		&ScaledObjectList{},
		&ScaledJob{},
		&ScaledJobList{},
		&TriggerAuthentication{},
		&TriggerAuthenticationList{},
		&ClusterTriggerAuthentication{},
		&ClusterTriggerAuthenticationList{},
	)
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
