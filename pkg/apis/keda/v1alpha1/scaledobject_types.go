package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=scaledobjects,scope=Namespaced,shortName=so
// +kubebuilder:selectablefield:JSONPath=".spec.scaleTargetRef.name"
// +kubebuilder:selectablefield:JSONPath=".spec.scaleTargetRef.kind"
// +kubebuilder:printcolumn:name="ScaleTargetKind",type="string",JSONPath=".status.scaleTargetKind"
// +kubebuilder:printcolumn:name="ScaleTargetName",type="string",JSONPath=".spec.scaleTargetRef.name"
// +kubebuilder:printcolumn:name="Min",type="integer",JSONPath=".spec.minReplicaCount"
// +kubebuilder:printcolumn:name="Max",type="integer",JSONPath=".spec.maxReplicaCount"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
// +kubebuilder:printcolumn:name="Active",type="string",JSONPath=".status.conditions[?(@.type==\"Active\")].status"
// +kubebuilder:printcolumn:name="Fallback",type="string",JSONPath=".status.conditions[?(@.type==\"Fallback\")].status"
// +kubebuilder:printcolumn:name="Paused",type="string",JSONPath=".status.conditions[?(@.type==\"Paused\")].status"
// +kubebuilder:printcolumn:name="Triggers",type="string",JSONPath=".status.triggersTypes"
// +kubebuilder:printcolumn:name="Authentications",type="string",JSONPath=".status.authenticationsTypes"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// ScaledObject autoscales a workload that has a /scale subresource
// (a Deployment, a StatefulSet or a custom resource) from the events its
// triggers observe. ebb drives the workload between zero (or the idle
// replica count) and the minimum itself and owns a HorizontalPodAutoscaler
// that scales it between minimum and maximum on the triggers' metrics.
type ScaledObject struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says what to scale, within which bounds, and on which triggers.
	// +required
	Spec ScaledObjectSpec `json:"spec"`
	// Status is written by the ebb operator.
	// +optional
	Status ScaledObjectStatus `json:"status,omitempty,omitzero"`
}

// ScaledObjectSpec is the desired state of a ScaledObject.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)",message="minReplicaCount must not be greater than maxReplicaCount (maxReplicaCount is 100 when not set)",fieldPath=".minReplicaCount"
type ScaledObjectSpec struct {
	// ScaleTargetRef names the workload to scale. It must live in the
	// ScaledObject's namespace and have a /scale subresource.
	// +required
	ScaleTargetRef *ScaleTarget `json:"scaleTargetRef"`
	// PollingInterval is how often, in seconds, the triggers are checked
	// for activity. Defaults to 30.
	// +optional
	// +kubebuilder:validation:Minimum=1
	PollingInterval *int32 `json:"pollingInterval,omitempty"`
	// InitialCooldownPeriod is how long, in seconds, after the ScaledObject
	// is created before the workload may be scaled to zero. Defaults to 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	InitialCooldownPeriod *int32 `json:"initialCooldownPeriod,omitempty"`
	// CooldownPeriod is how long, in seconds, after the last trigger was
	// active before the workload is scaled to zero (or to
	// idleReplicaCount). It does not affect scaling between minimum and
	// maximum, which the HPA's behavior governs. Defaults to 300.
	// +optional
	// +kubebuilder:validation:Minimum=0
	CooldownPeriod *int32 `json:"cooldownPeriod,omitempty"`
	// IdleReplicaCount is the replica count used while no trigger is
	// active. It must be lower than minReplicaCount; typically 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	IdleReplicaCount *int32 `json:"idleReplicaCount,omitempty"`
	// MinReplicaCount is the lowest replica count. Defaults to 0, which
	// lets the workload scale to zero.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
	// MaxReplicaCount is the highest replica count, passed to the HPA as
	// maxReplicas. Defaults to 100.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
	// Advanced holds HPA tuning, scaling modifiers, and what to do with
	// the workload when the ScaledObject is deleted.
	// +optional
	Advanced *AdvancedConfig `json:"advanced,omitempty"`
	// Triggers are the event sources the workload scales on; each yields
	// one metric of the HPA.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	Triggers []ScaleTrigger `json:"triggers"`
	// Fallback sets the replica count to use while triggers keep failing.
	// +optional
	Fallback *Fallback `json:"fallback,omitempty"`
}

