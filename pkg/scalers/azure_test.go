package scalers

import (
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

const azureTestConn = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net"

func azureMeta(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestParseAzureQueue(t *testing.T) {
	auth := map[string]string{"connection": azureTestConn}
	runParseCases(t, map[string]parseCase{
		"defaults": {
			trigger:    withAuth(trig("azure-queue", 0, azureMeta("queueName", "orders")), auth),
			wantSpec:   ext("s0-azure-queue-orders", autoscalingv2.AverageValueMetricType, "5"),
			wantTarget: "5",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 0)
				q := c.(*AzureQueueConfig)
				if q.QueueLength != 5 || q.QueueLengthStrategy != AzureQueueLengthAll || string(q.Storage.Connection) != azureTestConn ||
					q.Storage.ServiceURL != "https://acct.queue.core.windows.net/" || q.Storage.EndpointSuffix != "queue.core.windows.net" {
					t.Errorf("config %+v", q)
				}
			},
		},
		"every key, Value, index 2": {
			trigger: withMetricType(withAuth(trig("azure-queue", 2, azureMeta("queueName", "jobs.high", "queueLength", "20",
				"activationQueueLength", "3", "queueLengthStrategy", "visibleonly", "accountName", "acct", "cloud", "AzureChinaCloud")), auth),
				autoscalingv2.ValueMetricType),
			wantSpec:   ext("s2-azure-queue-jobs-high", autoscalingv2.ValueMetricType, "20"),
			wantTarget: "20",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 3)
				q := c.(*AzureQueueConfig)
				if q.QueueLengthStrategy != AzureQueueLengthVisibleOnly || q.Storage.AccountName != "acct" || q.Storage.EndpointSuffix != "queue.core.chinacloudapi.cn" {
					t.Errorf("config %+v", q)
				}
			},
		},
		"connection from the environment, endpoint and SAS": {
			trigger: trig("azure-queue", 0, azureMeta("queueName", "q", "connectionFromEnv", "STORAGE",
				"connection", "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;SharedAccessSignature=sv=2020&sig=abc")),
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				if got := c.(*AzureQueueConfig).Storage.ServiceURL; got != "http://127.0.0.1:10001/devstoreaccount1/" {
					t.Errorf("ServiceURL %q", got)
				}
			},
		},
		"the TriggerAuthentication wins over the metadata": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta("queueName", "q", "connection", "AccountName=other;AccountKey=x")), auth),
			check: func(t *testing.T, c Config) {
				if got := string(c.(*AzureQueueConfig).Storage.Connection); got != azureTestConn {
					t.Errorf("connection %q", got)
				}
			},
		},
		"private cloud": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta("queueName", "q", "cloud", "private", "endpointSuffix", "queue.local")), auth),
			check: func(t *testing.T, c Config) {
				if got := c.(*AzureQueueConfig).Storage.EndpointSuffix; got != "queue.local" {
					t.Errorf("EndpointSuffix %q", got)
				}
			},
		},
		"endpointSuffix without Private": {
			trigger:      withAuth(trig("azure-queue", 0, azureMeta("queueName", "q", "endpointSuffix", "queue.local")), auth),
			wantWarnings: []string{"trigger 0 (azure-queue): endpointSuffix is ignored unless cloud is Private"},
		},
		"queueName missing": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta()), auth),
			wantErr: "trigger 0 (azure-queue): queueName is required",
		},
		"no connection": {
			trigger: trig("azure-queue", 0, azureMeta("queueName", "q")),
			wantErr: "trigger 0 (azure-queue): connection is required: ebb reads Azure Storage with a connection string only",
		},
		"pod identity (accountName only)": {
			trigger: trig("azure-queue", 0, azureMeta("queueName", "q", "accountName", "acct")),
			wantErr: "pod identity (azure-workload) is not supported (accountName without a connection string means pod identity",
		},
		"connection not key=value": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta("queueName", "q")), map[string]string{"connection": "just-a-key"}),
			wantErr: "connection is not a valid Azure Storage connection string: it must be key=value pairs separated by semicolons",
		},
		"connection without account or endpoint": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta("queueName", "q")), map[string]string{"connection": "AccountKey=x"}),
			wantErr: "it needs AccountName or QueueEndpoint",
		},
		"connection without key or signature": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta("queueName", "q")), map[string]string{"connection": "AccountName=a"}),
			wantErr: "it needs AccountName with AccountKey, or SharedAccessSignature",
		},
		"endpoint and key without account": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta("queueName", "q")), map[string]string{"connection": "QueueEndpoint=http://h/a;AccountKey=x"}),
			wantErr: "it needs AccountName with AccountKey, or SharedAccessSignature",
		},
		"blob endpoint is not a queue endpoint": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta("queueName", "q")), map[string]string{"connection": "BlobEndpoint=http://h/a;SharedAccessSignature=s"}),
			wantErr: "it needs AccountName or QueueEndpoint",
		},
		"bad strategy": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta("queueName", "q", "queueLengthStrategy", "visible")), auth),
			wantErr: `queueLengthStrategy "visible" must be one of all, visibleonly`,
		},
		"queueLength not an integer": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta("queueName", "q", "queueLength", "2.5")), auth),
			wantErr: `queueLength "2.5" is not an integer`,
		},
		"activationQueueLength not an integer": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta("queueName", "q", "activationQueueLength", "x")), auth),
			wantErr: `activationQueueLength "x" is not an integer`,
		},
		"unknown cloud": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta("queueName", "q", "cloud", "Mars")), auth),
			wantErr: `cloud "Mars" is not one of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud, AzureGermanCloud, Private`,
		},
		"private cloud without suffix": {
			trigger: withAuth(trig("azure-queue", 0, azureMeta("queueName", "q", "cloud", "Private")), auth),
			wantErr: "endpointSuffix is required when cloud is Private",
		},
		"utilization refused": {
			trigger: withMetricType(withAuth(trig("azure-queue", 0, azureMeta("queueName", "q")), auth), autoscalingv2.UtilizationMetricType),
			wantErr: "metricType Utilization is supported only by cpu and memory triggers",
		},
		"unknown key": {
			trigger:      withAuth(trig("azure-queue", 0, azureMeta("queueName", "q", "useAAdPodIdentity", "true")), auth),
			wantWarnings: []string{`unknown metadata key "useAAdPodIdentity" is ignored`},
		},
	})
}

