package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=triggerauthentications,scope=Namespaced,shortName=ta;triggerauth
// +kubebuilder:printcolumn:name="PodIdentity",type="string",JSONPath=".spec.podIdentity.provider"
// +kubebuilder:printcolumn:name="Secret",type="string",JSONPath=".spec.secretTargetRef[*].name"
// +kubebuilder:printcolumn:name="Env",type="string",JSONPath=".spec.env[*].name"
// +kubebuilder:printcolumn:name="VaultAddress",type="string",JSONPath=".spec.hashiCorpVault.address"
// +kubebuilder:printcolumn:name="ScaledObjects",type="string",priority=1,JSONPath=".status.scaledobjects"
// +kubebuilder:printcolumn:name="ScaledJobs",type="string",priority=1,JSONPath=".status.scaledjobs"

// TriggerAuthentication tells the triggers that reference it where their
// credentials come from. It can be used only by ScaledObjects and
// ScaledJobs in its own namespace.
type TriggerAuthentication struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec TriggerAuthenticationSpec `json:"spec"`
	// +optional
	Status TriggerAuthenticationStatus `json:"status,omitempty,omitzero"`
}

// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=clustertriggerauthentications,scope=Cluster,shortName=cta;clustertriggerauth
// +kubebuilder:printcolumn:name="PodIdentity",type="string",JSONPath=".spec.podIdentity.provider"
// +kubebuilder:printcolumn:name="Secret",type="string",JSONPath=".spec.secretTargetRef[*].name"
// +kubebuilder:printcolumn:name="Env",type="string",JSONPath=".spec.env[*].name"
// +kubebuilder:printcolumn:name="FilePath",type="string",JSONPath=".spec.filePath"
// +kubebuilder:printcolumn:name="VaultAddress",type="string",JSONPath=".spec.hashiCorpVault.address"
// +kubebuilder:printcolumn:name="ScaledObjects",type="string",priority=1,JSONPath=".status.scaledobjects"
// +kubebuilder:printcolumn:name="ScaledJobs",type="string",priority=1,JSONPath=".status.scaledjobs"

// ClusterTriggerAuthentication is a TriggerAuthentication that any namespace
// can use, referenced with authenticationRef.kind
// ClusterTriggerAuthentication. Secrets and ConfigMaps it names are read
// from the namespace the ebb operator runs in.
type ClusterTriggerAuthentication struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec TriggerAuthenticationSpec `json:"spec"`
	// +optional
	Status TriggerAuthenticationStatus `json:"status,omitempty,omitzero"`
}

// TriggerAuthenticationSpec lists the sources of a trigger's parameters.
// Each entry maps a source to a named trigger parameter; sources may be
// combined.
type TriggerAuthenticationSpec struct {
	// PodIdentity authenticates with the platform's workload identity.
	// +optional
	PodIdentity *AuthPodIdentity `json:"podIdentity,omitempty"`
	// SecretTargetRef reads parameters from keys of Secrets.
	// +optional
	// +listType=atomic
	SecretTargetRef []AuthSecretTargetRef `json:"secretTargetRef,omitempty"`
	// ConfigMapTargetRef reads parameters from keys of ConfigMaps.
	// +optional
	// +listType=atomic
	ConfigMapTargetRef []AuthConfigMapTargetRef `json:"configMapTargetRef,omitempty"`
	// Env reads parameters from environment variables of the scale
	// target's containers.
	// +optional
	// +listType=atomic
	Env []AuthEnvironment `json:"env,omitempty"`
	// FilePath names a file, relative to the root directory the operator
	// is configured with, that holds the parameters as a JSON object of
	// strings. When set, the file's parameters are used and the other
	// sources are ignored. Only a ClusterTriggerAuthentication may use it.
	// +optional
	FilePath string `json:"filePath,omitempty"`
	// HashiCorpVault reads parameters from HashiCorp Vault.
	// +optional
	HashiCorpVault *HashiCorpVault `json:"hashiCorpVault,omitempty"`
	// AzureKeyVault reads parameters from Azure Key Vault secrets.
	// +optional
	AzureKeyVault *AzureKeyVault `json:"azureKeyVault,omitempty"`
	// GCPSecretManager reads parameters from Google Cloud Secret Manager.
	// +optional
	GCPSecretManager *GCPSecretManager `json:"gcpSecretManager,omitempty"`
	// AwsSecretManager reads parameters from AWS Secrets Manager.
	// +optional
	AwsSecretManager *AwsSecretManager `json:"awsSecretManager,omitempty"`
	// BoundServiceAccountToken puts a short-lived token of a
	// ServiceAccount into a parameter.
	// +optional
	// +listType=atomic
	BoundServiceAccountToken []BoundServiceAccountToken `json:"boundServiceAccountToken,omitempty"`
	// OAuth2 obtains an access token with the OAuth2 client credentials
	// grant.
	// +optional
	OAuth2 *OAuth2 `json:"oauth2,omitempty"`
	// AzureServicePrincipal supplies Microsoft Entra service principal
	// credentials to the Azure scalers.
	// +optional
	AzureServicePrincipal *AzureServicePrincipal `json:"azureServicePrincipal,omitempty"`
}

