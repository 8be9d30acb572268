package audio

import (
	"cmp"
	"fmt"
	"math"
)

// resampleTaps sets the filter length: 24 taps per branch when upsampling
// (and 24 times the decimation factor when downsampling) give a
// Kaiser-windowed sinc with more than 70 dB of stopband attenuation and a
// transition band centred on the lower rate's Nyquist frequency.
const resampleTaps = 24

// Resampler converts mono PCM between 8, 16, 24 and 48 kHz with a rational
// polyphase FIR filter (up by L, filter, down by M). It keeps its history
// between frames, so consecutive frames join without clicks, and its delay
// is constant (half the filter, in input samples). It allocates only in
// NewResampler.
type Resampler struct {
	in, out int
	l, m    int
	k       int       // taps per polyphase branch
	coeffs  []float32 // l phases x resampleTaps, each phase reversed for a forward dot product
	hist    []float32 // the last k-1 input samples, then the current frame
	phase   int       // position of the next output in the upsampled domain, modulo m's carry
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// NewResampler returns a resampler from rate in to rate out (both mixing
// rates, or the error wraps ErrRate) for frames of up to maxIn input samples.
func NewResampler(in, out, maxIn int) (*Resampler, error) {
	if err := cmp.Or(CheckMixRate(in), CheckMixRate(out)); err != nil {
		return nil, fmt.Errorf("resampler %d -> %d: %w", in, out, err)
	}
	g := gcd(in, out)
	r := &Resampler{in: in, out: out, l: out / g, m: in / g}
	r.k = (resampleTaps*max(r.l, r.m)/r.l + 3) &^ 3
	r.hist = make([]float32, r.k-1, r.k-1+maxIn)
	r.design()
	return r, nil
}

// design computes a Kaiser-windowed sinc low-pass at the upsampled rate
// in*L, cut off at the lower rate's Nyquist frequency, with gain L.
func (r *Resampler) design() {
	n := r.l * r.k
	fs := float64(r.in * r.l)
	fc := 0.5 * float64(min(r.in, r.out)) / fs // cycles per upsampled sample
	const beta = 7.0                           // Kaiser beta for about 70 dB of stopband
	h := make([]float64, n)
	center := float64(n-1) / 2
	i0b := besselI0(beta)
	for i := range h {
		x := float64(i) - center
		sinc := 2 * fc
		if x != 0 {
			sinc = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		w := besselI0(beta*math.Sqrt(1-(x/center)*(x/center))) / i0b
		h[i] = sinc * w * float64(r.l)
	}
	// Branch p holds taps p, p+L, p+2L, ...; it is stored reversed so that
	// output = sum(coeff[j] * x[oldest+j]).
	r.coeffs = make([]float32, n)
	for p := 0; p < r.l; p++ {
		for k := 0; k < r.k; k++ {
			r.coeffs[p*r.k+r.k-1-k] = float32(h[p+k*r.l])
		}
	}
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

// Delay is the resampler's constant delay in input samples.
func (r *Resampler) Delay() int { return r.k / 2 }

// OutLen returns how many samples Process produces for n input samples
// when n is a whole multiple of the rate ratio (any 10, 20, 40 or 60 ms frame).
func (r *Resampler) OutLen(n int) int { return n * r.l / r.m }

// Process resamples src and appends the result to dst.
func (r *Resampler) Process(dst []int16, src []int16) []int16 {
	if r.l == r.m {
		return append(dst, src...)
	}
	h := r.hist
	for _, v := range src {
		h = append(h, float32(v))
	}
	total := len(src) * r.l // upsampled positions in this frame
	t := r.phase
	for ; t < total; t += r.m {
		idx := t / r.l // newest input sample used is h[idx+taps-1]
		p := t - idx*r.l
		c := r.coeffs[p*r.k : p*r.k+r.k]
		x := h[idx : idx+r.k]
		x = x[:len(c)]
		var acc0, acc1, acc2, acc3 float32
		for j := 0; j+3 < len(c); j += 4 {
			acc0 += c[j] * x[j]
			acc1 += c[j+1] * x[j+1]
			acc2 += c[j+2] * x[j+2]
			acc3 += c[j+3] * x[j+3]
		}
		acc := acc0 + acc1 + acc2 + acc3
		switch {
		case acc > 32767:
			acc = 32767
		case acc < -32768:
			acc = -32768
		}
		if acc >= 0 {
			dst = append(dst, int16(acc+0.5))
		} else {
			dst = append(dst, int16(acc-0.5))
		}
	}
	r.phase = t - total
	// Keep the last taps-1 inputs as history for the next frame.
	keep := copy(r.hist[:r.k-1], h[len(h)-(r.k-1):])
	r.hist = h[:keep]
	return dst
}

// Reset forgets the history (for a new stream).
func (r *Resampler) Reset() {
	r.hist = r.hist[:r.k-1]
	clear(r.hist)
	r.phase = 0
}
