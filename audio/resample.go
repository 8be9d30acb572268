package audio

import (
	"cmp"
	"fmt"
	"slices"
)

//go:generate go run gen_resample.go

// Resampler converts mono PCM between 8, 16, 24 and 48 kHz with a rational
// polyphase FIR filter (up by L, filter, down by M). It keeps its history
// between frames, so consecutive frames join without clicks, and its delay
// is constant. It allocates only in NewResampler (and in Process only if a
// frame is longer than NewResampler's maxIn).
//
// The filters (resample_fir.go, designed by gen_resample.go) are minimax
// low-passes (the stopband falls slowly with frequency) relative to the
// lower rate lo of the pair: flat within ±0.32 dB up to 0.425*lo (3.4 kHz
// at 8 kHz) and at least 74.5 dB down from 0.575*lo (4.6 kHz) on. Everything that would alias or image into the passband is
// in the stopband; only the band 0.5*lo .. 0.575*lo folds, onto
// 0.425*lo .. 0.5*lo, above the passband. An upsampler uses resampleTaps
// taps per output, a downsampler resampleTaps*hi/lo.
type Resampler struct {
	in, out int
	l, m    int
	k       int       // taps per output (per polyphase branch)
	coeffs  []float32 // l branches x k, each reversed for a forward dot product
	folded  []float32 // integer upsampling: branch pairs folded (see interpolate)
	hist    []float32 // the last k-1 input samples, then the current frame
	phase   int       // position of the next output in the upsampled domain, past the frame's start
	delay   int
}

// The unrolled dot product is written for 20 taps.
const (
	_ = uint(resampleTaps - 20)
	_ = uint(20 - resampleTaps)
)

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
	if r.l == r.m {
		return r, nil
	}
	lo, hi := min(in, out), max(in, out)
	half := resampleFIR[[2]int{lo, hi}]
	n := 2 * len(half) // the prototype, at in*l = lcm(in, out)
	r.k = n / r.l
	// The prototype delays by (n-1)/2 samples at in*l: resampleTaps/2 at
	// the lower rate less half a sample at the prototype's rate. Delay
	// rounds to whole input samples.
	r.delay = resampleTaps / 2 * in / lo
	r.hist = make([]float32, r.k-1, r.k-1+maxIn)
	// Branch p holds taps p, p+L, p+2L, ... with gain L; it is stored
	// reversed so that output = sum(coeff[j] * x[oldest+j]).
	r.coeffs = make([]float32, n)
	proto := func(i int) float64 {
		if i >= n/2 {
			i = n - 1 - i
		}
		return half[i]
	}
	for p := 0; p < r.l; p++ {
		for j := 0; j < r.k; j++ {
			r.coeffs[p*r.k+r.k-1-j] = float32(proto(p+j*r.l) * float64(r.l))
		}
	}
	if r.m == 1 {
		r.fold()
	}
	return r, nil
}

// fold prepares interpolate's coefficients. Branch l-1-p is branch p
// reversed (the prototype is symmetric), so with the window's folded sums
// s[j] = x[j]+x[19-j] and differences d[j] = x[j]-x[19-j] the two outputs
// are (S+D) and (S-D) for S = sum e[j]*s[j], D = sum o[j]*d[j], where e and
// o are the halved even and odd parts of branch p: 20 multiplications for
// two outputs instead of 40. For odd l the middle branch is its own mirror
// (o = 0). Layout: per pair e[10], o[10]; then the middle branch's e[10].
func (r *Resampler) fold() {
	const k, h = resampleTaps, resampleTaps / 2
	r.folded = make([]float32, 0, (r.l+1)/2*2*h)
	for p := 0; p < r.l/2; p++ {
		c := r.coeffs[p*k : p*k+k]
		for j := 0; j < h; j++ {
			r.folded = append(r.folded, (c[j]+c[k-1-j])/2)
		}
		for j := 0; j < h; j++ {
			r.folded = append(r.folded, (c[j]-c[k-1-j])/2)
		}
	}
	if r.l%2 == 1 {
		c := r.coeffs[r.l/2*k:]
		for j := 0; j < h; j++ {
			r.folded = append(r.folded, c[j]) // c[j] == c[k-1-j]; s counts both
		}
	}
}

// Delay is the resampler's constant delay in input samples (rounded: the
// exact figure is half an upsampled sample less).
func (r *Resampler) Delay() int { return r.delay }

// OutLen returns how many samples Process produces for n input samples
// when n is a whole multiple of the rate ratio (any 10, 20, 40 or 60 ms frame).
func (r *Resampler) OutLen(n int) int { return n * r.l / r.m }

