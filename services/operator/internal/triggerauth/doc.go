// Package triggerauth keeps the status of TriggerAuthentications and
// ClusterTriggerAuthentications as KEDA keeps it: status.scaledobjects and
// status.scaledjobs list, comma-separated, the names of the ScaledObjects
// and ScaledJobs whose triggers reference the object (authenticationRef),
// sorted, each once, without those being deleted. The lists come from the
// specs through an index of the ScaledObject and ScaledJob informers, so a
// reference that stops (an edited trigger, a deleted object) leaves the
// list at once, and a status is written only when its list changes, never
// per poll.
package triggerauth
