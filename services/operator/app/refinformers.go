package app

import (
	"context"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/ebb-autoscaler/ebb/services/operator/app/options"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// Resources whose changes invalidate the triggers that read them.
var (
	secretsResource    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	configMapsResource = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// refInformers are the metadata-only informers of Secrets and ConfigMaps,
// one pair per namespace watched.
type refInformers struct {
	secrets, configMaps []cache.SharedIndexInformer
	wg                  sync.WaitGroup
}

// refNamespaces are the namespaces whose Secrets and ConfigMaps a
// resolution may read: every namespace, or, with --watch-namespace, that
// one and the namespace of ClusterTriggerAuthentications' objects.
func refNamespaces(cfg *options.Config) []string {
	if cfg.WatchNamespace == "" {
		return []string{metav1.NamespaceAll}
	}
	if cfg.ClusterObjectNamespace == cfg.WatchNamespace || cfg.ClusterObjectNamespace == "" {
		return []string{cfg.WatchNamespace}
	}
	return []string{cfg.WatchNamespace, cfg.ClusterObjectNamespace}
}

// newRefInformers builds the informers of namespaces. Their objects keep
// their identity and resourceVersion only (slimRefMetadata).
func newRefInformers(client metadata.Interface, namespaces []string) *refInformers {
	r := &refInformers{}
	for _, ns := range namespaces {
		for _, res := range []struct {
			gvr  schema.GroupVersionResource
			into *[]cache.SharedIndexInformer
		}{{secretsResource, &r.secrets}, {configMapsResource, &r.configMaps}} {
			inf := metadatainformer.NewFilteredMetadataInformer(client, res.gvr, ns, 0, cache.Indexers{}, nil).Informer()
			// Cannot fail before the informer starts.
			_ = inf.SetTransform(slimRefMetadata)
			*res.into = append(*res.into, inf)
		}
	}
	return r
}

// addHandlers feeds c's Changed with the informers' events.
func (r *refInformers) addHandlers(c *triggers.Cache) error {
	for _, inf := range r.secrets {
		if _, err := inf.AddEventHandler(c.EventHandler(triggers.RefSecret)); err != nil {
			return fmt.Errorf("watching Secrets: %w", err)
		}
	}
	for _, inf := range r.configMaps {
		if _, err := inf.AddEventHandler(c.EventHandler(triggers.RefConfigMap)); err != nil {
			return fmt.Errorf("watching ConfigMaps: %w", err)
		}
	}
	return nil
}

// start runs the informers until ctx is done.
func (r *refInformers) start(ctx context.Context) {
	for _, inf := range append(append([]cache.SharedIndexInformer{}, r.secrets...), r.configMaps...) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			inf.RunWithContext(ctx)
		}()
	}
}

// wait waits for the informers to stop, once their context is done.
func (r *refInformers) wait() { r.wg.Wait() }

// slimRefMetadata is the transform of the Secret and ConfigMap informers:
// name, namespace, UID and resourceVersion, nothing else. Labels and
// annotations go too: kubectl's last-applied-configuration annotation of
// a Secret applied with kubectl holds its data.
func slimRefMetadata(obj any) (any, error) {
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		return &metav1.PartialObjectMetadata{
			TypeMeta: m.TypeMeta,
			ObjectMeta: metav1.ObjectMeta{
				Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
			},
		}, nil
	}
	return obj, nil
}
