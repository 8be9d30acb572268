package audio

import "fmt"

// G.722 (ITU-T, 64 kbit/s mode): 16 kHz audio split by a 24-tap QMF into a
// low band coded with 6-bit ADPCM and a high band with 2-bit ADPCM, one byte
// per pair of samples. The arithmetic follows the ITU reference as the
// widely deployed spandsp implementation does, so voxgate interoperates
// bit for bit with desk phones. On the wire the RTP clock is 8000 although
// the audio is sampled at 16000 (RFC 3551, an old mistake kept for
// compatibility): 20 ms is 160 bytes and 160 timestamp units.

// G722Rate is the sample rate of G.722's PCM.
const G722Rate = 16000

var (
	g722wl   = [8]int{-60, -30, 58, 172, 334, 538, 1198, 3042}
	g722rl42 = [16]int{0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0}
	g722ilb  = [32]int{
		2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
		2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
	}
	g722wh  = [3]int{0, -214, 798}
	g722rh2 = [4]int{2, 1, 2, 1}
	g722qm2 = [4]int{-7408, -1616, 7408, 1616}
	g722qm4 = [16]int{0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0}
	g722qm6 = [64]int{
		-136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576, -7856,
		-7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728,
		24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
		4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
	}
	// Half of the symmetric QMF (the other half is these reversed), scaled by 2^13.
	g722qmf = [12]int{3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11}
	// Encoder: low-band decision levels and the codes for each interval.
	g722q6  = [32]int{0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0}
	g722iln = [32]int{0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 0}
	g722ilp = [32]int{0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 0}
	g722ihn = [3]int{0, 1, 0}
	g722ihp = [3]int{0, 3, 2}
)

func sat16(v int) int {
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return v
}

// g722Band is one sub-band's adaptive predictor and quantizer scale.
type g722Band struct {
	s, sp, sz int
	r, a, ap  [3]int
	p         [3]int
	d, b, bp  [7]int
	sg        [7]int
	nb, det   int
}

// adapt runs the predictor update (the ITU's block 4) with the quantized
// difference d.
func (b *g722Band) adapt(d int) {
	b.d[0] = d
	b.r[0] = sat16(b.s + d)
	b.p[0] = sat16(b.sz + d)
	// UPPOL2: the second pole.
	for i := 0; i < 3; i++ {
		b.sg[i] = b.p[i] >> 15
	}
	wd1 := sat16(b.a[1] << 2)
	wd2 := wd1
	if b.sg[0] == b.sg[1] {
		wd2 = -wd1
	}
	wd2 = min(wd2, 32767)
	wd3 := wd2 >> 7
	if b.sg[0] == b.sg[2] {
		wd3 += 128
	} else {
		wd3 -= 128
	}
	wd3 += (b.a[2] * 32512) >> 15
	b.ap[2] = max(min(wd3, 12288), -12288)
	// UPPOL1: the first pole, kept inside the stability triangle.
	b.sg[0], b.sg[1] = b.p[0]>>15, b.p[1]>>15
	wd1 = -192
	if b.sg[0] == b.sg[1] {
		wd1 = 192
	}
	b.ap[1] = sat16(wd1 + (b.a[1]*32640)>>15)
	lim := sat16(15360 - b.ap[2])
	b.ap[1] = max(min(b.ap[1], lim), -lim)
	// UPZERO: the six zeros.
	step := 128
	if d == 0 {
		step = 0
	}
	b.sg[0] = d >> 15
	for i := 1; i < 7; i++ {
		b.sg[i] = b.d[i] >> 15
		w := -step
		if b.sg[i] == b.sg[0] {
			w = step
		}
		b.bp[i] = sat16(w + (b.b[i]*32640)>>15)
	}
	// DELAYA
	for i := 6; i > 0; i-- {
		b.d[i] = b.d[i-1]
		b.b[i] = b.bp[i]
	}
	for i := 2; i > 0; i-- {
		b.r[i] = b.r[i-1]
		b.p[i] = b.p[i-1]
		b.a[i] = b.ap[i]
	}
	// FILTEP, FILTEZ, PREDIC
	b.sp = sat16((b.a[1]*sat16(b.r[1]+b.r[1]))>>15 + (b.a[2]*sat16(b.r[2]+b.r[2]))>>15)
	sz := 0
	for i := 6; i > 0; i-- {
		sz += (b.b[i] * sat16(b.d[i]+b.d[i])) >> 15
	}
	b.sz = sat16(sz)
	b.s = sat16(b.sp + b.sz)
}

// scale updates the quantizer scale from a log-scale step (LOGSCL/LOGSCH
// and SCALEL/SCALEH); shift is 8 for the low band, 10 for the high band.
func (b *g722Band) scale(w, limit, shift int) {
	nb := (b.nb*127)>>7 + w
	b.nb = max(min(nb, limit), 0)
	i := (b.nb >> 6) & 31
	sh := shift - (b.nb >> 11)
	var v int
	if sh < 0 {
		v = g722ilb[i] << -sh
	} else {
		v = g722ilb[i] >> sh
	}
	b.det = v << 2
}

