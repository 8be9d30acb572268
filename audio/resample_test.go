package audio

import (
	"fmt"
	"math"
	"testing"
)

var rates = MixRates()

// ratePair is a conversion between two different mixing rates.
type ratePair struct{ in, out int }

func (p ratePair) String() string { return fmt.Sprintf("%d-%d", p.in, p.out) }
func (p ratePair) lo() int        { return min(p.in, p.out) }

// ratePairs lists every conversion between two different mixing rates.
func ratePairs() []ratePair {
	var ps []ratePair
	for _, in := range rates {
		for _, out := range rates {
			if in != out {
				ps = append(ps, ratePair{in, out})
			}
		}
	}
	return ps
}

// processor is what the measurements below run: Resampler.Process, or the
// reference filter's.
type processor func(dst, src []int16) []int16

func newProc(t testing.TB, p ratePair, frame int) processor {
	t.Helper()
	r, err := NewResampler(p.in, p.out, frame)
	if err != nil {
		t.Fatal(err)
	}
	return r.Process
}

// run feeds src through proc in frames of frame samples (the last one may be
// shorter) and returns everything that came out.
func run(proc processor, src []int16, frame int) []int16 {
	var dst []int16
	for off := 0; off < len(src); off += frame {
		dst = proc(dst, src[off:min(off+frame, len(src))])
	}
	return dst
}

func resampleAll(t testing.TB, in, out int, src []int16, frame int) []int16 {
	return run(newProc(t, ratePair{in, out}, frame), src, frame)
}

func tone(rate int, freq, level float64, n int) []int16 {
	src := make([]int16, n)
	(&Tone{Rate: rate, Freq: freq, Level: level}).Fill(src)
	return src
}

func dB(x float64) float64 { return 10 * math.Log10(x) }

// gainDB is the level of a tone at freq through proc, relative to its input,
// and the level of everything else in the output relative to the tone
// (images, aliases, noise), over 1 s after the filter's start-up.
func gainDB(p ratePair, proc processor, freq float64) (gain, rest float64) {
	src := tone(p.in, freq, 0.5, p.in)
	inSig, _ := SineFit(src, p.in, freq)
	dst := run(proc, src, p.in/50)
	sig, res := SineFit(dst[p.out/10:], p.out, freq)
	return dB(sig / inSig), dB(res / sig)
}

// alias returns the output energy of a tone at freq relative to that of a
// passband tone of the same level, in dB.
func aliasDB(p ratePair, proc func() processor, freq float64) float64 {
	ref := run(proc(), tone(p.in, 1000, 0.9, p.in), p.in/50)
	dst := run(proc(), tone(p.in, freq, 0.9, p.in), p.in/50)
	return dB(Energy(dst[p.out/10:]) / Energy(ref[p.out/10:]))
}

// A sine in the passband comes through clean (images and aliasing included in
// the residual), between every pair of rates.
func TestResamplerSNR(t *testing.T) {
	for _, p := range ratePairs() {
		t.Run(p.String(), func(t *testing.T) {
			src := tone(p.in, 1000, 0.5, p.in) // 1 s
			dst := resampleAll(t, p.in, p.out, src, p.in/50)
			if len(dst) != p.out {
				t.Fatalf("%d samples out of 1 s, want %d", len(dst), p.out)
			}
			sig, res := SineFit(dst[p.out/10:], p.out, 1000) // skip the filter's start-up
			snr := dB(sig / res)
			t.Logf("SNR %.1f dB", snr)
			if snr < 70 {
				t.Fatalf("SNR %.1f dB, want >= 70", snr)
			}
		})
	}
}

