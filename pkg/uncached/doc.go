// Package uncached is the webhook's window on the cluster: a Reader that
// answers every question with a direct request to the API server, never
// from an informer, a watch or a cache of objects of its own.
//
// KEDA's webhook read through an informer cache and denied about one Helm
// install in ten with "Deployment.apps not found": the Deployment created
// 250 ms before its ScaledObject was not in the cache yet. A Reader cannot
// make that mistake. A GET goes to etcd: NotFound means the API server has
// no such object at that moment, and nothing else.
//
// A LIST is a consistent read too: the Reader never sets its
// resourceVersion, so the API server answers with the state of etcd's
// current revision, and a continued page with that same state. What a
// LIST returns is what etcd held when the LIST arrived: an object written
// before the admission began is in it, and only one written while the
// admission runs is missed, which no webhook sees. The answer is taken as
// it is; nothing is read twice.
//
// Consistency costs time: the API server's watch cache answers once it
// has caught up with etcd's revision, which, in a cluster where anything
// else is being written, takes a progress notification from etcd,
// requested at most every 100 ms per resource. Reading "not older than"
// an earlier LIST (resourceVersionMatch=NotOlderThan) would skip that
// wait, but the webhook would then decide on a view that may lack a
// conflicting HPA or ScaledObject created a moment before the review,
// and it never decides on a stale view.
//
// What each admission costs:
//
//   - ScaledObjectsForTarget lists only the ScaledObjects whose
//     spec.scaleTargetRef.name matches, with a field selector on the CRD's
//     selectableFields, so the answer is O(matches). If the API server
//     refuses the selector (a CRD installed without selectableFields), it
//     lists the namespace, page by page, and filters, and says so in the
//     result.
//   - HPAs lists with a label selector, so the answer holds only what the
//     caller needs.
//   - Both selectors are applied by the API server to every object of the
//     namespace in its watch cache: small answers, but the API server's
//     work grows with the namespace (1 to 2 µs of its CPU per object on
//     a 2-core machine), which is what admissions cost at 50,000
//     ScaledObjects and HPAs in one namespace.
//   - ScaleTarget resolves the target's kind through the self-healing REST
//     mapper (pkg/restmapper), so a kind installed after start is found;
//     and, concurrently, asks discovery, for that one group-version,
//     whether the resource has a /scale subresource, and GETs the target's
//     /scale (which needs only get on <resource>/scale, the permission
//     every scale target grants the autoscaler anyway) or, when a rule
//     needs its containers (cpu and memory triggers), the target itself.
//
// The REST mapper's cache holds kinds, not objects: it maps a kind to its
// resource and re-discovers on a miss. The /scale question goes to
// discovery on every call, so a CRD that gains its scale subresource is
// seen at once.
//
// Every read is timed in the histogram ebb_uncached_read_duration_seconds,
// by operation and result; see RegisterMetrics.
package uncached
