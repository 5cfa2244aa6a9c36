package scaler

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

const (
	mariaDBTestPassword = "s3cr3t-my/pa@ss"
	mariaDBTestDB       = "ebbtest"
)

// mariaDBServer is a throwaway MariaDB server owned by a test: its own data
// directory and socket in a temporary directory, on a free loopback port.
type mariaDBServer struct {
	t      *testing.T
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
}

// mariaDBCommand finds a command of the mariadb-server package, which
// installs the server under /usr/sbin (not always on PATH).
func mariaDBCommand(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/libexec"} {
			if p := filepath.Join(dir, n); mariaDBFileExists(p) {
				return p
			}
		}
	}
	return ""
}

func mariaDBFileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func startMariaDB(t *testing.T) *mariaDBServer {
	t.Helper()
	server := mariaDBCommand("mariadbd", "mysqld")
	install := mariaDBCommand("mariadb-install-db", "mysql_install_db")
	if server == "" || install == "" {
		t.Fatal("MariaDB (mariadbd, mariadb-install-db) is not installed: run hack/install-event-sources.sh (Debian package mariadb-server)")
	}
	dir, err := os.MkdirTemp("", "ebb-my-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// mariadbd refuses to run as root unless told which user to be: as
	// root, run it as the mysql user in a directory that user owns.
	var userArgs []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("mysql")
		if err != nil {
			t.Fatalf("running as root needs the mysql user (created by the mariadb-server package; run hack/install-event-sources.sh): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		userArgs = []string{"--user=mysql"}
	}
	ms := &mariaDBServer{t: t, dir: dir, exited: make(chan struct{})}
	addr := closedAddress(t)
	ms.port, _ = strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	// Small: a 8 MiB buffer pool and 4 MiB redo log, no performance
	// schema, no binary log.
	small := []string{"--innodb-buffer-pool-size=8M", "--innodb-log-file-size=4M", "--skip-name-resolve"}
	data := filepath.Join(dir, "data")

	installArgs := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal",
		"--skip-test-db"}, append(userArgs, small...)...)
	if out, err := exec.Command(install, installArgs...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", install, err, out)
	}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--socket=" + filepath.Join(dir, "sock"),
		"--port=" + strconv.Itoa(ms.port), "--bind-address=127.0.0.1", "--pid-file=" + filepath.Join(dir, "pid"),
		"--log-error=" + filepath.Join(dir, "error.log"), "--tmpdir=" + dir, "--performance-schema=OFF",
		"--skip-log-bin", "--max-connections=40"}, append(userArgs, small...)...)
	ms.cmd = exec.Command(server, args...)
	if err := ms.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", server, err)
	}
	go func() { _ = ms.cmd.Wait(); close(ms.exited) }()
	t.Cleanup(ms.stop)

	deadline := time.Now().Add(60 * time.Second)
	for {
		db := ms.admin()
		err := db.PingContext(t.Context())
		_ = db.Close()
		if err == nil {
			break
		}
		select {
		case <-ms.exited:
			t.Fatalf("mariadbd exited: %v\n%s", err, ms.errorLog())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd on port %d not ready: %v\n%s", ms.port, err, ms.errorLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
	db := ms.admin()
	defer func() { _ = db.Close() }()
	for _, stmt := range []string{
		"CREATE DATABASE " + mariaDBTestDB,
		fmt.Sprintf("CREATE USER 'ebb'@'127.0.0.1' IDENTIFIED BY '%s'", mariaDBTestPassword),
		"GRANT ALL ON " + mariaDBTestDB + ".* TO 'ebb'@'127.0.0.1'",
		"CREATE TABLE " + mariaDBTestDB + ".jobs (id INT AUTO_INCREMENT PRIMARY KEY, state VARCHAR(16) NOT NULL)",
	} {
		ms.exec(db, stmt)
	}
	return ms
}

func (ms *mariaDBServer) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(ms.dir, "error.log"))
	return string(b)
}

