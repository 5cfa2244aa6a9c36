package restmapper

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// crdResource is the resource of CustomResourceDefinitions.
var crdResource = schema.GroupVersionResource{
	Group:    "apiextensions.k8s.io",
	Version:  "v1",
	Resource: "customresourcedefinitions",
}

// WatchCRDs makes m invalidate the API group of every
// CustomResourceDefinition that is added, updated (spec or status) or
// deleted, until ctx is done. It registers an event handler on factory's
// informer for customresourcedefinitions and returns its registration, whose
// HasSynced reports when the initial list was handled. The caller starts
// factory afterwards (Start starts informers added since the last Start) and
// shuts it down; needs RBAC list and watch on customresourcedefinitions.
//
// The informer is metadata-only on purpose. Full CRD objects carry their
// OpenAPI schemas, often hundreds of kilobytes each, which an apiextensions
// informer would keep in memory for nothing: the mapper needs only the
// group, and the API server guarantees it in the name, "<plural>.<group>".
// Every write to a CRD, status included, changes its resourceVersion and so
// still reaches the handler; the status writes matter, as a new CRD or
// version appears in discovery only once the CRD is Established.
//
// Invalidation is lazy: an event costs nothing until a lookup names the
// group, which then re-discovers it once, however many events came.
func WatchCRDs(ctx context.Context, factory metadatainformer.SharedInformerFactory, m *Mapper) (cache.ResourceEventHandlerRegistration, error) {
	logger := klog.FromContext(ctx)
	informer := factory.ForResource(crdResource).Informer()
	invalidate := func(obj any) {
		name, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		if err != nil {
			logger.Error(err, "Cannot read the name of a CustomResourceDefinition")
			return
		}
		group, ok := crdGroup(name)
		if !ok {
			logger.Info("Ignoring a CustomResourceDefinition whose name is not <plural>.<group>", "name", name)
			return
		}
		m.Invalidate(group)
	}
	noResync := time.Duration(0)
	registration, err := informer.AddEventHandlerWithOptions(cache.ResourceEventHandlerFuncs{
		AddFunc:    invalidate,
		UpdateFunc: func(_, obj any) { invalidate(obj) },
		DeleteFunc: invalidate,
	}, cache.HandlerOptions{Logger: &logger, ResyncPeriod: &noResync})
	if err != nil {
		return nil, fmt.Errorf("watching CustomResourceDefinitions: %w", err)
	}
	go func() {
		<-ctx.Done()
		if err := informer.RemoveEventHandler(registration); err != nil {
			logger.Error(err, "Cannot stop watching CustomResourceDefinitions")
		}
	}()
	return registration, nil
}

// crdGroup returns the API group of the CustomResourceDefinition called
// name, which the API server requires to be "<plural>.<group>".
func crdGroup(name string) (string, bool) {
	_, group, ok := strings.Cut(name, ".")
	return group, ok && group != ""
}
