package scaledjob

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedafake "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned/fake"
	kedainformers "github.com/ebb-autoscaler/ebb/pkg/client/informers/externalversions"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/triggers"
)

//lint:file-ignore SA1019 the tests set the deprecated spec.rolloutStrategy on purpose

const testNS = "work"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// source is the fake event source of every trigger of a test: its value,
// activity and error can change between polls.
type source struct {
	mu     sync.Mutex
	value  string
	active bool
	err    error
}

func (s *source) set(value string, active bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.value, s.active, s.err = value, active, err
}

func (s *source) Poll(context.Context) (scaler.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return scaler.Reading{}, s.err
	}
	return scaler.Reading{Value: resource.MustParse(s.value), Active: s.active}, nil
}

func (s *source) Close() error { return nil }

// fixture holds the fakes of one test: clientsets whose informers'
// indexers are filled directly (no watch), a trigger cache whose scalers
// are one fake source, a fake clock and a recorder.
type fixture struct {
	t         *testing.T
	kube      *kubefake.Clientset
	keda      *kedafake.Clientset
	recorder  *record.FakeRecorder
	clock     *testingclock.FakeClock
	src       *source
	trigs     *triggers.Cache
	c         *Controller
	sjStore   cache.Indexer
	jobStore  cache.Indexer
	podStore  cache.Indexer
	ctx       context.Context
	created   int
	createdMu sync.Mutex
}

func newFixture(t *testing.T, sjs []*v1alpha1.ScaledJob, objs ...runtime.Object) *fixture {
	t.Helper()
	return newFixtureWithResolver(t, nil, sjs, objs...)
}

// newFixtureWithResolver is newFixture with the triggers resolved by
// the resolver resolveJob gives (nil: their metadata as written).
func newFixtureWithResolver(t *testing.T, resolveJob func(kube *kubefake.Clientset, keda *kedafake.Clientset) triggers.Option,
	sjs []*v1alpha1.ScaledJob, objs ...runtime.Object) *fixture {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	f := &fixture{t: t, recorder: record.NewFakeRecorder(100), clock: testingclock.NewFakeClock(t0), src: &source{value: "0"}, ctx: ctx}
	var kedaObjects, kubeObjects []runtime.Object
	for _, sj := range sjs {
		kedaObjects = append(kedaObjects, sj)
	}
	for _, o := range objs {
		if _, ok := o.(*v1alpha1.TriggerAuthentication); ok {
			kedaObjects = append(kedaObjects, o)
		} else {
			kubeObjects = append(kubeObjects, o)
		}
	}
	f.kube = kubefake.NewClientset(kubeObjects...)
	f.keda = kedafake.NewSimpleClientset(kedaObjects...)
	// The fake clientset neither generates names nor sets UIDs.
	f.kube.PrependReactor("create", "jobs", func(action core.Action) (bool, runtime.Object, error) {
		j := action.(core.CreateAction).GetObject().(*batchv1.Job)
		if j.Name == "" && j.GenerateName != "" {
			f.createdMu.Lock()
			f.created++
			j.Name = fmt.Sprintf("%s%05d", j.GenerateName, f.created)
			f.createdMu.Unlock()
			j.UID = types.UID(j.Name + "-uid")
		}
		return false, nil, nil
	})

	opts := []triggers.Option{triggers.WithScalerConstructor(func(scalers.Config, scaler.Deps) (scaler.Scaler, error) { return f.src, nil })}
	if resolveJob != nil {
		opts = append(opts, resolveJob(f.kube, f.keda))
	}
	f.trigs = triggers.NewCache(scaler.Deps{}, opts...)
	t.Cleanup(f.trigs.Close)

	kubeFactory := kubeinformers.NewSharedInformerFactory(f.kube, 0)
	kedaFactory := kedainformers.NewSharedInformerFactory(f.keda, 0)
	sjInformer := kedaFactory.Keda().V1alpha1().ScaledJobs()
	jobInformer := kubeFactory.Batch().V1().Jobs()
	podInformer := kubeFactory.Core().V1().Pods()
	c, err := NewController(klog.FromContext(ctx), f.kube, f.keda, sjInformer, jobInformer, podInformer, f.trigs, f.recorder,
		WithClock(f.clock), WithVersion("v1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	f.sjStore, f.jobStore, f.podStore = sjInformer.Informer().GetIndexer(), jobInformer.Informer().GetIndexer(), podInformer.Informer().GetIndexer()
	for _, sj := range sjs {
		f.must(f.sjStore.Add(sj))
	}
	for _, o := range objs {
		switch o := o.(type) {
		case *batchv1.Job:
			f.must(f.jobStore.Add(o))
		case *corev1.Pod:
			f.must(f.podStore.Add(o))
		}
	}
	return f
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// refresh puts the ScaledJobs as the fake API server has them into the
// informer's indexer, as a watch would.
func (f *fixture) refresh() {
	f.t.Helper()
	list, err := f.keda.KedaV1alpha1().ScaledJobs(testNS).List(context.Background(), metav1.ListOptions{})
	f.must(err)
	for i := range list.Items {
		f.must(f.sjStore.Update(&list.Items[i]))
	}
}

// sync reconciles name as a worker would, taking what the queue holds
// first.
func (f *fixture) sync(name string) error {
	f.t.Helper()
	for f.c.queue.Len() > 0 {
		k, _ := f.c.queue.Get()
		f.c.queue.Done(k)
	}
	err := f.c.sync(f.ctx, cache.NewObjectName(testNS, name))
	f.refresh()
	return err
}

func (f *fixture) poll(name string) { f.c.poll(f.ctx, cache.NewObjectName(testNS, name)) }

func (f *fixture) get(name string) *v1alpha1.ScaledJob {
	f.t.Helper()
	sj, err := f.keda.KedaV1alpha1().ScaledJobs(testNS).Get(context.Background(), name, metav1.GetOptions{})
	f.must(err)
	return sj
}

// jobWrites lists the Job creations and deletions sent to the fake
// clientset since the last call, as "create <generateName>" and
// "delete <name> <propagation>".
func (f *fixture) jobWrites() []string {
	var out []string
	for _, a := range f.kube.Actions() {
		if a.GetResource().Resource != "jobs" {
			continue
		}
		switch a := a.(type) {
		case core.CreateAction:
			out = append(out, "create "+a.GetObject().(*batchv1.Job).GenerateName)
		case core.DeleteAction:
			opts := a.GetDeleteOptions()
			p := "<none>"
			if opts.PropagationPolicy != nil {
				p = string(*opts.PropagationPolicy)
			}
			if opts.Preconditions == nil || opts.Preconditions.UID == nil {
				p += " without UID precondition"
			}
			out = append(out, "delete "+a.GetName()+" "+p)
		}
	}
	f.kube.ClearActions()
	return out
}

// statusWrites counts the status writes sent since the last call.
func (f *fixture) statusWrites() int {
	n := 0
	for _, a := range f.keda.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			n++
		}
	}
	f.keda.ClearActions()
	return n
}

// events returns the events recorded since the last call.
func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func scaledJob(name string, mutate ...func(*v1alpha1.ScaledJob)) *v1alpha1.ScaledJob {
	sj := &v1alpha1.ScaledJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, UID: types.UID(name + "-uid"), Generation: 1},
		Spec: v1alpha1.ScaledJobSpec{
			JobTargetRef: &batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "main", Image: "worker:1"}},
			}}},
			PollingInterval: ptr.To[int32](5),
			Triggers: []v1alpha1.ScaleTrigger{{Type: "metrics-api", Metadata: map[string]string{
				"url": "http://queue.example/len", "valueLocation": "length", "targetValue": "5",
			}}},
		},
	}
	for _, m := range mutate {
		m(sj)
	}
	return sj
}

