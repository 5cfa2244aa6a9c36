package triggers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned"
	kedalisters "github.com/ebb-autoscaler/ebb/pkg/client/listers/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// ErrAuthSourceNotSupported is wrapped by the error of a trigger whose
// TriggerAuthentication or ClusterTriggerAuthentication uses a source ebb
// cannot read yet (podIdentity other than none, hashiCorpVault, and so on).
var ErrAuthSourceNotSupported = errors.New("not supported yet")

// ResolveTimeout bounds the API reads of one Resolve call.
const ResolveTimeout = 10 * time.Second

// ResolveError is the error of a trigger whose authentication or
// environment cannot be resolved: an authentication object, Secret,
// ConfigMap, key or filePath file that is missing or unusable, a source
// ebb cannot read, the scale target's environment. Its message names the
// objects and keys at fault, never a value read.
type ResolveError struct {
	Err error
	// Retry is true when no change the Cache watches would fix it: the API
	// server could not be read, or the scale target's environment (its
	// Deployment or StatefulSet, which the Cache does not watch) lacks
	// what the trigger asks for. Retry with backoff, and Forget the
	// triggers so that the retry resolves them again. When false, the
	// object at fault is watched (see Cache.Changed): its change
	// invalidates the triggers, and their owner is told.
	Retry bool
}

func (e *ResolveError) Error() string { return e.Err.Error() }
func (e *ResolveError) Unwrap() error { return e.Err }

// retryError marks an error that no watched change fixes (see
// ResolveError.Retry).
type retryError struct{ err error }

func (e retryError) Error() string { return e.err.Error() }
func (e retryError) Unwrap() error { return e.err }

// retry marks err as needing a retry; nil stays nil.
func retry(err error) error {
	if err == nil {
		return nil
	}
	return retryError{err}
}

// fromEnvSuffix marks a metadata key whose value names an environment
// variable of the scale target's container.
const fromEnvSuffix = "FromEnv"

// AuthResolver resolves triggers with their TriggerAuthentication (or
// ClusterTriggerAuthentication) and the target's environment: a
// ScaledObject's scale target, or a ScaledJob's Job template. It reads
// Secrets and ConfigMaps with direct GETs when a trigger's scalers are
// built (once per ScaledObject or ScaledJob generation, and again when
// something it read changes: see Cache.Changed), never per poll, so no
// cache of Secret data is kept. Authentication objects come from listers
// when WithAuthListers gives them, else from GETs too.
//
// Only what a trigger uses is read: the target's pod template only when a
// <key>FromEnv or an env source needs it, and of its Secrets and ConfigMaps
// only those behind the variables asked for. Values read are never logged
// nor put in errors.
type AuthResolver struct {
	kube                 kubernetes.Interface
	keda                 versioned.Interface
	clusterAuthNamespace string
	taLister             kedalisters.TriggerAuthenticationLister
	ctaLister            kedalisters.ClusterTriggerAuthenticationLister
	listersSynced        func() bool
	files                *fileRoot
}

// AuthOption configures an AuthResolver.
type AuthOption func(*AuthResolver)

// WithAuthListers reads TriggerAuthentications and
// ClusterTriggerAuthentications from informer listers instead of the API
// server, once synced reports true (until then, with GETs). A lister that
// lags is harmless: the Cache watches the same informers, and a
// TriggerAuthentication that appears or changes after it was read
// invalidates the triggers that read it.
func WithAuthListers(ta kedalisters.TriggerAuthenticationLister, cta kedalisters.ClusterTriggerAuthenticationLister, synced func() bool) AuthOption {
	return func(r *AuthResolver) { r.taLister, r.ctaLister, r.listersSynced = ta, cta, synced }
}

// useListers reports whether authentication objects are read from the
// listers.
func (r *AuthResolver) useListers() bool {
	return r.taLister != nil && r.ctaLister != nil && (r.listersSynced == nil || r.listersSynced())
}

// WithFilePathRoot sets the directory under which a
// ClusterTriggerAuthentication's filePath is read (KEDA's
// --filepath-auth-root-path). Without it (or with ""), filePath is
// refused.
func WithFilePathRoot(dir string) AuthOption {
	return func(r *AuthResolver) {
		if dir != "" {
			r.files = &fileRoot{dir: dir}
		}
	}
}

