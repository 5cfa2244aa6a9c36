package scaler

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// krSecret is in every Secret value of the error tests: it must never
// show in an error.
const krSecret = "S3CR3T-value"

// krMeta is a kubernetes-resource trigger's metadata on ConfigMap
// task-count, key count; kv pairs override (an empty value deletes).
func krMeta(kv ...string) map[string]string {
	m := map[string]string{"resourceKind": "ConfigMap", "resourceName": "task-count", "key": "count", "targetValue": "10"}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

// krObject is the ConfigMap or Secret the trigger of meta reads, in
// namespace shop, with data[key] = value.
func krObject(meta map[string]string, value string) runtime.Object {
	om := metav1.ObjectMeta{Namespace: "shop", Name: meta["resourceName"]}
	if meta["resourceKind"] == "Secret" {
		return &corev1.Secret{ObjectMeta: om, Data: map[string][]byte{meta["key"]: []byte(value)}}
	}
	return &corev1.ConfigMap{ObjectMeta: om, Data: map[string]string{meta["key"]: value}}
}

// buildKubeResource parses a trigger of namespace shop and builds its
// scaler on kube.
func buildKubeResource(t *testing.T, meta map[string]string, kube kubernetes.Interface) Scaler {
	t.Helper()
	cfg, _, err := scalers.Parse(scalers.Trigger{Type: "kubernetes-resource", Namespace: "shop", Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Deps{Kube: kube})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestKubernetesResourceValues(t *testing.T) {
	tests := map[string]struct {
		meta       map[string]string
		value      string
		want       string
		wantActive bool
	}{
		// number, float64: fmt.Sscanf's %f, as KEDA.
		"number":                           {meta: krMeta(), value: "42", want: "42", wantActive: true},
		"number below activation":          {meta: krMeta("activationTargetValue", "5"), value: "3", want: "3"},
		"number at activation is inactive": {meta: krMeta("activationTargetValue", "5"), value: "5", want: "5"},
		"number above activation":          {meta: krMeta("activationTargetValue", "5"), value: "8", want: "8", wantActive: true},
		"number 0":                         {meta: krMeta(), value: "0", want: "0"},
		"number negative":                  {meta: krMeta(), value: "-2", want: "-2"},
		"number decimal, exact":            {meta: krMeta(), value: "7.25", want: "7.25", wantActive: true},
		"number below a thousandth":        {meta: krMeta(), value: "0.0004", want: "400u", wantActive: true},
		"number with spaces and newline":   {meta: krMeta(), value: " 7.5\n", want: "7.5", wantActive: true},
		"number, the rest ignored":         {meta: krMeta(), value: "42 tasks", want: "42", wantActive: true},
		"number with an exponent":          {meta: krMeta(), value: "1e3", want: "1000", wantActive: true},
		"number with a suffix, as %f":      {meta: krMeta(), value: "500m", want: "500", wantActive: true},
		"number with underscores, as %f":   {meta: krMeta(), value: "1_000", want: "1000", wantActive: true},
		"number, explicit valueType":       {meta: krMeta("format", "number", "valueType", "float64"), value: "3", want: "3", wantActive: true},
		// number, int64: %d.
		"int64":                {meta: krMeta("valueType", "int64"), value: "42", want: "42", wantActive: true},
		"int64 truncates":      {meta: krMeta("valueType", "int64"), value: "4.7", want: "4", wantActive: true},
		"int64 with a sign":    {meta: krMeta("valueType", "int64"), value: "+5", want: "5", wantActive: true},
		"int64 of an exponent": {meta: krMeta("valueType", "int64"), value: "4.2e1", want: "4", wantActive: true},
		// number, quantity.
		"quantity milli":    {meta: krMeta("valueType", "quantity"), value: "500m", want: "500m", wantActive: true},
		"quantity binary":   {meta: krMeta("valueType", "quantity"), value: "2Gi", want: "2Gi", wantActive: true},
		"quantity exponent": {meta: krMeta("valueType", "quantity"), value: "1e3", want: "1000", wantActive: true},
		// json.
		"json": {
			meta:  krMeta("key", "data", "format", "json", "valueLocation", "metrics.threshold"),
			value: `{"metrics": {"threshold": 15}}`, want: "15", wantActive: true,
		},
		"json decimal": {
			meta:  krMeta("key", "data", "format", "json", "valueLocation", "q"),
			value: `{"q": 2.5}`, want: "2.5", wantActive: true,
		},
		"json quantity string with float64": {
			meta:  krMeta("key", "memory", "format", "json", "valueLocation", "used"),
			value: `{"available": "2Gi", "used": "512Mi"}`, want: "512Mi", wantActive: true,
		},
		"json array index": {
			meta:  krMeta("key", "data", "format", "json", "valueLocation", "items.1.n"),
			value: `{"items": [{"n": 1}, {"n": 4}]}`, want: "4", wantActive: true,
		},
		"json GJSON count": {
			meta:  krMeta("key", "data", "format", "json", "valueLocation", "items.#"),
			value: `{"items": [1, 2, 3]}`, want: "3", wantActive: true,
		},
		"json int64 truncates": {
			meta:  krMeta("key", "data", "format", "json", "valueLocation", "count", "valueType", "int64"),
			value: `{"count": 25.7}`, want: "25", wantActive: true,
		},
		"json quantity number": {
			meta:  krMeta("key", "data", "format", "json", "valueLocation", "count", "valueType", "quantity"),
			value: `{"count": 3}`, want: "3", wantActive: true,
		},
		"json quantity string": {
			meta:  krMeta("key", "data", "format", "json", "valueLocation", "cpu", "valueType", "quantity"),
			value: `{"cpu": "100m"}`, want: "100m", wantActive: true,
		},
		"json below activation": {
			meta:  krMeta("key", "data", "format", "json", "valueLocation", "n", "activationTargetValue", "5"),
			value: `{"n": 5}`, want: "5",
		},
		// yaml.
		"yaml": {
			meta:  krMeta("key", "data", "format", "yaml", "valueLocation", "metrics.threshold"),
			value: "metrics:\n  threshold: 20\n", want: "20", wantActive: true,
		},
		"yaml nested, int64": {
			meta:  krMeta("key", "stats", "format", "yaml", "valueLocation", "application.workers.active", "valueType", "int64"),
			value: "application:\n  workers:\n    active: 15\n    idle: 3\n", want: "15", wantActive: true,
		},
		"yaml numbers are taken whole whatever valueType, as KEDA": {
			meta:  krMeta("key", "data", "format", "yaml", "valueLocation", "count", "valueType", "int64"),
			value: "count: 25.7\n", want: "25.7", wantActive: true,
		},
		"yaml list index": {
			meta:  krMeta("key", "data", "format", "yaml", "valueLocation", "items.1.count"),
			value: "items:\n- count: 3\n- count: 9\n", want: "9", wantActive: true,
		},
		"yaml string read with %f": {
			meta:  krMeta("key", "data", "format", "yaml", "valueLocation", "count"),
			value: "count: '42 tasks'\n", want: "42", wantActive: true,
		},
		"yaml quantity string": {
			meta:  krMeta("key", "data", "format", "yaml", "valueLocation", "mem", "valueType", "quantity"),
			value: "mem: 1Gi\n", want: "1Gi", wantActive: true,
		},
		"yaml the first scalar ends the path, as KEDA": {
			meta:  krMeta("key", "data", "format", "yaml", "valueLocation", "a.b.c"),
			value: "a: 5\n", want: "5", wantActive: true,
		},
		"yaml 1.2: n and y are strings, 0o17 is octal": {
			meta:  krMeta("key", "data", "format", "yaml", "valueLocation", "n.y"),
			value: "n:\n  y: 0o17\n", want: "15", wantActive: true,
		},
		"yaml integer keys": {
			meta:  krMeta("key", "data", "format", "yaml", "valueLocation", "x.1.y"),
			value: "x:\n  1: {y: 3}\n", want: "3", wantActive: true,
		},
		"yaml a second document is ignored": {
			meta:  krMeta("key", "data", "format", "yaml", "valueLocation", "n"),
			value: "n: 2\n---\nn: 7\n", want: "2", wantActive: true,
		},
		// Secrets read the same way.
		"Secret number": {
			meta:  krMeta("resourceKind", "Secret", "resourceName", "my-secret", "key", "threshold"),
			value: "25", want: "25", wantActive: true,
		},
		"Secret json": {
			meta:  krMeta("resourceKind", "Secret", "resourceName", "my-secret", "key", "data", "format", "json", "valueLocation", "limit"),
			value: `{"limit": 150}`, want: "150", wantActive: true,
		},
		"Secret yaml": {
			meta:  krMeta("resourceKind", "Secret", "resourceName", "my-secret", "key", "data", "format", "yaml", "valueLocation", "limit"),
			value: "limit: 0.5\n", want: "500m", wantActive: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := buildKubeResource(t, tc.meta, fake.NewClientset(krObject(tc.meta, tc.value)))
			r, err := s.Poll(t.Context())
			if err != nil {
				t.Fatalf("Poll: %v", err)
			}
			if want := resource.MustParse(tc.want); r.Value.Cmp(want) != 0 || r.Active != tc.wantActive {
				t.Errorf("got %s active=%v, want %s active=%v", r.Value.String(), r.Active, tc.want, tc.wantActive)
			}
		})
	}
}

func TestKubernetesResourceValueErrors(t *testing.T) {
	secret := func(kv ...string) map[string]string {
		return krMeta(append([]string{"resourceKind", "Secret", "resourceName", "my-secret"}, kv...)...)
	}
	tests := map[string]struct {
		meta  map[string]string
		value string
		want  string
	}{
		"number not a number":       {meta: krMeta(), value: "not-a-number", want: `the value of key "count" is not a number: "not-a-number" (strconv.ParseFloat: `},
		"number empty":              {meta: krMeta(), value: "", want: "is not a number"},
		"number after a newline":    {meta: krMeta(), value: "\n42", want: `is not a number: "\n42" (unexpected newline)`},
		"number NaN":                {meta: krMeta(), value: "NaN", want: "is not a finite number"},
		"number Inf":                {meta: krMeta(), value: "inf", want: "is not a finite number"},
		"number out of range":       {meta: krMeta(), value: "1e400", want: "value out of range"},
		"int64 not an integer":      {meta: krMeta("valueType", "int64"), value: "x", want: `is not an integer: "x" (expected integer)`},
		"quantity invalid":          {meta: krMeta("valueType", "quantity"), value: "invalid-quantity", want: `is not a Kubernetes quantity: "invalid-quantity" (quantities must match the regular expression`},
		"quantity with a newline":   {meta: krMeta("valueType", "quantity"), value: "5\n", want: "is not a Kubernetes quantity"},
		"json invalid":              {meta: krMeta("format", "json", "valueLocation", "a"), value: "{invalid json}", want: `the value of key "count" is not valid JSON: "{invalid json}"`},
		"json path missing":         {meta: krMeta("format", "json", "valueLocation", "missing.path"), value: `{"a": 1}`, want: `valueLocation "missing.path" not found in the JSON of key "count"`},
		"json boolean":              {meta: krMeta("format", "json", "valueLocation", "a"), value: `{"a": true}`, want: "must be a number or a string holding a quantity, got a boolean"},
		"json object":               {meta: krMeta("format", "json", "valueLocation", "a"), value: `{"a": {"b": 1}}`, want: "got an object"},
		"json array":                {meta: krMeta("format", "json", "valueLocation", "a"), value: `{"a": [1]}`, want: "got an array"},
		"json null":                 {meta: krMeta("format", "json", "valueLocation", "a"), value: `{"a": null}`, want: "got null"},
		"json int64 of a string":    {meta: krMeta("format", "json", "valueLocation", "a", "valueType", "int64"), value: `{"a": "5"}`, want: "must be a number (valueType int64), got a string"},
		"json int64 out of range":   {meta: krMeta("format", "json", "valueLocation", "a", "valueType", "int64"), value: `{"a": 1e30}`, want: "out of the range of int64"},
		"json string not quantity":  {meta: krMeta("format", "json", "valueLocation", "a"), value: `{"a": " 5"}`, want: `is not a Kubernetes quantity: " 5"`},
		"yaml invalid":              {meta: krMeta("format", "yaml", "valueLocation", "a"), value: "a: [1\n", want: `the value of key "count" is not a YAML mapping (yaml: line 1: did not find expected`},
		"yaml a list":               {meta: krMeta("format", "yaml", "valueLocation", "a"), value: "- 1\n- 2\n", want: "is not a YAML mapping"},
		"yaml a scalar":             {meta: krMeta("format", "yaml", "valueLocation", "a"), value: "5\n", want: "is not a YAML mapping"},
		"yaml a key twice":          {meta: krMeta("format", "yaml", "valueLocation", "a"), value: "a: 1\na: 2\n", want: "is not a YAML mapping"},
		"yaml empty":                {meta: krMeta("format", "yaml", "valueLocation", "a"), value: "", want: `valueLocation "a" not found in the YAML of key "count"`},
		"yaml path missing":         {meta: krMeta("format", "yaml", "valueLocation", "a.c"), value: "a:\n  b: 1\n", want: `valueLocation "a.c" not found`},
		"yaml list index too large": {meta: krMeta("format", "yaml", "valueLocation", "a.2"), value: "a: [1, 2]\n", want: "not found"},
		"yaml list index 01":        {meta: krMeta("format", "yaml", "valueLocation", "a.01"), value: "a: [1, 2]\n", want: "not found"},
		"yaml path to a mapping":    {meta: krMeta("format", "yaml", "valueLocation", "a"), value: "a:\n  b: 1\n", want: `valueLocation "a" does not lead to a value`},
		"yaml boolean":              {meta: krMeta("format", "yaml", "valueLocation", "a"), value: "a: true\n", want: "must be a number or a string holding one, got a boolean"},
		"yaml null":                 {meta: krMeta("format", "yaml", "valueLocation", "a"), value: "a: ~\n", want: "got null"},
		"yaml string not a number":  {meta: krMeta("format", "yaml", "valueLocation", "a"), value: "a: many\n", want: `is not a number: "many"`},
		"yaml timestamp":            {meta: krMeta("format", "yaml", "valueLocation", "a"), value: "a: 2001-12-14\n", want: "got a timestamp"},
		"yaml beyond int64":         {meta: krMeta("format", "yaml", "valueLocation", "a"), value: "a: 18446744073709551615\n", want: "got an integer beyond the range of int64"},
		"yaml infinity":             {meta: krMeta("format", "yaml", "valueLocation", "a"), value: "a: .inf\n", want: "is not a finite number"},
		"yaml quantity invalid":     {meta: krMeta("format", "yaml", "valueLocation", "a", "valueType", "quantity"), value: "a: lots\n", want: `is not a Kubernetes quantity: "lots"`},

		// A Secret's value never shows, nor a parser's message about it.
		"Secret number":        {meta: secret(), value: krSecret, want: `the value of key "count" is not a number`},
		"Secret int64":         {meta: secret("valueType", "int64"), value: krSecret, want: "is not an integer"},
		"Secret quantity":      {meta: secret("valueType", "quantity"), value: krSecret, want: "is not a Kubernetes quantity"},
		"Secret NaN":           {meta: secret(), value: "NaN " + krSecret, want: "is not a finite number in range"},
		"Secret json invalid":  {meta: secret("format", "json", "valueLocation", "a"), value: `{"a": ` + krSecret, want: "is not valid JSON"},
		"Secret json string":   {meta: secret("format", "json", "valueLocation", "a"), value: `{"a": "` + krSecret + `"}`, want: "is not a Kubernetes quantity"},
		"Secret yaml invalid":  {meta: secret("format", "yaml", "valueLocation", "a"), value: "a: [" + krSecret + "\n", want: "is not a YAML mapping"},
		"Secret yaml type":     {meta: secret("format", "yaml", "valueLocation", "a"), value: krSecret + ": x\n", want: `valueLocation "a" not found`},
		"Secret yaml a scalar": {meta: secret("format", "yaml", "valueLocation", "a"), value: krSecret + "\n", want: "is not a YAML mapping"},
		"Secret yaml string":   {meta: secret("format", "yaml", "valueLocation", "a"), value: "a: " + krSecret + "\n", want: "is not a number"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := buildKubeResource(t, tc.meta, fake.NewClientset(krObject(tc.meta, tc.value)))
			_, err := s.Poll(t.Context())
			checkKind(t, err, ErrBadResponse)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "kubernetes-resource trigger ("+tc.meta["resourceKind"]+" shop/"+tc.meta["resourceName"]+"): ") {
				t.Errorf("error %q does not name the trigger and the object", err)
			}
			if strings.Contains(err.Error(), "S3CR3T") {
				t.Errorf("error %q reveals the Secret's value", err)
			}
		})
	}
}

