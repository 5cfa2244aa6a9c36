package scalers

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// source is where a parameter's value may come from, as KEDA's typed
// config orders them.
type source uint8

const (
	fromMetadata source = iota + 1 // literal trigger metadata
	fromEnv                        // <k>FromEnv, resolved by the caller into Metadata[k]
	fromAuth                       // TriggerAuthentication parameters
	fromDefault                    // the parameter's default
)

// param declares one setting: its key (and the other keys KEDA accepts for
// it), where it is looked up and in which order, and how it is checked.
type param struct {
	name     string
	aliases  []string
	order    []source
	required bool
	def      string
	secret   bool
	enum     []string
}

// meta declares a setting read from the trigger metadata only.
func meta(name string) param { return param{name: name, order: []source{fromMetadata}} }

// auth declares a setting read from the authentication parameters only.
func auth(name string) param { return param{name: name, order: []source{fromAuth}} }

// from declares a setting read from the given sources, in order.
func from(name string, order ...source) param { return param{name: name, order: order} }

func (p param) req() param                 { p.required = true; return p }
func (p param) withDefault(d string) param { p.def = d; return p }
func (p param) alias(a ...string) param    { p.aliases = append(slices.Clone(p.aliases), a...); return p }
func (p param) sensitive() param           { p.secret = true; return p }
func (p param) oneOf(v ...string) param    { p.enum = v; return p }

func (p param) keys() []string { return append([]string{p.name}, p.aliases...) }

// reader reads a trigger's settings, records every problem as an *Error
// and every warning, and remembers which metadata keys it knows so the
// others can be reported.
type reader struct {
	t        Trigger
	known    map[string]bool
	anyKey   bool // every metadata key is meaningful (external scalers)
	errs     []error
	warnings []string
}

func newReader(t Trigger) *reader {
	return &reader{t: t, known: map[string]bool{}}
}

