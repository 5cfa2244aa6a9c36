package triggers

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedafake "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned/fake"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
	"github.com/ebb-autoscaler/ebb/services/operator/internal/scaler"
)

// passwords records the Redis password of every scaler built, in order,
// and hands out fake scalers.
type passwords struct {
	mu      sync.Mutex
	seen    []string
	scalers []*fakeScaler
}

func (p *passwords) new(cfg scalers.Config, _ scaler.Deps) (scaler.Scaler, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rc, ok := cfg.(*scalers.RedisConfig); ok {
		p.seen = append(p.seen, string(rc.Connection.Password))
	}
	f := &fakeScaler{}
	p.scalers = append(p.scalers, f)
	return f, nil
}

func (p *passwords) last() (string, *fakeScaler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.seen) == 0 {
		return "", nil
	}
	return p.seen[len(p.seen)-1], p.scalers[len(p.scalers)-1]
}

func (p *passwords) builds() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.scalers)
}

// refFixture is a Cache resolving through an AuthResolver on fake
// clients: ScaledObject apps/so (TriggerAuthentication "auth", Secret
// "redis"), ScaledObject apps/cluster (ClusterTriggerAuthentication
// "cluster", Secret ebb-system/redis and ConfigMap ebb-system/redis-host),
// ScaledJob apps/job (TriggerAuthentication "auth"), and ScaledObject
// apps/later, whose TriggerAuthentication "later" does not exist yet.
type refFixture struct {
	cache       *Cache
	kube        *kubefake.Clientset
	built       *passwords
	mu          sync.Mutex
	invalidated []Owner
}

var (
	soOwner      = Owner{Kind: v1alpha1.ScaledObjectKind, ObjectName: cache.NewObjectName(testNS, "so")}
	clusterOwner = Owner{Kind: v1alpha1.ScaledObjectKind, ObjectName: cache.NewObjectName(testNS, "cluster")}
	jobOwner     = Owner{Kind: v1alpha1.ScaledJobKind, ObjectName: cache.NewObjectName(testNS, "job")}
	laterOwner   = Owner{Kind: v1alpha1.ScaledObjectKind, ObjectName: cache.NewObjectName(testNS, "later")}
)

func redisSecret(ns, rv, password string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "redis", ResourceVersion: rv},
		Data:       map[string][]byte{"password": []byte(password)},
	}
}

func redisTrigger(ref *v1alpha1.AuthenticationRef) v1alpha1.ScaleTrigger {
	return v1alpha1.ScaleTrigger{Type: "redis", Metadata: map[string]string{"address": "redis:6379", "listName": "jobs"}, AuthenticationRef: ref}
}

func refSO(name string, ref *v1alpha1.AuthenticationRef) *v1alpha1.ScaledObject {
	return &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, UID: types.UID("uid-" + name), Generation: 1},
		Spec:       v1alpha1.ScaledObjectSpec{ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "web"}, Triggers: []v1alpha1.ScaleTrigger{redisTrigger(ref)}},
	}
}

func refSJ() *v1alpha1.ScaledJob {
	sj := testSJ(1, redisTrigger(&v1alpha1.AuthenticationRef{Name: "auth"}))
	sj.Namespace, sj.Name, sj.UID = testNS, "job", "uid-job"
	return sj
}

func newRefFixture(t *testing.T) *refFixture {
	t.Helper()
	kube := kubefake.NewClientset(
		redisSecret(testNS, "10", "pw-ns-1"),
		redisSecret(clusterNS, "20", "pw-cluster-1"),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: clusterNS, Name: "redis-host", ResourceVersion: "30"}, Data: map[string]string{"host": "redis"}},
	)
	keda := kedafake.NewClientset(
		&v1alpha1.TriggerAuthentication{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "auth", ResourceVersion: "5"},
			Spec:       v1alpha1.TriggerAuthenticationSpec{SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "password", Name: "redis", Key: "password"}}},
		},
		&v1alpha1.ClusterTriggerAuthentication{
			ObjectMeta: metav1.ObjectMeta{Name: "cluster", ResourceVersion: "6"},
			Spec: v1alpha1.TriggerAuthenticationSpec{
				SecretTargetRef:    []v1alpha1.AuthSecretTargetRef{{Parameter: "password", Name: "redis", Key: "password"}},
				ConfigMapTargetRef: []v1alpha1.AuthConfigMapTargetRef{{Parameter: "unused", Name: "redis-host", Key: "host"}},
			},
		},
	)
	f := &refFixture{kube: kube, built: &passwords{}}
	f.cache = NewCache(scaler.Deps{}, WithAuthResolver(NewAuthResolver(kube, keda, clusterNS)), WithScalerConstructor(f.built.new))
	f.cache.SetInvalidationHandler(func(o Owner) {
		f.mu.Lock()
		f.invalidated = append(f.invalidated, o)
		f.mu.Unlock()
	})
	t.Cleanup(f.cache.Close)
	return f
}

