package scaler

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const redisTestPassword = "s3cr3t-redis-pass"

// redisServer is a redis-server process owned by a test.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T, port int) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server); skipping the real-Redis test")
	}
	if port == 0 {
		addr := closedAddress(t)
		port, _ = strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	}
	rs := &redisServer{t: t, port: port}
	rs.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--requirepass", redisTestPassword, "--dir", t.TempDir(), "--daemonize", "no", "--loglevel", "warning")
	if err := rs.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(rs.stop)
	admin := rs.admin()
	defer func() { _ = admin.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := admin.Ping(t.Context()).Err(); err == nil {
			return rs
		} else if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d not ready: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (rs *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(rs.port) }

func (rs *redisServer) admin() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: rs.addr(), Password: redisTestPassword, DB: 2, MaxRetries: -1, DisableIdentity: true})
}

func (rs *redisServer) stop() {
	if rs.cmd == nil || rs.cmd.Process == nil {
		return
	}
	_ = rs.cmd.Process.Kill()
	_ = rs.cmd.Wait()
	rs.cmd = nil
}

// otherClients counts the connections of the server other than the
// admin's own.
func otherClients(ctx context.Context, t *testing.T, admin *redis.Client) int {
	t.Helper()
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		if line != "" && !strings.Contains(line, " cmd=client|list") && !strings.Contains(line, " cmd=client ") {
			n++
		}
	}
	return n
}

func TestRedisListLength(t *testing.T) {
	ctx := t.Context()
	rs := startRedis(t, 0)
	admin := rs.admin()
	defer func() { _ = admin.Close() }()

	s := build(t, "redis", map[string]string{
		"address": rs.addr(), "listName": "jobs", "listLength": "5", "activationListLength": "2", "databaseIndex": "2",
	}, map[string]string{"password": redisTestPassword}, Deps{})
	client := s.(*redisScaler).client

	poll := func(wantLen int64, wantActive bool) {
		t.Helper()
		r, err := s.Poll(ctx)
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if r.Value.Value() != wantLen || r.Value.String() != strconv.FormatInt(wantLen, 10) || r.Active != wantActive {
			t.Fatalf("got length=%s active=%v, want %d %v", r.Value.String(), r.Active, wantLen, wantActive)
		}
	}

	poll(0, false) // no key yet
	if err := admin.RPush(ctx, "jobs", "a", "b").Err(); err != nil {
		t.Fatal(err)
	}
	poll(2, false) // at activationListLength: not active
	if err := admin.RPush(ctx, "jobs", "c", "d", "e", "f", "g").Err(); err != nil {
		t.Fatal(err)
	}
	poll(7, true)
	if err := admin.LPop(ctx, "jobs").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.LPopCount(ctx, "jobs", 5).Err(); err != nil {
		t.Fatal(err)
	}
	poll(1, false)

	// A key of another type: a string is refused, a set is counted.
	if err := admin.Set(ctx, "jobs-str", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	str := build(t, "redis", map[string]string{"address": rs.addr(), "listName": "jobs-str", "databaseIndex": "2"},
		map[string]string{"password": redisTestPassword}, Deps{})
	_, err := str.Poll(ctx)
	checkKind(t, err, ErrBadResponse)

	// Concurrent polls share the client.
	done := make(chan error, 8)
	for range 8 {
		go func() { _, err := s.Poll(ctx); done <- err }()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatalf("concurrent poll: %v", err)
		}
	}

	// Server gone: unreachable.
	port := rs.port
	rs.stop()
	_, err = s.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	if !strings.Contains(err.Error(), "redis trigger ("+rs.addr()+")") {
		t.Errorf("error %q does not name the trigger type and address", err)
	}

	// Server back on the same port: the same scaler and client recover.
	rs2 := startRedis(t, port)
	admin2 := rs2.admin()
	defer func() { _ = admin2.Close() }()
	if err := admin2.RPush(ctx, "jobs", "x", "y", "z").Err(); err != nil {
		t.Fatal(err)
	}
	var r Reading
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r, err = s.Poll(ctx); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no recovery after restart: %v", err)
	}
	if r.Value.Value() != 3 || !r.Active {
		t.Fatalf("after restart: got %s active=%v", r.Value.String(), r.Active)
	}
	if s.(*redisScaler).client != client {
		t.Fatal("the scaler replaced its client")
	}

	// Close leaves no connection behind.
	if n := otherClients(ctx, t, admin2); n == 0 {
		t.Fatal("expected the scaler's connection before Close")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := str.Close(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		n := otherClients(ctx, t, admin2)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			list, _ := admin2.ClientList(ctx).Result()
			t.Fatalf("%d connections remain after Close:\n%s", n, list)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stats := client.PoolStats(); stats.TotalConns != 0 {
		t.Errorf("pool still holds %d connections", stats.TotalConns)
	}
	_, err = s.Poll(ctx)
	checkKind(t, err, ErrClosed)
}

func TestRedisWrongPassword(t *testing.T) {
	rs := startRedis(t, 0)
	const wrong = "not-the-right-pass"
	s := build(t, "redis", map[string]string{"address": rs.addr(), "listName": "jobs"}, map[string]string{"password": wrong}, Deps{})
	_, err := s.Poll(t.Context())
	if err == nil {
		t.Fatal("poll with a wrong password succeeded")
	}
	checkKind(t, err, ErrBadResponse)
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), redisTestPassword) {
		t.Errorf("error leaks the password: %v", err)
	}
}