// NewAuthResolver returns an AuthResolver reading through kube and keda.
// clusterAuthNamespace is where the Secrets and ConfigMaps named by a
// ClusterTriggerAuthentication live (KEDA's "cluster object namespace");
// pass the operator's namespace.
func NewAuthResolver(kube kubernetes.Interface, keda versioned.Interface, clusterAuthNamespace string, opts ...AuthOption) *AuthResolver {
	r := &AuthResolver{kube: kube, keda: keda, clusterAuthNamespace: clusterAuthNamespace}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Resolve has the Resolver signature; use it with WithResolver(r.Resolve).
// Resolver carries no context (the Cache builds scalers outside any
// request), so Resolve bounds its reads with ResolveTimeout on a fresh
// context; callers that have a context use ResolveContext.
func (r *AuthResolver) Resolve(so *v1alpha1.ScaledObject, index int) (scalers.Trigger, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ResolveTimeout)
	defer cancel()
	return r.ResolveContext(ctx, so, index)
}

// ResolveContext builds the scalers.Trigger of trigger index of so, as
// DefaultResolver does, then:
//
//   - for each metadata key <key>FromEnv whose <key> is not set, stores
//     under <key> the value of the environment variable it names, read from
//     the scale target's container (spec.scaleTargetRef.envSourceContainerName,
//     else the first container); <key>FromEnv stays in the metadata;
//   - fills AuthParams from the trigger's authenticationRef: secretTargetRef
//     and configMapTargetRef read keys of Secrets and ConfigMaps (of the
//     ScaledObject's namespace for a TriggerAuthentication, of the cluster
//     authentication namespace for a ClusterTriggerAuthentication), env
//     reads environment variables of the target's containers.
//
// The environment comes from the pod template of a Deployment or a
// StatefulSet: a variable's value, or the key of a Secret or ConfigMap it
// refers to (valueFrom and envFrom). Any error names the objects and keys
// at fault, never a value read. so is not modified.
func (r *AuthResolver) ResolveContext(ctx context.Context, so *v1alpha1.ScaledObject, index int) (scalers.Trigger, error) {
	return r.resolveContext(ctx, so, index, nil)
}

// resolveTracked is Resolve, telling track what it reads.
func (r *AuthResolver) resolveTracked(so *v1alpha1.ScaledObject, index int, track trackFunc) (scalers.Trigger, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ResolveTimeout)
	defer cancel()
	return r.resolveContext(ctx, so, index, track)
}

func (r *AuthResolver) resolveContext(ctx context.Context, so *v1alpha1.ScaledObject, index int, track trackFunc) (scalers.Trigger, error) {
	t, err := DefaultResolver(so, index)
	if err != nil {
		return scalers.Trigger{}, err
	}
	rs := &resolution{r: r, ctx: ctx, track: track, namespace: so.Namespace, envContainer: envSourceContainer(so), scaleTarget: so.Spec.ScaleTargetRef}
	return rs.resolve(t, so.Spec.Triggers[index])
}

// ResolveJob is Resolve for a trigger of a ScaledJob; use it with
// WithJobResolver(r.ResolveJob).
func (r *AuthResolver) ResolveJob(sj *v1alpha1.ScaledJob, index int) (scalers.Trigger, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ResolveTimeout)
	defer cancel()
	return r.ResolveJobContext(ctx, sj, index)
}

// ResolveJobContext is ResolveContext for trigger index of a ScaledJob:
// the environment is that of the Job template (spec.jobTargetRef.template)
// container spec.envSourceContainerName, else its first container, read
// from the ScaledJob itself; Secrets and ConfigMaps the template refers to
// are read in the ScaledJob's namespace. sj is not modified.
func (r *AuthResolver) ResolveJobContext(ctx context.Context, sj *v1alpha1.ScaledJob, index int) (scalers.Trigger, error) {
	return r.resolveJobContext(ctx, sj, index, nil)
}

