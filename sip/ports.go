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

// listen binds an RTP and an RTCP socket on ip, whose packets go to rtpRx
// and rtcpRx once they are started.
func (p *portPool) listen(ip netip.Addr, rtpRx, rtcpRx func([]byte, netip.AddrPort)) (rtp, rtcp *mediaSock, port int, err error) {
	return listenPair(p, func(port int) (*mediaSock, error) {
		return listenMedia(netip.AddrPortFrom(ip, uint16(port)), rtpRx)
	}, func(port int) (*mediaSock, error) {
		return listenMedia(netip.AddrPortFrom(ip, uint16(port)), rtcpRx)
	}, (*mediaSock).close)
}

// listenConns binds an RTP and an RTCP socket on ip as Go's own UDP
// sockets (a WebRTC relay reads and writes them itself).
func (p *portPool) listenConns(ip netip.Addr) (rtp, rtcp *net.UDPConn, port int, err error) {
	listen := func(port int) (*net.UDPConn, error) {
		return net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
	}
	return listenPair(p, listen, listen, (*net.UDPConn).Close)
}

// listenPair binds the next free pair of ports with listenRTP and
// listenRTCP.
func listenPair[S any](p *portPool, listenRTP, listenRTCP func(port int) (S, error), closeSock func(S) error) (rtp, rtcp S, port int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var none S
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
		rtp, err := listenRTP(port)
		if fdExhausted(err) {
			return none, none, 0, fmt.Errorf("%w: %w", ErrNoFiles, err)
		}
		if err != nil {
			continue // taken by someone else
		}
		rtcp, err := listenRTCP(port + 1)
		if err != nil {
			_ = closeSock(rtp)
			if fdExhausted(err) {
				return none, none, 0, fmt.Errorf("%w: %w", ErrNoFiles, err)
			}
			continue
		}
		p.used[port] = true
		return rtp, rtcp, port, nil
	}
	return none, none, 0, fmt.Errorf("%w in %d-%d", ErrNoPorts, p.min, p.max)
}

func (p *portPool) release(port int) {
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}
