package audio

import (
	"encoding/binary"
	"math"
	"math/rand"
	"slices"
	"strconv"
	"testing"
)

// vowel returns n samples of a steady vowel-like sound: a 1/k harmonic
// series on f0 up to 3.5 kHz, at about -10 dBFS peak.
func vowel(rate int, f0 float64, n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		var v float64
		for k := 1; float64(k)*f0 < min(3500, float64(rate)/2*0.9); k++ {
			v += math.Sin(2*math.Pi*f0*float64(k)*float64(i)/float64(rate)+float64(k)) / float64(k)
		}
		pcm[i] = int16(v * 5000)
	}
	return pcm
}

// shrinkBy runs pcm through a Shrinker in 20 ms frames, asking for share
// of the audio in total: each frame asks for what is still missing.
func shrinkBy(s *Shrinker, rate int, pcm []int16, share float64) (out []int16, removed int) {
	frame := rate / 50
	out = make([]int16, 0, len(pcm))
	for i := 0; i+frame <= len(pcm); i += frame {
		want := int(share*float64(i+frame)) - removed
		var r int
		out, r = s.Shrink(out, pcm[i:i+frame], want)
		removed += r
	}
	return out, removed
}

// maxJump is the largest sample-to-sample step.
func maxJump(pcm []int16) int {
	m := 0
	for i := 1; i < len(pcm); i++ {
		d := int(pcm[i]) - int(pcm[i-1])
		m = max(m, d, -d)
	}
	return m
}

// zeroCrossings per sample.
func zeroCrossings(pcm []int16) float64 {
	n := 0
	for i := 1; i < len(pcm); i++ {
		if (pcm[i] >= 0) != (pcm[i-1] >= 0) {
			n++
		}
	}
	return float64(n) / float64(len(pcm))
}

// acfPeriod is the period in samples (interpolated) of the highest
// autocorrelation peak between lo and hi, over the whole signal.
func acfPeriod(pcm []int16, lo, hi int) float64 {
	r := make([]float64, hi+2)
	for lag := lo - 1; lag <= hi+1; lag++ {
		var xy float64
		for i := lag; i < len(pcm); i++ {
			xy += float64(pcm[i]) * float64(pcm[i-lag])
		}
		r[lag] = xy / float64(len(pcm)-lag)
	}
	best := lo
	for lag := lo; lag <= hi; lag++ {
		if r[lag] > r[best] {
			best = lag
		}
	}
	a, b, c := r[best-1], r[best], r[best+1]
	return float64(best) + 0.5*(a-c)/(a-2*b+c)
}

// A steady vowel shrunk by a quarter keeps its pitch and gains no
// discontinuity, at every rate.
func TestShrinkVowelKeepsPitch(t *testing.T) {
	for _, rate := range []int{8000, 16000, 24000, 48000} {
		for _, f0 := range []float64{97, 137, 230} {
			in := vowel(rate, f0, rate*2)
			s := NewShrinker(rate, rate/50)
			out, removed := shrinkBy(s, rate, in, 0.25)
			share := float64(removed) / float64(len(in))
			zi, zo := zeroCrossings(in), zeroCrossings(out)
			period := float64(rate) / f0
			lo, hi := int(period*0.8), int(period*1.2)
			pi, po := acfPeriod(in, lo, hi), acfPeriod(out, lo, hi)
			ji, jo := maxJump(in), maxJump(out)
			t.Logf("%d Hz, f0 %v: removed %.1f%%, zero crossings %.4f -> %.4f, period %.2f -> %.2f, max jump %d -> %d",
				rate, f0, share*100, zi, zo, pi, po, ji, jo)
			if share < 0.23 || share > 0.26 {
				t.Errorf("%d Hz, f0 %v: removed %.1f%%, want 25%%", rate, f0, share*100)
			}
			if math.Abs(zo/zi-1) > 0.02 || math.Abs(po/pi-1) > 0.02 {
				t.Errorf("%d Hz, f0 %v: pitch moved: zero crossings %.4f -> %.4f, period %.2f -> %.2f", rate, f0, zi, zo, pi, po)
			}
			if jo > ji+ji/20 {
				t.Errorf("%d Hz, f0 %v: max jump %d -> %d: a discontinuity", rate, f0, ji, jo)
			}
		}
	}
}