func TestKubernetesResourceAPIErrors(t *testing.T) {
	configMaps := schema.GroupResource{Resource: "configmaps"}
	tests := map[string]struct {
		meta    map[string]string
		objects []runtime.Object
		// reaction, when set, answers every GET.
		reaction error
		kind     error
		want     string
	}{
		"ConfigMap not found": {
			meta: krMeta("resourceName", "missing-config"),
			kind: ErrBadResponse, want: "ConfigMap shop/missing-config not found: it must exist in the namespace of the ScaledObject",
		},
		"Secret not found": {
			meta: krMeta("resourceKind", "Secret", "resourceName", "missing-secret"),
			kind: ErrBadResponse, want: "Secret shop/missing-secret not found",
		},
		"ConfigMap in another namespace is not found": {
			meta:    krMeta(),
			objects: []runtime.Object{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "task-count"}, Data: map[string]string{"count": "1"}}},
			kind:    ErrBadResponse, want: "ConfigMap shop/task-count not found",
		},
		"key missing from a ConfigMap": {
			meta:    krMeta("key", "missing-key"),
			objects: []runtime.Object{krObject(krMeta(), "10")},
			kind:    ErrBadResponse, want: `key "missing-key" not found in the data of ConfigMap shop/task-count`,
		},
		"key missing from a Secret": {
			meta:    krMeta("resourceKind", "Secret", "key", "missing-key"),
			objects: []runtime.Object{krObject(krMeta("resourceKind", "Secret"), krSecret)},
			kind:    ErrBadResponse, want: `key "missing-key" not found in the data of Secret shop/task-count`,
		},
		"a ConfigMap's binaryData is not read, as KEDA": {
			meta:    krMeta(),
			objects: []runtime.Object{&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "task-count"}, BinaryData: map[string][]byte{"count": []byte("1")}}},
			kind:    ErrBadResponse, want: `key "count" not found`,
		},
		"forbidden": {
			meta:     krMeta(),
			reaction: apierrors.NewForbidden(configMaps, "task-count", errors.New(`User "system:serviceaccount:ebb-system:ebb-operator" cannot get resource "configmaps"`)),
			kind:     ErrBadResponse,
			want:     "forbidden: the operator's ServiceAccount needs RBAC permission to get configmaps in namespace shop (the ebb-operator chart's ClusterRole grants get on secrets and configmaps): ",
		},
		"forbidden Secret": {
			meta:     krMeta("resourceKind", "Secret"),
			reaction: apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "task-count", errors.New("denied")),
			kind:     ErrBadResponse, want: "needs RBAC permission to get secrets in namespace shop",
		},
		"unauthorized": {
			meta:     krMeta(),
			reaction: apierrors.NewUnauthorized("token expired"),
			kind:     ErrBadResponse, want: "unauthorized: the API server refused the operator's credentials",
		},
		"server timeout": {
			meta:     krMeta(),
			reaction: apierrors.NewServerTimeout(configMaps, "get", 1),
			kind:     ErrTimeout, want: "the API server timed out",
		},
		"request timeout": {
			meta:     krMeta(),
			reaction: apierrors.NewTimeoutError("request did not complete", 1),
			kind:     ErrTimeout, want: "the API server timed out",
		},
		"internal error": {
			meta:     krMeta(),
			reaction: apierrors.NewInternalError(errors.New("etcd is sad")),
			kind:     ErrBadResponse, want: "get configmaps shop/task-count: Internal error occurred: etcd is sad",
		},
		"too many requests": {
			meta:     krMeta(),
			reaction: apierrors.NewTooManyRequests("slow down", 1),
			kind:     ErrBadResponse, want: "slow down",
		},
		"no answer": {
			meta:     krMeta(),
			reaction: errors.New("dial tcp 10.0.0.1:443: connect: connection refused"),
			kind:     ErrUnreachable, want: "get configmaps shop/task-count: dial tcp",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			kube := fake.NewClientset(tc.objects...)
			if tc.reaction != nil {
				kube.PrependReactor("get", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, tc.reaction
				})
			}
			s := buildKubeResource(t, tc.meta, kube)
			_, err := s.Poll(t.Context())
			checkKind(t, err, tc.kind)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if tc.kind == ErrBadResponse && errors.Is(err, ErrUnreachable) {
				t.Errorf("error %v is also unreachable", err)
			}
			if strings.Contains(err.Error(), "S3CR3T") {
				t.Errorf("error %q reveals the Secret's value", err)
			}
		})
	}
}