// Process resamples src and appends the result to dst.
func (r *Resampler) Process(dst []int16, src []int16) []int16 {
	if r.l == r.m {
		return append(dst, src...)
	}
	h := r.hist
	keep := len(h)
	if keep+len(src) > cap(h) {
		h = slices.Grow(h, len(src))
	}
	h = h[:keep+len(src)]
	fresh := h[keep:]
	fresh = fresh[:len(src)]
	for i, v := range src {
		fresh[i] = float32(v)
	}
	total := len(src) * r.l // upsampled positions in this frame
	nout := 0
	if total > r.phase {
		nout = (total - r.phase + r.m - 1) / r.m
	}
	dst = slices.Grow(dst, nout)
	o := dst[len(dst) : len(dst)+nout]
	switch {
	case r.m == 1:
		r.interpolate(o, h)
	case r.l == 1:
		r.decimate(o, h)
	default:
		r.rational(o, h)
	}
	r.phase += nout*r.m - total
	// Keep the last k-1 inputs as history for the next frame.
	copy(h, h[len(h)-keep:])
	r.hist = h[:keep]
	return dst[:len(dst)+nout]
}

// interpolate is Process for an integer upsampling ratio (m = 1): each
// input sample starts l outputs, one per branch, each a 20-tap dot product,
// computed in pairs of mirrored branches (see fold).
func (r *Resampler) interpolate(o []int16, h []float32) {
	l := r.l
	pairs := r.folded[:l/2*2*resampleTaps/2]
	var mid *[10]float32
	if l%2 == 1 {
		mid = (*[10]float32)(r.folded[len(pairs):])
	}
	for i := 0; i+resampleTaps <= len(h) && len(o) >= l; i++ {
		x := (*[resampleTaps]float32)(h[i : i+resampleTaps])
		out := o[:l]
		c := pairs
		for p := 0; len(c) >= 20; p++ {
			sum, dif := foldPair((*[10]float32)(c), (*[10]float32)(c[10:]), x)
			out[p] = toPCM(sum + dif)
			out[l-1-p] = toPCM(sum - dif)
			c = c[20:]
		}
		if mid != nil {
			sum, _ := foldPair(mid, &zero10, x)
			out[l/2] = toPCM(sum)
		}
		o = o[l:]
	}
}

var zero10 [10]float32

// foldPair returns sum(e[j]*(x[j]+x[19-j])) and sum(o[j]*(x[j]-x[19-j])).
func foldPair(e, o *[10]float32, x *[20]float32) (sum, dif float32) {
	sum = ((e[0]*(x[0]+x[19]) + e[1]*(x[1]+x[18])) + (e[2]*(x[2]+x[17]) + e[3]*(x[3]+x[16]))) +
		((e[4]*(x[4]+x[15]) + e[5]*(x[5]+x[14])) + (e[6]*(x[6]+x[13]) + e[7]*(x[7]+x[12]))) +
		(e[8]*(x[8]+x[11]) + e[9]*(x[9]+x[10]))
	dif = ((o[0]*(x[0]-x[19]) + o[1]*(x[1]-x[18])) + (o[2]*(x[2]-x[17]) + o[3]*(x[3]-x[16]))) +
		((o[4]*(x[4]-x[15]) + o[5]*(x[5]-x[14])) + (o[6]*(x[6]-x[13]) + o[7]*(x[7]-x[12]))) +
		(o[8]*(x[8]-x[11]) + o[9]*(x[9]-x[10]))
	return sum, dif
}

// decimate is Process for an integer downsampling ratio (l = 1): every m-th
// input sample ends the window of an output. The one branch is symmetric,
// so pairs of samples share a multiplication; its length, resampleTaps*m,
// is a multiple of 20.
func (r *Resampler) decimate(o []int16, h []float32) {
	k, m := r.k, r.m
	c := r.coeffs[:k/2]
	idx := r.phase
	for j := range o {
		o[j] = toPCM(foldDot(c, h[idx:idx+k]))
		idx += m
	}
}

// rational is Process for the other ratios (16 <-> 24 kHz).
func (r *Resampler) rational(o []int16, h []float32) {
	k, l, m := r.k, r.l, r.m
	idx, p := r.phase/l, r.phase%l
	for j := range o {
		c, x := r.coeffs[p*k:p*k+k], h[idx:idx+k]
		switch k {
		case resampleTaps: // 16 -> 24 kHz
			o[j] = toPCM(dot20((*[20]float32)(c), (*[20]float32)(x)))
		case resampleTaps * 3 / 2: // 24 -> 16 kHz
			o[j] = toPCM(dot30((*[30]float32)(c), (*[30]float32)(x)))
		default:
			o[j] = toPCM(dot(c, x))
		}
		p += m
		for p >= l {
			p -= l
			idx++
		}
	}
}