// Passband tones (1 kHz, and up to 0.4 of the lower rate: 3.2 kHz at
// 8 kHz) come through within ±0.5 dB, and with images (upsampling) and
// everything else at least 70 dB below them.
func TestResamplerPassband(t *testing.T) {
	for _, p := range ratePairs() {
		t.Run(p.String(), func(t *testing.T) {
			lo := float64(p.lo())
			worstImg := math.Inf(-1)
			for _, f := range []float64{100, 300, 1000, 0.25 * lo, 3000 * lo / 8000, 0.4 * lo, 0.42 * lo} {
				gain, rest := gainDB(p, newProc(t, p, p.in/50), f)
				worstImg = max(worstImg, rest)
				if math.Abs(gain) > 0.5 {
					t.Errorf("%.0f Hz: gain %+.2f dB, want within ±0.5", f, gain)
				}
				if rest > -70 {
					t.Errorf("%.0f Hz: images and noise at %.1f dB, want <= -70", f, rest)
				}
				if f == 3000*lo/8000 {
					t.Logf("%.0f Hz: %+.2f dB", f, gain)
				}
			}
			t.Logf("worst images/noise %.1f dB", worstImg)
		})
	}
}

// Tones that would alias into the passband when downsampling (from 0.575 of
// the lower rate up to the input's Nyquist frequency) are removed by at least
// 70 dB relative to a passband tone.
func TestResamplerStopband(t *testing.T) {
	for _, p := range ratePairs() {
		if p.in < p.out {
			continue // upsampling: images are checked in TestResamplerPassband
		}
		t.Run(p.String(), func(t *testing.T) {
			lo := float64(p.lo())
			worst, worstF := math.Inf(-1), 0.0
			for f := 0.575 * lo; f < float64(p.in)/2; f += lo / 40 {
				a := aliasDB(p, func() processor { return newProc(t, p, p.in/50) }, f)
				if a > worst {
					worst, worstF = a, f
				}
				if a > -70 {
					t.Errorf("%.0f Hz comes through at %.1f dB, want <= -70", f, a)
				}
			}
			t.Logf("worst: %.1f dB at %.0f Hz", worst, worstF)
		})
	}
}

// The delay is what Delay says, to within half an input sample: the phase
// of a low tone is shifted by Delay input samples.
func TestResamplerDelay(t *testing.T) {
	for _, p := range ratePairs() {
		t.Run(p.String(), func(t *testing.T) {
			r, _ := NewResampler(p.in, p.out, p.in/50)
			const f = 250
			dst := run(r.Process, tone(p.in, f, 0.5, p.in), p.in/50)
			var a, b float64 // dst ~ A sin(w j + phi)
			for j, v := range dst[p.out/10 : p.out/10+p.out/5] {
				w := 2 * math.Pi * f * float64(j+p.out/10) / float64(p.out)
				a += float64(v) * math.Sin(w)
				b += float64(v) * math.Cos(w)
			}
			delay := -math.Atan2(b, a) / (2 * math.Pi * f) * float64(p.in)
			t.Logf("delay %.2f input samples, Delay() %d", delay, r.Delay())
			if math.Abs(delay-float64(r.Delay())) > 0.5+1e-3 {
				t.Fatalf("delay %.2f input samples, Delay() says %d", delay, r.Delay())
			}
		})
	}
}

// Frame by frame equals all at once: no clicks at frame edges, also for
// frames that are no multiple of the rate ratio.
func TestResamplerFrameEdges(t *testing.T) {
	for _, p := range ratePairs() {
		t.Run(p.String(), func(t *testing.T) {
			src := tone(p.in, 700, 0.8, p.in/2)
			noise := make([]int16, len(src))
			(&ComfortNoise{Level: -25}).Fill(noise)
			for i := range src {
				src[i] += noise[i]
			}
			whole := run(newProc(t, p, len(src)), src, len(src))
			for _, frame := range []int{p.in / 50, p.in / 100, 37} {
				framed := run(newProc(t, p, frame), src, frame)
				if len(whole) != len(framed) {
					t.Fatalf("frames of %d: %d vs %d samples", frame, len(whole), len(framed))
				}
				for i := range whole {
					if whole[i] != framed[i] {
						t.Fatalf("frames of %d: sample %d differs: %d vs %d", frame, i, whole[i], framed[i])
					}
				}
			}
		})
	}
}

