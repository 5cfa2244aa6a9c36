package scaler

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/api/resource"
)

// etcd is the real etcd server ebb's local cluster runs, built by
// hack/build-cluster-bins.sh (and cached): $EBB_ETCD when set, otherwise
// the path the script reports.
var etcdBin struct {
	once sync.Once
	path string
	err  error
}

func etcdBinary(t *testing.T) string {
	t.Helper()
	etcdBin.once.Do(func() {
		if p := os.Getenv("EBB_ETCD"); p != "" {
			etcdBin.path = p
			return
		}
		root, err := etcdTestRepoRoot()
		if err != nil {
			etcdBin.err = err
			return
		}
		// Instant when cached; a cold cache builds the cluster's binaries.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "build-cluster-bins.sh"))
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		// The script builds pinned tools in modules of their own: the
		// flags of this test's build (a -modfile, say) are not for them.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GOFLAGS=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		if err := cmd.Run(); err != nil {
			etcdBin.err = fmt.Errorf("hack/build-cluster-bins.sh: %v\n%s", err, stderr.String())
			return
		}
		sc := bufio.NewScanner(&stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "etcd="); ok {
				etcdBin.path = p
			}
		}
		if etcdBin.path == "" {
			etcdBin.err = errors.New("hack/build-cluster-bins.sh reported no etcd")
		}
	})
	if etcdBin.err == nil {
		if _, err := os.Stat(etcdBin.path); err != nil {
			etcdBin.err = err
		}
	}
	if etcdBin.err != nil {
		t.Fatalf("no etcd binary for the etcd scaler test (set EBB_ETCD, or make hack/build-cluster-bins.sh work): %v", etcdBin.err)
	}
	return etcdBin.path
}

// etcdTestRepoRoot is $EBB_ROOT, or the nearest parent of the working
// directory holding go.work and hack/build-cluster-bins.sh.
func etcdTestRepoRoot() (string, error) {
	if root := os.Getenv("EBB_ROOT"); root != "" {
		return root, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		_, errWork := os.Stat(filepath.Join(dir, "go.work"))
		_, errScript := os.Stat(filepath.Join(dir, "hack", "build-cluster-bins.sh"))
		if errWork == nil && errScript == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no ebb repository (go.work and hack/build-cluster-bins.sh) above the working directory; set EBB_ROOT")
		}
		dir = parent
	}
}

// etcdServer is a single-member etcd owned by a test.
type etcdServer struct {
	t        *testing.T
	dir      string
	endpoint string // host:port of the client URL
	scheme   string
	cmd      *exec.Cmd
	exited   chan struct{}
	once     sync.Once
}

// startEtcd starts a one-member etcd on free loopback ports, data in a
// temporary directory; extra flags are appended (TLS).
// Should a port be taken meanwhile, it starts again on others.
func startEtcd(t *testing.T, scheme string, extra ...string) *etcdServer {
	t.Helper()
	bin := etcdBinary(t)
	for attempt := 1; ; attempt++ {
		es := &etcdServer{t: t, dir: t.TempDir(), scheme: scheme, exited: make(chan struct{})}
		es.endpoint = closedAddress(t)
		peer := "http://" + closedAddress(t)
		client := scheme + "://" + es.endpoint
		args := append([]string{
			"--name", "ebb", "--data-dir", filepath.Join(es.dir, "data"),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "ebb=" + peer,
			"--log-level", "info", "--log-outputs", filepath.Join(es.dir, "log"),
			"--unsafe-no-fsync", "--quota-backend-bytes", "67108864",
		}, extra...)
		es.cmd = exec.Command(bin, args...)
		if err := es.cmd.Start(); err != nil {
			t.Fatalf("start etcd: %v", err)
		}
		go func() { _ = es.cmd.Wait(); close(es.exited) }()
		t.Cleanup(es.stop)
		if es.waitReady() {
			return es
		}
		if attempt == 3 {
			t.Fatalf("etcd did not start:\n%s", es.logText())
		}
		es.stop()
	}
}

func (es *etcdServer) logText() string {
	b, _ := os.ReadFile(filepath.Join(es.dir, "log"))
	return string(b)
}

