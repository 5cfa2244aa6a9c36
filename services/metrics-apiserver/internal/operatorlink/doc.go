// Package operatorlink is the metrics-apiserver's gRPC client to the
// operator's ebb.metrics.v1.MetricsService: "the operator link". Every
// external metric request the metrics-apiserver serves becomes one
// GetMetrics call through it.
//
// # Use
//
//	link, err := operatorlink.New(operatorlink.Config{
//		Targets:    []string{"ebb-operator.ebb-system.svc:9443"},
//		ServerName: "ebb-operator.ebb-system.svc",
//		TLS:        tlsSource, // run by the caller, see tlsfiles.Source.Run
//	}, logger)
//	err = link.RegisterMetrics(registry)
//	go link.Run(ctx)                                  // connects; closes the link when ctx is done
//	healthServer.AddReadiness("operator-link", link.Check)
//	resp, err := link.GetMetrics(requestCtx, req)     // gRPC status errors
//
// # What it guarantees
//
// The link never sits disconnected while looking healthy (the failure of
// KEDA's metrics server in kedacore/keda#8211). It is up exactly when it is
// connected to an operator replica that reports ebb.metrics.v1.MetricsService
// SERVING over the grpc.health.v1 service on the mTLS port; the operator
// reports that only on the leader whose caches are synced. Check answers
// from that state, and GetMetrics consults it before every attempt: when the
// link is down a call fails at once with a *LinkDownError (code
// UNAVAILABLE, errors.Is ErrLinkDown, message "operator link down: <why>"),
// and while it is (re)connecting and not yet counted as down a call waits
// at most 500 ms for it. "Why" is
// the last failure seen on each address (connection refused, a TLS
// handshake or certificate error, a broken connection, a probe left
// unanswered), a DNS error, or, when replicas are connected but none is
// serving, "no operator replica is serving ...".
//
// How a lost operator is noticed, and how soon:
//   - The operator stops or its connection breaks: at once. A connection
//     attempt that fails puts the link down at once; a link that is still
//     reconnecting after 1 s counts as down too.
//   - The operator's network vanishes without closing the connection, or
//     the process freezes: the link sends a grpc.health.v1 Check every
//     ProbeInterval (1 s) while it is up; one left unanswered for
//     ProbeTimeout (1.5 s) closes the connection it went on, and the link
//     is down within ProbeInterval + ProbeTimeout (2.5 s). Keepalive is the
//     backstop: gRPC pings a connection silent for KeepaliveTime (10 s, the
//     shortest gRPC allows) and closes it when the ping is not answered
//     within KeepaliveTimeout (3 s), which gRPC also sets as the socket's
//     TCP_USER_TIMEOUT.
//   - The leader steps down, or no replica is ready: the operator's health
//     status changes, gRPC's client-side health checking (a Watch stream
//     per connection) sees it at once, calls move to a replica that is
//     serving, and with none left the link is down.
//
// Reconnection needs no restart: gRPC reconnects with exponential backoff
// from 500 ms up to 2 s (±20 %), each attempt given at least 2 s, so the
// link is up again within a few seconds of the operator coming back. Dials
// to one address start at least 500 ms apart, so a peer that accepts
// connections and closes them at once cannot make the link spin (gRPC does
// not back off after a connection that was established).
//
// # Endpoints and balancing
//
// Targets are host:port. A name is resolved to all its addresses, such as
// every pod of a headless Service, and resolved again every 30 s and after
// connection failures (at most once a second), so a replaced pod's new
// address is found within seconds; IP targets are used as they are. Calls
// are balanced round robin over the connected addresses that report
// SERVING. The resolver is private to the link (grpc.WithResolvers), and
// gRPC's global dns resolver settings are not touched.
//
// # Security
//
// Every connection is mutual TLS from the tlsfiles.Source (see pkg/mtls):
// the link presents its current client certificate and verifies the
// operator's certificate against the current CA bundle and ServerName, so
// renewed files (and a new CA) apply to the next connection without a
// restart.
//
// # Deadlines and retries
//
// A GetMetrics call's deadline is the caller's or CallTimeout (10 s), the
// sooner; it covers every attempt. The operator's UNAVAILABLE answers
// (starting, not the leader, event source unreachable) are retried up to
// four attempts in all, with jittered exponential backoff from 100 ms to
// 1 s, while the deadline allows; other codes are returned as they are.
// CallTimeout bounds the whole call rather than each attempt because only
// UNAVAILABLE is retried, and the operator answers it fast: a per-attempt
// cap would only let a hanging operator cost the caller several times the
// cap.
//
// # What the operator must allow
//
// The operator's gRPC server must accept the link's keepalive pings, or
// it answers them with GOAWAY ENHANCE_YOUR_CALM ("too_many_pings") and
// drops the connection:
//
//	grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
//		MinTime:             5 * time.Second, // at most KeepaliveTime
//		PermitWithoutStream: true,
//	})
//
// It must also serve grpc.health.v1.Health on the mTLS port and set
// ebb.metrics.v1.MetricsService SERVING only while it can answer (leader,
// caches synced); a replica that never sets it is never called.
//
// # Logs and metrics
//
// The link logs each change of its state once ("Operator link up",
// "Operator link down" with the reason), each change of the resolved
// addresses, and each connection it closes for an unanswered probe; calls
// never log above verbosity 4. See Link.RegisterMetrics for the metrics.
package operatorlink
