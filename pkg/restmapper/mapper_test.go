package restmapper

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/scale"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"
)

// The Mapper is what the operator hands to k8s.io/client-go/scale.
var _ scale.PreferredResourceMapper = (*Mapper)(nil)

const interval = 5 * time.Second

var (
	t0       = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	podGK    = schema.GroupKind{Kind: "Pod"}
	deployGK = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	widgetGK = schema.GroupKind{Group: "example.com", Kind: "Widget"}
)

func coreV1() *metav1.APIResourceList {
	return &metav1.APIResourceList{GroupVersion: "v1", APIResources: []metav1.APIResource{
		{Name: "pods", SingularName: "pod", Namespaced: true, Kind: "Pod"},
	}}
}

func appsV1() *metav1.APIResourceList {
	return &metav1.APIResourceList{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
		{Name: "deployments", SingularName: "deployment", Namespaced: true, Kind: "Deployment"},
		{Name: "deployments/scale", Namespaced: true, Group: "autoscaling", Version: "v1", Kind: "Scale"},
	}}
}

// widgets is a CRD with a /scale subresource, served in version.
func widgets(version string) *metav1.APIResourceList {
	return &metav1.APIResourceList{GroupVersion: "example.com/" + version, APIResources: []metav1.APIResource{
		{Name: "widgets", SingularName: "widget", Namespaced: true, Kind: "Widget"},
		{Name: "widgets/scale", Namespaced: true, Group: "autoscaling", Version: "v1", Kind: "Scale"},
	}}
}

// fixture is a Mapper over a fake discovery whose resources tests change,
// with a fake clock.
type fixture struct {
	discovery *fakediscovery.FakeDiscovery
	clock     *testingclock.FakeClock
	mapper    *Mapper
	// fail makes every discovery fail while set.
	fail atomic.Bool
}

func newFixture(t *testing.T, lists ...*metav1.APIResourceList) *fixture {
	t.Helper()
	logger, _ := ktesting.NewTestContext(t)
	f := &fixture{
		discovery: &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{Resources: lists}},
		clock:     testingclock.NewFakeClock(t0),
	}
	f.discovery.AddReactor("get", "group", func(clienttesting.Action) (bool, runtime.Object, error) {
		if f.fail.Load() {
			return true, nil, errors.New("discovery is down")
		}
		return false, nil, nil
	})
	f.mapper = New(f.discovery, WithClock(f.clock), WithMinInterval(interval), WithLogger(logger))
	return f
}

// setResources replaces what discovery serves. No discovery may be running.
func (f *fixture) setResources(lists ...*metav1.APIResourceList) {
	f.discovery.Lock()
	defer f.discovery.Unlock()
	f.discovery.Resources = lists
}

// discoveries counts the discoveries run so far: each one, of one group or
// of all, lists the API groups once.
func (f *fixture) discoveries() int {
	n := 0
	for _, a := range f.discovery.Actions() {
		if a.GetResource().Resource == "group" {
			n++
		}
	}
	return n
}

func (f *fixture) wantDiscoveries(t *testing.T, want int) {
	t.Helper()
	if got := f.discoveries(); got != want {
		t.Errorf("discoveries = %d, want %d", got, want)
	}
}

// mappingVersion returns the version of the REST mapping of gk.
func mappingVersion(t *testing.T, m *Mapper, gk schema.GroupKind, versions ...string) string {
	t.Helper()
	mapping, err := m.RESTMapping(gk, versions...)
	if err != nil {
		t.Fatalf("RESTMapping(%v, %v): %v", gk, versions, err)
	}
	return mapping.Resource.Version
}

