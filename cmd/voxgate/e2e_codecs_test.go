package main

import (
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/sip"
)

// Desk phones that speak a wideband codec (baresip allowed only Opus, or
// only G.722) call the echo test: voxgate answers with that codec on the
// phone's payload type, the tone comes back through the decoder, jitter
// buffer and encoder (G.722 is voxgate's own; baresip's is spandsp's), and a
// digit the phone sends as RFC 4733 arrives.
func TestBaresipWidebandEcho(t *testing.T) {
	peertest.Need(t, "baresip")
	for _, c := range []struct{ baresip, voxgate string }{{"opus/48000/2", "opus"}, {"G722/16000/1", "G722"}} {
		t.Run(c.voxgate, func(t *testing.T) {
			g := startGateway(t, func(cfg *Config) { cfg.SIP.Codecs = []string{"opus", "g722", "pcmu", "pcma"} })
			const freq = 700
			b := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: c.baresip, Tone: freq, Dial: "9196"})
			time.Sleep(2 * time.Second)
			b.Command("sndcode", "5")
			time.Sleep(2 * time.Second)
			b.Command("hangup", "")
			if !b.WaitEnded(5 * time.Second) {
				t.Fatalf("no end of call:\n%s", b.Output())
			}
			b.Stop()
			if !strings.Contains(g.log.String(), "codec="+c.voxgate) {
				t.Fatalf("the call did not use %s:\n%s", c.voxgate, g.log.String())
			}
			w := b.Received()
			secs := audio.ToneSeconds(w.Samples, w.Rate, freq, 0.4)
			t.Logf("baresip received %.1f s at %d Hz, the tone clean (40%% of the energy) in %.1f s", float64(len(w.Samples))/float64(w.Rate), w.Rate, secs)
			if secs < 2.5 {
				t.Fatalf("the echo carried the tone cleanly for %.1f s", secs)
			}
			var st sip.Stats
			deadline := time.Now().Add(3 * time.Second)
			for ok := false; !ok && time.Now().Before(deadline); {
				st, ok = g.router.lastStats()
				time.Sleep(50 * time.Millisecond)
			}
			if st.DTMFReceived != "5" {
				t.Fatalf("voxgate received digits %q, want \"5\"", st.DTMFReceived)
			}
		})
	}
}