// A simulated minute of 20 ms frames (ten for the G.711 and Opus pairs):
// exactly the expected number of samples out, so the delay cannot grow.
func TestResamplerNoDelayCreep(t *testing.T) {
	for _, c := range ratePairs() {
		frames := 3000
		if c.lo() == 8000 && max(c.in, c.out) == 48000 {
			frames = 30000
		}
		r, _ := NewResampler(c.in, c.out, c.in/50)
		frame := make([]int16, c.in/50)
		out := make([]int16, 0, c.out/50)
		total := 0
		for i := 0; i < frames; i++ {
			out = r.Process(out[:0], frame)
			total += len(out)
			if len(out) != r.OutLen(len(frame)) {
				t.Fatalf("%d->%d: frame %d gave %d samples", c.in, c.out, i, len(out))
			}
		}
		if total != frames*c.out/50 {
			t.Fatalf("%d->%d: %d samples, want %d", c.in, c.out, total, frames*c.out/50)
		}
	}
}

// Process does not allocate (given room in dst), and Reset starts over.
func TestResamplerNoAllocsAndReset(t *testing.T) {
	for _, p := range ratePairs() {
		r, _ := NewResampler(p.in, p.out, p.in/50)
		src := tone(p.in, 440, 0.5, p.in/50)
		dst := make([]int16, 0, p.out/50)
		first := r.Process(nil, src)
		if n := testing.AllocsPerRun(100, func() { dst = r.Process(dst[:0], src) }); n != 0 {
			t.Errorf("%v: %v allocations per Process", p, n)
		}
		r.Reset()
		again := r.Process(nil, src)
		if fmt.Sprint(first) != fmt.Sprint(again) {
			t.Errorf("%v: after Reset the output differs", p)
		}
	}
}

// Frames longer than maxIn still work (the history grows once).
func TestResamplerLongFrame(t *testing.T) {
	src := tone(8000, 1000, 0.5, 8000)
	a := run(newProc(t, ratePair{8000, 48000}, 160), src, 160)
	b := run(newProc(t, ratePair{8000, 48000}, 160), src, 800)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("frames beyond maxIn change the output")
	}
}

func TestResamplerBadRate(t *testing.T) {
	if _, err := NewResampler(44100, 8000, 882); err == nil {
		t.Fatal("accepted 44.1 kHz")
	}
}

// The reference filter's quality, as measured here (for comparison, not a
// requirement).
func TestPolyphase16Quality(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	for _, p := range []ratePair{{8000, 48000}, {48000, 8000}} {
		lo := float64(p.lo())
		newRef := func() processor { return newPolyphase16(p.in, p.out).process }
		_, rest := gainDB(p, newRef(), 0.42*lo)
		g3, _ := gainDB(p, newRef(), 0.375*lo)
		worst := math.Inf(-1)
		if p.in > p.out {
			for f := 0.575 * lo; f < float64(p.in)/2; f += lo / 40 {
				worst = max(worst, aliasDB(p, newRef, f))
			}
		}
		t.Logf("%v: %.2f dB at %.0f Hz; images/noise for a %.0f Hz tone %.1f dB; worst alias from %.0f Hz on %.1f dB",
			p, g3, 0.375*lo, 0.42*lo, rest, 0.575*lo, worst)
	}
}

var benchPairs = ratePairs()

func BenchmarkResample(b *testing.B) {
	for _, p := range benchPairs {
		b.Run(p.String(), func(b *testing.B) {
			r, _ := NewResampler(p.in, p.out, p.in/50)
			src := tone(p.in, 440, 0.5, p.in/50)
			dst := make([]int16, 0, p.out/50)
			b.ReportAllocs()
			for b.Loop() {
				dst = r.Process(dst[:0], src)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N), "us/frame")
		})
	}
}

// BenchmarkPolyphase16 is the yardstick: a straightforward polyphase FIR with
// 16 taps per phase (16*max(L,M) in all, Kaiser-windowed sinc cut off at the
// lower Nyquist frequency), per 20 ms frame.
func BenchmarkPolyphase16(b *testing.B) {
	for _, p := range benchPairs {
		b.Run(p.String(), func(b *testing.B) {
			r := newPolyphase16(p.in, p.out)
			src := tone(p.in, 440, 0.5, p.in/50)
			dst := make([]int16, 0, p.out/50)
			b.ReportAllocs()
			for b.Loop() {
				dst = r.process(dst[:0], src)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N), "us/frame")
		})
	}
}

