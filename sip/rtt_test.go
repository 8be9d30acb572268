package sip

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// A receiver report echoing our sender report, sent 120 ms after it and
// held 50 ms by the peer, gives an RTT of at least 70 ms.
func TestSessionMeasuresRTT(t *testing.T) {
	s, err := newRTPSession(quietLogger(), newPortPool(32000, 32099), netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	s.start(context.Background())
	defer s.close()
	peer, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.port + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	sent := time.Now().Add(-120 * time.Millisecond) // when "our" SR left
	rr := &rtcp.ReceiverReport{SSRC: 1234, Reports: []rtcp.ReceptionReport{{
		SSRC: s.ssrc, LastSenderReport: uint32(ntpTime(sent) >> 16), Delay: 65536 / 20}}} // 50 ms
	b, _ := rr.Marshal()
	deadline := time.Now().Add(3 * time.Second)
	for s.snapshot().RTT == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no RTT from a receiver report echoing our SR")
		}
		if _, err := peer.Write(b); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rtt := s.snapshot().RTT; rtt < 69*time.Millisecond || rtt > 10*time.Second {
		t.Fatalf("RTT %v, want at least 70 ms", rtt)
	}
}