func TestKnownKindsResolveWithoutDiscovery(t *testing.T) {
	f := newFixture(t, coreV1(), appsV1())
	// Start: the first lookup discovers everything, once.
	if v := mappingVersion(t, f.mapper, deployGK, "v1"); v != "v1" {
		t.Fatalf("Deployment version = %q, want v1", v)
	}
	f.wantDiscoveries(t, 1)

	lookups := map[string]func(m *Mapper) error{
		"RESTMapping": func(m *Mapper) error { _, err := m.RESTMapping(podGK); return err },
		"RESTMapping with version": func(m *Mapper) error {
			_, err := m.RESTMapping(deployGK, "v1")
			return err
		},
		"RESTMappings": func(m *Mapper) error { _, err := m.RESTMappings(deployGK); return err },
		"KindFor":      func(m *Mapper) error { _, err := m.KindFor(schema.GroupVersionResource{Resource: "pods"}); return err },
		"KindsFor": func(m *Mapper) error {
			_, err := m.KindsFor(schema.GroupVersionResource{Group: "apps", Resource: "deployments"})
			return err
		},
		"ResourceFor": func(m *Mapper) error {
			_, err := m.ResourceFor(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployment"})
			return err
		},
		"ResourcesFor": func(m *Mapper) error {
			_, err := m.ResourcesFor(schema.GroupVersionResource{Resource: "pods"})
			return err
		},
		"ResourceSingularizer": func(m *Mapper) error { _, err := m.ResourceSingularizer("deployments"); return err },
	}
	for name, lookup := range lookups {
		t.Run(name, func(t *testing.T) {
			if err := lookup(f.mapper); err != nil {
				t.Fatal(err)
			}
			f.wantDiscoveries(t, 1)
		})
	}
}

func TestLateCRDResolvesOnceIntervalPassed(t *testing.T) {
	f := newFixture(t, coreV1(), appsV1())
	if _, err := f.mapper.RESTMapping(widgetGK, "v1"); !meta.IsNoMatchError(err) {
		t.Fatalf("RESTMapping before the CRD exists: err = %v, want a no-match error", err)
	}
	// The discovery of all groups at start covers example.com: no second one.
	f.wantDiscoveries(t, 1)

	f.setResources(coreV1(), appsV1(), widgets("v1"))
	steps := []struct {
		name            string
		advance         time.Duration
		lookups         int
		wantOK          bool
		wantDiscoveries int
	}{
		{name: "at once", lookups: 20, wantDiscoveries: 1},
		{name: "just before the interval", advance: interval - time.Nanosecond, lookups: 20, wantDiscoveries: 1},
		{name: "once the interval passed", advance: time.Nanosecond, lookups: 1, wantOK: true, wantDiscoveries: 2},
		{name: "from then on from the cache", lookups: 20, wantOK: true, wantDiscoveries: 2},
	}
	for _, step := range steps {
		f.clock.Step(step.advance)
		for range step.lookups {
			mapping, err := f.mapper.RESTMapping(widgetGK, "v1")
			switch {
			case step.wantOK && err != nil:
				t.Fatalf("%s: RESTMapping: %v", step.name, err)
			case step.wantOK && mapping.Resource.Resource != "widgets":
				t.Fatalf("%s: resource = %v, want widgets", step.name, mapping.Resource)
			case !step.wantOK && !meta.IsNoMatchError(err):
				t.Fatalf("%s: err = %v, want a no-match error", step.name, err)
			}
		}
		if got := f.discoveries(); got != step.wantDiscoveries {
			t.Fatalf("%s: discoveries = %d, want %d", step.name, got, step.wantDiscoveries)
		}
	}
}

func TestTypoCannotHammerDiscovery(t *testing.T) {
	f := newFixture(t, coreV1(), appsV1())
	typo := schema.GroupKind{Group: "apps", Kind: "Deploymnet"}
	for i := range 3 {
		for range 50 {
			if _, err := f.mapper.RESTMapping(typo, "v1"); !meta.IsNoMatchError(err) {
				t.Fatalf("err = %v, want a no-match error", err)
			}
		}
		// One discovery at start, then one per interval.
		f.wantDiscoveries(t, 1+i)
		f.clock.Step(interval)
	}
}

func TestNoMatchError(t *testing.T) {
	f := newFixture(t, coreV1())
	f.clock.Step(time.Minute)
	_, err := f.mapper.RESTMapping(widgetGK, "v1")

	if !meta.IsNoMatchError(err) {
		t.Fatalf("meta.IsNoMatchError(%v) = false", err)
	}
	var kindErr *meta.NoKindMatchError
	if !errors.As(err, &kindErr) || kindErr.GroupKind != widgetGK {
		t.Errorf("errors.As(*meta.NoKindMatchError) = %v", kindErr)
	}
	var noMatch *NoMatchError
	if !errors.As(err, &noMatch) {
		t.Fatalf("err = %T, want *NoMatchError", err)
	}
	refreshed := t0.Add(time.Minute)
	if noMatch.Group != "example.com" || !noMatch.RefreshedAt.Equal(refreshed) ||
		!noMatch.NextRefresh.Equal(refreshed.Add(interval)) || noMatch.RefreshErr != nil {
		t.Errorf("NoMatchError = %+v", noMatch)
	}
	for _, want := range []string{`"Widget"`, `API group "example.com"`, "refreshed at 2026-01-02T03:05:05Z", "not before 2026-01-02T03:05:10Z"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	// A failed re-discovery says so.
	f.clock.Step(interval)
	f.fail.Store(true)
	_, err = f.mapper.RESTMapping(widgetGK, "v1")
	if !errors.As(err, &noMatch) || noMatch.RefreshErr == nil || !strings.Contains(err.Error(), "discovery is down") {
		t.Errorf("after a failed discovery: err = %v, want a *NoMatchError naming the failure", err)
	}
}

// TestLookupsHeal runs every lookup method against a kind that appears after
// start, as a new CRD or as a new version of a known group.
func TestLookupsHeal(t *testing.T) {
	scenarios := map[string]struct {
		before, after []*metav1.APIResourceList
		version       string
	}{
		"new CRD": {
			before:  []*metav1.APIResourceList{coreV1(), appsV1()},
			after:   []*metav1.APIResourceList{coreV1(), appsV1(), widgets("v1")},
			version: "v1",
		},
		"new version of a known group": {
			before:  []*metav1.APIResourceList{coreV1(), widgets("v1")},
			after:   []*metav1.APIResourceList{coreV1(), widgets("v2"), widgets("v1")},
			version: "v2",
		},
	}
	type lookup struct {
		call func(m *Mapper, version string) (string, error)
		want string
		// unqualified lookups cannot fail on a new version of a known group.
		onlyNewCRD bool
	}
	gvr := func(version, resource string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: "example.com", Version: version, Resource: resource}
	}
	lookups := map[string]lookup{
		"RESTMapping": {
			call: func(m *Mapper, v string) (string, error) {
				r, err := m.RESTMapping(widgetGK, v)
				if err != nil {
					return "", err
				}
				return r.Resource.String(), nil
			},
			want: "example.com/VERSION, Resource=widgets",
		},
		"RESTMappings": {
			call: func(m *Mapper, v string) (string, error) {
				r, err := m.RESTMappings(widgetGK, v)
				if err != nil || len(r) != 1 {
					return fmt.Sprint(r), err
				}
				return r[0].GroupVersionKind.String(), nil
			},
			want: "example.com/VERSION, Kind=Widget",
		},
		"KindFor": {
			call: func(m *Mapper, v string) (string, error) {
				r, err := m.KindFor(gvr(v, "widgets"))
				return r.String(), err
			},
			want: "example.com/VERSION, Kind=Widget",
		},
		"KindsFor": {
			call: func(m *Mapper, v string) (string, error) {
				r, err := m.KindsFor(gvr(v, "widget"))
				return fmt.Sprint(r), err
			},
			want: "[example.com/VERSION, Kind=Widget]",
		},
		"ResourceFor": {
			call: func(m *Mapper, v string) (string, error) {
				r, err := m.ResourceFor(gvr(v, "widgets"))
				return r.String(), err
			},
			want: "example.com/VERSION, Resource=widgets",
		},
		"ResourcesFor": {
			call: func(m *Mapper, v string) (string, error) {
				r, err := m.ResourcesFor(gvr(v, "widgets"))
				return fmt.Sprint(r), err
			},
			want: "[example.com/VERSION, Resource=widgets]",
		},
		"ResourceFor without version, as the scale client calls it": {
			call: func(m *Mapper, _ string) (string, error) {
				r, err := m.ResourceFor(schema.GroupVersionResource{Group: "example.com", Resource: "widgets"})
				return r.String(), err
			},
			want:       "example.com/VERSION, Resource=widgets",
			onlyNewCRD: true,
		},
		"KindFor without group": {
			call: func(m *Mapper, _ string) (string, error) {
				r, err := m.KindFor(schema.GroupVersionResource{Resource: "widgets"})
				return r.String(), err
			},
			want:       "example.com/VERSION, Kind=Widget",
			onlyNewCRD: true,
		},
		"ResourceSingularizer": {
			call:       func(m *Mapper, _ string) (string, error) { return m.ResourceSingularizer("widgets") },
			want:       "widget",
			onlyNewCRD: true,
		},
	}
	for scenarioName, sc := range scenarios {
		for lookupName, l := range lookups {
			if l.onlyNewCRD && scenarioName != "new CRD" {
				continue
			}
			t.Run(scenarioName+"/"+lookupName, func(t *testing.T) {
				f := newFixture(t, sc.before...)
				if got, err := l.call(f.mapper, sc.version); !meta.IsNoMatchError(err) {
					t.Fatalf("before: got %q, err %v, want a no-match error", got, err)
				}
				f.setResources(sc.after...)
				if got, err := l.call(f.mapper, sc.version); !meta.IsNoMatchError(err) {
					t.Fatalf("within the interval: got %q, err %v, want a no-match error", got, err)
				}
				f.wantDiscoveries(t, 1)

				f.clock.Step(interval)
				want := strings.ReplaceAll(l.want, "VERSION", sc.version)
				for range 2 {
					got, err := l.call(f.mapper, sc.version)
					if err != nil {
						t.Fatalf("after the interval: %v", err)
					}
					if got != want {
						t.Errorf("after the interval: got %q, want %q", got, want)
					}
				}
				f.wantDiscoveries(t, 2)
			})
		}
	}
}

func TestNewPreferredVersionRequestedFirst(t *testing.T) {
	f := newFixture(t, coreV1(), widgets("v1"))
	if v := mappingVersion(t, f.mapper, widgetGK, "v2", "v1"); v != "v1" {
		t.Fatalf("version = %q, want v1", v)
	}
	f.setResources(coreV1(), widgets("v2"), widgets("v1"))
	// Within the interval the caller gets the version the cache knows.
	if v := mappingVersion(t, f.mapper, widgetGK, "v2", "v1"); v != "v1" {
		t.Fatalf("within the interval: version = %q, want v1", v)
	}
	f.wantDiscoveries(t, 1)
	// Then the version it prefers, not the stale entry of the known group.
	f.clock.Step(interval)
	if v := mappingVersion(t, f.mapper, widgetGK, "v2", "v1"); v != "v2" {
		t.Fatalf("after the interval: version = %q, want v2", v)
	}
	f.wantDiscoveries(t, 2)
	// A request led by a known version does not re-discover.
	f.clock.Step(interval)
	if v := mappingVersion(t, f.mapper, widgetGK, "v1", "v3"); v != "v1" {
		t.Fatalf("version = %q, want v1", v)
	}
	f.wantDiscoveries(t, 2)
}

func TestConcurrentMissesShareOneDiscovery(t *testing.T) {
	for name, installed := range map[string]bool{"kind appears": true, "kind never appears": false} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, coreV1(), appsV1())
			mappingVersion(t, f.mapper, podGK)
			if installed {
				f.setResources(coreV1(), appsV1(), widgets("v1"))
			}
			f.clock.Step(interval)

			// Hold the discovery until every lookup has started, so that
			// they pile up on it.
			const lookups = 50
			var started sync.WaitGroup
			started.Add(lookups)
			release := make(chan struct{})
			f.discovery.PrependReactor("get", "group", func(clienttesting.Action) (bool, runtime.Object, error) {
				<-release
				return false, nil, nil
			})

			errs := make([]error, lookups)
			var done sync.WaitGroup
			for i := range lookups {
				done.Go(func() {
					started.Done()
					_, errs[i] = f.mapper.RESTMapping(widgetGK, "v1")
				})
			}
			started.Wait()
			close(release)
			done.Wait()

			f.wantDiscoveries(t, 2)
			for i, err := range errs {
				if installed && err != nil {
					t.Errorf("lookup %d: %v", i, err)
				}
				if !installed && !meta.IsNoMatchError(err) {
					t.Errorf("lookup %d: err = %v, want a no-match error", i, err)
				}
			}
		})
	}
}

