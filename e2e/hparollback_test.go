package e2e

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/ebb-autoscaler/ebb/e2e/cluster"
	kedaclient "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
)

// TestHelmHPARollback is KEDA's second production failure, replayed with
// helm on the local cluster: the three services installed with their
// charts (real admission, real operator, real metrics API), the real
// garbage collector and HPA controller. The chart of e2e/testdata/charts/app
// renders a Deployment and either a plain HPA (v1) or a ScaledObject that
// takes the HPA over (v2, keda.enabled). The release goes
//
//	helm install (v1: plain HPA, helm.sh/resource-policy: keep)
//	→ helm upgrade (v2: helm creates the ScaledObject and leaves the HPA;
//	  the operator adopts it)
//	→ helm rollback to revision 1 --force-conflicts (helm applies the
//	  chart's HPA and deletes the ScaledObject; the operator gives the HPA
//	  back before the finalizer goes)
//	→ 20 s for the garbage collector, then a day-2 helm upgrade of the
//	  plain HPA
//
// while the app's HPAs are listed every 100 ms and watched: the Deployment
// must never be without an HPA, the HPA must be the same object
// throughout, and after the rollback it must be the chart's own HPA again
// (v1's spec, labels and annotations, no owner, no fields left to the
// operator), left alone by the garbage collector. docs/operator.md ("Moving
// a Helm chart from a plain HPA to a ScaledObject and back") explains what
// the chart and the rollback need.
func TestHelmHPARollback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	images := serviceImages(ctx, t)
	c := startCluster(ctx, t, cluster.Options{CertManager: true, Images: images})
	keda, err := kedaclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}

	tryHelm := func(args ...string) (string, error) {
		return clusterTry(ctx, c, c.Bins.Helm, args...)
	}
	helm := func(args ...string) string {
		t.Helper()
		return clusterRun(ctx, t, c, c.Bins.Helm, args...)
	}
	// One webhook replica: two cores are shared by everything here.
	installEBB(ctx, t, c, chartValues{webhook: []string{"replicas=1"}})

	const (
		ns      = "shop"
		release = "app" // also the Deployment's, the HPA's and the ScaledObject's name
	)
	chart := filepath.Join("e2e", "testdata", "charts", "app")
	hpas := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns)

	// v1: the plain HPA.
	helm("install", release, chart, "--namespace", ns, "--create-namespace")
	v1, err := hpas.Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("The chart's HPA after helm install: %v", err)
	}
	t.Logf("v1 installed: HPA %s (uid %s), %s", v1.Name, v1.UID, describeHPA(v1))

	mon := startHPAMonitor(ctx, t, c, ns, release, v1.ResourceVersion)
	defer mon.stop()

	// v2: the ScaledObject adopts the HPA. The chart's v1 HPA carries
	// helm.sh/resource-policy: keep (see templates/hpa.yaml): helm deletes
	// what a new revision does not render, after applying the new
	// objects, unless the live object has that annotation.
	mon.setPhase("upgrade")
	upgraded := time.Now()
	helm("upgrade", release, chart, "--namespace", ns, "--set", "keda.enabled=true")
	helmUpgrade := time.Since(upgraded)
	so, err := keda.KedaV1alpha1().ScaledObjects(ns).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	adopted := pollFor(ctx, t, "the ScaledObject to adopt the chart's HPA", time.Minute, func(ctx context.Context) (*autoscalingv2.HorizontalPodAutoscaler, error) {
		h, err := hpas.Get(ctx, release, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if owner := metav1.GetControllerOf(h); owner == nil || owner.UID != so.UID {
			return nil, fmt.Errorf("HPA %s is not owned by the ScaledObject: %s", h.Name, describeHPA(h))
		}
		if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].External == nil || h.Spec.MaxReplicas != 10 {
			return nil, fmt.Errorf("HPA %s is owned but not shaped by ebb yet: %s", h.Name, describeHPA(h))
		}
		return h, nil
	})
	adoption := time.Since(upgraded)
	mon.setPhase("v2")
	if adopted.UID != v1.UID {
		t.Errorf("The ScaledObject's HPA has uid %s, want the chart's HPA (%s) adopted, not a new one", adopted.UID, v1.UID)
	}
	// The adopted HPA keeps what the chart put on it, the keep policy
	// above all: helm reads it from the live HPA when it decides whether
	// to delete it, and the operator may adopt the HPA before that.
	if adopted.Annotations[helmResourcePolicy] != "keep" {
		t.Errorf("The adopted HPA lost %s: keep (annotations %v): an upgrade that reads it after the adoption deletes the HPA", helmResourcePolicy, adopted.Annotations)
	}
	// The HPA reads ebb's metric through the metrics-apiserver: the
	// ScaledObject is Ready once the HPA controller has read it.
	pollUntil(ctx, t, "the ScaledObject to be Ready (its adopted HPA reads ebb's metric)", time.Minute, func(ctx context.Context) (bool, error) {
		so, err := keda.KedaV1alpha1().ScaledObjects(ns).Get(ctx, release, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		r := so.Status.Conditions.Ready()
		return r.IsTrue(), fmt.Errorf("Ready: %s %s: %s", r.Status, r.Reason, r.Message)
	})
	ready := time.Since(upgraded)
	t.Logf("v2: helm upgrade took %s; the HPA adopted and shaped by ebb %s after the upgrade started (%s); the ScaledObject Ready after %s",
		helmUpgrade.Round(time.Millisecond), adoption.Round(time.Millisecond), describeHPA(adopted), ready.Round(time.Millisecond))

	// Rollback to revision 1: the ScaledObject goes, the chart's HPA
	// comes back. Helm 4 applies server-side, and applies the chart's HPA
	// before it deletes the ScaledObject: the HPA's spec fields are then
	// still the operator's (field manager ebb-operator; KEDA's operator is
	// in the same place), so the rollback needs --force-conflicts. Without
	// it, it fails on the conflict and leaves everything as it was (the
	// HPA stays), but the failed rollback becomes the release's last
	// revision, with v1's manifest, so a second rollback no longer deletes
	// the ScaledObject (deleting it by hand then finishes the move).
	mon.setPhase("rollback")
	rolledBack := time.Now()
	helm("rollback", release, "1", "--namespace", ns, "--force-conflicts")
	helmRollback := time.Since(rolledBack)
	back := pollFor(ctx, t, "the chart's HPA to be back", time.Minute, func(ctx context.Context) (*autoscalingv2.HorizontalPodAutoscaler, error) {
		if _, err := keda.KedaV1alpha1().ScaledObjects(ns).Get(ctx, release, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("the ScaledObject is still there (%v)", err)
		}
		h, err := hpas.Get(ctx, release, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if len(h.OwnerReferences) != 0 || !equality.Semantic.DeepEqual(h.Spec, v1.Spec) {
			return nil, fmt.Errorf("HPA %s is not the chart's yet: %s", h.Name, describeHPA(h))
		}
		return h, nil
	})
	restored := time.Since(rolledBack)
	mon.setPhase("after rollback")
	t.Logf("Rollback: helm rollback took %s; the chart's HPA back (ScaledObject gone, no owner, v1's spec) %s after it started",
		helmRollback.Round(time.Millisecond), restored.Round(time.Millisecond))

	// The garbage collector has had the ScaledObject's deletion since
	// then; give it, and the HPA controller, time to act on it.
	time.Sleep(20 * time.Second)

	final, err := hpas.Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("The HPA 20 s after the rollback: %v", err)
	}
	if final.UID != v1.UID {
		t.Errorf("The HPA is a new object (uid %s), want the chart's HPA (uid %s) kept throughout", final.UID, v1.UID)
	}
	if len(final.OwnerReferences) != 0 {
		t.Errorf("The HPA still has owners %v", final.OwnerReferences)
	}
	if !equality.Semantic.DeepEqual(final.Spec, v1.Spec) {
		t.Errorf("The HPA's spec is %s, want v1's %s", describeHPA(final), describeHPA(v1))
	}
	if !maps.Equal(final.Labels, v1.Labels) || !maps.Equal(final.Annotations, v1.Annotations) {
		t.Errorf("The HPA has labels %v and annotations %v, want v1's %v and %v", final.Labels, final.Annotations, v1.Labels, v1.Annotations)
	}
	if back.UID != final.UID {
		t.Errorf("The HPA was replaced after it was back (uid %s, then %s)", back.UID, final.UID)
	}
	status := helm("status", release, "--namespace", ns, "-o", "json")
	if !strings.Contains(status, `"status":"deployed"`) || !strings.Contains(status, `"version":3`) {
		t.Errorf("helm status after the rollback: want revision 3 deployed, got %s", status)
	}
	// The operator wrote the HPA's fields while it owned it; the released
	// HPA must not keep them as the operator's, or helm's next
	// server-side apply of a changed HPA conflicts with a controller that
	// no longer manages it.
	for _, mf := range final.ManagedFields {
		if mf.Manager == scaledObjectFieldManager {
			t.Errorf("The released HPA still has fields managed by %s (%s at %v): a later helm upgrade of the chart's HPA conflicts with them", mf.Manager, mf.Operation, mf.Time)
		}
	}

	// Day two: the chart's HPA is helm's again, a plain upgrade changes it.
	mon.setPhase("day-2 upgrade")
	out, err := tryHelm("upgrade", release, chart, "--namespace", ns, "--set", "autoscaling.maxReplicas=6")
	if err != nil {
		t.Errorf("helm upgrade of the chart's HPA after the rollback: %v\n%s", err, out)
	} else if h, err := hpas.Get(ctx, release, metav1.GetOptions{}); err != nil || h.Spec.MaxReplicas != 6 || h.UID != v1.UID {
		t.Errorf("After the day-2 upgrade: %s, %v; want the same HPA with maxReplicas 6", describeHPAOrNil(h), err)
	}

	mon.stop()
	r := mon.report()
	t.Logf("Monitor: %d polls (every %s, longest interval %s), %d failed; %d gap polls; watch events: %d; HPA uids seen: %v",
		r.polls, hpaMonitorInterval, r.maxInterval.Round(time.Millisecond), r.errors, len(r.gaps), len(r.events), r.uids)
	for _, e := range r.events {
		t.Logf("  watch: %s", e)
	}
	for _, g := range r.gaps {
		t.Errorf("The Deployment had no HPA: %s", g)
	}
	for _, e := range r.deletions {
		t.Errorf("The watch saw an HPA of the app deleted: %s", e)
	}
	if len(r.uids) != 1 {
		t.Errorf("HPA objects seen: %v, want only the chart's (%s)", r.uids, v1.UID)
	}
	if r.polls == 0 {
		t.Errorf("The monitor never polled")
	}
}

