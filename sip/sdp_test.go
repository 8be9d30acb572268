package sip

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxgate/voxgate/audio"
)

// sipCodecs are the registry's codecs by lower-case name, as the SIP side
// sees them.
var sipCodecs = func() map[string]codecInfo {
	m := map[string]codecInfo{}
	for _, c := range audio.Codecs() {
		m[strings.ToLower(c.Name)], _ = codecByName(c.Name)
	}
	return m
}()

var (
	bothCodecs = []codecInfo{sipCodecs["pcmu"], sipCodecs["pcma"]}
	allCodecs  = []codecInfo{sipCodecs["opus"], sipCodecs["g722"], sipCodecs["pcmu"], sipCodecs["pcma"]}
)

// Opus offers: the peer's dynamic payload type is kept, RFC 4733 events at
// 48 kHz are preferred to 8 kHz ones, and a static number is never taken
// for Opus.
func TestParseOfferOpus(t *testing.T) {
	base := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
	cases := []struct {
		name, sdp string
		accept    []codecInfo
		codec     string
		pt        uint8
		dtmf      uint8
		dtmfRate  int
	}{
		{"baresip", base + "m=audio 4000 RTP/AVP 116 0 8 101\r\na=rtpmap:116 opus/48000/2\r\na=fmtp:116 stereo=1;sprop-stereo=1\r\na=rtpmap:101 telephone-event/8000\r\n", allCodecs, "opus", 116, 101, 8000},
		{"events at 48 kHz preferred", base + "m=audio 4000 RTP/AVP 111 101 110\r\na=rtpmap:111 OPUS/48000/2\r\na=rtpmap:110 telephone-event/48000\r\na=rtpmap:101 telephone-event/8000\r\n", allCodecs, "opus", 111, 110, 48000},
		{"G.711 keeps 8 kHz events", base + "m=audio 4000 RTP/AVP 0 110 101\r\na=rtpmap:110 telephone-event/48000\r\na=rtpmap:101 telephone-event/8000\r\n", allCodecs, "PCMU", 0, 101, 8000},
		{"opus not configured", base + "m=audio 4000 RTP/AVP 111 8\r\na=rtpmap:111 opus/48000/2\r\n", bothCodecs, "PCMA", 8, 0, 0},
		{"G.722 by its static number", base + "m=audio 4000 RTP/AVP 9 0 101\r\na=rtpmap:101 telephone-event/8000\r\n", allCodecs, "G722", 9, 101, 8000},
		{"G.722 with rtpmap at 8000", base + "m=audio 4000 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\n", allCodecs, "G722", 9, 0, 0},
		{"G.722 not configured", base + "m=audio 4000 RTP/AVP 9 8\r\n", bothCodecs, "PCMA", 8, 0, 0},
		{"111 without rtpmap is not opus", base + "m=audio 4000 RTP/AVP 111 0\r\n", allCodecs, "PCMU", 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mo, err := parseOffer([]byte(tc.sdp), tc.accept)
			if err != nil {
				t.Fatal(err)
			}
			if mo.Codec.Name != tc.codec || mo.PT != tc.pt || mo.DTMFPT != tc.dtmf || mo.DTMFRate != tc.dtmfRate {
				t.Fatalf("got %s/%d events %d at %d", mo.Codec.Name, mo.PT, mo.DTMFPT, mo.DTMFRate)
			}
		})
	}
}

// Our answer to an Opus offer: the offer's payload types, opus/48000/2 with
// FEC asked for, events at the offered clock (golden file).
func TestAnswerOpusGolden(t *testing.T) {
	offer := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 116 0 8 110\r\na=rtpmap:116 opus/48000/2\r\na=rtpmap:110 telephone-event/48000\r\n"
	mo, err := parseOffer([]byte(offer), allCodecs)
	if err != nil {
		t.Fatal(err)
	}
	l := localMedia{IP: netip.MustParseAddr("192.0.2.10"), Port: 20000, SessID: 42, Version: 1,
		Codecs: []codecInfo{mo.Codec}, PTs: []uint8{mo.PT}, DTMFPT: mo.DTMFPT, DTMFRate: mo.DTMFRate, Ptime: 20, Direction: SendRecv}
	got := string(l.marshal(&mo))
	checkGolden(t, "answer-opus.sdp", got)
	back, err := parseOffer([]byte(got), allCodecs)
	if err != nil || back.Codec.Name != "opus" || back.PT != 116 || back.DTMFRate != 48000 {
		t.Fatalf("our answer parses as %+v, %v", back, err)
	}
}