func TestInvalidate(t *testing.T) {
	f := newFixture(t, coreV1(), widgets("v1"))
	if v := mappingVersion(t, f.mapper, widgetGK); v != "v1" {
		t.Fatalf("version = %q, want v1", v)
	}
	// v2 becomes the preferred version: a lookup without version cannot
	// tell, the cache still has an answer.
	f.setResources(coreV1(), widgets("v2"), widgets("v1"))
	if v := mappingVersion(t, f.mapper, widgetGK); v != "v1" {
		t.Fatalf("before Invalidate: version = %q, want v1", v)
	}
	f.wantDiscoveries(t, 1)

	// Invalidations coalesce and are not rate-limited.
	f.mapper.Invalidate("example.com")
	f.mapper.Invalidate("example.com")
	for range 3 {
		if v := mappingVersion(t, f.mapper, widgetGK); v != "v2" {
			t.Fatalf("after Invalidate: version = %q, want v2", v)
		}
	}
	f.wantDiscoveries(t, 2)

	// Another group's invalidation does not touch example.com lookups...
	f.mapper.Invalidate("other.example.org")
	mappingVersion(t, f.mapper, widgetGK)
	f.wantDiscoveries(t, 2)
	// ...but lookups that name no group re-discover everything.
	if _, err := f.mapper.KindFor(schema.GroupVersionResource{Resource: "widgets"}); err != nil {
		t.Fatal(err)
	}
	f.wantDiscoveries(t, 3)
	if _, err := f.mapper.KindFor(schema.GroupVersionResource{Resource: "widgets"}); err != nil {
		t.Fatal(err)
	}
	f.wantDiscoveries(t, 3)

	// A deleted CRD disappears.
	f.setResources(coreV1())
	f.mapper.Invalidate("example.com")
	if _, err := f.mapper.RESTMapping(widgetGK); !meta.IsNoMatchError(err) {
		t.Fatalf("after the CRD was deleted: err = %v, want a no-match error", err)
	}
	f.wantDiscoveries(t, 4)
}

