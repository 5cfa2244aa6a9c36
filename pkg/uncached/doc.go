// Package uncached is the webhook's window on the cluster: a Reader that
// answers every question with a direct request to the API server, never
// from an informer, a watch or a cache of objects.
//
// KEDA's webhook read through an informer cache and denied about one Helm
// install in ten with "Deployment.apps not found": the Deployment created
// 250 ms before its ScaledObject was not in the cache yet. A Reader cannot
// make that mistake. A GET that returns NotFound means the API server has
// no such object at that moment, and nothing else.
//
// Each admission stays cheap at 10,000 ScaledObjects in one namespace:
//
//   - ScaledObjectsForTarget lists only the ScaledObjects whose
//     spec.scaleTargetRef.name matches, with a field selector on the CRD's
//     selectableFields, so the cost is O(matches). If the API server
//     refuses the selector (a CRD installed without selectableFields), it
//     lists the namespace once and filters, and says so in the result.
//   - ScaleTarget resolves the target's kind through the self-healing REST
//     mapper (pkg/restmapper), so a kind installed after start is found;
//     asks discovery, for that one group-version, whether the resource has
//     a /scale subresource; and GETs the target's /scale, which needs only
//     get on <resource>/scale, the permission every scale target grants
//     the autoscaler anyway.
//   - PodTemplate GETs the full target only when a rule needs its
//     containers (cpu and memory triggers).
//
// The REST mapper's cache holds kinds, not objects: it maps a kind to its
// resource and re-discovers on a miss. The /scale question goes to
// discovery on every call, so a CRD that gains its scale subresource is
// seen at once.
//
// Every read is timed in the histogram ebb_uncached_read_duration_seconds,
// by operation and result; see RegisterMetrics.
package uncached