// waitReady waits until etcd logs that it serves clients, or exits.
func (es *etcdServer) waitReady() bool {
	deadline := time.After(30 * time.Second)
	for {
		select {
		case <-es.exited:
			return false
		case <-deadline:
			return false
		case <-time.After(100 * time.Millisecond):
		}
		if strings.Contains(es.logText(), "serving client traffic") {
			return true
		}
	}
}

func (es *etcdServer) stop() {
	es.once.Do(func() {
		_ = es.cmd.Process.Kill()
		<-es.exited
	})
}

// admin is a client for loading data (plain etcd only).
func (es *etcdServer) admin() *clientv3.Client {
	es.t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{es.endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		es.t.Fatal(err)
	}
	es.t.Cleanup(func() { _ = c.Close() })
	return c
}

func buildEtcd(t *testing.T, meta, auth map[string]string) *etcdScaler {
	t.Helper()
	s, err := New(parseTrigger(t, "etcd", meta, auth), Deps{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*etcdScaler)
}

func etcdWant(t *testing.T, s Scaler, want string, wantActive bool) {
	t.Helper()
	r, err := s.Poll(t.Context())
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	if r.Value.Cmp(resource.MustParse(want)) != 0 || r.Active != wantActive {
		t.Fatalf("got %s active=%v, want %s active=%v", r.Value.String(), r.Active, want, wantActive)
	}
}

func put(t *testing.T, c *clientv3.Client, key, val string) {
	t.Helper()
	if _, err := c.Put(t.Context(), key, val); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func TestEtcd(t *testing.T) {
	ctx := t.Context()
	es := startEtcd(t, "http")
	admin := es.admin()
	meta := func(kv ...string) map[string]string {
		m := map[string]string{"endpoints": es.endpoint, "watchKey": "/jobs/pending", "value": "5", "activationValue": "2"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	s := buildEtcd(t, meta(), nil)

	// No key yet: KEDA fails the same way.
	_, err := s.Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), `etcd trigger (`+es.endpoint+`): bad response from source: watchKey "/jobs/pending" does not exist`) {
		t.Errorf("error %q", err)
	}

	for _, step := range []struct {
		val, want string
		active    bool
	}{
		{"0", "0", false},
		{"2", "2", false}, // at the activation value: not active
		{"7.5", "7.5", true},
		{"12", "12", true},
		{" 3\n", "3", true},
		{"1e3", "1000", true},
		{"0.001", "1m", false},
		{"-4", "-4", false},
	} {
		put(t, admin, "/jobs/pending", step.val)
		etcdWant(t, s, step.want, step.active)
	}

	// Other endpoint forms: a URL, and a list whose first member is down.
	etcdWant(t, buildEtcd(t, meta("endpoints", "http://"+es.endpoint), nil), "-4", false)
	etcdWant(t, buildEtcd(t, meta("endpoints", closedAddress(t)+","+es.endpoint), nil), "-4", false)

	// Values that are not a number: bad response.
	for _, v := range []string{"many", "NaN", "+Inf", "", "1e400"} {
		put(t, admin, "/jobs/pending", v)
		_, err := s.Poll(ctx)
		checkKind(t, err, ErrBadResponse)
	}

	// Concurrent polls share the client.
	put(t, admin, "/jobs/pending", "9")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if r, err := s.Poll(ctx); err != nil || r.Value.Value() != 9 {
				t.Errorf("concurrent poll: %v %v", r.Value.String(), err)
			}
		})
	}
	wg.Wait()

	// A cancelled poll.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Poll(cctx)
	checkKind(t, err, ErrUnreachable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}

	// Server gone: unreachable, within the poll's bound.
	s.timeout = 2 * time.Second
	es.stop()
	start := time.Now()
	_, err = s.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("poll of a stopped server took %s", d)
	}

	// Close is idempotent; polls after it fail with ErrClosed.
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.Poll(ctx)
	checkKind(t, err, ErrClosed)
}

