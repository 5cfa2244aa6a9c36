package triggers

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	kedafake "github.com/ebb-autoscaler/ebb/pkg/client/clientset/versioned/fake"
)

const (
	testNS    = "apps"
	clusterNS = "ebb-system"
)

// secretValues are every value of a Secret in the fixtures; none may
// appear in an error.
var secretValues = []string{"s3cr3t-pw", "s3cr3t-token", "s3cr3t-cluster", "s3cr3t-bulk", "s3cr3t-side"}

func authKubeObjects() []runtime.Object {
	podSpec := corev1.PodSpec{Containers: []corev1.Container{
		{
			Name: "main",
			Env: []corev1.EnvVar{
				{Name: "PLAIN", Value: "overridden"},
				{Name: "PLAIN", Value: "plain-value"}, // the later entry wins
				{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "app-secret"}, Key: "password"}}},
				{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}, Key: "host"}}},
				{Name: "NO_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "app-secret"}, Key: "absent"}}},
				{Name: "OPTIONAL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Key: "k", Optional: ptr.To(true)}}},
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			},
			EnvFrom: []corev1.EnvFromSource{
				{Prefix: "B_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "bulk"}}},
			},
		},
		{
			Name: "sidecar",
			Env: []corev1.EnvVar{
				{Name: "PLAIN", Value: "sidecar-value"},
				{Name: "SIDE_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "app-secret"}, Key: "side"}}},
			},
		},
	}}
	return []runtime.Object{
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "web"},
			Spec:       appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: podSpec}},
		},
		&appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "db"},
			Spec: appsv1.StatefulSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "db", Env: []corev1.EnvVar{{Name: "PLAIN", Value: "sts-value"}}},
			}}}},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "app-secret"},
			Data: map[string][]byte{
				"password": []byte("s3cr3t-pw"),
				"token":    []byte("s3cr3t-token"),
				"side":     []byte("s3cr3t-side"),
			},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "bulk"},
			Data:       map[string][]byte{"PASS": []byte("s3cr3t-bulk")},
		},
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "app-config"},
			Data:       map[string]string{"host": "redis.apps:6379"},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: clusterNS, Name: "cluster-secret"},
			Data:       map[string][]byte{"password": []byte("s3cr3t-cluster")},
		},
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: clusterNS, Name: "cluster-config"},
			Data:       map[string]string{"host": "redis.ebb-system:6379"},
		},
		// Same names in the ScaledObject's namespace: a
		// ClusterTriggerAuthentication must not read these.
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "cluster-secret"},
			Data:       map[string][]byte{"password": []byte("wrong-namespace")},
		},
	}
}

func ta(name string, spec v1alpha1.TriggerAuthenticationSpec) *v1alpha1.TriggerAuthentication {
	return &v1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name}, Spec: spec}
}

