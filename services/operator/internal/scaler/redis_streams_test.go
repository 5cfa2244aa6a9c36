package scaler

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// parseTrigger parses a trigger with the shared parsers.
func parseTrigger(t *testing.T, typ string, meta, auth map[string]string) scalers.Config {
	t.Helper()
	cfg, _, err := scalers.Parse(scalers.Trigger{Type: typ, Metadata: meta, AuthParams: auth})
	if err != nil {
		t.Fatalf("parse %s: %v", typ, err)
	}
	return cfg
}

func buildRedisStreams(t *testing.T, meta map[string]string, auth map[string]string) Scaler {
	t.Helper()
	s, err := newRedisStreams(parseTrigger(t, "redis-streams", meta, auth).(*scalers.RedisStreamsConfig), Deps{})
	if err != nil {
		t.Fatalf("newRedisStreams: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func pollWant(t *testing.T, s Scaler, want int64, wantActive bool) {
	t.Helper()
	r, err := s.Poll(t.Context())
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	if r.Value.Value() != want || r.Value.String() != strconv.FormatInt(want, 10) || r.Active != wantActive {
		t.Fatalf("got %s active=%v, want %d active=%v", r.Value.String(), r.Active, want, wantActive)
	}
}

func xadd(t *testing.T, admin *redis.Client, stream string, n int) {
	t.Helper()
	for range n {
		if err := admin.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: []string{"k", "v"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRedisStreams(t *testing.T) {
	ctx := t.Context()
	rs := startRedis(t, 0)
	admin := rs.admin()
	defer func() { _ = admin.Close() }()
	auth := map[string]string{"password": redisTestPassword}
	base := func(extra map[string]string) map[string]string {
		m := map[string]string{"address": rs.addr(), "stream": "events", "databaseIndex": "2", "activationLagCount": "2"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	length := buildRedisStreams(t, base(nil), auth)
	pending := buildRedisStreams(t, base(map[string]string{"consumerGroup": "workers"}), auth)
	lag := buildRedisStreams(t, base(map[string]string{"consumerGroup": "workers", "lagCount": "10"}), auth)
	if m := pending.(*redisStreamsScaler).cfg.Mode; m != scalers.RedisStreamsPendingEntries {
		t.Fatalf("mode %s", m)
	}
	if m := lag.(*redisStreamsScaler).cfg.Mode; m != scalers.RedisStreamsLag {
		t.Fatalf("mode %s", m)
	}

	// No stream yet: length 0; the pending count needs the group.
	pollWant(t, length, 0, false)
	_, err := pending.Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), "redis-streams trigger ("+rs.addr()+")") {
		t.Errorf("error %q does not name the trigger type and address", err)
	}

	xadd(t, admin, "events", 2)
	pollWant(t, length, 2, false) // at activationLagCount: not active
	// The group is not registered yet: its lag is the stream's length.
	pollWant(t, lag, 2, false)
	xadd(t, admin, "events", 3)
	pollWant(t, length, 5, true)
	pollWant(t, lag, 5, true)

	if err := admin.XGroupCreate(ctx, "events", "workers", "0").Err(); err != nil {
		t.Fatal(err)
	}
	pollWant(t, pending, 0, false)
	pollWant(t, lag, 5, true)
	// A consumer reads 4 entries and acknowledges one.
	res, err := admin.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: "c1", Streams: []string{"events", ">"}, Count: 4}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.XAck(ctx, "events", "workers", res[0].Messages[0].ID).Err(); err != nil {
		t.Fatal(err)
	}
	pollWant(t, pending, 3, true)
	pollWant(t, lag, 1, false)
	pollWant(t, length, 5, true)

	// A lag Redis cannot determine (an unread entry deleted) is refused.
	all, err := admin.XRange(ctx, "events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	xadd(t, admin, "events", 1)
	if err := admin.XDel(ctx, "events", all[len(all)-1].ID).Err(); err != nil {
		t.Fatal(err)
	}
	if groups, _ := admin.XInfoGroups(ctx, "events").Result(); len(groups) == 1 && groups[0].Lag < 0 {
		_, err = lag.Poll(ctx)
		checkKind(t, err, ErrBadResponse)
	}

	// Lag mode on a key that is not a stream.
	if err := admin.Set(ctx, "not-a-stream", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	bad := buildRedisStreams(t, base(map[string]string{"stream": "not-a-stream", "consumerGroup": "g", "lagCount": "1"}), auth)
	_, err = bad.Poll(ctx)
	checkKind(t, err, ErrBadResponse)

	// Server gone: unreachable; back: the same client recovers.
	port := rs.port
	rs.stop()
	_, err = length.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	rs2 := startRedis(t, port)
	admin2 := rs2.admin()
	defer func() { _ = admin2.Close() }()
	xadd(t, admin2, "events", 4)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := length.Poll(ctx)
		if err == nil {
			if r.Value.Value() != 4 || !r.Active {
				t.Fatalf("after restart: %s %v", r.Value.String(), r.Active)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Close leaves no connection behind and is idempotent.
	for _, s := range []Scaler{length, pending, lag, bad} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline = time.Now().Add(5 * time.Second)
	for otherClients(ctx, t, admin2) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("connections remain after Close")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err = length.Poll(ctx)
	checkKind(t, err, ErrClosed)
	if !strings.Contains(err.Error(), "redis-streams trigger") {
		t.Errorf("error %q does not name the trigger type", err)
	}
}

func TestRedisStreamsNoSecretInErrors(t *testing.T) {
	const password = "PASSWORD-very-secret"
	rs := startRedis(t, 0)
	for name, addr := range map[string]string{"wrong password": rs.addr(), "unreachable": closedAddress(t)} {
		t.Run(name, func(t *testing.T) {
			s := buildRedisStreams(t, map[string]string{"address": addr, "stream": "s"}, map[string]string{"password": password})
			_, err := s.Poll(t.Context())
			if err == nil {
				t.Fatal("expected an error")
			}
			if strings.Contains(err.Error(), "very-secret") || strings.Contains(err.Error(), redisTestPassword) {
				t.Fatalf("error leaks the password: %v", err)
			}
			if !strings.Contains(err.Error(), "redis-streams trigger") {
				t.Errorf("error %q does not name the trigger type", err)
			}
		})
	}
}

func TestRedisStreamsInvalidConfig(t *testing.T) {
	_, err := newRedisStreams(&scalers.RedisStreamsConfig{Stream: "s", Mode: scalers.RedisStreamsLag,
		Connection: scalers.RedisConnection{Addresses: []string{"127.0.0.1:1"}}}, Deps{})
	checkKind(t, err, ErrInvalidConfig)
	_, err = newRedisStreams(&scalers.RedisStreamsConfig{Stream: "s"}, Deps{})
	checkKind(t, err, ErrInvalidConfig)
}
