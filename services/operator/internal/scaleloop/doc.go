// Package scaleloop is the operator's scale loop: it polls the triggers of
// every tracked ScaledObject at its pollingInterval and takes the target
// between zero (or idleReplicaCount) and max(minReplicaCount, 1), the part
// of scaling the HPA cannot do. Between minimum and maximum the HPA scales
// on the metric values the MetricsService serves.
package scaleloop
