package validate

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/ebb-autoscaler/ebb/pkg/apis/keda/v1alpha1"
	"github.com/ebb-autoscaler/ebb/services/webhook/internal/admission"
)

// TriggerAuthentication validates TriggerAuthentications and, with
// Cluster set, ClusterTriggerAuthentications. Its rules are structural:
// they read nothing from the cluster.
type TriggerAuthentication struct {
	// Cluster selects ClusterTriggerAuthentication.
	Cluster bool
}

var _ admission.Validator = TriggerAuthentication{}

// Validate implements admission.Validator.
func (v TriggerAuthentication) Validate(_ context.Context, req *admissionv1.AdmissionRequest) ([]string, error) {
	kind := v1alpha1.TriggerAuthenticationKind
	if v.Cluster {
		kind = v1alpha1.ClusterTriggerAuthenticationKind
	}
	// Both kinds have the same metadata and spec.
	var ta v1alpha1.TriggerAuthentication
	if err := admission.Decode(req.Object, "the object", &ta); err != nil {
		return nil, err
	}
	if ta.Name == "" {
		ta.Name = req.Name
	}
	if req.Operation == admissionv1.Update {
		var old v1alpha1.TriggerAuthentication
		if err := admission.Decode(req.OldObject, "the old object", &old); err != nil {
			return nil, err
		}
		if ta.DeletionTimestamp != nil || equality.Semantic.DeepEqual(old.Spec, ta.Spec) {
			return nil, nil
		}
	}
	r := &report{}
	checkAuthSpec(&ta.Spec, v.Cluster, r)
	return r.result(kind, ta.Name)
}

// checkAuthSpec checks KEDA's rules on pod identities and OAuth2, and that
// every source names its parameter and where the value comes from.
func checkAuthSpec(spec *v1alpha1.TriggerAuthenticationSpec, cluster bool, r *report) {
	checkPodIdentity(spec.PodIdentity, "spec.podIdentity", r)

	// params records which sources supply each parameter.
	params := map[string][]string{}
	supply := func(field, param string) {
		if param != "" {
			params[param] = append(params[param], field)
		}
	}
	required := func(field string, values ...string) {
		// values alternate: name, value.
		for i := 0; i+1 < len(values); i += 2 {
			if strings.TrimSpace(values[i+1]) == "" {
				r.deny(field+"."+values[i], "is required")
			}
		}
	}

	for i, s := range spec.SecretTargetRef {
		f := fmt.Sprintf("spec.secretTargetRef[%d]", i)
		required(f, "parameter", s.Parameter, "name", s.Name, "key", s.Key)
		supply(f, s.Parameter)
	}
	for i, c := range spec.ConfigMapTargetRef {
		f := fmt.Sprintf("spec.configMapTargetRef[%d]", i)
		required(f, "parameter", c.Parameter, "name", c.Name, "key", c.Key)
		supply(f, c.Parameter)
	}
	for i, e := range spec.Env {
		f := fmt.Sprintf("spec.env[%d]", i)
		required(f, "parameter", e.Parameter, "name", e.Name)
		supply(f, e.Parameter)
	}
	for i, b := range spec.BoundServiceAccountToken {
		f := fmt.Sprintf("spec.boundServiceAccountToken[%d]", i)
		required(f, "parameter", b.Parameter, "serviceAccountName", b.ServiceAccountName)
		supply(f, b.Parameter)
	}

	if v := spec.HashiCorpVault; v != nil {
		const f = "spec.hashiCorpVault"
		checkURL(f+".address", v.Address, r)
		switch v.Authentication {
		case v1alpha1.VaultAuthenticationToken:
			if v.Credential == nil || v.Credential.Token == "" {
				r.deny(f+".credential.token", "is required with authentication %s", v.Authentication)
			}
		case v1alpha1.VaultAuthenticationKubernetes:
			if v.Role == "" {
				r.deny(f+".role", "is required with authentication %s", v.Authentication)
			}
		default:
			r.deny(f+".authentication", "%q is not a Vault authentication method: use %s or %s", v.Authentication,
				v1alpha1.VaultAuthenticationToken, v1alpha1.VaultAuthenticationKubernetes)
		}
		if len(v.Secrets) == 0 {
			r.deny(f+".secrets", "at least one secret is required")
		}
		for i, s := range v.Secrets {
			sf := fmt.Sprintf("%s.secrets[%d]", f, i)
			required(sf, "parameter", s.Parameter, "path", s.Path, "key", s.Key)
			supply(sf, s.Parameter)
		}
	}
	if v := spec.AzureKeyVault; v != nil {
		const f = "spec.azureKeyVault"
		checkURL(f+".vaultUri", v.VaultURI, r)
		if len(v.Secrets) == 0 {
			r.deny(f+".secrets", "at least one secret is required")
		}
		for i, s := range v.Secrets {
			sf := fmt.Sprintf("%s.secrets[%d]", f, i)
			required(sf, "parameter", s.Parameter, "name", s.Name)
			supply(sf, s.Parameter)
		}
		checkPodIdentity(v.PodIdentity, f+".podIdentity", r)
	}
	if v := spec.GCPSecretManager; v != nil {
		const f = "spec.gcpSecretManager"
		if len(v.Secrets) == 0 {
			r.deny(f+".secrets", "at least one secret is required")
		}
		for i, s := range v.Secrets {
			sf := fmt.Sprintf("%s.secrets[%d]", f, i)
			required(sf, "parameter", s.Parameter, "id", s.ID)
			supply(sf, s.Parameter)
		}
		checkPodIdentity(v.PodIdentity, f+".podIdentity", r)
	}
	if v := spec.AwsSecretManager; v != nil {
		const f = "spec.awsSecretManager"
		if len(v.Secrets) == 0 {
			r.deny(f+".secrets", "at least one secret is required")
		}
		for i, s := range v.Secrets {
			sf := fmt.Sprintf("%s.secrets[%d]", f, i)
			required(sf, "parameter", s.Parameter, "name", s.Name)
			supply(sf, s.Parameter)
		}
		checkPodIdentity(v.PodIdentity, f+".podIdentity", r)
	}

	if o := spec.OAuth2; o != nil {
		const f = "spec.oauth2"
		if o.Type != v1alpha1.OAuth2GrantTypeClientCredentials {
			r.deny(f+".type", "%q is not supported: the only grant type is %s", o.Type, v1alpha1.OAuth2GrantTypeClientCredentials)
		}
		required(f, "clientId", o.ClientID)
		if o.TokenURL == "" {
			r.deny(f+".tokenUrl", "is required")
		} else if u, err := url.Parse(o.TokenURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			r.deny(f+".tokenUrl", "%q must be an http or https URL", o.TokenURL)
		}
	}

	if p := spec.FilePath; p != "" {
		switch {
		case !cluster:
			r.warn("spec.filePath", "is read only from a ClusterTriggerAuthentication; a TriggerAuthentication's is ignored")
		case path.IsAbs(p) || strings.HasPrefix(path.Clean(p), ".."):
			r.deny("spec.filePath", "%q must be a relative path inside the operator's root directory for credential files, without ..", p)
		}
	}

	var dups []string
	for p, fields := range params {
		if len(fields) > 1 {
			dups = append(dups, fmt.Sprintf("%q (%s)", p, strings.Join(fields, ", ")))
		}
	}
	sort.Strings(dups)
	for _, d := range dups {
		r.warn("spec", "parameter %s is supplied by more than one source; only one value is used", d)
	}
	if len(params) == 0 && spec.PodIdentity == nil && spec.FilePath == "" && spec.OAuth2 == nil && spec.AzureServicePrincipal == nil {
		r.warn("spec", "supplies no parameter and no pod identity, so it authenticates nothing")
	}
}

