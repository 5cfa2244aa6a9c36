package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv selects a helper mode when the test binary is re-executed as a
// child process (see TestMain).
const helperEnv = "EBB_CLUSTER_TEST_HELPER"

// TestMain runs the tests, or, when helperEnv is set, the body of a child
// process the tests start by re-executing the test binary:
//
//	echo <addr>            echo lines back on a TCP address
//	dial <addr> <message>  send a line, print the answer
//	https <addr> <dir>     serve HTTPS with <dir>/tls.crt and <dir>/tls.key,
//	                       answering "hello from ebb"
//	get <url> <ca file>    print the body of an HTTPS GET
//	sleep                  do nothing until killed
//	podserver <http> <grpc> a node pod's server (see servePod)
//	writefile <path> <data> write a file and exit
func TestMain(m *testing.M) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		os.Exit(m.Run())
	}
	args := helperArgs()
	var err error
	switch mode {
	case "echo":
		err = serveEcho(args[0])
	case "dial":
		err = dialEcho(args[0], args[1])
	case "https":
		err = serveHTTPS(args[0], args[1])
	case "get":
		err = httpsGet(args[0], args[1])
	case "sleep":
		select {}
	case "podserver":
		err = servePod(args[0], args[1])
	case "writefile":
		err = os.WriteFile(args[0], []byte(args[1]), 0o644)
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperArgs returns the arguments after "--".
func helperArgs() []string {
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:]
		}
	}
	return nil
}

// helperCommand returns the path and arguments that run the test binary as
// a helper; the mode goes in the environment as helperEnv=<mode>.
func helperCommand(t *testing.T, args ...string) (string, []string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return self, append([]string{"--"}, args...)
}

func serveEcho(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		conn, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			r := bufio.NewReader(conn)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := io.WriteString(conn, "echo: "+line); err != nil {
					return
				}
			}
		}()
	}
}

func dialEcho(addr, message string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, message+"\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	fmt.Print(line)
	return nil
}

func serveHTTPS(addr, dir string) error {
	srv := &http.Server{
		Addr:              addr,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, "hello from ebb")
		}),
		TLSConfig: &tls.Config{
			// Read the projected files on every handshake, so a renewed
			// certificate is served at once.
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
				return &cert, err
			},
		},
	}
	return srv.ListenAndServeTLS("", "")
}

func httpsGet(url, caFile string) error {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("no certificate in %s", caFile)
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	_, err = os.Stdout.Write(body)
	return err
}

// needRoot skips the test unless it runs as root with the ip command.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, links and routes")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (Debian package iproute2)")
	}
}

