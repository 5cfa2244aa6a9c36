// Package scaledjob holds the operator's ScaledJob controller: it runs
// Kubernetes Jobs from a ScaledJob's jobTargetRef as its triggers report
// pending work, as KEDA does.
//
// Two parts share the Controller. The reconciler, fed by the ScaledJob
// informer through a rate-limited workqueue, validates the spec, keeps the
// finalizer, and is the only writer of the status (conditions Ready,
// Active and Paused, lastActiveTime, triggersActivity); it writes only
// when something changed. The loop polls every valid, unpaused ScaledJob
// at its pollingInterval on a poller (a heap-driven scheduler with a
// bounded worker pool, the ScaledObject scale loop's): it reads each
// trigger's queue length and target through the trigger cache's live
// scalers (triggers.Cache.JobScalers), combines them
// (multipleScalersCalculation), counts the ScaledJob's running and pending
// Jobs from label-filtered Job and Pod informers, decides how many Jobs to
// create with the scaling strategy (default, custom, accurate, eager: see
// Decide), creates them, deletes running Jobs of older generations for an
// immediate rollout, and deletes finished Jobs beyond the history limits.
// It tells the reconciler only when what the status shows changes, never
// per poll.
//
// Jobs are owned by their ScaledJob (controller reference), so the garbage
// collector deletes them with it.
package scaledjob