func withTarget(v string) func(*v1alpha1.ScaledJob) {
	return func(sj *v1alpha1.ScaledJob) {
		for i := range sj.Spec.Triggers {
			sj.Spec.Triggers[i].Metadata["targetValue"] = v
		}
	}
}

func withStrategy(s v1alpha1.ScalingStrategy) func(*v1alpha1.ScaledJob) {
	return func(sj *v1alpha1.ScaledJob) { sj.Spec.ScalingStrategy = &s }
}

// ownedJob is a Job of ScaledJob owner (generation 1) in the cache.
func ownedJob(owner, name string, mutate ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{
		Namespace: testNS, Name: name, UID: types.UID(name + "-uid"),
		CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour)),
		Labels:            map[string]string{v1alpha1.ScaledJobNameLabel: owner},
		Annotations:       map[string]string{v1alpha1.ScaledJobGenerationAnnotation: "1"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledJob", Name: owner,
			UID: types.UID(owner + "-uid"), Controller: ptr.To(true)}},
	}}
	for _, m := range mutate {
		m(j)
	}
	return j
}

func generation(g string) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		if g == "" {
			delete(j.Annotations, v1alpha1.ScaledJobGenerationAnnotation)
			return
		}
		j.Annotations[v1alpha1.ScaledJobGenerationAnnotation] = g
	}
}

// podOf is a pod of Job j in phase, with conditions True.
func podOf(j *batchv1.Job, phase corev1.PodPhase, conditions ...corev1.PodConditionType) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: j.Name + "-pod", UID: types.UID(j.Name + "-pod-uid"),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: j.Name, UID: j.UID, Controller: ptr.To(true)}}},
		Status: corev1.PodStatus{Phase: phase},
	}
	for _, c := range conditions {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue})
	}
	return p
}