func (b *g722Band) lowStep(ilow int) {
	ril := ilow >> 2
	dlow := (b.det * g722qm4[ril]) >> 15
	b.scale(g722wl[g722rl42[ril]], 18432, 8)
	b.adapt(dlow)
}

// highStep decodes (or re-tracks) a high-band code and returns its
// reconstructed sample.
func (b *g722Band) highStep(ihigh int) int {
	dhigh := (b.det * g722qm2[ihigh]) >> 15
	rhigh := max(min(dhigh+b.s, 16383), -16384)
	b.scale(g722wh[g722rh2[ihigh]], 22528, 10)
	b.adapt(dhigh)
	return rhigh
}

// qmf shifts two samples into the 24-tap delay line x and returns the two
// polyphase sums of the QMF (the same filter analyses and synthesises).
func qmf(x *[24]int, a, b int) (even, odd int) {
	copy(x[:22], x[2:])
	x[22], x[23] = a, b
	for i := 0; i < 12; i++ {
		even += x[2*i] * g722qmf[i]
		odd += x[2*i+1] * g722qmf[11-i]
	}
	return even, odd
}

// G722Encoder encodes 16 kHz PCM. Its state carries over between calls, so
// one encoder serves one stream.
type G722Encoder struct {
	band [2]g722Band
	x    [24]int
}

// NewG722Encoder returns an encoder in its initial state.
func NewG722Encoder() *G722Encoder {
	e := &G722Encoder{}
	e.band[0].det, e.band[1].det = 32, 8
	return e
}

// Encode appends one byte per two samples of pcm (an odd last sample is
// ignored) to dst.
func (e *G722Encoder) Encode(dst []byte, pcm []int16) []byte {
	for j := 0; j+1 < len(pcm); j += 2 {
		a, b := qmf(&e.x, int(pcm[j]), int(pcm[j+1]))
		xlow, xhigh := (b+a)>>14, (b-a)>>14

		lo := &e.band[0]
		el := sat16(xlow - lo.s)
		wd := el
		if el < 0 {
			wd = -(el + 1)
		}
		i := 1
		for ; i < 30; i++ {
			if wd < (g722q6[i]*lo.det)>>12 {
				break
			}
		}
		ilow := g722ilp[i]
		if el < 0 {
			ilow = g722iln[i]
		}
		lo.lowStep(ilow)

		hi := &e.band[1]
		eh := sat16(xhigh - hi.s)
		wd = eh
		if eh < 0 {
			wd = -(eh + 1)
		}
		mih := 1
		if wd >= (564*hi.det)>>12 {
			mih = 2
		}
		ihigh := g722ihp[mih]
		if eh < 0 {
			ihigh = g722ihn[mih]
		}
		hi.highStep(ihigh)
		dst = append(dst, byte(ihigh<<6|ilow))
	}
	return dst
}

// G722Decoder decodes to 16 kHz PCM.
type G722Decoder struct {
	band [2]g722Band
	x    [24]int
}

// NewG722Decoder returns a decoder in its initial state.
func NewG722Decoder() *G722Decoder {
	d := &G722Decoder{}
	d.band[0].det, d.band[1].det = 32, 8
	return d
}

// Decode appends two samples per byte of payload to dst.
func (d *G722Decoder) Decode(dst []int16, payload []byte) []int16 {
	for _, code := range payload {
		ilow, ihigh := int(code&0x3f), int(code>>6)
		lo := &d.band[0]
		rlow := max(min(lo.s+(lo.det*g722qm6[ilow])>>15, 16383), -16384)
		lo.lowStep(ilow)
		rhigh := d.band[1].highStep(ihigh)

		out2, out1 := qmf(&d.x, rlow+rhigh, rlow-rhigh)
		dst = append(dst, int16(sat16(out1>>11)), int16(sat16(out2>>11)))
	}
	return dst
}

func init() {
	// The RTP clock is 8000 although the audio is sampled at 16 kHz (RFC 3551).
	RegisterCodec(CodecInfo{Name: "G722", PayloadType: 9, Rate: 8000, PCMRate: G722Rate,
		NewEncoder: func(int) (CodecEncoder, error) { return g722Encoder{NewG722Encoder()}, nil },
		NewDecoder: func(int) (CodecDecoder, error) {
			return newPLCDecoder("G.722", G722Rate, NewG722Decoder().Decode), nil
		},
	})
}

// g722Encoder is a G722Encoder as a CodecEncoder.
type g722Encoder struct{ e *G722Encoder }

func (e g722Encoder) Encode(dst []byte, pcm []int16) ([]byte, error) {
	return e.e.Encode(dst, pcm), nil
}
func (e g722Encoder) Rate() int { return G722Rate }

// CopyStateFrom implements StateCopier: the ADPCM state is plain values.
func (e g722Encoder) CopyStateFrom(src CodecEncoder) error {
	s, ok := src.(g722Encoder)
	if !ok {
		return fmt.Errorf("%w: %s into G.722", ErrStateCopy, src)
	}
	*e.e = *s.e
	return nil
}
func (e g722Encoder) String() string { return "G.722" }