// TriggerAuthenticationStatus lists who uses an authentication object.
type TriggerAuthenticationStatus struct {
	// ScaledObjects using this authentication, comma-separated.
	// +optional
	ScaledObjects string `json:"scaledobjects,omitempty"`
	// ScaledJobs using this authentication, comma-separated.
	// +optional
	ScaledJobs string `json:"scaledjobs,omitempty"`
}

// PodIdentityProvider is a workload identity mechanism.
type PodIdentityProvider string

// The supported workload identity providers.
const (
	PodIdentityProviderNone          PodIdentityProvider = "none"
	PodIdentityProviderAzureWorkload PodIdentityProvider = "azure-workload"
	PodIdentityProviderGCP           PodIdentityProvider = "gcp"
	PodIdentityProviderAws           PodIdentityProvider = "aws"
	PodIdentityProviderAwsEKS        PodIdentityProvider = "aws-eks"
)

// The values of AuthPodIdentity.IdentityOwner.
const (
	IdentityOwnerOperator = "keda"
	IdentityOwnerWorkload = "workload"
)

// AuthPodIdentity selects the workload identity to authenticate with.
type AuthPodIdentity struct {
	// Provider is azure-workload, gcp, aws, aws-eks or none.
	// +required
	// +kubebuilder:validation:Enum=azure-workload;gcp;aws;aws-eks;none
	Provider PodIdentityProvider `json:"provider"`
	// IdentityID is the client id of the Azure identity to use instead of
	// the default one.
	// +optional
	IdentityID *string `json:"identityId,omitempty"`
	// IdentityTenantID overrides the Azure tenant; identityId must then be
	// set too.
	// +optional
	IdentityTenantID *string `json:"identityTenantId,omitempty"`
	// IdentityAuthorityHost overrides the Azure authority host;
	// identityTenantId must then be set too.
	// +optional
	IdentityAuthorityHost *string `json:"identityAuthorityHost,omitempty"`
	// RoleArn is the AWS role to assume. Not allowed with identityOwner.
	// +optional
	RoleArn *string `json:"roleArn,omitempty"`
	// ExternalID is passed when assuming roleArn (AWS only).
	// +optional
	ExternalID *string `json:"externalID,omitempty"`
	// IdentityOwner chooses, for AWS, whose identity is used: keda (the
	// operator's) or workload (the scale target's). Not allowed with
	// roleArn.
	// +optional
	// +kubebuilder:validation:Enum=keda;workload
	IdentityOwner *string `json:"identityOwner,omitempty"`
}

// AuthTargetRef maps a key of a Secret or ConfigMap to a trigger parameter.
type AuthTargetRef struct {
	// Parameter is the trigger parameter to fill.
	// +required
	Parameter string `json:"parameter"`
	// Name of the Secret or ConfigMap.
	// +required
	Name string `json:"name"`
	// Key within the Secret or ConfigMap.
	// +required
	Key string `json:"key"`
}

// AuthSecretTargetRef maps a key of a Secret to a trigger parameter.
type AuthSecretTargetRef AuthTargetRef

// AuthConfigMapTargetRef maps a key of a ConfigMap to a trigger parameter.
type AuthConfigMapTargetRef AuthTargetRef