// Silence and quiet noise go almost entirely when asked.
func TestShrinkSilence(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, rate := range []int{8000, 16000, 24000, 48000} {
		for _, c := range []struct {
			name  string
			level float64 // peak of uniform noise
		}{{"digital silence", 0}, {"noise at -60 dBFS", 33}, {"noise at -50 dBFS", 100}} {
			frame := rate / 50
			s := NewShrinker(rate, frame)
			in := make([]int16, frame)
			var out []int16
			removed := 0
			for range 50 {
				for i := range in {
					in[i] = int16((rng.Float64()*2 - 1) * c.level)
				}
				var r int
				out, r = s.Shrink(out[:0], in, frame)
				removed += r
			}
			share := float64(removed) / float64(50*frame)
			t.Logf("%d Hz, %s: removed %.0f%% of each frame", rate, c.name, share*100)
			if share < 0.85 {
				t.Errorf("%d Hz, %s: removed %.0f%%, want most of the frame", rate, c.name, share*100)
			}
		}
	}
}

// loadSpeech returns the test speech at rate.
func loadSpeech(t testing.TB, rate int) []int16 {
	t.Helper()
	w, err := ReadWAVFile("../testdata/speech/speech16k.wav")
	if err != nil {
		t.Fatal(err)
	}
	if w.Rate == rate {
		return w.Samples
	}
	in := w.Rate / 50
	rs, err := NewResampler(w.Rate, rate, in)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int16, 0, len(w.Samples)/in*rate/50)
	for i := 0; i+in <= len(w.Samples); i += in {
		out = rs.Process(out, w.Samples[i:i+in])
	}
	return out
}

// clicks measures discontinuities the way click detectors do: the
// residual of a 12th-order linear prediction (fitted over 30 ms around
// each 10 ms), where a splice that the signal's own spectrum does not
// predict stands out, relative to the residual's RMS over the 5 ms either
// side (plus a floor for near silence). It returns the worst ratio and how
// many samples exceed limit.
func clicks(pcm []int16, rate int, limit float64) (worst float64, over int) {
	const order = 12
	hop, half := rate/100, rate/200
	res := make([]float64, len(pcm))
	var r [order + 1]float64
	x := make([]float64, 3*hop)
	for at := order; at+hop <= len(pcm); at += hop {
		lo, hi := max(at-hop, 0), min(at+2*hop, len(pcm))
		seg := x[:hi-lo]
		for i, v := range pcm[lo:hi] {
			seg[i] = float64(v) * (0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(seg))))
		}
		for k := range r {
			r[k] = 0
			for i := k; i < len(seg); i++ {
				r[k] += seg[i] * seg[i-k]
			}
		}
		r[0] = r[0]*1.0001 + 1
		a := levinson(r[:])
		for n := at; n < at+hop; n++ {
			e := float64(pcm[n])
			for k := 1; k <= order; k++ {
				e += a[k] * float64(pcm[n-k])
			}
			res[n] = e
		}
	}
	var e float64
	for i := range min(2*half+1, len(res)) {
		e += res[i] * res[i]
	}
	for i := half; i+half+1 < len(res); i++ {
		rms := math.Sqrt(max(e, 0)/float64(2*half+1)) + 30
		v := math.Abs(res[i]) / rms
		worst = max(worst, v)
		if v > limit {
			over++
		}
		e += res[i+half+1]*res[i+half+1] - res[i-half]*res[i-half]
	}
	return worst, over
}

// levinson returns the prediction error filter 1, a1..ap for autocorrelation r.
func levinson(r []float64) []float64 {
	p := len(r) - 1
	a := make([]float64, p+1)
	tmp := make([]float64, p+1)
	a[0] = 1
	err := r[0]
	for i := 1; i <= p; i++ {
		acc := r[i]
		for j := 1; j < i; j++ {
			acc += a[j] * r[i-j]
		}
		k := -acc / err
		copy(tmp, a)
		for j := 1; j < i; j++ {
			a[j] = tmp[j] + k*tmp[i-j]
		}
		a[i] = k
		err *= 1 - k*k
	}
	return a
}

