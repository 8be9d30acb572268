package opus

import "github.com/voxgate/voxgate/audio"

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
	Fmtp: "minptime=10;useinbandfec=1;usedtx=1",
	// DTX and near-silent frames are a few bytes.
	Silent: func(p []byte) bool { return len(p) <= 10 },
	DTX:    true,
	NewEncoder: func(rate int) (audio.CodecEncoder, error) {
		e, err := NewEncoder(rate, EncoderOptions{FEC: true})
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
