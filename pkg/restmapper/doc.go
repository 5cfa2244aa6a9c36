// Package restmapper provides ebb's self-healing REST mapper: a
// meta.RESTMapper over API discovery that notices API groups, kinds and
// versions installed after the process started.
//
// client-go's DeferredDiscoveryRESTMapper over a memory-cached discovery
// client never re-discovers once populated, so a CustomResourceDefinition (or
// a new version of one) installed after start stays unknown until restart,
// and every ScaledObject targeting it stays not Ready. The Mapper closes that
// gap in two ways:
//
//   - On a miss. When a lookup ends in a NoKindMatch or NoResourceMatch
//     error, or names a version its API group is not known to serve, the
//     Mapper re-discovers that one group and answers again. Re-discovery of a
//     group happens at most once per interval (WithMinInterval), so a typo
//     cannot hammer the API server, and concurrent misses for the same group
//     share a single discovery. A miss that survives re-discovery returns a
//     *NoMatchError, which still satisfies meta.IsNoMatchError and says when
//     discovery was last refreshed.
//   - On change. Invalidate marks one group stale and Reset marks all of them
//     stale; the next lookup touching them re-discovers first, whatever the
//     interval. WatchCRDs calls Invalidate for the group of every
//     CustomResourceDefinition that is added, updated or deleted, which also
//     catches what a miss cannot see: a new preferred version of a kind that
//     is still served in its old version.
//
// A Mapper is safe for concurrent use. It implements meta.RESTMapper,
// meta.ResettableRESTMapper and their WithContext variants, so it can be
// passed wherever client-go expects a mapper, in particular as the
// PreferredResourceMapper of k8s.io/client-go/scale, which resolves a scale
// target's group and resource through ResourceFor with an empty version:
//
//	mapper := restmapper.New(discoveryClient, restmapper.WithLogger(logger))
//	scales, err := scale.NewForConfig(cfg, mapper, dynamic.LegacyAPIPathResolverFunc,
//		scale.NewDiscoveryScaleKindResolver(discoveryClient))
//
// A scale target whose CRD is installed later then resolves on the first
// lookup after it is served (the scale kind resolver caches successes only).
//
// Give the Mapper a plain (uncached) discovery client: it keeps its own
// cache, and a cached client would answer re-discovery from stale data.
package restmapper