// AuthEnvironment maps an environment variable of the scale target to a
// trigger parameter.
type AuthEnvironment struct {
	// Parameter is the trigger parameter to fill.
	// +required
	Parameter string `json:"parameter"`
	// Name of the environment variable.
	// +required
	Name string `json:"name"`
	// ContainerName is the container to read it from. Defaults to the
	// scale target's envSourceContainerName, else its first container.
	// +optional
	ContainerName string `json:"containerName,omitempty"`
}

// HashiCorpVault reads trigger parameters from HashiCorp Vault.
type HashiCorpVault struct {
	// Address of the Vault server, such as https://vault:8200.
	// +required
	Address string `json:"address"`
	// Authentication is the Vault auth method: token or kubernetes.
	// +required
	Authentication VaultAuthentication `json:"authentication"`
	// Secrets map Vault secrets to trigger parameters.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	Secrets []VaultSecret `json:"secrets"`
	// Namespace is the Vault Enterprise namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Credential holds what the auth method needs.
	// +optional
	Credential *VaultCredential `json:"credential,omitempty"`
	// Role is the Vault role for the kubernetes auth method.
	// +optional
	Role string `json:"role,omitempty"`
	// Mount is the mount path of the kubernetes auth method.
	// +optional
	Mount string `json:"mount,omitempty"`
}

// VaultAuthentication is a Vault auth method.
// +kubebuilder:validation:Enum=token;kubernetes
type VaultAuthentication string

// The supported Vault auth methods.
const (
	VaultAuthenticationToken      VaultAuthentication = "token"
	VaultAuthenticationKubernetes VaultAuthentication = "kubernetes"
)

// VaultCredential holds the credentials of a Vault auth method.
type VaultCredential struct {
	// Token for the token auth method.
	// +optional
	Token string `json:"token,omitempty"`
	// ServiceAccount is the path of a ServiceAccount token file, for the
	// kubernetes auth method.
	// +optional
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// ServiceAccountName is a ServiceAccount in the trigger's namespace
	// whose bound token is requested for the kubernetes auth method.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
}

// VaultSecretType is the kind of Vault secrets engine a secret is read
// from.
// +kubebuilder:validation:Enum="";secretV2;secret;pki
type VaultSecretType string

// The supported Vault secret types; the empty type reads the path as is.
const (
	VaultSecretTypeGeneric  VaultSecretType = ""
	VaultSecretTypeSecretV2 VaultSecretType = "secretV2"
	VaultSecretTypeSecret   VaultSecretType = "secret"
	VaultSecretTypePki      VaultSecretType = "pki"
)

// VaultSecret maps a Vault secret to a trigger parameter.
type VaultSecret struct {
	// Parameter is the trigger parameter to fill.
	// +required
	Parameter string `json:"parameter"`
	// Path of the secret in Vault.
	// +required
	Path string `json:"path"`
	// Key within the secret.
	// +required
	Key string `json:"key"`
	// Type of the secrets engine; empty reads the path as is.
	// +optional
	Type VaultSecretType `json:"type,omitempty"`
	// PkiData is the certificate request, for the pki type.
	// +optional
	PkiData *VaultPkiData `json:"pkiData,omitempty"`
}

// VaultPkiData is a certificate request to Vault's PKI secrets engine.
type VaultPkiData struct {
	// +optional
	CommonName string `json:"commonName,omitempty"`
	// +optional
	AltNames string `json:"altNames,omitempty"`
	// +optional
	IPSans string `json:"ipSans,omitempty"`
	// +optional
	URISans string `json:"uriSans,omitempty"`
	// +optional
	OtherSans string `json:"otherSans,omitempty"`
	// +optional
	TTL string `json:"ttl,omitempty"`
	// Format of the issued certificate, such as pem.
	// +optional
	Format string `json:"format,omitempty"`
}

// SecretKeyRef names a key of a Secret in the authentication object's
// namespace.
type SecretKeyRef struct {
	// +required
	Name string `json:"name"`
	// +required
	Key string `json:"key"`
}

// ValueFromSecret says where a credential's value is read from.
type ValueFromSecret struct {
	// +required
	SecretKeyRef SecretKeyRef `json:"secretKeyRef"`
}

