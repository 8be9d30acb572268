package webclient

import (
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/voxgate/voxgate/audio"
)

// pairedCall connects a pion client to a voxgate-side Call over loopback
// and returns both once media can flow.
func pairedCall(tb testing.TB, api *webrtc.API) (*Call, *webrtc.PeerConnection, *webrtc.TrackLocalStaticRTP, func()) {
	m := &webrtc.MediaEngine{}
	_ = m.RegisterDefaultCodecs()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	capi := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
	client, err := capi.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	ctrack, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "c")
	if _, err := client.AddTrack(ctrack); err != nil {
		tb.Fatal(err)
	}
	server, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	local, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "voxgate")
	if _, err := server.AddTrack(local); err != nil {
		tb.Fatal(err)
	}
	c := &Call{id: "bench", log: slog.New(slog.NewTextHandler(io.Discard, nil)), pc: server, local: local,
		done: make(chan struct{}), send: func(Message) {}}
	server.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { c.onTrack(t) })
	client.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil {
			_ = server.AddICECandidate(cand.ToJSON())
		}
	})
	server.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil {
			_ = client.AddICECandidate(cand.ToJSON())
		}
	})
	connected := make(chan struct{})
	server.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			close(connected)
		}
	})
	offer, _ := client.CreateOffer(nil)
	_ = client.SetLocalDescription(offer)
	_ = server.SetRemoteDescription(offer)
	answer, _ := server.CreateAnswer(nil)
	_ = server.SetLocalDescription(answer)
	_ = client.SetRemoteDescription(answer)
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		tb.Fatal("no connection")
	}
	return c, client, ctrack, func() { client.Close(); c.end("done") }
}

// One PeerConnection set-up (ICE and DTLS over loopback), both peers' CPU.
func BenchmarkPeerConnectionSetup(b *testing.B) {
	cfg := Config{LoopbackICE: true, UDPPorts: "42000-42999"}
	_ = cfg.Validate()
	api, err := newAPI(&cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ReportAllocs()
	c0 := cpu()
	for b.Loop() {
		_, _, _, closeAll := pairedCall(b, api)
		closeAll()
	}
	// Wall time includes ICE's pacing timers; CPU is the cost.
	b.ReportMetric(float64((cpu()-c0).Microseconds())/float64(b.N)/2, "us-cpu/side")
}

// One RTP packet from the browser through pion to the leg's packet handler, and
// one frame from the leg through pion to the browser (WritePayload).
func BenchmarkPacketThroughLeg(b *testing.B) {
	cfg := Config{LoopbackICE: true, UDPPorts: "43000-43999"}
	_ = cfg.Validate()
	api, _ := newAPI(&cfg, nil)
	c, client, ctrack, closeAll := pairedCall(b, api)
	defer closeAll()
	go func() { // drain what voxgate sends to the browser
		for _, r := range client.GetReceivers() {
			go func(r *webrtc.RTPReceiver) {
				buf := make([]byte, 1500)
				for {
					if _, _, err := r.Track().Read(buf); err != nil {
						return
					}
				}
			}(r)
		}
	}()
	payload := make([]byte, 80)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: 7}, Payload: payload}
	var p audio.Packet
	p.Payload = make([]byte, 0, 1500)
	got := make(chan struct{}, 1)
	c.SetPacketHandler(audio.PacketHandlerFunc(func(q *audio.Packet) {
		p.Payload = append(p.Payload[:0], q.Payload...)
		got <- struct{}{}
	}))
	b.ReportAllocs()
	for b.Loop() {
		pkt.SequenceNumber++
		pkt.Timestamp += 960
		if err := ctrack.WriteRTP(pkt); err != nil {
			b.Fatal(err)
		}
		<-got
		if err := c.WritePayload(p.Payload, 960); err != nil {
			b.Fatal(err)
		}
	}
}