// resolveJobTracked is ResolveJob, telling track what it reads.
func (r *AuthResolver) resolveJobTracked(sj *v1alpha1.ScaledJob, index int, track trackFunc) (scalers.Trigger, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ResolveTimeout)
	defer cancel()
	return r.resolveJobContext(ctx, sj, index, track)
}

func (r *AuthResolver) resolveJobContext(ctx context.Context, sj *v1alpha1.ScaledJob, index int, track trackFunc) (scalers.Trigger, error) {
	t, err := DefaultJobResolver(sj, index)
	if err != nil {
		return scalers.Trigger{}, err
	}
	rs := &resolution{r: r, ctx: ctx, track: track, namespace: sj.Namespace, envContainer: sj.Spec.EnvSourceContainerName}
	if jt := sj.Spec.JobTargetRef; jt != nil {
		rs.target = &jt.Template
		rs.targetDesc = fmt.Sprintf("the Job template of ScaledJob %s/%s", sj.Namespace, sj.Name)
	} else {
		rs.targetErr = retry(errors.New("reading the environment needs spec.jobTargetRef"))
	}
	return rs.resolve(t, sj.Spec.Triggers[index])
}

// resolve completes t, trigger st of the object rs resolves for: its
// <key>FromEnv metadata and its authentication parameters. Errors are
// *ResolveError.
func (rs *resolution) resolve(t scalers.Trigger, st v1alpha1.ScaleTrigger) (scalers.Trigger, error) {
	md, err := rs.resolveFromEnv(t.Metadata)
	if err != nil {
		return scalers.Trigger{}, resolveError(err)
	}
	t.Metadata = md

	if st.AuthenticationRef != nil {
		params, err := rs.resolveAuth(st.AuthenticationRef)
		if err != nil {
			return scalers.Trigger{}, resolveError(err)
		}
		t.AuthParams = params
	}
	return t, nil
}

func resolveError(err error) *ResolveError {
	var r retryError
	return &ResolveError{Err: err, Retry: errors.As(err, &r)}
}

// reading tells rs.track that ref is about to be read; call the function
// it returns with the version read.
func (rs *resolution) reading(ref Ref) func(version string) {
	if rs.track == nil {
		return func(string) {}
	}
	return rs.track(ref)
}

// versionOf is the version a read of an object of kind records: its
// version (objectVersion), versionAbsent for NotFound, versionUnknown for
// another error.
func versionOf(kind RefKind, m metav1.Object, err error) string {
	switch {
	case apierrors.IsNotFound(err):
		return versionAbsent
	case err != nil:
		return versionUnknown
	}
	return objectVersion(kind, m)
}

// resolution is the state of one ResolveContext (or ResolveJobContext)
// call: objects read once and reused by every key and parameter of the
// trigger.
type resolution struct {
	r   *AuthResolver
	ctx context.Context
	// track is told of every Secret, ConfigMap, authentication object and
	// file read (nil: nobody listens).
	track trackFunc
	// namespace is the ScaledObject's or ScaledJob's: its
	// TriggerAuthentications and the Secrets and ConfigMaps its pod
	// template refers to live there.
	namespace string
	// envContainer is the container whose environment is read by default;
	// "" means the first.
	envContainer string
	// scaleTarget is a ScaledObject's target, whose pod template is read on
	// first need; nil for a ScaledJob, whose template is set from the start.
	scaleTarget *v1alpha1.ScaleTarget

	target     *corev1.PodTemplateSpec
	targetDesc string // "Deployment ns/name", for errors
	// targetErr, when set, is why there is no pod template to read.
	targetErr  error
	secrets    map[objectKey]*corev1.Secret
	configMaps map[objectKey]*corev1.ConfigMap
}

type objectKey struct{ namespace, name string }

func (k objectKey) String() string { return k.namespace + "/" + k.name }

