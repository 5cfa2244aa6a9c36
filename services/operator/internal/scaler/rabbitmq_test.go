package scaler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

const (
	rabbitTestUser     = "ebb"
	rabbitTestPassword = "s3cr3t-rabbit-pass"
	// rabbitMarkerEnv marks the processes of a test's RabbitMQ node (the
	// shell, the Erlang VM, its helpers, epmd), so none is left behind.
	rabbitMarkerEnv = "EBB_RABBITMQ_TEST_DIR"
)

// rabbitServer is a throwaway RabbitMQ node with the management plugin,
// and its own epmd, all on free loopback ports.
type rabbitServer struct {
	t        *testing.T
	dir      string
	node     string
	amqpPort int
	httpPort int
	epmd     *exec.Cmd
	cmd      *exec.Cmd
	exited   chan struct{}
	once     sync.Once
}

// rabbitServerBinary finds the RabbitMQ start script that runs the node
// as the current user (/usr/sbin/rabbitmq-server switches to the
// rabbitmq user).
func rabbitServerBinary() string {
	for _, p := range []string{"/usr/lib/rabbitmq/bin/rabbitmq-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	matches, _ := filepath.Glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server")
	if len(matches) > 0 {
		return matches[len(matches)-1]
	}
	return ""
}

func rabbitFreePort(t *testing.T) int {
	t.Helper()
	addr := closedAddress(t)
	p, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	return p
}

