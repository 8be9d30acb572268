package audio

import "math"

// Shrinker shortens PCM frame by frame without audible artefacts
// (time-scale compression), so a receiver that holds too much audio can
// catch up without dropping a whole packet:
//
//   - in silence or very low level audio (every 2.5 ms block below
//     -45 dBFS) it drops samples, joined with a 2 ms crossfade: most of
//     a frame can go;
//   - in voiced speech it removes whole pitch periods (the lag of highest
//     normalised autocorrelation, 2.5 to 16 ms) with an overlap-add
//     crossfade from one period into the next, so the waveform stays
//     continuous and the pitch unchanged: at most half of the audio goes
//     (a period longer than half a frame every other frame);
//   - anything else (unvoiced sounds, onsets) passes unchanged, because a
//     jump there would be heard.
//
// It keeps the tail of what it returned as the context for the next
// frame's pitch search. It works at any rate from 8 kHz (8, 16, 24 and
// 48 kHz are what voxgate uses) and allocates only in NewShrinker.
// It is not safe for concurrent use.
type Shrinker struct {
	frame          int // largest chunk processed at once
	minLag, maxLag int // pitch period search range
	win            int // correlation window
	hist           int // samples of past output kept in work
	block          int // quiet detection block
	quietFade      int // crossfade where samples are dropped in quiet
	minFade        int // shortest crossfade of a pitch period removal
	quietEnergy    int64
	dec            int // decimation factor of the coarse pitch search

	work   []int16   // past output (hist samples), then the chunk being shrunk
	coarse []float32 // work decimated by dec, for the coarse search
	corr   []float32 // normalised correlation per coarse lag
	// coarse holds work[:end] as it is now (no cut since it was made)
	coarseOK bool
	// credit is what voiced removals may still take: half of each chunk,
	// saved up to one longest period so a low voice (a period longer than
	// half a frame) loses a period every other frame.
	credit int

	quietCut, periodCut int64 // samples removed each way, for tests
}

const (
	// tsmVoiced is the normalised correlation at a lag above which a
	// period removal cannot be heard; below it the audio is left alone.
	tsmVoiced = 0.8
	// tsmQuietDBFS is the block level below which samples may simply be
	// dropped: comfort noise and the quiet between words.
	tsmQuietDBFS = -45
)

// NewShrinker returns a Shrinker for mono PCM at rate (at least 8000)
// taking frames of up to frame samples; longer inputs are processed in
// chunks of frame samples. It panics on other arguments, as a programming
// error.
func NewShrinker(rate, frame int) *Shrinker {
	if rate < 8000 || frame < 1 {
		panic("audio: NewShrinker needs a rate of at least 8000 and a positive frame")
	}
	s := &Shrinker{
		frame:     frame,
		minLag:    rate * 25 / 10000, // 400 Hz
		maxLag:    rate * 16 / 1000,  // 62.5 Hz
		win:       rate / 100,
		block:     rate / 400,
		quietFade: rate / 500,
		minFade:   rate / 400,
		dec:       rate / 8000,
	}
	s.hist = s.win
	lvl := 32768 * math.Pow(10, tsmQuietDBFS/20.0)
	s.quietEnergy = int64(lvl * lvl * float64(s.block))
	s.work = make([]int16, s.hist+frame)
	s.coarse = make([]float32, len(s.work)/s.dec+1)
	s.corr = make([]float32, s.maxLag/s.dec+2)
	return s
}

// Reset forgets the past output (after a resync or a pause): the next
// frame's pitch search starts from silence.
func (s *Shrinker) Reset() { clear(s.work[:s.hist]) }

// Shrink appends src to dst shortened by up to want samples and returns
// the extended slice and how many samples it removed (0 <= removed <=
// min(want, len(src))). src may alias dst's spare capacity, as when a
// decoder appended src to dst: src is copied before dst is written.
// Every frame of the stream should pass through Shrink, with want 0 when
// nothing is to go, so the pitch search sees the audio that was played.
func (s *Shrinker) Shrink(dst, src []int16, want int) (out []int16, removed int) {
	for len(src) > 0 {
		n := min(len(src), s.frame)
		var r int
		dst, r = s.chunk(dst, src[:n], max(want-removed, 0))
		removed += r
		src = src[n:]
	}
	return dst, removed
}