// resolveFromEnv returns a copy of md with the <key>FromEnv values
// resolved into <key>. md itself (the informer's object) is not modified.
func (rs *resolution) resolveFromEnv(md map[string]string) (map[string]string, error) {
	var keys []string
	for k, v := range md {
		key, ok := strings.CutSuffix(k, fromEnvSuffix)
		if !ok || key == "" || v == "" {
			// An empty variable name resolves to nothing, as in KEDA; the
			// scaler's parser reports the missing key if it needs it.
			continue
		}
		if _, set := md[key]; set {
			// A literal value wins over the environment.
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return md, nil
	}
	sort.Strings(keys)

	out := make(map[string]string, len(md)+len(keys))
	for k, v := range md {
		out[k] = v
	}
	container := rs.envContainer
	for _, k := range keys {
		v, err := rs.env(container, md[k])
		if err != nil {
			return nil, fmt.Errorf("metadata %s: %w", k, err)
		}
		out[strings.TrimSuffix(k, fromEnvSuffix)] = v
	}
	return out, nil
}

// resolveAuth reads the parameters of the authentication object ref.
func (rs *resolution) resolveAuth(ref *v1alpha1.AuthenticationRef) (map[string]string, error) {
	if ref.Name == "" {
		return nil, errors.New("authenticationRef has no name")
	}
	var (
		spec *v1alpha1.TriggerAuthenticationSpec
		desc string
		// objNS is where the spec's Secrets and ConfigMaps live.
		objNS   string
		cluster bool
	)
	switch ref.Kind {
	case "", v1alpha1.TriggerAuthenticationKind:
		desc = fmt.Sprintf("TriggerAuthentication %s/%s", rs.namespace, ref.Name)
		ta, err := rs.triggerAuthentication(ref.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", desc, err)
		}
		spec, objNS = &ta.Spec, rs.namespace
	case v1alpha1.ClusterTriggerAuthenticationKind:
		desc = "ClusterTriggerAuthentication " + ref.Name
		cta, err := rs.clusterTriggerAuthentication(ref.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", desc, err)
		}
		spec, objNS, cluster = &cta.Spec, rs.r.clusterAuthNamespace, true
		if objNS == "" && (len(spec.SecretTargetRef) > 0 || len(spec.ConfigMapTargetRef) > 0) {
			return nil, fmt.Errorf("%s: no namespace is configured for the Secrets and ConfigMaps of ClusterTriggerAuthentications", desc)
		}
	default:
		return nil, fmt.Errorf("authenticationRef %s: unknown kind %q (want %s or %s)", ref.Name, ref.Kind,
			v1alpha1.TriggerAuthenticationKind, v1alpha1.ClusterTriggerAuthenticationKind)
	}

	if unsupported := unsupportedSources(spec); len(unsupported) > 0 {
		return nil, fmt.Errorf("%s: %s: %w", desc, strings.Join(unsupported, ", "), ErrAuthSourceNotSupported)
	}

	// filePath: the file's parameters, and nothing else, as KEDA reads it.
	// Only a ClusterTriggerAuthentication's is read; a
	// TriggerAuthentication's is ignored (the webhook warns about it), so
	// a namespace cannot read the operator's credential files.
	if cluster && spec.FilePath != "" {
		params, err := rs.fileParams(spec.FilePath)
		if err != nil {
			return nil, fmt.Errorf("%s: filePath %q: %w", desc, spec.FilePath, err)
		}
		return params, nil
	}

	params := map[string]string{}
	for _, ref := range spec.SecretTargetRef {
		k := objectKey{objNS, ref.Name}
		v, err := rs.secretKey(k, ref.Key, false)
		if err != nil {
			return nil, fmt.Errorf("%s: secretTargetRef parameter %q (key %q of Secret %s): %w", desc, ref.Parameter, ref.Key, k, err)
		}
		params[ref.Parameter] = *v
	}
	for _, ref := range spec.ConfigMapTargetRef {
		k := objectKey{objNS, ref.Name}
		v, err := rs.configMapKey(k, ref.Key, false)
		if err != nil {
			return nil, fmt.Errorf("%s: configMapTargetRef parameter %q (key %q of ConfigMap %s): %w", desc, ref.Parameter, ref.Key, k, err)
		}
		params[ref.Parameter] = *v
	}
	for _, e := range spec.Env {
		container := e.ContainerName
		if container == "" {
			container = rs.envContainer
		}
		v, err := rs.env(container, e.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: env parameter %q: %w", desc, e.Parameter, err)
		}
		params[e.Parameter] = v
	}
	return params, nil
}

// triggerAuthentication reads TriggerAuthentication name of rs's
// namespace, from the lister when there is one.
func (rs *resolution) triggerAuthentication(name string) (*v1alpha1.TriggerAuthentication, error) {
	done := rs.reading(Ref{Kind: RefTriggerAuthentication, Namespace: rs.namespace, Name: name})
	var ta *v1alpha1.TriggerAuthentication
	var err error
	if rs.r.useListers() {
		ta, err = rs.r.taLister.TriggerAuthentications(rs.namespace).Get(name)
	} else {
		ta, err = rs.r.keda.KedaV1alpha1().TriggerAuthentications(rs.namespace).Get(rs.ctx, name, metav1.GetOptions{})
	}
	done(versionOf(RefTriggerAuthentication, ta, err))
	return ta, apiError(err)
}

// clusterTriggerAuthentication reads ClusterTriggerAuthentication name,
// from the lister when there is one.
func (rs *resolution) clusterTriggerAuthentication(name string) (*v1alpha1.ClusterTriggerAuthentication, error) {
	done := rs.reading(Ref{Kind: RefClusterTriggerAuthentication, Name: name})
	var cta *v1alpha1.ClusterTriggerAuthentication
	var err error
	if rs.r.useListers() {
		cta, err = rs.r.ctaLister.Get(name)
	} else {
		cta, err = rs.r.keda.KedaV1alpha1().ClusterTriggerAuthentications().Get(rs.ctx, name, metav1.GetOptions{})
	}
	done(versionOf(RefClusterTriggerAuthentication, cta, err))
	return cta, apiError(err)
}

// apiError marks an API error as needing a retry unless it is NotFound,
// which a watch undoes (the object's creation invalidates the triggers).
func apiError(err error) error {
	if err == nil || apierrors.IsNotFound(err) {
		return err
	}
	return retry(err)
}

// unsupportedSources names the sources of spec ebb cannot read yet.
func unsupportedSources(spec *v1alpha1.TriggerAuthenticationSpec) []string {
	var out []string
	if p := spec.PodIdentity; p != nil && p.Provider != "" && p.Provider != v1alpha1.PodIdentityProviderNone {
		out = append(out, fmt.Sprintf("podIdentity provider %q", p.Provider))
	}
	if spec.HashiCorpVault != nil {
		out = append(out, "hashiCorpVault")
	}
	if spec.AzureKeyVault != nil {
		out = append(out, "azureKeyVault")
	}
	if spec.GCPSecretManager != nil {
		out = append(out, "gcpSecretManager")
	}
	if spec.AwsSecretManager != nil {
		out = append(out, "awsSecretManager")
	}
	if len(spec.BoundServiceAccountToken) > 0 {
		out = append(out, "boundServiceAccountToken")
	}
	if spec.OAuth2 != nil {
		out = append(out, "oauth2")
	}
	if spec.AzureServicePrincipal != nil {
		out = append(out, "azureServicePrincipal")
	}
	return out
}

// env returns the value of the environment variable name of container
// (the first container when empty) of the scale target's pod template.
// Precedence is the kubelet's: env over envFrom, a later entry over an
// earlier one; an optional reference to a missing Secret, ConfigMap or key
// sets nothing.
func (rs *resolution) env(container, name string) (string, error) {
	c, err := rs.container(container)
	if err != nil {
		return "", err
	}
	where := fmt.Sprintf("container %s of %s", c.Name, rs.targetDesc)
	ns := rs.namespace

	for i := len(c.Env) - 1; i >= 0; i-- {
		e := c.Env[i]
		if e.Name != name {
			continue
		}
		if e.ValueFrom == nil {
			return e.Value, nil
		}
		var v *string
		switch vf := e.ValueFrom; {
		case vf.SecretKeyRef != nil:
			v, err = rs.secretKey(objectKey{ns, vf.SecretKeyRef.Name}, vf.SecretKeyRef.Key, ptrTrue(vf.SecretKeyRef.Optional))
		case vf.ConfigMapKeyRef != nil:
			v, err = rs.configMapKey(objectKey{ns, vf.ConfigMapKeyRef.Name}, vf.ConfigMapKeyRef.Key, ptrTrue(vf.ConfigMapKeyRef.Optional))
		default:
			return "", retry(fmt.Errorf("environment variable %s of %s: only value, secretKeyRef and configMapKeyRef are supported", name, where))
		}
		if err != nil {
			return "", fmt.Errorf("environment variable %s of %s: %w", name, where, err)
		}
		if v != nil {
			return *v, nil
		}
	}

	for i := len(c.EnvFrom) - 1; i >= 0; i-- {
		ef := c.EnvFrom[i]
		key, ok := strings.CutPrefix(name, ef.Prefix)
		if !ok || key == "" {
			continue
		}
		var v *string
		switch {
		case ef.SecretRef != nil:
			// A missing key is not an error here: the source need not
			// hold every variable.
			v, err = rs.secretKey(objectKey{ns, ef.SecretRef.Name}, key, true)
			if err == nil && v == nil && !ptrTrue(ef.SecretRef.Optional) {
				err = rs.mustExistSecret(objectKey{ns, ef.SecretRef.Name})
			}
		case ef.ConfigMapRef != nil:
			v, err = rs.configMapKey(objectKey{ns, ef.ConfigMapRef.Name}, key, true)
			if err == nil && v == nil && !ptrTrue(ef.ConfigMapRef.Optional) {
				err = rs.mustExistConfigMap(objectKey{ns, ef.ConfigMapRef.Name})
			}
		default:
			continue
		}
		if err != nil {
			return "", fmt.Errorf("environment variable %s of %s: envFrom: %w", name, where, err)
		}
		if v != nil {
			return *v, nil
		}
	}
	return "", retry(fmt.Errorf("environment variable %s is not set in %s", name, where))
}

// container returns the named container of the scale target's pod
// template, or its first container when name is empty.
func (rs *resolution) container(name string) (*corev1.Container, error) {
	if err := rs.loadTarget(); err != nil {
		return nil, err
	}
	cs := rs.target.Spec.Containers
	if name == "" {
		if len(cs) == 0 {
			return nil, retry(fmt.Errorf("%s has no containers", rs.targetDesc))
		}
		return &cs[0], nil
	}
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i], nil
		}
	}
	return nil, retry(fmt.Errorf("%s has no container %q", rs.targetDesc, name))
}

