package triggerauth

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

// sync writes the status lists of the authentication object key (a
// ClusterTriggerAuthentication when key has no namespace) when they
// differ from what its informer holds.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	want := v1alpha1.TriggerAuthenticationStatus{
		ScaledObjects: namesReferencing(c.soIndexer, key),
		ScaledJobs:    namesReferencing(c.sjIndexer, key),
	}
	if key.Namespace == "" {
		cta, err := c.ctaLister.Get(key.Name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if cta.Status == want {
			return nil
		}
		updated := cta.DeepCopy()
		updated.Status = want
		_, err = c.kedaClient.KedaV1alpha1().ClusterTriggerAuthentications().UpdateStatus(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager})
		return c.written(ctx, "ClusterTriggerAuthentication", key, want, err)
	}
	ta, err := c.taLister.TriggerAuthentications(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ta.Status == want {
		return nil
	}
	updated := ta.DeepCopy()
	updated.Status = want
	_, err = c.kedaClient.KedaV1alpha1().TriggerAuthentications(key.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager})
	return c.written(ctx, "TriggerAuthentication", key, want, err)
}

// written logs the outcome of a status write; the object gone meanwhile is
// no error.
func (c *Controller) written(ctx context.Context, kind string, key cache.ObjectName, status v1alpha1.TriggerAuthenticationStatus, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("writing the status of %s %s: %w", kind, key, err)
	}
	klog.FromContext(ctx).V(2).Info("Wrote the status lists", "kind", kind, "authentication", key,
		"scaledObjects", status.ScaledObjects, "scaledJobs", status.ScaledJobs)
	return nil
}

// namesReferencing lists, as KEDA writes status.scaledobjects and
// status.scaledjobs, the names of the objects of indexer that reference
// key: comma-separated, sorted, each once, without objects being deleted.
// Like KEDA's, a ClusterTriggerAuthentication's lists hold names without
// their namespace.
func namesReferencing(indexer cache.Indexer, key cache.ObjectName) string {
	objs, err := indexer.ByIndex(AuthRefIndex, key.String())
	if err != nil {
		return ""
	}
	var names []string
	for _, obj := range objs {
		m, err := meta.Accessor(obj)
		if err != nil || m.GetDeletionTimestamp() != nil {
			continue
		}
		names = append(names, m.GetName())
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ",")
}