func TestParseAzureBlob(t *testing.T) {
	auth := map[string]string{"connection": azureTestConn}
	blob := func(c Config) *AzureBlobConfig { return c.(*AzureBlobConfig) }
	runParseCases(t, map[string]parseCase{
		"defaults": {
			trigger:    withAuth(trig("azure-blob", 0, azureMeta("blobContainerName", "uploads")), auth),
			wantSpec:   ext("s0-azure-blob-uploads", autoscalingv2.AverageValueMetricType, "5"),
			wantTarget: "5",
			noWarnings: true,
			check: func(t *testing.T, c Config) {
				activation(t, c, 0)
				b := blob(c)
				if b.BlobCount != 5 || b.Delimiter != "/" || b.Prefix != "" || b.Flat() || !b.Matches("anything") ||
					b.Storage.ServiceURL != "https://acct.blob.core.windows.net/" || b.Storage.EndpointSuffix != "blob.core.windows.net" {
					t.Errorf("config %+v", b)
				}
			},
		},
		"prefix gets the delimiter, index 1, Value": {
			trigger: withMetricType(withAuth(trig("azure-blob", 1, azureMeta("blobContainerName", "in.box", "blobCount", "10",
				"activationBlobCount", "2", "blobPrefix", "logs", "blobDelimiter", "|", "cloud", "AzureUSGovernmentCloud")), auth),
				autoscalingv2.ValueMetricType),
			wantSpec:   ext("s1-azure-blob-in-box", autoscalingv2.ValueMetricType, "10"),
			wantTarget: "10",
			check: func(t *testing.T, c Config) {
				activation(t, c, 2)
				b := blob(c)
				if b.Delimiter != "|" || b.Prefix != "logs|" || b.Flat() || b.Storage.EndpointSuffix != "blob.core.usgovcloudapi.net" {
					t.Errorf("config %+v", b)
				}
			},
		},
		"recursive drops the delimiter": {
			trigger: withAuth(trig("azure-blob", 0, azureMeta("blobContainerName", "c", "blobPrefix", "logs", "recursive", "true")), auth),
			check: func(t *testing.T, c Config) {
				b := blob(c)
				if b.Delimiter != "" || b.Prefix != "logs" || !b.Flat() || !b.Recursive {
					t.Errorf("config %+v", b)
				}
			},
		},
		"glob pattern": {
			trigger: withAuth(trig("azure-blob", 0, azureMeta("blobContainerName", "c", "globPattern", "in/*.{csv,json}")), auth),
			check: func(t *testing.T, c Config) {
				b := blob(c)
				if !b.Flat() || !b.Matches("in/a.csv") || !b.Matches("in/x/y.json") || b.Matches("in/a.txt") || b.Matches("out/a.csv") {
					t.Errorf("glob %q matches wrongly", b.GlobPattern)
				}
			},
		},
		"connection from the environment": {
			trigger: trig("azure-blob", 0, azureMeta("blobContainerName", "c", "connectionFromEnv", "STORAGE", "connection", "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;AccountName=devstoreaccount1;AccountKey=a2V5")),
			check: func(t *testing.T, c Config) {
				if got := blob(c).Storage.ServiceURL; got != "http://127.0.0.1:10000/devstoreaccount1/" {
					t.Errorf("ServiceURL %q", got)
				}
			},
			noWarnings: true,
		},
		"container missing": {
			trigger: withAuth(trig("azure-blob", 0, azureMeta()), auth),
			wantErr: "trigger 0 (azure-blob): blobContainerName is required",
		},
		"no connection": {
			trigger: trig("azure-blob", 0, azureMeta("blobContainerName", "c", "accountName", "acct")),
			wantErr: "trigger 0 (azure-blob): connection is required",
		},
		"queue endpoint is not a blob endpoint": {
			trigger: withAuth(trig("azure-blob", 0, azureMeta("blobContainerName", "c")), map[string]string{"connection": "QueueEndpoint=http://h/a;SharedAccessSignature=s"}),
			wantErr: "it needs AccountName or BlobEndpoint",
		},
		"bad glob": {
			trigger: withAuth(trig("azure-blob", 0, azureMeta("blobContainerName", "c", "globPattern", "a[b")), auth),
			wantErr: `globPattern "a[b" is not a valid glob pattern: unclosed [`,
		},
		"recursive not a bool": {
			trigger: withAuth(trig("azure-blob", 0, azureMeta("blobContainerName", "c", "recursive", "yes")), auth),
			wantErr: `recursive "yes" must be true or false`,
		},
		"blobCount not an integer": {
			trigger: withAuth(trig("azure-blob", 0, azureMeta("blobContainerName", "c", "blobCount", "1e3")), auth),
			wantErr: `blobCount "1e3" is not an integer`,
		},
		"activationBlobCount not an integer": {
			trigger: withAuth(trig("azure-blob", 0, azureMeta("blobContainerName", "c", "activationBlobCount", "-")), auth),
			wantErr: `activationBlobCount "-" is not an integer`,
		},
	})
}

