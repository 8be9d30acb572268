package webclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// browserPeer is a pion PeerConnection standing for a browser softphone:
// one Opus track each way, loopback ICE.
type browserPeer struct {
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	got   chan rtp.Packet
	// raw: the browser only signals recv for each packet it receives,
	// allocating nothing (for the allocation test), instead of sending it
	// on got.
	raw  atomic.Bool
	recv chan struct{}
}

func newBrowserPeer(t *testing.T) *browserPeer {
	t.Helper()
	m := &webrtc.MediaEngine{}
	_ = m.RegisterDefaultCodecs()
	// Chromium offers RFC 4733 events at Opus's clock, on payload type 110.
	_ = m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 48000}, PayloadType: 110}, webrtc.RTPCodecTypeAudio)
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	b := &browserPeer{pc: pc, got: make(chan rtp.Packet, 64), recv: make(chan struct{}, 1)}
	b.track, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "browser")
	if _, err := pc.AddTrack(b.track); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		go func() {
			buf := make([]byte, 1500)
			for {
				n, _, err := tr.Read(buf)
				if err != nil {
					return
				}
				if b.raw.Load() {
					select {
					case b.recv <- struct{}{}:
					default:
					}
					continue
				}
				var p rtp.Packet
				if p.Unmarshal(buf[:n]) != nil {
					continue
				}
				p.Payload = append([]byte(nil), p.Payload...)
				select {
				case b.got <- p:
				default:
				}
			}
		}()
	})
	return b
}

// gathered is d set as the local description once ICE gathering ended.
func (b *browserPeer) gathered(t *testing.T, d webrtc.SessionDescription) []byte {
	t.Helper()
	done := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(d); err != nil {
		t.Fatal(err)
	}
	<-done
	return []byte(b.pc.LocalDescription().SDP)
}

// relayCheck sends RTP both ways through p's relay: from the browser to
// the call's socket, and from the call's socket to the browser. It returns
// the relay's socket and the call's (closed when the test ends).
func relayCheck(t *testing.T, p *SIPPeer, b *browserPeer) (relay, call *net.UDPConn) {
	t.Helper()
	relay, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	call, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { call.Close() })
	p.Relay(relay, call.LocalAddr().(*net.UDPAddr).AddrPort())
	pt := p.OpusPT()
	// Browser to call: the packet arrives as it was sent (sequence and
	// timestamp kept).
	buf := make([]byte, 1500)
	var in rtp.Packet
	deadline := time.Now().Add(10 * time.Second)
	for seq := uint16(100); ; seq++ {
		if err := b.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte{0xAB, byte(seq)}}); err != nil {
			t.Fatal(err)
		}
		_ = call.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, src, err := call.ReadFromUDPAddrPort(buf)
		if err == nil {
			if src != relay.LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("the browser's RTP came from %v, not the relay", src)
			}
			if err := in.Unmarshal(buf[:n]); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no RTP from the browser reached the call's socket")
		}
	}
	if in.Payload[0] != 0xAB || in.Timestamp != uint32(in.SequenceNumber)*960 || in.PayloadType != pt {
		t.Errorf("relayed to the call: %+v, want the browser's packet with payload type %d", in.Header, pt)
	}
	// Call to browser: from the call's socket to the relay.
	out := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: 7, Timestamp: 4800, SSRC: 99}, Payload: []byte{0xCD, 1, 2}}
	raw, _ := out.Marshal()
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, err := call.WriteToUDPAddrPort(raw, relay.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-b.got:
			if !bytes.Equal(got.Payload, out.Payload) {
				t.Fatalf("the browser got payload %x, want %x", got.Payload, out.Payload)
			}
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no RTP from the call reached the browser")
			}
			continue
		}
		break
	}
	// An RFC 4733 event from the call reaches the browser with the
	// telephone-event payload type agreed (not stamped as Opus).
	ept := p.EventPT()
	if ept == 0 || ept == pt {
		t.Fatalf("telephone-event payload type %d agreed (Opus %d)", ept, pt)
	}
	ev := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: ept, SequenceNumber: 8, Timestamp: 4800, SSRC: 99, Marker: true}, Payload: []byte{5, 10, 0, 160}}
	raw, _ = ev.Marshal()
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, err := call.WriteToUDPAddrPort(raw, relay.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-b.got:
			if got.PayloadType == ept && bytes.Equal(got.Payload, ev.Payload) {
				return relay, call
			}
			if got.PayloadType != pt {
				t.Fatalf("the browser got payload type %d, want %d (event) or %d (Opus)", got.PayloadType, ept, pt)
			}
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no RFC 4733 event from the call reached the browser")
		}
	}
}

