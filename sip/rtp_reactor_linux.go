//go:build linux

package sip

import (
	"encoding/binary"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"
)

// The RTP sockets of all calls are read by a few reactors (one per CPU)
// instead of a goroutine per socket: each reactor keeps an epoll set of
// its sockets, registered in turn with Go's poller, and when woken reads
// every socket that has a packet, with one recvfrom each. A packet then
// costs no goroutine wake-up of its own, and no second recvfrom that
// finds the socket empty (what a blocking read per socket does).

type reactor struct {
	epfd   int
	raw    syscall.RawConn // epfd in Go's poller
	mu     sync.Mutex
	byFD   map[int32]*rtpSession
	events [64]unix.EpollEvent
	buf    []byte
	pkt    rtp.Packet
	from   unix.RawSockaddrAny
}

var (
	reactorsOnce sync.Once
	reactors     []*reactor
	reactorNext  atomic.Uint32
	reactorErr   error
)

// pickReactor returns a reactor for a new session (round robin), starting
// them on first use; nil when epoll is unavailable (the session then reads
// with a goroutine of its own).
func pickReactor() *reactor {
	reactorsOnce.Do(func() {
		for range max(1, runtime.GOMAXPROCS(0)) {
			r, err := newReactor()
			if err != nil {
				reactorErr = err
				return
			}
			reactors = append(reactors, r)
		}
	})
	if len(reactors) == 0 {
		return nil
	}
	return reactors[reactorNext.Add(1)%uint32(len(reactors))]
}

func newReactor() (*reactor, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	f := os.NewFile(uintptr(epfd), "rtp-epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	r := &reactor{epfd: epfd, raw: raw, byFD: map[int32]*rtpSession{}, buf: make([]byte, 1500)}
	go r.run(f)
	return r, nil
}

// add starts reading s's RTP socket; false if it cannot (s then reads with
// a goroutine).
func (r *reactor) add(s *rtpSession) bool {
	sc, err := s.rtpConn.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	if err := sc.Control(func(f uintptr) { fd = int(f) }); err != nil || fd < 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return false
	}
	r.byFD[int32(fd)] = s
	s.rfd = fd
	return true
}

// remove stops reading s's socket; once it returns, no packet of s is
// being handled and none will be. The socket must still be open.
func (r *reactor) remove(s *rtpSession) {
	s.readMu.Lock()
	s.readDone = true
	s.readMu.Unlock()
	r.mu.Lock()
	if r.byFD[int32(s.rfd)] == s {
		delete(r.byFD, int32(s.rfd))
		_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, s.rfd, nil)
	}
	r.mu.Unlock()
}

func (r *reactor) run(f *os.File) {
	defer runtime.KeepAlive(f)
	for {
		var n int
		err := r.raw.Read(func(uintptr) bool {
			var err error
			n, err = unix.EpollWait(r.epfd, r.events[:], 0)
			return !(n == 0 || err == unix.EINTR || err == unix.EAGAIN)
		})
		if err != nil {
			return // never closed: the reactors live as long as the process
		}
		for i := range n {
			r.mu.Lock()
			s := r.byFD[r.events[i].Fd]
			r.mu.Unlock()
			if s != nil {
				r.read(s)
			}
		}
	}
}

// read takes one packet from s's socket, if it has one (an event can be
// stale: the socket was read meanwhile, or closed and its number reused).
func (r *reactor) read(s *rtpSession) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.readDone {
		return
	}
	fromLen := uint32(unsafe.Sizeof(r.from))
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.rfd), uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)),
		0, uintptr(unsafe.Pointer(&r.from)), uintptr(unsafe.Pointer(&fromLen)))
	if errno != 0 {
		return
	}
	src := sockaddrAddrPort(&r.from)
	b, ok := s.unprotectRTP(r.buf[:n])
	if !ok {
		return
	}
	if err := r.pkt.Unmarshal(b); err != nil || r.pkt.Version != 2 {
		return
	}
	s.handleRTP(&r.pkt, src, int(n))
}

func sockaddrAddrPort(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), port)
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&p.Port))[:])
		// As net does: an IPv4 peer of a dual-stack socket stays mapped.
		// (A link-local peer's zone is left out.)
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr), port)
	}
	return netip.AddrPort{}
}
