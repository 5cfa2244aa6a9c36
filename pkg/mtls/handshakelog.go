package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// maxTracked bounds the memory used to fold repeated failures.
const maxTracked = 1024

// handshakeLogger logs failed handshakes, folding identical ones.
type handshakeLogger struct {
	logger   klog.Logger
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	seen map[string]*seenEntry
}

type seenEntry struct {
	last       time.Time
	suppressed int
}

func newHandshakeLogger(logger klog.Logger, interval time.Duration) *handshakeLogger {
	return &handshakeLogger{logger: logger, interval: interval, now: time.Now, seen: map[string]*seenEntry{}}
}

func (h *handshakeLogger) failed(remote net.Addr, err error) {
	addr, host := "unknown", "unknown"
	if remote != nil {
		addr, host = remote.String(), remote.String()
		if hst, _, splitErr := net.SplitHostPort(addr); splitErr == nil {
			host = hst
		}
	}
	reason := classify(err)
	if errors.Is(err, io.EOF) {
		// A TCP connect without a handshake: a port probe or a client that
		// gave up. Not worth an error line.
		h.logger.V(4).Info("Connection closed before the TLS handshake", "remoteAddr", addr)
		return
	}

	key := host + "\x00" + err.Error()
	now := h.now()
	h.mu.Lock()
	e := h.seen[key]
	if e != nil && now.Sub(e.last) < h.interval {
		e.suppressed++
		h.mu.Unlock()
		return
	}
	suppressed := 0
	if e != nil {
		suppressed = e.suppressed
	}
	if len(h.seen) >= maxTracked {
		for k, v := range h.seen {
			if now.Sub(v.last) >= h.interval {
				delete(h.seen, k)
			}
		}
		if len(h.seen) >= maxTracked {
			clear(h.seen)
		}
	}
	h.seen[key] = &seenEntry{last: now}
	h.mu.Unlock()

	kv := []any{"remoteAddr", addr, "reason", reason}
	if suppressed > 0 {
		kv = append(kv, "suppressedSinceLastLog", suppressed)
	}
	h.logger.Error(err, "Refused connection: TLS handshake failed", kv...)
}

// classify names the cause of a failed server handshake in operator terms.
func classify(err error) string {
	var (
		recordErr  tls.RecordHeaderError
		unknownCA  x509.UnknownAuthorityError
		invalid    x509.CertificateInvalidError
		opErr      *net.OpError
		verifyErr  *tls.CertificateVerificationError
		hostErr    x509.HostnameError
		constraint x509.ConstraintViolationError
	)
	switch {
	case errors.As(err, &recordErr):
		return "client does not speak TLS (plaintext?)"
	case errors.As(err, &unknownCA):
		return "client certificate is not issued by a trusted CA"
	case errors.As(err, &invalid):
		switch invalid.Reason {
		case x509.Expired:
			return "client certificate has expired or is not yet valid"
		case x509.IncompatibleUsage:
			return "client certificate is not valid for client auth"
		}
		return "client certificate is invalid"
	case errors.As(err, &hostErr), errors.As(err, &constraint), errors.As(err, &verifyErr):
		return "client certificate is invalid"
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		return "client refused the handshake (does it trust this server's CA and name?)"
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		return "client presented no certificate"
	case strings.Contains(err.Error(), "ALPN"):
		return "client did not negotiate HTTP/2 (not a gRPC client?)"
	}
	return "other"
}
