package validate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// Trigger types with rules of their own.
const (
	typeCPU    = "cpu"
	typeMemory = "memory"
	typeCron   = "cron"
)

func isResourceTrigger(t string) bool { return t == typeCPU || t == typeMemory }

// unresolved stands in for a value the webhook cannot see: a parameter a
// TriggerAuthentication supplies (read from Secrets, which the webhook
// does not read) or a metadata <key>FromEnv resolved from the target's
// environment. It is a short number, which the parsers accept for text,
// integers and floats alike; an error about a key that holds it is
// dropped, because the real value may well be right.
const unresolved = "1"

// fromEnvSuffix marks a metadata key whose value names an environment
// variable of the scale target's container.
const fromEnvSuffix = "FromEnv"

// checkTriggerList checks the rules on the list of triggers that need no
// parsing: at least one, unique names, useCachedMetrics where supported.
func checkTriggerList(triggers []v1alpha1.ScaleTrigger, r *report) {
	if len(triggers) == 0 {
		r.deny("spec.triggers", "at least one trigger is required")
		return
	}
	seen := map[string]int{}
	for i, t := range triggers {
		field := fmt.Sprintf("spec.triggers[%d]", i)
		if t.Name != "" {
			if j, dup := seen[t.Name]; dup {
				r.deny(field+".name", "trigger name %q is already used by spec.triggers[%d]; trigger names must be unique", t.Name, j)
			} else {
				seen[t.Name] = i
			}
		}
		if t.UseCachedMetrics && (isResourceTrigger(t.Type) || t.Type == typeCron) {
			r.deny(field+".useCachedMetrics", "useCachedMetrics is not supported for %s triggers; remove it", t.Type)
		}
	}
}

// owner is the object whose triggers are parsed.
type owner struct {
	namespace, name string
	// asMetricSource: the triggers only feed a scaling modifiers formula.
	asMetricSource bool
}

// authInfo is what the webhook knows of an authentication object: the
// names of the parameters it supplies (never their values), or why it
// cannot know them.
type authInfo struct {
	params []string
	// unknown, when set, says why the parameters cannot be known (the
	// object does not exist, or supplies parameters the webhook cannot
	// list); the trigger's metadata is then checked leniently.
	unknown string
}

// authCache memoises the authentication objects read during one
// admission, so triggers sharing one are read once.
type authCache map[string]authInfo

// checkTriggerMetadata parses every trigger with pkg/scalers, the parsers
// the operator uses. An unknown type or bad metadata is a problem with the
// parser's message; the parser's warnings become warnings. What the
// webhook cannot see (parameters from a TriggerAuthentication, values
// from the target's environment) is assumed present and valid; a missing
// authentication object turns the parser's errors into warnings. It
// returns an error only when an authentication object cannot be read.
func checkTriggerMetadata(ctx context.Context, rd Reader, o owner, triggers []v1alpha1.ScaleTrigger, r *report) error {
	auths := authCache{}
	for i, t := range triggers {
		if err := checkTrigger(ctx, rd, o, i, t, auths, r); err != nil {
			return err
		}
	}
	return nil
}