// TestPoll runs one poll of a ScaledJob and checks the Jobs it creates
// and deletes: each strategy's count on a live set of Jobs and pods, the
// caps, the rollout and the history limits.
func TestPoll(t *testing.T) {
	running := func(owner string, n int) []runtime.Object {
		var out []runtime.Object
		for i := range n {
			out = append(out, ownedJob(owner, fmt.Sprintf("%s-r%d", owner, i)))
		}
		return out
	}
	// startedJobs are n running Jobs whose pod runs, and pendingJobs n
	// whose pod is Pending.
	withPods := func(owner, prefix string, n int, phase corev1.PodPhase, conds ...corev1.PodConditionType) []runtime.Object {
		var out []runtime.Object
		for i := range n {
			j := ownedJob(owner, fmt.Sprintf("%s-%s%d", owner, prefix, i))
			out = append(out, j, podOf(j, phase, conds...))
		}
		return out
	}
	join := func(lists ...[]runtime.Object) []runtime.Object { return slices.Concat(lists...) }
	creates := func(n int) []string {
		var out []string
		for range n {
			out = append(out, "create sj-")
		}
		return out
	}
	type source struct {
		value  string
		active bool
		err    error
	}
	for name, tc := range map[string]struct {
		sj   *v1alpha1.ScaledJob
		objs []runtime.Object
		src  source
		want []string
	}{
		"default: queue over target": {
			sj: scaledJob("sj"), src: source{value: "12", active: true},
			want: creates(3), // ⌈12/5⌉
		},
		"default: running Jobs deducted": {
			sj: scaledJob("sj"), src: source{value: "12", active: true}, objs: running("sj", 2),
			want: creates(1),
		},
		"finished Jobs are not running": {
			sj: scaledJob("sj"), src: source{value: "12", active: true},
			objs: []runtime.Object{ownedJob("sj", "sj-done", completed(1)), ownedJob("sj", "sj-failed", failed(2))},
			want: creates(3),
		},
		"Jobs of another owner are not counted": {
			sj: scaledJob("sj"), src: source{value: "12", active: true},
			objs: []runtime.Object{ownedJob("sj", "stranger", func(j *batchv1.Job) { j.OwnerReferences[0].UID = "other-uid" })},
			want: creates(3),
		},
		"maxReplicaCount caps": {
			sj:   scaledJob("sj", func(sj *v1alpha1.ScaledJob) { sj.Spec.MaxReplicaCount = ptr.To[int32](2) }),
			src:  source{value: "100", active: true},
			want: creates(2),
		},
		"maxReplicaCount reached": {
			sj:   scaledJob("sj", func(sj *v1alpha1.ScaledJob) { sj.Spec.MaxReplicaCount = ptr.To[int32](2) }),
			src:  source{value: "100", active: true},
			objs: running("sj", 2),
		},
		"not active: nothing": {
			sj: scaledJob("sj"), src: source{value: "12", active: false},
		},
		"minReplicaCount without work": {
			sj:   scaledJob("sj", func(sj *v1alpha1.ScaledJob) { sj.Spec.MinReplicaCount = ptr.To[int32](2) }),
			src:  source{value: "0"},
			want: creates(2),
		},
		"failing trigger: nothing": {
			sj: scaledJob("sj"), src: source{err: errors.New("down")},
		},
		"failing trigger with minReplicaCount": {
			sj:   scaledJob("sj", func(sj *v1alpha1.ScaledJob) { sj.Spec.MinReplicaCount = ptr.To[int32](1) }),
			src:  source{err: errors.New("down")},
			want: creates(1),
		},
		"custom": {
			sj: scaledJob("sj", withTarget("1"), withStrategy(v1alpha1.ScalingStrategy{
				Strategy: "custom", CustomScalingQueueLengthDeduction: ptr.To[int32](1), CustomScalingRunningJobPercentage: "0.5",
			})),
			src: source{value: "10", active: true}, objs: running("sj", 4),
			want: creates(7), // 10 - 1 - ⌊4 × 0.5⌋
		},
		"accurate: pending Jobs deducted": {
			sj:   scaledJob("sj", withTarget("1"), withStrategy(v1alpha1.ScalingStrategy{Strategy: "accurate"})),
			src:  source{value: "5", active: true},
			objs: join(withPods("sj", "run", 2, corev1.PodRunning), withPods("sj", "pend", 2, corev1.PodPending)),
			want: creates(3), // min(5 - 2 pending, 100 - 4 running)
		},
		"accurate: a Job without pods is pending": {
			sj:   scaledJob("sj", withTarget("1"), withStrategy(v1alpha1.ScalingStrategy{Strategy: "accurate"})),
			src:  source{value: "5", active: true},
			objs: join(withPods("sj", "run", 1, corev1.PodSucceeded), running("sj", 2)),
			want: creates(3),
		},
		"accurate: capped by maxReplicaCount": {
			sj: scaledJob("sj", withTarget("1"), withStrategy(v1alpha1.ScalingStrategy{Strategy: "accurate"}),
				func(sj *v1alpha1.ScaledJob) { sj.Spec.MaxReplicaCount = ptr.To[int32](6) }),
			src:  source{value: "5", active: true},
			objs: withPods("sj", "run", 4, corev1.PodRunning),
			want: creates(2), // min(5 - 0, 6 - 4)
		},
		"accurate: pendingPodConditions": {
			sj:  scaledJob("sj", withTarget("1"), withStrategy(v1alpha1.ScalingStrategy{Strategy: "accurate", PendingPodConditions: []string{"Ready"}})),
			src: source{value: "5", active: true},
			// Running but not Ready: pending under the conditions.
			objs: join(withPods("sj", "run", 2, corev1.PodRunning), withPods("sj", "ready", 1, corev1.PodRunning, corev1.PodReady)),
			want: creates(3), // min(5 - 2, 100 - 3)
		},
		"eager": {
			sj: scaledJob("sj", withTarget("1"), withStrategy(v1alpha1.ScalingStrategy{Strategy: "eager"}),
				func(sj *v1alpha1.ScaledJob) { sj.Spec.MaxReplicaCount = ptr.To[int32](10) }),
			src:  source{value: "4", active: true},
			objs: join(withPods("sj", "run", 3, corev1.PodRunning), withPods("sj", "pend", 2, corev1.PodPending)),
			want: creates(3), // min(10 - 5 running - 2 pending, 4); scaleTo becomes 10
		},
		"multiple triggers, sum": {
			sj: scaledJob("sj", func(sj *v1alpha1.ScaledJob) {
				sj.Spec.Triggers = append(sj.Spec.Triggers, *sj.Spec.Triggers[0].DeepCopy())
				sj.Spec.ScalingStrategy = &v1alpha1.ScalingStrategy{MultipleScalersCalculation: "sum"}
			}),
			src:  source{value: "12", active: true},
			want: creates(5), // ⌈12/5 + 12/5⌉ = ⌈4.8⌉
		},
		"history: oldest finished beyond the limits": {
			sj: scaledJob("sj", func(sj *v1alpha1.ScaledJob) {
				sj.Spec.SuccessfulJobsHistoryLimit, sj.Spec.FailedJobsHistoryLimit = ptr.To[int32](1), ptr.To[int32](0)
			}),
			objs: []runtime.Object{
				ownedJob("sj", "sj-c1", completed(1)), ownedJob("sj", "sj-c3", completed(3)), ownedJob("sj", "sj-c2", completed(2)),
				ownedJob("sj", "sj-f1", failed(5)), ownedJob("sj", "sj-r1"),
			},
			want: []string{"delete sj-c1 Background", "delete sj-c2 Background", "delete sj-f1 Background"},
		},
		"history: default limits keep 100": {
			sj:   scaledJob("sj"),
			objs: []runtime.Object{ownedJob("sj", "sj-c1", completed(1)), ownedJob("sj", "sj-f1", failed(2))},
		},
		"rollout immediate: running Jobs of older generations": {
			sj: scaledJob("sj", func(sj *v1alpha1.ScaledJob) { sj.Generation = 3 }),
			objs: []runtime.Object{
				ownedJob("sj", "sj-old", generation("2")), ownedJob("sj", "sj-none", generation("")),
				ownedJob("sj", "sj-old-done", generation("2"), completed(1)), ownedJob("sj", "sj-new", generation("3")),
				ownedJob("sj", "sj-old-going", generation("2"), deleting),
			},
			want: []string{"delete sj-none Background", "delete sj-old Background"},
		},
		"rollout immediate, foreground": {
			sj: scaledJob("sj", func(sj *v1alpha1.ScaledJob) {
				sj.Generation = 3
				sj.Spec.Rollout = &v1alpha1.Rollout{PropagationPolicy: "foreground"}
			}),
			objs: []runtime.Object{ownedJob("sj", "sj-old", generation("2"))},
			want: []string{"delete sj-old Foreground"},
		},
		"rollout gradual": {
			sj: scaledJob("sj", func(sj *v1alpha1.ScaledJob) {
				sj.Generation = 3
				sj.Spec.Rollout = &v1alpha1.Rollout{Strategy: "gradual"}
			}),
			objs: []runtime.Object{ownedJob("sj", "sj-old", generation("2"))},
		},
		"rollout gradual, deprecated field": {
			sj: scaledJob("sj", func(sj *v1alpha1.ScaledJob) {
				sj.Generation = 3
				sj.Spec.RolloutStrategy = "gradual"
			}),
			objs: []runtime.Object{ownedJob("sj", "sj-old", generation("2"))},
		},
		"rollout of another owner's Job: never": {
			sj: scaledJob("sj", func(sj *v1alpha1.ScaledJob) { sj.Generation = 3 }),
			objs: []runtime.Object{ownedJob("sj", "stranger", generation("2"), func(j *batchv1.Job) {
				j.OwnerReferences[0].UID = "other-uid"
			})},
		},
		"paused: nothing": {
			sj: scaledJob("sj", func(sj *v1alpha1.ScaledJob) {
				sj.Annotations = map[string]string{v1alpha1.PausedAnnotation: "true"}
				sj.Spec.MinReplicaCount = ptr.To[int32](2)
			}),
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, []*v1alpha1.ScaledJob{tc.sj}, tc.objs...)
			if tc.src.value == "" {
				tc.src.value = "0"
			}
			f.src.set(tc.src.value, tc.src.active, tc.src.err)
			f.c.track(tc.sj)
			f.poll("sj")
			got := f.jobWrites()
			slices.Sort(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Job writes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPollCountsCreatedJobsTheCacheHasNotShown checks that a Job cache
// that lags behind the loop's own creations never makes it create the
// same Jobs twice, and that such an expectation ends when the Job shows
// up or after createdExpiry.
func TestPollCountsCreatedJobsTheCacheHasNotShown(t *testing.T) {
	sj := scaledJob("sj")
	f := newFixture(t, []*v1alpha1.ScaledJob{sj})
	f.src.set("12", true, nil)
	f.c.track(sj)

	f.poll("sj")
	if got := len(f.jobWrites()); got != 3 {
		t.Fatalf("first poll created %d Jobs, want 3", got)
	}
	// The cache has not seen them: still counted, nothing created.
	f.poll("sj")
	if got := f.jobWrites(); len(got) != 0 {
		t.Fatalf("second poll, cache behind: %v; want nothing", got)
	}
	// The cache shows one of them finished, and the others running: the
	// finished one makes room for one more.
	jobs, err := f.kube.BatchV1().Jobs(testNS).List(context.Background(), metav1.ListOptions{})
	f.must(err)
	for i := range jobs.Items {
		j := jobs.Items[i].DeepCopy()
		if i == 0 {
			completed(1)(j)
		}
		f.must(f.jobStore.Add(j))
	}
	f.poll("sj")
	if got := len(f.jobWrites()); got != 1 {
		t.Fatalf("third poll created %d Jobs, want 1", got)
	}
	// That one never shows up (deleted at once, say): counted until
	// createdExpiry, not after.
	f.clock.Step(createdExpiry - time.Second)
	f.poll("sj")
	if got := len(f.jobWrites()); got != 0 {
		t.Fatalf("poll before the expiry created %d Jobs, want 0", got)
	}
	f.clock.Step(2 * time.Second)
	f.poll("sj")
	if got := len(f.jobWrites()); got != 1 {
		t.Fatalf("poll after the expiry created %d Jobs, want 1", got)
	}
}

// TestSyncAndStatus follows a ScaledJob through the reconciler and the
// loop: finalizer, Ready, tracking, and the status written on transitions
// only (Active, lastActiveTime, Ready on failing triggers), never per poll.
func TestSyncAndStatus(t *testing.T) {
	sj := scaledJob("sj", func(sj *v1alpha1.ScaledJob) {
		sj.Spec.Triggers[0].AuthenticationRef = &v1alpha1.AuthenticationRef{Name: "creds"}
		sj.Spec.Triggers[0].Name = "queue"
	})
	f := newFixture(t, []*v1alpha1.ScaledJob{sj})
	key := cache.NewObjectName(testNS, "sj")

	f.must(f.sync("sj"))
	got := f.get("sj")
	if !slices.Contains(got.Finalizers, v1alpha1.Finalizer) {
		t.Errorf("finalizers = %v, want %s", got.Finalizers, v1alpha1.Finalizer)
	}
	if r := got.Status.Conditions.Ready(); !r.IsTrue() || r.Reason != "ScaledJobReady" {
		t.Errorf("Ready = %+v, want True ScaledJobReady", r)
	}
	if a := got.Status.Conditions.Active(); !a.IsUnknown() {
		t.Errorf("Active before the first poll = %+v, want Unknown", a)
	}
	if ptr.Deref(got.Status.TriggersTypes, "") != "metrics-api" || ptr.Deref(got.Status.AuthenticationsTypes, "") != "creds" {
		t.Errorf("triggersTypes, authenticationsTypes = %v, %v", ptr.Deref(got.Status.TriggersTypes, ""), ptr.Deref(got.Status.AuthenticationsTypes, ""))
	}
	if diff := cmp.Diff([]string{"s0-metric-api-length"}, got.Status.ExternalMetricNames); diff != "" {
		t.Errorf("externalMetricNames (-want +got):\n%s", diff)
	}
	if f.c.poller.Len() != 1 {
		t.Fatalf("poller tracks %d ScaledJobs, want 1", f.c.poller.Len())
	}
	if ev := f.events(); !slices.Equal(ev, []string{"Normal ScaledJobReady " + messageReady}) {
		t.Errorf("events = %q", ev)
	}
	f.statusWrites()

	// Active: the reconciler hears of it and writes it once.
	f.src.set("3", true, nil)
	f.poll("sj")
	if f.c.queue.Len() != 1 {
		t.Fatalf("queue length after the first poll = %d, want 1", f.c.queue.Len())
	}
	f.must(f.sync("sj"))
	got = f.get("sj")
	if a := got.Status.Conditions.Active(); !a.IsTrue() || a.Reason != "ScalerActive" {
		t.Errorf("Active = %+v, want True ScalerActive", a)
	}
	if got.Status.LastActiveTime == nil || !got.Status.LastActiveTime.Time.Equal(t0) {
		t.Errorf("lastActiveTime = %v, want %v", got.Status.LastActiveTime, t0)
	}
	if diff := cmp.Diff(map[string]v1alpha1.TriggerActivityStatus{"s0-metric-api-length": {IsActive: true}}, got.Status.TriggersActivity); diff != "" {
		t.Errorf("triggersActivity (-want +got):\n%s", diff)
	}
	if n := f.statusWrites(); n != 1 {
		t.Errorf("status writes = %d, want 1", n)
	}
	if ev := f.events(); !slices.Contains(ev, "Normal ScaledJobActive "+messageActive) || !slices.Contains(ev, "Normal KEDAJobsCreated Created 1 jobs") {
		t.Errorf("events = %q", ev)
	}

	// Still active, polls later: no reconcile, no write.
	for range 3 {
		f.clock.Step(5 * time.Second)
		f.poll("sj")
	}
	if f.c.queue.Len() != 0 {
		t.Fatalf("queue got %s after polls that changed nothing", key)
	}
	f.must(f.sync("sj")) // a resync changes nothing either
	if n := f.statusWrites(); n != 0 {
		t.Errorf("status writes while active = %d, want 0", n)
	}
	lastActive := f.clock.Now()

	// Inactive: Active False, lastActiveTime the last active poll.
	f.clock.Step(5 * time.Second)
	f.src.set("0", false, nil)
	f.poll("sj")
	f.must(f.sync("sj"))
	got = f.get("sj")
	if a := got.Status.Conditions.Active(); !a.IsFalse() || a.Reason != "ScalerNotActive" {
		t.Errorf("Active = %+v, want False ScalerNotActive", a)
	}
	if got.Status.LastActiveTime == nil || !got.Status.LastActiveTime.Time.Equal(lastActive) {
		t.Errorf("lastActiveTime = %v, want %v", got.Status.LastActiveTime, lastActive)
	}
	f.statusWrites()
	f.events()

	// The source fails: Ready False with an event naming the error, once.
	f.src.set("0", false, errors.New("connection refused"))
	f.poll("sj")
	f.must(f.sync("sj"))
	f.poll("sj")
	f.must(f.sync("sj"))
	got = f.get("sj")
	if r := got.Status.Conditions.Ready(); !r.IsFalse() || r.Reason != "TriggerError" {
		t.Errorf("Ready = %+v, want False TriggerError", r)
	}
	if n := f.statusWrites(); n != 1 {
		t.Errorf("status writes while failing = %d, want 1", n)
	}
	ev := f.events()
	if len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning KEDAScalerFailed trigger 0 (metrics-api): ") || !strings.Contains(ev[0], "connection refused") {
		t.Errorf("events = %q, want one KEDAScalerFailed naming the error", ev)
	}

	// Failing with minReplicaCount (active): Ready Unknown PartialTriggerError.
	sjMin := f.get("sj")
	sjMin.Spec.MinReplicaCount = ptr.To[int32](1)
	sjMin.Generation++
	_, err := f.keda.KedaV1alpha1().ScaledJobs(testNS).Update(context.Background(), sjMin, metav1.UpdateOptions{})
	f.must(err)
	f.refresh()
	f.must(f.sync("sj"))
	f.poll("sj")
	f.must(f.sync("sj"))
	got = f.get("sj")
	if r := got.Status.Conditions.Ready(); !r.IsUnknown() || r.Reason != "PartialTriggerError" {
		t.Errorf("Ready = %+v, want Unknown PartialTriggerError", r)
	}

	// Recovered: Ready True again.
	f.src.set("0", false, nil)
	f.poll("sj")
	f.must(f.sync("sj"))
	if r := f.get("sj").Status.Conditions.Ready(); !r.IsTrue() {
		t.Errorf("Ready after recovery = %+v, want True", r)
	}
}

func TestSyncRejectsInvalidSpecs(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate    func(*v1alpha1.ScaledJob)
		wantMsg   string
		wantRetry bool
		// wantKept: the triggers stay cached (unpolled), so a change to
		// what they read is watched.
		wantKept bool
	}{
		"no jobTargetRef": {
			mutate:  func(sj *v1alpha1.ScaledJob) { sj.Spec.JobTargetRef = nil },
			wantMsg: "ScaledJob.spec.jobTargetRef not found",
		},
		"no container": {
			mutate:  func(sj *v1alpha1.ScaledJob) { sj.Spec.JobTargetRef.Template.Spec.Containers = nil },
			wantMsg: "containers is empty",
		},
		"metricType": {
			mutate:  func(sj *v1alpha1.ScaledJob) { sj.Spec.Triggers[0].MetricType = "Value" },
			wantMsg: "spec.triggers[0]: metricType cannot be set in ScaledJob triggers",
		},
		"duplicate trigger names": {
			mutate: func(sj *v1alpha1.ScaledJob) {
				sj.Spec.Triggers[0].Name = "q"
				sj.Spec.Triggers = append(sj.Spec.Triggers, *sj.Spec.Triggers[0].DeepCopy())
			},
			wantMsg: `spec.triggers[1]: trigger name "q" is already used by spec.triggers[0]`,
		},
		"useCachedMetrics on cron": {
			mutate: func(sj *v1alpha1.ScaledJob) {
				sj.Spec.Triggers[0] = v1alpha1.ScaleTrigger{Type: "cron", UseCachedMetrics: true, Metadata: map[string]string{}}
			},
			wantMsg: "useCachedMetrics is not supported for cron triggers",
		},
		"invalid metadata": {
			mutate:   func(sj *v1alpha1.ScaledJob) { delete(sj.Spec.Triggers[0].Metadata, "url") },
			wantMsg:  "trigger 0 (metrics-api): ",
			wantKept: true,
		},
		"unknown trigger type": {
			mutate:   func(sj *v1alpha1.ScaledJob) { sj.Spec.Triggers[0].Type = "no-such-type" },
			wantMsg:  `unsupported trigger type "no-such-type"`,
			wantKept: true,
		},
		"missing TriggerAuthentication: watched": {
			mutate: func(sj *v1alpha1.ScaledJob) {
				sj.Spec.Triggers[0].AuthenticationRef = &v1alpha1.AuthenticationRef{Name: "absent"}
			},
			wantMsg:  "TriggerAuthentication work/absent",
			wantKept: true,
		},
		"a variable the Job template lacks: retried": {
			mutate: func(sj *v1alpha1.ScaledJob) {
				delete(sj.Spec.Triggers[0].Metadata, "url")
				sj.Spec.Triggers[0].Metadata["urlFromEnv"] = "UNSET"
			},
			wantMsg:   "environment variable UNSET is not set",
			wantRetry: true,
		},
	} {
		t.Run(name, func(t *testing.T) {
			sj := scaledJob("sj", tc.mutate)
			f := newFixtureWithResolver(t, withAuthResolver, []*v1alpha1.ScaledJob{sj})
			err := f.sync("sj")
			if (err != nil) != tc.wantRetry {
				t.Errorf("sync() = %v, want an error: %v", err, tc.wantRetry)
			}
			got := f.get("sj")
			r := got.Status.Conditions.Ready()
			if !r.IsFalse() || r.Reason != "ScaledJobCheckFailed" || !strings.Contains(r.Message, tc.wantMsg) {
				t.Errorf("Ready = %+v, want False ScaledJobCheckFailed with %q", r, tc.wantMsg)
			}
			if a := got.Status.Conditions.Active(); !a.IsUnknown() || a.Reason != "UnknownState" {
				t.Errorf("Active = %+v, want Unknown UnknownState", a)
			}
			wantCached := 0
			if tc.wantKept {
				wantCached = 1
			}
			if f.c.poller.Len() != 0 || f.trigs.Len() != wantCached {
				t.Errorf("tracked %d, cached scalers of %d ScaledJobs; want 0, %d", f.c.poller.Len(), f.trigs.Len(), wantCached)
			}
			if ev := f.events(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning ScaledJobCheckFailed ") {
				t.Errorf("events = %q, want one ScaledJobCheckFailed warning", ev)
			}
			// Again: the condition stands, no second event, no write.
			f.statusWrites()
			_ = f.sync("sj")
			if ev := f.events(); len(ev) != 0 {
				t.Errorf("events on a second sync = %q", ev)
			}
			if n := f.statusWrites(); n != 0 {
				t.Errorf("status writes on a second sync = %d", n)
			}
		})
	}

	// A TriggerAuthentication that appears later is found when its
	// creation invalidates the triggers (the trigger cache watches it),
	// without a retry.
	sj := scaledJob("sj", func(sj *v1alpha1.ScaledJob) {
		sj.Spec.Triggers[0].AuthenticationRef = &v1alpha1.AuthenticationRef{Name: "late"}
	})
	f := newFixtureWithResolver(t, withAuthResolver, []*v1alpha1.ScaledJob{sj})
	var told []triggers.Owner
	f.trigs.SetInvalidationHandler(func(o triggers.Owner) { told = append(told, o) })
	if err := f.sync("sj"); err != nil {
		t.Fatalf("sync() without the TriggerAuthentication = %v, want nil (the watch brings it back)", err)
	}
	if r := f.get("sj").Status.Conditions.Ready(); !r.IsFalse() || !strings.Contains(r.Message, "TriggerAuthentication work/late") {
		t.Errorf("without the TriggerAuthentication: Ready = %+v, want False naming it", r)
	}
	_, err := f.keda.KedaV1alpha1().TriggerAuthentications(testNS).Create(context.Background(), &v1alpha1.TriggerAuthentication{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "late", ResourceVersion: "1"},
	}, metav1.CreateOptions{})
	f.must(err)
	f.trigs.Changed(triggers.Ref{Kind: triggers.RefTriggerAuthentication, Namespace: testNS, Name: "late"}, "1")
	want := triggers.Owner{Kind: v1alpha1.ScaledJobKind, ObjectName: cache.NewObjectName(testNS, "sj")}
	if len(told) != 1 || told[0] != want {
		t.Fatalf("invalidation handler told %v, want %v", told, want)
	}
	f.must(f.sync("sj"))
	if r := f.get("sj").Status.Conditions.Ready(); !r.IsTrue() || f.c.poller.Len() != 1 {
		t.Errorf("after the TriggerAuthentication appeared: Ready = %+v, tracked %d; want True, 1", r, f.c.poller.Len())
	}
}

