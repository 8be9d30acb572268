package sip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/voxgate/voxgate/audio"
)

// rtpPeer is a bare UDP socket playing the far end of an RTP session.
func rtpPeer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testSession(t *testing.T, remote netip.AddrPort, dir Direction, onDTMF ...func(rune)) *rtpSession {
	t.Helper()
	s, err := newRTPSession(quietLogger(), newPortPool(37000, 37999), netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(onDTMF) > 0 {
		s.onDTMF = onDTMF[0]
	}
	mo := mediaOffer{Addr: remote, Codec: sipCodecs["pcmu"], PT: 0, DTMFPT: 101, Ptime: 20, Direction: dir.reverse()}
	s.configure(&mo, dir)
	s.start(context.Background())
	t.Cleanup(s.close)
	return s
}

func sendRTP(t *testing.T, c *net.UDPConn, to int, seq uint16, ts uint32, pt uint8, payload []byte) {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 1234}, Payload: payload}
	b, _ := p.Marshal()
	if _, err := c.WriteToUDP(b, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: to}); err != nil {
		t.Fatal(err)
	}
}

// voxgate sends its RTP to where the peer's packets come from, not to the
// address in the peer's SDP (a phone behind NAT).
func TestSymmetricRTPLatches(t *testing.T) {
	sdpAddr := netip.MustParseAddrPort("127.0.0.1:9") // nobody there
	s := testSession(t, sdpAddr, SendRecv)
	q := newPacketQueue()
	s.setHandler(q)
	peer := rtpPeer(t)
	pcm := make([]int16, 160)
	sendRTP(t, peer, s.port, 1, 160, 0, audio.EncodeUlaw(nil, pcm))
	var rp audio.Packet
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := q.read(ctx, nil, &rp); err != nil || len(rp.Payload) != 160 || rp.Seq != 1 {
		t.Fatalf("read %+v: %v", rp, err)
	}
	(&audio.Tone{Rate: 8000, Freq: 440, Level: 0.3}).Fill(pcm)
	if err := s.writePayload(audio.EncodeUlaw(nil, pcm), 160); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := peer.Read(buf)
	if err != nil {
		t.Fatalf("voxgate did not send to the latched source: %v", err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil || p.PayloadType != 0 || len(p.Payload) != 160 || !p.Marker {
		t.Fatalf("packet %+v %v", p.Header, err)
	}
}

// Loss and jitter are counted (RFC 3550), DTMF events are reported once per
// event, and hold (recvonly toward us) stops our sending.
func TestRTPStatsDTMFAndHold(t *testing.T) {
	peer := rtpPeer(t)
	digitCh := make(chan rune, 10)
	s := testSession(t, netip.MustParseAddrPort(peer.LocalAddr().String()), SendRecv, func(d rune) { digitCh <- d })
	payload := make([]byte, 160)
	for i := 0; i < 10; i++ {
		if i == 4 || i == 5 { // two lost
			continue
		}
		sendRTP(t, peer, s.port, uint16(65530+i), uint32(i*160), 0, payload) // wraps past 65535
		time.Sleep(5 * time.Millisecond)
	}
	// DTMF '7': start, continuation, end three times (one event).
	for i, ev := range []audio.DTMFEvent{{Event: 7, Duration: 160}, {Event: 7, Duration: 320}, {Event: 7, End: true, Duration: 480}, {Event: 7, End: true, Duration: 480}, {Event: 7, End: true, Duration: 480}} {
		sendRTP(t, peer, s.port, uint16(65540+i), 5000, 101, ev.AppendTo(nil))
	}
	time.Sleep(100 * time.Millisecond)
	st := s.snapshot()
	if st.PacketsReceived != 13 || st.Lost != 2 {
		t.Errorf("received %d lost %d, want 13 and 2", st.PacketsReceived, st.Lost)
	}
	if st.Jitter <= 0 || st.Jitter > 50*time.Millisecond {
		t.Errorf("jitter %v", st.Jitter)
	}
	close(digitCh)
	var digits []rune
	for d := range digitCh {
		digits = append(digits, d)
	}
	if string(digits) != "7" || st.DTMFReceived != "7" {
		t.Errorf("digits %q / %q, want one 7", string(digits), st.DTMFReceived)
	}
	// Peer holds: we answer recvonly and send nothing.
	s.configure(&mediaOffer{Addr: netip.MustParseAddrPort(peer.LocalAddr().String()), Codec: sipCodecs["pcmu"], DTMFPT: 101, Direction: SendOnly}, RecvOnly)
	sent := s.snapshot().PacketsSent
	_ = s.writePayload(make([]byte, 160), 160)
	if s.snapshot().PacketsSent != sent {
		t.Error("sent RTP while on hold")
	}
}

// RFC 4733 digits go out as event packets paced by the audio clock, with the
// end packet three times, then audio resumes.
func TestSendDTMF(t *testing.T) {
	peer := rtpPeer(t)
	s := testSession(t, netip.MustParseAddrPort(peer.LocalAddr().String()), SendRecv)
	if err := s.sendDTMF("9"); err != nil {
		t.Fatal(err)
	}
	if err := s.sendDTMF("x"); err == nil {
		t.Fatal("accepted a non-digit")
	}
	payload := make([]byte, 160)
	var events, ends, audioPkts int
	buf := make([]byte, 1500)
	for i := 0; i < 14; i++ {
		_ = s.writePayload(payload, 160)
		_ = peer.SetReadDeadline(time.Now().Add(time.Second))
		n, err := peer.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		var p rtp.Packet
		_ = p.Unmarshal(buf[:n])
		switch p.PayloadType {
		case 101:
			ev, _ := audio.ParseDTMFEvent(p.Payload)
			if ev.Event != 9 {
				t.Fatalf("event %d", ev.Event)
			}
			events++
			if ev.End {
				ends++
			}
		case 0:
			audioPkts++
		}
	}
	if ends != 3 || events < 10 || audioPkts == 0 {
		t.Fatalf("events %d (ends %d), audio %d", events, ends, audioPkts)
	}
}

// On an Opus call (48 kHz RTP clock) a digit lasts 200 ms in the event
// clock the peer chose: 1600 units at 8 kHz, 9600 at 48 kHz; the event keeps
// the audio's timestamp.
func TestSendDTMFOnOpus(t *testing.T) {
	for _, rate := range []int{8000, 48000} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			peer := rtpPeer(t)
			s := testSession(t, netip.MustParseAddrPort(peer.LocalAddr().String()), SendRecv)
			s.configure(&mediaOffer{Addr: netip.MustParseAddrPort(peer.LocalAddr().String()), Codec: sipCodecs["opus"], PT: 116,
				DTMFPT: 101, DTMFRate: rate, Direction: SendRecv}, SendRecv)
			if err := s.sendDTMF("4"); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			var last audio.DTMFEvent
			var ts []uint32
			for i := 0; i < 14; i++ {
				_ = s.writePayload([]byte{0xf8}, 960)
				_ = peer.SetReadDeadline(time.Now().Add(time.Second))
				n, err := peer.Read(buf)
				if err != nil {
					t.Fatal(err)
				}
				var p rtp.Packet
				_ = p.Unmarshal(buf[:n])
				if p.PayloadType == 101 {
					last, _ = audio.ParseDTMFEvent(p.Payload)
					ts = append(ts, p.Timestamp)
				}
			}
			if !last.End || int(last.Duration) != rate/5 {
				t.Fatalf("last event %+v, want an end with duration %d", last, rate/5)
			}
			if ts[0] != ts[len(ts)-1] {
				t.Fatalf("event timestamps changed: %v", ts)
			}
		})
	}
}

