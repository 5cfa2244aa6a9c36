package scaler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

const postgresTestPassword = "s3cr3t-pg-pass"

// postgresServer is a throwaway PostgreSQL cluster owned by a test.
type postgresServer struct {
	t      *testing.T
	bin    string
	data   string
	port   int
	asRoot bool
	cmd    *exec.Cmd
	once   sync.Once
}

// postgresBinDir finds the directory of initdb and postgres.
func postgresBinDir() string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Strings(matches)
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1])
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "postgres")); err == nil {
			return filepath.Dir(p)
		}
	}
	return ""
}

func startPostgres(t *testing.T) *postgresServer {
	t.Helper()
	bin := postgresBinDir()
	if bin == "" {
		t.Skip("PostgreSQL server binaries (initdb, postgres) are not installed (apt-get install postgresql); skipping the real-PostgreSQL test")
	}
	ps := &postgresServer{t: t, bin: bin, asRoot: os.Geteuid() == 0}
	// PostgreSQL refuses to run as root: as root, run it as the postgres
	// user in a directory it owns.
	dir, err := os.MkdirTemp("", "ebb-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(postgresTestPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ps.asRoot {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{dir, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	ps.data = filepath.Join(dir, "data")
	addr := closedAddress(t)
	ps.port, _ = strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])

	if out, err := ps.command("initdb", "-D", ps.data, "-U", "postgres", "--auth-local=trust",
		"--auth-host=scram-sha-256", "--pwfile="+pwfile, "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ps.cmd = ps.command("postgres", "-D", ps.data, "-k", dir, "-p", strconv.Itoa(ps.port), "-h", "127.0.0.1",
		"-c", "fsync=off", "-c", "logging_collector=off")
	if err := ps.cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(ps.stop)

	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := ps.admin(t.Context())
		if err == nil {
			_ = conn.Close(t.Context())
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres on port %d not ready: %v", ps.port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (ps *postgresServer) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(ps.bin, name)
	if ps.asRoot {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (ps *postgresServer) connString() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres sslmode=disable", ps.port, postgresTestPassword)
}

func (ps *postgresServer) admin(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return pgx.Connect(ctx, ps.connString())
}

func (ps *postgresServer) stop() {
	ps.once.Do(func() {
		if out, err := ps.command("pg_ctl", "stop", "-D", ps.data, "-m", "immediate", "-w").CombinedOutput(); err != nil {
			ps.t.Logf("pg_ctl stop: %v\n%s", err, out)
			_ = ps.cmd.Process.Kill()
		}
		_ = ps.cmd.Wait()
	})
}

func exec1(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func buildPostgreSQL(t *testing.T, meta, auth map[string]string) Scaler {
	t.Helper()
	s, err := newPostgreSQL(parseTrigger(t, "postgresql", meta, auth).(*scalers.PostgreSQLConfig), Deps{})
	if err != nil {
		t.Fatalf("newPostgreSQL: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// ebbConnections counts the server connections of ebb's pools.
func ebbConnections(t *testing.T, admin *pgx.Conn) int {
	t.Helper()
	var n int
	if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ebb'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPostgreSQL(t *testing.T) {
	ctx := t.Context()
	ps := startPostgres(t)
	admin, err := ps.admin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close(context.Background()) }()
	exec1(t, admin, "CREATE TABLE jobs (id serial PRIMARY KEY, state text NOT NULL)")

	meta := func(query string) map[string]string {
		return map[string]string{
			"query": query, "targetQueryValue": "5", "activationTargetQueryValue": "2",
			"host": "127.0.0.1", "port": strconv.Itoa(ps.port), "userName": "postgres", "dbName": "postgres", "sslmode": "disable",
		}
	}
	auth := map[string]string{"password": postgresTestPassword}
	count := buildPostgreSQL(t, meta("SELECT count(*) FROM jobs WHERE state = 'pending'"), auth)

	pollWant(t, count, 0, false)
	exec1(t, admin, "INSERT INTO jobs (state) SELECT 'pending' FROM generate_series(1, 2)")
	pollWant(t, count, 2, false) // at the activation value: not active
	exec1(t, admin, "INSERT INTO jobs (state) SELECT 'pending' FROM generate_series(1, 5)")
	exec1(t, admin, "INSERT INTO jobs (state) VALUES ('done')")
	pollWant(t, count, 7, true)

	// The connection string form, with the password in it.
	url := buildPostgreSQL(t, map[string]string{"query": "SELECT count(*) FROM jobs", "targetQueryValue": "5"},
		map[string]string{"connection": fmt.Sprintf("postgresql://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", postgresTestPassword, ps.port)})
	pollWant(t, url, 8, true)

	// Other column types: exact values.
	for query, want := range map[string]string{
		"SELECT 2.5::float8":                    "2.5",
		"SELECT 0.1::float4":                    "0.1",
		"SELECT 12.340::numeric":                "12.34",
		"SELECT 123456789012345::numeric":       "123456789012345",
		"SELECT 3::int2, 'ignored'":             "3",
		"SELECT '7'::text":                      "7",
		"SELECT count(*) - 100 FROM jobs":       "-92",
		"SELECT 1.5::float8 WHERE 1 = 1 ":       "1.5",
		"SELECT sum(id)::numeric / 4 FROM jobs": "9",
	} {
		s := buildPostgreSQL(t, meta(query), auth)
		r, err := s.Poll(ctx)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		if r.Value.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("%s: got %s, want %s", query, r.Value.String(), want)
		}
		wq := resource.MustParse(want)
		if wantActive := wq.AsApproximateFloat64() > 2; r.Active != wantActive {
			t.Errorf("%s: active=%v", query, r.Active)
		}
	}

	// Answers that are not a number, and failing queries.
	for _, query := range []string{
		"SELECT NULL::int", "SELECT id FROM jobs WHERE false", "SELECT 'many'::text", "SELECT 'NaN'::numeric",
		"SELECT true", "SELEKT 1", "SELECT * FROM no_such_table",
	} {
		s := buildPostgreSQL(t, meta(query), auth)
		_, err := s.Poll(ctx)
		checkKind(t, err, ErrBadResponse)
		if !strings.Contains(err.Error(), "postgresql trigger (127.0.0.1:"+strconv.Itoa(ps.port)+"/postgres)") {
			t.Errorf("error %q does not name the trigger type and address", err)
		}
	}

	// Concurrent polls share a pool of at most two connections.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	slow := buildPostgreSQL(t, meta("SELECT count(*) FROM jobs, pg_sleep(0.05)"), auth)
	for range 16 {
		wg.Go(func() {
			if _, err := slow.Poll(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent poll: %v", err)
	}
	if n := slow.(*postgreSQLScaler).pool.Stat().TotalConns(); n > postgreSQLMaxConns {
		t.Errorf("pool holds %d connections", n)
	}

	// Close leaves no connection behind.
	if ebbConnections(t, admin) == 0 {
		t.Fatal("expected the scalers' connections before Close")
	}
	for _, s := range []Scaler{count, url, slow} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []Scaler{count, url, slow} {
		if n := s.(*postgreSQLScaler).pool.Stat().TotalConns(); n != 0 {
			t.Errorf("closed pool holds %d connections", n)
		}
	}
	_, err = count.Poll(ctx)
	checkKind(t, err, ErrClosed)
	if err := count.Close(); err != nil {
		t.Fatal(err)
	}

	// A cancelled poll.
	live := buildPostgreSQL(t, meta("SELECT 1"), auth)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = live.Poll(cctx)
	checkKind(t, err, ErrUnreachable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	_ = live.Close()

	// Wrong password: the server refuses (bad response), and no password
	// shows in the error.
	const wrong = "not-the-right-pass"
	bad := buildPostgreSQL(t, meta("SELECT 1"), map[string]string{"password": wrong})
	_, err = bad.Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), postgresTestPassword) {
		t.Errorf("error leaks the password: %v", err)
	}

	// Server gone: unreachable.
	again := buildPostgreSQL(t, meta("SELECT 1"), auth)
	pollWant(t, again, 1, false)
	ps.stop()
	_, err = again.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
}

func TestPostgreSQLNoSecretInErrors(t *testing.T) {
	const password = "PASSWORD-very-secret"
	dead := closedAddress(t)
	host, port, _ := net.SplitHostPort(dead)
	tests := map[string]map[string]string{
		"separate settings, unreachable": {"host": host, "port": port, "userName": "u", "dbName": "d", "sslmode": "disable", "password": password},
		"URL, unreachable":               {"connection": "postgresql://u:" + password + "@" + dead + "/d?sslmode=disable"},
		"keyword/value, unreachable":     {"connection": "host=" + host + " port=" + port + " user=u password=" + password + " dbname=d sslmode=disable"},
		"unparsable URL":                 {"connection": "postgresql://u:" + password + "@" + host + ":notaport/d"},
		"unparsable keyword/value":       {"connection": "host=" + host + " password=" + password + " port=x"},
	}
	for name, auth := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := parseTrigger(t, "postgresql", map[string]string{"query": "SELECT 1", "targetQueryValue": "1"}, auth)
			s, err := newPostgreSQL(cfg.(*scalers.PostgreSQLConfig), Deps{})
			if err == nil {
				t.Cleanup(func() { _ = s.Close() })
				_, err = s.Poll(t.Context())
			}
			if err == nil {
				t.Fatal("expected an error")
			}
			if strings.Contains(err.Error(), "very-secret") {
				t.Fatalf("error contains the password: %v", err)
			}
			if !strings.Contains(err.Error(), "postgresql trigger") {
				t.Errorf("error %q does not name the trigger type", err)
			}
			var e *Error
			if !errors.As(err, &e) || (!errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrInvalidConfig)) {
				t.Errorf("error %v: want an unreachable or invalid config *Error", err)
			}
		})
	}
}