// checkPodIdentity checks KEDA's rules on a pod identity.
func checkPodIdentity(pi *v1alpha1.AuthPodIdentity, field string, r *report) {
	if pi == nil {
		return
	}
	set := func(s *string) bool { return s != nil && *s != "" }
	setEmpty := func(s *string) bool { return s != nil && *s == "" }
	switch pi.Provider {
	case v1alpha1.PodIdentityProviderAzureWorkload:
		if setEmpty(pi.IdentityID) {
			r.deny(field+".identityId", "must not be empty when set: remove it to use the default identity")
		}
		if set(pi.IdentityAuthorityHost) && !set(pi.IdentityTenantID) {
			r.deny(field+".identityTenantId", "is required when identityAuthorityHost is set")
		} else if setEmpty(pi.IdentityTenantID) {
			r.deny(field+".identityTenantId", "must not be empty when set")
		}
	case v1alpha1.PodIdentityProviderAws:
		if set(pi.RoleArn) && pi.IdentityOwner != nil && *pi.IdentityOwner == v1alpha1.IdentityOwnerWorkload {
			r.deny(field+".roleArn", "cannot be set with identityOwner %s: the workload's own role is used", v1alpha1.IdentityOwnerWorkload)
		}
		if set(pi.ExternalID) && !set(pi.RoleArn) {
			r.deny(field+".externalID", "needs roleArn: the external ID is passed when assuming that role")
		}
	case v1alpha1.PodIdentityProviderNone, v1alpha1.PodIdentityProviderGCP, v1alpha1.PodIdentityProviderAwsEKS:
	default:
		r.deny(field+".provider", "%q is not a pod identity provider: use azure-workload, gcp, aws, aws-eks or none", pi.Provider)
	}
}

// checkURL checks that s is an absolute http or https URL.
func checkURL(field, s string, r *report) {
	if s == "" {
		r.deny(field, "is required")
		return
	}
	if u, err := url.Parse(s); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		r.deny(field, "%q must be an http or https URL", s)
	}
}
