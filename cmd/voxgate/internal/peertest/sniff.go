package peertest

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Datagram is one UDP datagram a Sniff saw.
type Datagram struct {
	Src, Dst netip.AddrPort
	Payload  []byte
}

// Sniff records the UDP datagrams to one port on every interface of a
// namespace (on a LAN's own namespace: everything crossing the bridge,
// each datagram once per bridge port it passes), the way tcpdump would.
type Sniff struct {
	fd   int
	port uint16
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  []Datagram
	done chan struct{}
}

// SniffUDP starts recording UDP datagrams to port in the namespace; it
// stops when the test ends.
func (n *Netns) SniffUDP(t testing.TB, port int) *Sniff {
	t.Helper()
	s := &Sniff{port: uint16(port), done: make(chan struct{})}
	err := n.in(func() (err error) {
		// ETH_P_ALL: a bridge port's frames reach only taps for every
		// protocol (an ETH_P_IP socket sees only what the bridge does
		// not take).
		s.fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, int(htons(syscall.ETH_P_ALL)))
		return
	})
	if err != nil {
		t.Fatalf("raw capture socket (needs root): %v", err)
	}
	if err := attachPortFilter(s.fd, port, port); err != nil {
		t.Fatalf("capture filter: %v", err)
	}
	_ = syscall.SetsockoptInt(s.fd, syscall.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	tv := syscall.Timeval{Usec: 100000}
	_ = syscall.SetsockoptTimeval(s.fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	s.wg.Add(1)
	go s.loop()
	t.Cleanup(s.Stop)
	return s
}

func (s *Sniff) loop() {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	for {
		select {
		case <-s.done:
			return
		default:
		}
		n, _, err := syscall.Recvfrom(s.fd, buf, 0)
		if err != nil {
			continue
		}
		b := buf[:n]
		if len(b) < 20 || b[0]>>4 != 4 || b[9] != syscall.IPPROTO_UDP {
			continue
		}
		ihl := int(b[0]&0xF) * 4
		if len(b) < ihl+8 {
			continue
		}
		src, _ := netip.AddrFromSlice(b[12:16])
		dst, _ := netip.AddrFromSlice(b[16:20])
		d := Datagram{
			Src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[ihl:])),
			Dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[ihl+2:])),
			Payload: append([]byte(nil), b[ihl+8:]...),
		}
		s.mu.Lock()
		s.got = append(s.got, d)
		s.mu.Unlock()
	}
}

// Datagrams returns what it saw so far.
func (s *Sniff) Datagrams() []Datagram {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Datagram(nil), s.got...)
}

// Stop ends the capture.
func (s *Sniff) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	s.wg.Wait()
	syscall.Close(s.fd)
}