func TestPacketQueueDropsOldest(t *testing.T) {
	q := newPacketQueue()
	for i := 0; i < 20; i++ {
		q.HandlePacket(&audio.Packet{Seq: uint16(i), Payload: []byte{byte(i)}})
	}
	var p audio.Packet
	if !q.pop(&p) || p.Seq != 4 || p.Payload[0] != 4 || q.droppedCount() != 4 {
		t.Fatalf("oldest kept %+v, dropped %d", p, q.droppedCount())
	}
}

func BenchmarkRTPWriteFrame(b *testing.B) {
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	s, err := newRTPSession(quietLogger(), newPortPool(38000, 38999), netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	s.configure(&mediaOffer{Addr: netip.MustParseAddrPort(peer.LocalAddr().String()), Codec: sipCodecs["pcmu"], Direction: SendRecv}, SendRecv)
	payload := make([]byte, 160)
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := peer.Read(buf); err != nil {
				return
			}
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.writePayload(payload, 160); err != nil {
			b.Fatal(err)
		}
	}
}

// The receive path from a parsed packet to the leg's packet handler (the
// bridge's jitter buffer in a room; here a queue that copies it).
func BenchmarkRTPReceive(b *testing.B) {
	s, err := newRTPSession(quietLogger(), newPortPool(39000, 39999), netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	src := netip.MustParseAddrPort("127.0.0.1:40000")
	s.configure(&mediaOffer{Addr: src, Codec: sipCodecs["pcmu"], Direction: SendRecv}, SendRecv)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: make([]byte, 160)}
	out := audio.Packet{Payload: make([]byte, 0, 512)}
	q := newPacketQueue()
	s.setHandler(q)
	b.ReportAllocs()
	for b.Loop() {
		pkt.SequenceNumber++
		pkt.Timestamp += 160
		s.handleRTP(&pkt, src, 172)
		q.pop(&out)
	}
}

