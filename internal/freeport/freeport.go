// Package freeport hands tests ports to give to programs that bind them
// themselves (baresip, sipp, Kamailio), chosen below the kernel's ephemeral
// range.
//
// A port found free by binding 127.0.0.1:0 comes from the ephemeral range,
// where the kernel gives the next outgoing connection or unbound socket of
// any process its port: between the check and the program's own bind, the
// port was taken often enough to fail a suite now and then ("Address already
// in use"). Below the range, only a program told a port binds it; each test
// process sweeps the range from its own random start, so two processes
// rarely meet, and a port found bound is skipped.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const floor = 10000 // below: well-known and registered services

var (
	mu   sync.Mutex
	next int // the next port to try; 0: not yet chosen
	top  int // the first port of the ephemeral range
)

// ephemeralStart reads the first port of the kernel's ephemeral range
// (32768 when it cannot be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > floor+2000 {
				return lo
			}
		}
	}
	return 32768
}

// Ports returns an even port p such that UDP and TCP on 127.0.0.1, p to
// p+n-1, were all free a moment ago and lie below the ephemeral range.
func Ports(tb testing.TB, n int) int {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if top == 0 {
		top = ephemeralStart()
		next = floor + rand.IntN(top-floor)&^1
	}
	for try := 0; try < 500; try++ {
		p := next
		if p+n > top {
			p = floor
		}
		next = (p + n + 1) &^ 1
		if free(p, n) {
			return p
		}
	}
	tb.Fatal("freeport: no free port range below the ephemeral range")
	return 0
}

// free reports whether UDP and TCP p..p+n-1 can be bound on 127.0.0.1.
func free(p, n int) bool {
	for i := 0; i < n; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", p+i)
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		l, err := net.Listen("tcp", addr)
		u.Close()
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
