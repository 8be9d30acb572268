package audio

import (
	"math"
	"slices"
)

// PLC conceals lost frames of a waveform codec (G.711) in the spirit of
// ITU-T G.711 Appendix I: the last pitch period is repeated (one period, then
// two, then three, so a long loss does not buzz), joined with an overlap-add,
// silent for the first 10 ms of fade and then attenuated by 20 % per 10 ms
// until it is silent after 60 ms; the first good frame after a loss is
// cross-faded with the concealment's continuation. It works at any rate and
// allocates only in NewPLC.
type PLC struct {
	rate           int
	minPitch, maxP int
	hist           []int16   // the most recent history, newest last
	cycle          []float32 // the repeated periods
	pitch          int
	pos            int // read position in cycle
	periods        int // periods in cycle (1..3)
	lostSamples    int // samples concealed in this loss
	tail           []float32
	olaLen         int
	inLoss         bool
}

// NewPLC returns a concealer for mono PCM at rate.
func NewPLC(rate int) *PLC {
	maxP := rate * 15 / 1000 // 66.7 Hz
	p := &PLC{rate: rate, minPitch: rate * 25 / 10000, maxP: maxP}
	p.hist = make([]int16, 0, 3*maxP+rate/100)
	p.cycle = make([]float32, 3*maxP)
	p.tail = make([]float32, maxP)
	return p
}

// Good records a correctly received frame; after a loss it cross-fades the
// frame's start with the concealment, in place.
func (p *PLC) Good(frame []int16) {
	if p.inLoss {
		n := min(p.olaLen+p.rate*p.lostSamples/p.rate/10, len(frame), len(p.tail))
		n = min(max(n, p.olaLen), len(frame))
		for i := 0; i < n; i++ {
			w := float32(i+1) / float32(n+1)
			v := float32(frame[i])*w + p.next()*(1-w)
			frame[i] = clip16(v)
		}
		p.inLoss = false
		p.lostSamples = 0
	}
	p.push(frame)
}

func (p *PLC) push(frame []int16) {
	keep := cap(p.hist) - len(frame)
	if keep < 0 {
		frame = frame[len(frame)-cap(p.hist):]
		keep = 0
	}
	if len(p.hist) > keep {
		n := copy(p.hist, p.hist[len(p.hist)-keep:])
		p.hist = p.hist[:n]
	}
	p.hist = append(p.hist, frame...)
}

// Conceal fills dst with a synthetic continuation.
func (p *PLC) Conceal(dst []int16) {
	if !p.inLoss {
		p.start()
	}
	fadeStart := p.rate / 100 // 10 ms
	silentAt := p.rate * 6 / 100
	for i := range dst {
		g := float32(1)
		if t := p.lostSamples - fadeStart; t > 0 {
			g = 1 - float32(t)/float32(silentAt-fadeStart)
		}
		if g <= 0 || p.pitch == 0 {
			dst[i] = 0
		} else {
			dst[i] = clip16(p.next() * g)
		}
		p.lostSamples++
		// Widen the repeated segment to two, then three periods after 10
		// and 20 ms (G.711 Appendix I), reducing the buzz of one period.
		if p.pitch > 0 && p.pos == 0 && p.periods < 3 && p.lostSamples >= p.periods*fadeStart {
			p.periods++
			p.fillCycle()
		}
	}
	p.push(dst)
}

func (p *PLC) next() float32 {
	if p.pitch == 0 {
		return 0
	}
	n := p.pitch * p.periods
	v := p.cycle[p.pos]
	p.pos++
	if p.pos >= n {
		p.pos = 0
	}
	return v
}

// start begins a loss: estimate the pitch and build the first cycle.
func (p *PLC) start() {
	p.inLoss = true
	p.lostSamples = 0
	p.periods = 1
	p.pitch = p.estimatePitch()
	p.olaLen = max(p.pitch/4, 1)
	if p.pitch == 0 {
		return
	}
	p.fillCycle()
}

// fillCycle copies the last p.periods pitch periods of history into cycle,
// with the join from the end of one period back to its start smoothed.
func (p *PLC) fillCycle() {
	n := p.pitch * p.periods
	if n > len(p.hist) {
		p.periods = max(1, len(p.hist)/p.pitch)
		n = p.pitch * p.periods
	}
	h := p.hist[len(p.hist)-n:]
	for i, v := range h {
		p.cycle[i] = float32(v)
	}
	// Overlap-add the samples before the segment onto its end, so the
	// wrap from the last sample back to the first is continuous.
	ola := min(p.olaLen, len(p.hist)-n)
	for i := 0; i < ola; i++ {
		w := float32(i+1) / float32(ola+1)
		before := float32(p.hist[len(p.hist)-n-ola+i])
		j := n - ola + i
		p.cycle[j] = p.cycle[j]*w + before*(1-w)
	}
	p.pos = 0
}

// estimatePitch finds the lag (2.5 to 15 ms) with the highest normalised
// autocorrelation over the last 20 ms; 0 when there is too little history
// or nothing periodic.
func (p *PLC) estimatePitch() int {
	win := p.rate / 50
	if len(p.hist) < win+p.maxP {
		if len(p.hist) >= 2*p.minPitch {
			return min(len(p.hist)/2, p.maxP)
		}
		return 0
	}
	x := p.hist[len(p.hist)-win:]
	best, bestLag := -1.0, 0
	for lag := p.minPitch; lag <= p.maxP; lag++ {
		y := p.hist[len(p.hist)-win-lag : len(p.hist)-lag]
		var xy, yy float64
		for i := range x {
			xy += float64(x[i]) * float64(y[i])
			yy += float64(y[i]) * float64(y[i])
		}
		if yy == 0 {
			continue
		}
		c := xy / math.Sqrt(yy)
		if c > best {
			best, bestLag = c, lag
		}
	}
	if bestLag == 0 {
		return p.maxP
	}
	return bestLag
}

func clip16(v float32) int16 {
	switch {
	case v > 32767:
		return 32767
	case v < -32768:
		return -32768
	}
	return int16(v)
}

// plcDecoder is a waveform codec's decoder (G.711, G.722) with the
// pitch-repeating concealment that suits it.
type plcDecoder struct {
	dec  func(dst []int16, payload []byte) []int16
	plc  *PLC
	rate int
	name string
}

var _ CodecDecoder = (*plcDecoder)(nil)

func newPLCDecoder(name string, rate int, dec func(dst []int16, payload []byte) []int16) *plcDecoder {
	return &plcDecoder{dec: dec, plc: NewPLC(rate), rate: rate, name: name}
}

// Decode implements Decoder, and remembers the audio for concealment.
func (d *plcDecoder) Decode(dst []int16, payload []byte) ([]int16, error) {
	n := len(dst)
	dst = d.dec(dst, payload)
	d.plc.Good(dst[n:])
	return dst, nil
}

// Conceal implements CodecDecoder.
func (d *plcDecoder) Conceal(dst []int16, samples int) ([]int16, error) {
	n := len(dst)
	dst = slices.Grow(dst, samples)[:n+samples]
	d.plc.Conceal(dst[n:])
	return dst, nil
}

// Rate implements Decoder.
func (d *plcDecoder) Rate() int { return d.rate }

func (d *plcDecoder) String() string { return d.name + "+plc" }
