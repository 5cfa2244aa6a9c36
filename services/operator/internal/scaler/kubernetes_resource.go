package scaler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	yamlv3 "sigs.k8s.io/yaml/goyaml.v3"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// kubernetesResourceScaler reads a number from a ConfigMap's or Secret's
// data in the trigger's namespace, as KEDA's kubernetes-resource scaler
// does.
//
// Each poll is one GET of the object through the operator's shared
// client (and so under its --kube-api-qps/--kube-api-burst limits): one
// request per pollingInterval for the scale loop, plus one per metric
// read of the HPA unless the trigger has useCachedMetrics. Nothing is
// cached or watched: no informer over every Secret of the cluster.
//
// A Secret's value is never put in an error, nor any parser message that
// could quote part of it; a ConfigMap's value is shown, truncated.
type kubernetesResourceScaler struct {
	cfg    *scalers.KubernetesResourceConfig
	kube   kubernetes.Interface
	source string // "ConfigMap shop/task-count"
	// secret is true for a Secret: its value never shows in errors.
	secret bool
	closed atomic.Bool
}

func newKubernetesResource(c *scalers.KubernetesResourceConfig, deps Deps) (Scaler, error) {
	s := &kubernetesResourceScaler{
		cfg:    c,
		kube:   deps.Kube,
		source: fmt.Sprintf("%s %s/%s", c.ResourceKind, c.Namespace, c.ResourceName),
		secret: c.ResourceKind != scalers.ResourceKindConfigMap,
	}
	switch c.ResourceKind {
	case scalers.ResourceKindConfigMap, scalers.ResourceKindSecret:
	default:
		return nil, s.errorf(ErrInvalidConfig, "resourceKind %q is not one of ConfigMap, Secret", c.ResourceKind)
	}
	switch c.Format {
	case scalers.ResourceFormatNumber, scalers.ResourceFormatJSON, scalers.ResourceFormatYAML:
	default:
		return nil, s.errorf(ErrInvalidConfig, "format %q is not one of number, json, yaml", c.Format)
	}
	switch c.ValueType {
	case scalers.ResourceValueFloat64, scalers.ResourceValueInt64, scalers.ResourceValueQuantity:
	default:
		return nil, s.errorf(ErrInvalidConfig, "valueType %q is not one of float64, int64, quantity", c.ValueType)
	}
	if c.Namespace == "" || c.ResourceName == "" || c.Key == "" {
		return nil, s.errorf(ErrInvalidConfig, "no namespace, resourceName or key")
	}
	if deps.Kube == nil {
		return nil, s.errorf(ErrInvalidConfig, "no Kubernetes client to read the %s with", c.ResourceKind)
	}
	return s, nil
}

// Poll GETs the object and reads the value at key as KEDA does (see
// value). Active is value > activationTargetValue.
func (s *kubernetesResourceScaler) Poll(ctx context.Context) (Reading, error) {
	if s.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	raw, err := s.read(ctx)
	if err != nil {
		return Reading{}, err
	}
	v, err := s.value(raw)
	if err != nil {
		return Reading{}, err
	}
	return Reading{Value: v.q, Active: v.f > s.cfg.ActivationTargetValue}, nil
}

// read returns the string at key of the object's data (a Secret's data
// decoded, as the API gives it). binaryData and stringData are not read,
// as KEDA reads neither.
func (s *kubernetesResourceScaler) read(ctx context.Context) (string, error) {
	ns, name, key := s.cfg.Namespace, s.cfg.ResourceName, s.cfg.Key
	var (
		raw   string
		found bool
	)
	if s.secret {
		sec, err := s.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", s.apiError(ctx, err)
		}
		var b []byte
		b, found = sec.Data[key]
		raw = string(b)
	} else {
		cm, err := s.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", s.apiError(ctx, err)
		}
		raw, found = cm.Data[key]
	}
	if !found {
		return "", s.errorf(ErrBadResponse, "key %q not found in the data of %s %s/%s", key, s.cfg.ResourceKind, ns, name)
	}
	return raw, nil
}

