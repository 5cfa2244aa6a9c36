package scaleloop

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedalisters "github.com/ebb-autoscaler/ebb/pkg/client/listers/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/poller"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

// FieldManager names the scale loop in managedFields of the scale writes.
const FieldManager = "ebb-operator"

// Replicas reads and writes a scale target's replica count.
type Replicas interface {
	Get(ctx context.Context, namespace string, gr schema.GroupResource, name string) (int32, error)
	Set(ctx context.Context, namespace string, gr schema.GroupResource, name string, replicas int32) error
}

// Activity is what the loop knows of a ScaledObject's triggers.
type Activity struct {
	// Known is false until the triggers were polled once.
	Known bool
	// Active reports whether any trigger was active at the last poll or,
	// with a scaling modifiers formula, whether the formula's result
	// exceeded scalingModifiers.activationTarget.
	Active bool
	// LastActive is when a trigger was last seen active (zero: never
	// since the operator started, and not persisted).
	LastActive time.Time
	// Failing counts triggers whose last poll failed.
	Failing int
	// Triggers holds each trigger's own activity (its scaler's activation
	// threshold), by its external metric name, as status.triggersActivity
	// shows it: a failing trigger is not active, as in KEDA, and when
	// every trigger failed the last poll, the map stays as it was. A
	// trigger whose metric name is not known (an external scaler that has
	// not named its metric yet) is absent. Nil until a poll in which some
	// trigger answered.
	Triggers map[string]bool
}

// Loop polls tracked ScaledObjects and scales their targets to and from
// zero. Its state (activity, last active time) is in memory; the
// controller persists what users see on transitions.
type Loop struct {
	lister   kedalisters.ScaledObjectLister
	triggers *triggers.Cache
	replicas Replicas
	recorder record.EventRecorder
	clock    clock.Clock
	poller   *poller.Poller
	// changed is called when a ScaledObject's activity changes, so the
	// controller writes its status.
	changed func(cache.ObjectName)
	// pollTimeout bounds each poll of a trigger (see Trigger.PollTimeout),
	// so a hung event source cannot hold a poller worker.
	pollTimeout time.Duration
	// pollerOpts configure the poller.
	pollerOpts []poller.Option

	mu     sync.Mutex
	states map[cache.ObjectName]*Activity
}

// Option configures a Loop.
type Option func(*Loop)

// WithPollTimeout sets the bound of one poll of a trigger's source
// (triggers.DefaultPollTimeout by default; a scaler's own shorter timeout
// applies, see triggers.Trigger.PollTimeout). A poll that runs out counts
// as the trigger failing.
func WithPollTimeout(d time.Duration) Option { return func(l *Loop) { l.pollTimeout = d } }

// WithPollerOptions passes options to the loop's poller.
func WithPollerOptions(opts ...poller.Option) Option {
	return func(l *Loop) { l.pollerOpts = append(l.pollerOpts, opts...) }
}

// New returns a loop; Run starts it.
func New(lister kedalisters.ScaledObjectLister, trigs *triggers.Cache, replicas Replicas, recorder record.EventRecorder,
	changed func(cache.ObjectName), clk clock.Clock, opts ...Option) *Loop {
	l := &Loop{
		lister:      lister,
		triggers:    trigs,
		replicas:    replicas,
		recorder:    recorder,
		clock:       clk,
		changed:     changed,
		pollTimeout: triggers.DefaultPollTimeout,
		states:      map[cache.ObjectName]*Activity{},
	}
	for _, o := range opts {
		o(l)
	}
	l.poller = poller.New(l.poll, append([]poller.Option{poller.WithClock(clk)}, l.pollerOpts...)...)
	return l
}

// Poller returns the loop's poller (for metrics and liveness).
func (l *Loop) Poller() *poller.Poller { return l.poller }

// Run polls until ctx is done.
func (l *Loop) Run(ctx context.Context) error { return l.poller.Run(ctx) }

// Track polls so's triggers every pollingInterval (30 s by default).
func (l *Loop) Track(so *v1alpha1.ScaledObject) {
	interval := time.Duration(v1alpha1.DefaultPollingInterval) * time.Second
	if p := so.Spec.PollingInterval; p != nil && *p > 0 {
		interval = time.Duration(*p) * time.Second
	}
	l.poller.Set(cache.NewObjectName(so.Namespace, so.Name), interval)
}

// Untrack stops polling key and forgets its state.
func (l *Loop) Untrack(key cache.ObjectName) {
	l.poller.Remove(key)
	l.mu.Lock()
	delete(l.states, key)
	l.mu.Unlock()
}

// Activity returns what the loop knows of key's triggers.
func (l *Loop) Activity(key cache.ObjectName) Activity {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st, ok := l.states[key]; ok {
		a := *st
		a.Triggers = maps.Clone(st.Triggers)
		return a
	}
	return Activity{}
}

