package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

func TestBaresipRegisters(t *testing.T) {
	peertest.Need(t, "baresip")
	g := startGateway(t, nil)
	t.Run("right password", func(t *testing.T) {
		b := peertest.StartBaresip(t, peertest.BaresipOptions{
			Account: fmt.Sprintf("<sip:alice@%s>;auth_pass=alice-secret;regint=60", g.addr),
		})
		if !b.WaitFor("200 OK", 10*time.Second) || !b.WaitFor("[1 binding]", 2*time.Second) {
			t.Fatalf("baresip did not report a binding:\n%s", b.Output())
		}
		bs := g.srv.Bindings("alice")
		if len(bs) != 1 || !strings.HasPrefix(bs[0].Source, "127.0.0.1:") {
			t.Fatalf("bindings at voxgate: %+v", bs)
		}
		b.Stop() // baresip unregisters on exit
		deadline := time.Now().Add(5 * time.Second)
		for len(g.srv.Bindings("alice")) != 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := len(g.srv.Bindings("alice")); n != 0 {
			t.Fatalf("%d bindings left after baresip unregistered", n)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		b := peertest.StartBaresip(t, peertest.BaresipOptions{
			Account: fmt.Sprintf("<sip:bob@%s>;auth_pass=not-bobs;regint=60", g.addr),
		})
		// voxgate challenges the wrong answer again (401); baresip 1.0 then
		// resends the same password, which is refused for good (403).
		if !b.WaitFor("403 Forbidden", 10*time.Second) {
			t.Fatalf("baresip was not refused:\n%s", b.Output())
		}
		if n := strings.Count(g.log.String(), "authentication failed"); n != 2 {
			t.Fatalf("want 2 failed authentications (401, then 403), voxgate logged %d", n)
		}
		if strings.Contains(b.Output(), "binding]") {
			t.Fatalf("baresip reports a binding with a wrong password:\n%s", b.Output())
		}
		if n := len(g.srv.Bindings("bob")); n != 0 {
			t.Fatalf("%d bindings for a wrong password", n)
		}
	})
}

// seconds of pcm (in 20 ms windows, from..to seconds) that carry freq.
func toneIn(w *audio.WAV, freq float64, from, to float64) float64 {
	a, b := int(from*float64(w.Rate)), int(to*float64(w.Rate))
	a, b = max(0, min(a, len(w.Samples))), max(0, min(b, len(w.Samples)))
	return audio.ToneSeconds(w.Samples[a:b], w.Rate, freq, 0.2)
}

// The echo test through voxgate's own media path, with each G.711 law; hold
// and resume mid-call; malformed requests mid-call do not disturb it.
func TestBaresipEchoHoldResume(t *testing.T) {
	peertest.Need(t, "baresip")
	for _, codec := range []string{"pcmu", "pcma"} {
		t.Run(codec, func(t *testing.T) {
			g := startGateway(t, nil)
			const freq = 600
			b := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: codec, Tone: freq, Dial: "9196"})
			// What reaches baresip's RTP ports, captured on the wire: baresip
			// 1.0's own recording stops when hold restarts its player.
			capture := peertest.CaptureRTP(t, b.RTPMin, b.RTPMax)
			time.Sleep(3 * time.Second)
			sendGarbage(t, g.addr)
			b.Command("hold", "")
			tHold := time.Now()
			time.Sleep(3 * time.Second)
			b.Command("resume", "")
			tResume := time.Now()
			time.Sleep(4 * time.Second)
			b.Command("hangup", "")
			if !b.WaitEnded(5 * time.Second) {
				t.Fatalf("call did not end:\n%s", b.Output())
			}
			b.Stop()
			if !strings.Contains(g.log.String(), "remote_direction=sendonly") && !strings.Contains(g.log.String(), "remote_direction=inactive") {
				t.Fatalf("voxgate saw no hold re-INVITE")
			}
			// Before hold: baresip's own recording of what it decoded.
			w := b.Received()
			before := toneIn(w, freq, 0.5, 2.5)
			// During hold voxgate sends nothing; after resume the echo is back.
			held := capture.PacketsBetween(tHold.Add(500*time.Millisecond), tResume)
			after := capture.Between(tResume.Add(300*time.Millisecond), tResume.Add(3800*time.Millisecond))
			afterTone := audio.ToneSeconds(after, 8000, freq, 0.2)
			t.Logf("%s: tone before hold %.1fs (baresip recording), packets during hold %d, tone after resume %.1fs of %.1fs captured",
				codec, before, held, afterTone, float64(len(after))/8000)
			if before < 1.5 {
				t.Errorf("echo before hold: %.1fs of tone in 2s", before)
			}
			if held > 5 {
				t.Errorf("voxgate kept sending during hold: %d packets", held)
			}
			if afterTone < 2.5 {
				t.Errorf("echo after resume: %.1fs of tone in 3.5s; captured per payload type %v, baresip's RTP ports %d-%d",
					afterTone, capture.PayloadTypes(), b.RTPMin, b.RTPMax)
			}
			// RTCP both ways over the 10 s call (reports every 5 s).
			deadline := time.Now().Add(3 * time.Second)
			for g.router.ended() == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			st, _ := g.router.lastStats()
			t.Logf("voxgate stats: %+v", st)
			if st.RTCPSent == 0 || st.RTCPReceived == 0 {
				t.Errorf("RTCP sent %d, received %d", st.RTCPSent, st.RTCPReceived)
			}
			other := audio.ToneSeconds(after, 8000, 1000, 0.2)
			if other > 0.2 {
				t.Errorf("a tone nobody sent (1000 Hz) detected for %.1fs: the detector is not selective", other)
			}
		})
	}
}

// sendGarbage sends malformed requests and checks each gets a 4xx/5xx answer.
func sendGarbage(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	msgs := []struct {
		raw  string
		want string
	}{
		{"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKg1\r\nFrom <broken\r\nCall-ID: g1\r\nCSeq: 1 OPTIONS\r\n\r\n", "SIP/2.0 400"},
		{"BLAH sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKg2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x>\r\nCall-ID: g2\r\nCSeq: 1 BLAH\r\nContent-Length: 0\r\n\r\n", "SIP/2.0 501"},
		{"INVITE sip:9196@x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKg3\r\nFrom: <sip:g@b>;tag=1\r\nTo: <sip:9196@x>\r\nCall-ID: g3\r\nCSeq: 1 INVITE\r\nContact: <sip:g@127.0.0.1>\r\nRequire: magic\r\nContent-Length: 0\r\n\r\n", "SIP/2.0 420"},
	}
	buf := make([]byte, 4096)
	for _, m := range msgs {
		if _, err := fmt.Fprintf(c, m.raw, port); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("no answer to a malformed request (want %s)", m.want)
			}
			if strings.HasPrefix(string(buf[:n]), "SIP/2.0 1") {
				continue
			}
			if !strings.HasPrefix(string(buf[:n]), m.want) {
				t.Fatalf("got %q, want %s", strings.SplitN(string(buf[:n]), "\r\n", 2)[0], m.want)
			}
			break
		}
	}
}
