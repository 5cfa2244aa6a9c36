package app

import (
	"context"
	"time"

	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/klog/v2"
)

// servingStatusPeriod is how often the MetricsService's status on the mTLS
// health service is re-checked: a change (caches synced, leadership won or
// lost) shows within this time.
const servingStatusPeriod = 500 * time.Millisecond

// reportServing keeps the status of service on h SERVING while ready
// returns nil and NOT_SERVING otherwise, checking at once and then every
// period, until ctx is done; it then sets NOT_SERVING, so that clients
// move to another replica as soon as shutdown begins. Clients that use
// gRPC client-side health checking on service (the metrics-apiserver) send
// calls only to the replica that can answer them: the leader.
func reportServing(ctx context.Context, h *grpchealth.Server, service string, ready func() error, period time.Duration) {
	logger := klog.FromContext(ctx).WithValues("service", service)
	current := healthpb.HealthCheckResponse_UNKNOWN
	set := func(st healthpb.HealthCheckResponse_ServingStatus, why error) {
		if st == current {
			return
		}
		h.SetServingStatus(service, st)
		if why != nil {
			logger.Info("Health of the gRPC service changed", "status", st.String(), "reason", why.Error())
		} else {
			logger.Info("Health of the gRPC service changed", "status", st.String())
		}
		current = st
	}
	check := func() {
		if err := ready(); err != nil {
			set(healthpb.HealthCheckResponse_NOT_SERVING, err)
			return
		}
		set(healthpb.HealthCheckResponse_SERVING, nil)
	}
	check()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			set(healthpb.HealthCheckResponse_NOT_SERVING, context.Cause(ctx))
			return
		case <-t.C:
			check()
		}
	}
}