// ScaleTarget points at the workload a ScaledObject scales.
type ScaleTarget struct {
	// Name of the workload.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// APIVersion of the workload. Defaults to apps/v1.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the workload. Defaults to Deployment.
	// +optional
	Kind string `json:"kind,omitempty"`
	// EnvSourceContainerName is the container whose environment supplies
	// trigger parameters read from env. Defaults to the first container.
	// +optional
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

// AdvancedConfig holds the less common ScaledObject settings.
type AdvancedConfig struct {
	// HorizontalPodAutoscalerConfig customises the HPA that ebb creates.
	// +optional
	HorizontalPodAutoscalerConfig *HorizontalPodAutoscalerConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
	// RestoreToOriginalReplicaCount, when true, scales the workload back to
	// the replica count it had before the ScaledObject took it over when the
	// ScaledObject is deleted. When false the workload keeps its current
	// replica count.
	// +optional
	RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
	// ScalingModifiers combines the triggers' metrics into one composite
	// metric with a formula. An empty object, which KEDA writes back when
	// the field is unset, means no modifiers.
	// +optional
	ScalingModifiers *ScalingModifiers `json:"scalingModifiers,omitempty"`
}

// HorizontalPodAutoscalerConfig customises the HPA built for a ScaledObject.
type HorizontalPodAutoscalerConfig struct {
	// Behavior is copied verbatim into the HPA's spec.behavior.
	// +optional
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
	// Name of the HPA. Defaults to keda-hpa-<ScaledObject name>.
	// +optional
	Name string `json:"name,omitempty"`
}

// ScalingModifiers replaces the triggers' external metrics with a single
// composite metric computed by a formula over them.
// +kubebuilder:validation:XValidation:rule="!has(self.metricType) || self.metricType != 'Utilization'",message="scalingModifiers.metricType cannot be Utilization: the composite metric is an external metric, use AverageValue or Value",fieldPath=".metricType"
type ScalingModifiers struct {
	// Formula is an expression over the named triggers' metric values, for
	// example "(trig_one + trig_two) / 2".
	// +optional
	Formula string `json:"formula,omitempty"`
	// Target is the target value of the composite metric.
	// +optional
	Target string `json:"target,omitempty"`
	// ActivationTarget is the value the composite metric must exceed for
	// the workload to scale up from zero. Defaults to 0.
	// +optional
	ActivationTarget string `json:"activationTarget,omitempty"`
	// MetricType is the HPA target type of the composite metric:
	// AverageValue (the default) or Value.
	// +optional
	// +kubebuilder:validation:Enum=AverageValue;Value
	MetricType autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

// Fallback is the replica count to hold while the triggers' metrics cannot
// be read.
type Fallback struct {
	// FailureThreshold is the number of consecutive failed reads of a
	// trigger after which the fallback applies.
	// +required
	// +kubebuilder:validation:Minimum=0
	FailureThreshold int32 `json:"failureThreshold"`
	// Replicas is the replica count used while the fallback applies (for
	// the static behavior, and as the bound of the conditional ones).
	// +required
	// +kubebuilder:validation:Minimum=0
	Replicas int32 `json:"replicas"`
	// Behavior chooses how the fallback replica count is computed: static
	// (use replicas), currentReplicas (keep the current count),
	// currentReplicasIfHigher, currentReplicasIfLower, or scalingModifiers
	// (the formula sees failing triggers as nil and decides; when it yields
	// nil, replicas times the scaling modifiers' target is used).
	// +optional
	// +kubebuilder:default=static
	// +kubebuilder:validation:Enum=static;currentReplicas;currentReplicasIfHigher;currentReplicasIfLower;scalingModifiers
	Behavior string `json:"behavior,omitempty"`
}

// ScaleTrigger is one event source of a ScaledObject or a ScaledJob.
type ScaleTrigger struct {
	// Type of the scaler, such as prometheus, redis, cron or cpu.
	// +required
	// +kubebuilder:validation:MinLength=1
	Type string `json:"type"`
	// Name of the trigger, unique within the object. Scaling modifier
	// formulas refer to triggers by name.
	// +optional
	Name string `json:"name,omitempty"`
	// UseCachedMetrics answers the HPA's metric requests from the value read
	// at the last polling interval instead of querying the event source on
	// every request. Not supported by cpu, memory and cron triggers.
	// +optional
	UseCachedMetrics bool `json:"useCachedMetrics,omitempty"`
	// Metadata is the scaler's configuration; its keys depend on the type.
	// +required
	Metadata map[string]string `json:"metadata"`
	// AuthenticationRef names the TriggerAuthentication or
	// ClusterTriggerAuthentication that supplies the scaler's credentials.
	// +optional
	AuthenticationRef *AuthenticationRef `json:"authenticationRef,omitempty"`
	// MetricType is the HPA target type of this trigger's metric:
	// AverageValue (the default), Value, or Utilization (cpu and memory
	// only).
	// +optional
	MetricType autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

// AuthenticationRef points at a TriggerAuthentication in the same namespace,
// or at a ClusterTriggerAuthentication.
type AuthenticationRef struct {
	// Name of the authentication object.
	// +required
	Name string `json:"name"`
	// Kind of the authentication object: TriggerAuthentication (the
	// default) or ClusterTriggerAuthentication.
	// +optional
	// +kubebuilder:validation:Enum=TriggerAuthentication;ClusterTriggerAuthentication
	Kind string `json:"kind,omitempty"`
}

// ScaledObjectStatus is the observed state of a ScaledObject, written by
// the ebb operator.
type ScaledObjectStatus struct {
	// ScaleTargetKind is the resolved kind of the workload, as
	// "<group>/<version>.<kind>" (for example "apps/v1.Deployment").
	// +optional
	ScaleTargetKind string `json:"scaleTargetKind,omitempty"`
	// ScaleTargetGVKR is the resolved group, version, kind and resource of
	// the workload.
	// +optional
	ScaleTargetGVKR *GroupVersionKindResource `json:"scaleTargetGVKR,omitempty"`
	// OriginalReplicaCount is the workload's replica count before the
	// ScaledObject took it over.
	// +optional
	OriginalReplicaCount *int32 `json:"originalReplicaCount,omitempty"`
	// LastActiveTime is when a trigger was last seen active.
	// +optional
	LastActiveTime *metav1.Time `json:"lastActiveTime,omitempty"`
	// ExternalMetricNames are the names of the external metrics the HPA
	// reads, in trigger order.
	// +optional
	// +listType=atomic
	ExternalMetricNames []string `json:"externalMetricNames,omitempty"`
	// ResourceMetricNames are the resources (cpu, memory) of the HPA's
	// resource metrics.
	// +optional
	// +listType=atomic
	ResourceMetricNames []string `json:"resourceMetricNames,omitempty"`
	// CompositeScalerName is the name of the composite metric used when
	// scaling modifiers are set.
	// +optional
	CompositeScalerName string `json:"compositeScalerName,omitempty"`
	// Conditions are Ready, Active, Fallback and Paused, and HPAActive once
	// the HPA exists.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions Conditions `json:"conditions,omitempty"`
	// Health records, per external metric name, how reads of the trigger
	// behind it are going; it drives the fallback.
	// +optional
	Health map[string]HealthStatus `json:"health,omitempty"`
	// TriggersActivity records, per external metric name, whether the
	// trigger behind it is active.
	// +optional
	TriggersActivity map[string]TriggerActivityStatus `json:"triggersActivity,omitempty"`
	// PausedReplicaCount is the replica count the workload was paused at,
	// from the autoscaling.keda.sh/paused-replicas annotation.
	// +optional
	PausedReplicaCount *int32 `json:"pausedReplicaCount,omitempty"`
	// HpaName is the name of the HPA owned by the ScaledObject.
	// +optional
	HpaName string `json:"hpaName,omitempty"`
	// TriggersTypes lists the triggers' types, comma-separated.
	// +optional
	TriggersTypes *string `json:"triggersTypes,omitempty"`
	// AuthenticationsTypes lists the triggers' authentication objects,
	// comma-separated.
	// +optional
	AuthenticationsTypes *string `json:"authenticationsTypes,omitempty"`
}

// GroupVersionKindResource identifies a resource type by group, version,
// kind and plural resource name.
type GroupVersionKindResource struct {
	// +required
	Group string `json:"group"`
	// +required
	Version string `json:"version"`
	// +required
	Kind string `json:"kind"`
	// +required
	Resource string `json:"resource"`
}

// GroupVersionKind returns the group, version and kind.
func (g GroupVersionKindResource) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: g.Group, Version: g.Version, Kind: g.Kind}
}

// GroupResource returns the group and resource.
func (g GroupVersionKindResource) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: g.Group, Resource: g.Resource}
}

// GVKString formats the group, version and kind as
// "<group>/<version>.<kind>", the form of status.scaleTargetKind.
func (g GroupVersionKindResource) GVKString() string {
	return g.Group + "/" + g.Version + "." + g.Kind
}

// HealthStatus counts consecutive failed reads of one trigger.
type HealthStatus struct {
	// NumberOfFailures is the number of consecutive failed reads.
	// +optional
	NumberOfFailures *int32 `json:"numberOfFailures,omitempty"`
	// Status is Happy or Failing.
	// +optional
	Status HealthStatusType `json:"status,omitempty"`
}

// HealthStatusType says whether reads of a trigger succeed.
type HealthStatusType string

// TriggerActivityStatus says whether one trigger is active.
type TriggerActivityStatus struct {
	// IsActive is true while the trigger's activation threshold is exceeded.
	// It is always written, false included.
	// +optional
	IsActive bool `json:"isActive"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// ScaledObjectList is a list of ScaledObjects.
type ScaledObjectList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []ScaledObject `json:"items"`
}