func sipMediaServer(t *testing.T) *SIPMedia {
	t.Helper()
	s, _ := testWeb(t)
	return s.SIPMedia()
}

// A browser's offer (JsSIP calling voxgate): SIPPeer answers with every
// candidate, ICE and DTLS come up, and RTP is relayed both ways.
func TestSIPMediaAnswersBrowser(t *testing.T) {
	m := sipMediaServer(t)
	p, err := m.NewMedia(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b := newBrowserPeer(t)
	offer, err := b.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := p.Answer(b.gathered(t, offer))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"UDP/TLS/RTP/SAVPF", "a=candidate:", "a=fingerprint:", "opus/48000/2", "a=rtcp-mux"} {
		if !bytes.Contains(answer, []byte(want)) {
			t.Errorf("the answer lacks %q:\n%s", want, answer)
		}
	}
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	relayCheck(t, p, b)
}

// voxgate's offer (a call to a JsSIP user): the browser answers, RTP is
// relayed both ways, and Close is idempotent and ends the relay.
func TestSIPMediaOffersToBrowser(t *testing.T) {
	m := sipMediaServer(t)
	p, err := m.NewMedia(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	offer, err := p.Offer()
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowserPeer(t)
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		t.Fatal(err)
	}
	answer, err := b.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Accept(b.gathered(t, answer)); err != nil {
		t.Fatal(err)
	}
	relayCheck(t, p, b)
	done := make(chan struct{})
	go func() { _ = p.Close(); _ = p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}

// The relay of a browser's SIP leg allocates nothing per packet either
// way: the browser's RTP from pion to the call's socket, and the call's
// RTP from its socket through pion to the browser. (The browser's side of
// the test allocates nothing: no interceptors, a reused packet and read
// buffer. pion allocates on its timers, a few objects per second, not per
// packet.)
func TestSIPMediaRelayAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector (make test runs this test again without it)")
	}
	m := sipMediaServer(t)
	p, err := m.NewMedia(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b := newBrowserPeer(t)
	offer, err := b.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := p.Answer(b.gathered(t, offer))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	relay, call := relayCheck(t, p, b)
	b.raw.Store(true)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: p.OpusPT(), SSRC: 5, SequenceNumber: 1000}, Payload: make([]byte, 80)}
	buf := make([]byte, 1500)
	_ = call.SetReadDeadline(time.Now().Add(time.Minute)) // a lost packet fails the test, not hangs it
	toCall := func() {
		pkt.SequenceNumber++
		pkt.Timestamp += 960
		if err := b.track.WriteRTP(&pkt); err != nil {
			t.Fatal(err)
		}
		if _, _, err := call.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: p.OpusPT(), SequenceNumber: 2000, SSRC: 99}, Payload: make([]byte, 80)}).Marshal()
	to := relay.LocalAddr().(*net.UDPAddr).AddrPort()
	timer := time.NewTimer(time.Hour)
	seq := uint16(2000)
	toBrowser := func() {
		seq++
		binary.BigEndian.PutUint16(raw[2:], seq)
		binary.BigEndian.PutUint32(raw[4:], uint32(seq)*960)
		if _, err := call.WriteToUDPAddrPort(raw, to); err != nil {
			t.Fatal(err)
		}
		timer.Reset(5 * time.Second)
		select {
		case <-b.recv:
			timer.Stop()
		case <-timer.C:
			t.Fatal("a packet from the call did not reach the browser")
		}
	}
	for range 50 { // warm up
		toCall()
		toBrowser()
	}
	if n := testing.AllocsPerRun(500, toCall); n != 0 {
		t.Errorf("browser to call: %v allocations per packet, want 0", n)
	}
	if n := testing.AllocsPerRun(500, toBrowser); n != 0 {
		t.Errorf("call to browser: %v allocations per packet, want 0", n)
	}
}