// helmResourcePolicy is helm's annotation that keeps an object helm
// would delete (on an upgrade that no longer renders it, or an uninstall)
// when its value is "keep".
const helmResourcePolicy = "helm.sh/resource-policy"

// scaledObjectFieldManager is the operator's field manager.
const scaledObjectFieldManager = "ebb-operator"

// hpaMonitorInterval is how often the monitor lists the HPAs.
const hpaMonitorInterval = 100 * time.Millisecond

// hpaMonitor keeps two independent records of the HPAs of one Deployment
// while a test runs: a LIST every hpaMonitorInterval (a gap is a poll that
// finds no HPA, not being deleted, whose scaleTargetRef is the
// Deployment), and a watch, which sees every deletion and every new object
// even between two polls.
type hpaMonitor struct {
	t          *testing.T
	cancel     context.CancelFunc
	done       sync.WaitGroup
	stopOnce   sync.Once
	deployment string

	mu          sync.Mutex
	phase       string
	polls       int
	errors      int
	lastPoll    time.Time
	maxInterval time.Duration
	gaps        []string
	events      []string
	deletions   []string
	uids        map[types.UID]bool
}

type hpaMonitorReport struct {
	polls, errors           int
	maxInterval             time.Duration
	gaps, events, deletions []string
	uids                    []types.UID
}