func TestAzureConnectionNeverInErrors(t *testing.T) {
	const secret = "S3CR3T-azure"
	for _, conn := range []string{
		secret, secret + ";x", "AccountName=" + secret, "AccountKey=" + secret, "QueueEndpoint=" + secret + ";AccountKey=" + secret,
		"AccountName=a;AccountKey=" + secret + ";broken",
	} {
		for _, typ := range []string{"azure-queue", "azure-blob"} {
			for _, tr := range []Trigger{
				withAuth(trig(typ, 0, azureMeta("queueName", "q", "blobContainerName", "c")), map[string]string{"connection": conn}),
				trig(typ, 0, azureMeta("queueName", "q", "blobContainerName", "c", "connection", conn)),
				trig(typ, 0, azureMeta("queueName", "q", "blobContainerName", "c", "connection", conn, "connectionFromEnv", "E")),
			} {
				_, warnings, err := Parse(tr)
				if err == nil {
					t.Errorf("%s %q: want an error", typ, conn)
					continue
				}
				for _, s := range append(warnings, err.Error()) {
					if strings.Contains(s, "S3CR3T") {
						t.Errorf("%s: %q reveals the connection string", typ, s)
					}
				}
			}
		}
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		noMatch []string
		wantErr string
	}{
		{pattern: "*", match: []string{"", "a", "a/b/c"}},
		{pattern: "**.csv", match: []string{".csv", "a/b.csv"}, noMatch: []string{"a.csv.bak"}},
		{pattern: "a?c", match: []string{"abc", "a/c", "aéc"}, noMatch: []string{"ac", "abbc"}},
		{pattern: "[abc]x", match: []string{"ax", "cx"}, noMatch: []string{"dx", "x"}},
		{pattern: "[!abc]x", match: []string{"dx", "/x"}, noMatch: []string{"ax"}},
		{pattern: "[a-c]", match: []string{"b"}, noMatch: []string{"d", "-"}},
		{pattern: "[!a-c]", match: []string{"d"}, noMatch: []string{"a"}},
		{pattern: `[\]]`, match: []string{"]"}},
		{pattern: `[-]`, match: []string{"-"}},
		{pattern: "{a,b*,c{d,e}}", match: []string{"a", "bxx", "cd", "ce"}, noMatch: []string{"c", "ab"}},
		{pattern: "a,b}", match: []string{"a,b}"}},
		{pattern: `\*\?\[\{x`, match: []string{"*?[{x"}, noMatch: []string{"a?[{x"}},
		{pattern: "a.b+c(d)$^|", match: []string{"a.b+c(d)$^|"}, noMatch: []string{"axb+c(d)$^|"}},
		{pattern: "x\ny", match: []string{"x\ny"}},
		{pattern: "a[b", wantErr: "unclosed ["},
		{pattern: "[]", wantErr: "empty []"},
		{pattern: "[!]", wantErr: "empty []"},
		{pattern: "[z-a]", wantErr: "range z-a is reversed"},
		{pattern: "[a-cd]", wantErr: "must end after y with ]"},
		{pattern: "{a,b", wantErr: "unclosed {"},
		{pattern: `a\`, wantErr: "trailing backslash"},
		{pattern: "\xff", wantErr: "invalid UTF-8"},
		{pattern: strings.Repeat("{", 500) + "a" + strings.Repeat("}", 500), match: []string{"a"}},
		{pattern: strings.Repeat("a", maxGlobLength+1), wantErr: "longer than"},
	}
	for _, tc := range tests {
		g, err := compileGlob(tc.pattern)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.pattern, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.pattern, err)
			continue
		}
		for _, s := range tc.match {
			if !g.Match(s) {
				t.Errorf("%q does not match %q", tc.pattern, s)
			}
		}
		for _, s := range tc.noMatch {
			if g.Match(s) {
				t.Errorf("%q matches %q", tc.pattern, s)
			}
		}
	}
}