func TestReset(t *testing.T) {
	f := newFixture(t, coreV1())
	mappingVersion(t, f.mapper, podGK)
	gadgetGK := schema.GroupKind{Group: "other.example.org", Kind: "Gadget"}
	f.setResources(coreV1(), &metav1.APIResourceList{GroupVersion: "other.example.org/v1", APIResources: []metav1.APIResource{
		{Name: "gadgets", SingularName: "gadget", Kind: "Gadget"},
	}})

	f.mapper.Reset()
	mapping, err := f.mapper.RESTMapping(gadgetGK)
	if err != nil {
		t.Fatal(err)
	}
	if mapping.Scope.Name() != meta.RESTScopeNameRoot {
		t.Errorf("scope = %v, want root", mapping.Scope.Name())
	}
	// One discovery of all groups, no extra one for the group.
	f.wantDiscoveries(t, 2)

	// A failed reload leaves the previous data in service.
	f.fail.Store(true)
	f.mapper.ResetWithContext(t.Context())
	for range 3 {
		mappingVersion(t, f.mapper, gadgetGK)
	}
	f.wantDiscoveries(t, 3)
}

func TestFirstDiscoveryFails(t *testing.T) {
	f := newFixture(t, coreV1())
	f.fail.Store(true)
	for range 3 {
		_, err := f.mapper.RESTMapping(podGK)
		if err == nil || meta.IsNoMatchError(err) || !strings.Contains(err.Error(), "discovery is down") {
			t.Fatalf("err = %v, want the discovery failure", err)
		}
	}
	f.wantDiscoveries(t, 1)

	f.fail.Store(false)
	f.clock.Step(interval)
	mappingVersion(t, f.mapper, podGK)
	f.wantDiscoveries(t, 2)
}

