package audio

import "math"

// Tone generates a sine wave frame by frame without phase jumps.
type Tone struct {
	Rate  int
	Freq  float64
	Level float64 // peak amplitude, 0..1 of full scale
	phase float64
}

// Fill writes the next len(dst) samples of the tone into dst.
func (t *Tone) Fill(dst []int16) {
	step := 2 * math.Pi * t.Freq / float64(t.Rate)
	amp := t.Level * 32767
	for i := range dst {
		dst[i] = int16(amp * math.Sin(t.phase))
		t.phase += step
		if t.phase > 2*math.Pi {
			t.phase -= 2 * math.Pi
		}
	}
}

// Goertzel returns the power of freq in pcm, normalised so that a full-scale
// sine at freq gives about 0.25 and silence gives 0. It is the single-bin DFT
// used for tone and DTMF detection.
func Goertzel(pcm []int16, rate int, freq float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range pcm {
		s := float64(x)/32768 + coeff*s1 - s2
		s2, s1 = s1, s
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	n := float64(len(pcm))
	return p / (n * n)
}

// Energy returns the mean square of pcm, normalised to full scale (a
// full-scale sine gives 0.5).
func Energy(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var e float64
	for _, x := range pcm {
		f := float64(x) / 32768
		e += f * f
	}
	return e / float64(len(pcm))
}

// ToneSeconds counts, over 20 ms windows, how many seconds of pcm carry freq
// as its dominant content: the bin power must hold at least share of the
// window's energy (a pure tone gives about 0.5; use 0.2 for a robust test).
func ToneSeconds(pcm []int16, rate int, freq, share float64) float64 {
	win := SamplesPer(rate, DefaultPtime)
	if win == 0 {
		return 0
	}
	var n int
	for off := 0; off+win <= len(pcm); off += win {
		w := pcm[off : off+win]
		e := Energy(w)
		if e < 1e-5 {
			continue
		}
		if Goertzel(w, rate, freq) >= share*e {
			n++
		}
	}
	return float64(n) * DefaultPtime.Seconds()
}

// Silence fills dst with zeros.
func Silence(dst []int16) { clear(dst) }

// ComfortNoise generates low-level white noise, so that a listener can tell
// a silent line from a dead one. It allocates nothing.
type ComfortNoise struct {
	// Level is the RMS level in dBFS (for example -60).
	Level float64
	state uint64
}

// Fill writes the next len(dst) samples of noise.
func (n *ComfortNoise) Fill(dst []int16) {
	if n.state == 0 {
		n.state = 0x9E3779B97F4A7C15
	}
	// Uniform noise in [-a, a] has an RMS of a/sqrt(3).
	a := math.Pow(10, n.Level/20) * 32767 * math.Sqrt(3)
	for i := range dst {
		n.state ^= n.state << 13
		n.state ^= n.state >> 7
		n.state ^= n.state << 17
		u := float64(n.state>>11)/float64(1<<53)*2 - 1
		dst[i] = int16(u * a)
	}
}

// SineFit returns the power of the best-fitting sine at freq (least
// squares, with a DC term) and the power of everything else in pcm: a
// signal-to-noise measure for a test tone through a codec or resampler.
func SineFit(pcm []int16, rate int, freq float64) (signal, residual float64) {
	var ss, cc, sc, sy, cy, n float64
	var mean float64
	for _, v := range pcm {
		mean += float64(v)
	}
	mean /= float64(len(pcm))
	for i, v := range pcm {
		w := 2 * math.Pi * freq * float64(i) / float64(rate)
		s, c := math.Sin(w), math.Cos(w)
		y := float64(v) - mean
		ss += s * s
		cc += c * c
		sc += s * c
		sy += s * y
		cy += c * y
		n++
	}
	det := ss*cc - sc*sc
	a := (sy*cc - cy*sc) / det
	b := (cy*ss - sy*sc) / det
	for i, v := range pcm {
		w := 2 * math.Pi * freq * float64(i) / float64(rate)
		fit := a*math.Sin(w) + b*math.Cos(w)
		d := float64(v) - mean - fit
		signal += fit * fit
		residual += d * d
	}
	return signal / n, residual / n
}
