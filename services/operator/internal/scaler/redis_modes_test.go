package scaler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The redis-cluster and redis-sentinel trigger types (list and streams
// scalers) against real servers: a three-master Redis Cluster, and a
// master watched by a Sentinel, each made of Debian's redis-server and
// redis-sentinel processes on free 127.0.0.1 ports.

const (
	redisModesPassword    = "s3cr3t-modes-pass"
	redisSentinelPassword = "s3cr3t-sentinel-pass"
	redisSentinelMaster   = "ebbmaster"
	// redisModesAdminName names the tests' own connections, so connection
	// counts leave them out.
	redisModesAdminName = "ebb-test-admin"
)

// redisModesBinary returns the path of a Redis command. A missing command
// fails the test: hack/install-event-sources.sh installs it.
func redisModesBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: run hack/install-event-sources.sh (Debian package %s)", name, pkg)
	}
	return p
}

func redisModesPort(t *testing.T) int {
	t.Helper()
	addr := closedAddress(t)
	port, err := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// redisModesWait calls check until it succeeds, failing the test with check's
// last error after timeout.
func redisModesWait(t *testing.T, what string, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// redisModesProc is one redis-server or redis-sentinel process owned by a
// test, logging to a file in its own directory.
type redisModesProc struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startRedisModesProc(t *testing.T, bin string, port int, dir string, args ...string) *redisModesProc {
	t.Helper()
	logFile, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logFile.Close() }()
	p := &redisModesProc{t: t, port: port, dir: dir, cmd: exec.Command(bin, args...)}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(p.stop)
	return p
}

func (p *redisModesProc) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// stop kills the process and waits for it; it is idempotent.
func (p *redisModesProc) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// log returns the end of the process's log, for failure messages.
func (p *redisModesProc) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "redis.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// client is a plain client of the process (database 0), named as the
// tests' own.
func (p *redisModesProc) client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: p.addr(), Password: redisModesPassword, ClientName: redisModesAdminName,
		MaxRetries: -1, DisableIdentity: true})
	p.t.Cleanup(func() { _ = c.Close() })
	return c
}

// redisModesServerArgs are the settings of every redis-server of these tests:
// loopback only, nothing written to disk, a password.
func redisModesServerArgs(port int, dir string) []string {
	return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
		"--requirepass", redisModesPassword, "--masterauth", redisModesPassword, "--daemonize", "no", "--loglevel", "warning"}
}

// redisModesConnections counts the server's client connections that are
// not the tests' own, a Sentinel's, a replica's or another node's (MIGRATE
// keeps its connection to the target node for a while).
func redisModesConnections(ctx context.Context, t *testing.T, c *redis.Client) int {
	t.Helper()
	list, err := c.ClientList(ctx).Result()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		fields := " " + line + " "
		if line == "" || strings.Contains(fields, " name="+redisModesAdminName+" ") || strings.Contains(fields, " name=sentinel-") ||
			strings.Contains(fields, " flags=S ") || strings.Contains(fields, " cmd=client|list ") ||
			strings.Contains(fields, " cmd=restore-asking ") {
			continue
		}
		n++
	}
	return n
}

func redisModesNoConnections(t *testing.T, clients ...*redis.Client) {
	t.Helper()
	for _, c := range clients {
		redisModesWait(t, "the scalers' connections to "+c.Options().Addr+" closed", 10*time.Second, func() error {
			if n := redisModesConnections(t.Context(), t, c); n != 0 {
				list, _ := c.ClientList(t.Context()).Result()
				return fmt.Errorf("%d connections remain:\n%s", n, list)
			}
			return nil
		})
	}
}