func authKedaObjects() []runtime.Object {
	return []runtime.Object{
		ta("secret", v1alpha1.TriggerAuthenticationSpec{
			PodIdentity: &v1alpha1.AuthPodIdentity{Provider: v1alpha1.PodIdentityProviderNone},
			SecretTargetRef: []v1alpha1.AuthSecretTargetRef{
				{Parameter: "password", Name: "app-secret", Key: "password"},
				{Parameter: "token", Name: "app-secret", Key: "token"},
			},
		}),
		ta("configmap", v1alpha1.TriggerAuthenticationSpec{
			ConfigMapTargetRef: []v1alpha1.AuthConfigMapTargetRef{{Parameter: "host", Name: "app-config", Key: "host"}},
		}),
		ta("env", v1alpha1.TriggerAuthenticationSpec{
			Env: []v1alpha1.AuthEnvironment{
				{Parameter: "plain", Name: "PLAIN"},
				{Parameter: "password", Name: "FROM_SECRET"},
				{Parameter: "side", Name: "SIDE_SECRET", ContainerName: "sidecar"},
				{Parameter: "bulk", Name: "B_PASS"},
			},
		}),
		ta("missing-secret", v1alpha1.TriggerAuthenticationSpec{
			SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "password", Name: "nope", Key: "password"}},
		}),
		ta("missing-key", v1alpha1.TriggerAuthenticationSpec{
			SecretTargetRef: []v1alpha1.AuthSecretTargetRef{
				{Parameter: "password", Name: "app-secret", Key: "password"},
				{Parameter: "user", Name: "app-secret", Key: "username"},
			},
		}),
		ta("missing-cm-key", v1alpha1.TriggerAuthenticationSpec{
			ConfigMapTargetRef: []v1alpha1.AuthConfigMapTargetRef{{Parameter: "port", Name: "app-config", Key: "port"}},
		}),
		ta("env-missing", v1alpha1.TriggerAuthenticationSpec{
			Env: []v1alpha1.AuthEnvironment{{Parameter: "x", Name: "UNSET"}},
		}),
		ta("vault", v1alpha1.TriggerAuthenticationSpec{
			SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "password", Name: "app-secret", Key: "password"}},
			HashiCorpVault:  &v1alpha1.HashiCorpVault{},
		}),
		ta("file-ignored", v1alpha1.TriggerAuthenticationSpec{
			FilePath:        "creds.json",
			SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "password", Name: "app-secret", Key: "password"}},
		}),
		ta("pod-identity", v1alpha1.TriggerAuthenticationSpec{
			PodIdentity: &v1alpha1.AuthPodIdentity{Provider: v1alpha1.PodIdentityProviderAwsEKS},
		}),
		ta("many-unsupported", v1alpha1.TriggerAuthenticationSpec{
			AzureKeyVault:            &v1alpha1.AzureKeyVault{},
			AwsSecretManager:         &v1alpha1.AwsSecretManager{},
			GCPSecretManager:         &v1alpha1.GCPSecretManager{},
			BoundServiceAccountToken: []v1alpha1.BoundServiceAccountToken{{}},
		}),
		&v1alpha1.ClusterTriggerAuthentication{
			ObjectMeta: metav1.ObjectMeta{Name: "cluster"},
			Spec: v1alpha1.TriggerAuthenticationSpec{
				SecretTargetRef:    []v1alpha1.AuthSecretTargetRef{{Parameter: "password", Name: "cluster-secret", Key: "password"}},
				ConfigMapTargetRef: []v1alpha1.AuthConfigMapTargetRef{{Parameter: "host", Name: "cluster-config", Key: "host"}},
				// env still reads the target's containers.
				Env: []v1alpha1.AuthEnvironment{{Parameter: "plain", Name: "PLAIN"}},
			},
		},
		&v1alpha1.ClusterTriggerAuthentication{
			ObjectMeta: metav1.ObjectMeta{Name: "cluster-file"},
			Spec:       v1alpha1.TriggerAuthenticationSpec{FilePath: "creds.json"},
		},
	}
}

