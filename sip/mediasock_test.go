package sip

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rxLog records what a media socket handed over.
type rxLog struct {
	mu    sync.Mutex
	pkts  []string
	froms []netip.AddrPort
	n     atomic.Int64
}

func (l *rxLog) rx(b []byte, from netip.AddrPort) {
	l.mu.Lock()
	l.pkts = append(l.pkts, string(b))
	l.froms = append(l.froms, from)
	l.mu.Unlock()
	l.n.Add(1)
}

func (l *rxLog) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for l.n.Load() < int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("%d packets handed over, want %d", l.n.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func udpPeer(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("no %s socket on %s here: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// openMedia opens a media socket on ip at a free port of pool (ports
// someone else holds are skipped).
func openMedia(t *testing.T, pool *portPool, ip string, rx func([]byte, netip.AddrPort)) (*mediaSock, *net.UDPAddr) {
	t.Helper()
	s, rtcp, port, err := pool.listen(netip.MustParseAddr(ip), rx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rtcp.close()
	t.Cleanup(func() { s.close() })
	return s, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
}

func localPort(t *testing.T, c *net.UDPConn) uint16 {
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
}

// A media socket holds what arrives until it is started, then hands each
// packet over whole with its source, and its writes reach the peer.
func TestMediaSockRoundTrip(t *testing.T) {
	var log rxLog
	s, to := openMedia(t, newPortPool(43100, 43199), "127.0.0.1", log.rx)
	port := to.Port
	peer := udpPeer(t, "udp4", "127.0.0.1:0")
	for _, p := range []string{"one", "two"} {
		if _, err := peer.WriteToUDP([]byte(p), to); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := log.n.Load(); n != 0 {
		t.Fatalf("%d packets handed over before start", n)
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	log.wait(t, 2)
	if _, err := peer.WriteToUDP(make([]byte, 1400), to); err != nil {
		t.Fatal(err)
	}
	log.wait(t, 3)
	log.mu.Lock()
	want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), localPort(t, peer))
	if log.pkts[0] != "one" || log.pkts[1] != "two" || len(log.pkts[2]) != 1400 || log.froms[0] != want {
		t.Fatalf("handed over %q... (%d bytes last) from %v, want one, two, 1400 bytes from %v", log.pkts[:2], len(log.pkts[2]), log.froms[0], want)
	}
	log.mu.Unlock()
	if err := s.writeTo([]byte("back"), want); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := peer.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "back" || from.Port() != uint16(port) {
		t.Fatalf("peer read %q from %v (%v), want back from port %d", buf[:n], from, err, port)
	}
	// An IPv6 destination on an IPv4 socket is refused, not sent.
	if err := s.writeTo([]byte("x"), netip.MustParseAddrPort("[::1]:9")); err == nil {
		t.Fatal("an IPv6 destination on an IPv4 socket: no error")
	}
}

// On the unspecified address the socket is dual-stack, as Go's own: an
// IPv4 peer shows as ::ffff:a.b.c.d, and replies reach it written either
// way.
func TestMediaSockDualStack(t *testing.T) {
	var log rxLog
	probe := udpPeer(t, "udp6", "[::1]:0") // skips where there is no IPv6
	probe.Close()
	s, to := openMedia(t, newPortPool(43200, 43299), "::", log.rx)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	peer := udpPeer(t, "udp4", "127.0.0.1:0")
	if _, err := peer.WriteToUDP([]byte("hi"), to); err != nil {
		t.Fatal(err)
	}
	log.wait(t, 1)
	log.mu.Lock()
	from := log.froms[0]
	log.mu.Unlock()
	if !from.Addr().Is4In6() || from.Addr().Unmap() != netip.MustParseAddr("127.0.0.1") || from.Port() != localPort(t, peer) {
		t.Fatalf("IPv4 peer seen as %v", from)
	}
	for _, to := range []netip.AddrPort{from, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())} {
		if err := s.writeTo([]byte("back"), to); err != nil {
			t.Fatalf("write to %v: %v", to, err)
		}
		buf := make([]byte, 100)
		_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := peer.Read(buf); err != nil || string(buf[:n]) != "back" {
			t.Fatalf("peer read %q (%v) after a write to %v", buf[:n], err, to)
		}
	}
	v6 := udpPeer(t, "udp6", "[::1]:0")
	if _, err := v6.WriteToUDP([]byte("six"), &net.UDPAddr{IP: net.IPv6loopback, Port: to.Port}); err != nil {
		t.Fatal(err)
	}
	log.wait(t, 2)
}

// Once close returns, its socket's handler never runs again, even with
// packets pouring in, and writes say the socket is closed. A socket
// opened next (on the same fd number, most likely) gets only its own
// packets. Run under -race, this also checks close against the poller.
func TestMediaSockCloseWhileReceiving(t *testing.T) {
	peer := udpPeer(t, "udp4", "127.0.0.1:0")
	pool := newPortPool(43300, 43399)
	for round := range 20 {
		var log rxLog
		var closed atomic.Bool
		var late atomic.Int64
		s, to := openMedia(t, pool, "127.0.0.1", func(b []byte, from netip.AddrPort) {
			if closed.Load() {
				late.Add(1)
			}
			log.rx(b, from)
		})
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = peer.WriteToUDP([]byte("flood"), to)
			}
		}()
		log.wait(t, 5)
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
		closed.Store(true)
		time.Sleep(5 * time.Millisecond)
		close(stop)
		<-done
		if n := late.Load(); n != 0 {
			t.Fatalf("round %d: %d packets handed over after close returned", round, n)
		}
		if err := s.writeTo([]byte("x"), netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after close: %v, want net.ErrClosed", err)
		}
		if err := s.close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
	}
	// The next socket, on a port of its own, hears only what is sent to it.
	var mine, other rxLog
	a, toA := openMedia(t, pool, "127.0.0.1", mine.rx)
	b, _ := openMedia(t, pool, "127.0.0.1", other.rx)
	_ = a.start()
	_ = b.start()
	for range 10 {
		_, _ = peer.WriteToUDP([]byte("a"), toA)
	}
	mine.wait(t, 10)
	time.Sleep(20 * time.Millisecond)
	if n := other.n.Load(); n != 0 {
		t.Fatalf("the other socket got %d packets", n)
	}
}