// TestKubernetesResourcePolls reads one ConfigMap through several states,
// one GET of that ConfigMap per poll and nothing else.
func TestKubernetesResourcePolls(t *testing.T) {
	ctx := t.Context()
	meta := krMeta("key", "metrics", "format", "json", "valueLocation", "queue.pending", "activationTargetValue", "2")
	kube := fake.NewClientset(krObject(meta, `{"queue": {"pending": 0}}`))
	s := buildKubeResource(t, meta, kube)
	for i, step := range []struct {
		data   string
		want   string
		active bool
	}{
		{`{"queue": {"pending": 0}}`, "0", false},
		{`{"queue": {"pending": 12, "processing": 5}}`, "12", true},
		{`{"queue": {"pending": 2}}`, "2", false},
		{`{"queue": {"pending": 3}}`, "3", true},
		{`{"queue": {"pending": 0}}`, "0", false},
	} {
		cm := krObject(meta, step.data).(*corev1.ConfigMap)
		if _, err := kube.CoreV1().ConfigMaps("shop").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		kube.ClearActions()
		r, err := s.Poll(ctx)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if r.Value.Cmp(resource.MustParse(step.want)) != 0 || r.Active != step.active {
			t.Errorf("step %d: got %s active=%v, want %s active=%v", i, r.Value.String(), r.Active, step.want, step.active)
		}
		actions := kube.Actions()
		if len(actions) != 1 {
			t.Fatalf("step %d: %d API requests, want 1: %v", i, len(actions), actions)
		}
		get, ok := actions[0].(k8stesting.GetAction)
		if !ok || get.GetResource().Resource != "configmaps" || get.GetNamespace() != "shop" || get.GetName() != "task-count" {
			t.Errorf("step %d: request %v, want a GET of configmaps shop/task-count", i, actions[0])
		}
	}
}

