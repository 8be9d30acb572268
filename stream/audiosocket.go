package stream

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// AudioSocket frame kinds (Asterisk's res_audiosocket): a kind byte, a
// 2-byte big-endian payload length, the payload.
const (
	ASHangup = 0x00 // either side ends the stream
	ASUUID   = 0x01 // the stream's UUID (16 bytes), voxgate's first frame
	ASDTMF   = 0x03 // a digit (one ASCII byte)
	ASAudio  = 0x10 // signed linear 16-bit little-endian PCM, 8 kHz mono
	ASError  = 0xff // an error (an optional one-byte code)
)

// ErrShortFrame: an AudioSocket frame cut short.
var ErrShortFrame = errors.New("audiosocket frame cut short")

// ParseAudioSocket reads one AudioSocket frame off the front of b and
// returns its kind, its payload (a slice of b) and the rest of b.
func ParseAudioSocket(b []byte) (kind byte, payload, rest []byte, err error) {
	if len(b) < 3 {
		return 0, nil, b, fmt.Errorf("%w: %d header bytes", ErrShortFrame, len(b))
	}
	n := int(binary.BigEndian.Uint16(b[1:3]))
	if len(b) < 3+n {
		return 0, nil, b, fmt.Errorf("%w: %d of %d payload bytes", ErrShortFrame, len(b)-3, n)
	}
	return b[0], b[3 : 3+n], b[3+n:], nil
}

// appendASFrame appends a frame header for a payload of n bytes.
func appendASFrame(b []byte, kind byte, n int) []byte {
	return append(b, kind, byte(n>>8), byte(n))
}

// audioSocketOut writes voxgate's side of AudioSocket.
type audioSocketOut struct {
	uuid     [16]byte
	outbound bool // send what the caller hears, not what it says
}

func newAudioSocketOut(outbound bool) *audioSocketOut {
	o := &audioSocketOut{outbound: outbound}
	_, _ = rand.Read(o.uuid[:])
	o.uuid[6] = o.uuid[6]&0x0f | 0x40 // a version 4 UUID
	o.uuid[8] = o.uuid[8]&0x3f | 0x80
	return o
}

func (o *audioSocketOut) sidString() string {
	u := o.uuid
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func (o *audioSocketOut) open(b []byte, _ *Config) [][]byte {
	b = appendASFrame(b, ASUUID, 16)
	return [][]byte{append(b, o.uuid[:]...)}
}

// media sends the one track AudioSocket carries: inbound, or outbound
// when only that was asked for (Config.Validate refuses both).
func (o *audioSocketOut) media(bufs *[2][]byte, in, out []int16) int {
	pcm := in
	if o.outbound {
		pcm = out
	}
	b := appendASFrame(bufs[0][:0], ASAudio, 2*len(pcm))
	bufs[0] = AppendL16(b, pcm)
	return 1
}

func (o *audioSocketOut) dtmf(b []byte, d rune) []byte {
	return append(appendASFrame(b, ASDTMF, 1), byte(d))
}

func (o *audioSocketOut) mark([]byte, string, bool) []byte { return nil } // AudioSocket has no marks

func (o *audioSocketOut) ctlText() bool   { return false }
func (o *audioSocketOut) mediaText() bool { return false }

func (o *audioSocketOut) stop(b []byte) []byte { return appendASFrame(b, ASHangup, 0) }
