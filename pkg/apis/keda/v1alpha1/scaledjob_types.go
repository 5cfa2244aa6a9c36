package v1alpha1

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=scaledjobs,scope=Namespaced,shortName=sj
// +kubebuilder:printcolumn:name="Min",type="integer",JSONPath=".spec.minReplicaCount"
// +kubebuilder:printcolumn:name="Max",type="integer",JSONPath=".spec.maxReplicaCount"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
// +kubebuilder:printcolumn:name="Active",type="string",JSONPath=".status.conditions[?(@.type==\"Active\")].status"
// +kubebuilder:printcolumn:name="Paused",type="string",JSONPath=".status.conditions[?(@.type==\"Paused\")].status"
// +kubebuilder:printcolumn:name="Triggers",type="string",JSONPath=".status.triggersTypes"
// +kubebuilder:printcolumn:name="Authentications",type="string",JSONPath=".status.authenticationsTypes"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// ScaledJob runs Kubernetes Jobs from a template as events arrive: at each
// polling interval ebb creates as many Jobs as the triggers' pending work
// calls for, within the configured bounds.
type ScaledJob struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says which Job to run and on which triggers.
	// +optional
	Spec ScaledJobSpec `json:"spec,omitempty"`
	// Status is written by the ebb operator.
	// +optional
	Status ScaledJobStatus `json:"status,omitempty,omitzero"`
}

// ScaledJobSpec is the desired state of a ScaledJob.
type ScaledJobSpec struct {
	// JobTargetRef is the spec of the Jobs to create.
	// +required
	JobTargetRef *batchv1.JobSpec `json:"jobTargetRef"`
	// PollingInterval is how often, in seconds, the triggers are checked.
	// Defaults to 30.
	// +optional
	// +kubebuilder:validation:Minimum=1
	PollingInterval *int32 `json:"pollingInterval,omitempty"`
	// SuccessfulJobsHistoryLimit is how many finished Jobs to keep.
	// Defaults to 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	SuccessfulJobsHistoryLimit *int32 `json:"successfulJobsHistoryLimit,omitempty"`
	// FailedJobsHistoryLimit is how many failed Jobs to keep. Defaults to
	// 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	FailedJobsHistoryLimit *int32 `json:"failedJobsHistoryLimit,omitempty"`
	// RolloutStrategy is the older spelling of rollout.strategy.
	//
	// Deprecated: use rollout.strategy.
	// +optional
	// +kubebuilder:validation:Enum=gradual;immediate
	RolloutStrategy string `json:"rolloutStrategy,omitempty"`
	// Rollout says what happens to running Jobs when the ScaledJob changes.
	// An empty object, which KEDA writes back when the field is unset,
	// means the defaults.
	// +optional
	Rollout *Rollout `json:"rollout,omitempty"`
	// EnvSourceContainerName is the container of the Job template whose
	// environment supplies trigger parameters read from env. Defaults to
	// the first container.
	// +optional
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
	// MinReplicaCount is the number of Jobs kept running even with no
	// pending work. Defaults to 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
	// MaxReplicaCount caps the number of Jobs running at once. Defaults to
	// 100.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
	// ScalingStrategy says how many Jobs to create from the pending work
	// and the Jobs already running. An empty object, which KEDA writes back
	// when the field is unset, means the defaults.
	// +optional
	ScalingStrategy *ScalingStrategy `json:"scalingStrategy,omitempty"`
	// Triggers are the event sources whose pending work creates Jobs.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	Triggers []ScaleTrigger `json:"triggers"`
}

// Rollout says what happens to a ScaledJob's running Jobs when the
// ScaledJob is updated.
type Rollout struct {
	// Strategy is immediate (the default: Jobs created from an older
	// generation of the ScaledJob are deleted when it changes) or gradual
	// (they run to completion while new Jobs use the new spec).
	// +optional
	// +kubebuilder:validation:Enum=gradual;immediate
	Strategy string `json:"strategy,omitempty"`
	// PropagationPolicy is the deletion propagation used when an immediate
	// rollout deletes Jobs: background (the default) or foreground.
	// +optional
	// +kubebuilder:validation:Enum=foreground;background
	PropagationPolicy string `json:"propagationPolicy,omitempty"`
}

// ScalingStrategy tunes how many Jobs a ScaledJob creates.
type ScalingStrategy struct {
	// Strategy is default, custom, accurate or eager.
	// +optional
	// +kubebuilder:validation:Enum=default;custom;accurate;eager
	Strategy string `json:"strategy,omitempty"`
	// CustomScalingQueueLengthDeduction is subtracted from the pending work
	// by the custom strategy.
	// +optional
	CustomScalingQueueLengthDeduction *int32 `json:"customScalingQueueLengthDeduction,omitempty"`
	// CustomScalingRunningJobPercentage is the share of running Jobs, as a
	// decimal string such as "0.5", that the custom strategy counts as
	// already handling pending work.
	// +optional
	CustomScalingRunningJobPercentage string `json:"customScalingRunningJobPercentage,omitempty"`
	// PendingPodConditions are the Pod condition types that must all be
	// true before a Job's Pod stops counting as pending.
	// +optional
	// +listType=atomic
	PendingPodConditions []string `json:"pendingPodConditions,omitempty"`
	// MultipleScalersCalculation combines the triggers' pending work: max
	// (the default), min, avg or sum.
	// +optional
	// +kubebuilder:validation:Enum=min;avg;sum;max
	MultipleScalersCalculation string `json:"multipleScalersCalculation,omitempty"`
}

// ScaledJobStatus is the observed state of a ScaledJob, written by the ebb
// operator.
type ScaledJobStatus struct {
	// LastActiveTime is when a trigger was last seen active.
	// +optional
	LastActiveTime *metav1.Time `json:"lastActiveTime,omitempty"`
	// Conditions are Ready, Active, Fallback and Paused.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions Conditions `json:"conditions,omitempty"`
	// Paused is "true" while the ScaledJob is paused. The capitalised JSON
	// name is KEDA's and is kept for compatibility.
	// +optional
	Paused string `json:"Paused,omitempty"`
	// TriggersTypes lists the triggers' types, comma-separated.
	// +optional
	TriggersTypes *string `json:"triggersTypes,omitempty"`
	// AuthenticationsTypes lists the triggers' authentication objects,
	// comma-separated.
	// +optional
	AuthenticationsTypes *string `json:"authenticationsTypes,omitempty"`
	// ExternalMetricNames are the names of the triggers' metrics, in
	// trigger order.
	// +optional
	// +listType=atomic
	ExternalMetricNames []string `json:"externalMetricNames,omitempty"`
	// TriggersActivity records, per metric name, whether the trigger behind
	// it is active.
	// +optional
	TriggersActivity map[string]TriggerActivityStatus `json:"triggersActivity,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// ScaledJobList is a list of ScaledJobs.
type ScaledJobList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []ScaledJob `json:"items"`
}
