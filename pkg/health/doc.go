// Package health serves grpc.health.v1.Health on its own plaintext listener
// for kubelet gRPC probes, with statuses computed from checks the service
// registers.
//
// Readiness checks are registered under a service name; the status of that
// name is SERVING when all its checks pass. The status of "" and of
// "readiness" is SERVING when every readiness check and every liveness
// check passes. The status of "liveness" is SERVING when every liveness
// check passes. Point the readiness probe at "" (or "readiness") and the
// liveness probe at "liveness".
//
// Checks run in the background every interval, each with a timeout, and the
// endpoint answers from the last results, so a slow or hung check never
// makes a probe hang: a check that has not returned within its timeout
// counts as failing until it returns, and is not started again meanwhile.
//
// A process whose main loop is stuck must not stay live. The checks are
// what detect that, so liveness checks must observe the work, not the
// process: feed a Heartbeat from each loop that must keep turning (a
// controller's worker, a scale loop's tick) and register its Check as a
// liveness check; when the loop stops beating, liveness fails and the
// kubelet restarts the container.
package health
