// Package audio owns everything that touches PCM: the frame type, the codec
// interfaces and the one codec registry (LookupCodec; G.711 and G.722
// register here, Opus from audio/opus), the mixing rates, G.711, G.722,
// test-signal helpers (tones, Goertzel detection) and WAV I/O. It depends
// only on the standard library and zaf/g711.
package audio

import "time"

// DefaultPtime is the packet duration used unless a peer asks for another.
const DefaultPtime = 20 * time.Millisecond

// Frame is one packet's worth of mono int16 PCM at Rate samples per second.
// Samples is owned by whoever allocated it; stages reuse it frame after frame.
type Frame struct {
	Rate    int
	Samples []int16
}

// SamplesPer returns how many samples one packet of duration d holds at rate.
func SamplesPer(rate int, d time.Duration) int {
	return int(int64(rate) * int64(d) / int64(time.Second))
}

// Duration returns the play-out time of the frame.
func (f *Frame) Duration() time.Duration {
	if f.Rate == 0 {
		return 0
	}
	return time.Duration(len(f.Samples)) * time.Second / time.Duration(f.Rate)
}

// Encoder turns PCM into a codec payload. It appends to dst and returns it,
// so a caller that passes a buffer with enough capacity allocates nothing.
type Encoder interface {
	Encode(dst []byte, pcm []int16) ([]byte, error)
	// Rate is the sample rate the encoder expects.
	Rate() int
}

// Decoder turns a codec payload into PCM appended to dst.
type Decoder interface {
	Decode(dst []int16, payload []byte) ([]int16, error)
	// Rate is the sample rate the decoder produces.
	Rate() int
}