func checkTrigger(ctx context.Context, rd Reader, o owner, i int, t v1alpha1.ScaleTrigger, auths authCache, r *report) error {
	field := fmt.Sprintf("spec.triggers[%d]", i)
	md := maps.Clone(t.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	// placeholders are the keys holding unresolved; fromEnv those added
	// for a <key>FromEnv.
	placeholders := map[string]bool{}
	var fromEnv []string
	for k, v := range t.Metadata {
		base, ok := strings.CutSuffix(k, fromEnvSuffix)
		if !ok || base == "" || strings.TrimSpace(v) == "" {
			continue
		}
		if _, literal := t.Metadata[base]; literal {
			continue // a literal value wins over the environment, as in KEDA
		}
		md[base] = unresolved
		placeholders[base] = true
		fromEnv = append(fromEnv, base)
	}

	var authParams map[string]string
	lenient := ""
	if ref := t.AuthenticationRef; ref != nil {
		info, ok, err := resolveAuth(ctx, rd, o.namespace, ref, field, auths, r)
		if err != nil {
			return err
		}
		if ok {
			lenient = info.unknown
			authParams = make(map[string]string, len(info.params))
			for _, p := range info.params {
				authParams[p] = unresolved
				placeholders[p] = true
			}
		}
	}

	_, warnings, err := scalers.Parse(scalers.Trigger{
		Index:            i,
		Type:             t.Type,
		Name:             t.Name,
		Metadata:         md,
		AuthParams:       authParams,
		MetricType:       t.MetricType,
		Namespace:        o.namespace,
		ScaledObjectName: o.name,
		AsMetricSource:   o.asMetricSource,
	})
	for _, w := range warnings {
		// The placeholder of an unknown <key>FromEnv looks like an
		// unknown key of its own; the <key>FromEnv is reported already.
		if slices.ContainsFunc(fromEnv, func(k string) bool {
			return w == fmt.Sprintf("trigger %d (%s): unknown metadata key %q is ignored", i, t.Type, k)
		}) {
			continue
		}
		r.warn("", "%s", w)
	}
	for _, e := range flatten(err) {
		var se *scalers.Error
		if !errors.As(e, &se) {
			r.deny(field, "%v", e)
			continue
		}
		at := field + ".metadata"
		switch {
		case errors.Is(se, scalers.ErrUnsupportedType):
			r.deny(field+".type", "%s; ebb supports %s", se.Error(), strings.Join(scalers.Types(), ", "))
			continue
		case se.Key == "metricType":
			r.deny(field+".metricType", "%s", se.Error())
			continue
		case placeholders[se.Key]:
			continue // about a value the webhook cannot see
		case lenient != "":
			r.warn(at, "%s (%s, so this is not checked further)", se.Error(), lenient)
			continue
		}
		r.deny(at, "%s", se.Error())
	}
	return nil
}

// resolveAuth reads the authentication object of ref, once per
// admission. ok is false when ref itself is invalid (a problem is
// recorded).
func resolveAuth(ctx context.Context, rd Reader, namespace string, ref *v1alpha1.AuthenticationRef, field string, auths authCache, r *report) (info authInfo, ok bool, err error) {
	if ref.Name == "" {
		r.deny(field+".authenticationRef.name", "the name of the TriggerAuthentication or ClusterTriggerAuthentication is required")
		return authInfo{}, false, nil
	}
	key := ref.Kind + "/" + ref.Name
	if info, ok := auths[key]; ok {
		return info, true, nil
	}
	var spec *v1alpha1.TriggerAuthenticationSpec
	var desc string
	switch ref.Kind {
	case "", v1alpha1.TriggerAuthenticationKind:
		desc = fmt.Sprintf("TriggerAuthentication %s/%s", namespace, ref.Name)
		ta, err := rd.TriggerAuthentication(ctx, namespace, ref.Name)
		if err == nil {
			spec = &ta.Spec
		} else if !apierrors.IsNotFound(err) {
			return authInfo{}, false, err
		}
	case v1alpha1.ClusterTriggerAuthenticationKind:
		desc = "ClusterTriggerAuthentication " + ref.Name
		cta, err := rd.ClusterTriggerAuthentication(ctx, ref.Name)
		if err == nil {
			spec = &cta.Spec
		} else if !apierrors.IsNotFound(err) {
			return authInfo{}, false, err
		}
	default:
		r.deny(field+".authenticationRef.kind", "kind %q is not an authentication kind: use %s (the default) or %s",
			ref.Kind, v1alpha1.TriggerAuthenticationKind, v1alpha1.ClusterTriggerAuthenticationKind)
		return authInfo{}, false, nil
	}
	if spec == nil {
		r.warn(field+".authenticationRef", "%s does not exist (yet); the trigger cannot authenticate until it does", desc)
		info = authInfo{unknown: desc + " does not exist"}
	} else {
		info.params, info.unknown = suppliedParams(spec)
		if info.unknown != "" {
			info.unknown = desc + " " + info.unknown
		}
	}
	auths[key] = info
	return info, true, nil
}

// suppliedParams returns the names of the parameters spec supplies, and,
// when it also supplies parameters that cannot be listed from the spec,
// why.
func suppliedParams(spec *v1alpha1.TriggerAuthenticationSpec) (params []string, unknown string) {
	for _, s := range spec.SecretTargetRef {
		params = append(params, s.Parameter)
	}
	for _, c := range spec.ConfigMapTargetRef {
		params = append(params, c.Parameter)
	}
	for _, e := range spec.Env {
		params = append(params, e.Parameter)
	}
	if v := spec.HashiCorpVault; v != nil {
		for _, s := range v.Secrets {
			params = append(params, s.Parameter)
		}
	}
	if v := spec.AzureKeyVault; v != nil {
		for _, s := range v.Secrets {
			params = append(params, s.Parameter)
		}
	}
	if v := spec.GCPSecretManager; v != nil {
		for _, s := range v.Secrets {
			params = append(params, s.Parameter)
		}
	}
	if v := spec.AwsSecretManager; v != nil {
		for _, s := range v.Secrets {
			params = append(params, s.Parameter)
		}
	}
	for _, b := range spec.BoundServiceAccountToken {
		params = append(params, b.Parameter)
	}
	var opaque []string
	if spec.FilePath != "" {
		opaque = append(opaque, "filePath")
	}
	if spec.OAuth2 != nil {
		opaque = append(opaque, "oauth2")
	}
	if spec.AzureServicePrincipal != nil {
		opaque = append(opaque, "azureServicePrincipal")
	}
	if len(opaque) > 0 {
		unknown = "supplies parameters through " + strings.Join(opaque, " and ") + " that the webhook cannot list"
	}
	return params, unknown
}

// flatten returns the errors joined in err (errors.Join), or err alone.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
