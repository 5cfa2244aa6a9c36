package restmapper

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2/ktesting"
)

func TestCRDGroup(t *testing.T) {
	tests := map[string]struct {
		name   string
		group  string
		wantOK bool
	}{
		"plural and group":      {name: "widgets.example.com", group: "example.com", wantOK: true},
		"single-label group":    {name: "widgets.local", group: "local", wantOK: true},
		"no dot":                {name: "widgets"},
		"nothing after the dot": {name: "widgets."},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			group, ok := crdGroup(tc.name)
			if ok != tc.wantOK || (ok && group != tc.group) {
				t.Errorf("crdGroup(%q) = %q, %v, want %q, %v", tc.name, group, ok, tc.group, tc.wantOK)
			}
		})
	}
}

func TestWatchCRDsInvalidates(t *testing.T) {
	f := newFixture(t, coreV1(), widgets("v1"))
	if v := mappingVersion(t, f.mapper, widgetGK); v != "v1" {
		t.Fatalf("version = %q, want v1", v)
	}

	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	client := metadatafake.NewSimpleMetadataClient(scheme)
	factory := metadatainformer.NewSharedInformerFactory(client, 0)
	defer func() {
		cancel()
		factory.Shutdown()
	}()
	registration, err := WatchCRDs(ctx, factory, f.mapper)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), registration.HasSynced) {
		t.Fatal("CRD informer did not sync")
	}
	// The fake's watch replays nothing: wait for it before writing.
	waitFor(ctx, t, "the CRD watch", func() bool {
		for _, a := range client.Actions() {
			if a.GetVerb() == "watch" {
				return true
			}
		}
		return false
	})

	crds := client.Resource(crdResource)
	crd := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
	}

	// v2 added to the CRD and preferred: no lookup can tell without the
	// event, the clock does not move.
	f.setResources(coreV1(), widgets("v2"), widgets("v1"))
	if _, err := crds.(metadatafake.MetadataClient).CreateFake(crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "v2 after the CRD event", func() bool {
		return mappingVersion(t, f.mapper, widgetGK) == "v2"
	})
	f.wantDiscoveries(t, 2)

	// The CRD is deleted.
	f.setResources(coreV1())
	if err := crds.Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "no match after the CRD was deleted", func() bool {
		_, err := f.mapper.RESTMapping(widgetGK)
		return meta.IsNoMatchError(err)
	})
	f.wantDiscoveries(t, 3)
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
