package scalers

import (
	"strconv"
	"strings"
	"testing"
)

// azureFuzzMark prefixes the secret values of the Azure fuzz tests.
const azureFuzzMark = "AZSECRETMARK"

// FuzzAzureQueue parses azure-queue triggers with fuzzed metadata and
// authentication parameters: Parse must not panic, an error must name
// the trigger, and neither errors nor warnings may show the connection
// string or any authentication value.
func FuzzAzureQueue(f *testing.F) {
	// Seeds: queueName, queueLength, activationQueueLength,
	// queueLengthStrategy, accountName, cloud, endpointSuffix, connection,
	// where the connection comes from (0 TriggerAuthentication, 1 metadata,
	// 2 connectionFromEnv), and an unknown key's value.
	f.Add("orders", "", "", "", "", "", "", "AccountName=a;AccountKey=k", uint8(0), "")
	f.Add("jobs.high", "20", "3", "visibleonly", "acct", "AzureChinaCloud", "", "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=k;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1", uint8(2), "")
	f.Add("q", "5", "0", "all", "", "Private", "queue.local", "QueueEndpoint=http://h/a;SharedAccessSignature=sv=1&sig=x", uint8(1), "x")
	f.Add("", "", "", "", "", "", "", "", uint8(0), "")
	f.Add("q", "x", "1.5", "visible", "acct", "Mars", "s", "no-pairs", uint8(0), "")
	f.Add("q", "-1", "null", "ALL", "", "private", "", "AccountName=a", uint8(2), "v")
	f.Add("q:1/2", "1e3", "+1", "", "a", "", "", "AccountKey=k;;", uint8(1), "")
	f.Fuzz(func(t *testing.T, queueName, queueLength, activation, strategy, accountName, cloud, endpointSuffix, connection string, connFrom uint8, unknown string) {
		md := map[string]string{
			"queueName": queueName, "queueLength": queueLength, "activationQueueLength": activation,
			"queueLengthStrategy": strategy, "accountName": accountName, "cloud": cloud, "endpointSuffix": endpointSuffix,
		}
		if unknown != "" {
			md["unknownKey"] = unknown
		}
		checkAzureFuzz(t, "azure-queue", md, connection, connFrom)
	})
}

// checkAzureFuzz puts the connection string where connFrom says, marks it
// and every authentication value as secret (removing the mark from the
// other metadata), parses, and checks: no panic (the fuzzer reports it),
// every line of an error names the trigger and comes without a config, a
// config gives a metric spec, and the mark shows in no error or warning.
func checkAzureFuzz(t *testing.T, typ string, md map[string]string, connection string, connFrom uint8) {
	t.Helper()
	for k, v := range md {
		md[k] = strings.ReplaceAll(v, azureFuzzMark, strings.ToLower(azureFuzzMark))
	}
	secret := azureFuzzMark + connection
	ap := map[string]string{"accountName": azureFuzzMark + "a", "password": azureFuzzMark}
	switch connFrom % 3 {
	case 0:
		ap["connection"] = secret
	case 1:
		md["connection"] = secret
	case 2:
		md["connection"] = secret
		md["connectionFromEnv"] = "AZURE_STORAGE"
	}
	tr := Trigger{Index: 3, Type: typ, Metadata: md, AuthParams: ap}
	cfg, warnings, err := Parse(tr)
	prefix := "trigger " + strconv.Itoa(tr.Index) + " (" + typ + "): "
	texts := warnings
	for _, w := range warnings {
		if !strings.HasPrefix(w, prefix) || strings.Contains(w, "\n") {
			t.Fatalf("warning %q does not name the trigger on one line", w)
		}
	}
	if err != nil {
		if cfg != nil {
			t.Fatalf("Parse returned a config with error %v", err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, prefix) {
				t.Fatalf("error line %q does not name the trigger", line)
			}
		}
		texts = append(texts, err.Error())
	} else if cfg == nil {
		t.Fatal("Parse returned neither a config nor an error")
	} else if _, err := cfg.MetricSpec(); err != nil {
		t.Fatalf("MetricSpec: %v", err)
	}
	for _, s := range texts {
		if strings.Contains(s, azureFuzzMark) {
			t.Fatalf("%q reveals a secret", s)
		}
	}
}
