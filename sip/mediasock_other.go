//go:build !linux

package sip

import (
	"errors"
	"net"
	"net/netip"
	"sync"
)

// mediaSock is a bound UDP socket whose packets go to rx. Outside Linux a
// goroutine per socket reads it (Linux shares a few epoll pollers).
type mediaSock struct {
	conn    *net.UDPConn
	rx      func(b []byte, from netip.AddrPort)
	once    sync.Once
	closed  sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex
	stopped bool
}

func listenMedia(ap netip.AddrPort, rx func(b []byte, from netip.AddrPort)) (*mediaSock, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, err
	}
	return &mediaSock{conn: c, rx: rx}, nil
}

func (s *mediaSock) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.once.Do(func() {
		s.wg.Add(1)
		go s.read()
	})
	return nil
}

func (s *mediaSock) read() {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.rx(buf[:n], from)
	}
}

func (s *mediaSock) writeTo(b []byte, to netip.AddrPort) error {
	_, err := s.conn.WriteToUDPAddrPort(b, to)
	return err
}

func (s *mediaSock) close() error {
	var err error
	s.closed.Do(func() {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		err = s.conn.Close()
		s.wg.Wait()
	})
	return err
}
