package scalers

import "testing"

// FuzzBeanstalkd parses beanstalkd triggers with fuzzed metadata:
// Parse must not panic, an error must name the trigger, and authentication
// parameters (beanstalkd reads none) never show.
func FuzzBeanstalkd(f *testing.F) {
	// Seeds: server, tube, value, activationValue, includeDelayed,
	// timeout, an authentication value, whether the trigger only feeds a
	// scaling modifiers formula, and whether secrets are marked.
	f.Add("beanstalkd:11300", "default", "15", "", "", "", "", false, false)
	f.Add("beanstalkd", "jobs/high.prio", "2.5", "10", "true", "5", "pw", false, true)
	f.Add("[::1]", "t", "0", "", "false", "0", "", true, false)
	f.Add("", "", "", "", "", "", "", false, false)
	f.Add("", "", "", "", "", "", "x", true, true)
	f.Add("b:1", "two words", "x", "1,5", "yes", "1.5", "pw", false, true)
	f.Add("b:1", "-x\r\nput", "-1", "NaN", "TRUE", "-5", "s", false, true)
	f.Add("b:notaport", "t", "1e3", "+1", "false", "86401", "s", true, true)
	f.Fuzz(func(t *testing.T, server, tube, value, activation, includeDelayed, timeout, authValue string, asMetricSource, marked bool) {
		md := map[string]string{
			"server": server, "tube": tube, "value": value, "activationValue": activation,
			"includeDelayed": includeDelayed, "timeout": timeout,
		}
		ap := map[string]string{"server": authValue, "tube": authValue, "password": authValue}
		tr := Trigger{Index: 0, Type: "beanstalkd", Metadata: md, AuthParams: ap, AsMetricSource: asMetricSource}
		checkParseFuzz(t, tr, nil, marked)
	})
}
