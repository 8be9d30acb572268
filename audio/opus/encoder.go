package opus

/*
#cgo pkg-config: opus
#include <opus.h>

enum { VG_COMPLEXITY, VG_BITRATE, VG_FEC, VG_LOSS, VG_DTX };

// opus_encoder_ctl is variadic, which cgo cannot call: one setter per option.
static int vg_encoder_set(OpusEncoder *st, int what, opus_int32 v) {
	switch (what) {
	case VG_COMPLEXITY: return opus_encoder_ctl(st, OPUS_SET_COMPLEXITY(v));
	case VG_BITRATE:    return opus_encoder_ctl(st, OPUS_SET_BITRATE(v));
	case VG_FEC:        return opus_encoder_ctl(st, OPUS_SET_INBAND_FEC(v));
	case VG_LOSS:       return opus_encoder_ctl(st, OPUS_SET_PACKET_LOSS_PERC(v));
	case VG_DTX:        return opus_encoder_ctl(st, OPUS_SET_DTX(v));
	}
	return OPUS_BAD_ARG;
}

static int vg_encoder_complexity(OpusEncoder *st) {
	opus_int32 v = -1;
	opus_encoder_ctl(st, OPUS_GET_COMPLEXITY(&v));
	return v;
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/voxgate/voxgate/audio"
)

// Encoder encodes mono PCM to Opus packets. Its libopus state lives in one
// block of Go memory with no pointers into itself, which is what lets
// CopyState hand one encoder's history to another.
type Encoder struct {
	mem  []byte // the OpusEncoder
	rate int
	loss int // packet loss percentage the FEC is tuned for
}

var _ audio.Encoder = (*Encoder)(nil)

func (e *Encoder) st() *C.OpusEncoder { return (*C.OpusEncoder)(unsafe.Pointer(&e.mem[0])) }

func (e *Encoder) set(what C.int, v int) error {
	if rc := C.vg_encoder_set(e.st(), what, C.opus_int32(v)); rc != C.OPUS_OK {
		return fmt.Errorf("opus: encoder option %d = %d: %s", what, v, C.GoString(C.opus_strerror(rc)))
	}
	return nil
}

// NewEncoder returns a mono VoIP encoder for PCM at rate.
func NewEncoder(rate int, o EncoderOptions) (*Encoder, error) {
	if err := audio.CheckMixRate(rate); err != nil {
		return nil, fmt.Errorf("opus: %w", err)
	}
	if o.Complexity == 0 {
		o.Complexity = 5
	}
	if o.Complexity < 0 || o.Complexity > 10 {
		return nil, fmt.Errorf("%w: complexity %d (want 0..10)", ErrOptions, o.Complexity)
	}
	if o.Bitrate != 0 && (o.Bitrate < 6000 || o.Bitrate > 510000) {
		return nil, fmt.Errorf("%w: bitrate %d (want 6000..510000)", ErrOptions, o.Bitrate)
	}
	if o.PacketLoss < 0 || o.PacketLoss > 100 {
		return nil, fmt.Errorf("%w: packet loss %d%%", ErrOptions, o.PacketLoss)
	}
	e := &Encoder{mem: make([]byte, C.opus_encoder_get_size(1)), rate: rate}
	if rc := C.opus_encoder_init(e.st(), C.opus_int32(rate), 1, C.OPUS_APPLICATION_VOIP); rc != C.OPUS_OK {
		return nil, fmt.Errorf("opus: %s", C.GoString(C.opus_strerror(rc)))
	}
	if err := e.set(C.VG_COMPLEXITY, o.Complexity); err != nil {
		return nil, err
	}
	if o.Bitrate != 0 {
		if err := e.set(C.VG_BITRATE, o.Bitrate); err != nil {
			return nil, err
		}
	}
	if o.FEC {
		if o.PacketLoss == 0 {
			o.PacketLoss = 10
		}
		if err := e.set(C.VG_FEC, 1); err != nil {
			return nil, err
		}
	}
	if err := e.SetPacketLoss(o.PacketLoss); err != nil {
		return nil, err
	}
	if o.DTX {
		if err := e.set(C.VG_DTX, 1); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// SetPacketLoss tells the encoder the loss the far end sees (percent, from
// its RTCP reports): with FEC on, libopus spends more bits on redundancy
// as it rises.
func (e *Encoder) SetPacketLoss(percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("%w: packet loss %d%%", ErrOptions, percent)
	}
	e.loss = percent
	return e.set(C.VG_LOSS, percent)
}

// CopyState makes e continue from src's history, as if e had encoded what
// src did: a listener that moves from a shared encoder to its own (it
// starts talking) then gets a stream its decoder can follow without a
// glitch. Both must run at the same rate; e keeps its own loss setting.
func (e *Encoder) CopyState(src *Encoder) error {
	if src.rate != e.rate || len(src.mem) != len(e.mem) {
		return fmt.Errorf("opus: cannot copy the state of a %d Hz encoder into a %d Hz one", src.rate, e.rate)
	}
	copy(e.mem, src.mem)
	if src.loss != e.loss {
		return e.set(C.VG_LOSS, e.loss)
	}
	return nil
}

// CopyStateFrom implements audio.StateCopier.
func (e *Encoder) CopyStateFrom(src audio.CodecEncoder) error {
	s, ok := src.(*Encoder)
	if !ok {
		return fmt.Errorf("%w: %s into %s", audio.ErrStateCopy, src, e)
	}
	return e.CopyState(s)
}

// Complexity is the encoder's complexity setting (0..10), as libopus has it.
func (e *Encoder) Complexity() int { return int(C.vg_encoder_complexity(e.st())) }

// Rate implements audio.Encoder.
func (e *Encoder) Rate() int { return e.rate }

// Encode appends one packet encoding pcm (2.5 to 60 ms of samples) to dst.
// dst should have 1275 bytes of spare capacity to avoid an allocation.
func (e *Encoder) Encode(dst []byte, pcm []int16) ([]byte, error) {
	if len(pcm) == 0 {
		return dst, fmt.Errorf("opus: no samples to encode")
	}
	if cap(dst)-len(dst) < 1275 {
		dst = append(make([]byte, 0, len(dst)+1275), dst...)
	}
	out := dst[len(dst):cap(dst)]
	n := C.opus_encode(e.st(), (*C.opus_int16)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.opus_int32(len(out)))
	if n < 0 {
		return dst, fmt.Errorf("opus: encode: %s", C.GoString(C.opus_strerror(n)))
	}
	return dst[:len(dst)+int(n)], nil
}

// String names the codec for pipeline dumps.
func (e *Encoder) String() string { return fmt.Sprintf("opus-enc/%d", e.rate) }