// loadTarget reads the pod template of the scale target, once.
func (rs *resolution) loadTarget() error {
	if rs.target != nil {
		return nil
	}
	if rs.targetErr != nil {
		return rs.targetErr
	}
	ref := rs.scaleTarget
	if ref == nil || ref.Name == "" {
		return retry(errors.New("reading the environment needs spec.scaleTargetRef"))
	}
	kind := ref.Kind
	if kind == "" {
		kind = "Deployment"
	}
	if (ref.APIVersion != "" && ref.APIVersion != appsv1.SchemeGroupVersion.String()) ||
		(kind != "Deployment" && kind != "StatefulSet") {
		return retry(fmt.Errorf("reading the environment (env, <key>%s) needs a Deployment or StatefulSet target, not %s %s",
			fromEnvSuffix, strings.TrimPrefix(ref.APIVersion+" "+kind, " "), ref.Name))
	}
	ns := rs.namespace
	rs.targetDesc = fmt.Sprintf("%s %s/%s", kind, ns, ref.Name)
	switch kind {
	case "Deployment":
		d, err := rs.r.kube.AppsV1().Deployments(ns).Get(rs.ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return retry(fmt.Errorf("%s: %w", rs.targetDesc, err))
		}
		rs.target = &d.Spec.Template
	case "StatefulSet":
		s, err := rs.r.kube.AppsV1().StatefulSets(ns).Get(rs.ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return retry(fmt.Errorf("%s: %w", rs.targetDesc, err))
		}
		rs.target = &s.Spec.Template
	}
	return nil
}