// apiError classifies an error of the GET: the caller's context ending;
// the object missing, or the operator not allowed to read it (bad
// response, naming what is missing); another answer of the API server
// (bad response; a server-side timeout is a timeout); no answer
// (unreachable, or timeout).
func (s *kubernetesResourceScaler) apiError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		e := s.errorf(ErrUnreachable, "poll cancelled: %v", ctxErr)
		e.ctxErr = ctxErr
		return e
	}
	ns, name := s.cfg.Namespace, s.cfg.ResourceName
	plural := strings.ToLower(s.cfg.ResourceKind) + "s"
	switch {
	case apierrors.IsNotFound(err):
		return s.errorf(ErrBadResponse, "%s %s/%s not found: it must exist in the namespace of the ScaledObject", s.cfg.ResourceKind, ns, name)
	case apierrors.IsForbidden(err):
		return s.errorf(ErrBadResponse, "forbidden: the operator's ServiceAccount needs RBAC permission to get %s in namespace %s "+
			"(the ebb-operator chart's ClusterRole grants get on secrets and configmaps): %v", plural, ns, err)
	case apierrors.IsUnauthorized(err):
		return s.errorf(ErrBadResponse, "unauthorized: the API server refused the operator's credentials: %v", err)
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err):
		return s.errorf(ErrTimeout, "the API server timed out: %v", err)
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return s.errorf(ErrBadResponse, "get %s %s/%s: %v", plural, ns, name, err)
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return s.errorf(ErrTimeout, "get %s %s/%s: %v", plural, ns, name, err)
	}
	return s.errorf(ErrUnreachable, "get %s %s/%s: %v", plural, ns, name, err)
}

// value reads raw by the trigger's format and valueType, exactly as KEDA
// does:
//
//   - number: float64 is fmt.Sscanf's %f (leading spaces skipped, a
//     number prefix read, the rest ignored: "42 tasks" is 42), int64 its
//     %d ("4.7" is 4), quantity the whole string as a Kubernetes quantity
//     ("500m", "2Gi"; no surrounding space).
//   - json: the GJSON path valueLocation. float64 and quantity take a
//     number or a string holding a quantity; int64 a number only,
//     truncated (25.7 is 25). Unlike KEDA, the text must be valid JSON:
//     GJSON finds values in broken documents too.
//   - yaml: the document read as YAML 1.2 (go-yaml v3), then the dotted
//     path valueLocation (a number steps into a list: items.0.count); the
//     first scalar met is the value. A number is taken whatever
//     valueType; a string is read as a quantity for quantity, with %f
//     otherwise.
//
// The value is exact where the text is an integer or a decimal, otherwise
// kept to thousandths as KEDA sends it. Non-finite values (NaN, Inf),
// which KEDA would pass on as garbage, are errors.
func (s *kubernetesResourceScaler) value(raw string) (value, error) {
	switch s.cfg.Format {
	case scalers.ResourceFormatJSON:
		return s.jsonValue(raw)
	case scalers.ResourceFormatYAML:
		return s.yamlValue(raw)
	}
	what := fmt.Sprintf("the value of key %q", s.cfg.Key)
	switch s.cfg.ValueType {
	case scalers.ResourceValueInt64:
		var i int64
		if _, err := fmt.Sscanf(raw, "%d", &i); err != nil {
			return value{}, s.errorf(ErrBadResponse, "%s is not an integer%s%s", what, s.show(raw), s.cause(err))
		}
		return value{q: *resource.NewQuantity(i, resource.DecimalSI), f: float64(i)}, nil
	case scalers.ResourceValueQuantity:
		return s.quantity(raw, what)
	}
	return s.scanFloat(raw, what)
}

