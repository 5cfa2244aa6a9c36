// Package scaleloop is the operator's scale loop: it polls the triggers of
// every tracked ScaledObject at its pollingInterval and takes the target
// between zero (or idleReplicaCount) and max(minReplicaCount, 1), the part
// of scaling the HPA cannot do. Between minimum and maximum the HPA scales
// on the metric values the MetricsService serves.
//
// A ScaledObject is active when any trigger's scaler says so, or, with a
// scaling modifiers formula, when the formula over the named triggers'
// values (a failing trigger being nil) exceeds
// scalingModifiers.activationTarget, as KEDA decides it. Each poll is kept
// for triggers with useCachedMetrics, so the MetricsService answers the
// HPA from it instead of polling the source again. Each poll of a source
// is bounded (WithPollTimeout, 5 s by default, as the MetricsService's), so
// a hung source holds a poller worker no longer than that, and counts as
// failing.
//
// Each trigger's own activity is kept too (Activity.Triggers, by external
// metric name, for status.triggersActivity); the controller is told only
// when the ScaledObject's activity or a trigger's changes, never per poll.
//
// InformerReplicas reads targets' replicas (and, for the MetricsService's
// fallback, their ready replicas) from slim informer caches: typed ones for
// Deployments and StatefulSets, and DynamicReplicas' dynamic informers,
// one per other resource that some ScaledObject targets, started and
// stopped with those ScaledObjects. Writes, and reads of what no cache
// holds, go through /scale.
package scaleloop