// buildAll builds every owner's triggers and returns their scalers.
func (f *refFixture) buildAll(t *testing.T) map[Owner]*fakeScaler {
	t.Helper()
	out := map[Owner]*fakeScaler{}
	for owner, get := range map[Owner]func() ([]Trigger, error){
		soOwner: func() ([]Trigger, error) {
			return f.cache.Scalers(refSO("so", &v1alpha1.AuthenticationRef{Name: "auth"}))
		},
		clusterOwner: func() ([]Trigger, error) { return f.cache.Scalers(refSO("cluster", clusterRef)) },
		jobOwner:     func() ([]Trigger, error) { return f.cache.JobScalers(refSJ()) },
		laterOwner: func() ([]Trigger, error) {
			return f.cache.Scalers(refSO("later", &v1alpha1.AuthenticationRef{Name: "later"}))
		},
	} {
		trigs, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := trigs[0].Scaler.(*fakeScaler); ok {
			out[owner] = s
		} else {
			out[owner] = nil
		}
	}
	return out
}

var clusterRef = &v1alpha1.AuthenticationRef{Name: "cluster", Kind: v1alpha1.ClusterTriggerAuthenticationKind}

func (f *refFixture) takeInvalidated() []Owner {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.invalidated
	f.invalidated = nil
	slices.SortFunc(out, func(a, b Owner) int { return strings.Compare(a.Kind+a.String(), b.Kind+b.String()) })
	return out
}

// TestChangedInvalidates checks the index "object read → owners": which
// changes invalidate which owners, that their old scalers are closed and
// their handler told, and that the others are left alone.
func TestChangedInvalidates(t *testing.T) {
	tests := map[string]struct {
		ref     Ref
		version string
		want    []Owner
	}{
		"a Secret update": {
			ref: Ref{Kind: RefSecret, Namespace: testNS, Name: "redis"}, version: "11",
			want: []Owner{soOwner, jobOwner},
		},
		"a Secret deleted": {
			ref: Ref{Kind: RefSecret, Namespace: testNS, Name: "redis"}, version: "",
			want: []Owner{soOwner, jobOwner},
		},
		"the version read (an informer's first list)": {
			ref: Ref{Kind: RefSecret, Namespace: testNS, Name: "redis"}, version: "10",
		},
		"a Secret of the same name in another namespace": {
			ref: Ref{Kind: RefSecret, Namespace: "elsewhere", Name: "redis"}, version: "99",
		},
		"a Secret no trigger read": {
			ref: Ref{Kind: RefSecret, Namespace: testNS, Name: "other"}, version: "1",
		},
		"a ConfigMap of the same name is another object": {
			ref: Ref{Kind: RefConfigMap, Namespace: testNS, Name: "redis"}, version: "1",
		},
		"the cluster namespace's Secret": {
			ref: Ref{Kind: RefSecret, Namespace: clusterNS, Name: "redis"}, version: "21",
			want: []Owner{clusterOwner},
		},
		"a ConfigMap": {
			ref: Ref{Kind: RefConfigMap, Namespace: clusterNS, Name: "redis-host"}, version: "31",
			want: []Owner{clusterOwner},
		},
		"a TriggerAuthentication update": {
			ref: Ref{Kind: RefTriggerAuthentication, Namespace: testNS, Name: "auth"}, version: "8",
			want: []Owner{soOwner, jobOwner},
		},
		"a ClusterTriggerAuthentication update": {
			ref: Ref{Kind: RefClusterTriggerAuthentication, Name: "cluster"}, version: "9",
			want: []Owner{clusterOwner},
		},
		"a missing TriggerAuthentication created": {
			ref: Ref{Kind: RefTriggerAuthentication, Namespace: testNS, Name: "later"}, version: "1",
			want: []Owner{laterOwner},
		},
		"a missing TriggerAuthentication's deletion seen late": {
			ref: Ref{Kind: RefTriggerAuthentication, Namespace: testNS, Name: "later"}, version: "",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newRefFixture(t)
			before := f.buildAll(t)
			builds := f.built.builds()
			if got := f.takeInvalidated(); len(got) != 0 {
				t.Fatalf("invalidated while building: %v", got)
			}

			f.cache.Changed(tc.ref, tc.version)

			got := f.takeInvalidated()
			slices.SortFunc(tc.want, func(a, b Owner) int { return strings.Compare(a.Kind+a.String(), b.Kind+b.String()) })
			if !slices.Equal(got, tc.want) {
				t.Errorf("invalidated %v, want %v", got, tc.want)
			}
			after := f.buildAll(t)
			for owner, s := range before {
				invalidated := slices.Contains(tc.want, owner)
				if s != nil {
					if closed := s.closed.Load() == 1; closed != invalidated {
						t.Errorf("%v: old scaler closed = %v, want %v", owner, closed, invalidated)
					}
				}
				if rebuilt := after[owner] != s || (s == nil && invalidated); rebuilt != invalidated {
					t.Errorf("%v: rebuilt = %v, want %v", owner, rebuilt, invalidated)
				}
			}
			wantBuilds := builds
			for _, o := range tc.want {
				if o != laterOwner { // a trigger without its authentication builds no scaler
					wantBuilds++
				}
			}
			if n := f.built.builds(); n != wantBuilds {
				t.Errorf("%d scalers built, want %d", n, wantBuilds)
			}
			if got := f.takeInvalidated(); len(got) != 0 {
				t.Errorf("the rebuild invalidated %v", got)
			}
		})
	}
}

