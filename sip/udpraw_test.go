package sip

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// The SIP listener with raw reads and writes behaves as Go's UDP socket
// does: what it reads and from whom (an IPv4 peer of a dual-stack socket
// the same way too), what it sends, deadlines, and net.ErrClosed after
// Close, which sipgo's reader stops on.
func TestRawPacketConn(t *testing.T) {
	for _, tc := range []struct{ network, listen, peer string }{
		{"udp4", "127.0.0.1:0", "127.0.0.1:0"},
		{"udp", "[::]:0", "127.0.0.1:0"},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			lc, err := net.ListenPacket(tc.network, tc.listen)
			if err != nil {
				t.Skip(err) // no IPv6 here
			}
			c := rawPacketConn(lc)
			if _, ok := c.(*rawUDP); !ok {
				t.Fatalf("rawPacketConn gave %T", c)
			}
			defer c.Close()
			peer, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tc.peer)))
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: lc.LocalAddr().(*net.UDPAddr).Port}
			if _, err := peer.WriteToUDP([]byte("INVITE"), to); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := c.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "INVITE" {
				t.Fatalf("ReadFrom: %q, %v", buf[:n], err)
			}
			if from.String() != peer.LocalAddr().String() {
				t.Fatalf("from %s, want %s", from, peer.LocalAddr())
			}
			if n, err := c.WriteTo([]byte("SIP/2.0 200 OK"), from); err != nil || n != 14 {
				t.Fatalf("WriteTo: %d, %v", n, err)
			}
			_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err = peer.ReadFromUDP(buf)
			if err != nil || string(buf[:n]) != "SIP/2.0 200 OK" {
				t.Fatalf("the peer read %q, %v", buf[:n], err)
			}
			// A read from a source seen before and a write to it allocate
			// nothing, and the source is the same address each time.
			if n := testing.AllocsPerRun(50, func() {
				if _, err := peer.WriteToUDP([]byte("OPTIONS"), to); err != nil {
					t.Fatal(err)
				}
				_, again, err := c.ReadFrom(buf)
				if err != nil || again != from {
					t.Fatalf("ReadFrom: %v from %v, want the same %p", err, again, from)
				}
				if _, err := c.WriteTo(buf[:4], again); err != nil {
					t.Fatal(err)
				}
				if _, _, err := peer.ReadFromUDP(buf); err != nil {
					t.Fatal(err)
				}
			}); n > 2 { // the peer's Go socket allocates its source (*net.UDPAddr)
				t.Errorf("%v allocations per datagram in and out, want the peer's alone", n)
			}
			peerAddr := peer.LocalAddr().(*net.UDPAddr)
			if n := testing.AllocsPerRun(50, func() { _, _ = c.WriteTo(buf[:4], peerAddr) }); n != 0 {
				t.Errorf("WriteTo a *net.UDPAddr: %v allocations", n)
			}
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, _, err := c.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("ReadFrom past its deadline: %v", err)
			}
			_ = c.SetReadDeadline(time.Time{})
			done := make(chan error, 1)
			go func() {
				_, _, err := c.ReadFrom(buf)
				done <- err
			}()
			time.Sleep(20 * time.Millisecond)
			c.Close()
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("ReadFrom on Close: %v, want net.ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ReadFrom did not return on Close")
			}
			if _, err := c.WriteTo([]byte("x"), from); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("WriteTo after Close: %v", err)
			}
		})
	}
}
