package audio

import (
	"fmt"
	"math"
	"testing"
)

func resampleAll(t testing.TB, in, out int, src []int16, frame int) []int16 {
	r, err := NewResampler(in, out, frame)
	if err != nil {
		t.Fatal(err)
	}
	var dst []int16
	for off := 0; off+frame <= len(src); off += frame {
		dst = r.Process(dst, src[off:off+frame])
	}
	return dst
}

var rates = MixRates()

// A sine in the passband comes through clean (images and aliasing included in
// the residual), between every pair of rates.
func TestResamplerSNR(t *testing.T) {
	for _, in := range rates {
		for _, out := range rates {
			if in == out {
				continue
			}
			t.Run(fmt.Sprintf("%d-%d", in, out), func(t *testing.T) {
				src := make([]int16, in) // 1 s
				(&Tone{Rate: in, Freq: 1000, Level: 0.5}).Fill(src)
				dst := resampleAll(t, in, out, src, in/50)
				if len(dst) != out {
					t.Fatalf("%d samples out of 1 s, want %d", len(dst), out)
				}
				sig, res := SineFit(dst[out/10:], out, 1000) // skip the filter's start-up
				snr := 10 * math.Log10(sig/res)
				t.Logf("SNR %.1f dB", snr)
				if snr < 60 {
					t.Fatalf("SNR %.1f dB, want >= 60", snr)
				}
			})
		}
	}
}

// Sines above the output's Nyquist frequency (plus the transition band) are
// removed by at least 70 dB when downsampling, instead of folding back.
func TestResamplerStopband(t *testing.T) {
	for _, c := range []struct{ in, out int }{{48000, 8000}, {48000, 16000}, {16000, 8000}, {24000, 8000}, {48000, 24000}} {
		nyq := float64(c.out) / 2
		for _, f := range []float64{nyq * 1.25, nyq * 1.5, nyq * 2.2, float64(c.in)/2 - 500} {
			t.Run(fmt.Sprintf("%d-%d/%.0fHz", c.in, c.out, f), func(t *testing.T) {
				src := make([]int16, c.in)
				(&Tone{Rate: c.in, Freq: f, Level: 0.9}).Fill(src)
				dst := resampleAll(t, c.in, c.out, src, c.in/50)
				inE := Energy(src)
				outE := Energy(dst[c.out/10:])
				att := 10 * math.Log10(outE/inE)
				t.Logf("%.0f Hz: %.1f dB", f, att)
				if att > -70 {
					t.Fatalf("%.0f Hz comes through at %.1f dB, want <= -70", f, att)
				}
			})
		}
	}
}

// Frame by frame equals all at once: no clicks at frame edges.
func TestResamplerFrameEdges(t *testing.T) {
	src := make([]int16, 48000)
	(&Tone{Rate: 8000, Freq: 700, Level: 0.8}).Fill(src[:8000])
	whole := resampleAll(t, 8000, 48000, src[:8000], 8000)
	framed := resampleAll(t, 8000, 48000, src[:8000], 160)
	if len(whole) != len(framed) {
		t.Fatalf("%d vs %d samples", len(whole), len(framed))
	}
	for i := range whole {
		if whole[i] != framed[i] {
			t.Fatalf("sample %d differs: %d vs %d", i, whole[i], framed[i])
		}
	}
}

// Ten simulated minutes of 20 ms frames: exactly the expected number of
// samples out, so the delay cannot grow.
func TestResamplerNoDelayCreep(t *testing.T) {
	for _, c := range []struct{ in, out int }{{8000, 48000}, {48000, 8000}, {16000, 24000}, {24000, 16000}} {
		r, _ := NewResampler(c.in, c.out, c.in/50)
		frame := make([]int16, c.in/50)
		out := make([]int16, 0, c.out/50)
		total := 0
		for i := 0; i < 30000; i++ {
			out = r.Process(out[:0], frame)
			total += len(out)
			if len(out) != r.OutLen(len(frame)) {
				t.Fatalf("%d->%d: frame %d gave %d samples", c.in, c.out, i, len(out))
			}
		}
		if total != 30000*c.out/50 {
			t.Fatalf("%d->%d: %d samples, want %d", c.in, c.out, total, 30000*c.out/50)
		}
	}
}

func TestResamplerBadRate(t *testing.T) {
	if _, err := NewResampler(44100, 8000, 882); err == nil {
		t.Fatal("accepted 44.1 kHz")
	}
}

func BenchmarkResample(b *testing.B) {
	for _, c := range []struct{ in, out int }{{8000, 48000}, {48000, 8000}, {16000, 48000}, {48000, 16000}} {
		b.Run(fmt.Sprintf("%d-%d", c.in, c.out), func(b *testing.B) {
			r, _ := NewResampler(c.in, c.out, c.in/50)
			src := make([]int16, c.in/50)
			(&Tone{Rate: c.in, Freq: 440, Level: 0.5}).Fill(src)
			dst := make([]int16, 0, c.out/50)
			b.ReportAllocs()
			for b.Loop() {
				dst = r.Process(dst[:0], src)
			}
		})
	}
}
