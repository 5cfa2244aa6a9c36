package v1alpha1

// Kinds served under keda.sh/v1alpha1.
const (
	ScaledObjectKind                 = "ScaledObject"
	ScaledJobKind                    = "ScaledJob"
	TriggerAuthenticationKind        = "TriggerAuthentication"
	ClusterTriggerAuthenticationKind = "ClusterTriggerAuthentication"
)

// Annotations read from ScaledObjects and ScaledJobs. The names are KEDA's,
// so manifests that use them behave the same under ebb.
const (
	// PausedAnnotation, when "true", stops scaling and leaves the target at
	// its current replica count. On a ScaledObject the HPA is removed while
	// paused.
	PausedAnnotation = "autoscaling.keda.sh/paused"
	// PausedReplicasAnnotation scales the target to the given replica count
	// and then stops scaling. It takes precedence over PausedAnnotation.
	PausedReplicasAnnotation = "autoscaling.keda.sh/paused-replicas"
	// PausedScaleInAnnotation, when "true", blocks scaling in: the HPA's
	// scaleDown policy is Disabled and the target is not scaled to zero or
	// to the idle count.
	PausedScaleInAnnotation = "autoscaling.keda.sh/paused-scale-in"
	// PausedScaleOutAnnotation, when "true", blocks scaling out: the HPA's
	// scaleUp policy is Disabled and the target is not scaled from zero.
	PausedScaleOutAnnotation = "autoscaling.keda.sh/paused-scale-out"
	// ForceActivationAnnotation, when "true", treats the ScaledObject as
	// active whatever its triggers report.
	ForceActivationAnnotation = "autoscaling.keda.sh/force-activation"
	// TransferHPAOwnershipAnnotation, when "true", lets a ScaledObject adopt
	// an existing HPA on its target whose name equals
	// spec.advanced.horizontalPodAutoscalerConfig.name.
	TransferHPAOwnershipAnnotation = "scaledobject.keda.sh/transfer-hpa-ownership"
	// HPAOwnershipValidationAnnotation, when "false", turns off the
	// admission check that denies a ScaledObject whose target already has
	// an HPA it does not own.
	HPAOwnershipValidationAnnotation = "validations.keda.sh/hpa-ownership"
	// HPAExcludedLabelsAnnotation lists, comma-separated, the ScaledObject
	// labels not to copy onto its HPA.
	HPAExcludedLabelsAnnotation = "scaledobject.keda.sh/hpa-excluded-labels"
	// JobExcludedLabelsAnnotation lists, comma-separated, the ScaledJob
	// labels not to copy onto its Jobs.
	JobExcludedLabelsAnnotation = "scaledjob.keda.sh/job-excluded-labels"
)

// Labels and annotations ebb writes on the objects it creates.
const (
	// ScaledObjectNameLabel carries the owning ScaledObject's name on its
	// HPA; it is also the matchLabels of the HPA's external metric
	// selectors.
	ScaledObjectNameLabel = "scaledobject.keda.sh/name"
	// ScaledJobNameLabel carries the owning ScaledJob's name on its Jobs
	// and their Pods.
	ScaledJobNameLabel = "scaledjob.keda.sh/name"
	// ScaledJobGenerationAnnotation records on each Job the generation of
	// the ScaledJob it was created from; an immediate rollout deletes Jobs
	// of older generations.
	ScaledJobGenerationAnnotation = "scaledjob.keda.sh/generation"
)

// Finalizer is set on ScaledObjects, ScaledJobs, TriggerAuthentications and
// ClusterTriggerAuthentications so ebb can clean up before they go. It is
// KEDA's finalizer, so objects created under KEDA are released by ebb.
const Finalizer = "finalizer.keda.sh"

// HPANamePrefix is prepended to a ScaledObject's name to name its HPA,
// unless spec.advanced.horizontalPodAutoscalerConfig.name is set.
const HPANamePrefix = "keda-hpa-"

// CompositeMetricName is the external metric that replaces the triggers'
// metrics when scaling modifiers are used.
const CompositeMetricName = "composite-metric"

// Defaults applied when the corresponding field is unset.
const (
	DefaultPollingInterval          int32 = 30
	DefaultCooldownPeriod           int32 = 300
	DefaultInitialCooldownPeriod    int32 = 0
	DefaultHPAMinReplicas           int32 = 1
	DefaultMaxReplicaCount          int32 = 100
	DefaultScaledJobMaxReplicas     int32 = 100
	DefaultJobsHistoryLimit         int32 = 100
	DefaultScaledJobMinReplicaCount int32 = 0
)

// Condition types.
const (
	// ConditionReady is True when the object is valid and being scaled.
	ConditionReady ConditionType = "Ready"
	// ConditionActive is True while at least one trigger is active.
	ConditionActive ConditionType = "Active"
	// ConditionFallback is True while the fallback replica count applies.
	ConditionFallback ConditionType = "Fallback"
	// ConditionPaused is True while scaling is paused by annotation.
	ConditionPaused ConditionType = "Paused"
	// ConditionHPAActive mirrors the HPA's ScalingActive condition. Only
	// ScaledObjects carry it, once their HPA exists.
	ConditionHPAActive ConditionType = "HPAActive"
)

// Condition reasons and messages shared with KEDA, so tooling that matches
// on them keeps working.
const (
	ScaledObjectReadyReason     = "ScaledObjectReady"
	ScaledObjectReadyMessage    = "ScaledObject is defined correctly and is ready for scaling"
	ScaledObjectPausedReason    = "ScaledObjectPaused"
	ScaledObjectPausedMessage   = "ScaledObject is paused"
	HPAActiveReason             = "HPAActive"
	HPAMetricsUnavailableReason = "HPAMetricsUnavailable"
	HPAScalingDisabledReason    = "ScalingDisabled"
	ScaledJobPausedReason       = "ScaledJobPaused"
	ScaledJobPausedMessage      = "ScaledJob is paused"
	ScaledJobUnpausedReason     = "ScaledJobUnpaused"
	ScaledJobUnpausedMessage    = "ScaledJob is unpaused"
)

// Values of HealthStatus.Status.
const (
	HealthStatusHappy   HealthStatusType = "Happy"
	HealthStatusFailing HealthStatusType = "Failing"
)

// Values of Fallback.Behavior.
const (
	FallbackBehaviorStatic                  = "static"
	FallbackBehaviorCurrentReplicas         = "currentReplicas"
	FallbackBehaviorCurrentReplicasIfHigher = "currentReplicasIfHigher"
	FallbackBehaviorCurrentReplicasIfLower  = "currentReplicasIfLower"
	FallbackBehaviorScalingModifiers        = "scalingModifiers"
)

// Values of ScalingStrategy.Strategy.
const (
	ScalingStrategyDefault  = "default"
	ScalingStrategyCustom   = "custom"
	ScalingStrategyAccurate = "accurate"
	ScalingStrategyEager    = "eager"
)

// Values of ScalingStrategy.MultipleScalersCalculation.
const (
	MultipleScalersCalculationMax = "max"
	MultipleScalersCalculationMin = "min"
	MultipleScalersCalculationAvg = "avg"
	MultipleScalersCalculationSum = "sum"
)

// Values of Rollout.Strategy and Rollout.PropagationPolicy.
const (
	RolloutStrategyImmediate     = "immediate"
	RolloutStrategyGradual       = "gradual"
	RolloutPropagationForeground = "foreground"
	RolloutPropagationBackground = "background"
)