// startRabbitMQ starts a node, waits until AMQP and the management API
// answer, and stops it (and epmd) when t ends.
func startRabbitMQ(t *testing.T) *rabbitServer {
	t.Helper()
	bin := rabbitServerBinary()
	epmdBin, epmdErr := exec.LookPath("epmd")
	if bin == "" || epmdErr != nil {
		t.Fatal("rabbitmq-server (with epmd) is not installed: run hack/install-event-sources.sh (Debian package rabbitmq-server)")
	}
	dir, err := os.MkdirTemp("", "ebb-rabbitmq-")
	if err != nil {
		t.Fatal(err)
	}
	rs := &rabbitServer{
		t:        t,
		dir:      dir,
		node:     fmt.Sprintf("ebb-test-%d-%d@localhost", os.Getpid(), rand.IntN(1_000_000)),
		amqpPort: rabbitFreePort(t),
		httpPort: rabbitFreePort(t),
		exited:   make(chan struct{}),
	}
	epmdPort, distPort := rabbitFreePort(t), rabbitFreePort(t)
	t.Cleanup(func() {
		rs.stop()
		_ = os.RemoveAll(dir)
	})

	// Statistics every 500 ms, kept at a 1 s granularity: the management
	// API's figures then lag the broker by about a second, not five.
	conf := fmt.Sprintf(`listeners.tcp.default = 127.0.0.1:%d
management.tcp.ip = 127.0.0.1
management.tcp.port = %d
default_user = %s
default_pass = %s
loopback_users = none
collect_statistics_interval = 500
management.sample_retention_policies.global.minute = 1
management.sample_retention_policies.basic.minute = 1
management.sample_retention_policies.detailed.10 = 1
disk_free_limit.absolute = 1MB
log.console = false
log.file.level = warning
`, rs.amqpPort, rs.httpPort, rabbitTestUser, rabbitTestPassword)
	for name, content := range map[string]string{
		"rabbitmq.conf":   conf,
		"enabled_plugins": "[rabbitmq_management].\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{rabbitMarkerEnv + "=" + dir}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RABBITMQ_") && !strings.HasPrefix(kv, "ERL_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"HOME="+dir, // the Erlang cookie is made here
		"ERL_EPMD_PORT="+strconv.Itoa(epmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_NODENAME="+rs.node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(rs.amqpPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(distPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONF_ENV_FILE=/dev/null",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
	)
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logFile.Close() }()

	// A private epmd, in the foreground, so it is ours to stop.
	rs.epmd = exec.Command(epmdBin, "-port", strconv.Itoa(epmdPort), "-address", "127.0.0.1")
	rs.epmd.Env = env
	rs.epmd.Stdout, rs.epmd.Stderr = logFile, logFile
	rs.epmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := rs.epmd.Start(); err != nil {
		t.Fatalf("start epmd: %v", err)
	}
	rabbitWaitFor(t, 10*time.Second, "epmd", func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(epmdPort)), time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	})

	rs.cmd = exec.Command(bin)
	rs.cmd.Dir = dir
	rs.cmd.Env = env
	rs.cmd.Stdout, rs.cmd.Stderr = logFile, logFile
	rs.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := rs.cmd.Start(); err != nil {
		t.Fatalf("start rabbitmq-server: %v", err)
	}
	go func() { _ = rs.cmd.Wait(); close(rs.exited) }()

	start := time.Now()
	deadline := start.Add(120 * time.Second)
	for {
		err := rs.ready()
		if err == nil {
			t.Logf("RabbitMQ node %s ready in %v: amqp 127.0.0.1:%d, management 127.0.0.1:%d",
				rs.node, time.Since(start).Round(time.Millisecond), rs.amqpPort, rs.httpPort)
			return rs
		}
		select {
		case <-rs.exited:
			out, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("rabbitmq-server exited during startup: %v\n%s", err, out)
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("RabbitMQ not ready: %v\n%s", err, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// ready checks that AMQP accepts the test user and the management API
// answers.
func (rs *rabbitServer) ready() error {
	conn, err := amqp.DialConfig(rs.amqpURL(""), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		return err
	}
	_ = conn.Close()
	_, err = rs.api(http.MethodGet, "/api/overview", nil)
	return err
}

func (rs *rabbitServer) amqpURL(vhost string) string {
	return fmt.Sprintf("amqp://%s:%s@127.0.0.1:%d/%s", rabbitTestUser, rabbitTestPassword, rs.amqpPort, url.PathEscape(vhost))
}

func (rs *rabbitServer) httpURL(path string) string {
	return fmt.Sprintf("http://%s:%s@127.0.0.1:%d%s", rabbitTestUser, rabbitTestPassword, rs.httpPort, path)
}

// api calls the management API as the test user.
func (rs *rabbitServer) api(method, path string, body any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", rs.httpPort, path), r)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(rabbitTestUser, rabbitTestPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, out)
	}
	return out, nil
}

// stop kills the node's processes and epmd, and checks that none is left.
func (rs *rabbitServer) stop() {
	rs.once.Do(func() {
		// The data is thrown away: no graceful shutdown needed.
		if rs.cmd != nil && rs.cmd.Process != nil {
			_ = syscall.Kill(-rs.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-rs.exited:
			case <-time.After(10 * time.Second):
				rs.t.Errorf("rabbitmq-server did not exit")
			}
		}
		if rs.epmd != nil && rs.epmd.Process != nil {
			_ = syscall.Kill(-rs.epmd.Process.Pid, syscall.SIGKILL)
			_ = rs.epmd.Wait()
		}
		// The VM's helpers (erl_child_setup, inet_gethost) have process
		// groups of their own; they exit with the VM.
		deadline := time.Now().Add(10 * time.Second)
		for {
			left := rabbitProcesses(rs.dir)
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				rs.t.Errorf("RabbitMQ processes left after stop: %v; killing them", left)
				for _, pid := range left {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// rabbitProcesses lists the live processes whose environment carries the
// marker of the node in dir.
func rabbitProcesses(dir string) []int {
	marker := []byte(rabbitMarkerEnv + "=" + dir + "\x00")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, marker) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			// Zombies are gone already, their parent just has not reaped them.
			if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 0 && f[0] == "Z" {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

func rabbitWaitFor(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rabbitAdmin is an AMQP connection and confirming channel of the test.
type rabbitAdmin struct {
	t    *testing.T
	conn *amqp.Connection
	ch   *amqp.Channel
}

func (rs *rabbitServer) admin(t *testing.T, vhost string) *rabbitAdmin {
	t.Helper()
	conn, err := amqp.Dial(rs.amqpURL(vhost))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	return &rabbitAdmin{t: t, conn: conn, ch: ch}
}

func (a *rabbitAdmin) declare(queues ...string) {
	a.t.Helper()
	for _, q := range queues {
		if _, err := a.ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			a.t.Fatal(err)
		}
	}
}

// publish sends n messages to queue and waits for the broker's confirms.
func (a *rabbitAdmin) publish(queue string, n int) {
	a.t.Helper()
	var confirms []*amqp.DeferredConfirmation
	for i := range n {
		dc, err := a.ch.PublishWithDeferredConfirmWithContext(a.t.Context(), "", queue, true, false, amqp.Publishing{Body: []byte(strconv.Itoa(i))})
		if err != nil {
			a.t.Fatal(err)
		}
		confirms = append(confirms, dc)
	}
	for _, dc := range confirms {
		if ok, err := dc.WaitContext(a.t.Context()); err != nil || !ok {
			a.t.Fatalf("publish not confirmed: %v", err)
		}
	}
}

// get takes n messages without acknowledging them.
func (a *rabbitAdmin) get(queue string, n int) []amqp.Delivery {
	a.t.Helper()
	var out []amqp.Delivery
	for range n {
		d, ok, err := a.ch.Get(queue, false)
		if err != nil || !ok {
			a.t.Fatalf("get from %s: ok=%v err=%v", queue, ok, err)
		}
		out = append(out, d)
	}
	return out
}

func buildRabbitMQ(t *testing.T, meta, auth map[string]string) Scaler {
	t.Helper()
	cfg, _, err := scalers.Parse(scalers.Trigger{Type: "rabbitmq", Metadata: meta, AuthParams: auth, Namespace: "shop", ScaledObjectName: "orders"})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	s, err := New(cfg, Deps{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rabbitPollUntil polls until the value and activity are the wanted ones: the
// management API's figures lag the broker by its statistics interval.
func rabbitPollUntil(t *testing.T, s Scaler, want string, wantActive bool) {
	t.Helper()
	wq := resource.MustParse(want)
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := s.Poll(t.Context())
		if err == nil && r.Value.Cmp(wq) == 0 && r.Active == wantActive {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%s active=%v", r.Value.String(), r.Active)
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %s active=%v; last poll: %s", want, wantActive, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestRabbitMQ(t *testing.T) {
	rs := startRabbitMQ(t)
	admin := rs.admin(t, "")
	auth := map[string]string{"username": rabbitTestUser, "password": rabbitTestPassword}
	amqpHost := fmt.Sprintf("amqp://127.0.0.1:%d/", rs.amqpPort)
	httpHost := fmt.Sprintf("http://127.0.0.1:%d/", rs.httpPort)

	t.Run("AMQP queue length", func(t *testing.T) {
		admin.declare("jobs")
		s := buildRabbitMQ(t, map[string]string{"host": amqpHost, "queueName": "jobs", "mode": "QueueLength", "value": "5", "activationValue": "2"}, auth)
		pollWant(t, s, 0, false)
		admin.publish("jobs", 2)
		pollWant(t, s, 2, false) // at the activation value: not active
		admin.publish("jobs", 5)
		pollWant(t, s, 7, true)
		// Delivered but not acknowledged: AMQP counts the ready ones.
		got := admin.get("jobs", 3)
		pollWant(t, s, 4, true)
		for _, d := range got {
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		}
		pollWant(t, s, 4, true)
		for _, d := range admin.get("jobs", 4) {
			_ = d.Ack(false)
		}
		pollWant(t, s, 0, false)
		// Credentials in the host URL work as well as username/password.
		inURL := buildRabbitMQ(t, map[string]string{"host": rs.amqpURL(""), "queueName": "jobs"}, nil)
		admin.publish("jobs", 1)
		pollWant(t, inURL, 1, true)
		for _, d := range admin.get("jobs", 1) {
			_ = d.Ack(false)
		}
	})

	t.Run("HTTP queue length and excludeUnacknowledged", func(t *testing.T) {
		admin.declare("http-jobs")
		all := buildRabbitMQ(t, map[string]string{"host": httpHost, "queueName": "http-jobs", "mode": "QueueLength", "value": "5", "activationValue": "3"}, auth)
		ready := buildRabbitMQ(t, map[string]string{"host": rs.httpURL("/%2F"), "queueName": "http-jobs", "mode": "QueueLength", "value": "5",
			"activationValue": "3", "excludeUnacknowledged": "true"}, nil)
		rabbitPollUntil(t, all, "0", false)
		admin.publish("http-jobs", 6)
		rabbitPollUntil(t, all, "6", true)
		rabbitPollUntil(t, ready, "6", true)
		got := admin.get("http-jobs", 4)
		rabbitPollUntil(t, all, "6", true)    // ready + unacknowledged
		rabbitPollUntil(t, ready, "2", false) // ready only
		for _, d := range got {
			_ = d.Ack(false)
		}
		rabbitPollUntil(t, all, "2", false)
		for _, d := range admin.get("http-jobs", 2) {
			_ = d.Ack(false)
		}
		rabbitPollUntil(t, all, "0", false)
	})

	t.Run("HTTP message rates", func(t *testing.T) {
		admin.declare("rates")
		publish := buildRabbitMQ(t, map[string]string{"host": httpHost, "queueName": "rates", "mode": "MessageRate", "value": "10", "activationValue": "1000"}, auth)
		deliver := buildRabbitMQ(t, map[string]string{"host": httpHost, "queueName": "rates", "mode": "DeliverGetRate", "value": "10"}, auth)
		r, err := publish.Poll(t.Context())
		if err != nil || r.Value.Sign() != 0 || r.Active {
			t.Fatalf("before publishing: %v %v, %v", r.Value.String(), r.Active, err)
		}
		// Publish and consume steadily until the rates show (bounded).
		deadline := time.Now().Add(20 * time.Second)
		var pubRate, delRate float64
		for pubRate == 0 || delRate == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("rates not reported: publish %v, deliver %v", pubRate, delRate)
			}
			admin.publish("rates", 20)
			for _, d := range admin.get("rates", 10) {
				_ = d.Ack(false)
			}
			if r, err := publish.Poll(t.Context()); err != nil {
				t.Fatal(err)
			} else if pubRate = r.Value.AsApproximateFloat64(); pubRate > 0 && r.Active {
				t.Fatalf("publish rate %v active above the activation value 1000 with few messages", pubRate)
			}
			if r, err := deliver.Poll(t.Context()); err != nil {
				t.Fatal(err)
			} else {
				delRate = r.Value.AsApproximateFloat64()
				if delRate > 0 && !r.Active {
					t.Fatalf("deliver rate %v not active", delRate)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("publish rate %.1f/s, deliver rate %.1f/s", pubRate, delRate)
		// MessageRate is active with a low activation value.
		active := buildRabbitMQ(t, map[string]string{"host": httpHost, "queueName": "rates", "mode": "MessageRate", "value": "10"}, auth)
		if r, err := active.Poll(t.Context()); err != nil || !r.Active {
			t.Fatalf("MessageRate with activation 0: %v active=%v, %v", r.Value.String(), r.Active, err)
		}
	})

	t.Run("regex and operations, paged", func(t *testing.T) {
		admin.declare("re-a", "re-b", "re-c", "other-re")
		admin.publish("re-a", 3)
		admin.publish("re-b", 5)
		admin.publish("other-re", 10)
		regex := func(op, pageSize, activation string) Scaler {
			return buildRabbitMQ(t, map[string]string{"host": httpHost, "queueName": "^re-", "useRegex": "true", "operation": op,
				"pageSize": pageSize, "mode": "QueueLength", "value": "5", "activationValue": activation}, auth)
		}
		rabbitPollUntil(t, regex("sum", "100", "7"), "8", true)
		rabbitPollUntil(t, regex("max", "100", "5"), "5", false)
		rabbitPollUntil(t, regex("avg", "100", "1"), "2", true) // 8/3, integer division as KEDA
		// Two queues a page: ebb reads every page (KEDA refuses more than one).
		rabbitPollUntil(t, regex("sum", "2", "0"), "8", true)
		rabbitPollUntil(t, regex("max", "1", "0"), "5", true)
		none := buildRabbitMQ(t, map[string]string{"host": httpHost, "queueName": "^nothing-", "useRegex": "true", "mode": "QueueLength", "value": "5"}, auth)
		rabbitPollUntil(t, none, "0", false)
	})

	t.Run("vhost", func(t *testing.T) {
		if _, err := rs.api(http.MethodPut, "/api/vhosts/tenant%20a", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := rs.api(http.MethodPut, "/api/permissions/tenant%20a/"+rabbitTestUser, map[string]string{"configure": ".*", "write": ".*", "read": ".*"}); err != nil {
			t.Fatal(err)
		}
		tenant := rs.admin(t, "tenant a")
		tenant.declare("jobs")
		tenant.publish("jobs", 4)
		admin.publish("jobs", 1) // the default vhost's queue of the same name

		byName := buildRabbitMQ(t, map[string]string{"host": amqpHost, "queueName": "jobs", "vhostName": "tenant a"}, auth)
		pollWant(t, byName, 4, true)
		byURL := buildRabbitMQ(t, map[string]string{"host": rs.amqpURL("tenant a"), "queueName": "jobs"}, nil)
		pollWant(t, byURL, 4, true)
		defaultVhost := buildRabbitMQ(t, map[string]string{"host": amqpHost, "queueName": "jobs"}, auth)
		pollWant(t, defaultVhost, 1, true)
		httpByName := buildRabbitMQ(t, map[string]string{"host": httpHost, "queueName": "jobs", "vhostName": "tenant a"}, auth)
		rabbitPollUntil(t, httpByName, "4", true)
		httpByPath := buildRabbitMQ(t, map[string]string{"host": rs.httpURL("/tenant%20a"), "queueName": "jobs"}, nil)
		rabbitPollUntil(t, httpByPath, "4", true)

		// A vhost that does not exist: refused by the server.
		missing := buildRabbitMQ(t, map[string]string{"host": amqpHost, "queueName": "jobs", "vhostName": "nope"}, auth)
		_, err := missing.Poll(t.Context())
		checkKind(t, err, ErrBadResponse)
		missingHTTP := buildRabbitMQ(t, map[string]string{"host": httpHost, "queueName": "jobs", "vhostName": "nope"}, auth)
		_, err = missingHTTP.Poll(t.Context())
		checkKind(t, err, ErrBadResponse)
	})

	t.Run("missing queue, then created", func(t *testing.T) {
		s := buildRabbitMQ(t, map[string]string{"host": amqpHost, "queueName": "late"}, auth)
		_, err := s.Poll(t.Context())
		checkKind(t, err, ErrBadResponse)
		if !strings.Contains(err.Error(), `queue "late" not found`) {
			t.Errorf("error %q does not name the queue", err)
		}
		h := buildRabbitMQ(t, map[string]string{"host": httpHost, "queueName": "late"}, auth)
		_, err = h.Poll(t.Context())
		checkKind(t, err, ErrBadResponse)
		if !strings.Contains(err.Error(), "404") {
			t.Errorf("error %q lacks the status", err)
		}
		// The server closed the channel; the next poll opens another on
		// the same connection.
		admin.declare("late")
		admin.publish("late", 3)
		pollWant(t, s, 3, true)
		rabbitPollUntil(t, h, "3", true)
	})

	t.Run("wrong credentials", func(t *testing.T) {
		const wrong = "not-the-right-pass"
		wrongCreds := map[string]Scaler{
			"amqp in auth": buildRabbitMQ(t, map[string]string{"host": amqpHost, "queueName": "jobs"}, map[string]string{"username": rabbitTestUser, "password": wrong}),
			"amqp in URL":  buildRabbitMQ(t, map[string]string{"host": fmt.Sprintf("amqp://%s:%s@127.0.0.1:%d/", rabbitTestUser, wrong, rs.amqpPort), "queueName": "jobs"}, nil),
			"http in auth": buildRabbitMQ(t, map[string]string{"host": httpHost, "queueName": "jobs"}, map[string]string{"username": rabbitTestUser, "password": wrong}),
			"http in URL":  buildRabbitMQ(t, map[string]string{"host": fmt.Sprintf("http://%s:%s@127.0.0.1:%d/", rabbitTestUser, wrong, rs.httpPort), "queueName": "jobs"}, nil),
		}
		// The broker answers a failed AMQP login after a delay: poll all at once.
		var mu sync.Mutex
		errs := map[string]error{}
		var wg sync.WaitGroup
		for name, s := range wrongCreds {
			wg.Go(func() {
				_, err := s.Poll(t.Context())
				mu.Lock()
				errs[name] = err
				mu.Unlock()
			})
		}
		wg.Wait()
		for name, err := range errs {
			checkKind(t, err, ErrBadResponse)
			if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), rabbitTestPassword) {
				t.Errorf("%s: error leaks the password: %v", name, err)
			}
			if !strings.Contains(err.Error(), "rabbitmq trigger (") {
				t.Errorf("%s: error %q does not name the trigger and source", name, err)
			}
			t.Logf("%s: %v", name, err)
		}
	})

	t.Run("re-dial after the server closes the connection", func(t *testing.T) {
		s := buildRabbitMQ(t, map[string]string{"host": amqpHost, "queueName": "jobs"}, auth)
		pollWant(t, s, 1, true)
		name := rabbitConnectionName(t, rs, "ebb-shop-orders")
		if _, err := rs.api(http.MethodDelete, "/api/connections/"+url.PathEscape(name), nil); err != nil {
			t.Fatal(err)
		}
		rabbitWaitFor(t, 10*time.Second, "connection closed", func() error {
			if s.(*rabbitMQScaler).conn.IsClosed() {
				return nil
			}
			return errors.New("still open")
		})
		pollWant(t, s, 1, true)
	})

	t.Run("concurrent polls and Close", func(t *testing.T) {
		s := buildRabbitMQ(t, map[string]string{"host": amqpHost, "queueName": "jobs"}, auth)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				if _, err := s.Poll(t.Context()); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent poll: %v", err)
		}
		conn := s.(*rabbitMQScaler).conn
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if !conn.IsClosed() {
			t.Error("Close left the connection open")
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		_, err := s.Poll(t.Context())
		checkKind(t, err, ErrClosed)

		h := buildRabbitMQ(t, map[string]string{"host": httpHost, "queueName": "jobs"}, auth)
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		_ = h.Close()
		_, err = h.Poll(t.Context())
		checkKind(t, err, ErrClosed)
	})

	t.Run("cancelled poll", func(t *testing.T) {
		s := buildRabbitMQ(t, map[string]string{"host": amqpHost, "queueName": "jobs"}, auth)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := s.Poll(ctx)
		checkKind(t, err, ErrUnreachable)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not wrap context.Canceled", err)
		}
		pollWant(t, s, 1, true) // usable afterwards
	})

	// Last: the server goes away.
	t.Run("server stopped", func(t *testing.T) {
		a := buildRabbitMQ(t, map[string]string{"host": amqpHost, "queueName": "jobs"}, auth)
		h := buildRabbitMQ(t, map[string]string{"host": httpHost, "queueName": "jobs"}, auth)
		pollWant(t, a, 1, true)
		rabbitPollUntil(t, h, "1", true)
		rs.stop()
		for name, s := range map[string]Scaler{"amqp": a, "http": h} {
			_, err := s.Poll(t.Context())
			checkKind(t, err, ErrUnreachable)
			if strings.Contains(err.Error(), rabbitTestPassword) {
				t.Errorf("%s: error leaks the password: %v", name, err)
			}
		}
		// A scaler built while the server is away fails the same way.
		late := buildRabbitMQ(t, map[string]string{"host": amqpHost, "queueName": "jobs"}, auth)
		_, err := late.Poll(t.Context())
		checkKind(t, err, ErrUnreachable)
		if left := rabbitProcesses(rs.dir); len(left) > 0 {
			t.Errorf("processes left: %v", left)
		}
	})
}

// rabbitConnectionName returns the server-side name of the connection whose
// client-given name is clientName.
func rabbitConnectionName(t *testing.T, rs *rabbitServer, clientName string) string {
	t.Helper()
	var name string
	rabbitWaitFor(t, 15*time.Second, "connection "+clientName+" listed", func() error {
		body, err := rs.api(http.MethodGet, "/api/connections", nil)
		if err != nil {
			return err
		}
		var conns []struct {
			Name             string `json:"name"`
			ClientProperties struct {
				ConnectionName string `json:"connection_name"`
			} `json:"client_properties"`
		}
		if err := json.Unmarshal(body, &conns); err != nil {
			return err
		}
		for _, c := range conns {
			if c.ClientProperties.ConnectionName == clientName {
				name = c.Name
				return nil
			}
		}
		return fmt.Errorf("not among %d connections", len(conns))
	})
	return name
}

func TestRabbitMQReading(t *testing.T) {
	cfg := func(mode string, act float64, excl bool) *scalers.RabbitMQConfig {
		return &scalers.RabbitMQConfig{Mode: mode, ActivationValue: act, ExcludeUnacknowledged: excl}
	}
	tests := map[string]struct {
		st         rabbitMQStats
		cfg        *scalers.RabbitMQConfig
		want       string
		wantActive bool
	}{
		"queue length":             {rabbitMQStats{messages: 7, ready: 3}, cfg(scalers.RabbitMQModeQueueLength, 5, false), "7", true},
		"ready only":               {rabbitMQStats{messages: 7, ready: 3}, cfg(scalers.RabbitMQModeQueueLength, 5, true), "3", false},
		"message rate":             {rabbitMQStats{publishRate: 2.5}, cfg(scalers.RabbitMQModeMessageRate, 1, false), "2500m", true},
		"message rate, backlog":    {rabbitMQStats{messages: 4, publishRate: 0.2}, cfg(scalers.RabbitMQModeMessageRate, 1, false), "200m", true},
		"message rate, idle":       {rabbitMQStats{messages: 1, publishRate: 0.2}, cfg(scalers.RabbitMQModeMessageRate, 1, false), "200m", false},
		"deliver rate":             {rabbitMQStats{delivery: 1.25}, cfg(scalers.RabbitMQModeDeliverGetRate, 1, false), "1250m", true},
		"ratio":                    {rabbitMQStats{publishRate: 3, delivery: 2}, cfg(scalers.RabbitMQModePublishedToDeliveredRatio, 2, false), "1500m", false},
		"ratio, nothing delivered": {rabbitMQStats{publishRate: 3}, cfg(scalers.RabbitMQModePublishedToDeliveredRatio, 2, false), "2", true},
		"ratio, idle":              {rabbitMQStats{}, cfg(scalers.RabbitMQModePublishedToDeliveredRatio, 0, false), "0", false},
		"consumption time":         {rabbitMQStats{messages: 10, publishRate: 3, delivery: 2}, cfg(scalers.RabbitMQModeExpectedQueueConsumptionTime, 10, false), "5500m", false},
		"consumption time, stuck":  {rabbitMQStats{messages: 10}, cfg(scalers.RabbitMQModeExpectedQueueConsumptionTime, 30, false), "30", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := rabbitMQReading(tc.st, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Value.Cmp(resource.MustParse(tc.want)) != 0 || r.Active != tc.wantActive {
				t.Errorf("got %s active=%v, want %s active=%v", r.Value.String(), r.Active, tc.want, tc.wantActive)
			}
		})
	}
	queues := []rabbitMQQueue{{Messages: 3, MessagesReady: 1}, {Messages: 5, MessagesReady: 5}, {}}
	queues[0].MessageStats.PublishDetails.Rate = 1.5
	queues[1].MessageStats.DeliverGetDetails.Rate = 2
	for op, want := range map[string]rabbitMQStats{
		"sum": {messages: 8, ready: 6, publishRate: 1.5, delivery: 2},
		"avg": {messages: 2, ready: 2, publishRate: 0.5, delivery: 2.0 / 3},
		"max": {messages: 5, ready: 5, publishRate: 1.5, delivery: 2},
	} {
		if got := combineRabbitMQQueues(queues, op); got != want {
			t.Errorf("%s: got %+v, want %+v", op, got, want)
		}
	}
	if got := combineRabbitMQQueues(nil, "avg"); got != (rabbitMQStats{}) {
		t.Errorf("no queue: %+v", got)
	}
}

func TestRabbitMQNoSecretInErrors(t *testing.T) {
	const password = "PASSWORD-very-secret"
	dead := closedAddress(t)
	tests := map[string]struct {
		meta map[string]string
		auth map[string]string
		kind error
	}{
		"amqp URL, unreachable": {
			meta: map[string]string{"host": "amqp://u:" + password + "@" + dead + "/", "queueName": "q"},
			kind: ErrUnreachable,
		},
		"amqp auth, unreachable": {
			meta: map[string]string{"host": "amqp://" + dead + "/vh", "queueName": "q"},
			auth: map[string]string{"username": "u", "password": password},
			kind: ErrUnreachable,
		},
		"http URL, unreachable": {
			meta: map[string]string{"host": "http://u:" + password + "@" + dead + "/", "queueName": "q"},
			kind: ErrUnreachable,
		},
		"http auth, regex, unreachable": {
			meta: map[string]string{"host": "http://" + dead + "/", "queueName": "^q", "useRegex": "true"},
			auth: map[string]string{"username": "u", "password": password},
			kind: ErrUnreachable,
		},
		"bad client key": {
			meta: map[string]string{"host": "amqps://u:" + password + "@" + dead + "/", "queueName": "q"},
			auth: map[string]string{"tls": "enable", "cert": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----",
				"key": "-----BEGIN PRIVATE KEY-----\n" + password + "\n-----END PRIVATE KEY-----"},
			kind: ErrInvalidConfig,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := tryBuild("rabbitmq", tc.meta, tc.auth, Deps{})
			if err == nil {
				t.Cleanup(func() { _ = s.Close() })
				_, err = s.Poll(t.Context())
			}
			checkKind(t, err, tc.kind)
			if strings.Contains(err.Error(), "very-secret") {
				t.Fatalf("error contains the password: %v", err)
			}
			if !strings.Contains(err.Error(), "rabbitmq trigger (") {
				t.Errorf("error %q does not name the trigger type and source", err)
			}
			t.Logf("%v", err)
		})
	}
}

func TestRabbitMQURLs(t *testing.T) {
	tests := map[string]struct {
		meta        map[string]string
		auth        map[string]string
		wantURL     string // the management API URL, or the AMQP URL
		wantAddress string
	}{
		"http, no path: the default vhost": {
			meta:    map[string]string{"host": "http://u:p@r:15672", "queueName": "jobs"},
			wantURL: "http://r:15672/api/queues/%2F/jobs", wantAddress: "http://r:15672/%2F",
		},
		"http, encoded vhost kept": {
			meta:    map[string]string{"host": "http://r:15672/tenant%20a", "queueName": "a b+c"},
			wantURL: "http://r:15672/api/queues/tenant%20a/a%20b+c", wantAddress: "http://r:15672/tenant%20a",
		},
		"http, path prefix": {
			meta:    map[string]string{"host": "https://r/rabbit/mgmt/vh?x=1", "queueName": "q"},
			wantURL: "https://r/rabbit/mgmt/api/queues/vh/q", wantAddress: "https://r/rabbit/mgmt/vh",
		},
		"http, prefix without vhost": {
			meta:    map[string]string{"host": "http://r/rabbit/", "queueName": "q"},
			wantURL: "http://r/rabbit/api/queues/%2F/q", wantAddress: "http://r/rabbit/%2F",
		},
		"http, vhostName": {
			meta:    map[string]string{"host": "http://r:15672/vh", "queueName": "q", "vhostName": "a/b c"},
			wantURL: "http://r:15672/api/queues/a%2Fb%20c/q", wantAddress: "http://r:15672/a%2Fb%20c",
		},
		"http, regex": {
			meta:    map[string]string{"host": "http://r:15672/", "queueName": "^q", "useRegex": "true"},
			wantURL: "http://r:15672/api/queues/%2F", wantAddress: "http://r:15672/%2F",
		},
		"amqp, as given": {
			meta:    map[string]string{"host": "amqp://u:p@r:5672/vh?heartbeat=5", "queueName": "q"},
			wantURL: "amqp://u:p@r:5672/vh?heartbeat=5", wantAddress: "amqp://r:5672/vh",
		},
		"amqp, vhostName and credentials put in": {
			meta:    map[string]string{"host": "amqps://u:p@r/vh", "queueName": "q", "vhostName": "other one"},
			auth:    map[string]string{"username": "keda", "password": "pw"},
			wantURL: "amqps://keda:pw@r/other%20one", wantAddress: "amqps://r:5671/other%20one",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := tryBuild("rabbitmq", tc.meta, tc.auth, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			rs := s.(*rabbitMQScaler)
			got := rs.queueURL
			if rs.src == nil {
				got = rs.amqpURL
			}
			if got != tc.wantURL || rs.address != tc.wantAddress {
				t.Errorf("URL %q address %q, want %q and %q", got, rs.address, tc.wantURL, tc.wantAddress)
			}
		})
	}
}