// A SIP leg's media path allocates nothing per packet: a packet read from
// the socket, parsed and handed to the leg's handler; a frame packetized
// and sent.
func TestRTPPacketAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector (make test runs this test again without it)")
	}
	peer := rtpPeer(t)
	s := testSession(t, netip.MustParseAddrPort(peer.LocalAddr().String()), SendRecv)
	got := make(chan struct{}, 1)
	s.setHandler(audio.PacketHandlerFunc(func(*audio.Packet) { got <- struct{}{} }))
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: make([]byte, 160)}
	buf := make([]byte, 1500)
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.port}
	recv := testing.AllocsPerRun(500, func() {
		pkt.SequenceNumber++
		pkt.Timestamp += 160
		n, _ := pkt.MarshalTo(buf)
		if _, err := peer.WriteToUDP(buf[:n], to); err != nil {
			t.Fatal(err)
		}
		<-got
	})
	payload := make([]byte, 160)
	send := testing.AllocsPerRun(500, func() {
		if err := s.writePayload(payload, 160); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Read(buf); err != nil {
			t.Fatal(err)
		}
	})
	if recv != 0 || send != 0 {
		t.Fatalf("%v allocations per packet received, %v per packet sent; want 0", recv, send)
	}
}

// A long DTX gap written while a digit waits is a gap, and the digit starts
// at its end with the duration of one frame, not of the whole gap.
func TestDTMFAfterDTXGap(t *testing.T) {
	peer := rtpPeer(t)
	s := testSession(t, netip.MustParseAddrPort(peer.LocalAddr().String()), SendRecv)
	s.mu.Lock()
	ts0 := s.ts
	s.mu.Unlock()
	if err := s.sendDTMF("5"); err != nil {
		t.Fatal(err)
	}
	if err := s.writePayload(nil, 19*160); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = peer.SetReadDeadline(time.Now().Add(time.Second))
	n, err := peer.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var p rtp.Packet
	_ = p.Unmarshal(buf[:n])
	ev, err := audio.ParseDTMFEvent(p.Payload)
	if err != nil || p.PayloadType != 101 || !p.Marker {
		t.Fatalf("first packet after the gap: pt %d marker %v %v", p.PayloadType, p.Marker, err)
	}
	if ev.Duration != 160 || ev.End || p.Timestamp != ts0+18*160 {
		t.Fatalf("digit after a 19-frame gap: duration %d end %v at %d, want 160, not ended, at %d", ev.Duration, ev.End, p.Timestamp-ts0, 18*160)
	}
}