// SecretValue is a credential whose value is read from a Secret.
type SecretValue struct {
	// +required
	ValueFrom ValueFromSecret `json:"valueFrom"`
}

// AzureKeyVault reads trigger parameters from Azure Key Vault secrets.
type AzureKeyVault struct {
	// VaultURI is the address of the key vault.
	// +required
	VaultURI string `json:"vaultUri"`
	// Secrets map key vault secrets to trigger parameters.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	Secrets []AzureKeyVaultSecret `json:"secrets"`
	// Credentials of a service principal allowed to read the secrets.
	// +optional
	Credentials *AzureKeyVaultCredentials `json:"credentials,omitempty"`
	// PodIdentity to read the secrets with instead of credentials.
	// +optional
	PodIdentity *AuthPodIdentity `json:"podIdentity,omitempty"`
	// Cloud selects a cloud other than the Azure public cloud.
	// +optional
	Cloud *AzureKeyVaultCloudInfo `json:"cloud,omitempty"`
}

// AzureKeyVaultCredentials is a service principal for Azure Key Vault.
type AzureKeyVaultCredentials struct {
	// +required
	ClientID string `json:"clientId"`
	// +required
	TenantID string `json:"tenantId"`
	// +required
	ClientSecret *SecretValue `json:"clientSecret"`
}

// AzureKeyVaultSecret maps a key vault secret to a trigger parameter.
type AzureKeyVaultSecret struct {
	// Parameter is the trigger parameter to fill.
	// +required
	Parameter string `json:"parameter"`
	// Name of the secret in the key vault.
	// +required
	Name string `json:"name"`
	// Version of the secret. Defaults to the latest.
	// +optional
	Version string `json:"version,omitempty"`
}

// AzureKeyVaultCloudInfo selects the Azure cloud of a key vault.
type AzureKeyVaultCloudInfo struct {
	// Type is AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud,
	// AzureGermanCloud or Private.
	// +required
	Type string `json:"type"`
	// KeyVaultResourceURL is the key vault resource of a Private cloud.
	// +optional
	KeyVaultResourceURL string `json:"keyVaultResourceURL,omitempty"`
	// ActiveDirectoryEndpoint is the authority of a Private cloud.
	// +optional
	ActiveDirectoryEndpoint string `json:"activeDirectoryEndpoint,omitempty"`
}

// GCPSecretManager reads trigger parameters from Google Cloud Secret
// Manager.
type GCPSecretManager struct {
	// Secrets map Secret Manager secrets to trigger parameters.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	Secrets []GCPSecretManagerSecret `json:"secrets"`
	// Credentials of a service account allowed to read the secrets.
	// +optional
	Credentials *GCPCredentials `json:"credentials,omitempty"`
	// PodIdentity to read the secrets with instead of credentials.
	// +optional
	PodIdentity *AuthPodIdentity `json:"podIdentity,omitempty"`
}

// GCPCredentials is a Google Cloud service account key.
type GCPCredentials struct {
	// ClientSecret is the service account's JSON key.
	// +required
	ClientSecret SecretValue `json:"clientSecret"`
}

// GCPSecretManagerSecret maps a Secret Manager secret to a trigger
// parameter.
type GCPSecretManagerSecret struct {
	// Parameter is the trigger parameter to fill.
	// +required
	Parameter string `json:"parameter"`
	// ID of the secret.
	// +required
	ID string `json:"id"`
	// Version of the secret. Defaults to latest.
	// +optional
	Version string `json:"version,omitempty"`
}

// AwsSecretManager reads trigger parameters from AWS Secrets Manager.
type AwsSecretManager struct {
	// Secrets map Secrets Manager secrets to trigger parameters.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	Secrets []AwsSecretManagerSecret `json:"secrets"`
	// Credentials of an IAM user allowed to read the secrets.
	// +optional
	Credentials *AwsSecretManagerCredentials `json:"credentials,omitempty"`
	// PodIdentity to read the secrets with instead of credentials.
	// +optional
	PodIdentity *AuthPodIdentity `json:"podIdentity,omitempty"`
	// Region of the secrets.
	// +optional
	Region string `json:"region,omitempty"`
}