// polyphase16 is the reference resampler: up by l, a 16*max(l,m)-tap
// low-pass, down by m, with float32 history.
type polyphase16 struct {
	l, m, k int
	coeffs  []float32 // l branches of k taps, reversed
	hist    []float32
	t       int
}

func newPolyphase16(in, out int) *polyphase16 {
	g := gcd(in, out)
	r := &polyphase16{l: out / g, m: in / g}
	r.k = 16 * max(r.l, r.m) / r.l
	n := r.k * r.l
	fc := 0.5 / float64(max(r.l, r.m)) // cycles per upsampled sample
	const beta = 8.0
	center := float64(n-1) / 2
	r.coeffs = make([]float32, n)
	for p := 0; p < r.l; p++ {
		for j := 0; j < r.k; j++ {
			x := float64(p+j*r.l) - center
			sinc := 2 * fc
			if x != 0 {
				sinc = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
			}
			w := besselI0(beta*math.Sqrt(1-(x/center)*(x/center))) / besselI0(beta)
			r.coeffs[p*r.k+r.k-1-j] = float32(sinc * w * float64(r.l))
		}
	}
	r.hist = make([]float32, r.k-1)
	return r
}

func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}

func (r *polyphase16) process(dst, src []int16) []int16 {
	if r.l == r.m {
		return append(dst, src...)
	}
	for _, v := range src {
		r.hist = append(r.hist, float32(v))
	}
	total := len(src) * r.l
	for ; r.t < total; r.t += r.m {
		idx, p := r.t/r.l, r.t%r.l
		c, x := r.coeffs[p*r.k:(p+1)*r.k], r.hist[idx:idx+r.k]
		var acc float32
		for j := range c {
			acc += c[j] * x[j]
		}
		dst = append(dst, int16(math.Round(float64(min(max(acc, -32768), 32767)))))
	}
	r.t -= total
	r.hist = append(r.hist[:0], r.hist[len(r.hist)-(r.k-1):]...)
	return dst
}

// A resampler primed with the last frame of a stream continues it as one
// that ran all along: exactly when the frame is at its input rate, and
// within the filter's images when it is at 8 kHz (zero-stuffed: what a room
// that goes from an 8 kHz mix to a wider one has). A fresh one fades in.
func TestResamplerPrime(t *testing.T) {
	for _, p := range ratePairs() {
		if p.in%8000 != 0 {
			continue
		}
		speechLike := func(rate int) []int16 { // two tones in the narrow band, 3 frames
			a, b := tone(rate, 310, 0.3, rate*3/50), tone(rate, 1270, 0.2, rate*3/50)
			for i := range a {
				a[i] += b[i]
			}
			return a
		}
		src := speechLike(p.in)
		frame := p.in / 50
		ref, _ := NewResampler(p.in, p.out, frame)
		want := run(ref.Process, src, frame)[p.out*2/50:] // the third frame's output
		for _, prevRate := range []int{p.in, 8000} {
			if prevRate != p.in && p.lo() != prevRate {
				continue // the filter passes the zero-stuffed images
			}
			prev := speechLike(prevRate)[prevRate/50 : prevRate*2/50] // the second frame, at prevRate
			r, _ := NewResampler(p.in, p.out, frame)
			r.Prime(prev, prevRate)
			got := r.Process(nil, src[2*frame:])
			fresh, _ := NewResampler(p.in, p.out, frame)
			cold := fresh.Process(nil, src[2*frame:])
			snr := func(x []int16) float64 {
				var s, n float64
				for i := range want {
					s += float64(want[i]) * float64(want[i])
					d := float64(x[i]) - float64(want[i])
					n += d * d
				}
				return dB(s / max(n, 1e-9))
			}
			primed, unprimed := snr(got), snr(cold)
			limit := 60.0
			if prevRate != p.in {
				limit = 35
			}
			if primed < limit || primed < unprimed+10 {
				t.Errorf("%v primed from %d Hz: SNR %.1f dB against a continuous run (fresh: %.1f dB), want %.0f", p, prevRate, primed, unprimed, limit)
			}
		}
	}
}
