package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/sip"
)

// The tones of the early media journeys: the carrier's early media, its
// answered audio, and what the US ringback carries (440+480 Hz).
const (
	earlyHz    = 1000
	answerHz   = 600
	ringbackHz = 480
)

// earlyPlan sends 00... through the trunk with a national caller ID, which
// the trunk's rules write in E.164 (+4930123456) with P-Asserted-Identity.
const earlyPlan = `
contexts:
  internal:
    allow_trunks: true
    rules:
      - prefix: "00"
        dial: {trunk: carrier, number: "$1", caller_id: "030123456", timeout: 30}
origins:
  user: internal
  web: internal
`

// earlyTrunk is the trunk to the sipp carrier at port, with caller-ID rules.
func earlyTrunk(port int) []sip.TrunkConfig {
	f, never := false, time.Duration(0) // no qualify: sipp's scenario takes the INVITE only
	return []sip.TrunkConfig{{Name: "carrier", Registrar: fmt.Sprintf("sip:127.0.0.1:%d", port), Register: &f, Qualify: &never,
		CallerID: sip.CallerIDConfig{CountryCode: "49", PAI: true}}}
}

// sippCarrier runs the carrier-early-media.xml scenario as a UAS on a free
// port; wait returns sipp's output once it has finished (an error when the
// scenario failed, such as a caller ID it did not expect).
func sippCarrier(t *testing.T) (port int, wait func() (string, error)) {
	t.Helper()
	peertest.Need(t, "sipp")
	scenario, err := filepath.Abs("testdata/sipp/carrier-early-media.xml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	muLawTone(t, filepath.Join(dir, "early.wav"), earlyHz, 3)
	muLawTone(t, filepath.Join(dir, "answer.wav"), answerHz, 20)
	port = peertest.FreePorts(t, 1)
	media := peertest.FreePorts(t, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	done := sippInBackground(ctx, dir, "-sf", scenario, "-m", "1", "-nostdin", "-timeout", "50s", "-timeout_error",
		"-p", fmt.Sprint(port), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", fmt.Sprint(media), "-trace_err")
	t.Cleanup(cancel)
	var once *sippRun
	return port, func() (string, error) {
		if once == nil {
			r := <-done
			once = &r
		}
		return once.out, once.err
	}
}

// muLawTone writes an 8 kHz mu-law WAV of a tone (what sipp's rtp_stream
// plays as PCMU).
func muLawTone(t *testing.T, path string, freq float64, seconds float64) {
	t.Helper()
	pcm := make([]int16, int(8000*seconds))
	(&audio.Tone{Rate: 8000, Freq: freq, Level: 0.5}).Fill(pcm)
	data := audio.EncodeUlaw(nil, pcm)
	h := make([]byte, 44)
	copy(h, "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+len(data)))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 7) // mu-law
	binary.LittleEndian.PutUint16(h[22:], 1)
	binary.LittleEndian.PutUint32(h[24:], 8000)
	binary.LittleEndian.PutUint32(h[28:], 8000)
	binary.LittleEndian.PutUint16(h[32:], 1)
	binary.LittleEndian.PutUint16(h[34:], 8)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(len(data)))
	if err := os.WriteFile(path, append(h, data...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// toneSpans returns, for a tone, the seconds it is heard in pcm and when
// (seconds from the start) it is first and last heard (-1 when never).
func toneSpans(pcm []int16, rate int, freq float64) (secs, first, last float64) {
	win := audio.SamplesPer(rate, audio.DefaultPtime)
	first, last = -1, -1
	for off := 0; off+win <= len(pcm); off += win {
		w := pcm[off : off+win]
		e := audio.Energy(w)
		if e < 1e-5 || audio.Goertzel(w, rate, freq) < 0.2*e {
			continue
		}
		at := float64(off) / float64(rate)
		if first < 0 {
			first = at
		}
		last = at
		secs += audio.DefaultPtime.Seconds()
	}
	return secs, first, last
}

// The carrier's early media reaches a desk phone before the answer: baresip
// dials out through the trunk; the carrier (sipp) checks the caller ID it
// gets (From and P-Asserted-Identity normalised to +4930123456), rings for
// 3 s, sends 183 with SDP and a 3 s tone, then answers with another tone.
// What baresip recorded holds the early tone, then the answer's, about 3 s
// (the carrier's answer delay after its 183) apart. With ringback
// "generate" for phones, the 3 s of ringing before the 183 carry voxgate's
// ringback tone; by default the phone gets only 180 and voxgate sends no
// tone.
func TestEarlyMediaFromCarrierToPhone(t *testing.T) {
	peertest.Need(t, "baresip", "sipp")
	for _, mode := range []string{"ringing", "generate"} {
		t.Run(mode, func(t *testing.T) {
			port, wait := sippCarrier(t)
			g := startGateway(t, func(cfg *Config) {
				cfg.Dialplan = writePlan(t, earlyPlan)
				cfg.SIP.Trunks = earlyTrunk(port)
				cfg.Ringback.Phones = mode
				if err := cfg.Ringback.Validate(); err != nil {
					t.Fatal(err)
				}
			})
			alice := peertest.StartBaresip(t, peertest.BaresipOptions{Account: "<sip:alice@" + g.addr + ">;auth_pass=alice-secret;regint=0;audio_codecs=pcmu",
				Dial: "sip:00301234@" + g.addr})
			if !alice.WaitFor("Call established", 20*time.Second) {
				out, err := wait()
				t.Fatalf("the call was not answered:\n%s\nsipp: %v\n%s", alice.Output(), err, tail(out, 20))
			}
			established := time.Now()
			// Record the answered audio for a while, then hang up.
			for time.Since(established) < 3*time.Second {
				time.Sleep(100 * time.Millisecond)
			}
			alice.Command("hangup", "")
			if out, err := wait(); err != nil || !strings.Contains(out, "Successful call") {
				t.Fatalf("the carrier's scenario failed (caller ID not as expected?): %v\n%s", err, tail(out, 25))
			}
			alice.WaitEnded(5 * time.Second)
			alice.Stop()
			w := alice.Received()
			eSecs, eFirst, eLast := toneSpans(w.Samples, w.Rate, earlyHz)
			aSecs, aFirst, _ := toneSpans(w.Samples, w.Rate, answerHz)
			rSecs, rFirst, _ := toneSpans(w.Samples, w.Rate, ringbackHz)
			t.Logf("baresip heard: early %.0f Hz %.1f s (%.2f..%.2f s), answer %.0f Hz %.1f s (from %.2f s), ringback %.0f Hz %.1f s (from %.2f s)",
				float64(earlyHz), eSecs, eFirst, eLast, float64(answerHz), aSecs, aFirst, float64(ringbackHz), rSecs, rFirst)
			if eSecs < 2 {
				t.Errorf("the carrier's early media was heard for %.1f s of 3", eSecs)
			}
			if aSecs < 1.5 {
				t.Errorf("the answered call was heard for %.1f s", aSecs)
			}
			if eFirst < 0 || aFirst < 0 || aFirst-eFirst < 2 {
				t.Errorf("the early tone (from %.2f s) does not come well before the answer (from %.2f s): the carrier answers 3 s after its 183", eFirst, aFirst)
			}
			switch mode {
			case "generate":
				if rSecs < 0.8 || rFirst < 0 || rFirst > eFirst {
					t.Errorf("voxgate's ringback heard for %.1f s from %.2f s, want about 2 s (3 s of ringing, 440+480 Hz on for the first 2 s) before the early media at %.2f s", rSecs, rFirst, eFirst)
				}
				if !strings.Contains(g.log.String(), "early media to the caller (183 Session Progress)") {
					t.Errorf("no 183 to the caller in the log")
				}
			default:
				if rSecs > 0.2 {
					t.Errorf("voxgate sent a ringback tone (%.1f s) to a phone though phones play their own", rSecs)
				}
			}
			if !strings.Contains(g.log.String(), "early media passed on to the caller") {
				t.Errorf("the log does not say the early media was passed on")
			}
		})
	}
}

// A browser calls a number through the trunk: while the carrier rings (180
// without SDP) the page hears voxgate's ringback (US: 440+480 Hz), then the
// carrier's early media (its 183's tone), then the answered call; the
// carrier checks the caller ID as above.
func TestBrowserHearsRingbackThenEarlyMedia(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "sipp")
	port, wait := sippCarrier(t)
	ns := peertest.NewNetns(t)
	base, uploads, _ := browserGatewayWithSIP(t, ns, true, func(cfg *Config) {
		cfg.Dialplan = writePlan(t, earlyPlan)
		cfg.SIP.Trunks = earlyTrunk(port)
		// A tone that is on most of the time: the page starts recording
		// once its media is up, which on a busy machine takes a while of
		// the carrier's 3 s of ringing.
		cfg.Ringback.Tone = "440+480/1000,0/200"
		if err := cfg.Ringback.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	chromium(t, ns, base, base+"/test/call.html?user=alice&password=alice-secret&dial=00301234&secs=8", toneFile(t, 48000, 300))
	_, w := recording(t, uploads)
	if out, err := wait(); err != nil || !strings.Contains(out, "Successful call") {
		t.Fatalf("the carrier's scenario failed (caller ID not as expected?): %v\n%s", err, tail(out, 25))
	}
	rSecs, rFirst, rLast := toneSpans(w.Samples, w.Rate, ringbackHz)
	eSecs, eFirst, eLast := toneSpans(w.Samples, w.Rate, earlyHz)
	aSecs, aFirst, _ := toneSpans(w.Samples, w.Rate, answerHz)
	t.Logf("the page heard: ringback %.0f Hz %.1f s (%.2f..%.2f s), early %.0f Hz %.1f s (%.2f..%.2f s), answer %.0f Hz %.1f s (from %.2f s)",
		float64(ringbackHz), rSecs, rFirst, rLast, float64(earlyHz), eSecs, eFirst, eLast, float64(answerHz), aSecs, aFirst)
	if rSecs < 0.5 || rFirst < 0 || (eFirst >= 0 && rLast > eFirst) {
		t.Errorf("ringback heard for %.1f s (%.2f..%.2f s): want it while the carrier rings, before its early media (from %.2f s)", rSecs, rFirst, rLast, eFirst)
	}
	if eSecs < 2 || aSecs < 1 || aFirst-eFirst < 2 {
		t.Errorf("early media %.1f s from %.2f s, answer %.1f s from %.2f s: want about 3 s of early media before the answer", eSecs, eFirst, aSecs, aFirst)
	}
}
