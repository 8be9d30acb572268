package opus

import (
	"fmt"
	"sync/atomic"

	"github.com/voxgate/voxgate/audio"
)

// complexity is what the registry's encoders are made with (SetComplexity).
var complexity atomic.Int32

func init() { complexity.Store(DefaultComplexity) }

// DefaultComplexity is the complexity of the registry's encoders unless
// SetComplexity says otherwise: libopus's middle setting.
const DefaultComplexity = 5

// SetComplexity sets the complexity (1..10) of the encoders the codec
// registry makes from now on (rooms and calls that start later): lower
// costs less CPU per encoded frame, at some cost in quality (at 3 and
// below, SILK leaves out some of its analysis). Encoders made before keep
// theirs.
func SetComplexity(n int) error {
	if n < 1 || n > 10 {
		return fmt.Errorf("%w: complexity %d (want 1..10)", ErrOptions, n)
	}
	complexity.Store(int32(n))
	return nil
}

// Info is Opus's entry in the audio codec registry, which this package
// fills in init: importing the package is what makes voxgate speak Opus.
// It runs at whatever mixing rate it is asked for, so a room needs no
// resampler for it.
var Info = audio.CodecInfo{
	Name: "opus",
	// The payload type browsers use; SIP peers choose their own.
	PayloadType: 111,
	// Always a 48 kHz clock and "/2" in rtpmap (RFC 7587), whatever the
	// audio bandwidth; in-band FEC recovers single losses.
	Rate:     48000,
	Channels: 2,
	PCMRate:  48000,
	// usedtx=1 asks the peer for DTX: a few bytes every 400 ms while it is
	// silent, which a room then neither decodes nor mixes.
	Fmtp:     "minptime=10;useinbandfec=1;usedtx=1",
	Silent:   Silent,
	Inactive: Inactive,
	DTX:      true,
	NewEncoder: func(rate int) (audio.CodecEncoder, error) {
		e, err := NewEncoder(rate, EncoderOptions{FEC: true, Complexity: int(complexity.Load())})
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return e, nil
	},
	NewDecoder: func(rate int) (audio.CodecDecoder, error) {
		d, err := NewDecoder(rate)
		if err != nil {
			return nil, err
		}
		return d, nil
	},
}

func init() { audio.RegisterCodec(Info) }

// Silent reports whether an Opus packet carries no sound, from the packet
// alone, without decoding it: a DTX packet (a few bytes), or a small SILK
// or hybrid packet whose voice activity flags are all clear (the encoder's
// own VAD said the frames are inactive: RFC 6716 4.2.3, the first bits of
// the range coder, which with probability 1/2 are the top bits of the
// first byte). SILK's VAD learns steady sounds as noise, so a tone or
// music can be flagged inactive too: only packets too small to carry such
// a sound (comfort noise, near silence) count. A CELT-only packet has no
// flag; a small one counts.
func Silent(p []byte) bool {
	if len(p) <= 2 {
		return true
	}
	toc := p[0]
	config := toc >> 3
	if config >= 16 || toc&0x04 != 0 || toc&0x03 != 0 { // CELT, stereo, or several frames
		return len(p) <= 10
	}
	return len(p) <= silentMax && Inactive(p)
}

// Inactive reports whether an Opus packet's voice activity flags are all
// clear (a SILK or hybrid packet of one frame), whatever its size: the
// encoder judged it not to carry voice. DTX packets count too.
func Inactive(p []byte) bool {
	if len(p) <= 2 {
		return true
	}
	toc := p[0]
	config := toc >> 3
	if config >= 16 || toc&0x04 != 0 || toc&0x03 != 0 {
		return false
	}
	return p[1]>>(8-silkFrames(config)) == 0
}

// silkFrames is how many SILK frames (each with a VAD flag) one Opus frame
// of a SILK or hybrid configuration holds: 40 and 60 ms SILK frames are 2
// and 3 of 20 ms.
func silkFrames(config byte) int {
	if config < 12 {
		switch config & 3 {
		case 2:
			return 2
		case 3:
			return 3
		}
	}
	return 1
}

// silentMax is the largest SILK packet taken for silence: libopus codes an
// inactive 20 ms frame of near silence at 16 kHz in 7 to 16 bytes, a tone
// in 30 or more.
const silentMax = 16
