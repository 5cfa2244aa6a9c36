package scalers

import (
	"fmt"
	"strings"
)

// AzureStorage is how an azure-queue or azure-blob trigger reaches its
// storage account: a connection string, as KEDA reads it.
//
// Keys: connection (TriggerAuthentication, metadata, or connectionFromEnv),
// accountName, cloud and endpointSuffix (metadata). Pod identity
// (azure-workload) is not supported by ebb: a trigger without a connection
// string is refused.
type AzureStorage struct {
	// Connection is the storage account's connection string.
	Connection Secret
	// ServiceURL is the service endpoint the connection string names
	// (<Service>Endpoint, or built from DefaultEndpointsProtocol,
	// AccountName and EndpointSuffix as the Azure SDK builds it), without
	// any shared access signature; it ends with "/". For messages.
	ServiceURL string
	// AccountName is the accountName metadata (used by KEDA with pod
	// identity only; ebb keeps it for messages).
	AccountName string
	// EndpointSuffix is the storage endpoint suffix of the cloud
	// (queue.core.windows.net for the public cloud), as KEDA derives it
	// from cloud and endpointSuffix. KEDA uses it with pod identity only.
	EndpointSuffix string
}

// azureStorageSuffixes are the storage endpoint suffixes of the Azure
// clouds KEDA knows by name (matched case-insensitively).
var azureStorageSuffixes = map[string]string{
	"AZUREPUBLICCLOUD":       "core.windows.net",
	"AZUREUSGOVERNMENTCLOUD": "core.usgovcloudapi.net",
	"AZURECHINACLOUD":        "core.chinacloudapi.cn",
	"AZUREGERMANCLOUD":       "core.cloudapi.de",
}

// parseAzureStorage reads the account settings of an Azure Storage
// trigger. service is "queue" or "blob"; connOrder is where the
// connection string is looked for, in KEDA's order for the trigger type.
func parseAzureStorage(r *reader, service string, connOrder ...source) AzureStorage {
	var s AzureStorage
	s.AccountName = r.str(meta("accountName"))
	s.EndpointSuffix = r.azureEndpointSuffix(service)
	s.Connection = r.secret(from("connection", connOrder...))
	if s.Connection == "" {
		why := ""
		if s.AccountName != "" {
			why = " (accountName without a connection string means pod identity, which ebb does not support)"
		}
		r.fail("connection", "connection is required: ebb reads Azure Storage with a connection string only, from a TriggerAuthentication or connectionFromEnv; pod identity (azure-workload) is not supported%s", why)
		return s
	}
	url, err := azureServiceURL(string(s.Connection), service)
	if err != "" {
		r.fail("connection", "connection is not a valid Azure Storage connection string: %s", err)
	}
	s.ServiceURL = url
	return s
}

// azureEndpointSuffix derives the storage endpoint suffix from cloud and
// endpointSuffix as KEDA does: endpointSuffix is required with cloud
// Private and ignored otherwise; a known cloud gives
// "<service>.<its storage suffix>", no cloud the public cloud's.
func (r *reader) azureEndpointSuffix(service string) string {
	cloud := r.str(meta("cloud"))
	suffix := r.str(meta("endpointSuffix"))
	switch {
	case strings.EqualFold(cloud, "Private"):
		if suffix == "" {
			r.fail("endpointSuffix", "endpointSuffix is required when cloud is Private")
		}
		return suffix
	case cloud == "":
		cloud = "AzurePublicCloud"
	}
	storage, ok := azureStorageSuffixes[strings.ToUpper(cloud)]
	if !ok {
		r.fail("cloud", "cloud%s is not one of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud, AzureGermanCloud, Private", quote(meta("cloud"), fromMetadata, cloud))
		return ""
	}
	if suffix != "" {
		r.warn("endpointSuffix is ignored unless cloud is Private, as KEDA ignores it")
	}
	return service + "." + storage
}

// azureServiceURL checks a storage connection string as the Azure SDK
// parses it (semicolon-separated key=value pairs; an endpoint, or an
// account name; an account key, or a shared access signature) and returns
// the service URL it names, without the signature. The error text never
// contains a part of the connection string.
func azureServiceURL(conn, service string) (string, string) {
	pairs := map[string]string{}
	for _, part := range strings.Split(strings.TrimRight(conn, ";"), ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return "", "it must be key=value pairs separated by semicolons"
		}
		pairs[k] = v
	}
	endpointKey := map[string]string{"queue": "QueueEndpoint", "blob": "BlobEndpoint"}[service]
	protocol, ok := pairs["DefaultEndpointsProtocol"]
	if !ok {
		protocol = "https"
	}
	suffix, ok := pairs["EndpointSuffix"]
	if !ok {
		suffix = "core.windows.net"
	}
	endpoint, hasEndpoint := pairs[endpointKey]
	account, hasAccount := pairs["AccountName"]
	switch {
	case hasEndpoint:
	case hasAccount:
		endpoint = fmt.Sprintf("%s://%s.%s.%s", protocol, account, service, suffix)
	default:
		return "", "it needs AccountName or " + endpointKey
	}
	if _, ok := pairs["AccountKey"]; !(ok && hasAccount) {
		if _, ok := pairs["SharedAccessSignature"]; !ok {
			return "", "it needs AccountName with AccountKey, or SharedAccessSignature"
		}
	}
	if !strings.HasSuffix(endpoint, "/") {
		endpoint += "/"
	}
	return endpoint, ""
}