// withAuthResolver resolves triggers with an AuthResolver on the fakes,
// indexing what they read.
func withAuthResolver(kube *kubefake.Clientset, keda *kedafake.Clientset) triggers.Option {
	return triggers.WithAuthResolver(triggers.NewAuthResolver(kube, keda, "ebb-system"))
}

func TestSyncPauseAndResume(t *testing.T) {
	sj := scaledJob("sj")
	f := newFixture(t, []*v1alpha1.ScaledJob{sj})
	f.must(f.sync("sj"))
	if f.c.poller.Len() != 1 {
		t.Fatal("not tracked")
	}
	f.events()

	toPause := f.get("sj")
	toPause.Annotations = map[string]string{v1alpha1.PausedAnnotation: "true"}
	_, err := f.keda.KedaV1alpha1().ScaledJobs(testNS).Update(context.Background(), toPause, metav1.UpdateOptions{})
	f.must(err)
	f.refresh()
	f.must(f.sync("sj"))
	got := f.get("sj")
	if p := got.Status.Conditions.Paused(); !p.IsTrue() || p.Reason != v1alpha1.ScaledJobPausedReason || got.Status.Paused != "true" {
		t.Errorf("Paused = %+v, status.Paused = %q; want True ScaledJobPaused, \"true\"", p, got.Status.Paused)
	}
	if f.c.poller.Len() != 0 || f.trigs.Len() != 0 {
		t.Errorf("paused: tracked %d, cached %d; want 0, 0", f.c.poller.Len(), f.trigs.Len())
	}

	// Any value but false pauses, as in KEDA.
	for v, want := range map[string]bool{"true": true, "TRUE": true, "yes": true, "false": false, "0": false, "": true} {
		s := scaledJob("x", func(sj *v1alpha1.ScaledJob) { sj.Annotations = map[string]string{v1alpha1.PausedAnnotation: v} })
		if paused(s) != want {
			t.Errorf("paused(%q) = %v, want %v", v, paused(s), want)
		}
	}

	resumed := f.get("sj")
	resumed.Annotations = nil
	_, err = f.keda.KedaV1alpha1().ScaledJobs(testNS).Update(context.Background(), resumed, metav1.UpdateOptions{})
	f.must(err)
	f.refresh()
	f.must(f.sync("sj"))
	got = f.get("sj")
	if p := got.Status.Conditions.Paused(); !p.IsFalse() || p.Reason != v1alpha1.ScaledJobUnpausedReason || got.Status.Paused != "" {
		t.Errorf("Paused = %+v, status.Paused = %q; want False ScaledJobUnpaused", p, got.Status.Paused)
	}
	if f.c.poller.Len() != 1 {
		t.Error("not tracked again after resuming")
	}
}

