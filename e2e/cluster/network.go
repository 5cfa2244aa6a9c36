package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// podRange is where every pod network and service range of the harness
// lives: 198.18.0.0/15 is reserved for benchmarking (RFC 2544) and is never
// routed on the Internet, so it does not collide with a real network.
var podRange = netip.MustParsePrefix("198.18.0.0/15")

// NetworkStateDir holds one <name>.json per live pod network, listing what
// it created, so CleanupLeftovers can remove the network of a crashed run.
// It is on /run, which, like network namespaces, does not survive a reboot.
var NetworkStateDir = "/run/ebb-e2e/networks"

// claimMetric is the metric of the "unreachable" routes a network adds for
// its two /24s. Adding a route is atomic, and a second route with the same
// prefix, type and metric is refused, so the route add is also how a run
// claims its prefixes against parallel runs. The bridge's own connected
// route (metric 0) wins over it while the bridge exists; once the bridge is
// gone, nothing addressed to the run's ranges leaves the machine.
const claimMetric = 4242

// Network is the pod network of one cluster run: a Linux bridge on the host
// holding the gateway address, one /24 of 198.18.0.0/15 chosen so it
// overlaps no existing route (so parallel runs never collide), and one
// network namespace per host. Pod-to-pod traffic stays on the bridge (one
// subnet), so IP forwarding is not needed and no global sysctl is changed.
type Network struct {
	// Name is the cluster's unique name; network namespaces are called
	// "<Name>-<host>" and every link carries Name as its alias.
	Name string
	// Bridge is the name of the bridge interface on the host.
	Bridge string
	// Prefix is the pod /24; Gateway, its first address, is on the bridge.
	Prefix  netip.Prefix
	Gateway netip.Addr

	// tag is the short prefix of the run's interface names.
	tag string

	mu          sync.Mutex
	serviceCIDR netip.Prefix
	next        int // index of the next host address
	hosts       map[string]*Host
	state       networkState
	closed      bool
}

// Host is one network namespace attached to a Network.
type Host struct {
	// NetNS is the network namespace, for `ip netns exec` and
	// ProcessSpec.NetNS.
	NetNS string
	// Addr is the host's address on the pod network.
	Addr netip.Addr

	network *Network
	veth    string

	mu     sync.Mutex
	closed bool
}

// networkState is what NetworkStateDir/<name>.json records.
type networkState struct {
	Name       string         `json:"name"`
	Bridge     string         `json:"bridge,omitempty"`
	Routes     []netip.Prefix `json:"routes,omitempty"`
	Namespaces []string       `json:"namespaces,omitempty"`
	Links      []string       `json:"links,omitempty"`
	// IPTables are rules (arguments after -D / -I) inserted into the
	// filter table.
	IPTables [][]string `json:"iptables,omitempty"`
}

// NewNetwork creates the pod network of the cluster run called name (short
// and unique, like "ebb-1a2b3c"): the bridge, its gateway address and the
// claims on the pod /24 and the service /24.
func NewNetwork(name string) (n *Network, err error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("network name %q: want lower-case letters, digits and dashes", name)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("the pod network needs the ip command (Debian package iproute2): %w", err)
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	tag := fmt.Sprintf("e%07x", h.Sum32()&0xfffffff)
	n = &Network{
		Name:   name,
		Bridge: tag + "-br",
		tag:    tag,
		next:   2,
		hosts:  map[string]*Host{},
		state:  networkState{Name: name},
	}
	defer func() {
		if err != nil {
			if closeErr := n.Close(); closeErr != nil {
				err = fmt.Errorf("%w (and removing what was created: %v)", err, closeErr)
			}
		}
	}()
	if err := n.saveState(); err != nil {
		return n, err
	}

	if n.Prefix, err = n.claimPrefix(); err != nil {
		return n, err
	}
	if n.serviceCIDR, err = n.claimPrefix(); err != nil {
		return n, err
	}
	n.Gateway = n.Prefix.Addr().Next()

	n.record(func(s *networkState) { s.Bridge = n.Bridge })
	if err := ipCmd("link", "add", n.Bridge, "type", "bridge"); err != nil {
		return n, err
	}
	if err := ipCmd("link", "set", n.Bridge, "alias", name); err != nil {
		return n, err
	}
	if err := ipCmd("addr", "add", netip.PrefixFrom(n.Gateway, n.Prefix.Bits()).String(), "dev", n.Bridge); err != nil {
		return n, err
	}
	if err := ipCmd("link", "set", n.Bridge, "up"); err != nil {
		return n, err
	}
	if err := n.allowBridgedTraffic(); err != nil {
		return n, err
	}
	return n, nil
}