// dot20 returns the dot product of two 20-sample vectors.
func dot20(c, x *[20]float32) float32 {
	a0 := c[0]*x[0] + c[4]*x[4] + c[8]*x[8] + c[12]*x[12] + c[16]*x[16]
	a1 := c[1]*x[1] + c[5]*x[5] + c[9]*x[9] + c[13]*x[13] + c[17]*x[17]
	a2 := c[2]*x[2] + c[6]*x[6] + c[10]*x[10] + c[14]*x[14] + c[18]*x[18]
	a3 := c[3]*x[3] + c[7]*x[7] + c[11]*x[11] + c[15]*x[15] + c[19]*x[19]
	return (a0 + a1) + (a2 + a3)
}

// dot30 returns the dot product of two 30-sample vectors.
func dot30(c, x *[30]float32) float32 {
	a0 := c[0]*x[0] + c[4]*x[4] + c[8]*x[8] + c[12]*x[12] + c[16]*x[16] + c[20]*x[20] + c[24]*x[24] + c[28]*x[28]
	a1 := c[1]*x[1] + c[5]*x[5] + c[9]*x[9] + c[13]*x[13] + c[17]*x[17] + c[21]*x[21] + c[25]*x[25] + c[29]*x[29]
	a2 := c[2]*x[2] + c[6]*x[6] + c[10]*x[10] + c[14]*x[14] + c[18]*x[18] + c[22]*x[22] + c[26]*x[26]
	a3 := c[3]*x[3] + c[7]*x[7] + c[11]*x[11] + c[15]*x[15] + c[19]*x[19] + c[23]*x[23] + c[27]*x[27]
	return (a0 + a1) + (a2 + a3)
}

// dot returns the dot product of c and x[:len(c)].
func dot(c, x []float32) float32 {
	x = x[:len(c)]
	var a0, a1, a2, a3 float32
	for len(c) >= 4 && len(x) >= 4 {
		a0 += c[0] * x[0]
		a1 += c[1] * x[1]
		a2 += c[2] * x[2]
		a3 += c[3] * x[3]
		c, x = c[4:], x[4:]
	}
	for i := range c {
		a0 += c[i] * x[i]
	}
	return (a0 + a1) + (a2 + a3)
}

// foldDot returns the dot product of x with the symmetric filter whose first
// half is c (len(x) = 2*len(c), len(c) a multiple of 10): x[i] and its
// mirror x[len(x)-1-i] share c[i].
func foldDot(c, x []float32) float32 {
	n := len(c)
	a, b := x[:n], x[n:2*n] // b is read backwards
	var acc float32
	for len(c) >= 10 && len(a) >= 10 && len(b) >= 10 {
		cc := (*[10]float32)(c)
		u := (*[10]float32)(a)
		v := (*[10]float32)(b[len(b)-10:])
		acc += ((cc[0]*(u[0]+v[9]) + cc[1]*(u[1]+v[8])) + (cc[2]*(u[2]+v[7]) + cc[3]*(u[3]+v[6]))) +
			((cc[4]*(u[4]+v[5]) + cc[5]*(u[5]+v[4])) + (cc[6]*(u[6]+v[3]) + cc[7]*(u[7]+v[2]))) +
			(cc[8]*(u[8]+v[1]) + cc[9]*(u[9]+v[0]))
		c, a, b = c[10:], a[10:], b[:len(b)-10]
	}
	return acc
}

// toPCM rounds v to the nearest int16, saturating. |v| stays far below
// 2^31 (int16 input through a filter whose taps add up to a few units), so
// the conversion to int32 is exact before the clamp.
func toPCM(v float32) int16 {
	i := int32(v + 32768.5) // truncation rounds: v+32768.5 >= 0 unless it is clamped to 0 anyway
	return int16(min(max(i, 0), 65535) - 32768)
}

// Reset forgets the history (for a new stream).
func (r *Resampler) Reset() {
	r.hist = r.hist[:max(r.k-1, 0)]
	clear(r.hist)
	r.phase = 0
}

// Prime sets the history as if the input so far had been prev, a signal at
// rate, which divides the input rate: zero-stuffed up to the input rate with
// the matching gain. The filter removes the images that leaves when rate is
// the lower of its two (a resampler down to 8 kHz primed with 8 kHz audio);
// else prev must be at the input rate. A resampler
// that takes over a stream mid-way (a room that changes its mixing rate)
// then continues it without a fade-in. Without prev it is Reset.
func (r *Resampler) Prime(prev []int16, rate int) {
	r.Reset()
	if r.l == r.m || rate <= 0 || r.in%rate != 0 {
		return
	}
	up := r.in / rate
	h := r.hist
	total := len(prev) * up // prev's length at the input rate
	for j := range h {
		idx := total - len(h) + j
		if idx >= 0 && idx%up == 0 {
			h[j] = float32(prev[idx/up]) * float32(up)
		}
	}
}

// CopyStateFrom makes r continue from src's history, a resampler between
// the same rates (one stream moving from one resampler to another).
func (r *Resampler) CopyStateFrom(src *Resampler) {
	if r.in != src.in || r.out != src.out {
		return
	}
	r.hist = append(r.hist[:0], src.hist...)
	r.phase = src.phase
}