func TestAuthResolver(t *testing.T) {
	deployment := &v1alpha1.ScaleTarget{Name: "web"}
	tests := map[string]struct {
		target     *v1alpha1.ScaleTarget
		metadata   map[string]string
		authRef    *v1alpha1.AuthenticationRef
		clusterNS  string // defaults to clusterNS; "-" for none
		wantMD     map[string]string
		wantAuth   map[string]string
		wantErr    []string // substrings of the error
		wantErrIs  error
		wantRetry  bool // the error is retried with backoff (no watched change fixes it)
		noKubeGets bool // nothing but the authentication object is read
	}{
		"no auth, no env": {
			target:     &v1alpha1.ScaleTarget{Name: "custom", APIVersion: "example.com/v1", Kind: "Thing"},
			metadata:   map[string]string{"listName": "jobs"},
			wantMD:     map[string]string{"listName": "jobs"},
			noKubeGets: true,
		},
		"secretTargetRef": {
			target:   &v1alpha1.ScaleTarget{Name: "custom", APIVersion: "example.com/v1", Kind: "Thing"},
			authRef:  &v1alpha1.AuthenticationRef{Name: "secret"},
			wantAuth: map[string]string{"password": "s3cr3t-pw", "token": "s3cr3t-token"},
		},
		"configMapTargetRef with explicit kind": {
			target:   deployment,
			authRef:  &v1alpha1.AuthenticationRef{Name: "configmap", Kind: v1alpha1.TriggerAuthenticationKind},
			wantAuth: map[string]string{"host": "redis.apps:6379"},
		},
		"env: plain value, secretKeyRef, containerName, envFrom": {
			target:  deployment,
			authRef: &v1alpha1.AuthenticationRef{Name: "env"},
			wantAuth: map[string]string{
				"plain": "plain-value", "password": "s3cr3t-pw", "side": "s3cr3t-side", "bulk": "s3cr3t-bulk",
			},
		},
		"env defaults to envSourceContainerName": {
			target:    &v1alpha1.ScaleTarget{Name: "web", EnvSourceContainerName: "sidecar"},
			authRef:   &v1alpha1.AuthenticationRef{Name: "env"},
			wantErr:   []string{`env parameter "password"`, "FROM_SECRET", "container sidecar of Deployment apps/web"},
			wantAuth:  nil,
			wantRetry: true,
		},
		"FromEnv: plain, secretKeyRef, configMapKeyRef": {
			target: deployment,
			metadata: map[string]string{
				"addressFromEnv":  "FROM_CM",
				"passwordFromEnv": "FROM_SECRET",
				"nameFromEnv":     "PLAIN",
				"listName":        "jobs",
			},
			wantMD: map[string]string{
				"addressFromEnv": "FROM_CM", "address": "redis.apps:6379",
				"passwordFromEnv": "FROM_SECRET", "password": "s3cr3t-pw",
				"nameFromEnv": "PLAIN", "name": "plain-value",
				"listName": "jobs",
			},
		},
		"FromEnv with envSourceContainerName": {
			target:   &v1alpha1.ScaleTarget{Name: "web", EnvSourceContainerName: "sidecar"},
			metadata: map[string]string{"valueFromEnv": "PLAIN", "tokenFromEnv": "SIDE_SECRET"},
			wantMD: map[string]string{
				"valueFromEnv": "PLAIN", "value": "sidecar-value",
				"tokenFromEnv": "SIDE_SECRET", "token": "s3cr3t-side",
			},
		},
		"FromEnv from a StatefulSet": {
			target:   &v1alpha1.ScaleTarget{Name: "db", APIVersion: "apps/v1", Kind: "StatefulSet"},
			metadata: map[string]string{"hostFromEnv": "PLAIN"},
			wantMD:   map[string]string{"hostFromEnv": "PLAIN", "host": "sts-value"},
		},
		"FromEnv: a literal value wins and nothing is read": {
			target:     &v1alpha1.ScaleTarget{Name: "custom", APIVersion: "example.com/v1", Kind: "Thing"},
			metadata:   map[string]string{"password": "literal", "passwordFromEnv": "FROM_SECRET", "hostFromEnv": ""},
			wantMD:     map[string]string{"password": "literal", "passwordFromEnv": "FROM_SECRET", "hostFromEnv": ""},
			noKubeGets: true,
		},
		"FromEnv on a custom resource target": {
			target:    &v1alpha1.ScaleTarget{Name: "custom", APIVersion: "example.com/v1", Kind: "Thing"},
			metadata:  map[string]string{"hostFromEnv": "PLAIN"},
			wantErr:   []string{"metadata hostFromEnv", "needs a Deployment or StatefulSet target", "example.com/v1 Thing custom"},
			wantRetry: true,
		},
		"FromEnv: unknown container": {
			target:    &v1alpha1.ScaleTarget{Name: "web", EnvSourceContainerName: "nope"},
			metadata:  map[string]string{"hostFromEnv": "PLAIN"},
			wantErr:   []string{`Deployment apps/web has no container "nope"`},
			wantRetry: true,
		},
		"FromEnv: variable not set": {
			target:    deployment,
			metadata:  map[string]string{"hostFromEnv": "UNSET"},
			wantErr:   []string{"metadata hostFromEnv", "UNSET is not set in container main of Deployment apps/web"},
			wantRetry: true,
		},
		"FromEnv: optional reference to a missing Secret is unset": {
			target:    deployment,
			metadata:  map[string]string{"hostFromEnv": "OPTIONAL"},
			wantErr:   []string{"OPTIONAL is not set"},
			wantRetry: true,
		},
		"FromEnv: secretKeyRef to a missing key": {
			target:   deployment,
			metadata: map[string]string{"passwordFromEnv": "NO_KEY"},
			wantErr:  []string{"NO_KEY", `no key "absent" in Secret apps/app-secret`},
		},
		"FromEnv: fieldRef is not supported": {
			target:    deployment,
			metadata:  map[string]string{"podFromEnv": "POD_NAME"},
			wantErr:   []string{"POD_NAME", "only value, secretKeyRef and configMapKeyRef are supported"},
			wantRetry: true,
		},
		"FromEnv: missing target": {
			target:    &v1alpha1.ScaleTarget{Name: "absent"},
			metadata:  map[string]string{"hostFromEnv": "PLAIN"},
			wantErr:   []string{"Deployment apps/absent", "not found"},
			wantRetry: true,
		},
		"ClusterTriggerAuthentication reads from the cluster namespace": {
			target:   deployment,
			authRef:  &v1alpha1.AuthenticationRef{Name: "cluster", Kind: v1alpha1.ClusterTriggerAuthenticationKind},
			wantAuth: map[string]string{"password": "s3cr3t-cluster", "host": "redis.ebb-system:6379", "plain": "plain-value"},
		},
		"ClusterTriggerAuthentication without a cluster namespace": {
			target:    deployment,
			authRef:   &v1alpha1.AuthenticationRef{Name: "cluster", Kind: v1alpha1.ClusterTriggerAuthenticationKind},
			clusterNS: "-",
			wantErr:   []string{"ClusterTriggerAuthentication cluster", "no namespace is configured"},
		},
		"missing TriggerAuthentication": {
			target:  deployment,
			authRef: &v1alpha1.AuthenticationRef{Name: "absent"},
			wantErr: []string{"TriggerAuthentication apps/absent", "not found"},
		},
		"missing ClusterTriggerAuthentication": {
			target:  deployment,
			authRef: &v1alpha1.AuthenticationRef{Name: "absent", Kind: v1alpha1.ClusterTriggerAuthenticationKind},
			wantErr: []string{"ClusterTriggerAuthentication absent", "not found"},
		},
		"unknown authentication kind": {
			target:  deployment,
			authRef: &v1alpha1.AuthenticationRef{Name: "secret", Kind: "Secret"},
			wantErr: []string{`unknown kind "Secret"`},
		},
		"missing Secret": {
			target:  deployment,
			authRef: &v1alpha1.AuthenticationRef{Name: "missing-secret"},
			wantErr: []string{"TriggerAuthentication apps/missing-secret", `secretTargetRef parameter "password" (key "password" of Secret apps/nope)`, "no Secret apps/nope"},
		},
		"missing Secret key": {
			target:  deployment,
			authRef: &v1alpha1.AuthenticationRef{Name: "missing-key"},
			wantErr: []string{"TriggerAuthentication apps/missing-key", `secretTargetRef parameter "user"`, `no key "username" in Secret apps/app-secret`},
		},
		"missing ConfigMap key": {
			target:  deployment,
			authRef: &v1alpha1.AuthenticationRef{Name: "missing-cm-key"},
			wantErr: []string{`configMapTargetRef parameter "port"`, `no key "port" in ConfigMap apps/app-config`},
		},
		"env source not set": {
			target:    deployment,
			authRef:   &v1alpha1.AuthenticationRef{Name: "env-missing"},
			wantErr:   []string{`env parameter "x"`, "UNSET is not set"},
			wantRetry: true,
		},
		"env source on a custom resource target": {
			target:    &v1alpha1.ScaleTarget{Name: "custom", APIVersion: "example.com/v1", Kind: "Thing"},
			authRef:   &v1alpha1.AuthenticationRef{Name: "env"},
			wantErr:   []string{"needs a Deployment or StatefulSet target"},
			wantRetry: true,
		},
		"hashiCorpVault is not supported": {
			target:     deployment,
			authRef:    &v1alpha1.AuthenticationRef{Name: "vault"},
			wantErr:    []string{"TriggerAuthentication apps/vault", "hashiCorpVault", "not supported yet"},
			wantErrIs:  ErrAuthSourceNotSupported,
			noKubeGets: true,
		},
		"podIdentity is not supported": {
			target:    deployment,
			authRef:   &v1alpha1.AuthenticationRef{Name: "pod-identity"},
			wantErr:   []string{`podIdentity provider "aws-eks"`, "not supported yet"},
			wantErrIs: ErrAuthSourceNotSupported,
		},
		"every unsupported source is named": {
			target:    deployment,
			authRef:   &v1alpha1.AuthenticationRef{Name: "many-unsupported"},
			wantErr:   []string{"azureKeyVault", "gcpSecretManager", "awsSecretManager", "boundServiceAccountToken", "not supported yet"},
			wantErrIs: ErrAuthSourceNotSupported,
		},
		"filePath without a root directory": {
			target:  deployment,
			authRef: &v1alpha1.AuthenticationRef{Name: "cluster-file", Kind: v1alpha1.ClusterTriggerAuthenticationKind},
			wantErr: []string{"ClusterTriggerAuthentication cluster-file", `filePath "creds.json"`, "no root directory", "--filepath-auth-root-path"},
		},
		"a TriggerAuthentication's filePath is ignored": {
			target:   deployment,
			authRef:  &v1alpha1.AuthenticationRef{Name: "file-ignored"},
			wantAuth: map[string]string{"password": "s3cr3t-pw"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			kube := kubefake.NewClientset(authKubeObjects()...)
			keda := kedafake.NewClientset(authKedaObjects()...)
			ns := clusterNS
			switch tc.clusterNS {
			case "-":
				ns = ""
			case "":
			default:
				ns = tc.clusterNS
			}
			r := NewAuthResolver(kube, keda, ns)

			metadata := tc.metadata
			if metadata == nil {
				metadata = map[string]string{}
			}
			so := &v1alpha1.ScaledObject{
				ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "so"},
				Spec: v1alpha1.ScaledObjectSpec{
					ScaleTargetRef: tc.target,
					Triggers: []v1alpha1.ScaleTrigger{
						{Type: "cpu", Metadata: map[string]string{"value": "50"}},
						{Type: "redis", Name: "queue", Metadata: metadata, AuthenticationRef: tc.authRef},
					},
				},
			}
			orig := so.DeepCopy()

			got, err := r.ResolveContext(context.Background(), so, 1)

			if diff := cmp.Diff(orig, so); diff != "" {
				t.Errorf("ScaledObject modified (-before +after):\n%s", diff)
			}
			if tc.noKubeGets {
				if a := kube.Actions(); len(a) != 0 {
					t.Errorf("got %d Kubernetes API calls, want none: %v", len(a), a)
				}
			}
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("got no error, want one containing %q", tc.wantErr)
				}
				t.Logf("error: %v", err)
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				if tc.wantErrIs != nil && !errors.Is(err, tc.wantErrIs) {
					t.Errorf("error %q is not %v", err, tc.wantErrIs)
				}
				var re *ResolveError
				if !errors.As(err, &re) {
					t.Errorf("error %q is not a *ResolveError", err)
				} else if re.Retry != tc.wantRetry {
					t.Errorf("error %q: Retry = %v, want %v", err, re.Retry, tc.wantRetry)
				}
				for _, v := range secretValues {
					if strings.Contains(err.Error(), v) {
						t.Errorf("error %q leaks a secret value", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveContext: %v", err)
			}
			if got.Index != 1 || got.Type != "redis" || got.Name != "queue" || got.Namespace != testNS || got.ScaledObjectName != "so" {
				t.Errorf("trigger identity = %d %s %s %s/%s, want 1 redis queue apps/so",
					got.Index, got.Type, got.Name, got.Namespace, got.ScaledObjectName)
			}
			wantMD := tc.wantMD
			if wantMD == nil {
				wantMD = map[string]string{}
			}
			if diff := cmp.Diff(wantMD, got.Metadata); diff != "" {
				t.Errorf("Metadata (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAuth, got.AuthParams); diff != "" {
				t.Errorf("AuthParams (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAuthResolverResolve checks the context-free Resolver form, its use
// with the Cache's Resolver type, and that objects are read once per call.
func TestAuthResolverResolve(t *testing.T) {
	kube := kubefake.NewClientset(authKubeObjects()...)
	keda := kedafake.NewClientset(authKedaObjects()...)
	r := NewAuthResolver(kube, keda, clusterNS)
	var resolve Resolver = r.Resolve

	so := &v1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "so"},
		Spec: v1alpha1.ScaledObjectSpec{
			ScaleTargetRef: &v1alpha1.ScaleTarget{Name: "web"},
			Triggers: []v1alpha1.ScaleTrigger{{
				Type:              "redis",
				Metadata:          map[string]string{"addressFromEnv": "FROM_CM", "passwordFromEnv": "FROM_SECRET"},
				AuthenticationRef: &v1alpha1.AuthenticationRef{Name: "env"},
			}},
		},
	}
	got, err := resolve(so, 0)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got.Metadata["password"] != "s3cr3t-pw" || got.AuthParams["password"] != "s3cr3t-pw" {
		t.Errorf("password not resolved in Metadata or AuthParams")
	}
	gets := map[string]int{}
	for _, a := range kube.Actions() {
		gets[a.GetVerb()+" "+a.GetResource().Resource]++
	}
	want := map[string]int{"get deployments": 1, "get secrets": 2, "get configmaps": 1} // app-secret, bulk; app-config
	if diff := cmp.Diff(want, gets); diff != "" {
		t.Errorf("API calls (-want +got):\n%s", diff)
	}

	if _, err := resolve(so, 1); err == nil || !strings.Contains(err.Error(), "no trigger 1") {
		t.Errorf("Resolve(so, 1) error = %v, want no trigger 1", err)
	}
}
