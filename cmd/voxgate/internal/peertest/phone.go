package peertest

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// Phone is a desk phone in a test: baresip with one account at voxgate.
type Phone struct {
	// User is the SIP user; without Password the phone calls as a guest
	// (no digest answer).
	User, Password string
	// Codec is baresip's audio_codecs ("": every codec it has).
	Codec string
	// Tone is the frequency it sends (0: silence), at 8 kHz for 60 s
	// (16 kHz with Wideband).
	Tone float64
	// ToneAfter keeps the phone silent this long into its call before its
	// tone starts (a caller who listens first, then talks; 0: at once).
	ToneAfter time.Duration
	// Pulse sends the tone in bursts (1.5 s on, 0.5 s off), so that voice
	// detection sees it talk all along (not with ToneAfter).
	Pulse bool
	// Wideband: baresip records and plays at 16 kHz (for G.722 or Opus),
	// so its tone may be above 4 kHz.
	Wideband bool
	// Register makes it register (regint=60) and wait for its binding.
	Register bool
	// Answer is its answermode when registered: "auto" (default) or "manual".
	Answer string
	// Dial is a number it calls at start; StartPhone waits until the call
	// is established.
	Dial string
	// MediaEnc is baresip's media encryption (SDES with its srtp module):
	// "srtp" (RTP/AVP with a=crypto, best effort) or "srtp-mand" (RTP/SAVP,
	// a plain offer is refused 488); "": plain RTP.
	MediaEnc string
	// Transport is the SIP transport it registers and calls over: "" or
	// "udp", "tcp" (;transport=tcp), or "tls" (;transport=tls, addr being
	// voxgate's TLS listener, trusting the CA in CAFile).
	Transport string
	CAFile    string
	// Netns runs the phone inside a network namespace (see BaresipOptions).
	Netns *Netns
}

// account is the phone's baresip accounts line at addr.
func (p Phone) account(addr string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<sip:%s@%s%s>", p.User, addr, p.uriParams())
	if p.Password != "" {
		fmt.Fprintf(&b, ";auth_pass=%s", p.Password)
	}
	if p.Register {
		b.WriteString(";regint=60;answermode=" + cmpOr(p.Answer, "auto"))
	} else {
		b.WriteString(";regint=0")
	}
	if p.Codec != "" {
		b.WriteString(";audio_codecs=" + p.Codec)
	}
	if p.MediaEnc != "" {
		b.WriteString(";mediaenc=" + p.MediaEnc)
	}
	return b.String()
}

// Account is the phone's baresip accounts line at addr, for StartBaresip.
func (p Phone) Account(addr string) string { return p.account(addr) }

// uriParams are the parameters of the URIs the phone uses.
func (p Phone) uriParams() string {
	if p.Transport == "" || p.Transport == "udp" {
		return ""
	}
	return ";transport=" + p.Transport
}

func cmpOr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// StartPhone starts p against the SIP server at addr (host:port) and waits
// until it is registered and its call (if it dials) is established; it
// fails the test with baresip's output if not within 10 s each.
func StartPhone(t testing.TB, addr string, p Phone) *Baresip {
	t.Helper()
	o := BaresipOptions{Account: p.account(addr), CAFile: p.CAFile, Netns: p.Netns}
	rate := 8000
	if p.Wideband {
		rate, o.Rate = 16000, 16000
	}
	if p.Tone > 0 {
		o.Source = filepath.Join(t.TempDir(), fmt.Sprintf("tone%.0f.wav", p.Tone))
		if p.ToneAfter > 0 {
			SilenceThenToneWAV(t, o.Source, rate, p.ToneAfter, p.Tone, 60)
		} else if p.Pulse {
			PulsedToneWAV(t, o.Source, rate, p.Tone, 60)
		} else {
			ToneWAV(t, o.Source, rate, p.Tone, 60)
		}
	}
	if p.Dial != "" {
		o.Dial = "sip:" + p.Dial + "@" + addr + p.uriParams()
	}
	b := StartBaresip(t, o)
	if p.Register && !b.WaitFor("[1 binding]", 10*time.Second) {
		t.Fatalf("%s did not register:\n%s", p.User, b.Output())
	}
	if p.Dial != "" && !b.WaitFor("Call established", 10*time.Second) {
		t.Fatalf("%s's call to %s was not established:\n%s", p.User, p.Dial, b.Output())
	}
	return b
}

// HeardSeconds is how long the phone heard a tone of freq (at least 0.2 of
// the frame's energy, in 20 ms frames), from the given fraction of its
// recording to the end (0: all of it; 0.5: the second half).
func (b *Baresip) HeardSeconds(freq, from float64) float64 {
	w := b.Received()
	return audio.ToneSeconds(w.Samples[int(float64(len(w.Samples))*from):], w.Rate, freq, 0.2)
}

// Levels returns the strength of each frequency in w, from the given
// fraction of it to the end.
func Levels(w *audio.WAV, from float64, freqs ...float64) []float64 {
	s := w.Samples[int(float64(len(w.Samples))*from):]
	out := make([]float64, len(freqs))
	for i, f := range freqs {
		out[i] = audio.Goertzel(s, w.Rate, f)
	}
	return out
}

// BestWindow returns the Goertzel power of each of freqs in the stretch of
// w (of length win, in steps of 200 ms) where the quietest of all but the
// last frequency is loudest: the moment a listener heard all the others.
// The last frequency is the listener's own.
func BestWindow(w *audio.WAV, win time.Duration, freqs []float64) []float64 {
	n, step := int(win.Seconds()*float64(w.Rate)), w.Rate/5
	best, bestMin := make([]float64, len(freqs)), -1.0
	for start := 0; start+n <= len(w.Samples); start += step {
		seg := w.Samples[start : start+n]
		p := make([]float64, len(freqs))
		least := math.Inf(1)
		for i, f := range freqs {
			p[i] = audio.Goertzel(seg, w.Rate, f)
			if i < len(freqs)-1 {
				least = min(least, p[i])
			}
		}
		if least > bestMin {
			best, bestMin = p, least
		}
	}
	return best
}
