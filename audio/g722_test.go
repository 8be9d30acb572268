package audio

import (
	"math"
	"testing"
)

// snrAtBestLag compares out with in delayed by the codec (searched over
// 0..63 samples) and returns the signal-to-noise ratio in dB.
func snrAtBestLag(in, out []int16) (float64, int) {
	best, lag := -math.MaxFloat64, 0
	for l := 0; l < 64; l++ {
		var sig, noise float64
		for i := 2000; i+l < len(out) && i < len(in); i++ {
			s, o := float64(in[i]), float64(out[i+l])
			sig += s * s
			noise += (s - o) * (s - o)
		}
		if snr := 10 * math.Log10(sig/max(noise, 1e-9)); snr > best {
			best, lag = snr, l
		}
	}
	return best, lag
}

// G.722 round trip: tones in both sub-bands and a sweep come back with the
// codec's known quality, one byte per two samples, after the QMF delay.
func TestG722RoundTrip(t *testing.T) {
	for _, c := range []struct {
		name   string
		fill   func([]int16)
		minSNR float64
		sweep  bool
	}{
		{"1 kHz, low band", func(p []int16) { (&Tone{Rate: G722Rate, Freq: 1000, Level: 0.3}).Fill(p) }, 40, false},
		{"300 Hz, quiet", func(p []int16) { (&Tone{Rate: G722Rate, Freq: 300, Level: 0.02}).Fill(p) }, 35, false},
		{"5 kHz, high band", func(p []int16) { (&Tone{Rate: G722Rate, Freq: 5000, Level: 0.3}).Fill(p) }, 18, false},
		{"sweep 100 Hz to 7 kHz", func(p []int16) {
			ph := 0.0
			for i := range p {
				f := 100 + 6900*float64(i)/float64(len(p))
				ph += 2 * math.Pi * f / G722Rate
				p[i] = int16(0.3 * 32767 * math.Sin(ph))
			}
		}, 20, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := make([]int16, G722Rate*2)
			c.fill(in)
			enc, dec := NewG722Encoder(), NewG722Decoder()
			var out []int16
			var wire int
			for i := 0; i < len(in); i += 320 { // 20 ms frames
				b := enc.Encode(nil, in[i:i+320])
				wire += len(b)
				if len(b) != 160 {
					t.Fatalf("a 20 ms frame encoded to %d bytes, want 160", len(b))
				}
				out = dec.Decode(out, b)
			}
			snr, lag := snrAtBestLag(in, out)
			t.Logf("SNR %.1f dB at a delay of %d samples", snr, lag)
			if snr < c.minSNR {
				t.Fatalf("SNR %.1f dB, want at least %.0f", snr, c.minSNR)
			}
			if c.sweep && lag != 22 { // a tone's period makes its lag ambiguous
				t.Fatalf("delay %d samples, the QMF pair gives 22", lag)
			}
		})
	}
}

// Silence encodes to the idle pattern and decodes to (near) silence; a
// decoder fed garbage stays bounded and recovers.
func TestG722SilenceAndGarbage(t *testing.T) {
	enc, dec := NewG722Encoder(), NewG722Decoder()
	b := enc.Encode(nil, make([]int16, 3200))
	out := dec.Decode(nil, b)
	if lvl := LevelDBFS(out[400:]); lvl > -70 {
		t.Fatalf("silence decodes at %.1f dBFS", lvl)
	}
	garbage := make([]byte, 1600)
	for i := range garbage {
		garbage[i] = byte(i * 37)
	}
	_ = dec.Decode(nil, garbage)
	out = dec.Decode(out[:0], b) // silence again
	if lvl := LevelDBFS(out[1600:]); lvl > -50 {
		t.Fatalf("after garbage, silence decodes at %.1f dBFS", lvl)
	}
}

func BenchmarkG722Encode20ms(b *testing.B) {
	pcm := make([]int16, 320)
	(&Tone{Rate: G722Rate, Freq: 1000, Level: 0.3}).Fill(pcm)
	enc := NewG722Encoder()
	buf := make([]byte, 0, 160)
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.Encode(buf[:0], pcm)
	}
}

func BenchmarkG722Decode20ms(b *testing.B) {
	pcm := make([]int16, 320)
	(&Tone{Rate: G722Rate, Freq: 1000, Level: 0.3}).Fill(pcm)
	payload := NewG722Encoder().Encode(nil, pcm)
	dec := NewG722Decoder()
	out := make([]int16, 0, 320)
	b.ReportAllocs()
	for b.Loop() {
		out = dec.Decode(out[:0], payload)
	}
}

// Any payload decodes to two samples per byte, without panicking.
func FuzzG722Decode(f *testing.F) {
	f.Add([]byte{0xff, 0x00, 0x3f, 0xc0})
	f.Add(NewG722Encoder().Encode(nil, make([]int16, 320)))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewG722Decoder()
		if out := d.Decode(nil, b); len(out) != 2*len(b) {
			t.Fatalf("%d bytes decoded to %d samples", len(b), len(out))
		}
	})
}