func (s *kubernetesResourceScaler) jsonValue(raw string) (value, error) {
	loc := s.cfg.ValueLocation
	if !gjson.Valid(raw) {
		return value{}, s.errorf(ErrBadResponse, "the value of key %q is not valid JSON%s", s.cfg.Key, s.show(raw))
	}
	r := gjson.Get(raw, loc)
	if !r.Exists() {
		return value{}, s.errorf(ErrBadResponse, "valueLocation %q not found in the JSON of key %q", loc, s.cfg.Key)
	}
	what := fmt.Sprintf("the value at valueLocation %q", loc)
	switch {
	case r.Type == gjson.Number && s.cfg.ValueType == scalers.ResourceValueInt64:
		if math.IsNaN(r.Num) || math.Abs(r.Num) >= math.MaxInt64 {
			return value{}, s.errorf(ErrBadResponse, "%s is out of the range of int64", what)
		}
		i := r.Int()
		return value{q: *resource.NewQuantity(i, resource.DecimalSI), f: float64(i)}, nil
	case r.Type == gjson.Number:
		if v, err := valueFromString(r.Raw); err == nil {
			return v, nil
		}
		return s.finite(r.Num, what)
	case r.Type == gjson.String && s.cfg.ValueType != scalers.ResourceValueInt64:
		return s.quantity(r.Str, what)
	}
	want := "a number or a string holding a quantity"
	if s.cfg.ValueType == scalers.ResourceValueInt64 {
		want = "a number (valueType int64)"
	}
	return value{}, s.errorf(ErrBadResponse, "%s must be %s, got %s", what, want, jsonKind(r))
}

func jsonKind(r gjson.Result) string {
	switch {
	case r.IsArray():
		return "an array"
	case r.IsObject():
		return "an object"
	case r.Type == gjson.String:
		return "a string"
	case r.Type == gjson.True, r.Type == gjson.False:
		return "a boolean"
	case r.Type == gjson.Null:
		return "null"
	}
	return r.Type.String()
}

func (s *kubernetesResourceScaler) yamlValue(raw string) (value, error) {
	loc := s.cfg.ValueLocation
	// As KEDA: YAML 1.2 (go-yaml v3) into a map, so anything but a
	// mapping (or an empty document) fails, as does a key given twice;
	// only the first document is read. sigs.k8s.io/yaml/goyaml.v3 is an
	// alias of go.yaml.in/yaml/v3's Unmarshal, which go.mod lists as an
	// indirect requirement only; sigs.k8s.io/yaml's own Unmarshal is YAML
	// 1.1 (a key "n" or "y" becomes false or true), which KEDA's is not.
	var doc map[string]any
	if err := yamlv3.Unmarshal([]byte(raw), &doc); err != nil {
		return value{}, s.errorf(ErrBadResponse, "the value of key %q is not a YAML mapping%s", s.cfg.Key, s.cause(err))
	}
	v, err := dottedPathValue(doc, loc)
	if err != nil {
		return value{}, s.errorf(ErrBadResponse, "valueLocation %q %v in the YAML of key %q", loc, err, s.cfg.Key)
	}
	what := fmt.Sprintf("the value at valueLocation %q", loc)
	got := ""
	switch t := v.(type) {
	case int:
		return value{q: *resource.NewQuantity(int64(t), resource.DecimalSI), f: float64(t)}, nil
	case int64:
		return value{q: *resource.NewQuantity(t, resource.DecimalSI), f: float64(t)}, nil
	case float64:
		return s.finite(t, what)
	case string:
		if s.cfg.ValueType == scalers.ResourceValueQuantity {
			return s.quantity(t, what)
		}
		return s.scanFloat(t, what)
	case bool:
		got = "a boolean"
	case nil:
		got = "null"
	case uint64:
		got = "an integer beyond the range of int64"
	case time.Time:
		got = "a timestamp"
	default:
		got = fmt.Sprintf("%T", v)
	}
	return value{}, s.errorf(ErrBadResponse, "%s must be a number or a string holding one, got %s", what, got)
}

