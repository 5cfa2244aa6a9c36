package scalers

import "testing"

// FuzzAzureBlob parses azure-blob triggers with fuzzed metadata and
// authentication parameters (see checkAzureFuzz), glob patterns included.
func FuzzAzureBlob(f *testing.F) {
	// Seeds: blobContainerName, blobCount, activationBlobCount,
	// blobDelimiter, blobPrefix, recursive, globPattern, cloud,
	// connection, where the connection comes from (0 TriggerAuthentication,
	// 1 metadata, 2 connectionFromEnv).
	f.Add("uploads", "", "", "", "", "", "", "", "AccountName=a;AccountKey=k", uint8(0))
	f.Add("in.box", "10", "2", "|", "logs", "false", "", "AzureUSGovernmentCloud", "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;AccountName=devstoreaccount1;AccountKey=k", uint8(2))
	f.Add("c", "5", "0", "/", "a/b", "true", "**/*.{csv,json}", "", "BlobEndpoint=http://h/a;SharedAccessSignature=sig", uint8(1))
	f.Add("", "", "", "", "", "", "", "", "", uint8(0))
	f.Add("c", "x", "1.5", "", "", "yes", "a[b", "Mars", "no-pairs", uint8(0))
	f.Add("c", "-1", "null", "", "", "TRUE", "[z-a]{a,", "private", "AccountName=a", uint8(2))
	f.Add("c", "1", "", "", "", "", `[!\]]?\`, "", "QueueEndpoint=http://h/;AccountKey=k", uint8(1))
	f.Fuzz(func(t *testing.T, container, blobCount, activation, delimiter, prefix, recursive, glob, cloud, connection string, connFrom uint8) {
		md := map[string]string{
			"blobContainerName": container, "blobCount": blobCount, "activationBlobCount": activation,
			"blobDelimiter": delimiter, "blobPrefix": prefix, "recursive": recursive, "globPattern": glob, "cloud": cloud,
		}
		checkAzureFuzz(t, "azure-blob", md, connection, connFrom)
	})
}