// testName returns a unique network name for a test.
func testName(t *testing.T) string {
	t.Helper()
	name, err := uniqueName()
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func newTestNetwork(t *testing.T) *Network {
	t.Helper()
	n, err := NewNetwork(testName(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

// runIn runs the test binary as a helper in a network namespace and
// returns its output.
func runIn(t *testing.T, ns, mode string, args ...string) (string, error) {
	t.Helper()
	self, helper := helperCommand(t, args...)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, self}, helper...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitDial waits until addr accepts TCP connections from the host.
func waitDial(t *testing.T, addr string, p *Process) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if p != nil && p.Exited() {
			log, _ := os.ReadFile(p.LogPath)
			t.Fatalf("%s exited (%v):\n%s", p.Name, p.Err(), log)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNetworkHostsTalk(t *testing.T) {
	needRoot(t)
	n := newTestNetwork(t)
	if !podRange.Contains(n.Gateway) || !n.Prefix.Contains(n.Gateway) {
		t.Fatalf("gateway %s outside %s or %s", n.Gateway, n.Prefix, podRange)
	}
	if svc := n.ServiceCIDR(); !podRange.Overlaps(svc) || svc.Overlaps(n.Prefix) {
		t.Fatalf("service CIDR %s: want a /24 of %s apart from %s", svc, podRange, n.Prefix)
	}
	server, err := n.AddHost("server")
	if err != nil {
		t.Fatal(err)
	}
	client, err := n.AddHost("client")
	if err != nil {
		t.Fatal(err)
	}
	if server.Addr == client.Addr || !n.Prefix.Contains(server.Addr) || !n.Prefix.Contains(client.Addr) {
		t.Fatalf("addresses %s and %s: want two of %s", server.Addr, client.Addr, n.Prefix)
	}

	addr := netip.AddrPortFrom(server.Addr, 7777).String()
	self, args := helperCommand(t, addr)
	echo, err := StartProcess(ProcessSpec{
		Name: "echo", Path: self, Args: args, Env: []string{helperEnv + "=echo"},
		LogDir: t.TempDir(), NetNS: server.NetNS,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Stop(time.Second) })

	// From the host, by address.
	waitDial(t, addr, echo)
	if out, err := dialFromHost(addr, "from the host"); err != nil || out != "echo: from the host\n" {
		t.Fatalf("dial from the host: %q, %v", out, err)
	}

	// From the other namespace, by address and by a name of its hosts
	// file, which is updated in place.
	before, err := os.Stat(client.HostsPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := client.WriteHosts(map[string][]netip.Addr{"echo.test": {server.Addr}, "gateway.test": {n.Gateway}}); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(client.HostsPath())
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("WriteHosts replaced the hosts file: running processes would not see the update")
	}
	hosts, _ := os.ReadFile(client.HostsPath())
	if !strings.Contains(string(hosts), server.Addr.String()+"\techo.test\n") || !strings.Contains(string(hosts), "127.0.0.1\tlocalhost\n") {
		t.Errorf("hosts file:\n%s", hosts)
	}
	for _, target := range []string{addr, "echo.test:7777"} {
		out, err := runIn(t, client.NetNS, "dial", target, "from the client")
		if err != nil || out != "echo: from the client\n" {
			t.Errorf("dial %s from the client namespace: %q, %v", target, out, err)
		}
	}

	echo.Stop(time.Second)
	name, prefix, svc := n.Name, n.Prefix, n.ServiceCIDR()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	assertNetworkGone(t, name, n.tag, prefix, svc)
}

func dialFromHost(addr, message string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, message+"\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(conn).ReadString('\n')
}

// assertNetworkGone checks that no namespace, link, route, /etc/netns
// directory or state file of the network called name remains.
func assertNetworkGone(t *testing.T, name, tag string, prefixes ...netip.Prefix) {
	t.Helper()
	var namespaces []struct {
		Name string `json:"name"`
	}
	if err := ipJSON(&namespaces, "netns", "list"); err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		if strings.HasPrefix(ns.Name, name+"-") {
			t.Errorf("network namespace %s remains", ns.Name)
		}
	}
	var links []struct {
		Name  string `json:"ifname"`
		Alias string `json:"ifalias"`
	}
	if err := ipJSON(&links, "link", "show"); err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Alias == name || strings.HasPrefix(l.Name, tag) {
			t.Errorf("link %s (alias %q) remains", l.Name, l.Alias)
		}
	}
	var routes []struct {
		Dst  string `json:"dst"`
		Type string `json:"type"`
	}
	if err := ipJSON(&routes, "-4", "route", "show", "table", "all"); err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		dst := r.Dst
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		p, err := netip.ParsePrefix(dst)
		if err != nil {
			continue
		}
		for _, mine := range prefixes {
			if p.Overlaps(mine) {
				t.Errorf("route %s %s remains", r.Type, r.Dst)
			}
		}
	}
	if dirs, _ := filepath.Glob(filepath.Join("/etc/netns", name+"-*")); len(dirs) > 0 {
		t.Errorf("directories remain: %v", dirs)
	}
	if _, err := os.Stat(statePath(name)); err == nil {
		t.Errorf("state file %s remains", statePath(name))
	}
}

func TestNetworkParallelRunsDisjoint(t *testing.T) {
	needRoot(t)
	a, b := newTestNetwork(t), newTestNetwork(t)
	if a.Bridge == b.Bridge {
		t.Errorf("both networks use bridge %s", a.Bridge)
	}
	ranges := []netip.Prefix{a.Prefix, a.ServiceCIDR(), b.Prefix, b.ServiceCIDR()}
	for i := range ranges {
		if ranges[i].Bits() != 24 || !podRange.Overlaps(ranges[i]) {
			t.Errorf("range %s: want a /24 of %s", ranges[i], podRange)
		}
		for j := range i {
			if ranges[i].Overlaps(ranges[j]) {
				t.Errorf("ranges %s and %s overlap", ranges[i], ranges[j])
			}
		}
	}
	for _, n := range []*Network{a, b} {
		if len(n.Bridge) > 15 {
			t.Errorf("bridge name %q is longer than 15 characters", n.Bridge)
		}
	}
}

func TestNetworkCleanupLeftovers(t *testing.T) {
	needRoot(t)
	n, err := NewNetwork(testName(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.AddHost("a"); err != nil {
		n.Close()
		t.Fatal(err)
	}
	h, err := n.AddHost("b")
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	// A process keeps the namespace busy, as after a crash of the harness.
	sleep := exec.Command("ip", "netns", "exec", h.NetNS, "sleep", "60")
	sleep.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()

	names, err := LeftoverNetworks()
	if err != nil {
		t.Fatal(err)
	}
	if !containsString(names, n.Name) {
		t.Errorf("LeftoverNetworks() = %v, want %s among them", names, n.Name)
	}
	// The Network value is forgotten: only the name is known.
	if err := CleanupLeftovers(n.Name); err != nil {
		t.Fatal(err)
	}
	assertNetworkGone(t, n.Name, n.tag, n.Prefix, n.ServiceCIDR())
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