// poll reads key's triggers once and scales its target to or from zero.
func (l *Loop) poll(ctx context.Context, key cache.ObjectName) {
	logger := klog.FromContext(ctx).WithValues("scaledObject", key)
	so, err := l.lister.ScaledObjects(key.Namespace).Get(key.Name)
	if err != nil || so.DeletionTimestamp != nil || so.Status.ScaleTargetGVKR == nil {
		return // the controller untracks it, or has not resolved the target yet
	}
	if paused, _, err := so.PausedState(); paused || err != nil {
		return // paused, or a paused-replicas value the controller reports
	}
	trigs, err := l.triggers.Scalers(so)
	if err != nil {
		return
	}
	active, polled, failing := false, 0, 0
	// With a scaling modifiers formula the formula decides activation, over
	// the named triggers' values (a failing trigger is nil in it), as KEDA
	// decides it: active when the result exceeds activationTarget.
	var values map[string]float64
	withFormula := so.HasScalingModifiersFormula()
	if withFormula {
		values = make(map[string]float64, len(trigs))
	}
	// Each trigger's own activity, by its external metric name.
	triggerActivity := map[string]bool{}
	var failed []triggers.Trigger
	for _, t := range trigs {
		if t.Scaler == nil {
			continue // cpu and memory: the HPA reads them itself
		}
		polled++
		reading, err := t.Poll(ctx, triggers.OpIsActive, l.pollTimeout)
		t.Remember(reading, err, l.clock.Now())
		if err != nil {
			failing++
			failed = append(failed, t)
			logger.V(2).Info("Trigger poll failed", "trigger", t.Index, "type", t.Type, "err", err)
			continue
		}
		if name := t.ExternalMetricName(); name != "" {
			triggerActivity[name] = reading.Active
		}
		if withFormula {
			if t.Name != "" {
				values[t.Name] = reading.Value.AsApproximateFloat64()
			}
			continue
		}
		active = active || reading.Active
	}
	if polled == 0 {
		return // only cpu/memory triggers: the HPA alone scales, never to zero
	}
	if ctx.Err() != nil {
		return // cut short (leadership lost, shutdown): this poll tells nothing
	}
	// decided is false when no activity can be read from this poll: every
	// trigger failed, or the formula could not be evaluated.
	decided := failing < polled
	if withFormula && decided {
		active, decided = l.formulaActive(ctx, so, values)
	}

	now := l.clock.Now()
	l.mu.Lock()
	st, ok := l.states[key]
	if !ok {
		st = &Activity{}
		if t := so.Status.LastActiveTime; t != nil {
			st.LastActive = t.Time // persisted across restarts
		}
		l.states[key] = st
	}
	if failing == polled {
		// Nothing was learnt: as the ScaledObject's activity, the
		// triggers' stays as it was.
		triggerActivity = st.Triggers
	} else {
		// As KEDA: a failing trigger is not active.
		for _, t := range failed {
			if name := t.ExternalMetricName(); name != "" {
				triggerActivity[name] = false
			}
		}
	}
	// The controller hears of a change of what the status shows: the
	// ScaledObject's activity, or a trigger's. Never of a poll that
	// changed nothing.
	changed := !st.Known || (st.Active != active && decided) || !maps.Equal(st.Triggers, triggerActivity)
	st.Triggers = triggerActivity
	if decided {
		st.Known, st.Active = true, active
	}
	if active {
		st.LastActive = now
	}
	st.Failing = failing
	activity := *st
	l.mu.Unlock()
	if changed && l.changed != nil {
		l.changed(key)
	}
	if !decided {
		// Every trigger failed (or the formula gave nothing): hold the
		// replicas where they are; the MetricsService serves the fallback
		// to the HPA if one is set.
		return
	}

	gvkr := so.Status.ScaleTargetGVKR
	gr := schema.GroupResource{Group: gvkr.Group, Resource: gvkr.Resource}
	target := so.Spec.ScaleTargetRef.Name
	current, err := l.replicas.Get(ctx, so.Namespace, gr, target)
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		logger.Error(err, "Reading the target's replicas failed", "target", target)
		return
	}
	want, reason := Decide(so, current, activity, now)
	if want == current {
		return
	}
	if err := l.replicas.Set(ctx, so.Namespace, gr, target, want); err != nil {
		logger.Error(err, "Scaling the target failed", "target", target, "from", current, "to", want)
		l.recorder.Eventf(so, corev1.EventTypeWarning, "ScaleFailed", "Scaling %s from %d to %d failed: %v", target, current, want, err)
		return
	}
	logger.Info("Scaled the target", "target", target, "from", current, "to", want, "reason", reason)
	l.recorder.Eventf(so, corev1.EventTypeNormal, reason, "Scaled %s from %d to %d", target, current, want)
}

