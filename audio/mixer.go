package audio

// Mix-minus: every leg hears the sum of all the others, never itself. The
// sum is taken in int32, each talker's own input is subtracted from it, and
// only then is the result limited to int16 with a soft knee, so a talker's
// voice cannot leak back through clipping. Legs that contributed nothing all
// hear the same full mix, computed once. The cost is O(N) in legs.

// limitKnee is where the soft limiter starts bending (0.75 of full scale).
const limitKnee = 24576

// SoftLimit maps an int32 sum to int16: linear up to the knee, then a smooth
// curve that approaches full scale without reaching a hard clip.
func SoftLimit(x int32) int16 {
	const r = 32767 - limitKnee
	switch {
	case x > limitKnee:
		e := float32(x - limitKnee)
		return int16(limitKnee + e*r/(e+r))
	case x < -limitKnee:
		e := float32(-x - limitKnee)
		return int16(-(limitKnee + e*r/(e+r)))
	}
	return int16(x)
}

// MixMinus mixes frames of a fixed length. It keeps its buffers between
// ticks and allocates nothing after NewMixMinus.
type MixMinus struct {
	sum    []int32
	shared []int16
}

// NewMixMinus returns a mixer for frames of n samples.
func NewMixMinus(n int) *MixMinus {
	return &MixMinus{sum: make([]int32, n), shared: make([]int16, n)}
}

// Mix sums inputs (nil for a leg that contributed nothing this tick) and
// writes, for every leg k with a non-nil input, the mix without that input to
// outs[k]. It returns the full mix, which every silent leg hears. Inputs and
// outputs must have the mixer's frame length.
func (m *MixMinus) Mix(inputs [][]int16, outs [][]int16) []int16 {
	sum := m.sum
	clear(sum)
	for _, in := range inputs {
		if in == nil {
			continue
		}
		in = in[:len(sum)]
		for i, v := range in {
			sum[i] += int32(v)
		}
	}
	for k, in := range inputs {
		if in == nil {
			continue
		}
		out := outs[k][:len(sum)]
		in = in[:len(sum)]
		for i, s := range sum {
			x := s - int32(in[i])
			if x > limitKnee || x < -limitKnee {
				out[i] = SoftLimit(x)
			} else {
				out[i] = int16(x)
			}
		}
	}
	shared := m.shared
	for i, s := range sum {
		if s > limitKnee || s < -limitKnee {
			shared[i] = SoftLimit(s)
		} else {
			shared[i] = int16(s)
		}
	}
	return shared
}