var (
	errPathNotFound = errors.New("not found")
	errPathNoValue  = errors.New("does not lead to a value")
)

// dottedPathValue follows KEDA's dotted YAML path: each segment is a key
// of a mapping (non-string keys as fmt's %v prints them), or the index
// (0, 1, …) of a list; the first value that is neither ends the walk,
// even with segments left, as in KEDA. A path ending on a mapping or a
// list leads to no value.
func dottedPathValue(doc map[string]any, path string) (any, error) {
	var cur any = doc
	for _, seg := range strings.Split(path, ".") {
		var (
			next  any
			found bool
		)
		switch c := cur.(type) {
		case map[string]any:
			next, found = c[seg]
		case map[any]any:
			for k, v := range c {
				if fmt.Sprintf("%v", k) == seg {
					next, found = v, true
					break
				}
			}
		case []any:
			if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(c) && strconv.Itoa(i) == seg {
				next, found = c[i], true
			}
		}
		if !found {
			return nil, errPathNotFound
		}
		switch next.(type) {
		case map[string]any, map[any]any, []any:
			cur = next
		default:
			return next, nil
		}
	}
	return nil, errPathNoValue
}

// scanFloat reads text as fmt.Sscanf's %f, as KEDA does; the value is
// exact when text is just a decimal number.
func (s *kubernetesResourceScaler) scanFloat(text, what string) (value, error) {
	var f float64
	if _, err := fmt.Sscanf(text, "%f", &f); err != nil {
		return value{}, s.errorf(ErrBadResponse, "%s is not a number%s%s", what, s.show(text), s.cause(err))
	}
	if t := strings.TrimSpace(text); t != "" {
		if g, err := strconv.ParseFloat(t, 64); err == nil && g == f {
			if q, err := scalers.ParseQuantity(t); err == nil {
				return value{q: q, f: f}, nil
			}
		}
	}
	return s.finite(f, what)
}

// quantity reads text as a Kubernetes quantity, whole, as KEDA's
// resource.ParseQuantity does.
func (s *kubernetesResourceScaler) quantity(text, what string) (value, error) {
	q, err := scalers.ParseQuantity(text)
	if err != nil {
		return value{}, s.errorf(ErrBadResponse, "%s is not a Kubernetes quantity%s%s", what, s.show(text), s.cause(err))
	}
	return value{q: q, f: q.AsApproximateFloat64()}, nil
}

// finite is f in thousandths; NaN, infinities and values beyond the
// metric's range are errors.
func (s *kubernetesResourceScaler) finite(f float64, what string) (value, error) {
	v, err := valueFromFloat(f)
	if err != nil {
		if s.secret {
			return value{}, s.errorf(ErrBadResponse, "%s is not a finite number in range", what)
		}
		return value{}, s.errorf(ErrBadResponse, "%s: %v", what, err)
	}
	return v, nil
}

// show returns ": <text quoted, truncated>" for a ConfigMap's value and
// "" for a Secret's.
func (s *kubernetesResourceScaler) show(text string) string {
	if s.secret {
		return ""
	}
	return fmt.Sprintf(": %q", truncate(text, 64))
}

// cause returns " (<err on one line>)" for a ConfigMap's value and "" for
// a Secret's: parsers quote what they fail on.
func (s *kubernetesResourceScaler) cause(err error) string {
	if s.secret {
		return ""
	}
	return " (" + truncate(strings.Join(strings.Fields(err.Error()), " "), 200) + ")"
}

func (s *kubernetesResourceScaler) errorf(kind error, format string, args ...any) *Error {
	detail := ""
	if format != "" {
		detail = fmt.Sprintf(format, args...)
	}
	return &Error{Type: s.cfg.Type(), Source: s.source, Kind: kind, Detail: detail}
}

// Close marks the scaler closed; the client is the operator's, not the
// scaler's to close. It is idempotent.
func (s *kubernetesResourceScaler) Close() error {
	s.closed.Store(true)
	return nil
}