func TestKubernetesResourceSecretGet(t *testing.T) {
	meta := krMeta("resourceKind", "Secret", "resourceName", "metrics-data")
	kube := fake.NewClientset(krObject(meta, "4"))
	s := buildKubeResource(t, meta, kube)
	if _, err := s.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	actions := kube.Actions()
	if len(actions) != 1 || actions[0].GetVerb() != "get" || actions[0].GetResource().Resource != "secrets" || actions[0].GetNamespace() != "shop" {
		t.Errorf("requests %v, want one GET of secrets in shop", actions)
	}
}

func TestKubernetesResourceNew(t *testing.T) {
	// Without a Kubernetes client in Deps, the trigger has no scaler.
	cfg, _, err := scalers.Parse(scalers.Trigger{Type: "kubernetes-resource", Namespace: "shop", Metadata: krMeta()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, Deps{})
	checkKind(t, err, ErrInvalidConfig)
	if !strings.Contains(err.Error(), "kubernetes-resource") || !strings.Contains(err.Error(), "no Kubernetes client") {
		t.Errorf("error %q does not name the trigger type and the missing client", err)
	}
	// A config built by hand with unknown settings is refused.
	for name, c := range map[string]*scalers.KubernetesResourceConfig{
		"kind":      {ResourceKind: "Pod", ResourceName: "n", Key: "k", Namespace: "shop", Format: "number", ValueType: "float64"},
		"format":    {ResourceKind: "ConfigMap", ResourceName: "n", Key: "k", Namespace: "shop", Format: "xml", ValueType: "float64"},
		"valueType": {ResourceKind: "ConfigMap", ResourceName: "n", Key: "k", Namespace: "shop", Format: "number", ValueType: "string"},
		"namespace": {ResourceKind: "ConfigMap", ResourceName: "n", Key: "k", Format: "number", ValueType: "float64"},
	} {
		if _, err := New(c, Deps{Kube: fake.NewClientset()}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestKubernetesResourceClose(t *testing.T) {
	meta := krMeta()
	kube := fake.NewClientset(krObject(meta, "1"))
	s := buildKubeResource(t, meta, kube)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	kube.ClearActions()
	_, err := s.Poll(t.Context())
	checkKind(t, err, ErrClosed)
	if n := len(kube.Actions()); n != 0 {
		t.Errorf("Poll after Close sent %d requests", n)
	}
}

// TestKubernetesResourceTransport polls through a real client: nothing
// listening (unreachable), a server that never answers (timeout: the
// client's own, then the caller's deadline), and a real API error body.
func TestKubernetesResourceTransport(t *testing.T) {
	clientFor := func(t *testing.T, host string, timeout time.Duration) kubernetes.Interface {
		t.Helper()
		kube, err := kubernetes.NewForConfig(&rest.Config{Host: host, Timeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		return kube
	}

	t.Run("unreachable", func(t *testing.T) {
		s := buildKubeResource(t, krMeta(), clientFor(t, "http://"+closedAddress(t), 0))
		_, err := s.Poll(t.Context())
		checkKind(t, err, ErrUnreachable)
		if errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "get configmaps shop/task-count") {
			t.Errorf("error %v", err)
		}
	})

	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(hang.Close)
	t.Run("client timeout", func(t *testing.T) {
		s := buildKubeResource(t, krMeta(), clientFor(t, hang.URL, 200*time.Millisecond))
		_, err := s.Poll(t.Context())
		checkKind(t, err, ErrTimeout)
	})
	t.Run("caller deadline", func(t *testing.T) {
		s := buildKubeResource(t, krMeta(), clientFor(t, hang.URL, 0))
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		_, err := s.Poll(ctx)
		checkKind(t, err, ErrUnreachable)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v does not wrap the caller's context error", err)
		}
	})

	t.Run("not found from a real answer", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/api/v1/namespaces/shop/configmaps/task-count" {
				t.Errorf("request %s %s", r.Method, r.URL.Path)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps \"task-count\" not found","reason":"NotFound","code":404}`))
		}))
		t.Cleanup(srv.Close)
		s := buildKubeResource(t, krMeta(), clientFor(t, srv.URL, 0))
		_, err := s.Poll(t.Context())
		checkKind(t, err, ErrBadResponse)
		if !strings.Contains(err.Error(), "ConfigMap shop/task-count not found") {
			t.Errorf("error %v", err)
		}
	})
}
