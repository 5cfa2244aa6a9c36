package validate

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
)

func TestTriggerAuthentication(t *testing.T) {
	secret := &v1alpha1.SecretValue{ValueFrom: v1alpha1.ValueFromSecret{SecretKeyRef: v1alpha1.SecretKeyRef{Name: "s", Key: "k"}}}
	tests := map[string]struct {
		spec    v1alpha1.TriggerAuthenticationSpec
		cluster bool
		want    outcome
	}{
		"secrets": {
			spec: v1alpha1.TriggerAuthenticationSpec{SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "password", Name: "redis", Key: "password"}}},
			want: outcome{noWarnings: true},
		},
		"a secret reference missing its fields": {
			spec: v1alpha1.TriggerAuthenticationSpec{SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "password"}}},
			want: outcome{denied: []string{"spec.secretTargetRef[0].name: is required", "spec.secretTargetRef[0].key: is required"}},
		},
		"a config map reference missing its parameter": {
			spec: v1alpha1.TriggerAuthenticationSpec{ConfigMapTargetRef: []v1alpha1.AuthConfigMapTargetRef{{Name: "cm", Key: "host"}}},
			want: outcome{denied: []string{"spec.configMapTargetRef[0].parameter: is required"}},
		},
		"an env entry missing its variable": {
			spec: v1alpha1.TriggerAuthenticationSpec{Env: []v1alpha1.AuthEnvironment{{Parameter: "host"}}},
			want: outcome{denied: []string{"spec.env[0].name: is required"}},
		},
		"a bound token missing its service account": {
			spec: v1alpha1.TriggerAuthenticationSpec{BoundServiceAccountToken: []v1alpha1.BoundServiceAccountToken{{Parameter: "token"}}},
			want: outcome{denied: []string{"spec.boundServiceAccountToken[0].serviceAccountName: is required"}},
		},
		"a parameter from two sources": {
			spec: v1alpha1.TriggerAuthenticationSpec{
				SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "host", Name: "s", Key: "h"}},
				Env:             []v1alpha1.AuthEnvironment{{Parameter: "host", Name: "HOST"}},
			},
			want: outcome{warnings: []string{`spec: parameter "host" (spec.secretTargetRef[0], spec.env[0]) is supplied by more than one source`}},
		},
		"nothing at all": {
			want: outcome{warnings: []string{"supplies no parameter and no pod identity"}},
		},

		// Pod identities (KEDA's rules).
		"azure workload identity with an empty identityId": {
			spec: v1alpha1.TriggerAuthenticationSpec{PodIdentity: &v1alpha1.AuthPodIdentity{Provider: "azure-workload", IdentityID: ptr("")}},
			want: outcome{denied: []string{"spec.podIdentity.identityId: must not be empty when set"}},
		},
		"azure authority host without a tenant": {
			spec: v1alpha1.TriggerAuthenticationSpec{PodIdentity: &v1alpha1.AuthPodIdentity{Provider: "azure-workload", IdentityAuthorityHost: ptr("https://login.example")}},
			want: outcome{denied: []string{"spec.podIdentity.identityTenantId: is required when identityAuthorityHost is set"}},
		},
		"azure with an empty tenant": {
			spec: v1alpha1.TriggerAuthenticationSpec{PodIdentity: &v1alpha1.AuthPodIdentity{Provider: "azure-workload", IdentityTenantID: ptr("")}},
			want: outcome{denied: []string{"spec.podIdentity.identityTenantId: must not be empty when set"}},
		},
		"azure workload identity": {
			spec: v1alpha1.TriggerAuthenticationSpec{PodIdentity: &v1alpha1.AuthPodIdentity{Provider: "azure-workload", IdentityID: ptr("id"), IdentityTenantID: ptr("t"), IdentityAuthorityHost: ptr("h")}},
			want: outcome{noWarnings: true},
		},
		"aws role with the workload's identity": {
			spec: v1alpha1.TriggerAuthenticationSpec{PodIdentity: &v1alpha1.AuthPodIdentity{Provider: "aws", RoleArn: ptr("arn:aws:iam::1:role/r"), IdentityOwner: ptr("workload")}},
			want: outcome{denied: []string{"spec.podIdentity.roleArn: cannot be set with identityOwner workload"}},
		},
		"aws external id without a role": {
			spec: v1alpha1.TriggerAuthenticationSpec{PodIdentity: &v1alpha1.AuthPodIdentity{Provider: "aws", ExternalID: ptr("x")}},
			want: outcome{denied: []string{"spec.podIdentity.externalID: needs roleArn"}},
		},
		"unknown provider": {
			spec: v1alpha1.TriggerAuthenticationSpec{PodIdentity: &v1alpha1.AuthPodIdentity{Provider: "azure"}},
			want: outcome{denied: []string{`spec.podIdentity.provider: "azure" is not a pod identity provider`}},
		},

		// OAuth2 (KEDA's rules).
		"oauth2": {
			spec: v1alpha1.TriggerAuthenticationSpec{OAuth2: &v1alpha1.OAuth2{Type: "clientCredentials", ClientID: "c", ClientSecret: secret, TokenURL: "https://idp.example/token"}},
			want: outcome{noWarnings: true},
		},
		"oauth2 missing its fields": {
			spec: v1alpha1.TriggerAuthenticationSpec{OAuth2: &v1alpha1.OAuth2{Type: "password"}},
			want: outcome{denied: []string{`spec.oauth2.type: "password" is not supported`, "spec.oauth2.clientId: is required", "spec.oauth2.tokenUrl: is required"}},
		},
		"oauth2 token URL that is not http": {
			spec: v1alpha1.TriggerAuthenticationSpec{OAuth2: &v1alpha1.OAuth2{Type: "clientCredentials", ClientID: "c", TokenURL: "ftp://idp/token"}},
			want: outcome{denied: []string{`spec.oauth2.tokenUrl: "ftp://idp/token" must be an http or https URL`}},
		},

		// Secret stores.
		"vault with a token": {
			spec: v1alpha1.TriggerAuthenticationSpec{HashiCorpVault: &v1alpha1.HashiCorpVault{
				Address: "https://vault:8200", Authentication: "token", Credential: &v1alpha1.VaultCredential{Token: "t"},
				Secrets: []v1alpha1.VaultSecret{{Parameter: "password", Path: "secret/data/redis", Key: "password"}},
			}},
			want: outcome{noWarnings: true},
		},
		"vault missing its pieces": {
			spec: v1alpha1.TriggerAuthenticationSpec{HashiCorpVault: &v1alpha1.HashiCorpVault{
				Address: "vault", Authentication: "kubernetes",
				Secrets: []v1alpha1.VaultSecret{{Parameter: "password"}},
			}},
			want: outcome{denied: []string{
				`spec.hashiCorpVault.address: "vault" must be an http or https URL`,
				"spec.hashiCorpVault.role: is required with authentication kubernetes",
				"spec.hashiCorpVault.secrets[0].path: is required",
				"spec.hashiCorpVault.secrets[0].key: is required",
			}},
		},
		"vault token authentication without a token": {
			spec: v1alpha1.TriggerAuthenticationSpec{HashiCorpVault: &v1alpha1.HashiCorpVault{
				Address: "https://vault:8200", Authentication: "token",
				Secrets: []v1alpha1.VaultSecret{{Parameter: "p", Path: "x", Key: "k"}},
			}},
			want: outcome{denied: []string{"spec.hashiCorpVault.credential.token: is required with authentication token"}},
		},
		"azure key vault without secrets": {
			spec: v1alpha1.TriggerAuthenticationSpec{AzureKeyVault: &v1alpha1.AzureKeyVault{VaultURI: "https://kv.vault.azure.net"}},
			want: outcome{denied: []string{"spec.azureKeyVault.secrets: at least one secret is required"}},
		},
		"gcp secret without an id": {
			spec: v1alpha1.TriggerAuthenticationSpec{GCPSecretManager: &v1alpha1.GCPSecretManager{Secrets: []v1alpha1.GCPSecretManagerSecret{{Parameter: "p"}}}},
			want: outcome{denied: []string{"spec.gcpSecretManager.secrets[0].id: is required"}},
		},
		"aws secret without a name": {
			spec: v1alpha1.TriggerAuthenticationSpec{AwsSecretManager: &v1alpha1.AwsSecretManager{Secrets: []v1alpha1.AwsSecretManagerSecret{{Parameter: "p"}}}},
			want: outcome{denied: []string{"spec.awsSecretManager.secrets[0].name: is required"}},
		},

		// filePath.
		"filePath on a TriggerAuthentication": {
			spec: v1alpha1.TriggerAuthenticationSpec{FilePath: "creds.json"},
			want: outcome{warnings: []string{"spec.filePath: is read only from a ClusterTriggerAuthentication"}},
		},
		"filePath on a ClusterTriggerAuthentication": {
			spec: v1alpha1.TriggerAuthenticationSpec{FilePath: "team-a/creds.json"}, cluster: true,
			want: outcome{noWarnings: true},
		},
		"filePath escaping the root": {
			spec: v1alpha1.TriggerAuthenticationSpec{FilePath: "../etc/passwd"}, cluster: true,
			want: outcome{denied: []string{`spec.filePath: "../etc/passwd" must be a relative path`}},
		},
		"absolute filePath": {
			spec: v1alpha1.TriggerAuthenticationSpec{FilePath: "/etc/passwd"}, cluster: true,
			want: outcome{denied: []string{`spec.filePath: "/etc/passwd" must be a relative path`}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var obj metav1.Object
			resource := "triggerauthentications"
			if tc.cluster {
				obj = &v1alpha1.ClusterTriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "auth"}, Spec: tc.spec}
				resource = "clustertriggerauthentications"
			} else {
				obj = &v1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auth"}, Spec: tc.spec}
			}
			warnings, err := validate(t, TriggerAuthentication{Cluster: tc.cluster}, request(t, resource, obj, nil))
			check(t, tc.want, warnings, err)
		})
	}
}

func TestTriggerAuthenticationUpdate(t *testing.T) {
	bad := v1alpha1.TriggerAuthenticationSpec{SecretTargetRef: []v1alpha1.AuthSecretTargetRef{{Parameter: "p"}}}
	old := &v1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a", Finalizers: []string{v1alpha1.Finalizer}}, Spec: bad}
	cur := &v1alpha1.TriggerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a"}, Spec: bad}
	warnings, err := validate(t, TriggerAuthentication{}, request(t, "triggerauthentications", cur, old))
	check(t, outcome{noWarnings: true}, warnings, err)

	changed := cur.DeepCopy()
	changed.Spec.SecretTargetRef[0].Name = "s"
	warnings, err = validate(t, TriggerAuthentication{}, request(t, "triggerauthentications", changed, old))
	check(t, outcome{denied: []string{"spec.secretTargetRef[0].key: is required"}}, warnings, err)
}
