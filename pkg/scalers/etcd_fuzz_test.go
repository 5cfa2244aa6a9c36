package scalers

import "testing"

// FuzzEtcd parses etcd triggers with fuzzed metadata and authentication
// parameters: Parse must not panic, an error must name the trigger, and
// neither errors nor warnings may show an authentication value.
func FuzzEtcd(f *testing.F) {
	// Seeds: endpoints, watchKey, value, activationValue,
	// watchProgressNotifyInterval, username, password, tls, cert, key, and
	// whether the authentication values are marked (see
	// checkParseFuzz).
	f.Add("etcd:2379", "/jobs", "5", "", "", "", "", "", "", "", false)
	f.Add("a:1, b:2", "k", "0.75", "0.5", "30", "root", "pw", "enable", "C", "K", false)
	f.Add("", "", "", "", "", "", "", "", "", "", false)
	f.Add("", "", "", "", "", "", "", "", "", "", true)
	f.Add("a:1", "k", "x", "1,5", "0", "u", "", "on", "C", "", true)
	f.Add("a:1,,", "k", "1e3", "NaN", "-1", "", "pw", "enable", "", "K", true)
	f.Add("https://a:1", "/", "null", "+1", "1.5", "user", "p w", "disable", "", "", true)
	f.Fuzz(func(t *testing.T, endpoints, watchKey, value, activation, interval, username, password, tls, cert, key string, marked bool) {
		md := map[string]string{
			"endpoints": endpoints, "watchKey": watchKey, "value": value, "activationValue": activation,
			"watchProgressNotifyInterval": interval,
		}
		ap := map[string]string{}
		for k, v := range map[string]string{"username": username, "password": password, "tls": tls, "cert": cert, "key": key} {
			if v != "" {
				ap[k] = v
			}
		}
		checkParseFuzz(t, Trigger{Index: 0, Type: "etcd", Metadata: md, AuthParams: ap}, nil, marked)
	})
}
