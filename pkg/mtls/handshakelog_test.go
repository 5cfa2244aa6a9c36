package mtls

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
)

func TestHandshakeLoggerFoldsRepeats(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	logger := funcr.New(func(_, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{})
	h := newHandshakeLogger(logger, time.Minute)
	now := time.Unix(1000, 0)
	h.now = func() time.Time { return now }

	addr := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	bad := errors.New("tls: client didn't provide a certificate")
	other := errors.New("tls: first record does not look like a TLS handshake")

	steps := []struct {
		advance   time.Duration
		remote    string
		err       error
		wantLines int
		wantLast  string
	}{
		{remote: "10.0.0.1:1000", err: bad, wantLines: 1, wantLast: `"remoteAddr"="10.0.0.1:1000"`},
		// Same host, another port, same reason: folded.
		{remote: "10.0.0.1:1001", err: bad, wantLines: 1},
		{remote: "10.0.0.1:1002", err: bad, wantLines: 1},
		// Another reason: logged.
		{remote: "10.0.0.1:1003", err: other, wantLines: 2},
		// Another host: logged.
		{remote: "10.0.0.2:1000", err: bad, wantLines: 3},
		// After the interval: logged with the count of folded lines.
		{advance: time.Minute, remote: "10.0.0.1:1004", err: bad, wantLines: 4, wantLast: `"suppressedSinceLastLog"=2`},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		h.failed(addr(s.remote), s.err)
		mu.Lock()
		n, last := len(lines), lines[len(lines)-1]
		mu.Unlock()
		if n != s.wantLines {
			t.Fatalf("Step %d: %d lines, want %d", i, n, s.wantLines)
		}
		if !strings.Contains(last, s.wantLast) {
			t.Errorf("Step %d: last line %s, want it to contain %s", i, last, s.wantLast)
		}
	}
}