// admin is a pool of root connections (no password on loopback).
func (ms *mariaDBServer) admin() *sql.DB {
	c := mysql.NewConfig()
	c.Net, c.Addr, c.User, c.Timeout = "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ms.port)), "root", 5*time.Second
	c.Logger = &mysql.NopLogger{}
	connector, err := mysql.NewConnector(c)
	if err != nil {
		ms.t.Fatal(err)
	}
	return sql.OpenDB(connector)
}

func (ms *mariaDBServer) exec(db *sql.DB, stmt string, args ...any) {
	ms.t.Helper()
	if _, err := db.ExecContext(ms.t.Context(), stmt, args...); err != nil {
		ms.t.Fatalf("%s: %v", stmt, err)
	}
}

// ebbSessions counts the server's sessions of the ebb user.
func (ms *mariaDBServer) ebbSessions(db *sql.DB) int {
	ms.t.Helper()
	var n int
	if err := db.QueryRowContext(ms.t.Context(), "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'ebb'").Scan(&n); err != nil {
		ms.t.Fatal(err)
	}
	return n
}

func (ms *mariaDBServer) stop() {
	ms.once.Do(func() {
		_ = ms.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-ms.exited:
		case <-time.After(30 * time.Second):
			ms.t.Logf("mariadbd did not stop on SIGTERM; killing it")
			_ = ms.cmd.Process.Kill()
			<-ms.exited
		}
	})
}