// TestRotation follows a Secret through an update, a deletion and its
// return: each change is used on the next build, the deletion is an error
// naming the Secret and key (not the value), and the index follows.
func TestRotation(t *testing.T) {
	f := newRefFixture(t)
	so := refSO("so", &v1alpha1.AuthenticationRef{Name: "auth"})
	secretRef := Ref{Kind: RefSecret, Namespace: testNS, Name: "redis"}
	secrets := f.kube.CoreV1().Secrets(testNS)

	if _, err := f.cache.Scalers(so); err != nil {
		t.Fatal(err)
	}
	if pw, _ := f.built.last(); pw != "pw-ns-1" {
		t.Fatalf("first build used %q", pw)
	}

	// Rotated.
	if _, err := secrets.Update(t.Context(), redisSecret(testNS, "11", "pw-ns-2"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.cache.Changed(secretRef, "11")
	trigs, _ := f.cache.Scalers(so)
	if pw, s := f.built.last(); pw != "pw-ns-2" || trigs[0].Scaler != s {
		t.Errorf("after the rotation: built with %q, want pw-ns-2", pw)
	}

	// Deleted: an error naming the Secret and key.
	if err := secrets.Delete(t.Context(), "redis", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.cache.Changed(secretRef, "")
	trigs, _ = f.cache.Scalers(so)
	var re *ResolveError
	if trigs[0].Scaler != nil || !errors.As(trigs[0].Err, &re) || re.Retry {
		t.Fatalf("after the deletion: scaler %v, err %v; want no scaler and a ResolveError without Retry", trigs[0].Scaler, trigs[0].Err)
	}
	for _, want := range []string{"trigger 0 (redis)", "TriggerAuthentication apps/auth", `key "password" of Secret apps/redis`, "no Secret apps/redis"} {
		if !strings.Contains(trigs[0].Err.Error(), want) {
			t.Errorf("error %q does not name %q", trigs[0].Err, want)
		}
	}
	if strings.Contains(trigs[0].Err.Error(), "pw-ns") {
		t.Errorf("error %q holds a password", trigs[0].Err)
	}
	// Still indexed: its return is watched.
	if owners := f.cache.Owners(secretRef); !slices.Contains(owners, soOwner) {
		t.Fatalf("Owners(%v) = %v after the failed build, want %v", secretRef, owners, soOwner)
	}

	// Restored.
	if _, err := secrets.Create(t.Context(), redisSecret(testNS, "12", "pw-ns-3"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.cache.Changed(secretRef, "12")
	trigs, _ = f.cache.Scalers(so)
	if pw, _ := f.built.last(); pw != "pw-ns-3" || trigs[0].Err != nil {
		t.Errorf("after the restore: built with %q, err %v", pw, trigs[0].Err)
	}
}

// TestIndexFollowsEntries checks that the index holds what the current
// entries read: a new generation replaces its owner's references, Forget
// drops them.
func TestIndexFollowsEntries(t *testing.T) {
	f := newRefFixture(t)
	taRef := Ref{Kind: RefTriggerAuthentication, Namespace: testNS, Name: "auth"}
	ctaRef := Ref{Kind: RefClusterTriggerAuthentication, Name: "cluster"}
	so := refSO("so", &v1alpha1.AuthenticationRef{Name: "auth"})
	if _, err := f.cache.Scalers(so); err != nil {
		t.Fatal(err)
	}
	if got := f.cache.Owners(taRef); !slices.Equal(got, []Owner{soOwner}) {
		t.Fatalf("Owners(TriggerAuthentication) = %v, want %v", got, []Owner{soOwner})
	}

	// Generation 2 uses the ClusterTriggerAuthentication instead.
	so2 := refSO("so", clusterRef)
	so2.Generation = 2
	if _, err := f.cache.Scalers(so2); err != nil {
		t.Fatal(err)
	}
	if got := f.cache.Owners(taRef); len(got) != 0 {
		t.Errorf("Owners(TriggerAuthentication) after generation 2 = %v, want none", got)
	}
	if got := f.cache.Owners(ctaRef); !slices.Equal(got, []Owner{soOwner}) {
		t.Errorf("Owners(ClusterTriggerAuthentication) = %v, want %v", got, []Owner{soOwner})
	}
	// A change to what generation 1 read is nothing to it any more.
	f.cache.Changed(taRef, "99")
	if got := f.takeInvalidated(); len(got) != 0 {
		t.Errorf("invalidated %v by an object only an old generation read", got)
	}

	f.cache.Forget(soOwner.ObjectName)
	if got := f.cache.Owners(ctaRef); len(got) != 0 {
		t.Errorf("Owners after Forget = %v, want none", got)
	}
	if got := f.cache.Refs(RefSecret); len(got) != 0 {
		t.Errorf("Refs(Secret) after Forget = %v, want none", got)
	}
}

// TestChangeDuringBuild checks that a change landing while a build reads
// the object is not lost: the build is handed to its callers, then built
// again on next use, and the owner's handler is told.
func TestChangeDuringBuild(t *testing.T) {
	secretRef := Ref{Kind: RefSecret, Namespace: testNS, Name: "redis"}
	tests := map[string]func(f *refFixture) k8stesting.ReactionFunc{
		// The change's event is handled while the GET is in flight.
		"an event during the read": func(f *refFixture) k8stesting.ReactionFunc {
			var once sync.Once
			return func(k8stesting.Action) (bool, runtime.Object, error) {
				once.Do(func() { f.cache.Changed(secretRef, "11") })
				return false, nil, nil
			}
		},
		// Two triggers of one build read two versions of the Secret.
		"two versions in one build": func(f *refFixture) k8stesting.ReactionFunc {
			var n int
			return func(k8stesting.Action) (bool, runtime.Object, error) {
				n++
				if n == 2 {
					return true, redisSecret(testNS, "11", "pw-ns-2"), nil
				}
				return false, nil, nil
			}
		},
	}
	for name, reactor := range tests {
		t.Run(name, func(t *testing.T) {
			f := newRefFixture(t)
			f.kube.PrependReactor("get", "secrets", reactor(f))
			so := refSO("so", &v1alpha1.AuthenticationRef{Name: "auth"})
			so.Spec.Triggers = append(so.Spec.Triggers, redisTrigger(&v1alpha1.AuthenticationRef{Name: "auth"}))

			first, err := f.cache.Scalers(so)
			if err != nil || first[0].Scaler == nil {
				t.Fatalf("first build: %v, %v", first, err)
			}
			if got := f.takeInvalidated(); !slices.Equal(got, []Owner{soOwner}) {
				t.Errorf("told %v, want %v", got, []Owner{soOwner})
			}
			again, _ := f.cache.Scalers(so)
			if again[0].Scaler == first[0].Scaler {
				t.Fatal("the build that raced a change was reused")
			}
			if n := first[0].Scaler.(*fakeScaler).closed.Load(); n != 1 {
				t.Errorf("the raced build's scaler closed %d times, want 1", n)
			}
			if third, _ := f.cache.Scalers(so); third[0].Scaler != again[0].Scaler {
				t.Error("the rebuild was not kept")
			}
		})
	}
}

// TestEventHandler checks the informer handlers: adds, updates with a new
// resourceVersion and deletions (tombstones too) reach Changed; resyncs do
// not.
func TestEventHandler(t *testing.T) {
	f := newRefFixture(t)
	so := refSO("so", &v1alpha1.AuthenticationRef{Name: "auth"})
	h := f.cache.EventHandler(RefSecret)
	meta := func(rv string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "redis", ResourceVersion: rv}}
	}
	steps := []struct {
		name    string
		deliver func()
		want    bool
	}{
		{"the initial list's add", func() { h.OnAdd(meta("10"), true) }, false},
		{"a resync", func() { h.OnUpdate(meta("10"), meta("10")) }, false},
		{"an update", func() { h.OnUpdate(meta("10"), meta("11")) }, true},
		{"a deletion", func() { h.OnDelete(meta("11")) }, true},
		{"an add", func() { h.OnAdd(meta("12"), false) }, true},
		{"a tombstone", func() { h.OnDelete(cache.DeletedFinalStateUnknown{Key: testNS + "/redis", Obj: meta("12")}) }, true},
	}
	for _, step := range steps {
		if _, err := f.cache.Scalers(so); err != nil {
			t.Fatal(err)
		}
		step.deliver()
		if got := len(f.takeInvalidated()) == 1; got != step.want {
			t.Errorf("%s: invalidated = %v, want %v", step.name, got, step.want)
		}
		// Keep the fake Secret's version in step with what was delivered.
		switch step.name {
		case "an update":
			_, _ = f.kube.CoreV1().Secrets(testNS).Update(t.Context(), redisSecret(testNS, "11", "pw"), metav1.UpdateOptions{})
		case "a deletion":
			_ = f.kube.CoreV1().Secrets(testNS).Delete(t.Context(), "redis", metav1.DeleteOptions{})
		case "an add":
			_, _ = f.kube.CoreV1().Secrets(testNS).Create(t.Context(), redisSecret(testNS, "12", "pw"), metav1.CreateOptions{})
		}
	}
}

// TestAuthenticationObjectVersions checks that an authentication object's
// status writes (the operator's own status lists, which change its
// resourceVersion) do not rebuild the triggers that use it, and that a
// spec change or a new object of the same name does.
func TestAuthenticationObjectVersions(t *testing.T) {
	f := newRefFixture(t)
	so := refSO("so", &v1alpha1.AuthenticationRef{Name: "auth"})
	h := f.cache.EventHandler(RefTriggerAuthentication)
	// The fixture's TriggerAuthentication, as the fake returns it.
	ta := func(uid string, generation int64, rv string, sos string) *v1alpha1.TriggerAuthentication {
		return &v1alpha1.TriggerAuthentication{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "auth", UID: types.UID(uid), Generation: generation, ResourceVersion: rv},
			Status:     v1alpha1.TriggerAuthenticationStatus{ScaledObjects: sos},
		}
	}
	read := ta("", 0, "5", "")
	steps := []struct {
		name    string
		deliver func()
		want    bool
	}{
		{"the status lists written", func() { h.OnUpdate(read, ta("", 0, "6", "so")) }, false},
		{"the informer's first list", func() { h.OnAdd(ta("", 0, "6", "so"), true) }, false},
		{"a spec change", func() { h.OnUpdate(ta("", 0, "6", "so"), ta("", 1, "7", "so")) }, true},
		{"deleted and created again", func() { h.OnAdd(ta("uid-2", 0, "9", ""), false) }, true},
	}
	for _, step := range steps {
		if _, err := f.cache.Scalers(so); err != nil {
			t.Fatal(err)
		}
		step.deliver()
		if got := len(f.takeInvalidated()) == 1; got != step.want {
			t.Errorf("%s: invalidated = %v, want %v", step.name, got, step.want)
		}
	}
}
