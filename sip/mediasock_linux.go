package sip

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Media sockets on Linux sit outside Go's netpoller: a few pollers (one
// per CPU), each one goroutine on its own epoll set, read every RTP and
// RTCP socket. A packet is read with one recvfrom and handed to its
// session on the poller's goroutine: no goroutine per socket to wake, no
// second recvfrom that says EAGAIN. While packets flow a poller looks
// every pollCoalesce without blocking, so that one epoll_wait serves many
// sockets; after pollIdleBlock empty looks it waits in the kernel until
// the next packet. Writes are one sendto each.

// pollCoalesce is how often a poller looks while packets flow: the delay
// it adds to a packet is at most this, well inside a jitter buffer's
// 20 ms frames.
const pollCoalesce = 2 * time.Millisecond

// pollBatch is how many ready sockets one epoll_wait returns at most.
const pollBatch = 256

// maxDatagram is the largest packet read whole; a longer one is cut
// (RTP and RTCP packets of audio are far smaller).
const maxDatagram = 2048

var mediaPollers struct {
	once sync.Once
	ps   []*poller
	err  error
	next atomic.Uint32
}

// pollerFor returns a poller, round robin.
func pollerFor() (*poller, error) {
	mediaPollers.once.Do(func() {
		for range max(runtime.GOMAXPROCS(0), 1) {
			p, err := newPoller()
			if err != nil {
				mediaPollers.err = err
				return
			}
			mediaPollers.ps = append(mediaPollers.ps, p)
			go p.run()
		}
	})
	if mediaPollers.err != nil {
		return nil, mediaPollers.err
	}
	ps := mediaPollers.ps
	return ps[int(mediaPollers.next.Add(1))%len(ps)], nil
}

// poller reads the sockets of one epoll set. Its sockets are keyed by fd:
// a socket leaves the set (and the map) before its fd is closed, so an
// event for a closed fd finds nothing, or a newer socket on the same fd
// number, whose recvfrom then just finds nothing to read.
type poller struct {
	epfd   int
	mu     sync.Mutex
	socks  map[int32]*mediaSock
	events [pollBatch]syscall.EpollEvent
	buf    [maxDatagram]byte
	from   syscall.RawSockaddrAny
	fromN  uint32
}

func newPoller() (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return &poller{epfd: fd, socks: map[int32]*mediaSock{}}, nil
}

func (p *poller) run() {
	idle := 0
	for {
		var n int
		var err error
		if idle < pollIdleBlock {
			// A look that does not block. Waiting in epoll_wait between
			// looks measured worse for the echo (x-bare 1.45-1.75 against
			// 1.04-1.12), likely because a goroutine blocked in a system
			// call keeps the runtime's sysmon waking every 20 us to take
			// its P back.
			r, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(p.epfd), uintptr(unsafe.Pointer(&p.events[0])), uintptr(len(p.events)), 0, 0, 0)
			n = int(r)
			if errno != 0 {
				n, err = 0, errno
			}
		} else {
			// Nothing for a while: wait in the kernel until a packet comes.
			n, err = syscall.EpollWait(p.epfd, p.events[:], -1)
		}
		if err != nil && err != syscall.EINTR {
			n = 0 // EBADF/EFAULT cannot happen: do not spin if they do
		}
		if n > 0 {
			idle = 0
		} else {
			idle++
		}
		for i := range n {
			p.mu.Lock()
			s := p.socks[p.events[i].Fd]
			p.mu.Unlock()
			if s != nil {
				p.readOne(s)
			}
		}
		if n < len(p.events) && idle < pollIdleBlock {
			time.Sleep(pollCoalesce)
		}
	}
}

// pollIdleBlock is how many looks in a row that find nothing (2 ms apart)
// make a poller wait in the kernel instead: 100 ms without a packet.
const pollIdleBlock = 50

// readOne reads one packet of s (a level-triggered set reports the socket
// again if it holds more) and hands it over.
func (p *poller) readOne(s *mediaSock) {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	if s.fd < 0 {
		return
	}
	p.fromN = syscall.SizeofSockaddrAny
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(s.fd), uintptr(unsafe.Pointer(&p.buf[0])), uintptr(len(p.buf)),
		syscall.MSG_DONTWAIT, uintptr(unsafe.Pointer(&p.from)), uintptr(unsafe.Pointer(&p.fromN)))
	if errno != 0 || int(n) > len(p.buf) {
		return
	}
	from, ok := addrPortOf(&p.from)
	if !ok {
		return
	}
	s.rx(p.buf[:n], from)
}

// mediaSock is a bound UDP socket whose packets a poller hands to rx, on
// the poller's goroutine: rx must not block, nor close its own socket.
type mediaSock struct {
	rx     func(b []byte, from netip.AddrPort)
	p      *poller
	family int // AF_INET or AF_INET6
	// fd is -1 once closed. rxMu is held while a packet is read and
	// handled, wMu while one is written: close takes both, so that once
	// it returns nothing of the socket runs and its fd is not used.
	fd      int
	rxMu    sync.Mutex
	wMu     sync.Mutex
	sa      [syscall.SizeofSockaddrInet6]byte // the destination, built under wMu
	started bool
}