func TestLookupStopsWaitingWhenContextEnds(t *testing.T) {
	f := newFixture(t, coreV1())
	mappingVersion(t, f.mapper, podGK)
	f.setResources(coreV1(), widgets("v1"))
	f.clock.Step(interval)

	entered := make(chan struct{})
	var enter sync.Once
	release := make(chan struct{})
	f.discovery.PrependReactor("get", "group", func(clienttesting.Action) (bool, runtime.Object, error) {
		enter.Do(func() { close(entered) })
		<-release
		return false, nil, nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := f.mapper.RESTMappingWithContext(ctx, widgetGK, "v1")
		errc <- err
	}()
	<-entered
	cancel()
	if err := <-errc; !meta.IsNoMatchError(err) {
		t.Fatalf("err = %v, want a no-match error", err)
	}

	// The discovery goes on for others: a lookup joins it and gets its result.
	errc2 := make(chan error, 1)
	go func() {
		_, err := f.mapper.RESTMapping(widgetGK, "v1")
		errc2 <- err
	}()
	close(release)
	if err := <-errc2; err != nil {
		t.Fatal(err)
	}
	f.wantDiscoveries(t, 2)
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := RegisterMetrics(reg); err == nil {
		t.Error("registering twice: no error")
	}

	f := newFixture(t, coreV1())
	healed := discoveries.WithLabelValues("example.com", resultSuccess)
	unserved := discoveries.WithLabelValues(unservedGroupLabel, resultNotFound)
	failed := discoveries.WithLabelValues("example.com", resultError)
	before := []float64{testutil.ToFloat64(healed), testutil.ToFloat64(unserved), testutil.ToFloat64(failed)}

	mappingVersion(t, f.mapper, podGK)
	f.clock.Step(interval)
	_, _ = f.mapper.RESTMapping(widgetGK, "v1") // not served
	f.setResources(coreV1(), widgets("v1"))
	f.clock.Step(interval)
	mappingVersion(t, f.mapper, widgetGK, "v1") // healed
	f.clock.Step(interval)
	f.fail.Store(true)
	_, _ = f.mapper.RESTMapping(widgetGK, "v9") // failed

	after := []float64{testutil.ToFloat64(healed), testutil.ToFloat64(unserved), testutil.ToFloat64(failed)}
	for i, name := range []string{"success", "not_found", "error"} {
		if after[i]-before[i] != 1 {
			t.Errorf("%s: counter went from %v to %v, want +1", name, before[i], after[i])
		}
	}
	if n, err := testutil.GatherAndCount(reg, "ebb_restmapper_discoveries_total"); err != nil || n == 0 {
		t.Errorf("gathered %d series, err %v", n, err)
	}
}

func TestInvalidateDuringDiscoveryStartsAnother(t *testing.T) {
	f := newFixture(t, coreV1(), widgets("v1"))
	mappingVersion(t, f.mapper, widgetGK)
	f.clock.Step(interval)

	entered := make(chan struct{})
	var enter sync.Once
	release := make(chan struct{})
	f.discovery.PrependReactor("get", "group", func(clienttesting.Action) (bool, runtime.Object, error) {
		enter.Do(func() { close(entered) })
		<-release
		return false, nil, nil
	})
	errs := make(chan error, 2)
	lookup := func() {
		_, err := f.mapper.RESTMapping(widgetGK, "v2")
		errs <- err
	}
	go lookup()
	<-entered
	// The discovery in progress may have read the old state: a lookup after
	// the invalidation must not settle for it.
	f.mapper.Invalidate("example.com")
	go lookup()
	_, ctx := ktesting.NewTestContext(t)
	waitFor(ctx, t, "a second discovery", func() bool {
		f.mapper.mu.RLock()
		defer f.mapper.mu.RUnlock()
		fl := f.mapper.inflight["example.com"]
		return fl != nil && fl.seq == 3
	})
	close(release)
	for range 2 {
		if err := <-errs; !meta.IsNoMatchError(err) {
			t.Errorf("err = %v, want a no-match error", err)
		}
	}
	f.wantDiscoveries(t, 3)
}

func TestOlderDiscoveryDoesNotOverwriteNewer(t *testing.T) {
	f := newFixture(t, coreV1())
	newer := newGroupResources(metav1.APIGroup{Name: "example.com"})
	older := newGroupResources(metav1.APIGroup{Name: "example.com"})
	f.mapper.mu.Lock()
	defer f.mapper.mu.Unlock()
	f.mapper.applyGroupLocked("example.com", newer, 5)
	f.mapper.applyGroupLocked("example.com", older, 4)
	f.mapper.applyGroupLocked("example.com", nil, 5)
	if f.mapper.groups["example.com"] != newer {
		t.Error("an older or equal discovery replaced the newer result")
	}
	f.mapper.applyGroupLocked("example.com", nil, 6)
	if _, ok := f.mapper.groups["example.com"]; ok {
		t.Error("a newer discovery that found the group gone did not remove it")
	}
}
