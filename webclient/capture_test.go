package webclient

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// The offer a real headless Chromium makes for an audio-only call
// (../testdata/sdp/chromium-offer.sdp, see its README), dialled over the
// WebSocket as the page does, is answered by voxgate's PeerConnection with
// Opus/48000/2 on Chromium's payload type 111 and nothing else, in the
// offer's bundle and mid, sending and receiving, DTLS role active, in-band
// FEC asked for.
func TestChromiumOfferAnswered(t *testing.T) {
	offer, err := os.ReadFile("../testdata/sdp/chromium-offer.sdp")
	if err != nil {
		t.Fatal(err)
	}
	_, base := testWeb(t)
	c := newClient(t, base)
	c.expect("hello")
	c.send(Message{Type: "dial", ID: "c1", Number: "9196", SDP: string(offer)})
	ans := c.expect("answer")
	defer c.send(Message{Type: "hangup", ID: "c1"})

	var s sdp.SessionDescription
	if err := s.UnmarshalString(ans.SDP); err != nil {
		t.Fatalf("the answer does not parse: %v\n%s", err, ans.SDP)
	}
	if len(s.MediaDescriptions) != 1 {
		t.Fatalf("%d m-lines for Chromium's one:\n%s", len(s.MediaDescriptions), ans.SDP)
	}
	md := s.MediaDescriptions[0]
	if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 || !slices.Equal(md.MediaName.Formats, []string{"111"}) {
		t.Fatalf("audio stream %v, want port != 0 and payload type 111 alone:\n%s", md.MediaName, ans.SDP)
	}
	want := map[string]string{"rtpmap": "111 opus/48000/2", "mid": "0", "setup": "active", "sendrecv": ""}
	for k, v := range want {
		got, ok := md.Attribute(k)
		if !ok || !strings.EqualFold(got, v) {
			t.Errorf("a=%s is %q (present %v), want %q", k, got, ok, v)
		}
	}
	if f, _ := md.Attribute("fmtp"); !strings.HasPrefix(f, "111 ") || !strings.Contains(f, "useinbandfec=1") {
		t.Errorf("a=fmtp is %q, want in-band FEC asked of the browser on 111", f)
	}
	if g, _ := s.Attribute("group"); g != "BUNDLE 0" {
		t.Errorf("a=group is %q, want the offer's BUNDLE 0", g)
	}
	// Chromium also offered RED, G.722, PCMU, PCMA, CN and telephone-event:
	// the browser leg is Opus only, so none of them may be taken.
	for _, a := range md.Attributes {
		if a.Key == "rtpmap" && a.Value != "111 opus/48000/2" {
			t.Errorf("the answer maps another codec: a=rtpmap:%s", a.Value)
		}
	}
}