func TestParseOffer(t *testing.T) {
	base := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
	cases := []struct {
		name  string
		sdp   string
		codec string
		dtmf  uint8
		dir   Direction
		addr  string
		err   error
	}{
		{"offerer order wins", base + "m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n", "PCMA", 101, SendRecv, "10.0.0.1:4000", nil},
		{"static types without rtpmap", base + "m=audio 4000 RTP/AVP 0\r\n", "PCMU", 0, SendRecv, "10.0.0.1:4000", nil},
		{"skips unknown codecs", base + "m=audio 4000 RTP/AVP 96 9 0\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:9 G722/8000\r\n", "PCMU", 0, SendRecv, "10.0.0.1:4000", nil},
		{"hold with sendonly", base + "m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n", "PCMU", 0, SendOnly, "10.0.0.1:4000", nil},
		{"hold with inactive", base + "m=audio 4000 RTP/AVP 0\r\na=inactive\r\n", "PCMU", 0, Inactive, "10.0.0.1:4000", nil},
		{"hold with 0.0.0.0", strings.Replace(base, "c=IN IP4 10.0.0.1", "c=IN IP4 0.0.0.0", 1) + "m=audio 4000 RTP/AVP 0\r\n", "PCMU", 0, SendOnly, "", nil},
		{"media-level connection", base + "m=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.9\r\n", "PCMU", 0, SendRecv, "10.0.0.9:4000", nil},
		{"video first, then audio", base + "m=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 0\r\n", "PCMU", 0, SendRecv, "10.0.0.1:4000", nil},
		{"no common codec", base + "m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n", "", 0, "", "", ErrNoCommonCodec},
		{"no audio", base + "m=video 5000 RTP/AVP 96\r\n", "", 0, "", "", ErrNoAudio},
		{"garbage", "hello", "", 0, "", "", ErrBadSDP},
		{"no connection line", "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "", 0, "", "", ErrBadSDP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mo, err := parseOffer([]byte(tc.sdp), bothCodecs)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mo.Codec.Name != tc.codec || mo.DTMFPT != tc.dtmf || mo.Direction != tc.dir {
				t.Fatalf("got %s dtmf=%d %s", mo.Codec.Name, mo.DTMFPT, mo.Direction)
			}
			want := netip.AddrPort{}
			if tc.addr != "" {
				want = netip.MustParseAddrPort(tc.addr)
			}
			if mo.Addr != want {
				t.Fatalf("addr %v, want %v", mo.Addr, want)
			}
		})
	}
}

// The answer to an offer with a video and an audio stream refuses the video
// with port 0, keeps the m-line order, and carries the direction reversed.
func TestAnswerGolden(t *testing.T) {
	offer := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n" +
		"m=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"
	mo, err := parseOffer([]byte(offer), bothCodecs)
	if err != nil {
		t.Fatal(err)
	}
	l := localMedia{IP: netip.MustParseAddr("192.0.2.10"), Port: 20000, SessID: 42, Version: 1,
		Codecs: []codecInfo{mo.Codec}, PTs: []uint8{mo.PT}, DTMFPT: mo.DTMFPT, Ptime: 20, Direction: mo.Direction.reverse()}
	got := string(l.marshal(&mo))
	checkGolden(t, "answer.sdp", got)
	if _, err := parseOffer([]byte(got), bothCodecs); err != nil {
		t.Fatalf("our answer does not parse: %v", err)
	}
}

func FuzzParseOffer(f *testing.F) {
	files, _ := filepath.Glob("testdata/sdp/*.sdp")
	captured, _ := filepath.Glob("../testdata/sdp/*.sdp") // from real clients
	for _, p := range append(files, captured...) {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(testOffer))
	f.Fuzz(func(t *testing.T, b []byte) {
		mo, err := parseOffer(b, allCodecs)
		if err != nil {
			return
		}
		if mo.Codec.Name == "" || mo.Index < 0 || mo.Index >= len(mo.MLines) {
			t.Fatalf("accepted offer without a codec or stream: %+v", mo)
		}
		l := localMedia{IP: netip.MustParseAddr("127.0.0.1"), Port: 20000, Codecs: []codecInfo{mo.Codec}, PTs: []uint8{mo.PT}, DTMFPT: mo.DTMFPT, DTMFRate: mo.DTMFRate, Ptime: mo.Ptime, Direction: mo.Direction.reverse()}
		if _, err := parseOffer(l.marshal(&mo), allCodecs); err != nil {
			t.Fatalf("our answer to an accepted offer does not parse: %v", err)
		}
	})
}

// checkGolden compares got with testdata/name (UPDATE_GOLDEN=1 rewrites it).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		_ = os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("%s differs:\n%s", golden, got)
	}
}

// A peer that asks for DTX (usedtx=1 on the chosen codec) is sent gaps in
// silence; one that does not, or asks for it on another codec, is not.
func TestOfferDTXPreference(t *testing.T) {
	base := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 111 0\r\na=rtpmap:111 opus/48000/2\r\n"
	for _, c := range []struct {
		fmtp string
		want bool
	}{
		{"a=fmtp:111 minptime=10; useinbandfec=1; usedtx=1\r\n", true},
		{"a=fmtp:111 useinbandfec=1\r\n", false},
		{"a=fmtp:111 usedtx=0\r\n", false},
		{"a=fmtp:0 usedtx=1\r\n", false},
	} {
		mo, err := parseOffer([]byte(base+c.fmtp), allCodecs)
		if err != nil {
			t.Fatal(err)
		}
		if mo.DTX != c.want {
			t.Errorf("%q: DTX %v, want %v", c.fmtp, mo.DTX, c.want)
		}
	}
}