var validName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// claimPrefix picks a /24 of podRange that overlaps no route or address of
// the host and claims it with an unreachable route.
func (n *Network) claimPrefix() (netip.Prefix, error) {
	used, err := usedPrefixes()
	if err != nil {
		return netip.Prefix{}, err
	}
	count := 1 << (24 - podRange.Bits())
	start, err := rand.Int(rand.Reader, big.NewInt(int64(count)))
	if err != nil {
		return netip.Prefix{}, err
	}
	base := podRange.Addr().As4()
	for i := range count {
		k := (int(start.Int64()) + i) % count
		a := base
		a[2] += byte(k)
		a[1] += byte(k >> 8)
		candidate := netip.PrefixFrom(netip.AddrFrom4(a), 24)
		if slices.ContainsFunc(used, candidate.Overlaps) {
			continue
		}
		err := ipCmd("route", "add", "unreachable", candidate.String(), "metric", strconv.Itoa(claimMetric))
		if err != nil {
			if strings.Contains(err.Error(), "File exists") {
				continue // a parallel run was quicker
			}
			return netip.Prefix{}, err
		}
		n.record(func(s *networkState) { s.Routes = append(s.Routes, candidate) })
		return candidate, nil
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 left in %s", podRange)
}

// usedPrefixes lists the destinations of every IPv4 route (all tables) and
// the subnets of every IPv4 address of the host.
func usedPrefixes() ([]netip.Prefix, error) {
	var routes []struct {
		Dst string `json:"dst"`
	}
	if err := ipJSON(&routes, "-4", "route", "show", "table", "all"); err != nil {
		return nil, err
	}
	var used []netip.Prefix
	for _, r := range routes {
		if r.Dst == "default" || r.Dst == "" {
			continue
		}
		if !strings.Contains(r.Dst, "/") {
			r.Dst += "/32"
		}
		if p, err := netip.ParsePrefix(r.Dst); err == nil {
			used = append(used, p.Masked())
		}
	}
	var links []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := ipJSON(&links, "-4", "addr", "show"); err != nil {
		return nil, err
	}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if addr, err := netip.ParseAddr(a.Local); err == nil {
				used = append(used, netip.PrefixFrom(addr, a.PrefixLen).Masked())
			}
		}
	}
	return used, nil
}

// allowBridgedTraffic makes sure the host firewall does not drop traffic
// between pods. When the bridge netfilter hooks are active
// (net.bridge.bridge-nf-call-iptables=1, set wherever br_netfilter is loaded,
// e.g. by Docker), frames crossing the bridge traverse the iptables FORWARD
// chain, whose policy is often DROP (Docker sets it so). An ACCEPT rule for
// the run's bridge is then inserted, and removed by Close. Traffic between
// the host and a pod is local (INPUT/OUTPUT) and needs nothing.
func (n *Network) allowBridgedTraffic() error {
	v, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	if err != nil || strings.TrimSpace(string(v)) != "1" {
		return nil // br_netfilter absent or not hooked into iptables
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil // no iptables tool, so nobody has added rules with it
	}
	rule := []string{"FORWARD", "-i", n.Bridge, "-o", n.Bridge, "-j", "ACCEPT"}
	n.record(func(s *networkState) { s.IPTables = append(s.IPTables, rule) })
	return runCmd("iptables", append([]string{"-w", "5", "-I"}, rule...)...)
}

// ServiceCIDR is the range of ClusterIPs (kube-apiserver's
// --service-cluster-ip-range): another /24 of 198.18.0.0/15, routed
// "unreachable" on the host so a ClusterIP packet never leaves the machine.
func (n *Network) ServiceCIDR() netip.Prefix {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.serviceCIDR
}

