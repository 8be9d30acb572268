package bridge

import (
	"errors"
	"fmt"

	"github.com/voxgate/voxgate/audio"
	_ "github.com/voxgate/voxgate/audio/opus" // registers Opus with the audio codec registry
)

// ErrCodec is returned for a leg whose codec the bridge cannot transcode.
var ErrCodec = errors.New("unsupported codec")

// decoder turns a leg's payloads into PCM at the codec's rate and conceals
// lost packets.
type decoder interface {
	decode(dst []int16, payload []byte) ([]int16, error)
	conceal(dst []int16, samples int) []int16
	// fec rebuilds a lost packet from the next one's FEC data; false when
	// the codec has none.
	fec(dst []int16, next []byte, samples int) ([]int16, bool)
	rate() int
	String() string
}

// encoder turns PCM at the codec's rate into payloads.
type encoder interface {
	encode(dst []byte, pcm []int16) ([]byte, error)
	rate() int
	String() string
	// copyFrom makes the encoder continue from src's history; false when
	// the codec cannot (or has no history: G.711).
	copyFrom(src encoder) bool
	// setLoss tunes in-band FEC to the loss the far end reports (percent).
	setLoss(percent int)
}

// codecDecoder is a registered codec's decoder as a room stage: where the
// codec cannot conceal a loss, the room plays silence.
type codecDecoder struct{ d audio.CodecDecoder }

func (d codecDecoder) decode(dst []int16, payload []byte) ([]int16, error) {
	return d.d.Decode(dst, payload)
}

func (d codecDecoder) conceal(dst []int16, samples int) []int16 {
	out, err := d.d.Conceal(dst, samples)
	if err != nil {
		return grow(dst, samples)
	}
	return out
}

func (d codecDecoder) fec(dst []int16, next []byte, samples int) ([]int16, bool) {
	f, ok := d.d.(audio.FECDecoder)
	if !ok {
		return dst, false
	}
	out, err := f.DecodeFEC(dst, next, samples)
	if err != nil {
		return dst[:len(dst)], false
	}
	return out, true
}

func (d codecDecoder) rate() int      { return d.d.Rate() }
func (d codecDecoder) String() string { return d.d.String() }

// codecEncoder is a registered codec's encoder as a room stage.
type codecEncoder struct{ e audio.CodecEncoder }

func (e codecEncoder) encode(dst []byte, pcm []int16) ([]byte, error) { return e.e.Encode(dst, pcm) }
func (e codecEncoder) rate() int                                      { return e.e.Rate() }

func (e codecEncoder) setLoss(percent int) {
	if l, ok := e.e.(audio.LossAware); ok {
		_ = l.SetPacketLoss(percent)
	}
}

func (e codecEncoder) copyFrom(src encoder) bool {
	c, ok := e.e.(audio.StateCopier)
	s, ok2 := src.(codecEncoder)
	return ok && ok2 && c.CopyStateFrom(s.e) == nil
}
func (e codecEncoder) String() string { return e.e.String() }

// lookupCodec returns the registry's entry for a leg's codec.
func lookupCodec(c audio.Codec) (audio.CodecInfo, error) {
	if c.Name == peerCodec { // a peer in a room (roompeer.go)
		return peerCodecInfo(c.Rate), nil
	}
	info, ok := audio.LookupCodec(c.Name)
	if !ok {
		return info, fmt.Errorf("%w %q", ErrCodec, c.Name)
	}
	return info, nil
}

// newDecoder returns a decoder for c; a codec that can run at the room's
// rate (Opus) does, so no resampler sits between the codec and the mix.
func newDecoder(c audio.Codec, roomRate int) (decoder, error) {
	info, err := lookupCodec(c)
	if err != nil {
		return nil, err
	}
	d, err := info.NewDecoder(roomRate)
	if err != nil {
		return nil, err
	}
	return codecDecoder{d}, nil
}

// newEncoder returns an encoder for c, at the room's rate when it can.
func newEncoder(c audio.Codec, roomRate int) (encoder, error) {
	info, err := lookupCodec(c)
	if err != nil {
		return nil, err
	}
	e, err := info.NewEncoder(roomRate)
	if err != nil {
		return nil, err
	}
	return codecEncoder{e}, nil
}
