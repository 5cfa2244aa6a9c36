// Package triggers keeps the live scalers of each ScaledObject: one
// scaler.Scaler per trigger, built once per ScaledObject generation (and
// again when an object its resolution read changes), shared
// by every reader (the gRPC MetricsService, the scale loop), and closed when
// the generation changes or the ScaledObject goes away, so no connection
// outlives the spec it was built from. A ScaledJob's triggers are kept the
// same way, apart (Cache.JobScalers, Cache.ForgetJob), resolved against
// its Job template (AuthResolver.ResolveJob).
//
// With the scalers, each generation keeps its compiled scaling modifiers
// formula (Cache.Formula) and, for triggers with useCachedMetrics, the
// outcome of the scale loop's last poll (Trigger.Remember and
// Trigger.Cached), dropped with the generation. Trigger.Poll is the one
// way readers poll a scaler, so every call is measured in the scaler call
// metrics (RegisterMetrics) and bounded (Trigger.PollTimeout: the caller's
// bound, DefaultPollTimeout for the operator's readers, or the scaler's
// own shorter timeout).
//
// Triggers are resolved, with WithAuthResolver, by an AuthResolver that
// tells the Cache every object it reads (TriggerAuthentications,
// ClusterTriggerAuthentications, Secrets, ConfigMaps, filePath files) with
// the version read. The Cache indexes its entries by those objects, and
// Changed (fed by informers through EventHandler, and by WatchFiles)
// invalidates the entries built from an object that has changed since:
// their scalers are closed, the next use resolves and builds them again,
// and the owner's controller is told (SetInvalidationHandler). A
// resolution that fails is a *ResolveError, which says whether a watched
// change will fix it or it needs a retry.
//
// The HPA metric of an external or external-push trigger is named by its
// scaler (GetMetricSpec), not by its metadata: Trigger.ResolveMetric asks
// the scaler once per generation and keeps the answer (a successful poll
// records it too), so Trigger.ExternalMetricName maps the name the HPA
// reads back to the trigger.
package triggers