// AddHost creates the network namespace "<Name>-<name>", connects it to the
// bridge with a veth pair (eth0 inside), gives it the next free address of
// the pod /24 and a default route via the gateway, brings up its loopback
// and writes its hosts file (localhost only; see Host.WriteHosts).
func (n *Network) AddHost(name string) (h *Host, err error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("host name %q: want lower-case letters, digits and dashes", name)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, fmt.Errorf("network %s is closed", n.Name)
	}
	ns := n.Name + "-" + name
	if _, ok := n.hosts[ns]; ok {
		n.mu.Unlock()
		return nil, fmt.Errorf("host %s exists", ns)
	}
	index := n.next
	addr := n.Prefix.Addr()
	for range index {
		addr = addr.Next()
	}
	if !n.Prefix.Contains(addr) || addr == lastAddr(n.Prefix) {
		n.mu.Unlock()
		return nil, fmt.Errorf("network %s has no address left in %s", n.Name, n.Prefix)
	}
	n.next++
	h = &Host{NetNS: ns, Addr: addr, network: n, veth: fmt.Sprintf("%s-%d", n.tag, index)}
	n.hosts[ns] = h
	n.mu.Unlock()

	defer func() {
		if err != nil {
			if closeErr := h.Close(); closeErr != nil {
				err = fmt.Errorf("%w (and removing what was created: %v)", err, closeErr)
			}
		}
	}()
	n.record(func(s *networkState) {
		s.Namespaces = append(s.Namespaces, ns)
		s.Links = append(s.Links, h.veth)
	})
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"link", "set", h.veth, "alias", n.Name},
		{"link", "set", h.veth, "master", n.Bridge},
		{"link", "set", h.veth, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", netip.PrefixFrom(addr, n.Prefix.Bits()).String(), "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "route", "add", "default", "via", n.Gateway.String()},
	}
	for _, args := range steps {
		if err := ipCmd(args...); err != nil {
			return h, err
		}
	}
	if err := h.WriteHosts(nil); err != nil {
		return h, err
	}
	return h, nil
}

// lastAddr returns the broadcast address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	hostBits := 32 - p.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		bits := min(hostBits, 8)
		a[i] |= byte(1<<bits - 1)
		hostBits -= bits
	}
	return netip.AddrFrom4(a)
}

// HostsPath is the hosts file of the namespace: `ip netns exec` bind-mounts
// it over /etc/hosts.
func (h *Host) HostsPath() string { return filepath.Join("/etc/netns", h.NetNS, "hosts") }

