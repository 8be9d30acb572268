package peertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Netns is a private network namespace with a veth pair inside it and IP on
// one end: Chromium gathers ICE candidates there (it never uses loopback),
// and nothing can leave it.
type Netns struct {
	Name string
	IP   string
}

// netnsCount numbers the namespaces of this process after the first.
var netnsCount atomic.Int32

// NewNetns creates a namespace; it is deleted when the test ends. A test
// may create several (one per cluster node): each is its own network, with
// the same IP.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	n := &Netns{Name: newNetnsName(), IP: "10.99.0.1"}
	steps := [][]string{
		{"netns", "add", n.Name},
		{"link", "add", "vga", "netns", n.Name, "type", "veth", "peer", "name", "vgb", "netns", n.Name},
		// No IPv6 link-local addresses: their duplicate-address detection
		// ends a second or two later, and Chromium, which sees the address
		// change, then closes its connections (ERR_NETWORK_CHANGED) in the
		// middle of loading the page.
		{"-n", n.Name, "link", "set", "vga", "addrgenmode", "none"},
		{"-n", n.Name, "link", "set", "vgb", "addrgenmode", "none"},
		{"-n", n.Name, "addr", "add", n.IP + "/24", "dev", "vga"},
		{"-n", n.Name, "link", "set", "vga", "up"},
		{"-n", n.Name, "link", "set", "vgb", "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
	}
	n.setUp(t, steps)
	return n
}

// newNetnsName returns a namespace name no other namespace of this process
// has (and deletes a stale one of that name, left by a killed run).
func newNetnsName() string {
	name := fmt.Sprintf("vgt%d", os.Getpid()%100000)
	if i := netnsCount.Add(1); i > 1 {
		name = fmt.Sprintf("%s-%d", name, i)
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
	return name
}

// setUp runs the ip commands that build the namespace, and deletes it
// when the test ends.
func (n *Netns) setUp(t testing.TB, steps [][]string) {
	t.Helper()
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			_ = exec.Command("ip", "netns", "del", n.Name).Run()
			t.Fatalf("ip %v: %v: %s (network namespaces need root)", s, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.Name).Run() })
}

// in runs f with the calling OS thread inside the namespace; sockets made
// in f stay in the namespace after it returns.
func (n *Netns) in(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	defer orig.Close()
	ns, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		return err
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		panic("cannot leave the test network namespace: " + err.Error())
	}
	return ferr
}

// Listen opens a TCP listener inside the namespace.
func (n *Netns) Listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := n.in(func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	return ln
}

// ListenUDP opens a UDP socket inside the namespace.
func (n *Netns) ListenUDP(t testing.TB, addr string) net.PacketConn {
	t.Helper()
	var c net.PacketConn
	if err := n.in(func() (err error) { c, err = net.ListenPacket("udp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	return c
}

// DialContext connects from inside the namespace (for http.Transport and
// the like).
func (n *Netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.in(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return
	})
	return c, err
}

// HTTPClient is an HTTP client whose connections start inside the namespace.
func (n *Netns) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true}}
}

// Forward listens on a free port of the host's 127.0.0.1 and relays each
// TCP connection to addr, dialled from inside the namespace, so that a
// client that cannot be given a dialer (a database driver) reaches a
// server on a test network. It returns the local address.
func (n *Netns) Forward(t testing.TB, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			c.Close()
			return false
		}
		conns[c] = struct{}{}
		return true
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !track(c) {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				up, err := n.DialContext(ctx, "tcp", addr)
				cancel()
				if err != nil || !track(up) {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); up.Close() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}

// Command runs a program inside the namespace.
func (n *Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// WaitSTUN sends STUN Binding requests from inside the namespace to addr
// until one is answered, so a test starts its peers only once a STUN/TURN
// server really listens (its log lines come before its sockets are bound).
func (n *Netns) WaitSTUN(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	c := n.ListenUDP(t, n.IP+":0")
	defer c.Close()
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 5389 Binding request: type 0x0001, length 0, magic cookie, a
	// 96-bit transaction ID.
	req := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 'v', 'o', 'x', 'g', 'a', 't', 'e', 'p', 'r', 'o', 'b', 'e'}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := c.WriteTo(req, to); err != nil {
			// ECONNREFUSED from an earlier probe's ICMP: not listening yet.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		nr, _, err := c.ReadFrom(buf)
		if err == nil && nr >= 20 && buf[0] == 0x01 && buf[1] == 0x01 && string(buf[8:20]) == string(req[8:20]) {
			return
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Fatalf("no STUN server answered at %s within %s", addr, timeout)
}

// LAN is a test network: a bridge (br0) in a namespace of its own, which
// member namespaces join with a veth pair each, every member with its own
// address on Prefix.0/24. No member has a default route and nothing is
// connected to the host's network: nothing leaves the LAN. The bridge's
// namespace holds the address Prefix.1 (the test's own seat on the LAN:
// its embedded Netns).
type LAN struct {
	*Netns
	// Prefix is the network's first three bytes, as "10.77.0".
	Prefix string
}

// NewLAN creates the network (10.77.0.0/24); it is deleted with its members
// when the test ends. Each LAN is private to its namespaces, so tests in
// other processes may use the same addresses at the same time.
func NewLAN(t testing.TB) *LAN {
	t.Helper()
	l := &LAN{Netns: &Netns{Name: newNetnsName(), IP: "10.77.0.1"}, Prefix: "10.77.0"}
	l.setUp(t, [][]string{
		{"netns", "add", l.Name},
		{"-n", l.Name, "link", "add", "br0", "type", "bridge"},
		{"-n", l.Name, "link", "set", "br0", "addrgenmode", "none"}, // see NewNetns
		{"-n", l.Name, "addr", "add", l.IP + "/24", "dev", "br0"},
		{"-n", l.Name, "link", "set", "br0", "up"},
		{"-n", l.Name, "link", "set", "lo", "up"},
	})
	return l
}

// Join creates a namespace holding one end of a veth pair (eth0, with the
// address Prefix.host) whose other end is a port of the bridge; it is
// deleted when the test ends. host is 2..254, one per member.
func (l *LAN) Join(t testing.TB, host int) *Netns {
	t.Helper()
	n := &Netns{Name: newNetnsName(), IP: fmt.Sprintf("%s.%d", l.Prefix, host)}
	port := fmt.Sprintf("p%d", host)
	n.setUp(t, [][]string{
		{"netns", "add", n.Name},
		{"-n", l.Name, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.Name},
		{"-n", l.Name, "link", "set", port, "addrgenmode", "none"}, // see NewNetns
		{"-n", n.Name, "link", "set", "eth0", "addrgenmode", "none"},
		{"-n", l.Name, "link", "set", port, "master", "br0"},
		{"-n", l.Name, "link", "set", port, "up"},
		{"-n", n.Name, "addr", "add", n.IP + "/24", "dev", "eth0"},
		{"-n", n.Name, "link", "set", "eth0", "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
	})
	return n
}