// secret returns the Secret k, read once; nil without error when it does
// not exist and optional is true.
func (rs *resolution) secret(k objectKey, optional bool) (*corev1.Secret, error) {
	if s, ok := rs.secrets[k]; ok {
		if s == nil && !optional {
			return nil, fmt.Errorf("no Secret %s", k)
		}
		return s, nil
	}
	done := rs.reading(Ref{Kind: RefSecret, Namespace: k.namespace, Name: k.name})
	s, err := rs.r.kube.CoreV1().Secrets(k.namespace).Get(rs.ctx, k.name, metav1.GetOptions{})
	done(versionOf(RefSecret, s, err))
	switch {
	case apierrors.IsNotFound(err):
		s = nil
	case err != nil:
		return nil, retry(fmt.Errorf("getting Secret %s: %w", k, err))
	}
	if rs.secrets == nil {
		rs.secrets = map[objectKey]*corev1.Secret{}
	}
	rs.secrets[k] = s
	if s == nil && !optional {
		return nil, fmt.Errorf("no Secret %s", k)
	}
	return s, nil
}

// secretKey returns key of Secret k; nil without error when the Secret or
// key is missing and optional is true.
func (rs *resolution) secretKey(k objectKey, key string, optional bool) (*string, error) {
	s, err := rs.secret(k, optional)
	if err != nil || s == nil {
		return nil, err
	}
	if b, ok := s.Data[key]; ok {
		v := string(b)
		return &v, nil
	}
	if v, ok := s.StringData[key]; ok {
		// Only objects that never went through an API server (fakes)
		// carry stringData; honour it all the same.
		return &v, nil
	}
	if optional {
		return nil, nil
	}
	return nil, fmt.Errorf("no key %q in Secret %s", key, k)
}

