package webclient

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/voxgate/voxgate/audio"
)

// legPair is a voxgate-side Call connected over loopback to a pion peer
// standing in for the browser.
//
// The browser's peer is built not to allocate per packet (no interceptors, one
// reused packet, a reused read buffer), so that what the benchmarks and the
// allocation test count is voxgate's side. Like a browser, it puts the
// transport-wide sequence number (negotiated by voxgate for TWCC) in every
// packet it sends.
type legPair struct {
	call   *Call
	client *webrtc.PeerConnection
	ctrack *webrtc.TrackLocalStaticRTP
	pkt    rtp.Packet // the browser's next packet
	twccID uint8      // the transport-cc header extension's id (0: not negotiated)
	twcc   [2]byte
	got    chan struct{} // a packet reached the leg's handler
	recv   chan struct{} // the browser received a packet
	timer  *time.Timer   // reused: time.After allocates
	// capture, when set, gets a copy of each packet the browser receives.
	capture atomic.Pointer[chan []byte]
	close   func()
}

// pairedCall connects a pion client to a voxgate-side Call over loopback
// and returns both once media flows both ways.
func pairedCall(tb testing.TB, api *webrtc.API) *legPair {
	m := &webrtc.MediaEngine{}
	_ = m.RegisterDefaultCodecs()
	_ = m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, webrtc.RTPCodecTypeAudio)
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	// At benchmark rates voxgate's TWCC feedback (every 100 ms) covers
	// thousands of packets and outgrows the default receive MTU.
	se.SetReceiveMTU(16384)
	capi := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	client, err := capi.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	ctrack, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "c")
	csender, err := client.AddTrack(ctrack)
	if err != nil {
		tb.Fatal(err)
	}
	server, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := newLeg(server, "bench", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	c.send = func(Message) {}
	p := &legPair{call: c, client: client, ctrack: ctrack, got: make(chan struct{}, 1), recv: make(chan struct{}, 1),
		timer: time.NewTimer(time.Hour),
		close: func() { client.Close(); c.end("done") }}
	p.pkt = rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: 7}, Payload: make([]byte, 80)}
	client.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		go func() { // drain what voxgate sends to the browser
			buf := make([]byte, 1500)
			for {
				n, _, err := t.Read(buf)
				if err != nil {
					return
				}
				if c := p.capture.Load(); c != nil {
					*c <- append([]byte(nil), buf[:n]...)
				}
				select {
				case p.recv <- struct{}{}:
				default:
				}
			}
		}()
	})
	// Whole descriptions, candidates included: a trickled candidate that
	// arrives before its peer has the remote description is dropped.
	offer, _ := client.CreateOffer(nil)
	gathered := webrtc.GatheringCompletePromise(client)
	_ = client.SetLocalDescription(offer)
	<-gathered
	_ = server.SetRemoteDescription(*client.LocalDescription())
	answer, _ := server.CreateAnswer(nil)
	gathered = webrtc.GatheringCompletePromise(server)
	_ = server.SetLocalDescription(answer)
	<-gathered
	if err := client.SetRemoteDescription(*server.LocalDescription()); err != nil {
		p.close()
		tb.Fatal(err)
	}
	for _, e := range csender.GetParameters().HeaderExtensions {
		if e.URI == sdp.TransportCCURI {
			p.twccID = uint8(e.ID)
		}
	}
	if p.twccID == 0 {
		p.close()
		tb.Fatal("transport-cc not negotiated")
	}
	c.SetPacketHandler(audio.PacketHandlerFunc(func(*audio.Packet) {
		select {
		case p.got <- struct{}{}:
		default:
		}
	}))
	// Either side's SRTP may start a moment after the PeerConnection says
	// connected (packets written before are dropped): send until a packet
	// arrives each way.
	deadline := time.Now().Add(10 * time.Second)
	for in, out := false, false; !in || !out; {
		if time.Now().After(deadline) {
			p.close()
			tb.Fatalf("no media: browser to voxgate %v, voxgate to browser %v", in, out)
		}
		if !in {
			_ = p.send()
		}
		if !out {
			_ = c.WritePayload(p.pkt.Payload, 960)
		}
		select {
		case <-p.got:
			in = true
		case <-p.recv:
			out = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	return p
}

// send writes the browser's next packet.
func (p *legPair) send() error {
	p.pkt.SequenceNumber++
	p.pkt.Timestamp += 960
	binary.BigEndian.PutUint16(p.twcc[:], p.pkt.SequenceNumber)
	if err := p.pkt.Header.SetExtension(p.twccID, p.twcc[:]); err != nil {
		return err
	}
	return p.ctrack.WriteRTP(&p.pkt)
}

// ingress sends one packet from the browser and waits for it at the leg's
// handler.
func (p *legPair) ingress(tb testing.TB) {
	if err := p.send(); err != nil {
		tb.Fatal(err)
	}
	p.timer.Reset(5 * time.Second)
	select {
	case <-p.got:
		p.timer.Stop()
	case <-p.timer.C:
		tb.Fatal("packet lost between the browser and the leg")
	}
}

func benchAPI(tb testing.TB, ports string) *webrtc.API {
	cfg := Config{LoopbackICE: true, UDPPorts: ports}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	api, err := newAPI(&cfg, nil, slog.New(slog.DiscardHandler), false)
	if err != nil {
		tb.Fatal(err)
	}
	return api
}

// One PeerConnection set-up (ICE and DTLS over loopback), both peers' CPU.
func BenchmarkPeerConnectionSetup(b *testing.B) {
	api := benchAPI(b, "42000-42999")
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ReportAllocs()
	c0 := cpu()
	for b.Loop() {
		pairedCall(b, api).close()
	}
	// Wall time includes ICE's pacing timers; CPU is the cost.
	b.ReportMetric(float64((cpu()-c0).Microseconds())/float64(b.N)/2, "us-cpu/side")
}

// One RTP packet from the browser through pion to the leg's packet handler, and
// one frame from the leg through pion to the browser (WritePayload). The
// browser's peer does not allocate: allocs/op are voxgate's side.
func BenchmarkPacketThroughLeg(b *testing.B) {
	p := pairedCall(b, benchAPI(b, "43000-43999"))
	defer p.close()
	payload := make([]byte, 80)
	b.ReportAllocs()
	for b.Loop() {
		p.ingress(b)
		if err := p.call.WritePayload(payload, 960); err != nil {
			b.Fatal(err)
		}
	}
}

// Ingress alone: one packet from the browser to the leg's handler (SRTP
// decryption, the RTCP-report and TWCC interceptors, the track read, the
// RTP unmarshal and the handler), waited for.
func BenchmarkLegIngress(b *testing.B) {
	p := pairedCall(b, benchAPI(b, "43000-43999"))
	defer p.close()
	b.ReportAllocs()
	for b.Loop() {
		p.ingress(b)
	}
}

// Egress alone: WritePayload (RTP header, interceptors, SRTP, the UDP write).
func BenchmarkLegEgress(b *testing.B) {
	p := pairedCall(b, benchAPI(b, "43000-43999"))
	defer p.close()
	payload := make([]byte, 80)
	b.ReportAllocs()
	for b.Loop() {
		if err := p.call.WritePayload(payload, 960); err != nil {
			b.Fatal(err)
		}
	}
}
