package bridge

import (
	"errors"
	"fmt"
	"strings"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/audio/opus"
)

// ErrCodec is returned for a leg whose codec the bridge cannot transcode.
var ErrCodec = errors.New("unsupported codec")

// decoder turns a leg's payloads into PCM at the codec's rate and conceals
// lost packets.
type decoder interface {
	decode(dst []int16, payload []byte) ([]int16, error)
	conceal(dst []int16, samples int) []int16
	rate() int
	String() string
}

// encoder turns PCM at the codec's rate into payloads.
type encoder interface {
	encode(dst []byte, pcm []int16) ([]byte, error)
	rate() int
	String() string
}

// waveDecoder is a waveform codec's decoder (G.711, G.722) with the
// pitch-repeating concealment that suits it.
type waveDecoder struct {
	dec  func(dst []int16, payload []byte) []int16
	plc  *audio.PLC
	r    int
	name string
}

func (d *waveDecoder) decode(dst []int16, payload []byte) ([]int16, error) {
	n := len(dst)
	dst = d.dec(dst, payload)
	d.plc.Good(dst[n:])
	return dst, nil
}

func (d *waveDecoder) conceal(dst []int16, samples int) []int16 {
	n := len(dst)
	dst = grow(dst, samples)
	d.plc.Conceal(dst[n:])
	return dst
}

func (d *waveDecoder) rate() int      { return d.r }
func (d *waveDecoder) String() string { return d.name + "+plc" }

type g711Encoder struct{ c audio.G711 }

func (e g711Encoder) encode(dst []byte, pcm []int16) ([]byte, error) { return e.c.Encode(dst, pcm) }
func (e g711Encoder) rate() int                                      { return 8000 }
func (e g711Encoder) String() string                                 { return e.c.String() }

type g722Encoder struct{ e *audio.G722Encoder }

func (e g722Encoder) encode(dst []byte, pcm []int16) ([]byte, error) {
	return e.e.Encode(dst, pcm), nil
}
func (e g722Encoder) rate() int      { return audio.G722Rate }
func (e g722Encoder) String() string { return "G.722" }

type opusDecoder struct{ d *opus.Decoder }

func (d opusDecoder) decode(dst []int16, payload []byte) ([]int16, error) {
	return d.d.Decode(dst, payload)
}

func (d opusDecoder) conceal(dst []int16, samples int) []int16 {
	out, err := d.d.Conceal(dst, samples)
	if err != nil {
		return grow(dst, samples)
	}
	return out
}

func (d opusDecoder) rate() int      { return d.d.Rate() }
func (d opusDecoder) String() string { return d.d.String() }

type opusEncoder struct{ e *opus.Encoder }

func (e opusEncoder) encode(dst []byte, pcm []int16) ([]byte, error) { return e.e.Encode(dst, pcm) }
func (e opusEncoder) rate() int                                      { return e.e.Rate() }
func (e opusEncoder) String() string                                 { return e.e.String() }

// opusRate is the rate voxgate runs Opus at: the room's rate when Opus
// supports it, so no resampler sits between the codec and the mix.
func opusRate(roomRate int) int { return roomRate }

func newDecoder(c audio.Codec, roomRate int) (decoder, error) {
	switch strings.ToUpper(c.Name) {
	case "PCMU", "PCMA":
		g := audio.G711{ALaw: strings.EqualFold(c.Name, "PCMA")}
		dec := func(dst []int16, p []byte) []int16 { dst, _ = g.Decode(dst, p); return dst }
		return &waveDecoder{dec: dec, plc: audio.NewPLC(8000), r: 8000, name: g.String()}, nil
	case "G722":
		return &waveDecoder{dec: audio.NewG722Decoder().Decode, plc: audio.NewPLC(audio.G722Rate), r: audio.G722Rate, name: "G.722"}, nil
	case "OPUS":
		d, err := opus.NewDecoder(opusRate(roomRate))
		if err != nil {
			return nil, err
		}
		return opusDecoder{d}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrCodec, c.Name)
}

// OpusComplexity is the complexity of every Opus encoder the bridge opens.
var OpusComplexity = 5

func newEncoder(c audio.Codec, roomRate int) (encoder, error) {
	switch strings.ToUpper(c.Name) {
	case "PCMU", "PCMA":
		return g711Encoder{audio.G711{ALaw: strings.EqualFold(c.Name, "PCMA")}}, nil
	case "G722":
		return g722Encoder{audio.NewG722Encoder()}, nil
	case "OPUS":
		e, err := opus.NewEncoder(opusRate(roomRate), opus.EncoderOptions{Complexity: OpusComplexity, FEC: true})
		if err != nil {
			return nil, err
		}
		return opusEncoder{e}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrCodec, c.Name)
}
