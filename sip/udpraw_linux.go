package sip

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// rawUDP is the SIP UDP listener with its reads and writes made as raw
// system calls through its RawConn: the same non-blocking recvfrom and
// sendto as Go's net package, parked in Go's netpoller the same way, but
// without telling the runtime that a system call started. Go's own read
// does (entersyscall), and the first system call after the process was
// idle wakes the runtime's sysmon, which then looks every 20 us for a
// millisecond or more: under a call load, whose requests come with short
// idle gaps between them, sysmon's wake-ups were about a tenth of
// voxgate's CPU (perf, BenchmarkE2ESippInviteBye).
type rawUDP struct {
	*net.UDPConn
	rc     syscall.RawConn
	family int // AF_INET or AF_INET6
	// rd is the reader's state, its closure built once: sipgo reads a
	// socket from one goroutine, rdMu keeps a second reader safe.
	rdMu sync.Mutex
	rd   rawRead
	srcs sourceCache
}

// rawRead is one recvfrom's arguments and results, kept with its closure
// so that a read allocates nothing.
type rawRead struct {
	b     []byte
	n     uintptr
	errno syscall.Errno
	from  syscall.RawSockaddrAny
	fn    func(fd uintptr) bool
}

func (r *rawRead) recv(fd uintptr) bool {
	fromN := uint32(syscall.SizeofSockaddrAny)
	r.n, _, r.errno = syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.b[0])), uintptr(len(r.b)),
		syscall.MSG_DONTWAIT, uintptr(unsafe.Pointer(&r.from)), uintptr(unsafe.Pointer(&fromN)))
	return r.errno != syscall.EAGAIN && r.errno != syscall.EINTR
}

// rawWrite is one sendto's arguments and result, with its closure; writes
// come from many goroutines, so they take one from a pool.
type rawWrite struct {
	sa    [syscall.SizeofSockaddrInet6]byte
	saLen uintptr
	b     []byte
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

var rawWrites = sync.Pool{New: func() any {
	w := &rawWrite{}
	w.fn = w.send
	return w
}}

func (w *rawWrite) send(fd uintptr) bool {
	var p unsafe.Pointer
	if len(w.b) > 0 {
		p = unsafe.Pointer(&w.b[0])
	}
	_, _, w.errno = syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(p), uintptr(len(w.b)), syscall.MSG_DONTWAIT,
		uintptr(unsafe.Pointer(&w.sa[0])), w.saLen)
	return w.errno != syscall.EAGAIN && w.errno != syscall.EINTR
}

// rawPacketConn returns c with raw reads and writes where it can (a UDP
// socket), else c.
func rawPacketConn(c net.PacketConn) net.PacketConn {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return c
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return c
	}
	family := 0
	_ = rc.Control(func(fd uintptr) {
		switch sa, _ := syscall.Getsockname(int(fd)); sa.(type) {
		case *syscall.SockaddrInet4:
			family = syscall.AF_INET
		case *syscall.SockaddrInet6:
			family = syscall.AF_INET6
		}
	})
	if family == 0 {
		return c
	}
	r := &rawUDP{UDPConn: uc, rc: rc, family: family}
	r.rd.fn = r.rd.recv
	return r
}

// ReadFrom reads one datagram (cut to len(b), as Go's read does). The
// source is a *sourceAddr, the same one for every datagram from the same
// address (see sourceCache). A read allocates nothing.
func (c *rawUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	if len(b) == 0 {
		return c.UDPConn.ReadFrom(b)
	}
	c.rdMu.Lock()
	defer c.rdMu.Unlock()
	c.rd.b = b
	defer func() { c.rd.b = nil }()
	for {
		err := c.rc.Read(c.rd.fn)
		if err != nil {
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: unwrapOp(err)}
		}
		if c.rd.errno != 0 {
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: os.NewSyscallError("recvfrom", c.rd.errno)}
		}
		// A UDP socket's source is always an IP address; a datagram whose
		// is not (it cannot happen) is skipped rather than handed over
		// without one.
		if ap, ok := addrPortOf(&c.rd.from); ok {
			return int(c.rd.n), c.srcs.get(ap), nil
		}
	}
}

// WriteTo sends b to addr (a *net.UDPAddr, or a source ReadFrom gave) as
// one datagram.
func (c *rawUDP) WriteTo(b []byte, addr net.Addr) (int, error) {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *sourceAddr:
		ap = a.ap
	default:
		return c.UDPConn.WriteTo(b, addr) // Go's error for a wrong address type
	}
	w := rawWrites.Get().(*rawWrite)
	defer rawWrites.Put(w)
	saLen, err := sockaddrOf(&w.sa, c.family, ap)
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
	}
	w.saLen, w.b = saLen, b
	err = c.rc.Write(w.fn)
	w.b = nil
	if err == nil && w.errno != 0 {
		err = os.NewSyscallError("sendto", w.errno)
	} else if err != nil {
		err = unwrapOp(err)
	}
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
	}
	return len(b), nil
}

// sourceAddr is a datagram's source as ReadFrom gives it: a *net.UDPAddr's
// fields and methods, with its string built once. sipgo writes every
// datagram's source as a string, which a *net.UDPAddr builds anew (two
// allocations) each time.
type sourceAddr struct {
	net.UDPAddr
	ap netip.AddrPort
	s  string
}

func (a *sourceAddr) String() string { return a.s }

// sourceCache keeps a sourceAddr per source address seen, up to
// maxSources; when full it starts again empty. Its addresses are never
// changed once handed out.
type sourceCache struct {
	mu sync.Mutex
	m  map[netip.AddrPort]*sourceAddr
}

const maxSources = 4096

func (c *sourceCache) get(ap netip.AddrPort) *sourceAddr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.m[ap]; a != nil {
		return a
	}
	if c.m == nil || len(c.m) >= maxSources {
		c.m = make(map[netip.AddrPort]*sourceAddr)
	}
	ua := net.UDPAddrFromAddrPort(ap)
	a := &sourceAddr{UDPAddr: *ua, ap: ap, s: ua.String()}
	c.m[ap] = a
	return a
}

// unwrapOp returns the error inside a RawConn's *net.OpError (so that ours
// does not nest one in another); net.ErrClosed stays what errors.Is finds.
func unwrapOp(err error) error {
	if op, ok := err.(*net.OpError); ok {
		return op.Err
	}
	return err
}