func TestSyncDeletion(t *testing.T) {
	sj := scaledJob("sj")
	f := newFixture(t, []*v1alpha1.ScaledJob{sj})
	f.must(f.sync("sj"))
	if f.c.poller.Len() != 1 || f.trigs.Len() != 1 {
		t.Fatal("not tracked")
	}
	deleting := f.get("sj")
	deleting.DeletionTimestamp = ptr.To(metav1.NewTime(t0))
	f.must(f.sjStore.Update(deleting))
	f.must(f.c.sync(f.ctx, cache.NewObjectName(testNS, "sj")))
	if got := f.get("sj"); slices.Contains(got.Finalizers, v1alpha1.Finalizer) {
		t.Errorf("finalizers = %v after finalizing", got.Finalizers)
	}
	if f.c.poller.Len() != 0 || f.trigs.Len() != 0 {
		t.Errorf("after deletion: tracked %d, cached %d; want 0, 0", f.c.poller.Len(), f.trigs.Len())
	}
	// Gone from the cache: nothing to do.
	f.must(f.sjStore.Delete(deleting))
	f.must(f.c.sync(f.ctx, cache.NewObjectName(testNS, "sj")))
}

// TestTrackTriggersAPollOnANewGeneration checks that a changed spec is
// polled (rolled out, scaled) at once rather than an interval later.
func TestTrackTriggersAPollOnANewGeneration(t *testing.T) {
	sj := scaledJob("sj")
	f := newFixture(t, []*v1alpha1.ScaledJob{sj})
	f.c.track(sj)
	f.c.track(sj)
	next := sj.DeepCopy()
	next.Generation = 2
	f.c.track(next)
	f.c.mu.Lock()
	gen := f.c.states[cache.NewObjectName(testNS, "sj")].generation
	f.c.mu.Unlock()
	if gen != 2 {
		t.Errorf("tracked generation = %d, want 2", gen)
	}
}

func TestNeedsSync(t *testing.T) {
	base := scaledJob("sj")
	statusOnly := base.DeepCopy()
	statusOnly.Status.Conditions = v1alpha1.InitialConditions()
	statusOnly.ResourceVersion = "2"
	if needsSync(base, statusOnly) {
		t.Error("a status write needs a sync")
	}
	for name, mutate := range map[string]func(*v1alpha1.ScaledJob){
		"generation":  func(sj *v1alpha1.ScaledJob) { sj.Generation++ },
		"labels":      func(sj *v1alpha1.ScaledJob) { sj.Labels = map[string]string{"a": "b"} },
		"annotations": func(sj *v1alpha1.ScaledJob) { sj.Annotations = map[string]string{v1alpha1.PausedAnnotation: "true"} },
		"finalizers":  func(sj *v1alpha1.ScaledJob) { sj.Finalizers = []string{v1alpha1.Finalizer} },
		"deletion":    func(sj *v1alpha1.ScaledJob) { sj.DeletionTimestamp = ptr.To(metav1.NewTime(t0)) },
	} {
		changed := base.DeepCopy()
		mutate(changed)
		if !needsSync(base, changed) {
			t.Errorf("a change of %s does not need a sync", name)
		}
	}
}