// listenMedia binds a UDP socket to ap, as net.ListenUDP("udp") would: an
// IPv4 address gets an IPv4 socket, an unspecified one (0.0.0.0 or ::) a
// dual-stack IPv6 socket (IPv4 peers then show as ::ffff:a.b.c.d), where
// the system has IPv6. Nothing is read before start.
func listenMedia(ap netip.AddrPort, rx func(b []byte, from netip.AddrPort)) (*mediaSock, error) {
	p, err := pollerFor()
	if err != nil {
		return nil, err
	}
	addr := ap.Addr().Unmap()
	family, v6only := syscall.AF_INET, false
	if addr.Is6() || addr.IsUnspecified() {
		family, v6only = syscall.AF_INET6, !addr.IsUnspecified()
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err == syscall.EAFNOSUPPORT && addr.IsUnspecified() {
		family, addr = syscall.AF_INET, netip.IPv4Unspecified()
		fd, err = syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if family == syscall.AF_INET6 {
		on := int32(boolInt(v6only))
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, uintptr(fd), syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY,
			uintptr(unsafe.Pointer(&on)), 4, 0); errno != 0 {
			rawClose(fd)
			return nil, os.NewSyscallError("setsockopt", errno)
		}
	}
	var sa [syscall.SizeofSockaddrInet6]byte
	saLen, err := sockaddrOf(&sa, family, netip.AddrPortFrom(addr, ap.Port()))
	if err != nil {
		rawClose(fd)
		return nil, err
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), saLen); errno != 0 {
		rawClose(fd)
		return nil, &net.OpError{Op: "listen", Net: "udp", Addr: net.UDPAddrFromAddrPort(ap), Err: os.NewSyscallError("bind", errno)}
	}
	return &mediaSock{rx: rx, p: p, family: family, fd: fd}, nil
}

// rawClose closes fd. The socket's set-up and close, like its reads and
// writes, are raw system calls: a system call made the usual way
// (entersyscall) wakes the runtime's sysmon when the process was idle, and
// it then looks every 20 us for a millisecond or more; a call's first
// system calls after an idle gap were those of its RTP sockets.
func rawClose(fd int) error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0); errno != 0 {
		return errno
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// start has the poller read the socket. Idempotent; nothing after close.
func (s *mediaSock) start() error {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	if s.fd < 0 || s.started {
		return nil
	}
	s.started = true
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.p.socks[int32(s.fd)] = s
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(s.fd)}
	if err := syscall.EpollCtl(s.p.epfd, syscall.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
		delete(s.p.socks, int32(s.fd))
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// errMediaBusy is a packet not sent: the socket's send buffer was full.
var errMediaBusy = errors.New("media socket send buffer full: packet dropped")

// writeTo sends b to the peer at to. It never blocks: a full send buffer
// drops the packet (errMediaBusy), as the network would.
func (s *mediaSock) writeTo(b []byte, to netip.AddrPort) error {
	s.wMu.Lock()
	defer s.wMu.Unlock()
	if s.fd < 0 {
		return net.ErrClosed
	}
	n, err := sockaddrOf(&s.sa, s.family, to)
	if err != nil {
		return err
	}
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	_, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(s.fd), uintptr(p), uintptr(len(b)), syscall.MSG_DONTWAIT,
		uintptr(unsafe.Pointer(&s.sa[0])), n)
	switch errno {
	case 0:
		return nil
	case syscall.EAGAIN:
		return errMediaBusy
	default:
		return os.NewSyscallError("sendto", errno)
	}
}

// close stops the reads, waits for a packet being handled, closes the fd.
// Idempotent. It must not run from the socket's own rx.
func (s *mediaSock) close() error {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	s.wMu.Lock()
	defer s.wMu.Unlock()
	if s.fd < 0 {
		return nil
	}
	if s.started {
		s.p.mu.Lock()
		_ = syscall.EpollCtl(s.p.epfd, syscall.EPOLL_CTL_DEL, s.fd, nil)
		delete(s.p.socks, int32(s.fd))
		s.p.mu.Unlock()
	}
	err := rawClose(s.fd)
	s.fd = -1
	return err
}

// sockaddrOf writes ap into sa as a socket address of family and returns
// its length: an IPv4 socket takes IPv4 addresses only, an IPv6 one takes
// an IPv4 peer as ::ffff:a.b.c.d. It does not allocate (but for an error).
func sockaddrOf(sa *[syscall.SizeofSockaddrInet6]byte, family int, ap netip.AddrPort) (uintptr, error) {
	addr := ap.Addr()
	if family == syscall.AF_INET {
		if addr = addr.Unmap(); !addr.Is4() {
			return 0, &net.AddrError{Err: "not an IPv4 address", Addr: addr.String()}
		}
		s4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&sa[0]))
		*s4 = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: addr.As4()}
		putPort(&s4.Port, ap.Port())
		return syscall.SizeofSockaddrInet4, nil
	}
	s6 := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&sa[0]))
	*s6 = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: addr.As16()}
	putPort(&s6.Port, ap.Port())
	if z := addr.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			s6.Scope_id = uint32(ifi.Index)
		}
	}
	return syscall.SizeofSockaddrInet6, nil
}

// putPort stores a port in network byte order.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// addrPortOf reads a received packet's source address.
func addrPortOf(rsa *syscall.RawSockaddrAny) (netip.AddrPort, bool) {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		b := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(b[0])<<8|uint16(b[1])), true
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		b := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(b[0])<<8|uint16(b[1])), true
	}
	return netip.AddrPort{}, false
}
