package scalers

import (
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// ExternalConfig is an external or external-push trigger. Its metrics
// come from the scaler's GetMetricSpec, so MetricSpec returns
// ErrMetricSpecFromScaler; the operator builds them with
// MetricSpecFromScaler.
//
// Metadata: scalerAddress (required), enableTLS, unsafeSsl, the legacy
// tlsCertFile; caCert, tlsClientCert and tlsClientKey come from the
// TriggerAuthentication. Every metadata key is sent to the scaler, so none
// is reported as unknown.
type ExternalConfig struct {
	ScalerAddress string
	EnableTLS     bool
	UnsafeSSL     bool
	// TLSCertFile is the legacy tlsCertFile setting: a path, in the
	// operator's file system, to the scaler's CA certificate.
	TLSCertFile   string
	CACert        Secret
	TLSClientCert Secret
	TLSClientKey  Secret
	// Push is true for external-push triggers.
	Push bool
	// ScaledObjectName and Namespace identify the ScaledObject to the
	// scaler (its ScaledObjectRef).
	ScaledObjectName string
	Namespace        string

	scalerMetadata map[string]string
	index          int
	targetType     autoscalingv2.MetricTargetType
}

func parseExternal(r *reader, push bool) Config {
	r.anyKey = true
	c := &ExternalConfig{Push: push, index: r.t.Index, ScaledObjectName: r.t.ScaledObjectName, Namespace: r.t.Namespace}
	c.targetType = r.externalTargetType()
	c.ScalerAddress = r.str(meta("scalerAddress").req())
	c.EnableTLS = r.boolean(meta("enableTLS"))
	c.UnsafeSSL = r.boolean(meta("unsafeSsl"))
	c.TLSCertFile = r.str(meta("tlsCertFile"))
	c.CACert = r.secret(auth("caCert"))
	c.TLSClientCert = r.secret(auth("tlsClientCert"))
	c.TLSClientKey = r.secret(auth("tlsClientKey"))

	// The metadata the scaler receives in ScaledObjectRef.scalerMetadata:
	// as KEDA sends it, a <k>FromEnv key carries the resolved value (and
	// is left out when the variable is empty), other keys their own value.
	c.scalerMetadata = map[string]string{}
	for k, v := range r.t.Metadata {
		if base, ok := strings.CutSuffix(k, "FromEnv"); ok && base != "" {
			if resolved := r.t.Metadata[base]; resolved != "" {
				c.scalerMetadata[k] = resolved
			}
			continue
		}
		if _, fromEnv := r.t.Metadata[k+"FromEnv"]; fromEnv {
			continue // the caller's resolved copy, sent under <k>FromEnv
		}
		c.scalerMetadata[k] = v
	}
	return c
}

// Type returns "external" or "external-push".
func (c *ExternalConfig) Type() string {
	if c.Push {
		return "external-push"
	}
	return "external"
}

// ScalerMetadata returns a copy of the metadata to send to the scaler.
func (c *ExternalConfig) ScalerMetadata() map[string]string {
	out := make(map[string]string, len(c.scalerMetadata))
	for k, v := range c.scalerMetadata {
		out[k] = v
	}
	return out
}

// MetricSpec returns ErrMetricSpecFromScaler: an external scaler defines
// its own metrics.
func (c *ExternalConfig) MetricSpec() (autoscalingv2.MetricSpec, error) {
	return autoscalingv2.MetricSpec{}, ErrMetricSpecFromScaler
}

// MetricSpecFromScaler builds the HPA metric for one entry of the
// scaler's GetMetricSpec response, as KEDA does: name s<i>-<metricName>
// (not normalized), target targetSizeFloat when it is greater than 0
// (FloatQuantity), targetSize otherwise (IntQuantity).
func (c *ExternalConfig) MetricSpecFromScaler(metricName string, targetSize int64, targetSizeFloat float64) autoscalingv2.MetricSpec {
	q := IntQuantity(targetSize)
	if targetSizeFloat > 0 {
		q = FloatQuantity(targetSizeFloat)
	}
	return externalMetricSpec(ExternalMetricName(c.index, metricName), c.targetType, q)
}

// Format prints c with its secrets and the values of its scaler metadata
// (which may hold values resolved from the environment) redacted.
func (c ExternalConfig) Format(f fmt.State, verb rune) {
	md := make(map[string]Secret, len(c.scalerMetadata))
	for k, v := range c.scalerMetadata {
		md[k] = Secret(v)
	}
	type externalConfig struct {
		ScalerAddress                       string
		EnableTLS, UnsafeSSL                bool
		TLSCertFile                         string
		CACert, TLSClientCert, TLSClientKey Secret
		Push                                bool
		ScalerMetadata                      map[string]Secret
		Index                               int
		TargetType                          autoscalingv2.MetricTargetType
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), externalConfig{
		c.ScalerAddress, c.EnableTLS, c.UnsafeSSL, c.TLSCertFile, c.CACert, c.TLSClientCert, c.TLSClientKey,
		c.Push, md, c.index, c.targetType,
	})
}
