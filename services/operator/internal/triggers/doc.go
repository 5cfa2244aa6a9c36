// Package triggers keeps the live scalers of each ScaledObject: one
// scaler.Scaler per trigger, built once per ScaledObject generation, shared
// by every reader (the gRPC MetricsService, the scale loop), and closed when
// the generation changes or the ScaledObject goes away, so no connection
// outlives the spec it was built from.
package triggers
