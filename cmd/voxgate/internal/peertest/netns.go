package peertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
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
	n := &Netns{Name: fmt.Sprintf("vgt%d", os.Getpid()%100000), IP: "10.99.0.1"}
	if i := netnsCount.Add(1); i > 1 {
		n.Name = fmt.Sprintf("%s-%d", n.Name, i)
	}
	_ = exec.Command("ip", "netns", "del", n.Name).Run()
	steps := [][]string{
		{"netns", "add", n.Name},
		{"link", "add", "vga", "netns", n.Name, "type", "veth", "peer", "name", "vgb", "netns", n.Name},
		{"-n", n.Name, "addr", "add", n.IP + "/24", "dev", "vga"},
		{"-n", n.Name, "link", "set", "vga", "up"},
		{"-n", n.Name, "link", "set", "vgb", "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			_ = exec.Command("ip", "netns", "del", n.Name).Run()
			t.Fatalf("ip %v: %v: %s (network namespaces need root)", s, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.Name).Run() })
	return n
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