func (rs *resolution) mustExistSecret(k objectKey) error {
	_, err := rs.secret(k, false)
	return err
}

// configMap returns the ConfigMap k, read once; nil without error when it
// does not exist and optional is true.
func (rs *resolution) configMap(k objectKey, optional bool) (*corev1.ConfigMap, error) {
	if c, ok := rs.configMaps[k]; ok {
		if c == nil && !optional {
			return nil, fmt.Errorf("no ConfigMap %s", k)
		}
		return c, nil
	}
	done := rs.reading(Ref{Kind: RefConfigMap, Namespace: k.namespace, Name: k.name})
	c, err := rs.r.kube.CoreV1().ConfigMaps(k.namespace).Get(rs.ctx, k.name, metav1.GetOptions{})
	done(versionOf(RefConfigMap, c, err))
	switch {
	case apierrors.IsNotFound(err):
		c = nil
	case err != nil:
		return nil, retry(fmt.Errorf("getting ConfigMap %s: %w", k, err))
	}
	if rs.configMaps == nil {
		rs.configMaps = map[objectKey]*corev1.ConfigMap{}
	}
	rs.configMaps[k] = c
	if c == nil && !optional {
		return nil, fmt.Errorf("no ConfigMap %s", k)
	}
	return c, nil
}

// configMapKey returns key of ConfigMap k; nil without error when the
// ConfigMap or key is missing and optional is true.
func (rs *resolution) configMapKey(k objectKey, key string, optional bool) (*string, error) {
	c, err := rs.configMap(k, optional)
	if err != nil || c == nil {
		return nil, err
	}
	if v, ok := c.Data[key]; ok {
		return &v, nil
	}
	if b, ok := c.BinaryData[key]; ok {
		v := string(b)
		return &v, nil
	}
	if optional {
		return nil, nil
	}
	return nil, fmt.Errorf("no key %q in ConfigMap %s", key, k)
}

func (rs *resolution) mustExistConfigMap(k objectKey) error {
	_, err := rs.configMap(k, false)
	return err
}

// envSourceContainer is the container of so's target whose environment
// <key>FromEnv and env sources read by default; "" means the first.
func envSourceContainer(so *v1alpha1.ScaledObject) string {
	if so.Spec.ScaleTargetRef == nil {
		return ""
	}
	return so.Spec.ScaleTargetRef.EnvSourceContainerName
}

func ptrTrue(b *bool) bool { return b != nil && *b }
