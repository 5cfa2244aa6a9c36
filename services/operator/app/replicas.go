package app

import (
	"k8s.io/client-go/informers"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"

	"github.com/ebb-autoscaler/ebb/services/operator/internal/metricsserver"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaleloop"
)

// targetReplicas reads scale targets' replicas for the scale loop and for
// the MetricsService's fallback: Deployments and StatefulSets from the slim
// informer caches of kubeFactory (no API request per read), other kinds
// and objects not cached yet through /scale, their ready pods counted by
// pods; writes go through /scale.
func targetReplicas(kubeFactory informers.SharedInformerFactory, scaleClient scale.ScalesGetter, pods podCounter) scaleloop.InformerReplicas {
	return scaleloop.InformerReplicas{
		Deployments:  kubeFactory.Apps().V1().Deployments().Lister(),
		StatefulSets: kubeFactory.Apps().V1().StatefulSets().Lister(),
		Fallback:     scaleloop.ScaleReplicas{Client: scaleClient, ReadyPods: pods.CountReadyPods},
	}
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