// TestEtcdNoIOInNew builds a scaler for endpoints nothing listens on: New
// returns at once, the poll reports the source unreachable.
func TestEtcdNoIOInNew(t *testing.T) {
	start := time.Now()
	s := buildEtcd(t, map[string]string{"endpoints": closedAddress(t), "watchKey": "k", "value": "1"},
		map[string]string{"username": "u", "password": "secret-etcd-password"})
	if d := time.Since(start); d > time.Second {
		t.Errorf("New took %s", d)
	}
	s.timeout = time.Second
	_, err := s.Poll(t.Context())
	checkKind(t, err, ErrUnreachable)
	if strings.Contains(err.Error(), "secret-etcd-password") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestEtcdAuth(t *testing.T) {
	ctx := t.Context()
	const password = "s3cr3t-etcd-pass"
	es := startEtcd(t, "http", "--auth-token", "simple", "--auth-token-ttl", "1")
	admin := es.admin()
	put(t, admin, "queue", "4")
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", password); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.UserAdd(ctx, "reader", "reader-pass"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "nothing"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "reader", "nothing"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("auth setup: %v", err)
		}
	}
	meta := map[string]string{"endpoints": es.endpoint, "watchKey": "queue", "value": "5"}

	// The right credentials.
	s := buildEtcd(t, meta, map[string]string{"username": "root", "password": password})
	etcdWant(t, s, "4", true)
	first := s.token
	if first == "" {
		t.Fatal("no token after the first poll")
	}
	etcdWant(t, s, "4", true)
	if s.token != first {
		t.Fatal("the token changed between two polls")
	}
	// The member forgets a token unused for a second (--auth-token-ttl):
	// the refused token is replaced. (A restart would not do: the member
	// replays the authentications from its log.)
	for idle := 1; s.token == first; idle++ {
		if idle > 3 {
			t.Fatal("the token was not renewed")
		}
		time.Sleep(2500 * time.Millisecond) // the token's TTL and the member's sweep
		etcdWant(t, s, "4", true)
	}

	// No credentials, wrong ones, a user without permission: the server
	// refuses (bad response), without showing the password.
	for name, auth := range map[string]map[string]string{
		"none":          nil,
		"wrong":         {"username": "root", "password": "not-" + password},
		"no permission": {"username": "reader", "password": "reader-pass"},
	} {
		_, err := buildEtcd(t, meta, auth).Poll(ctx)
		checkKind(t, err, ErrBadResponse)
		if strings.Contains(err.Error(), password) {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestEtcdTLS(t *testing.T) {
	dir := t.TempDir()
	serverTLS, caPEM := serverCert(t)
	keyDER, err := x509.MarshalPKCS8PrivateKey(serverTLS.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	clientPEM, clientKeyPEM := clientCert(t)
	files := map[string]string{
		"server.crt": caPEM,
		"server.key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		"client.crt": clientPEM, // trusted as its own CA
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	es := startEtcd(t, "https", "--cert-file", filepath.Join(dir, "server.crt"), "--key-file", filepath.Join(dir, "server.key"),
		"--client-cert-auth", "--trusted-ca-file", filepath.Join(dir, "client.crt"))

	meta := map[string]string{"endpoints": es.endpoint, "watchKey": "tls-key", "value": "1"}
	mtls := map[string]string{"tls": "enable", "ca": caPEM, "cert": clientPEM, "key": clientKeyPEM}
	s := buildEtcd(t, meta, mtls)
	_, err = s.Poll(t.Context())
	checkKind(t, err, ErrBadResponse) // the key does not exist: the server answered
	if !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("error %v", err)
	}

	// Without a client certificate, or without trusting the server: the
	// TLS handshake fails and no endpoint can be reached.
	for name, auth := range map[string]map[string]string{
		"no client certificate": {"tls": "enable", "ca": caPEM},
		"server not trusted":    {"tls": "enable", "cert": clientPEM, "key": clientKeyPEM},
		"no TLS":                nil,
	} {
		s := buildEtcd(t, meta, auth)
		s.timeout = time.Second
		_, err := s.Poll(t.Context())
		checkKind(t, err, ErrUnreachable)
		t.Logf("%s: %v", name, err)
	}

	// Configuration errors: a bad CA, a bad pair, an encrypted key.
	for name, auth := range map[string]map[string]string{
		"bad ca":   {"tls": "enable", "ca": "not pem"},
		"bad pair": {"tls": "enable", "cert": clientPEM, "key": "not pem"},
	} {
		_, err := New(parseTrigger(t, "etcd", meta, auth), Deps{})
		checkKind(t, err, ErrInvalidConfig)
		if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: error shows the key: %v", name, err)
		}
	}
	_, err = New(parseTrigger(t, "etcd", meta, map[string]string{"tls": "enable", "cert": clientPEM, "key": clientKeyPEM, "keyPassword": "pw"}), Deps{})
	checkKind(t, err, ErrNotImplemented)
}
