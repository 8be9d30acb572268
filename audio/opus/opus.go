// Package opus wraps libopus (through gopkg.in/hraban/opus.v2) behind the
// audio package's codec interfaces. It is the only place in voxgate that
// needs cgo for audio, so everything else builds and tests without it.
package opus

import (
	"errors"
	"fmt"

	hopus "gopkg.in/hraban/opus.v2"

	"github.com/voxgate/voxgate/audio"
)

// Errors of the wrapper.
var (
	// ErrRate is audio.ErrRate: Opus runs at the mixing rates.
	ErrRate    = audio.ErrRate
	ErrOptions = errors.New("opus: invalid encoder option")
)

// maxFrame is the most samples one packet decodes to: 120 ms at 48 kHz.
const maxFrame = 5760

// EncoderOptions tune an Encoder; the zero value is voice at complexity 5
// with automatic bitrate.
type EncoderOptions struct {
	// Complexity 0..10 (default 5; 0 means the default).
	Complexity int
	// Bitrate in bits per second (0: libopus chooses).
	Bitrate int
	// FEC adds in-band forward error correction, for the loss percentage
	// given in PacketLoss (default 10 when FEC is on).
	FEC        bool
	PacketLoss int
	// DTX sends almost nothing during silence.
	DTX bool
}

// Decoder decodes Opus packets to mono PCM, and conceals lost ones.
type Decoder struct {
	dec  *hopus.Decoder
	rate int
	last int // samples in the last decoded packet, the size of a concealed frame
}

var _ audio.Decoder = (*Decoder)(nil)

// NewDecoder returns a mono decoder producing PCM at rate (any Opus packet
// decodes at any of the rates).
func NewDecoder(rate int) (*Decoder, error) {
	if err := audio.CheckMixRate(rate); err != nil {
		return nil, fmt.Errorf("opus: %w", err)
	}
	dec, err := hopus.NewDecoder(rate, 1)
	if err != nil {
		return nil, err
	}
	return &Decoder{dec: dec, rate: rate, last: rate / 50}, nil
}

// Rate implements audio.Decoder.
func (d *Decoder) Rate() int { return d.rate }

// grow makes room for n samples after dst and returns that room with its
// capacity cut to n: hraban/opus passes cap(), not len(), to libopus as the
// frame size, and concealment and FEC must be told the exact duration.
func grow(dst []int16, n int) ([]int16, []int16) {
	if cap(dst)-len(dst) < n {
		dst = append(make([]int16, 0, len(dst)+n), dst...)
	}
	return dst, dst[len(dst) : len(dst)+n : len(dst)+n]
}

// Decode appends the PCM of one packet to dst. dst should have 5760 samples
// of spare capacity (120 ms at 48 kHz) to avoid an allocation.
func (d *Decoder) Decode(dst []int16, payload []byte) ([]int16, error) {
	dst, out := grow(dst, maxFrame*d.rate/48000)
	n, err := d.dec.Decode(payload, out)
	if err != nil {
		return dst, err
	}
	d.last = n
	return dst[:len(dst)+n], nil
}

// Conceal appends samples of loss concealment (libopus PLC) for a lost packet.
func (d *Decoder) Conceal(dst []int16, samples int) ([]int16, error) {
	dst, out := grow(dst, samples)
	if err := d.dec.DecodePLC(out); err != nil {
		return dst, err
	}
	return dst[:len(dst)+samples], nil
}

// DecodeFEC appends samples recovered for a lost packet from the in-band
// FEC data of next, the packet that followed it. next is then decoded
// normally with Decode.
func (d *Decoder) DecodeFEC(dst []int16, next []byte, samples int) ([]int16, error) {
	dst, out := grow(dst, samples)
	if err := d.dec.DecodeFEC(next, out); err != nil {
		return dst, err
	}
	return dst[:len(dst)+samples], nil
}

// LastSamples is the length of the last decoded packet, the size to conceal.
func (d *Decoder) LastSamples() int { return d.last }

// String names the codec for pipeline dumps.
func (d *Decoder) String() string { return fmt.Sprintf("opus-dec/%d", d.rate) }