// startHPAMonitor starts polling and watching the HPAs of namespace ns for
// Deployment deployment; the watch starts at resourceVersion rv.
func startHPAMonitor(ctx context.Context, t *testing.T, c *cluster.Cluster, ns, deployment, rv string) *hpaMonitor {
	ctx, cancel := context.WithCancel(ctx)
	m := &hpaMonitor{t: t, cancel: cancel, deployment: deployment, phase: "v1", uids: map[types.UID]bool{}}
	hpas := c.Client.AutoscalingV2().HorizontalPodAutoscalers(ns)

	m.done.Add(2)
	go func() {
		defer m.done.Done()
		ticker := time.NewTicker(hpaMonitorInterval)
		defer ticker.Stop()
		for {
			pollCtx, cancelPoll := context.WithTimeout(ctx, 5*time.Second)
			list, err := hpas.List(pollCtx, metav1.ListOptions{})
			cancelPoll()
			if ctx.Err() != nil {
				return
			}
			m.observePoll(list, err)
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()

	w, err := watchtools.NewRetryWatcherWithContext(ctx, rv, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
			return hpas.Watch(ctx, options)
		},
	})
	if err != nil {
		t.Fatalf("Watching the HPAs: %v", err)
	}
	go func() {
		defer m.done.Done()
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				m.observeEvent(ev)
			}
		}
	}()
	return m
}

