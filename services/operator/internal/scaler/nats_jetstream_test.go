package scaler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsServer is a nats-server process owned by a test.
type natsServer struct {
	t       *testing.T
	name    string
	dir     string
	port    int // client port
	monPort int // HTTP monitoring port
	cmd     *exec.Cmd
	exited  chan struct{}
	once    sync.Once
}

// natsServerBinary finds Debian's nats-server (in /usr/sbin, which is not
// on every PATH).
func natsServerBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server"
	}
	t.Fatal("nats-server is not installed: run hack/install-event-sources.sh (Debian package nats-server)")
	return ""
}

// startNATS starts a nats-server on loopback, with its client and
// monitoring ports chosen by the server (read back from its ports file)
// and its store in a temporary directory; extra arguments ("-js" for
// JetStream, cluster settings) are appended. It returns an error when the
// server exits before listening (a cluster port taken meanwhile).
func startNATS(t *testing.T, name string, extra ...string) (*natsServer, error) {
	t.Helper()
	bin := natsServerBinary(t)
	ns := &natsServer{t: t, name: name, dir: t.TempDir(), exited: make(chan struct{})}
	args := append([]string{"-a", "127.0.0.1", "-p", "-1", "-m", "-1", "-sd", ns.dir, "-n", name,
		"--ports_file_dir", ns.dir, "-l", filepath.Join(ns.dir, "log")}, extra...)
	ns.cmd = exec.Command(bin, args...)
	if err := ns.cmd.Start(); err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	go func() { _ = ns.cmd.Wait(); close(ns.exited) }()
	t.Cleanup(ns.stop)

	portsFile := filepath.Join(ns.dir, fmt.Sprintf("nats-server_%d.ports", ns.cmd.Process.Pid))
	deadline := time.After(20 * time.Second)
	for {
		if b, err := os.ReadFile(portsFile); err == nil {
			var ports struct{ Nats, Monitoring []string }
			if err := json.Unmarshal(b, &ports); err == nil && len(ports.Nats) > 0 && len(ports.Monitoring) > 0 {
				ns.port, ns.monPort = urlPort(t, ports.Nats[0]), urlPort(t, ports.Monitoring[0])
				return ns, nil
			}
		}
		select {
		case <-ns.exited:
			return nil, fmt.Errorf("nats-server %s exited:\n%s", name, ns.logText())
		case <-deadline:
			t.Fatalf("nats-server %s wrote no ports file:\n%s", name, ns.logText())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func mustStartNATS(t *testing.T, name string, extra ...string) *natsServer {
	t.Helper()
	ns, err := startNATS(t, name, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func urlPort(t *testing.T, raw string) int {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("port of %q: %v", raw, err)
	}
	return p
}

func (ns *natsServer) logText() string {
	b, _ := os.ReadFile(filepath.Join(ns.dir, "log"))
	return string(b)
}

// waitReady waits until the server's monitoring endpoint answers path
// (/healthz?js-enabled-only=true: JetStream is up) with 200.
func (ns *natsServer) waitReady(path string) {
	ns.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	u := fmt.Sprintf("http://127.0.0.1:%d%s", ns.monPort, path)
	for {
		resp, err := http.Get(u)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			ns.t.Fatalf("nats-server %s not ready at %s: %v (response %v)\n%s", ns.name, u, err, resp, ns.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (ns *natsServer) stop() {
	ns.once.Do(func() {
		_ = ns.cmd.Process.Kill()
		<-ns.exited
	})
}

func (ns *natsServer) endpoint() string { return "127.0.0.1:" + strconv.Itoa(ns.monPort) }

// connectJS connects a NATS client for loading data.
func natsConnect(t *testing.T, port int) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port), nats.Timeout(5*time.Second), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func jsPublish(t *testing.T, js jetstream.JetStream, subject string, n int) {
	t.Helper()
	for i := range n {
		if _, err := js.Publish(t.Context(), subject, []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// jsFetch takes n messages from the consumer without acknowledging them.
func jsFetch(t *testing.T, c jetstream.Consumer, n int) []jetstream.Msg {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if len(msgs) != n {
		t.Fatalf("fetched %d messages, want %d", len(msgs), n)
	}
	return msgs
}

func jsAckAll(t *testing.T, msgs []jetstream.Msg) {
	t.Helper()
	for _, m := range msgs {
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}

func buildNATS(t *testing.T, meta map[string]string, deps Deps) *natsJetStreamScaler {
	t.Helper()
	s, err := New(parseTrigger(t, "nats-jetstream", meta, nil), deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*natsJetStreamScaler)
}

func natsTestMeta(endpoint string, kv ...string) map[string]string {
	m := map[string]string{
		"natsServerMonitoringEndpoint": endpoint, "account": "$G", "stream": "orders", "consumer": "workers",
		"lagThreshold": "10", "activationLagThreshold": "2",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}

func TestNATSJetStream(t *testing.T) {
	ctx := t.Context()
	ns := mustStartNATS(t, "single", "-js")
	ns.waitReady("/healthz?js-enabled-only=true")
	_, js := natsConnect(t, ns.port)
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "orders", Subjects: []string{"orders.>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}

	s := buildNATS(t, natsTestMeta(ns.endpoint()), Deps{})
	byID := buildNATS(t, natsTestMeta(ns.endpoint(), "account", "", "accountID", "$G"), Deps{})

	pollWant(t, s, 0, false) // empty
	jsPublish(t, js, "orders.new", 7)
	pollWant(t, s, 7, true) // 7 pending
	pollWant(t, byID, 7, true)
	msgs := jsFetch(t, consumer, 4)
	pollWant(t, s, 7, true) // 3 pending + 4 delivered, not acknowledged
	jsAckAll(t, msgs)
	pollWant(t, s, 3, true)
	jsAckAll(t, jsFetch(t, consumer, 1))
	pollWant(t, s, 2, false) // at the activation threshold: not active
	jsAckAll(t, jsFetch(t, consumer, 2))
	pollWant(t, s, 0, false) // drained

	// A consumer that does not exist yet reads as the stream's last
	// sequence number, as KEDA reads it.
	noConsumer := buildNATS(t, natsTestMeta(ns.endpoint(), "consumer", "nobody"), Deps{})
	pollWant(t, noConsumer, 7, true)

	// A stream or an account that does not exist: bad response.
	for name, meta := range map[string]map[string]string{
		"no such stream":  natsTestMeta(ns.endpoint(), "stream", "nothing"),
		"no such account": natsTestMeta(ns.endpoint(), "account", "other"),
	} {
		_, err := buildNATS(t, meta, Deps{}).Poll(ctx)
		checkKind(t, err, ErrBadResponse)
		if !strings.Contains(err.Error(), "nats-jetstream trigger (http://"+ns.endpoint()+"/jsz)") || !strings.Contains(err.Error(), "not found") {
			t.Errorf("%s: error %q", name, err)
		}
	}

	// A server without JetStream answers /jsz without the stream.
	noJS := mustStartNATS(t, "plain")
	noJS.waitReady("/healthz")
	_, err = buildNATS(t, natsTestMeta(noJS.endpoint()), Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	t.Logf("without JetStream: %v", err)
	noJS.stop()

	// A cancelled poll.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Poll(cctx)
	checkKind(t, err, ErrUnreachable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}

	// Server gone: unreachable.
	ns.stop()
	_, err = s.Poll(ctx)
	checkKind(t, err, ErrUnreachable)

	// Close is idempotent; polls after it fail with ErrClosed.
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.Poll(ctx)
	checkKind(t, err, ErrClosed)
}

// TestNATSJetStreamCluster runs a three-node JetStream cluster whose nodes
// advertise the names node-1, node-2 and node-3 (as pods behind a
// headless service do). The scaler's HTTP client resolves those names to
// the nodes' loopback monitoring ports, so it follows the consumer's
// leader as it would across pods.
func TestNATSJetStreamCluster(t *testing.T) {
	ctx := t.Context()
	// The route ports must be known before the nodes start: should one be
	// taken meanwhile, start the cluster again on others.
	const nodes = 3
	var servers map[string]*natsServer
	for attempt := 1; servers == nil; attempt++ {
		var routes []string
		for range nodes {
			routes = append(routes, "nats-route://"+closedAddress(t))
		}
		servers = map[string]*natsServer{}
		for i := range nodes {
			name := fmt.Sprintf("node-%d", i+1)
			ns, err := startNATS(t, name, "-js", "--cluster_name", "ebb", "--cluster", routes[i],
				"--routes", strings.Join(routes, ","), "--client_advertise", name+":4222")
			if err != nil {
				if attempt == 3 {
					t.Fatal(err)
				}
				for _, started := range servers {
					started.stop()
				}
				servers = nil
				break
			}
			servers[name] = ns
		}
	}
	monitoring := map[string]string{}
	for name, ns := range servers {
		monitoring[name] = ns.endpoint()
		monitoring[name+".nats"] = ns.endpoint()
	}
	// "nats" is node-1 seen through a proxy that hides the advertised
	// connect URLs and names the routes as a StatefulSet's pods
	// (node-1.nats:6222, ...), the other way KEDA finds the nodes.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get("http://" + servers["node-1"].endpoint() + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		if r.URL.Path == "/varz" {
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			delete(doc, "connect_urls")
			doc["cluster"] = map[string]any{"urls": []string{"node-1.nats:6222", "node-2.nats:6222", "node-3.nats:6222"}}
			body, _ = json.Marshal(doc)
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	}))
	t.Cleanup(proxy.Close)
	monitoring["nats"] = strings.TrimPrefix(proxy.URL, "http://")
	for _, ns := range servers {
		ns.waitReady("/healthz?js-enabled-only=true")
	}
	// Names of the nodes to their loopback ports; nothing else is dialled,
	// and nothing is looked up. A blocked node cannot be reached.
	var dialer net.Dialer
	var blockMu sync.Mutex
	blocked := map[string]bool{}
	block := func(name string, b bool) {
		blockMu.Lock()
		defer blockMu.Unlock()
		blocked[name] = b
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			real, ok := monitoring[host]
			blockMu.Lock()
			b := blocked[host]
			blockMu.Unlock()
			if !ok || b {
				return nil, fmt.Errorf("test dialer: host %q unreachable", host)
			}
			return dialer.DialContext(ctx, network, real)
		},
	}}
	t.Cleanup(client.CloseIdleConnections)

	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", servers["node-1"].port), nats.Timeout(5*time.Second),
		nats.MaxReconnects(0), nats.IgnoreDiscoveredServers())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The cluster elects its meta leader after the nodes are up.
	var stream jetstream.Stream
	deadline := time.Now().Add(30 * time.Second)
	for {
		stream, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "orders", Subjects: []string{"orders.>"},
			Storage: jetstream.MemoryStorage, Replicas: 3})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create stream: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	consumer, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	// leader is the consumer's leader, "" while the cluster cannot say
	// (just after a node stopped, for a moment).
	leader := func() string {
		info, err := consumer.Info(ctx)
		if err != nil || info.Cluster == nil {
			return ""
		}
		return info.Cluster.Leader
	}
	// pollUntil polls until the scaler reads want from the consumer's
	// current leader: replicas and the monitoring documents follow the
	// stream within moments.
	s := buildNATS(t, natsTestMeta("node-1:8222"), Deps{HTTPClient: client})
	pollUntil := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			r, err := s.Poll(ctx)
			l := leader()
			if err == nil && r.Value.Value() == want && s.leaderName == l && l != "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("poll: %v, err %v; scaler's leader %q (%s), consumer's leader %q; want %d", r.Value.String(), err, s.leaderName, s.leaderURL, l, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	pollUntil(0)
	jsPublish(t, js, "orders.new", 5)
	pollUntil(5)
	first := s.leaderName
	t.Logf("consumer leader %s, read at %s", first, s.leaderURL)

	// stepDown moves the consumer's leadership to another node.
	stepDown := func(from string) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			if l := leader(); l != "" && l != from {
				return l
			}
			if time.Now().After(deadline) {
				t.Fatalf("the consumer's leadership did not move from %s", from)
			}
			_, _ = nc.Request("$JS.API.CONSUMER.LEADER.STEPDOWN.orders.workers", nil, 2*time.Second)
			time.Sleep(300 * time.Millisecond)
		}
	}
	second := stepDown(first)
	jsAckAll(t, jsFetch(t, consumer, 2))
	pollUntil(3)
	if s.leaderName != second {
		t.Fatalf("scaler reads %s, leader is %s", s.leaderName, second)
	}

	// The nodes named after the routes.
	viaRoutes := buildNATS(t, natsTestMeta("nats:8222"), Deps{HTTPClient: client})
	pollWant(t, viaRoutes, 3, true)
	if want := "http://" + second + ".nats:8222/jsz?acc=%24G&config=true&consumers=true"; viaRoutes.leaderURL != want {
		t.Fatalf("scaler reads %s, want %s", viaRoutes.leaderURL, want)
	}

	// Another endpoint, while the leader cannot be reached: the scaler
	// reports the leader's error, then reads it once it is back.
	var other string
	for name := range servers {
		if name != second {
			other = name
		}
	}
	viaOther := buildNATS(t, natsTestMeta(other+":8222"), Deps{HTTPClient: client})
	block(second, true)
	_, err = viaOther.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	if !strings.Contains(err.Error(), "node "+second+":8222") {
		t.Errorf("error %q does not name the leader", err)
	}
	block(second, false)
	pollWant(t, viaOther, 3, true)
	if viaOther.leaderName != second {
		t.Fatalf("scaler reads %s, leader is %s", viaOther.leaderName, second)
	}

	// A node down (neither the endpoint nor the leader), then the
	// leadership moves again: the scaler finds the new leader.
	var down string
	for name := range servers {
		if name != "node-1" && name != second {
			down = name
		}
	}
	servers[down].stop()
	third := stepDown(second)
	t.Logf("stopped %s; consumer leader %s -> %s", down, second, third)
	jsAckAll(t, jsFetch(t, consumer, 1))
	pollUntil(2)

	// No consumer of that name anywhere in the cluster: KEDA fails too.
	_, err = buildNATS(t, natsTestMeta("node-1:8222", "consumer", "nobody"), Deps{HTTPClient: client}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
}