// 33 s of speech shrunk by 20 % in total (mostly in the pauses), and by
// 40 % (more than the pauses hold): the figures for discontinuities stay
// at the input's.
func TestShrinkSpeech(t *testing.T) {
	for _, c := range []struct {
		rate  int
		share float64
	}{{8000, 0.2}, {16000, 0.2}, {48000, 0.2}, {8000, 0.4}, {16000, 0.4}, {48000, 0.4}} {
		rate := c.rate
		in := loadSpeech(t, rate)
		s := NewShrinker(rate, rate/50)
		out, removed := shrinkBy(s, rate, in, c.share)
		share := float64(removed) / float64(len(in))
		ci, ni := clicks(in, rate, 6)
		co, no := clicks(out, rate, 6)
		ji, jo := maxJump(in), maxJump(out)
		// The control: as much cut out as hard splices at the frame starts.
		var naive []int16
		frame := rate / 50
		for i := 0; i+frame <= len(in); i += frame {
			naive = append(naive, in[i+int(c.share*float64(frame)):i+frame]...)
		}
		cn, nn := clicks(naive, rate, 6)
		t.Logf("%d Hz, asked %.0f%%: hard splices instead: worst click ratio %.1f, samples over 6: %d", rate, c.share*100, cn, nn)
		if nn < 10*(no+1) {
			t.Errorf("%d Hz: the click measure does not tell hard splices (%d over) from the Shrinker's (%d)", rate, nn, no)
		}
		t.Logf("%d Hz, asked %.0f%%: removed %.1f%% of %.1f s (%.1f%% in quiet, %.1f%% as pitch periods); max jump %d -> %d; worst click ratio %.1f -> %.1f, samples over 6: %d -> %d",
			rate, c.share*100, share*100, float64(len(in))/float64(rate),
			float64(s.quietCut)*100/float64(len(in)), float64(s.periodCut)*100/float64(len(in)), ji, jo, ci, co, ni, no)
		if share < c.share-0.01 {
			t.Errorf("%d Hz: removed %.1f%%, asked %.0f%%", rate, share*100, c.share*100)
		}
		if jo > ji+ji/20 {
			t.Errorf("%d Hz: max jump %d -> %d", rate, ji, jo)
		}
		if co > ci*1.5 || no > ni+ni/2+2 {
			t.Errorf("%d Hz: clicks: worst %.1f -> %.1f, %d -> %d over the limit", rate, ci, co, ni, no)
		}
	}
}

// Shrink allocates nothing after NewShrinker, in speech and silence, and
// src may be dst's spare capacity (decoded in place).
func TestShrinkAllocs(t *testing.T) {
	const rate = 16000
	speech := loadSpeech(t, rate)[rate*2 : rate*4]
	s := NewShrinker(rate, rate/50)
	buf := make([]int16, 0, 4*rate/50)
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		frame := speech[i%(len(speech)-rate/50):][:rate/50]
		i += rate / 50
		n := len(buf)
		buf = append(buf, frame...) // "decode" into the fifo
		buf, _ = s.Shrink(buf[:n], buf[n:], rate/100)
		buf = buf[:copy(buf, buf[min(len(buf), rate/50):])] // play a tick
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
}

// In place (src just past dst's end) gives the same audio as copies.
func TestShrinkInPlace(t *testing.T) {
	const rate = 8000
	in := loadSpeech(t, rate)[:rate*5]
	a, b := NewShrinker(rate, 160), NewShrinker(rate, 160)
	var outA []int16
	outB := make([]int16, 0, len(in))
	for i := 0; i+160 <= len(in); i += 160 {
		outA, _ = a.Shrink(outA, in[i:i+160], 80)
		n := len(outB)
		outB = append(outB, in[i:i+160]...)
		outB, _ = b.Shrink(outB[:n], outB[n:], 80)
	}
	if !slices.Equal(outA, outB) {
		t.Fatal("in-place shrinking differs from shrinking a copy")
	}
}

func FuzzShrink(f *testing.F) {
	f.Add([]byte{0, 160, 80, 1, 2, 3, 4, 200, 100, 0, 0})
	f.Add([]byte{3, 7, 255, 0x7f, 0xff, 0x80, 0x00, 0x7f, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 3 {
			return
		}
		rate := []int{8000, 16000, 24000, 48000}[b[0]%4]
		frame := 1 + int(b[1])*rate/8000
		s := NewShrinker(rate, frame)
		want := int(b[2]) * rate / 8000
		b = b[3:]
		var dst []int16
		for len(b) >= 2 {
			n := min(int(b[0])*rate/4000+int(b[1])%7, len(b)/2)
			src := make([]int16, n)
			for i := range src {
				src[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
			}
			b = b[max(2*n, 2):]
			before := len(dst)
			var removed int
			dst, removed = s.Shrink(dst, src, want)
			if removed < 0 || removed > min(want, n) || len(dst)-before != n-removed {
				t.Fatalf("%d samples, want %d: removed %d, returned %d", n, want, removed, len(dst)-before)
			}
		}
	})
}

// The cost of a 20 ms frame of speech while shrinking, at each rate.
func BenchmarkShrink(b *testing.B) {
	for _, rate := range []int{8000, 16000, 48000} {
		b.Run(strconv.Itoa(rate), func(b *testing.B) {
			speech := loadSpeech(b, rate)
			frame := rate / 50
			s := NewShrinker(rate, frame)
			out := make([]int16, 0, frame)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				if i+frame > len(speech) {
					i = 0
				}
				out, _ = s.Shrink(out[:0], speech[i:i+frame], frame/2)
				i += frame
			}
		})
	}
}
