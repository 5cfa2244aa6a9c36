package scaler

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/tidwall/gjson"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// value is a metric value: the exact quantity for the HPA, and its float
// for activation.
type value struct {
	q resource.Quantity
	f float64
}

// valueFromString reads a number or a Kubernetes quantity ("12", "2.5",
// "1e3", "500m", "2k"), exactly when it can be. scalers.ParseQuantity
// refuses at once what resource.ParseQuantity would take hours on (a
// source answering "1e-999999999"); such a value is read as a float.
func valueFromString(s string) (value, error) {
	s = strings.TrimSpace(s)
	if q, err := scalers.ParseQuantity(s); err == nil {
		return value{q: q, f: q.AsApproximateFloat64()}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return value{}, err
	}
	return valueFromFloat(f)
}

// valueFromFloat is f in thousandths, as KEDA sends float metrics.
func valueFromFloat(f float64) (value, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return value{}, fmt.Errorf("value %v is not a finite number", f)
	}
	if math.Abs(f) >= math.MaxInt64/1000 {
		return value{}, fmt.Errorf("value %v is out of range", f)
	}
	return value{q: *resource.NewMilliQuantity(int64(math.Round(f*1000)), resource.DecimalSI), f: f}, nil
}

// valueFromBody reads the value at location in a metrics-api body.
func valueFromBody(body []byte, location, format string) (value, error) {
	switch format {
	case "json", "":
		return valueFromJSON(body, location)
	case "yaml":
		// YAML becomes JSON (numbers keep their text) and the same path
		// syntax applies; KEDA's dotted paths (a.b.0.c) mean the same.
		j, err := yaml.YAMLToJSON(body)
		if err != nil {
			return value{}, valueErrorf("the body is not YAML: %v", err)
		}
		return valueFromJSON(j, location)
	case "xml":
		return valueFromXML(body, location)
	case "prometheus":
		return valueFromPrometheusText(body, location)
	}
	return value{}, valueErrorf("format %q is not supported", format)
}

// valueFromJSON reads a GJSON path, as KEDA: a number, or a string holding
// a quantity.
func valueFromJSON(body []byte, location string) (value, error) {
	if !gjson.ValidBytes(body) {
		return value{}, valueErrorf("the body is not valid JSON")
	}
	r := gjson.GetBytes(body, location)
	switch r.Type {
	case gjson.Number:
		if v, err := valueFromString(r.Raw); err == nil {
			return v, nil
		}
		v, err := valueFromFloat(r.Num)
		if err != nil {
			return value{}, valueErrorf("valueLocation %q: %v", location, err)
		}
		return v, nil
	case gjson.String:
		v, err := valueFromString(r.Str)
		if err != nil {
			return value{}, valueErrorf("valueLocation %q must point to a number or a quantity string, got %q", location, truncate(r.Str, 64))
		}
		return v, nil
	case gjson.Null:
		if !r.Exists() {
			return value{}, valueErrorf("valueLocation %q not found in the body", location)
		}
	}
	what := r.Type.String()
	if r.IsArray() {
		what = "an array"
	} else if r.IsObject() {
		what = "an object"
	}
	return value{}, valueErrorf("valueLocation %q must point to a number or a quantity string, got %s", location, what)
}

// xmlNode is an element of a parsed XML document.
type xmlNode struct {
	name     string
	text     strings.Builder
	children []*xmlNode
}

func parseXML(body []byte) (*xmlNode, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var root *xmlNode
	var stack []*xmlNode
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: t.Name.Local}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("more than one root element")
				}
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no root element")
	}
	return root, nil
}

// valueFromXML follows a dotted path of element names (the first element
// of that name at each step; a number picks the n-th child element when no
// element has that name). The path may start with the root element's name
// or below it. The element reached must hold a number or a quantity.
func valueFromXML(body []byte, location string) (value, error) {
	root, err := parseXML(body)
	if err != nil {
		return value{}, valueErrorf("the body is not XML: %v", err)
	}
	segs := strings.Split(location, ".")
	n := root
	if segs[0] == root.name {
		segs = segs[1:]
	}
	for _, seg := range segs {
		var matches []*xmlNode
		for _, c := range n.children {
			if c.name == seg {
				matches = append(matches, c)
			}
		}
		if len(matches) == 0 {
			if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(n.children) {
				n = n.children[i]
				continue
			}
			return value{}, valueErrorf("valueLocation %q not found in the body", location)
		}
		n = matches[0]
	}
	if len(n.children) > 0 {
		return value{}, valueErrorf("valueLocation %q must point to a number or a quantity string, got an element", location)
	}
	text := strings.TrimSpace(n.text.String())
	v, err := valueFromString(text)
	if err != nil {
		return value{}, valueErrorf("valueLocation %q must point to a number or a quantity string, got %q", location, truncate(text, 64))
	}
	return v, nil
}

// valueFromPrometheusText reads the first sample of the Prometheus text
// format matching location, a metric name with optional label equality
// matchers (name{a="x",b="y"}), as KEDA does.
func valueFromPrometheusText(body []byte, location string) (value, error) {
	name, matchers, err := parseSelector(location)
	if err != nil {
		return value{}, valueErrorf("valueLocation %q is not a metric selector: %v", location, err)
	}
	text := strings.ReplaceAll(string(body), "\r\n", "\n")
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return value{}, valueErrorf("the body is not in the Prometheus text format: %v", err)
	}
	family, ok := families[name]
	if !ok {
		return value{}, valueErrorf("metric %q not found in the body", name)
	}
	for _, m := range family.GetMetric() {
		match := true
		for k, want := range matchers {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == want {
					found = true
					break
				}
			}
			if !found {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		var f *float64
		switch {
		case m.GetUntyped() != nil && m.GetUntyped().Value != nil:
			f = m.GetUntyped().Value
		case m.GetCounter() != nil && m.GetCounter().Value != nil:
			f = m.GetCounter().Value
		case m.GetGauge() != nil && m.GetGauge().Value != nil:
			f = m.GetGauge().Value
		default:
			continue
		}
		v, err := valueFromFloat(*f)
		if err != nil {
			return value{}, valueErrorf("valueLocation %q: %v", location, err)
		}
		return v, nil
	}
	return value{}, valueErrorf("no sample matches valueLocation %q", location)
}

// parseSelector reads name{label="value",...}; only equality matchers.
func parseSelector(s string) (string, map[string]string, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexByte(s, '{')
	if i < 0 {
		if s == "" {
			return "", nil, fmt.Errorf("empty metric name")
		}
		return s, nil, nil
	}
	name := strings.TrimSpace(s[:i])
	if name == "" || !strings.HasSuffix(s, "}") {
		return "", nil, fmt.Errorf("expected name{label=\"value\",...}")
	}
	rest := s[i+1 : len(s)-1]
	matchers := map[string]string{}
	for strings.TrimSpace(rest) != "" {
		rest = strings.TrimLeft(rest, " ,")
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return "", nil, fmt.Errorf("expected label=\"value\"")
		}
		label := strings.TrimSpace(rest[:eq])
		rest = strings.TrimSpace(rest[eq+1:])
		if strings.HasPrefix(rest, "~") || strings.HasSuffix(label, "!") {
			return "", nil, fmt.Errorf("only = matchers are supported")
		}
		quoted, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return "", nil, fmt.Errorf("label %s: value must be quoted", label)
		}
		v, _ := strconv.Unquote(quoted)
		matchers[label] = v
		rest = strings.TrimSpace(rest[len(quoted):])
		if rest != "" && rest[0] != ',' {
			return "", nil, fmt.Errorf("expected , between matchers")
		}
	}
	return name, matchers, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