func (m *hpaMonitor) targetsDeployment(h *autoscalingv2.HorizontalPodAutoscaler) bool {
	ref := h.Spec.ScaleTargetRef
	return ref.Kind == "Deployment" && ref.Name == m.deployment && strings.HasPrefix(ref.APIVersion, "apps/")
}

func (m *hpaMonitor) observePoll(list *autoscalingv2.HorizontalPodAutoscalerList, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if !m.lastPoll.IsZero() && now.Sub(m.lastPoll) > m.maxInterval {
		m.maxInterval = now.Sub(m.lastPoll)
	}
	m.lastPoll = now
	m.polls++
	if err != nil {
		m.errors++
		m.t.Logf("HPA monitor (%s): the poll failed: %v", m.phase, err)
		return
	}
	var others []string
	for i := range list.Items {
		h := &list.Items[i]
		if m.targetsDeployment(h) && h.DeletionTimestamp == nil {
			m.uids[h.UID] = true
			return
		}
		others = append(others, fmt.Sprintf("%s → %s %s (deleting: %v)", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name, h.DeletionTimestamp != nil))
	}
	m.gaps = append(m.gaps, fmt.Sprintf("%s, during %s: HPAs of the namespace %v", now.Format("15:04:05.000"), m.phase, others))
}

func (m *hpaMonitor) observeEvent(ev watch.Event) {
	h, ok := ev.Object.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		if ev.Type == watch.Error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.events = append(m.events, fmt.Sprintf("watch error during %s: %v", m.phase, apierrors.FromObject(ev.Object)))
		}
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	desc := fmt.Sprintf("%s %s during %s: HPA %s (uid %s), %s", time.Now().Format("15:04:05.000"), ev.Type, m.phase, h.Name, h.UID, describeHPA(h))
	m.events = append(m.events, desc)
	if !m.targetsDeployment(h) {
		return
	}
	m.uids[h.UID] = true
	if ev.Type == watch.Deleted || h.DeletionTimestamp != nil {
		m.deletions = append(m.deletions, desc)
	}
}

func (m *hpaMonitor) setPhase(phase string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.phase = phase
}

// stop stops polling and watching; it may be called more than once.
func (m *hpaMonitor) stop() {
	m.stopOnce.Do(func() {
		m.cancel()
		m.done.Wait()
	})
}

func (m *hpaMonitor) report() hpaMonitorReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := hpaMonitorReport{polls: m.polls, errors: m.errors, maxInterval: m.maxInterval,
		gaps: m.gaps, events: m.events, deletions: m.deletions}
	for uid := range m.uids {
		r.uids = append(r.uids, uid)
	}
	return r
}

// describeHPAOrNil is describeHPA, or "no HPA".
func describeHPAOrNil(h *autoscalingv2.HorizontalPodAutoscaler) string {
	if h == nil {
		return "no HPA"
	}
	return describeHPA(h)
}

// describeHPA sums up an HPA's owner and spec on one line.
func describeHPA(h *autoscalingv2.HorizontalPodAutoscaler) string {
	owner := "none"
	if o := metav1.GetControllerOf(h); o != nil {
		owner = o.Kind + "/" + o.Name
	}
	var metrics []string
	for _, m := range h.Spec.Metrics {
		switch {
		case m.External != nil:
			metrics = append(metrics, "External "+m.External.Metric.Name)
		case m.Resource != nil:
			metrics = append(metrics, "Resource "+string(m.Resource.Name))
		default:
			metrics = append(metrics, string(m.Type))
		}
	}
	minReplicas := "unset"
	if h.Spec.MinReplicas != nil {
		minReplicas = fmt.Sprint(*h.Spec.MinReplicas)
	}
	return fmt.Sprintf("owner %s, target %s %s, replicas %s..%d, metrics %v, %s=%q",
		owner, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name, minReplicas, h.Spec.MaxReplicas, metrics,
		helmResourcePolicy, h.Annotations[helmResourcePolicy])
}