func redisModesPush(t *testing.T, c redis.Cmdable, key string, n int) {
	t.Helper()
	for range n {
		if err := c.RPush(t.Context(), key, "job").Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func redisModesXAdd(t *testing.T, c redis.Cmdable, stream string, n int) {
	t.Helper()
	for range n {
		if err := c.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, Values: []string{"k", "v"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// redisModesPollUntil polls until the scaler reads want (with activity
// wantActive), failing after timeout with the last reading or error.
func redisModesPollUntil(t *testing.T, s Scaler, want int64, wantActive bool, timeout time.Duration) {
	t.Helper()
	redisModesWait(t, fmt.Sprintf("a reading of %d", want), timeout, func() error {
		r, err := s.Poll(t.Context())
		if err != nil {
			return err
		}
		if r.Value.String() != strconv.FormatInt(want, 10) || r.Active != wantActive {
			return fmt.Errorf("got %s active=%v", r.Value.String(), r.Active)
		}
		return nil
	})
}

func redisModesUnreachable(t *testing.T, s Scaler, typ string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := s.Poll(ctx)
	took := time.Since(start)
	t.Logf("unreachable poll took %v: %v", took, err)
	checkKind(t, err, ErrUnreachable)
	// Well within the operator's poll timeout (5 s): go-redis's own dial
	// retries once made a sentinel poll take 11 s.
	if took > 4*time.Second {
		t.Errorf("the poll took %v", took)
	}
	if !strings.Contains(err.Error(), typ+" trigger (") {
		t.Errorf("error %q does not name the %s trigger", err, typ)
	}
	for _, secret := range []string{redisModesPassword, redisSentinelPassword} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q shows a password", err)
		}
	}
}

// redisTestCluster is a Redis Cluster of three masters without replicas.
type redisTestCluster struct {
	t     *testing.T
	nodes []*redisModesProc
	ids   []string
}

func startRedisCluster(t *testing.T) *redisTestCluster {
	t.Helper()
	server := redisModesBinary(t, "redis-server", "redis-server")
	cli := redisModesBinary(t, "redis-cli", "redis-tools")
	c := &redisTestCluster{t: t}
	for range 3 {
		dir := t.TempDir()
		port, bus := redisModesPort(t), redisModesPort(t)
		args := append(redisModesServerArgs(port, dir), "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(bus), "--cluster-node-timeout", "5000")
		c.nodes = append(c.nodes, startRedisModesProc(t, server, port, dir, args...))
	}
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr()
		nc := n.client()
		redisModesWait(t, "redis-server "+n.addr()+" up", 15*time.Second, func() error { return nc.Ping(t.Context()).Err() })
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	args := append([]string{"-a", redisModesPassword, "--no-auth-warning", "--cluster", "create"}, addrs...)
	if out, err := exec.CommandContext(ctx, cli, append(args, "--cluster-yes")...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s\n%s", err, out, c.nodes[0].log())
	}
	for _, n := range c.nodes {
		nc := n.client()
		redisModesWait(t, "cluster state ok on "+n.addr(), 30*time.Second, func() error {
			info, err := nc.ClusterInfo(t.Context()).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") ||
				!strings.Contains(info, "cluster_slots_assigned:16384") {
				return errors.New(info)
			}
			return nil
		})
		id, err := nc.Do(t.Context(), "CLUSTER", "MYID").Text()
		if err != nil {
			t.Fatal(err)
		}
		c.ids = append(c.ids, id)
	}
	return c
}

// admin is a cluster client, following keys to their masters.
func (c *redisTestCluster) admin() *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{c.nodes[0].addr()}, Password: redisModesPassword,
		ClientName: redisModesAdminName, DisableIdentity: true})
	c.t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// owner returns the index of the node serving slot, as node 0 sees it.
func (c *redisTestCluster) owner(slot int64) int {
	c.t.Helper()
	shards, err := c.nodes[0].client().ClusterShards(c.t.Context()).Result()
	if err != nil {
		c.t.Fatal(err)
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start > slot || slot > r.End {
				continue
			}
			for _, n := range sh.Nodes {
				for i, p := range c.nodes {
					if n.Role == "master" && n.Port == int64(p.port) {
						return i
					}
				}
			}
		}
	}
	c.t.Fatalf("no node serves slot %d: %+v", slot, shards)
	return -1
}

func (c *redisTestCluster) slot(key string) int64 {
	c.t.Helper()
	slot, err := c.nodes[0].client().ClusterKeySlot(c.t.Context(), key).Result()
	if err != nil {
		c.t.Fatal(err)
	}
	return slot
}

// keyOnEveryNode returns one key per node, named prefix-<n>: the i-th
// lives on node i.
func (c *redisTestCluster) keyOnEveryNode(prefix string) []string {
	c.t.Helper()
	keys := make([]string, len(c.nodes))
	found := 0
	for n := 0; found < len(keys) && n < 1000; n++ {
		key := prefix + "-" + strconv.Itoa(n)
		if i := c.owner(c.slot(key)); keys[i] == "" {
			keys[i] = key
			found++
		}
	}
	if found < len(keys) {
		c.t.Fatalf("no key of prefix %s on some node: %q", prefix, keys)
	}
	return keys
}

// migrateSlot moves key's slot, with its keys, from node from to node
// to, as redis-cli --cluster reshard does for each slot.
func (c *redisTestCluster) migrateSlot(key string, from, to int) {
	c.t.Helper()
	ctx := c.t.Context()
	slot := c.slot(key)
	src, dst := c.nodes[from].client(), c.nodes[to].client()
	do := func(cl *redis.Client, args ...any) {
		c.t.Helper()
		if err := cl.Do(ctx, args...).Err(); err != nil {
			c.t.Fatalf("%v: %v", args, err)
		}
	}
	do(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", c.ids[from])
	do(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", c.ids[to])
	keys, err := src.ClusterGetKeysInSlot(ctx, int(slot), 1000).Result()
	if err != nil {
		c.t.Fatal(err)
	}
	if len(keys) > 0 {
		args := []any{"MIGRATE", "127.0.0.1", c.nodes[to].port, "", 0, 5000, "AUTH", redisModesPassword, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		do(src, args...)
	}
	for _, n := range c.nodes {
		do(n.client(), "CLUSTER", "SETSLOT", slot, "NODE", c.ids[to])
	}
	if got := c.owner(slot); got != to {
		c.t.Fatalf("slot %d is on node %d after the migration, want %d", slot, got, to)
	}
}

func (c *redisTestCluster) stop() {
	for _, n := range c.nodes {
		n.stop()
	}
}

func TestRedisClusterList(t *testing.T) {
	ctx := t.Context()
	cl := startRedisCluster(t)
	admin := cl.admin()
	keys := cl.keyOnEveryNode("jobs")
	auth := map[string]string{"password": redisModesPassword}

	// Every scaler knows node 0 only (the last one through host and port
	// lists): the cluster client finds the master of each key.
	scs := make([]Scaler, len(keys))
	for i, key := range keys {
		meta := map[string]string{"addresses": cl.nodes[0].addr(), "listName": key, "listLength": "5", "activationListLength": "2"}
		if i == len(keys)-1 {
			delete(meta, "addresses")
			meta["hosts"], meta["ports"] = "127.0.0.1", strconv.Itoa(cl.nodes[0].port)
		}
		scs[i] = build(t, "redis-cluster", meta, auth, Deps{})
	}
	for i, key := range keys {
		pollWant(t, scs[i], 0, false) // no key yet
		redisModesPush(t, admin, key, 2)
		pollWant(t, scs[i], 2, false) // at activationListLength: not active
		redisModesPush(t, admin, key, 5+i)
		pollWant(t, scs[i], int64(7+i), true)
	}
	// Each scaler reads its own key only, wherever it lives.
	for i := range keys {
		pollWant(t, scs[i], int64(7+i), true)
	}
	if err := admin.LPopCount(ctx, keys[1], 7).Err(); err != nil {
		t.Fatal(err)
	}
	pollWant(t, scs[1], 1, false)
	if err := admin.Del(ctx, keys[1]).Err(); err != nil {
		t.Fatal(err)
	}
	pollWant(t, scs[1], 0, false) // drained

	// Key 0's slot moves to node 2 with its list: the scaler follows the
	// redirection, and sees what is pushed there.
	cl.migrateSlot(keys[0], 0, 2)
	pollWant(t, scs[0], 7, true)
	redisModesPush(t, admin, keys[0], 3)
	pollWant(t, scs[0], 10, true)
	if n, err := cl.nodes[2].client().LLen(ctx, keys[0]).Result(); err != nil || n != 10 {
		t.Fatalf("node 2 holds %d entries (%v), want 10", n, err)
	}

	// A key of another type: bad response.
	if err := admin.Set(ctx, "a-string", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	str := build(t, "redis-cluster", map[string]string{"addresses": cl.nodes[0].addr(), "listName": "a-string"}, auth, Deps{})
	_, err := str.Poll(ctx)
	checkKind(t, err, ErrBadResponse)

	// Close leaves no connection on any node; it is idempotent.
	for _, s := range append(scs, str) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	redisModesNoConnections(t, cl.nodes[0].client(), cl.nodes[1].client(), cl.nodes[2].client())
	_, err = scs[0].Poll(ctx)
	checkKind(t, err, ErrClosed)

	// Every server stopped: unreachable, for a scaler that has polled and
	// for a new one.
	warm := build(t, "redis-cluster", map[string]string{"addresses": cl.nodes[1].addr(), "listName": keys[2]}, auth, Deps{})
	pollWant(t, warm, 9, true)
	cold := build(t, "redis-cluster", map[string]string{"addresses": cl.nodes[1].addr(), "listName": keys[2]}, auth, Deps{})
	cl.stop()
	redisModesUnreachable(t, warm, "redis-cluster")
	redisModesUnreachable(t, cold, "redis-cluster")
}

func TestRedisClusterStreams(t *testing.T) {
	ctx := t.Context()
	cl := startRedisCluster(t)
	admin := cl.admin()
	auth := map[string]string{"password": redisModesPassword}
	// Streams on nodes 1 and 2; the scalers know node 0 only.
	streams := cl.keyOnEveryNode("events")
	stream := func(i int, extra map[string]string) Scaler {
		meta := map[string]string{"addresses": cl.nodes[0].addr(), "stream": streams[i], "activationLagCount": "2"}
		for k, v := range extra {
			meta[k] = v
		}
		return build(t, "redis-cluster-streams", meta, auth, Deps{})
	}
	length := stream(1, nil)
	pending := stream(1, map[string]string{"consumerGroup": "workers"})
	lag := stream(1, map[string]string{"consumerGroup": "workers", "lagCount": "10"})
	other := stream(2, nil)

	pollWant(t, length, 0, false)
	_, err := pending.Poll(ctx) // no stream nor group yet
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), "redis-cluster-streams trigger (") {
		t.Errorf("error %q does not name the trigger", err)
	}

	redisModesXAdd(t, admin, streams[1], 2)
	redisModesXAdd(t, admin, streams[2], 6)
	pollWant(t, length, 2, false) // at activationLagCount: not active
	pollWant(t, lag, 2, false)    // group not registered: the stream's length
	pollWant(t, other, 6, true)
	redisModesXAdd(t, admin, streams[1], 3)
	pollWant(t, length, 5, true)

	if err := admin.XGroupCreate(ctx, streams[1], "workers", "0").Err(); err != nil {
		t.Fatal(err)
	}
	pollWant(t, pending, 0, false)
	pollWant(t, lag, 5, true)
	res, err := admin.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: "c1", Streams: []string{streams[1], ">"}, Count: 4}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.XAck(ctx, streams[1], "workers", res[0].Messages[0].ID).Err(); err != nil {
		t.Fatal(err)
	}
	pollWant(t, pending, 3, true)
	pollWant(t, lag, 1, false)
	pollWant(t, length, 5, true)

	// The stream's slot moves to node 0: every mode follows it.
	cl.migrateSlot(streams[1], 1, 0)
	pollWant(t, pending, 3, true)
	pollWant(t, lag, 1, false)
	pollWant(t, length, 5, true)

	cl.stop()
	for _, s := range []Scaler{length, pending, lag, other} {
		redisModesUnreachable(t, s, "redis-cluster-streams")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// redisTestSentinel is a master, optionally a replica of it, and a
// Sentinel monitoring the master under redisSentinelMaster, with a
// password of its own.
type redisTestSentinel struct {
	t                         *testing.T
	master, replica, sentinel *redisModesProc
}

func startRedisSentinel(t *testing.T, withReplica bool) *redisTestSentinel {
	t.Helper()
	server := redisModesBinary(t, "redis-server", "redis-server")
	sentinelBin := redisModesBinary(t, "redis-sentinel", "redis-sentinel")
	st := &redisTestSentinel{t: t}
	dir := t.TempDir()
	port := redisModesPort(t)
	st.master = startRedisModesProc(t, server, port, dir, redisModesServerArgs(port, dir)...)
	mc := st.master.client()
	redisModesWait(t, "master up", 15*time.Second, func() error { return mc.Ping(t.Context()).Err() })
	if withReplica {
		dir := t.TempDir()
		port := redisModesPort(t)
		st.replica = startRedisModesProc(t, server, port, dir, append(redisModesServerArgs(port, dir), "--replicaof", "127.0.0.1", strconv.Itoa(st.master.port))...)
		rc := st.replica.client()
		redisModesWait(t, "replica in sync", 30*time.Second, func() error {
			info, err := rc.Info(t.Context(), "replication").Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "master_link_status:up") {
				return errors.New(info)
			}
			return nil
		})
	}

	dir = t.TempDir()
	port = redisModesPort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(conf, []byte(strings.Join([]string{
		"port " + strconv.Itoa(port),
		"bind 127.0.0.1",
		"daemonize no",
		"dir " + dir,
		"loglevel warning",
		"requirepass " + redisSentinelPassword,
		"sentinel monitor " + redisSentinelMaster + " 127.0.0.1 " + strconv.Itoa(st.master.port) + " 1",
		"sentinel auth-pass " + redisSentinelMaster + " " + redisModesPassword,
		"sentinel down-after-milliseconds " + redisSentinelMaster + " 5000",
		"sentinel failover-timeout " + redisSentinelMaster + " 20000",
		"",
	}, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	st.sentinel = startRedisModesProc(t, sentinelBin, port, dir, conf)
	sc := st.sentinelClient()
	redisModesWait(t, "the sentinel knows the master", 15*time.Second, func() error {
		addr, err := sc.GetMasterAddrByName(t.Context(), redisSentinelMaster).Result()
		if err != nil {
			return fmt.Errorf("%v\n%s", err, st.sentinel.log())
		}
		if addr[1] != strconv.Itoa(st.master.port) {
			return fmt.Errorf("master %v", addr)
		}
		return nil
	})
	if withReplica {
		redisModesWait(t, "the sentinel knows the replica", 30*time.Second, func() error {
			replicas, err := sc.Replicas(t.Context(), redisSentinelMaster).Result()
			if err != nil {
				return err
			}
			for _, r := range replicas {
				if r["port"] == strconv.Itoa(st.replica.port) && !strings.Contains(r["flags"], "disconnected") {
					return nil
				}
			}
			return fmt.Errorf("replicas %v", replicas)
		})
	}
	return st
}

func (st *redisTestSentinel) sentinelClient() *redis.SentinelClient {
	c := redis.NewSentinelClient(&redis.Options{Addr: st.sentinel.addr(), Password: redisSentinelPassword,
		ClientName: redisModesAdminName, DisableIdentity: true, MaxRetries: -1})
	st.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (st *redisTestSentinel) meta(extra map[string]string) map[string]string {
	m := map[string]string{"addresses": st.sentinel.addr(), "sentinelMaster": redisSentinelMaster}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

var redisSentinelAuth = map[string]string{"password": redisModesPassword, "sentinelPassword": redisSentinelPassword}

func TestRedisSentinelList(t *testing.T) {
	ctx := t.Context()
	st := startRedisSentinel(t, true)
	db3 := redis.NewClient(&redis.Options{Addr: st.master.addr(), Password: redisModesPassword, DB: 3,
		ClientName: redisModesAdminName, DisableIdentity: true})
	defer func() { _ = db3.Close() }()

	// The scaler has the sentinel's address only: the sentinel names the
	// master.
	s := build(t, "redis-sentinel", st.meta(map[string]string{"listName": "jobs", "listLength": "5", "activationListLength": "2",
		"databaseIndex": "3"}), redisSentinelAuth, Deps{})
	pollWant(t, s, 0, false)
	redisModesPush(t, db3, "jobs", 2)
	pollWant(t, s, 2, false) // at activationListLength: not active
	redisModesPush(t, db3, "jobs", 5)
	pollWant(t, s, 7, true)
	if err := db3.LPopCount(ctx, "jobs", 6).Err(); err != nil {
		t.Fatal(err)
	}
	pollWant(t, s, 1, false)

	// A master name the sentinel does not know: the sentinel answers, but
	// names no master.
	unknown := build(t, "redis-sentinel", map[string]string{"addresses": st.sentinel.addr(), "sentinelMaster": "nobody", "listName": "jobs"},
		redisSentinelAuth, Deps{})
	_, err := unknown.Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), `no sentinel monitors a master named "nobody"`) {
		t.Errorf("error %q does not say the master is unknown", err)
	}
	// A wrong sentinel password: the sentinel refuses.
	wrong := build(t, "redis-sentinel", st.meta(map[string]string{"listName": "jobs"}),
		map[string]string{"password": redisModesPassword, "sentinelPassword": "not-the-sentinel-pass"}, Deps{})
	_, err = wrong.Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), "WRONGPASS") || strings.Contains(err.Error(), "not-the-sentinel-pass") {
		t.Errorf("poll with a wrong sentinel password: %v", err)
	}

	// Failover: the sentinel promotes the replica, and the old master is
	// stopped. The scaler reaches the new master through the sentinel.
	sc := st.sentinelClient()
	if err := sc.Failover(ctx, redisSentinelMaster).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v\n%s", err, st.sentinel.log())
	}
	redisModesWait(t, "the sentinel names the replica as master", 60*time.Second, func() error {
		addr, err := sc.GetMasterAddrByName(ctx, redisSentinelMaster).Result()
		if err != nil {
			return err
		}
		if addr[1] != strconv.Itoa(st.replica.port) {
			return fmt.Errorf("master %v\n%s", addr, st.sentinel.log())
		}
		return nil
	})
	newMaster := redis.NewClient(&redis.Options{Addr: st.replica.addr(), Password: redisModesPassword, DB: 3,
		ClientName: redisModesAdminName, DisableIdentity: true})
	defer func() { _ = newMaster.Close() }()
	redisModesWait(t, "the replica promoted", 30*time.Second, func() error {
		info, err := newMaster.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "role:master") {
			return errors.New(info)
		}
		return nil
	})
	st.master.stop()
	redisModesPush(t, newMaster, "jobs", 3)
	redisModesPollUntil(t, s, 4, true, 30*time.Second)

	// Close leaves no connection on the new master; it is idempotent.
	for _, sc := range []Scaler{s, unknown, wrong} {
		if err := sc.Close(); err != nil {
			t.Fatal(err)
		}
		if err := sc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	redisModesNoConnections(t, st.replica.client())
	_, err = s.Poll(ctx)
	checkKind(t, err, ErrClosed)

	// The sentinel and the master stopped: unreachable.
	late := build(t, "redis-sentinel", st.meta(map[string]string{"listName": "jobs", "databaseIndex": "3"}), redisSentinelAuth, Deps{})
	pollWant(t, late, 4, true)
	st.sentinel.stop()
	st.replica.stop()
	redisModesUnreachable(t, late, "redis-sentinel")
}

func TestRedisSentinelStreams(t *testing.T) {
	ctx := t.Context()
	st := startRedisSentinel(t, false)
	master := st.master.client()
	stream := func(extra map[string]string) Scaler {
		extra["stream"], extra["activationLagCount"] = "events", "2"
		return build(t, "redis-sentinel-streams", st.meta(extra), redisSentinelAuth, Deps{})
	}
	length := stream(map[string]string{})
	pending := stream(map[string]string{"consumerGroup": "workers"})
	lag := stream(map[string]string{"consumerGroup": "workers", "lagCount": "10"})

	pollWant(t, length, 0, false)
	_, err := pending.Poll(ctx)
	checkKind(t, err, ErrBadResponse)
	if !strings.Contains(err.Error(), "redis-sentinel-streams trigger (") {
		t.Errorf("error %q does not name the trigger", err)
	}
	redisModesXAdd(t, master, "events", 2)
	pollWant(t, length, 2, false)
	pollWant(t, lag, 2, false)
	redisModesXAdd(t, master, "events", 4)
	pollWant(t, length, 6, true)
	if err := master.XGroupCreate(ctx, "events", "workers", "0").Err(); err != nil {
		t.Fatal(err)
	}
	pollWant(t, pending, 0, false)
	pollWant(t, lag, 6, true)
	res, err := master.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: "c1", Streams: []string{"events", ">"}, Count: 5}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := master.XAck(ctx, "events", "workers", res[0].Messages[0].ID, res[0].Messages[1].ID).Err(); err != nil {
		t.Fatal(err)
	}
	pollWant(t, pending, 3, true)
	pollWant(t, lag, 1, false)
	if err := master.XTrimMaxLen(ctx, "events", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pollWant(t, length, 0, false) // drained

	st.sentinel.stop()
	st.master.stop()
	for _, s := range []Scaler{length, pending, lag} {
		redisModesUnreachable(t, s, "redis-sentinel-streams")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
