package scalers

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// AzureBlobConfig is an azure-blob trigger (Azure Blob Storage); its
// metric is s<i>-azure-blob-<blobContainerName> with target blobCount.
//
// Metadata: blobContainerName (required), blobCount (default 5),
// activationBlobCount (default 0), blobDelimiter (default "/"),
// blobPrefix, recursive (default false), globPattern, and the AzureStorage
// keys; the connection string comes from the TriggerAuthentication,
// connectionFromEnv or the metadata, in that order.
//
// As KEDA counts: with globPattern, every blob under Prefix whose whole
// name matches the pattern (a flat listing); otherwise, with recursive,
// every blob under Prefix (a flat listing); otherwise the blobs directly
// under Prefix, listed by Delimiter (the "virtual directories" are not
// counted).
type AzureBlobConfig struct {
	BlobContainerName   string
	BlobCount           int64
	ActivationBlobCount int64
	// BlobDelimiter and BlobPrefix are the settings as given (the
	// delimiter defaulted).
	BlobDelimiter string
	BlobPrefix    string
	Recursive     bool
	GlobPattern   string
	Storage       AzureStorage

	// Delimiter is the delimiter of the listing: BlobDelimiter, or ""
	// with recursive.
	Delimiter string
	// Prefix is the prefix of the listing, as KEDA derives it: blobPrefix
	// followed by Delimiter when both are set.
	Prefix string

	glob       *globMatcher
	index      int
	targetType autoscalingv2.MetricTargetType
}

func parseAzureBlob(r *reader) Config {
	c := &AzureBlobConfig{index: r.t.Index}
	c.targetType = r.externalTargetType()
	c.BlobContainerName = r.str(meta("blobContainerName").req())
	c.BlobCount = r.int(meta("blobCount").withDefault("5"))
	c.ActivationBlobCount = r.int(meta("activationBlobCount"))
	c.BlobDelimiter = r.str(meta("blobDelimiter").withDefault("/"))
	c.BlobPrefix = r.str(meta("blobPrefix"))
	c.Recursive = r.boolean(meta("recursive"))
	c.GlobPattern = r.str(meta("globPattern"))
	if c.GlobPattern != "" {
		g, err := compileGlob(c.GlobPattern)
		if err != nil {
			r.fail("globPattern", "globPattern%s is not a valid glob pattern: %v", quote(meta("globPattern"), fromMetadata, c.GlobPattern), err)
		}
		c.glob = g
	}
	c.Storage = parseAzureStorage(r, "blob", fromAuth, fromEnv, fromMetadata)

	c.Delimiter = c.BlobDelimiter
	if c.Recursive {
		c.Delimiter = ""
	}
	c.Prefix = c.BlobPrefix
	if c.Prefix != "" && c.Delimiter != "" {
		c.Prefix += c.Delimiter
	}
	return c
}

// Flat reports whether the blobs are counted by a flat listing (with
// globPattern or recursive) rather than one level under Delimiter.
func (c *AzureBlobConfig) Flat() bool { return c.glob != nil || c.Recursive }

// Matches reports whether a blob of a flat listing counts: its name
// matches globPattern, or there is none.
func (c *AzureBlobConfig) Matches(name string) bool { return c.glob == nil || c.glob.Match(name) }

// Type returns "azure-blob".
func (c *AzureBlobConfig) Type() string { return "azure-blob" }

// MetricName returns s<i>-azure-blob-<blobContainerName>, normalized.
func (c *AzureBlobConfig) MetricName() string {
	return ExternalMetricName(c.index, Normalize("azure-blob-"+c.BlobContainerName))
}

// MetricSpec returns the External metric with target blobCount.
func (c *AzureBlobConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return externalMetricSpec(c.MetricName(), c.targetType, IntQuantity(c.BlobCount)), nil
}

// ActivationThreshold is activationBlobCount (default 0).
func (c *AzureBlobConfig) ActivationThreshold() float64 { return float64(c.ActivationBlobCount) }
