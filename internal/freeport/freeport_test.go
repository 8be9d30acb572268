package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Ports gives even ranges below the ephemeral range that can be bound, and
// never the same range twice in a row while the first is held.
func TestPorts(t *testing.T) {
	lo := ephemeralStart()
	seen := map[int]bool{}
	for i := 0; i < 50; i++ {
		p := Ports(t, 3)
		if p%2 != 0 || p < floor || p+3 > lo {
			t.Fatalf("port %d: odd or outside [%d, %d)", p, floor, lo)
		}
		if seen[p] {
			t.Fatalf("port %d given twice", p)
		}
		seen[p] = true
		c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p+2))
		if err != nil {
			t.Fatalf("port %d: %v", p+2, err)
		}
		c.Close()
	}
}

// A port already bound is skipped.
func TestPortsSkipsBound(t *testing.T) {
	p := Ports(t, 1)
	mu.Lock()
	next = p // try p again first
	mu.Unlock()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if q := Ports(t, 1); q == p {
		t.Fatalf("port %d is bound and was given", p)
	}
}
