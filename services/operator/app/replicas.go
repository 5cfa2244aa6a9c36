package app

import (
	"context"
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"

	"github.com/ebb-autoscaler/ebb/services/operator/internal/metricsserver"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaleloop"
)

// targetReplicas reads scale targets' replicas for the scale loop and for
// the MetricsService's fallback: Deployments and StatefulSets from the slim
// informer caches of kubeFactory (no API request per read), other kinds
// from the caches of its Others once set (see otherTargetReplicas), what
// no cache holds through /scale, their ready pods counted by pods; writes
// go through /scale.
func targetReplicas(kubeFactory informers.SharedInformerFactory, scaleClient scale.ScalesGetter, pods podCounter) scaleloop.InformerReplicas {
	return scaleloop.InformerReplicas{
		Deployments:  kubeFactory.Apps().V1().Deployments().Lister(),
		StatefulSets: kubeFactory.Apps().V1().StatefulSets().Lister(),
		Fallback:     scaleloop.ScaleReplicas{Client: scaleClient, ReadyPods: pods.CountReadyPods},
	}
}

// otherTargetReplicas caches the replicas of the scale targets that are
// neither Deployments nor StatefulSets, for targetReplicas' Others: one
// dynamic informer (of namespace, "" for all) per resource that some
// ScaledObject of soInformer targets, run on ctx until Shutdown; custom
// resources without status.readyReplicas have their ready pods counted by
// pods.
func otherTargetReplicas(ctx context.Context, cfg *rest.Config, namespace string, soInformer cache.SharedIndexInformer,
	pods podCounter) (*scaleloop.DynamicReplicas, error) {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the dynamic client: %w", err)
	}
	others := scaleloop.NewDynamicReplicas(ctx, client, namespace, scaleloop.WithReadyPods(pods.CountReadyPods))
	if _, err := soInformer.AddEventHandler(others.EventHandler()); err != nil {
		others.Shutdown()
		return nil, fmt.Errorf("watching the scale targets of ScaledObjects: %w", err)
	}
	return others, nil
}

// metricsServiceOptions are the MetricsService's options: the fallback
// reads the target's current and ready replicas from replicas (for the
// currentReplicas* behaviors and Value targets), and notify hears of
// health changes a ScaledObject's status shows.
func metricsServiceOptions(replicas scaleloop.InformerReplicas, notify func(cache.ObjectName)) []metricsserver.Option {
	return []metricsserver.Option{
		metricsserver.WithReplicas(replicas.TargetReplicas),
		metricsserver.WithHealthNotifier(notify),
	}
}
