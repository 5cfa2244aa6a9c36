// Package scalers parses and validates the metadata of ScaledObject and
// ScaledJob triggers, without touching the network, so the webhook (to
// admit or deny) and the operator (to build HPAs and scaler clients) read
// a trigger the same way.
//
// Parse turns one Trigger into a typed Config. The metadata key names,
// defaults, required keys and validation follow KEDA's scalers, so a KEDA
// manifest means the same thing to ebb; Config.MetricSpec returns the HPA
// metric ebb puts on the HPA for the trigger, identical to the one KEDA
// builds (name, target type and target quantity), without the metric
// selector, which the HPA builder adds.
//
// # Resolved values
//
// The caller resolves what a trigger refers to before calling Parse:
//
//   - AuthParams holds the parameters of the trigger's
//     TriggerAuthentication or ClusterTriggerAuthentication, already read
//     from Secrets, environment, Vault and so on.
//   - A metadata key <k>FromEnv names an environment variable of the scale
//     target's container. The caller keeps <k>FromEnv in Metadata and
//     stores the variable's value under <k>, unless <k> is already set
//     (KEDA lets a literal value win over the environment for every key
//     this package reads from both).
//
// Keys that KEDA reads only from a TriggerAuthentication or from the
// environment (a PostgreSQL password or connection string, for example)
// are ignored, with a warning, when set literally in the metadata, as KEDA
// ignores them.
//
// # Errors, warnings and secrets
//
// Errors are *Error values (several are joined with errors.Join) whose
// text names the trigger's index and type and the key at fault, for
// example "trigger 0 (redis): listName is required". Warnings are
// returned as plain strings in the same form, ready for an admission
// response: unknown metadata keys, deprecated keys, ignored keys.
//
// Neither ever contains a value that came from AuthParams, nor the value
// of a key that carries a secret (passwords, tokens, keys, connection
// strings), whatever its source. Secret fields of the typed configs have
// the type Secret, which prints as "<redacted>" with the fmt verbs.
//
// # Metric names and quantities
//
// External metric names are "s<index>-" followed by the scaler's name
// passed through Normalize, as KEDA names them. Targets parsed from a
// float are FloatQuantity (fmt "%.3f" then resource.MustParse, so 0.75
// becomes 750m and 12.5 becomes 12.500); targets parsed from an integer
// are IntQuantity.
//
// # External scalers
//
// The metric of an external or external-push trigger is defined by the
// scaler itself (its GetMetricSpec). ExternalConfig.MetricSpec therefore
// returns ErrMetricSpecFromScaler; the operator calls the scaler and
// builds the metric with ExternalConfig.MetricSpecFromScaler.
package scalers
