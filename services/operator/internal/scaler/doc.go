// Package scaler reads the event sources of ScaledObject triggers.
//
// New builds one Scaler per parsed trigger (a scalers.Config from the
// shared pkg/scalers parsers). A Scaler is built once per ScaledObject
// generation, polled many times (it keeps its connection pool between
// polls), is safe for concurrent use, and is closed when the operator no
// longer needs it, so no connection outlives its trigger.
//
// Each Poll returns a Reading: the metric value the HPA sees for the
// trigger and whether the trigger is active, decided as KEDA decides it for
// that scaler (the value strictly greater than the activation threshold,
// for most).
//
// Errors returned by New and Poll are *Error values. They name the trigger
// type and the source address (with credentials, query strings and
// fragments removed) and wrap a sentinel (ErrUnreachable, ErrTimeout,
// ErrBadResponse, ErrInvalidConfig, ErrNotImplemented, ErrClosed) so callers
// can tell a source that cannot be reached from one that answered wrongly.
// Their text never contains a password, token, key or other secret of the
// trigger's configuration.
package scaler