// WriteHosts writes the namespace's hosts file: the localhost lines and one
// line per address with the names mapped to it. `ip netns exec` bind-mounts
// the file over /etc/hosts when a process starts, so it is rewritten in
// place (the same inode), never replaced: running processes see the update.
// Go programs re-read /etc/hosts at most every 5 seconds.
func (h *Host) WriteHosts(entries map[string][]netip.Addr) error {
	byAddr := map[netip.Addr][]string{}
	for name, addrs := range entries {
		for _, a := range addrs {
			byAddr[a] = append(byAddr[a], name)
		}
	}
	addrs := make([]netip.Addr, 0, len(byAddr))
	for a := range byAddr {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by the ebb e2e harness for %s\n", h.NetNS)
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, a := range addrs {
		names := byAddr[a]
		slices.Sort(names)
		fmt.Fprintf(&b, "%s\t%s\n", a, strings.Join(slices.Compact(names), " "))
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("host %s is closed", h.NetNS)
	}
	if err := os.MkdirAll(filepath.Dir(h.HostsPath()), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(h.HostsPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	// Write first, then cut the tail: a reader never sees an empty file.
	_, err = f.WriteAt(b.Bytes(), 0)
	if err == nil {
		err = f.Truncate(int64(b.Len()))
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	return err
}

// Close removes the namespace, its veth pair and its /etc/netns directory.
// Processes still running in the namespace keep it alive (without its
// link); stop them first. Close is idempotent.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	err := removeHost(h.NetNS, h.veth)
	n := h.network
	n.mu.Lock()
	if n.hosts[h.NetNS] == h {
		delete(n.hosts, h.NetNS)
	}
	n.mu.Unlock()
	if err == nil {
		n.record(func(s *networkState) {
			s.Namespaces = slices.DeleteFunc(s.Namespaces, func(ns string) bool { return ns == h.NetNS })
			s.Links = slices.DeleteFunc(s.Links, func(l string) bool { return l == h.veth })
		})
	}
	return err
}

// removeHost deletes a namespace, a link and the namespace's /etc/netns
// directory, any of which may be missing.
func removeHost(ns, veth string) error {
	var errs []error
	if veth != "" {
		errs = append(errs, ignoreMissing(ipCmd("link", "del", veth)))
	}
	if ns != "" {
		errs = append(errs, ignoreMissing(ipCmd("netns", "del", ns)))
		errs = append(errs, os.RemoveAll(filepath.Join("/etc/netns", ns)))
	}
	return errors.Join(errs...)
}

// Close removes every host, the bridge, the claimed routes, any firewall
// rule and the state file. It is idempotent and tolerates partial state.
func (n *Network) Close() error {
	n.mu.Lock()
	n.closed = true
	hosts := make([]*Host, 0, len(n.hosts))
	for _, h := range n.hosts {
		hosts = append(hosts, h)
	}
	n.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		errs = append(errs, h.Close())
	}
	n.mu.Lock()
	state := n.state
	n.mu.Unlock()
	errs = append(errs, removeNetwork(state))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing pod network %s: %w", n.Name, err)
	}
	return nil
}

// removeNetwork removes everything state lists, then the state file.
func removeNetwork(state networkState) error {
	var errs []error
	for _, rule := range state.IPTables {
		err := runCmd("iptables", append([]string{"-w", "5", "-D"}, rule...)...)
		if err != nil && !strings.Contains(err.Error(), "does a matching rule exist") &&
			!strings.Contains(err.Error(), "No chain/target/match") &&
			!strings.Contains(err.Error(), "executable file not found") {
			errs = append(errs, err)
		}
	}
	for _, ns := range state.Namespaces {
		errs = append(errs, removeHost(ns, ""))
	}
	for _, l := range state.Links {
		errs = append(errs, removeHost("", l))
	}
	if state.Bridge != "" {
		errs = append(errs, ignoreMissing(ipCmd("link", "del", state.Bridge)))
	}
	for _, r := range state.Routes {
		errs = append(errs, ignoreMissing(ipCmd("route", "del", "unreachable", r.String(), "metric", strconv.Itoa(claimMetric))))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.Remove(statePath(state.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// CleanupLeftovers removes the pod network of the run called name after a
// crash: what its state file lists, and every network namespace named
// "<name>-*" and link aliased name, with their /etc/netns directories.
func CleanupLeftovers(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("network name %q: want lower-case letters, digits and dashes", name)
	}
	state := networkState{Name: name}
	if data, err := os.ReadFile(statePath(name)); err == nil {
		if err := json.Unmarshal(data, &state); err != nil {
			return fmt.Errorf("reading %s: %w", statePath(name), err)
		}
		state.Name = name
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var namespaces []struct {
		Name string `json:"name"`
	}
	if err := ipJSON(&namespaces, "netns", "list"); err != nil {
		return err
	}
	for _, ns := range namespaces {
		if strings.HasPrefix(ns.Name, name+"-") && !slices.Contains(state.Namespaces, ns.Name) {
			state.Namespaces = append(state.Namespaces, ns.Name)
		}
	}
	if dirs, err := filepath.Glob(filepath.Join("/etc/netns", name+"-*")); err == nil {
		for _, d := range dirs {
			if ns := filepath.Base(d); !slices.Contains(state.Namespaces, ns) {
				state.Namespaces = append(state.Namespaces, ns)
			}
		}
	}
	var links []struct {
		Name  string `json:"ifname"`
		Alias string `json:"ifalias"`
		Kind  string `json:"link_type"`
	}
	if err := ipJSON(&links, "link", "show"); err != nil {
		return err
	}
	for _, l := range links {
		if l.Alias == name && l.Name != state.Bridge && !slices.Contains(state.Links, l.Name) {
			state.Links = append(state.Links, l.Name)
		}
	}
	return removeNetwork(state)
}

// LeftoverNetworks lists the names of the networks that have a state file:
// those of live runs and of crashed runs alike.
func LeftoverNetworks() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(NetworkStateDir, "*.json"))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	return names, nil
}

func statePath(name string) string { return filepath.Join(NetworkStateDir, name+".json") }

// record applies change to the state and saves it. A failure to save only
// weakens crash cleanup, so it is not an error of the caller.
func (n *Network) record(change func(*networkState)) {
	n.mu.Lock()
	change(&n.state)
	n.mu.Unlock()
	_ = n.saveState()
}

// saveState writes the state file atomically.
func (n *Network) saveState() error {
	n.mu.Lock()
	data, err := json.MarshalIndent(n.state, "", "  ")
	n.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(NetworkStateDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(NetworkStateDir, "."+n.Name+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), statePath(n.Name))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// ipCmd runs the ip command.
func ipCmd(args ...string) error { return runCmd("ip", args...) }

// ipJSON runs `ip -j args` and decodes its output into v.
func ipJSON(v any, args ...string) error {
	out, err := exec.Command("ip", append([]string{"-j"}, args...)...).Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(exitErr.Stderr))
		}
		return fmt.Errorf("ip -j %s: %w", strings.Join(args, " "), err)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return nil // `ip -j netns list` prints nothing when there is none
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("ip -j %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// runCmd runs a command, returning its output in the error.
func runCmd(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// ignoreMissing drops the errors of deleting something that is not there.
func ignoreMissing(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []string{"Cannot find device", "No such file", "No such process", "does not exist", "not found"} {
		if strings.Contains(err.Error(), s) {
			return nil
		}
	}
	return err
}