// formulaActive evaluates so's scaling modifiers formula over values and
// reports whether the result exceeds activationTarget (0 when unset).
// ok is false when the formula cannot be evaluated (invalid, or failing
// over the values it got, such as arithmetic on a failing trigger).
func (l *Loop) formulaActive(ctx context.Context, so *v1alpha1.ScaledObject, values map[string]float64) (active, ok bool) {
	logger := klog.FromContext(ctx)
	prog, err := l.triggers.Formula(so)
	if err == nil && prog == nil {
		err = errors.New("no compiled formula")
	}
	if err != nil {
		logger.V(2).Info("Cannot decide activity: the scaling modifiers formula is invalid", "err", err)
		return false, false
	}
	v, err := prog.Eval(values)
	if err != nil {
		logger.V(2).Info("Cannot decide activity: the scaling modifiers formula did not give a value", "err", err)
		return false, false
	}
	threshold, err := activationTarget(so.Spec.Advanced.ScalingModifiers)
	if err != nil {
		logger.V(2).Info("Cannot decide activity", "err", err)
		return false, false
	}
	return v > threshold, true
}

// activationTarget parses scalingModifiers.activationTarget; empty is 0.
func activationTarget(sm *v1alpha1.ScalingModifiers) (float64, error) {
	s := strings.TrimSpace(sm.ActivationTarget)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("spec.advanced.scalingModifiers.activationTarget %q is not a number", sm.ActivationTarget)
	}
	return v, nil
}

// Decide returns the replica count the loop wants for a target at
// current replicas, and the event reason, as KEDA decides it:
//   - active and at zero (or at idleReplicaCount): max(minReplicaCount, 1);
//   - not active, past cooldownPeriod since last active and past
//     initialCooldownPeriod since creation: idleReplicaCount, or zero when
//     minReplicaCount is 0; a minimum above zero without idle replicas is
//     left to the HPA;
//   - otherwise current (the HPA scales between minimum and maximum).
func Decide(so *v1alpha1.ScaledObject, current int32, activity Activity, now time.Time) (int32, string) {
	minReplicas := int32(0)
	if m := so.Spec.MinReplicaCount; m != nil {
		minReplicas = *m
	}
	activeFloor := max(minReplicas, 1)
	idle := so.Spec.IdleReplicaCount

	if activity.Active {
		if current == 0 || (idle != nil && current == *idle && current < activeFloor) {
			return activeFloor, "Activated"
		}
		return current, ""
	}
	floor := int32(-1)
	switch {
	case idle != nil:
		floor = *idle
	case minReplicas == 0:
		floor = 0
	}
	if floor < 0 || current <= floor {
		return current, ""
	}
	cooldown := time.Duration(v1alpha1.DefaultCooldownPeriod) * time.Second
	if c := so.Spec.CooldownPeriod; c != nil {
		cooldown = time.Duration(*c) * time.Second
	}
	if !activity.LastActive.IsZero() && now.Sub(activity.LastActive) < cooldown {
		return current, ""
	}
	if ic := so.Spec.InitialCooldownPeriod; ic != nil && now.Sub(so.CreationTimestamp.Time) < time.Duration(*ic)*time.Second {
		return current, ""
	}
	return floor, "Deactivated"
}

// ScaleReplicas reads and writes replicas through the /scale subresource.
type ScaleReplicas struct {
	Client scale.ScalesGetter
	// ReadyPods counts the running and ready pods of a namespace that
	// match a selector, for Counts; nil leaves Counts to report the
	// scale's status.replicas as ready.
	ReadyPods func(ctx context.Context, namespace string, selector labels.Selector) (int32, error)
}

// Get returns spec.replicas of the target's scale.
func (s ScaleReplicas) Get(ctx context.Context, namespace string, gr schema.GroupResource, name string) (int32, error) {
	sc, err := s.Client.Scales(namespace).Get(ctx, gr, name, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	return sc.Spec.Replicas, nil
}

// Counts returns spec.replicas of the target's scale and its ready
// replicas: the running and ready pods its status.selector selects (as
// KEDA counts them for a fallback), or, without ReadyPods or a selector,
// status.replicas.
func (s ScaleReplicas) Counts(ctx context.Context, namespace string, gr schema.GroupResource, name string) (current, ready int32, err error) {
	sc, err := s.Client.Scales(namespace).Get(ctx, gr, name, metav1.GetOptions{})
	if err != nil {
		return 0, 0, err
	}
	if s.ReadyPods == nil || sc.Status.Selector == "" {
		return sc.Spec.Replicas, sc.Status.Replicas, nil
	}
	sel, err := labels.Parse(sc.Status.Selector)
	if err != nil {
		return 0, 0, fmt.Errorf("the scale of %s %s/%s has an unparsable selector %q: %w", gr, namespace, name, sc.Status.Selector, err)
	}
	ready, err = s.ReadyPods(ctx, namespace, sel)
	if err != nil {
		return 0, 0, fmt.Errorf("counting the ready pods of %s %s/%s: %w", gr, namespace, name, err)
	}
	return sc.Spec.Replicas, ready, nil
}

// Set writes spec.replicas of the target's scale (with its
// resourceVersion, so a concurrent change is not overwritten).
func (s ScaleReplicas) Set(ctx context.Context, namespace string, gr schema.GroupResource, name string, replicas int32) error {
	sc, err := s.Client.Scales(namespace).Get(ctx, gr, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	sc.Spec.Replicas = replicas
	if _, err := s.Client.Scales(namespace).Update(ctx, gr, sc, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("updating the scale of %s %s/%s: %w", gr, namespace, name, err)
	}
	return nil
}
