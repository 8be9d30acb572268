package peertest

import (
	"encoding/binary"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/voxgate/voxgate/audio"
)

// Capture records the G.711 RTP that arrives at one UDP port on the loopback
// interface, the way tshark would, with a raw AF_PACKET socket (needs root,
// as `make test` has). It is what a peer received, independent of the peer's
// own recording.
type Capture struct {
	fd       int
	min, max uint16
	wg       sync.WaitGroup
	mu       sync.Mutex
	pcm      []int16
	at       []time.Time // arrival time of each packet's first sample index
	idx      []int
	pts      map[uint8]int
	sizes    map[int]int // payload bytes -> packets
	dtmf     []rune      // RFC 4733 digits seen (payload type 101), once per event
	seen     map[uint64]struct{}
	done     chan struct{}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// CaptureRTP starts capturing RTP to UDP ports min..max on loopback.
func CaptureRTP(t testing.TB, min, max int) *Capture {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, int(htons(syscall.ETH_P_IP)))
	if err != nil {
		t.Fatalf("raw capture socket (needs root): %v", err)
	}
	lo, err := interfaceIndex("lo")
	if err != nil {
		t.Fatal(err)
	}
	// Only UDP to the ports watched reaches the socket, filtered in the
	// kernel, and the buffer is large: tests of other packages run at the
	// same time and flood loopback (sipp, torture sets), which overflowed
	// the socket and lost every RTP packet of a call once.
	if err := attachPortFilter(fd, min, max); err != nil {
		t.Fatalf("capture filter: %v", err)
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_IP), Ifindex: lo}); err != nil {
		t.Fatal(err)
	}
	tv := syscall.Timeval{Usec: 100000}
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	c := &Capture{fd: fd, min: uint16(min), max: uint16(max), pts: map[uint8]int{}, sizes: map[int]int{}, seen: map[uint64]struct{}{}, done: make(chan struct{})}
	c.wg.Add(1)
	go c.loop()
	t.Cleanup(c.Stop)
	return c
}

// attachPortFilter lets through IPv4 UDP packets to ports min..max only (the
// socket sees packets from their IP header on).
func attachPortFilter(fd, min, max int) error {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 9, Size: 1}, // IP protocol
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: syscall.IPPROTO_UDP, SkipFalse: 5},
		bpf.LoadMemShift{Off: 0},          // X = IP header length
		bpf.LoadIndirect{Off: 2, Size: 2}, // UDP destination port
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: uint32(min), SkipFalse: 2},
		bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: uint32(max), SkipTrue: 1},
		bpf.RetConstant{Val: 65535},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
}

func (c *Capture) loop() {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	var pkt rtp.Packet
	for {
		select {
		case <-c.done:
			return
		default:
		}
		n, from, err := syscall.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue
		}
		// On loopback each packet shows twice (PACKET_OUTGOING, then as
		// received); keep whichever copy comes, once (by SSRC and sequence).
		_ = from
		b := buf[:n]
		if len(b) < 20 || b[0]>>4 != 4 || b[9] != syscall.IPPROTO_UDP {
			continue
		}
		ihl := int(b[0]&0xF) * 4
		if len(b) < ihl+8 {
			continue
		}
		if dst := binary.BigEndian.Uint16(b[ihl+2:]); dst < c.min || dst > c.max {
			continue
		}
		if err := pkt.Unmarshal(b[ihl+8:]); err != nil {
			continue
		}
		c.mu.Lock()
		key := uint64(pkt.SSRC)<<16 | uint64(pkt.SequenceNumber)
		if _, dup := c.seen[key]; dup {
			c.mu.Unlock()
			continue
		}
		c.seen[key] = struct{}{}
		c.pts[pkt.PayloadType]++
		c.sizes[len(pkt.Payload)]++
		if pkt.PayloadType == 101 {
			if ev, err := audio.ParseDTMFEvent(pkt.Payload); err == nil && pkt.Marker {
				c.dtmf = append(c.dtmf, audio.DigitOf(ev.Event))
			}
		}
		c.idx = append(c.idx, len(c.pcm))
		c.at = append(c.at, time.Now())
		switch pkt.PayloadType {
		case 0:
			c.pcm = audio.DecodeUlaw(c.pcm, pkt.Payload)
		case 8:
			c.pcm = audio.DecodeAlaw(c.pcm, pkt.Payload)
		}
		c.mu.Unlock()
	}
}

// Stop ends the capture.
func (c *Capture) Stop() {
	select {
	case <-c.done:
		return
	default:
	}
	close(c.done)
	c.wg.Wait()
	syscall.Close(c.fd)
}

// Between returns the decoded audio of the packets that arrived in [t0, t1).
func (c *Capture) Between(t0, t1 time.Time) []int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	from, to := -1, len(c.pcm)
	for i, at := range c.at {
		if from < 0 && !at.Before(t0) {
			from = c.idx[i]
		}
		if !at.Before(t1) {
			to = c.idx[i]
			break
		}
	}
	if from < 0 || from >= to {
		return nil
	}
	return append([]int16(nil), c.pcm[from:to]...)
}

// PacketsBetween counts the packets that arrived in [t0, t1).
func (c *Capture) PacketsBetween(t0, t1 time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, at := range c.at {
		if !at.Before(t0) && at.Before(t1) {
			n++
		}
	}
	return n
}

// PayloadTypes counts the captured packets per RTP payload type.
func (c *Capture) PayloadTypes() map[uint8]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[uint8]int{}
	for k, v := range c.pts {
		out[k] = v
	}
	return out
}

// DTMF returns the RFC 4733 digits captured (payload type 101).
func (c *Capture) DTMF() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.dtmf)
}

// PayloadSizes counts the captured packets per payload length (bytes after
// the RTP header: with SRTP, the encrypted payload and its auth tag).
func (c *Capture) PayloadSizes() map[int]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int]int{}
	for k, v := range c.sizes {
		out[k] = v
	}
	return out
}