// chunk shrinks one chunk of at most s.frame samples.
func (s *Shrinker) chunk(dst, src []int16, want int) ([]int16, int) {
	n := len(src)
	copy(s.work[s.hist:], src)
	end := s.hist + n
	p := s.hist // nothing before p may change: it was played
	s.coarseOK = false
	s.credit = min(s.credit+n/2, max(n/2, s.maxLag))
	removed := 0
	voiced := true // a period may still be removed from this chunk
	for removed < want && p < end {
		if q := s.quietRun(p, end); q > s.quietFade {
			r := min(want-removed, q-s.quietFade)
			end = s.cut(p, r, s.quietFade, end)
			removed += r
			s.quietCut += int64(r)
			p += s.quietFade
			continue
		}
		lag, fade := 0, 0
		if voiced {
			lag, fade = s.period(p, end)
		}
		if lag > min(want-removed, s.credit) {
			voiced = false // not a whole period left to remove: only quiet may go
			lag = 0
		}
		if lag == 0 {
			p += s.block // unvoiced here: try a little further on
			continue
		}
		end = s.cut(p, lag, fade, end)
		removed += lag
		s.credit -= lag
		s.periodCut += int64(lag)
		p += fade
	}
	dst = append(dst, s.work[s.hist:end]...)
	copy(s.work, s.work[end-s.hist:end]) // the new past
	return dst, removed
}

// cut removes r samples after position p of work[:end], crossfading
// work[p:p+fade] into work[p+r:p+r+fade], and returns the new end.
func (s *Shrinker) cut(p, r, fade, end int) int {
	w := s.work
	for i := 0; i < fade; i++ {
		g := float32(i+1) / float32(fade+1)
		w[p+i] = round16(float32(w[p+i])*(1-g) + float32(w[p+r+i])*g)
	}
	copy(w[p+fade:], w[p+fade+r:end])
	s.coarseOK = false
	return end - r
}

// round16 rounds to the nearest sample value, so a crossfade between
// equal samples leaves them unchanged.
func round16(v float32) int16 {
	if v < 0 {
		return clip16(v - 0.5)
	}
	return clip16(v + 0.5)
}

// quietRun returns how many samples from p on lie in blocks below the
// quiet level.
func (s *Shrinker) quietRun(p, end int) int {
	q := p
	for q < end {
		b := min(s.block, end-q)
		var e int64
		for _, v := range s.work[q : q+b] {
			e += int64(v) * int64(v)
		}
		if e*int64(s.block) >= s.quietEnergy*int64(b) {
			break
		}
		q += b
	}
	return q - p
}

// period finds the pitch period at p: the lag whose normalised
// correlation reaches tsmVoiced, with the crossfade length it allows (one
// period, or what the chunk has left). 0 when there is none.
func (s *Shrinker) period(p, end int) (lag, fade int) {
	hiLag := min(s.maxLag, end-p-s.minFade)
	if hiLag < s.minLag {
		return 0, 0
	}
	// Coarse search at about 8 kHz over the decimated signal.
	d := s.dec
	if !s.coarseOK {
		for i := 0; i*d+d <= end; i++ {
			var sum int32
			for _, v := range s.work[i*d : i*d+d] {
				sum += int32(v)
			}
			s.coarse[i] = float32(sum) / float32(d)
		}
		s.coarseOK = true
	}
	lo, hi := (s.minLag+d-1)/d, hiLag/d
	best := float32(-1)
	for l := lo; l <= hi; l++ {
		s.corr[l] = float32(ncc(s.coarse, s.start(p, end, l*d)/d, l, s.win/d))
		best = max(best, s.corr[l])
	}
	if best < tsmVoiced {
		return 0, 0
	}
	// The shortest lag at a local maximum close to the best: the
	// fundamental rather than a multiple, so removals come in small steps.
	cl := 0
	for l := lo; l <= hi; l++ {
		c := s.corr[l]
		if c >= 0.95*best && (l == lo || c >= s.corr[l-1]) && (l == hi || c >= s.corr[l+1]) {
			cl = l
			break
		}
	}
	// Refine at the full rate around the coarse lag.
	bestC := -1.0
	for l := max(cl*d-d+1, s.minLag); l <= min(cl*d+d-1, hiLag); l++ {
		if c := ncc(s.work, s.start(p, end, l), l, s.win); c > bestC {
			bestC, lag = c, l
		}
	}
	if bestC < tsmVoiced {
		return 0, 0
	}
	return lag, min(lag, end-p-lag)
}

// start places the correlation window for lag at p: as far forward as the
// chunk allows (over the crossfade itself), else reaching back into the
// past output.
func (s *Shrinker) start(p, end, lag int) int {
	return max(min(p, end-lag-s.win), 0)
}

// ncc is the normalised correlation of x[at:at+n] with x[at+lag:at+lag+n].
func ncc[T float32 | int16](x []T, at, lag, n int) float64 {
	var xy, xx, yy float64
	for i := at; i < at+n; i++ {
		a, b := float64(x[i]), float64(x[i+lag])
		xy += a * b
		xx += a * a
		yy += b * b
	}
	if xx == 0 || yy == 0 {
		return 0
	}
	return xy / math.Sqrt(xx*yy)
}