// fail records an error about key. The message must not contain a value
// unless shown through quote.
func (r *reader) fail(key, format string, args ...any) {
	r.errs = append(r.errs, &Error{Index: r.t.Index, Type: r.t.Type, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (r *reader) warn(format string, args ...any) {
	r.warnings = append(r.warnings, fmt.Sprintf("trigger %d (%s): ", r.t.Index, r.t.Type)+fmt.Sprintf(format, args...))
}

// quote returns " <value quoted>" to append to a message about a bad value,
// or "" when the value must not be shown: it is secret or came from the
// authentication parameters.
func quote(p param, src source, val string) string {
	if p.secret || src == fromAuth {
		return ""
	}
	if len(val) > 64 {
		val = val[:64] + "..."
	}
	return fmt.Sprintf(" %q", val)
}

// keyDesc names where a value came from, for messages.
func keyDesc(key string, src source) string {
	if src == fromAuth {
		return key + " (from the TriggerAuthentication)"
	}
	return key
}

func has(order []source, s source) bool { return slices.Contains(order, s) }

// declare marks p's metadata keys as known, and warns about literal
// metadata values KEDA would ignore.
func (r *reader) declare(p param) {
	for _, k := range p.keys() {
		if has(p.order, fromMetadata) {
			r.known[k] = true
		}
		if has(p.order, fromEnv) {
			r.known[k+"FromEnv"] = true
			if !has(p.order, fromMetadata) && !r.known[k] {
				r.known[k] = true
				if strings.TrimSpace(r.t.Metadata[k]) != "" && strings.TrimSpace(r.t.Metadata[k+"FromEnv"]) == "" {
					r.warn("metadata key %q is ignored, as KEDA ignores it: set %q in a TriggerAuthentication or use %q", k, k, k+"FromEnv")
				}
			}
		}
	}
}

// lookup finds p's value: the first non-blank value (trimmed) in p's
// source order, then p's default.
func (r *reader) lookup(p param) (val, key string, src source, ok bool) {
	r.declare(p)
	for _, s := range p.order {
		for _, k := range p.keys() {
			var v string
			switch s {
			case fromMetadata:
				v = r.t.Metadata[k]
			case fromEnv:
				if strings.TrimSpace(r.t.Metadata[k+"FromEnv"]) != "" {
					v = r.t.Metadata[k]
				}
			case fromAuth:
				v = r.t.AuthParams[k]
			}
			if v = strings.TrimSpace(v); v != "" {
				return v, k, s, true
			}
		}
	}
	if p.def != "" {
		return p.def, p.name, fromDefault, true
	}
	return "", p.name, 0, false
}

// present reports whether p has a value, without recording anything but
// its keys.
func (r *reader) present(p param) bool {
	p.def = ""
	_, _, _, ok := r.lookup(p)
	return ok
}

func (r *reader) missing(p param) {
	name := p.name
	if len(p.aliases) > 0 {
		name = p.name + " (or " + strings.Join(p.aliases, ", ") + ")"
	}
	r.fail(p.name, "%s is required", name)
}

// get returns p's raw value, checking presence and enum.
func (r *reader) get(p param) (val, key string, src source, ok bool) {
	val, key, src, ok = r.lookup(p)
	if !ok {
		if p.required {
			r.missing(p)
		}
		return "", key, src, false
	}
	if p.enum != nil && !slices.Contains(p.enum, val) {
		r.fail(key, "%s%s must be one of %s", keyDesc(key, src), quote(p, src, val), strings.Join(p.enum, ", "))
		return "", key, src, false
	}
	return val, key, src, true
}

// str returns p's value, or "".
func (r *reader) str(p param) string {
	v, _, _, _ := r.get(p)
	return v
}

// secret returns p's value as a Secret.
func (r *reader) secret(p param) Secret {
	return Secret(r.str(p.sensitive()))
}

// float parses p as KEDA's typed config does: a JSON number.
func (r *reader) float(p param) float64 {
	v, key, src, ok := r.get(p)
	if !ok {
		return 0
	}
	f, err := parseJSONNumber[float64](v)
	if err != nil {
		r.fail(key, "%s%s is not a number", keyDesc(key, src), quote(p, src, v))
		return 0
	}
	return f
}

// int parses p as a JSON integer.
func (r *reader) int(p param) int64 {
	v, key, src, ok := r.get(p)
	if !ok {
		return 0
	}
	n, err := parseJSONNumber[int64](v)
	if err != nil {
		r.fail(key, "%s%s is not an integer", keyDesc(key, src), quote(p, src, v))
		return 0
	}
	return n
}

// boolean parses p as a JSON boolean ("true" or "false"), as KEDA's typed
// config does.
func (r *reader) boolean(p param) bool {
	v, key, src, ok := r.get(p)
	if !ok {
		return false
	}
	switch v {
	case "true":
		return true
	case "false":
		return false
	}
	r.fail(key, "%s%s must be true or false", keyDesc(key, src), quote(p, src, v))
	return false
}

// list returns p's comma-separated elements, trimmed; each is checked
// against p's enum.
func (r *reader) list(p param) []string {
	enum := p.enum
	p.enum = nil
	v, key, src, ok := r.get(p)
	if !ok {
		return nil
	}
	var out []string
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if enum != nil && !slices.Contains(enum, e) {
			r.fail(key, "%s%s must be one of %s", keyDesc(key, src), quote(p, src, e), strings.Join(enum, ", "))
			return nil
		}
		out = append(out, e)
	}
	return out
}

// keyValues parses p as comma-separated key=value pairs, as KEDA's typed
// config parses map settings.
func (r *reader) keyValues(p param) map[string]string {
	v, key, src, ok := r.get(p)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, e := range strings.Split(v, ",") {
		kv := strings.Split(strings.TrimSpace(e), "=")
		if len(kv) != 2 {
			r.fail(key, "%s must be a comma-separated list of key=value pairs", keyDesc(key, src))
			return nil
		}
		out[strings.TrimSpace(kv[0])] = strings.TrimSpace(kv[1])
	}
	return out
}

// warnUnknownKeys warns about metadata keys no parameter claimed.
func (r *reader) warnUnknownKeys() {
	if r.anyKey {
		return
	}
	var unknown []string
	for k := range r.t.Metadata {
		if !r.known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		r.warn("unknown metadata key %q is ignored", k)
	}
}

// parseJSONNumber parses s as encoding/json does into T, which is how
// KEDA's typed config reads numbers: "1e3" is a float but not an integer,
// "+1", ".5" and "NaN" are neither. JSON null is refused.
func parseJSONNumber[T float64 | int64 | int32](s string) (T, error) {
	var v T
	if s == "null" {
		return v, fmt.Errorf("null")
	}
	err := json.Unmarshal([]byte(s), &v)
	return v, err
}

// Secret is a setting that must not be shown: it prints as "<redacted>"
// with the fmt verbs. Convert it with string() to use it.
type Secret string

// String returns "<redacted>" for a set secret and "" for an empty one.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<redacted>"
}

// GoString is String, so %#v does not reveal the secret either.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }
