package keda

// GroupName is the API group of ebb's custom resources (ScaledObject,
// ScaledJob, TriggerAuthentication and ClusterTriggerAuthentication). It is
// the group KEDA uses, which is what makes ebb a drop-in replacement.
const GroupName = "keda.sh"
