package bridge

import (
	"github.com/voxgate/voxgate/audio"
)

// NarrowRate is the rate a room mixes at while only narrowband legs (G.711)
// are in it, whatever its configured rate: their audio is 8 kHz, so a wider
// mix would only cost two resamplers per leg.
const NarrowRate = 8000

// retimer is one side of a leg's path between its codec's rate and the
// room's mixing rate: a resampler, or nothing when the rates are equal.
// On a narrowband path in a room that narrows, it follows the room's rate:
// while the room mixes at 8 kHz it is a delay line as long as the
// resampler it stands for, so that a switch of the room's rate neither
// skips nor repeats audio, and at a switch the new stage starts from what
// the old one was given last (a primed resampler, a filled delay line), so
// the stream goes on without a click.
type retimer struct {
	in, out int              // rates now
	rs      *audio.Resampler // in != out
	hold    []int16          // in == out on a narrowed path: the delay line (its samples are not out yet)
	// narrowable: the path follows the room's rate (its codec side is
	// NarrowRate, its room side the configured rate).
	narrowable bool
	codecIn    bool    // the codec is on the input side (a leg's ingress)
	delay      int     // the delay line's length, in samples at NarrowRate
	last       []int16 // the last frame in, for a switch
	maxIn      int
}

// narrowDelays are the delays (in samples at NarrowRate) of a resampler up
// from NarrowRate to rate and of one down from rate to it.
func narrowDelays(rate int) (up, down int, err error) {
	u, err := audio.NewResampler(NarrowRate, rate, NarrowRate/50)
	if err != nil {
		return 0, 0, err
	}
	d, err := audio.NewResampler(rate, NarrowRate, rate/50)
	if err != nil {
		return 0, 0, err
	}
	return u.Delay(), d.Delay() * NarrowRate / rate, nil
}

// newRetimer converts frames from rate in to rate out (frames of up to
// maxIn samples at the larger of the two).
func newRetimer(in, out, maxIn int) (*retimer, error) {
	t := &retimer{in: in, out: out, maxIn: maxIn}
	if in != out {
		var err error
		if t.rs, err = audio.NewResampler(in, out, maxIn); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// follow makes a narrowband path follow its room's rate: codecIn tells
// which side is the codec's; wide is the room's configured rate.
func (t *retimer) follow(codecIn bool, wide int) error {
	up, down, err := narrowDelays(wide)
	if err != nil {
		return err
	}
	t.narrowable, t.codecIn = true, codecIn
	t.delay = down
	if codecIn {
		t.delay = up
	}
	t.last = make([]int16, 0, t.maxIn)
	return nil
}

// process appends src, converted, to dst.
func (t *retimer) process(dst, src []int16) []int16 {
	if t.narrowable {
		t.last = append(t.last[:0], src...)
	}
	switch {
	case t.rs != nil:
		return t.rs.Process(dst, src)
	case len(t.hold) == 0:
		return append(dst, src...)
	}
	// The delay line: what it held, then src less its tail, which it keeps.
	d := len(t.hold)
	dst = append(dst, t.hold...)
	dst = append(dst, src[:len(src)-d]...)
	copy(t.hold, src[len(src)-d:])
	return dst
}

// idle tells the stage that its input was silence this tick (it was not
// called): the delay line holds silence.
func (t *retimer) idle() {
	clear(t.hold)
	t.last = t.last[:0]
}

// setRoomRate moves a narrowable path to the room's new rate; naive (tests)
// switches as a path without this care would: a fresh resampler, no delay
// line.
func (t *retimer) setRoomRate(rate int, naive bool) error {
	if !t.narrowable {
		return nil
	}
	room := t.out
	if !t.codecIn {
		room = t.in
	}
	if room == rate {
		return nil
	}
	lastRate := t.in // what last was given at
	if t.codecIn {
		t.out = rate
	} else {
		t.in = rate
	}
	if t.in == t.out { // narrow: the delay line takes the last samples given
		t.rs = nil
		t.hold = nil
		if naive {
			return nil
		}
		t.hold = make([]int16, t.delay)
		step := lastRate / NarrowRate
		n := len(t.last) / step // last's length at NarrowRate
		for i := range t.hold {
			if k := n - t.delay + i; k >= 0 && len(t.last) > 0 {
				t.hold[i] = t.last[k*step]
			}
		}
		return nil
	}
	// wide: a resampler that continues what the delay line was given
	rs, err := audio.NewResampler(t.in, t.out, t.maxIn)
	if err != nil {
		return err
	}
	if !naive {
		rs.Prime(t.last, lastRate)
	}
	t.rs, t.hold = rs, nil
	return nil
}

// copyFrom gives t the state of src, a stage of the same path kind (a
// leg's own encoder path taking over from its group's shared one).
func (t *retimer) copyFrom(src *retimer) {
	if t.in != src.in || t.out != src.out {
		return
	}
	switch {
	case t.rs != nil && src.rs != nil:
		t.rs.CopyStateFrom(src.rs)
	case len(t.hold) == len(src.hold):
		copy(t.hold, src.hold)
	}
}

// String names the stage for pipeline dumps.
func (t *retimer) String() string {
	switch {
	case t.rs != nil:
		return "resample"
	case len(t.hold) > 0:
		return "delay"
	}
	return "pass"
}
