// Package scaledobject holds the operator's ScaledObject controller: it
// resolves each ScaledObject's scale target through the /scale subresource,
// owns the HPA built for it (creating, updating and adopting it, and on
// deletion releasing an HPA that is to be kept), holds the finalizer, and
// writes the status. It reads only from its informers' caches; NotFound
// means deleted; errors requeue with backoff.
package scaledobject
