package audio

import "testing"

// The noise level follows the frame's power in -dBov: 0 at the codec's
// overload point, 127 for digital silence, about 6 dB per halving of the
// amplitude in between.
func TestG711NoiseLevel(t *testing.T) {
	frame := func(amp int16, alaw bool) []byte {
		pcm := make([]int16, 160)
		for i := range pcm {
			pcm[i] = amp
			if i%2 == 1 {
				pcm[i] = -amp
			}
		}
		if alaw {
			return EncodeAlaw(nil, pcm)
		}
		return EncodeUlaw(nil, pcm)
	}
	for _, alaw := range []bool{false, true} {
		zero := struct{ min, max uint8 }{127, 127}
		if alaw {
			zero.min, zero.max = 70, 74 // A-law has no zero: its idle code decodes to +-8
		}
		for _, c := range []struct {
			amp      int16
			min, max uint8
		}{
			{0, zero.min, zero.max},
			{32000, 0, 1},
			{16000, 5, 7},  // -6 dB
			{1000, 29, 31}, // -30.3 dB
			{30, 59, 63},   // about -60.8 dB (G.711's steps are coarse down there)
		} {
			if got := G711NoiseLevel(frame(c.amp, alaw), alaw); got < c.min || got > c.max {
				t.Errorf("alaw=%v amplitude %d: level %d, want %d-%d", alaw, c.amp, got, c.min, c.max)
			}
		}
	}
	if G711NoiseLevel(nil, false) != 127 {
		t.Error("an empty payload is not silence")
	}
}
