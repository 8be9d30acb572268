package sip

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// Comfort noise (RFC 3389) is taken with G.711 only, under its offered
// payload type (static 13, or a dynamic one named CN/8000), and the
// answer carries it back.
func TestComfortNoiseNegotiation(t *testing.T) {
	base := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
	opus, _ := codecByName("opus")
	g722, _ := codecByName("g722")
	accept := append([]codecInfo{opus, g722}, bothCodecs...)
	for _, c := range []struct {
		name, sdp string
		cn        uint8
	}{
		{"static 13", base + "m=audio 4000 RTP/AVP 0 13 101\r\na=rtpmap:101 telephone-event/8000\r\n", 13},
		{"static 13 named", base + "m=audio 4000 RTP/AVP 8 13\r\na=rtpmap:13 CN/8000\r\n", 13},
		{"dynamic", base + "m=audio 4000 RTP/AVP 0 118\r\na=rtpmap:118 CN/8000\r\n", 118},
		{"CN listed first", base + "m=audio 4000 RTP/AVP 13 0\r\n", 13},
		{"not offered", base + "m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n", 0},
		{"wideband CN only", base + "m=audio 4000 RTP/AVP 0 119\r\na=rtpmap:119 CN/16000\r\n", 0},
		{"G.722 takes no CN", base + "m=audio 4000 RTP/AVP 9 13\r\n", 0},
		{"opus has DTX, not CN", base + "m=audio 4000 RTP/AVP 111 13\r\na=rtpmap:111 opus/48000/2\r\n", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			mo, err := parseOffer([]byte(c.sdp), accept)
			if err != nil {
				t.Fatal(err)
			}
			if mo.CNPT != c.cn {
				t.Fatalf("CN payload type %d, want %d", mo.CNPT, c.cn)
			}
			l := localMedia{IP: netip.MustParseAddr("10.0.0.2"), Port: 5000, Codecs: []codecInfo{mo.Codec}, PTs: []uint8{mo.PT}, CNPT: mo.CNPT, Ptime: 20, Direction: SendRecv}
			ans := string(l.marshal(&mo))
			has := strings.Contains(ans, "CN/8000")
			if has != (c.cn != 0) {
				t.Fatalf("answer:\n%s", ans)
			}
			if c.cn != 0 && !strings.Contains(ans, fmt.Sprintf("a=rtpmap:%d CN/8000\r\n", c.cn)) {
				t.Fatalf("answer without CN's rtpmap:\n%s", ans)
			}
		})
	}
	// Off in the configuration: neither taken nor offered.
	off := false
	s := &Server{cfg: Config{ComfortNoise: &off}}
	if mo, _ := s.negotiate([]byte(base+"m=audio 4000 RTP/AVP 0 13\r\n"), bothCodecs); mo.CNPT != 0 {
		t.Error("comfort noise taken with comfort_noise: false")
	}
	if s.offerCN(bothCodecs) != 0 {
		t.Error("comfort noise offered with comfort_noise: false")
	}
	on := &Server{}
	if on.offerCN(bothCodecs) != cnPT || on.offerCN([]codecInfo{opus, g722}) != 0 {
		t.Error("comfort noise offered wrongly by default (want it with G.711, not with Opus and G.722 alone)")
	}
}

// A peer that took comfort noise gets, in silence, a SID packet (payload
// type 13, one byte: the noise level) when the silence starts, again when
// its level moves by 3 dB or more, else every 5 s, and nothing between;
// speech goes as G.711 again at once, its first packet marked as a
// talkspurt's start.
func TestComfortNoiseSending(t *testing.T) {
	peer := rtpPeer(t)
	s := testSession(t, netip.MustParseAddrPort(peer.LocalAddr().String()), SendRecv)
	mo := mediaOffer{Addr: netip.MustParseAddrPort(peer.LocalAddr().String()), Codec: sipCodecs["pcmu"], PT: 0, DTMFPT: 101, CNPT: 13, Ptime: 20, Direction: SendRecv}
	s.configure(&mo, SendRecv)
	silence := make([]byte, 160)
	for i := range silence {
		silence[i] = 0xFF // mu-law zero
	}
	quiet := make([]byte, 160)
	for i := range quiet {
		quiet[i] = 0xFE // the smallest step: still below -48 dBFS
	}
	loud := make([]byte, 160)
	for i := range loud {
		loud[i] = 0x20
	}
	louder := make([]byte, 160) // noise 3 dB or more above quiet's, still below -48 dBFS
	for i := range louder {
		louder[i] = 0xFC
	}
	// 5.2 s of silence, 100 ms of speech, 0.5 s of near silence, 0.2 s of
	// louder noise.
	var frames [][]byte
	for range 260 {
		frames = append(frames, silence)
	}
	for range 5 {
		frames = append(frames, loud)
	}
	for range 25 {
		frames = append(frames, quiet)
	}
	for range 10 {
		frames = append(frames, louder)
	}
	for _, f := range frames {
		if err := s.writePayload(f, 160); err != nil {
			t.Fatal(err)
		}
	}
	var got []rtp.Packet
	buf := make([]byte, 1500)
	for {
		_ = peer.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := peer.Read(buf)
		if err != nil {
			break
		}
		var p rtp.Packet
		if err := p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	// Silence: SIDs at frames 0 and 250 (5 s on); speech: 5 PCMU; near
	// silence: a SID at frame 265; louder noise: one at frame 290.
	var kinds []string
	for _, p := range got {
		switch {
		case p.PayloadType == 13 && len(p.Payload) == 1:
			kinds = append(kinds, "sid")
		case p.PayloadType == 0 && len(p.Payload) == 160:
			kinds = append(kinds, "pcmu")
		default:
			t.Fatalf("packet pt %d, %d bytes", p.PayloadType, len(p.Payload))
		}
	}
	want := "sid sid pcmu pcmu pcmu pcmu pcmu sid sid"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("packets %v, want %s", kinds, want)
	}
	if got[0].Payload[0] != 127 {
		t.Errorf("digital silence's level %d, want 127 (-127 dBov)", got[0].Payload[0])
	}
	quietLevel, louderLevel := got[7].Payload[0], got[8].Payload[0]
	if quietLevel < 70 || quietLevel > 100 {
		t.Errorf("near silence's level %d -dBov, want 70-100", quietLevel)
	}
	if quietLevel-louderLevel < cnLevelStep {
		t.Errorf("louder noise's level %d -dBov against %d: not %d dB louder", louderLevel, quietLevel, cnLevelStep)
	}
	// RTP time runs on through the gaps: 250 frames (40000) between SIDs.
	if d := got[1].Timestamp - got[0].Timestamp; d != 40000 {
		t.Errorf("SIDs %d apart, want 40000", d)
	}
	if !got[2].Marker || got[3].Marker {
		t.Errorf("speech after comfort noise: marker %v then %v, want true then false", got[2].Marker, got[3].Marker)
	}
	if d := got[2].Timestamp - got[1].Timestamp; d != 1600 {
		t.Errorf("speech %d after the last SID (frame 250; speech at 260), want 1600", d)
	}
	if d := got[8].Timestamp - got[7].Timestamp; d != 25*160 {
		t.Errorf("louder noise's SID %d after near silence's, want %d", d, 25*160)
	}
	for i := 1; i < len(got); i++ {
		if got[i].SequenceNumber != got[i-1].SequenceNumber+1 {
			t.Fatalf("sequence numbers %d then %d: a gap sends nothing and takes no number", got[i-1].SequenceNumber, got[i].SequenceNumber)
		}
	}
}
