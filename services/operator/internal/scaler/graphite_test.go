package scaler

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	graphiteTestUser     = "ebb"
	graphiteTestPassword = "s3cr3t-graphite-pass"
)

// graphiteServer is a carbon-cache (fed over its plaintext protocol) and
// a graphite-web (Debian's Django app, served by a small WSGI server that
// asks for basic authentication) owned by a test, with their whisper
// files in a temporary directory.
type graphiteServer struct {
	t      *testing.T
	url    string // graphite-web
	line   string // carbon's plaintext receiver
	carbon *exec.Cmd
	web    *exec.Cmd
	logs   *lockedBuffer
	once   sync.Once
}

// graphiteServe runs graphite-web's WSGI application behind a basic
// authentication check (as a reverse proxy in front of graphite-web
// would), on 127.0.0.1 and the port given.
const graphiteServe = `import base64, os, sys
from wsgiref.simple_server import make_server, WSGIRequestHandler
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'graphite.settings')
from graphite.wsgi import application as graphite
want = 'Basic ' + base64.b64encode(os.environ['EBB_GRAPHITE_AUTH'].encode()).decode()
def app(environ, start_response):
    if environ.get('HTTP_AUTHORIZATION') != want:
        start_response('401 Unauthorized', [('WWW-Authenticate', 'Basic realm="graphite"'), ('Content-Type', 'text/plain')])
        return [b'authentication required\n']
    return graphite(environ, start_response)
class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass
make_server('127.0.0.1', int(sys.argv[1]), app, handler_class=Quiet).serve_forever()
`