// AwsSecretManagerCredentials is an AWS access key.
type AwsSecretManagerCredentials struct {
	// +required
	AccessKey *SecretValue `json:"accessKey"`
	// +required
	AccessSecretKey *SecretValue `json:"accessSecretKey"`
	// AccessToken is the session token of temporary credentials.
	// +optional
	AccessToken *SecretValue `json:"accessToken,omitempty"`
}

// AwsSecretManagerSecret maps a Secrets Manager secret to a trigger
// parameter.
type AwsSecretManagerSecret struct {
	// Parameter is the trigger parameter to fill.
	// +required
	Parameter string `json:"parameter"`
	// Name or ARN of the secret.
	// +required
	Name string `json:"name"`
	// VersionID of the secret.
	// +optional
	VersionID string `json:"versionId,omitempty"`
	// VersionStage of the secret, such as AWSCURRENT.
	// +optional
	VersionStage string `json:"versionStage,omitempty"`
	// SecretKey picks one key of a secret that holds a JSON object.
	// +optional
	SecretKey string `json:"secretKey,omitempty"`
}

// BoundServiceAccountToken puts a token of a ServiceAccount, in the
// authentication object's namespace, into a trigger parameter.
type BoundServiceAccountToken struct {
	// Parameter is the trigger parameter to fill.
	// +required
	Parameter string `json:"parameter"`
	// ServiceAccountName is the ServiceAccount to request the token for.
	// +required
	ServiceAccountName string `json:"serviceAccountName"`
}

// OAuth2GrantType is an OAuth2 grant type.
type OAuth2GrantType string

// OAuth2GrantTypeClientCredentials is the client credentials grant, the
// only one supported.
const OAuth2GrantTypeClientCredentials OAuth2GrantType = "clientCredentials"

// OAuth2 obtains an access token from an OAuth2 token endpoint.
type OAuth2 struct {
	// Type is the grant type; only clientCredentials.
	// +required
	// +kubebuilder:validation:Enum=clientCredentials
	// +kubebuilder:default=clientCredentials
	Type OAuth2GrantType `json:"type"`
	// ClientID of the OAuth2 client.
	// +required
	ClientID string `json:"clientId"`
	// ClientSecret of the OAuth2 client.
	// +optional
	ClientSecret *SecretValue `json:"clientSecret,omitempty"`
	// TokenURL is the token endpoint.
	// +required
	TokenURL string `json:"tokenUrl"`
	// Scopes to request.
	// +optional
	// +listType=atomic
	Scopes []string `json:"scopes,omitempty"`
	// TokenURLParams are extra form parameters sent to the token endpoint.
	// +optional
	TokenURLParams map[string]string `json:"tokenUrlParams,omitempty"`
}

// AzureServicePrincipal is a Microsoft Entra service principal shared by the
// Azure scalers.
type AzureServicePrincipal struct {
	// +required
	TenantID string `json:"tenantId"`
	// +required
	ClientID string `json:"clientId"`
	// Cloud is the Azure cloud. Defaults to AzurePublicCloud.
	// +optional
	Cloud string `json:"cloud,omitempty"`
	// ActiveDirectoryEndpoint is the authority; required when cloud is
	// Private.
	// +optional
	ActiveDirectoryEndpoint string `json:"activeDirectoryEndpoint,omitempty"`
	// ClientSecret authenticates the service principal with a secret.
	// +optional
	ClientSecret *SecretValue `json:"clientSecret,omitempty"`
	// ClientCertificate authenticates the service principal with a
	// certificate.
	// +optional
	ClientCertificate *SecretValue `json:"clientCertificate,omitempty"`
	// ClientCertificatePassword unlocks clientCertificate.
	// +optional
	ClientCertificatePassword *SecretValue `json:"clientCertificatePassword,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// TriggerAuthenticationList is a list of TriggerAuthentications.
type TriggerAuthenticationList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []TriggerAuthentication `json:"items"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// ClusterTriggerAuthenticationList is a list of
// ClusterTriggerAuthentications.
type ClusterTriggerAuthenticationList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []ClusterTriggerAuthentication `json:"items"`
}
