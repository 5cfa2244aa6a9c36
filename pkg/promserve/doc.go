// Package promserve gives each ebb binary its private Prometheus registry,
// with the Go and process collectors, and the handler that serves it at
// /metrics (and, when asked, the runtime profiles at /debug/pprof/).
package promserve
