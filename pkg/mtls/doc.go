// Package mtls builds mutual TLS configurations for ebb's gRPC links on top
// of a tlsfiles.Source, so that certificate and CA reloads apply to the next
// handshake without a restart.
//
// The server requires a client certificate and verifies it against the CA
// pool current at handshake time; the client presents its current
// certificate and verifies the server's certificate and name against its
// current CA pool. A reload never touches connections already established:
// requests in flight keep flowing, and new connections use the new files.
// Because established connections are not re-verified, a server that must
// stop trusting a CA within a bounded time should also bound connection
// lifetime (for gRPC, keepalive.ServerParameters.MaxConnectionAge).
//
// Each service uses one certificate both to serve and to call, so its
// cert-manager Certificate needs both the "server auth" and the "client
// auth" usages.
package mtls