func (ms *mariaDBServer) meta(query string, kv ...string) map[string]string {
	m := map[string]string{
		"query": query, "queryValue": "5", "activationQueryValue": "2",
		"host": "127.0.0.1", "port": strconv.Itoa(ms.port), "username": "ebb", "dbName": mariaDBTestDB,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func buildMySQL(t *testing.T, meta, auth map[string]string) *mySQLScaler {
	t.Helper()
	s, err := newMySQL(parseTrigger(t, "mysql", meta, auth).(*scalers.MySQLConfig), Deps{})
	if err != nil {
		t.Fatalf("newMySQL: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*mySQLScaler)
}

// pollExact polls s and checks the value's exact quantity and activity.
func pollExact(t *testing.T, s Scaler, want string, wantActive bool) {
	t.Helper()
	r, err := s.Poll(t.Context())
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	if r.Value.Cmp(resource.MustParse(want)) != 0 || r.Active != wantActive {
		t.Fatalf("got %s active=%v, want %s active=%v", r.Value.String(), r.Active, want, wantActive)
	}
}

func TestMySQL(t *testing.T) {
	ctx := t.Context()
	ms := startMariaDB(t)
	admin := ms.admin()
	defer func() { _ = admin.Close() }()
	auth := map[string]string{"password": mariaDBTestPassword}
	source := "mysql trigger (127.0.0.1:" + strconv.Itoa(ms.port) + "/" + mariaDBTestDB + ")"

	// Separate settings, password from the TriggerAuthentication: empty,
	// below and at the activation value, then above it.
	count := buildMySQL(t, ms.meta("SELECT COUNT(*) FROM jobs WHERE state = 'pending'"), auth)
	pollExact(t, count, "0", false)
	ms.exec(admin, "INSERT INTO "+mariaDBTestDB+".jobs (state) VALUES ('pending'), ('pending')")
	pollExact(t, count, "2", false) // at the activation value: not active
	ms.exec(admin, "INSERT INTO "+mariaDBTestDB+".jobs (state) VALUES ('pending'), ('pending'), ('pending'), ('pending'), ('pending'), ('done')")
	pollExact(t, count, "7", true)

	// The connection string forms: from the TriggerAuthentication and
	// from the environment (resolved into the metadata).
	dsn := fmt.Sprintf("ebb:%s@tcp(127.0.0.1:%d)/%s", mariaDBTestPassword, ms.port, mariaDBTestDB)
	fromAuth := buildMySQL(t, map[string]string{"query": "SELECT COUNT(*) FROM jobs", "queryValue": "5"}, map[string]string{"connectionString": dsn})
	pollExact(t, fromAuth, "8", true)
	fromEnv := buildMySQL(t, map[string]string{"query": "SELECT COUNT(*) FROM jobs", "queryValue": "5", "activationQueryValue": "8",
		"connectionStringFromEnv": "MYSQL_DSN", "connectionString": dsn + "?timeout=3s"}, nil)
	pollExact(t, fromEnv, "8", false)

	// Column types, read exactly.
	for query, want := range map[string]string{
		"SELECT 2.5":                                    "2.5",
		"SELECT 12.340":                                 "12.34",
		"SELECT CAST(2.5 AS DOUBLE)":                    "2.5",
		"SELECT CAST(0.1 AS FLOAT)":                     "0.1",
		"SELECT 123456789012345":                        "123456789012345",
		"SELECT CAST(18446744073709551615 AS UNSIGNED)": "18446744073709551615",
		"SELECT 3, 'ignored'":                           "3",
		"SELECT '7'":                                    "7",
		"SELECT COUNT(*) - 100 FROM jobs":               "-92",
		"SELECT SUM(id) / 4 FROM jobs":                  "9",
		"SELECT 1.5 FROM jobs WHERE id > 3":             "1.5",
	} {
		s := buildMySQL(t, ms.meta(query), auth)
		r, err := s.Poll(ctx)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		wq := resource.MustParse(want)
		if r.Value.Cmp(wq) != 0 {
			t.Errorf("%s: got %s, want %s", query, r.Value.String(), want)
		}
		if wantActive := wq.AsApproximateFloat64() > 2; r.Active != wantActive {
			t.Errorf("%s: active=%v", query, r.Active)
		}
		_ = s.Close()
	}

	// Answers that are not a number, and failing queries: bad responses
	// naming the trigger type and the source.
	for _, query := range []string{
		"SELECT NULL", "SELECT id FROM jobs WHERE false", "SELECT 'many'", "SELECT NOW()", "SELECT 1e400",
		"SELEKT 1", "SELECT * FROM no_such_table", "SELECT * FROM jobs WHERE",
	} {
		s := buildMySQL(t, ms.meta(query), auth)
		_, err := s.Poll(ctx)
		checkKind(t, err, ErrBadResponse)
		if !strings.Contains(err.Error(), source) {
			t.Errorf("%s: error %q does not name the trigger type and source", query, err)
		}
		_ = s.Close()
	}

	// Concurrent polls share a pool of at most two connections; the pool
	// settings apply.
	slow := buildMySQL(t, ms.meta("SELECT COUNT(*) + SLEEP(0.05) FROM jobs"), auth)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if r, err := slow.Poll(ctx); err != nil {
				errs <- err
			} else if r.Value.Value() != 8 {
				errs <- fmt.Errorf("value %s", r.Value.String())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent poll: %v", err)
	}
	if st := slow.db.Stats(); st.MaxOpenConnections != mySQLMaxOpenConns || st.OpenConnections > mySQLMaxOpenConns {
		t.Errorf("pool stats %+v", st)
	}
	one := buildMySQL(t, ms.meta("SELECT 1", "maxOpenConns", "1", "connMaxIdleTime", "30"), auth)
	pollExact(t, one, "1", false)
	if st := one.db.Stats(); st.MaxOpenConnections != 1 || st.OpenConnections != 1 {
		t.Errorf("pool stats with maxOpenConns 1: %+v", st)
	}

	// Close leaves no connection behind, on the server too; Poll after
	// Close fails, Close again is a no-op.
	if ms.ebbSessions(admin) == 0 {
		t.Fatal("expected the scalers' sessions before Close")
	}
	for _, s := range []*mySQLScaler{count, fromAuth, fromEnv, slow, one} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if n := s.db.Stats().OpenConnections; n != 0 {
			t.Errorf("closed pool holds %d connections", n)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for n := ms.ebbSessions(admin); n != 0; n = ms.ebbSessions(admin) {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of ebb remain after Close", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err := count.Poll(ctx)
	checkKind(t, err, ErrClosed)
	if err := count.Close(); err != nil {
		t.Fatal(err)
	}

	// A cancelled poll.
	live := buildMySQL(t, ms.meta("SELECT 1"), auth)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = live.Poll(cctx)
	checkKind(t, err, ErrUnreachable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	// A poll that outlives its deadline.
	dctx, dcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = buildMySQL(t, ms.meta("SELECT SLEEP(5)"), auth).Poll(dctx)
	dcancel()
	checkKind(t, err, ErrUnreachable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	_ = live.Close()

	// Wrong password: the server refuses (bad response), and no password
	// shows in the error.
	const wrong = "not-the-right-pass"
	_, err = buildMySQL(t, ms.meta("SELECT 1"), map[string]string{"password": wrong}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), mariaDBTestPassword) {
		t.Errorf("error leaks the password: %v", err)
	}
	_, err = buildMySQL(t, map[string]string{"query": "SELECT 1", "queryValue": "1"},
		map[string]string{"connectionString": strings.Replace(dsn, mariaDBTestPassword, wrong, 1)}).Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error leaks the password: %v", err)
	}

	// Server gone: unreachable.
	again := buildMySQL(t, ms.meta("SELECT 1"), auth)
	pollExact(t, again, "1", false)
	ms.stop()
	_, err = again.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	if !strings.Contains(err.Error(), source) {
		t.Errorf("error %q does not name the trigger type and source", err)
	}
}

func TestMySQLInvalidConfig(t *testing.T) {
	const password = "PASSWORD-very-secret"
	for name, dsn := range map[string]string{
		"bad parameter":        "u:" + password + "@tcp(127.0.0.1:1)/db?timeout=soon",
		"unknown network":      "u:" + password + "@carrier/db",
		"unterminated address": "u:" + password + "@tcp(127.0.0.1:1/db",
		"unknown TLS config":   "u:" + password + "@tcp(127.0.0.1:1)/db?tls=mine",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tryBuild("mysql", map[string]string{"query": "SELECT 1", "queryValue": "1"}, map[string]string{"connectionString": dsn}, Deps{})
			checkKind(t, err, ErrInvalidConfig)
			if strings.Contains(err.Error(), "very-secret") {
				t.Fatalf("error contains the password: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "mysql trigger: ") {
				t.Errorf("error %q does not name the trigger type (and no source)", err)
			}
		})
	}
}

func TestMySQLNoSecretInErrors(t *testing.T) {
	const password = "PASSWORD-very-secret"
	dead := closedAddress(t)
	host, port, _ := net.SplitHostPort(dead)
	tests := map[string]map[string]string{
		"separate settings, unreachable":   {"password": password},
		"connection string, unreachable":   {"connectionString": "u:" + password + "@tcp(" + dead + ")/d"},
		"escaped password, unreachable":    {"connectionString": "u:" + password + "/x@tcp(" + dead + ")/d"},
		"unix socket missing, unreachable": {"connectionString": "u:" + password + "@unix(/nonexistent/ebb.sock)/d"},
	}
	for name, auth := range tests {
		t.Run(name, func(t *testing.T) {
			meta := map[string]string{"query": "SELECT 1", "queryValue": "1"}
			if _, ok := auth["connectionString"]; !ok {
				meta["host"], meta["port"], meta["username"], meta["dbName"] = host, port, "u", "d"
			}
			s, err := tryBuild("mysql", meta, auth, Deps{})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			_, err = s.Poll(t.Context())
			checkKind(t, err, ErrUnreachable)
			if strings.Contains(err.Error(), "very-secret") {
				t.Fatalf("error contains the password: %v", err)
			}
			if !strings.Contains(err.Error(), "mysql trigger (") {
				t.Errorf("error %q does not name the trigger type and source", err)
			}
		})
	}
}
