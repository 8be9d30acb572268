package sip

import (
	"net"
	"os"
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
	return &rawUDP{UDPConn: uc, rc: rc, family: family}
}

// ReadFrom reads one datagram (cut to len(b), as Go's read does).
func (c *rawUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	if len(b) == 0 {
		return c.UDPConn.ReadFrom(b)
	}
	for {
		var (
			n     uintptr
			errno syscall.Errno
			from  syscall.RawSockaddrAny
		)
		err := c.rc.Read(func(fd uintptr) bool {
			fromN := uint32(syscall.SizeofSockaddrAny)
			n, _, errno = syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
				syscall.MSG_DONTWAIT, uintptr(unsafe.Pointer(&from)), uintptr(unsafe.Pointer(&fromN)))
			return errno != syscall.EAGAIN && errno != syscall.EINTR
		})
		if err != nil {
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: unwrapOp(err)}
		}
		if errno != 0 {
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: os.NewSyscallError("recvfrom", errno)}
		}
		// A UDP socket's source is always an IP address; a datagram whose
		// is not (it cannot happen) is skipped rather than handed over
		// without one.
		if ap, ok := addrPortOf(&from); ok {
			return int(n), net.UDPAddrFromAddrPort(ap), nil
		}
	}
}

// WriteTo sends b to addr as one datagram.
func (c *rawUDP) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return c.UDPConn.WriteTo(b, addr) // Go's error for a wrong address type
	}
	var sa [syscall.SizeofSockaddrInet6]byte
	saLen, err := sockaddrOf(&sa, c.family, ua.AddrPort())
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
	}
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	var errno syscall.Errno
	err = c.rc.Write(func(fd uintptr) bool {
		_, _, errno = syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(p), uintptr(len(b)), syscall.MSG_DONTWAIT,
			uintptr(unsafe.Pointer(&sa[0])), saLen)
		return errno != syscall.EAGAIN && errno != syscall.EINTR
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("sendto", errno)
	} else if err != nil {
		err = unwrapOp(err)
	}
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
	}
	return len(b), nil
}

// unwrapOp returns the error inside a RawConn's *net.OpError (so that ours
// does not nest one in another); net.ErrClosed stays what errors.Is finds.
func unwrapOp(err error) error {
	if op, ok := err.(*net.OpError); ok {
		return op.Err
	}
	return err
}
