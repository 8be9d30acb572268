package sip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// Errors of the RTP port pool.
var (
	// ErrNoPorts: every RTP port pair of the range is in use.
	ErrNoPorts = errors.New("no free RTP port pair")
	// ErrNoFiles: the process is out of file descriptors (not of ports).
	ErrNoFiles = errors.New("out of file descriptors")
)

// fdExhausted reports whether err says the process or system has no file
// descriptor left.
func fdExhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// portPool hands out RTP/RTCP port pairs (even, even+1) from a range, round
// robin so that a port just freed is not reused at once (late packets of the
// previous call would land in the next one).
type portPool struct {
	min, max int

	mu   sync.Mutex
	next int
	used map[int]bool
}

func newPortPool(min, max int) *portPool {
	if min%2 == 1 {
		min++
	}
	return &portPool{min: min, max: max, next: min, used: map[int]bool{}}
}

// listen binds an RTP and an RTCP socket on ip.
func (p *portPool) listen(ip netip.Addr) (rtp, rtcp *net.UDPConn, port int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pairs := (p.max - p.min + 1) / 2
	for i := 0; i < pairs; i++ {
		port := p.next
		p.next += 2
		if p.next+1 > p.max {
			p.next = p.min
		}
		if p.used[port] {
			continue
		}
		rtp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if fdExhausted(err) {
			return nil, nil, 0, fmt.Errorf("%w: %w", ErrNoFiles, err)
		}
		if err != nil {
			continue // taken by someone else
		}
		rtcp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port+1))))
		if err != nil {
			rtp.Close()
			if fdExhausted(err) {
				return nil, nil, 0, fmt.Errorf("%w: %w", ErrNoFiles, err)
			}
			continue
		}
		p.used[port] = true
		return rtp, rtcp, port, nil
	}
	return nil, nil, 0, fmt.Errorf("%w in %d-%d", ErrNoPorts, p.min, p.max)
}

func (p *portPool) release(port int) {
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}
