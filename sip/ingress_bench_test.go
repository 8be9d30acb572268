package sip

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/voxgate/voxgate/audio"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSIPLegIngress: one PCMU RTP packet from a UDP socket on loopback
// into the jitter buffer a room would read it from: the sender's sendto,
// the kernel, voxgate's reading goroutine, RTP parse and receive stats, the
// hand-over to the leg's consumer and the push. It reports the whole
// process's CPU per packet (sender included).
func BenchmarkSIPLegIngress(b *testing.B) {
	s, err := newRTPSession(quietLogger(), newPortPool(41000, 41999), netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	s.configure(&mediaOffer{Addr: netip.MustParseAddrPort(peer.LocalAddr().String()), Codec: sipCodecs["pcmu"], Direction: SendRecv}, SendRecv)
	s.start(context.Background())
	jb := audio.NewJitterBuffer(audio.JitterConfig{Rate: 8000})
	var mu sync.Mutex
	var n atomic.Int64
	push := func(p *audio.Packet) {
		mu.Lock()
		jb.Push(p.Seq, p.Timestamp, p.SSRC, p.Payload, time.Now())
		mu.Unlock()
		n.Add(1)
	}
	stop := consume(s, push)
	defer stop()
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.port}
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 9}, Payload: make([]byte, 160)}
	buf := make([]byte, 1500)
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		pkt.SequenceNumber++
		pkt.Timestamp += 160
		m, _ := pkt.MarshalTo(buf)
		if _, err := peer.WriteToUDP(buf[:m], to); err != nil {
			b.Fatal(err)
		}
		if i%16 == 15 { // stay within the socket buffer
			for n.Load() < int64(i-8) {
				time.Sleep(20 * time.Microsecond)
			}
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for n.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N)/1000, "us-cpu/packet")
	b.ReportMetric(float64(n.Load())/float64(b.N), "delivered")
}