func startGraphite(t *testing.T) *graphiteServer {
	t.Helper()
	carbon, err := exec.LookPath("carbon-cache")
	if err != nil {
		t.Fatal("carbon-cache is not installed: run hack/install-event-sources.sh (Debian package graphite-carbon)")
	}
	if _, err := exec.LookPath("graphite-manage"); err != nil {
		t.Fatal("graphite-web is not installed: run hack/install-event-sources.sh (Debian package graphite-web)")
	}
	dir := t.TempDir()
	for _, d := range []string{"conf", "whisper", "log", "py"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	line, pickle, query, web := closedAddress(t), closedAddress(t), closedAddress(t), closedAddress(t)
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	files := map[string]string{
		"conf/carbon.conf": fmt.Sprintf(`[cache]
STORAGE_DIR = %[1]s
LOCAL_DATA_DIR = %[1]s/whisper/
WHITELISTS_DIR = %[1]s/lists/
CONF_DIR = %[1]s/conf/
LOG_DIR = %[1]s/log/
PID_DIR = %[1]s/
ENABLE_LOGROTATION = False
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 10000
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = %[2]s
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = %[3]s
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = %[4]s
WHISPER_AUTOFLUSH = True
WHISPER_FALLOCATE_CREATE = False
`, dir, port(line), port(pickle), port(query)),
		// One-second points, kept an hour.
		"conf/storage-schemas.conf": "[default]\npattern = .*\nretentions = 1s:1h\n",
		"py/ebb_graphite_settings.py": fmt.Sprintf(`SECRET_KEY = 'ebb-test'
GRAPHITE_ROOT = '/usr/share/graphite-web'
STATIC_ROOT = '/usr/share/graphite-web/static'
CONF_DIR = '%[1]s/conf'
STORAGE_DIR = '%[1]s'
LOG_DIR = '%[1]s/log'
INDEX_FILE = '%[1]s/index'
WHISPER_DIR = '%[1]s/whisper'
CARBONLINK_HOSTS = ['%[2]s']
DATABASES = {'default': {'NAME': '%[1]s/graphite.db', 'ENGINE': 'django.db.backends.sqlite3'}}
FUNCTION_PLUGINS = []
DEFAULT_XFILES_FACTOR = 0
`, dir, query),
		"py/ebb_graphite_serve.py": graphiteServe,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	gs := &graphiteServer{t: t, url: "http://" + web, line: line, logs: &lockedBuffer{}}
	gs.carbon = exec.Command(carbon, "--config="+filepath.Join(dir, "conf/carbon.conf"), "--nodaemon", "start")
	// Debian's graphite-web is a module of the system Python.
	gs.web = exec.Command("/usr/bin/python3", filepath.Join(dir, "py/ebb_graphite_serve.py"), port(web))
	gs.web.Dir = filepath.Join(dir, "py")
	gs.web.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(dir, "py"), "GRAPHITE_SETTINGS_MODULE=ebb_graphite_settings",
		"DJANGO_SETTINGS_MODULE=graphite.settings", "EBB_GRAPHITE_AUTH="+graphiteTestUser+":"+graphiteTestPassword)
	for _, cmd := range []*exec.Cmd{gs.carbon, gs.web} {
		cmd.Stdout, cmd.Stderr = gs.logs, gs.logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", cmd.Path, err)
		}
	}
	t.Cleanup(gs.stop)

	deadline := time.Now().Add(60 * time.Second)
	for {
		err := gs.ready()
		if err == nil {
			return gs
		}
		if time.Now().After(deadline) {
			t.Fatalf("graphite not ready: %v\n%s", err, gs.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (gs *graphiteServer) ready() error {
	c, err := net.DialTimeout("tcp", gs.line, time.Second)
	if err != nil {
		return fmt.Errorf("carbon: %w", err)
	}
	_ = c.Close()
	req, _ := http.NewRequest(http.MethodGet, gs.url+"/render?target=ebb.ready&from=-1min&format=json", nil)
	req.SetBasicAuth(graphiteTestUser, graphiteTestPassword)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("graphite-web: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("graphite-web: HTTP status %d", resp.StatusCode)
	}
	return nil
}

// feed sends one point per metric, at the current second, over carbon's
// plaintext protocol ("<path> <value> <timestamp>").
func (gs *graphiteServer) feed(points map[string]string, ago time.Duration) {
	gs.t.Helper()
	c, err := net.DialTimeout("tcp", gs.line, 5*time.Second)
	if err != nil {
		gs.t.Fatalf("carbon: %v", err)
	}
	defer func() { _ = c.Close() }()
	ts := time.Now().Add(-ago).Unix()
	var b strings.Builder
	for path, v := range points {
		fmt.Fprintf(&b, "%s %s %d\n", path, v, ts)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		gs.t.Fatalf("carbon: %v", err)
	}
}

// stopWeb stops graphite-web only.
func (gs *graphiteServer) stopWeb() { stopGroup(gs.web) }

func (gs *graphiteServer) stop() {
	gs.once.Do(func() {
		stopGroup(gs.web)
		stopGroup(gs.carbon)
	})
}

// stopGroup ends a process started in its own group (SIGTERM, then
// SIGKILL after 10 s) and waits for it; it may be called twice.
func stopGroup(cmd *exec.Cmd) {
	if cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func TestGraphite(t *testing.T) {
	ctx := t.Context()
	gs := startGraphite(t)
	auth := map[string]string{"username": graphiteTestUser, "password": graphiteTestPassword}
	meta := func(query string, kv ...string) map[string]string {
		m := map[string]string{"serverAddress": gs.url, "query": query, "queryTime": "-1min", "threshold": "5", "activationThreshold": "3", "authMode": "basic"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	depth := build(t, "graphite", meta("ebb.queue.orders"), auth, Deps{})

	// No such series yet: no series in the answer, 0.
	pollWant(t, depth, 0, false)
	gs.feed(map[string]string{"ebb.queue.orders": "3"}, 0)
	waitReading(t, depth, "3", false) // at the activation threshold: not active
	gs.feed(map[string]string{"ebb.queue.orders": "7.5"}, 0)
	// The last non-null point: the seconds after it are null.
	waitReading(t, depth, "7.5", true)

	// Functions over several series, and several series refused.
	gs.feed(map[string]string{"ebb.queue.refunds": "4.5"}, 0)
	sum := build(t, "graphite", meta("sumSeries(ebb.queue.*)"), auth, Deps{})
	waitReading(t, sum, "12", true)
	_, err := build(t, "graphite", meta("ebb.queue.*"), auth, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), "the query returned 2 series") {
		t.Errorf("error %q does not count the series", err)
	}

	// Only nulls in the window: KEDA's error.
	gs.feed(map[string]string{"ebb.old": "9"}, 30*time.Second)
	waitReading(t, build(t, "graphite", meta("ebb.old", "queryTime", "-5min"), auth, Deps{}), "9", true)
	_, err = build(t, "graphite", meta("ebb.old", "queryTime", "-5s"), auth, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), "only null datapoints") {
		t.Errorf("error %q does not say the window holds only nulls", err)
	}

	// Graphite's own errors: an unknown function, a bad queryTime.
	for query, want := range map[string][2]string{
		"noSuchFunction(ebb.queue.orders)": {"-1min", "unknown function: noSuchFunction"},
		"ebb.queue.orders":                 {"yesterday-ish", "Invalid parameters"},
	} {
		_, err = build(t, "graphite", meta(query, "queryTime", want[0]), auth, Deps{}).Poll(ctx)
		checkKind(t, err, ErrBadResponse)
		for _, w := range []string{"graphite trigger (" + gs.url + ")", "HTTP status 400", want[1]} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	}

	// Authentication: none (KEDA's default without authMode) and a wrong
	// password are refused; credentials without authMode are used, as KEDA
	// uses them.
	m := meta("ebb.queue.orders")
	delete(m, "authMode")
	_, err = build(t, "graphite", m, nil, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), "HTTP status 401") {
		t.Errorf("error %q: want HTTP status 401", err)
	}
	waitReading(t, build(t, "graphite", m, auth, Deps{}), "7.5", true)
	const wrong = "not-the-graphite-pass"
	_, err = build(t, "graphite", meta("ebb.queue.orders"), map[string]string{"username": graphiteTestUser, "password": wrong}, Deps{}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), graphiteTestPassword) {
		t.Errorf("error %q reveals the password", err)
	}

	// Close: polls fail with ErrClosed, Close is idempotent.
	closed := build(t, "graphite", meta("ebb.queue.orders"), auth, Deps{})
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = closed.Poll(ctx)
	checkKind(t, err, ErrClosed)
	if err := closed.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// graphite-web stopped: unreachable.
	gs.stopWeb()
	_, err = depth.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	if !strings.Contains(err.Error(), "graphite trigger ("+gs.url+")") {
		t.Errorf("error %q does not name the trigger type and source", err)
	}
}
