package scaler

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// beanstalkdServer is a throwaway beanstalkd (in memory, no binlog) owned
// by a test, on a loopback port.
type beanstalkdServer struct {
	t      *testing.T
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
}

// startBeanstalkd starts beanstalkd on port, or on a free port when 0.
func startBeanstalkd(t *testing.T, port int) *beanstalkdServer {
	t.Helper()
	bin, err := exec.LookPath("beanstalkd")
	if err != nil {
		t.Fatal("beanstalkd is not installed: run hack/install-event-sources.sh (Debian package beanstalkd)")
	}
	if port == 0 {
		addr := closedAddress(t)
		port, _ = strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	}
	bs := &beanstalkdServer{t: t, port: port, exited: make(chan struct{})}
	bs.cmd = exec.Command(bin, "-l", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := bs.cmd.Start(); err != nil {
		t.Fatalf("start beanstalkd: %v", err)
	}
	go func() { _ = bs.cmd.Wait(); close(bs.exited) }()
	t.Cleanup(bs.stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", bs.addr(), time.Second)
		if err == nil {
			_ = c.Close()
			return bs
		}
		select {
		case <-bs.exited:
			t.Fatalf("beanstalkd exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("beanstalkd on port %d not ready: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (bs *beanstalkdServer) addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(bs.port))
}

func (bs *beanstalkdServer) stop() {
	bs.once.Do(func() {
		_ = bs.cmd.Process.Kill()
		<-bs.exited
	})
}

// admin is a producer and consumer connection, closed at the end of the
// test.
func (bs *beanstalkdServer) admin() *beanstalk.Conn {
	bs.t.Helper()
	c, err := beanstalk.DialTimeout("tcp", bs.addr(), 5*time.Second)
	if err != nil {
		bs.t.Fatal(err)
	}
	bs.t.Cleanup(func() { _ = c.Close() })
	return c
}

// serverStat reads one of the server's global statistics.
func (bs *beanstalkdServer) serverStat(c *beanstalk.Conn, key string) int {
	bs.t.Helper()
	st, err := c.Stats()
	if err != nil {
		bs.t.Fatal(err)
	}
	n, err := strconv.Atoi(st[key])
	if err != nil {
		bs.t.Fatalf("stats %s = %q", key, st[key])
	}
	return n
}

func beanstalkdPut(t *testing.T, c *beanstalk.Conn, tube string, n int, delay time.Duration) {
	t.Helper()
	tb := beanstalk.NewTube(c, tube)
	for range n {
		if _, err := tb.Put([]byte("job"), 1024, delay, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
}

func buildBeanstalkd(t *testing.T, meta map[string]string) *beanstalkdScaler {
	t.Helper()
	s, err := newBeanstalkd(parseTrigger(t, "beanstalkd", meta, nil).(*scalers.BeanstalkdConfig), Deps{})
	if err != nil {
		t.Fatalf("newBeanstalkd: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*beanstalkdScaler)
}

func TestBeanstalkd(t *testing.T) {
	ctx := t.Context()
	bs := startBeanstalkd(t, 0)
	admin := bs.admin()
	meta := func(kv ...string) map[string]string {
		m := map[string]string{"server": bs.addr(), "tube": "emails", "value": "5", "activationValue": "2"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	s := buildBeanstalkd(t, meta())
	delayed := buildBeanstalkd(t, meta("includeDelayed", "true"))
	if s.PollTimeout() != 30*time.Second {
		t.Errorf("PollTimeout %v", s.PollTimeout())
	}

	// A tube beanstalkd does not know yet counts 0.
	pollWant(t, s, 0, false)
	pollWant(t, delayed, 0, false)
	// Ready jobs: at the activation value, then above it.
	beanstalkdPut(t, admin, "emails", 2, 0)
	pollWant(t, s, 2, false)
	beanstalkdPut(t, admin, "emails", 5, 0)
	beanstalkdPut(t, admin, "other", 4, 0)
	pollWant(t, s, 7, true)
	// A reserved job still counts; delayed ones count with includeDelayed
	// only; buried ones never.
	watch := beanstalk.NewTubeSet(admin, "emails")
	id, _, err := watch.Reserve(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pollWant(t, s, 7, true)
	beanstalkdPut(t, admin, "emails", 3, time.Hour)
	pollWant(t, s, 7, true)
	pollWant(t, delayed, 10, true)
	buried, _, err := watch.Reserve(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Bury(buried, 1); err != nil {
		t.Fatal(err)
	}
	pollWant(t, s, 6, true) // 5 ready + 1 reserved
	pollWant(t, delayed, 9, true)
	// Drained: the jobs deleted, then the tube gone with its last client.
	if err := admin.Delete(id); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		id, _, err := watch.Reserve(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := admin.Delete(id); err != nil {
			t.Fatal(err)
		}
	}
	pollWant(t, s, 0, false)
	pollWant(t, delayed, 3, true)
	// Another tube, by its own name and metric.
	pollWant(t, buildBeanstalkd(t, meta("tube", "other", "activationValue", "4")), 4, false)

	// One connection, kept across polls.
	before := bs.serverStat(admin, "total-connections")
	kept := buildBeanstalkd(t, meta())
	for range 5 {
		pollWant(t, kept, 0, false)
	}
	if n := bs.serverStat(admin, "total-connections") - before; n != 1 {
		t.Errorf("5 polls opened %d connections, want 1", n)
	}

	// Concurrent polls take turns on it.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if r, err := delayed.Poll(ctx); err != nil {
				errs <- err
			} else if r.Value.Value() != 3 {
				errs <- errors.New("value " + r.Value.String())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent poll: %v", err)
	}

	// A cancelled poll, and one whose deadline passed: the connection is
	// dialled again afterwards.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = kept.Poll(cctx)
	checkKind(t, err, ErrUnreachable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	pollWant(t, kept, 0, false)

	// The server stops: unreachable, naming the type and address; back,
	// the same scaler dials again.
	bs.stop()
	_, err = kept.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	if !strings.Contains(err.Error(), "beanstalkd trigger ("+bs.addr()+")") {
		t.Errorf("error %q does not name the trigger type and address", err)
	}
	_, err = kept.Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	bs = startBeanstalkd(t, bs.port)
	beanstalkdPut(t, bs.admin(), "emails", 3, 0)
	pollWant(t, kept, 3, true)

	// Close ends the connection; Poll after Close fails; Close again is a
	// no-op.
	admin = bs.admin()
	if err := kept.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = kept.Poll(ctx)
	checkKind(t, err, ErrClosed)
	if err := kept.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for bs.serverStat(admin, "current-connections") != 2 { // the two admin connections
		if time.Now().After(deadline) {
			t.Fatalf("%d connections after Close, want the 2 admin ones", bs.serverStat(admin, "current-connections"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeBeanstalkd answers each command line with reply (nothing when
// reply is empty), as a broken or foreign server would.
func fakeBeanstalkd(t *testing.T, reply string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if reply != "" {
						if _, err := c.Write([]byte(reply)); err != nil {
							return
						}
					}
				}
			})
		}
	})
	return l.Addr().String()
}

// statsReply is an OK reply carrying body, as beanstalkd frames it.
func statsReply(body string) string {
	return "OK " + strconv.Itoa(len(body)) + "\r\n" + body + "\r\n"
}

func TestBeanstalkdBadResponses(t *testing.T) {
	for name, tc := range map[string]struct {
		reply string
		want  error
	}{
		"an error reply":           {reply: "INTERNAL_ERROR\r\n", want: ErrBadResponse},
		"out of memory":            {reply: "OUT_OF_MEMORY\r\n", want: ErrBadResponse},
		"an unknown reply":         {reply: "HELLO\r\n", want: ErrBadResponse},
		"a size that is no number": {reply: "OK many\r\n", want: ErrBadResponse},
		"stats without the counts": {reply: statsReply("---\nname: emails\n"), want: ErrBadResponse},
		"a count that is no number": {
			reply: statsReply("---\ncurrent-jobs-ready: lots\ncurrent-jobs-reserved: 0\nname: x\n"), want: ErrBadResponse},
		"a negative count": {
			reply: statsReply("---\ncurrent-jobs-ready: -1\ncurrent-jobs-reserved: 0\nname: x\n"), want: ErrBadResponse},
		"counts out of range": {
			reply: statsReply("---\ncurrent-jobs-ready: 9223372036854775807\ncurrent-jobs-reserved: 1\nname: x\n"), want: ErrBadResponse},
		"a truncated answer": {reply: "OK 500\r\n---\n", want: ErrUnreachable},
	} {
		t.Run(name, func(t *testing.T) {
			s := buildBeanstalkd(t, map[string]string{"server": fakeBeanstalkd(t, tc.reply), "tube": "emails", "value": "1", "timeout": "1"})
			_, err := s.Poll(t.Context())
			checkKind(t, err, tc.want)
			if !strings.Contains(err.Error(), "beanstalkd trigger (127.0.0.1:") {
				t.Errorf("error %q does not name the trigger type and address", err)
			}
		})
	}
	// A well-formed answer from the fake server reads as beanstalkd's.
	s := buildBeanstalkd(t, map[string]string{"server": fakeBeanstalkd(t,
		statsReply("---\ncurrent-jobs-ready: 4\ncurrent-jobs-reserved: 1\ncurrent-jobs-delayed: 7\nname: x\n")),
		"tube": "emails", "value": "1", "includeDelayed": "true"})
	pollWant(t, s, 12, true)
}

func TestBeanstalkdTimeouts(t *testing.T) {
	silent := fakeBeanstalkd(t, "")
	// The trigger's timeout bounds a poll the server never answers.
	s := buildBeanstalkd(t, map[string]string{"server": silent, "tube": "emails", "value": "1", "timeout": "1"})
	start := time.Now()
	_, err := s.Poll(t.Context())
	checkKind(t, err, ErrTimeout)
	if d := time.Since(start); d < 900*time.Millisecond || d > 10*time.Second {
		t.Errorf("poll took %v, want about the 1 s timeout", d)
	}
	// So does the caller's deadline, when shorter.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = buildBeanstalkd(t, map[string]string{"server": silent, "tube": "emails", "value": "1"}).Poll(ctx)
	checkKind(t, err, ErrUnreachable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	// Close ends a poll in progress.
	hung := buildBeanstalkd(t, map[string]string{"server": silent, "tube": "emails", "value": "1", "timeout": "0"})
	done := make(chan error, 1)
	go func() { _, err := hung.Poll(t.Context()); done <- err }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		hung.mu.Lock()
		dialled := hung.raw != nil
		hung.mu.Unlock()
		if dialled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the poll did not connect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := hung.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		checkKind(t, err, ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the poll in progress")
	}
	// Nothing listening: unreachable.
	_, err = buildBeanstalkd(t, map[string]string{"server": closedAddress(t), "tube": "emails", "value": "1"}).Poll(t.Context())
	checkKind(t, err, ErrUnreachable)
}

func TestBeanstalkdInvalidConfig(t *testing.T) {
	for _, tube := range []string{"two words", "-leading", "a\r\nput", strings.Repeat("t", 201)} {
		_, err := tryBuild("beanstalkd", map[string]string{"server": "127.0.0.1:11300", "tube": tube, "value": "1"}, nil, Deps{})
		checkKind(t, err, ErrInvalidConfig)
		if !strings.Contains(err.Error(), "beanstalkd trigger (127.0.0.1:11300)") {
			t.Errorf("error %q does not name the trigger type and address", err)
		}
	}
	// The default port.
	s, err := tryBuild("beanstalkd", map[string]string{"server": "127.0.0.1", "tube": "t", "value": "1"}, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if a := s.(*beanstalkdScaler).cfg.Address; a != "127.0.0.1:11300" {
		t.Errorf("address %q", a)
	}
}
