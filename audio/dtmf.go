package audio

import (
	"encoding/binary"
	"errors"
	"strings"
)

// DTMF: RFC 4733 telephone-event payloads, in-band tone generation and a
// Goertzel detector for digits sent as tones.

// ErrShortEvent is returned for a telephone-event payload under 4 bytes.
var ErrShortEvent = errors.New("telephone-event payload shorter than 4 bytes")

const dtmfDigits = "0123456789*#ABCD"

// DTMFEvent is one RFC 4733 event payload:
//
//	|     event     |E|R| volume    |          duration             |
type DTMFEvent struct {
	Event    uint8
	End      bool
	Volume   uint8 // 0..63, -dBm0
	Duration uint16
}

// ParseDTMFEvent decodes a telephone-event payload.
func ParseDTMFEvent(b []byte) (DTMFEvent, error) {
	if len(b) < 4 {
		return DTMFEvent{}, ErrShortEvent
	}
	return DTMFEvent{Event: b[0], End: b[1]&0x80 != 0, Volume: b[1] & 0x3F, Duration: binary.BigEndian.Uint16(b[2:])}, nil
}

// AppendTo appends the event's payload to b.
func (e DTMFEvent) AppendTo(b []byte) []byte {
	f := e.Volume & 0x3F
	if e.End {
		f |= 0x80
	}
	return append(b, e.Event, f, byte(e.Duration>>8), byte(e.Duration))
}

// DigitOf returns the character of a DTMF event code, or 0 for other events.
func DigitOf(event uint8) rune {
	if int(event) < len(dtmfDigits) {
		return rune(dtmfDigits[event])
	}
	return 0
}

// EventOf returns the event code of a DTMF character (a-d accepted).
func EventOf(d rune) (uint8, bool) {
	if d >= 'a' && d <= 'd' {
		d -= 'a' - 'A'
	}
	i := strings.IndexRune(dtmfDigits, d)
	return uint8(max(i, 0)), i >= 0
}

var (
	dtmfRows = [4]float64{697, 770, 852, 941}
	dtmfCols = [4]float64{1209, 1336, 1477, 1633}
	dtmfKeys = [4][4]rune{{'1', '2', '3', 'A'}, {'4', '5', '6', 'B'}, {'7', '8', '9', 'C'}, {'*', '0', '#', 'D'}}
)

// DTMFTone generates the two tones of a digit.
type DTMFTone struct {
	low, high Tone
}

// NewDTMFTone returns a generator for digit d at rate, each tone at level
// (0..1 of full scale).
func NewDTMFTone(rate int, d rune, level float64) (*DTMFTone, bool) {
	for r, row := range dtmfKeys {
		for c, k := range row {
			if k == d || (d >= 'a' && d <= 'd' && k == d-('a'-'A')) {
				return &DTMFTone{
					low:  Tone{Rate: rate, Freq: dtmfRows[r], Level: level},
					high: Tone{Rate: rate, Freq: dtmfCols[c], Level: level},
				}, true
			}
		}
	}
	return nil, false
}

// Fill writes the next samples of the digit's tones.
func (g *DTMFTone) Fill(dst []int16) {
	var lo [480]int16
	for off := 0; off < len(dst); off += len(lo) {
		n := min(len(lo), len(dst)-off)
		g.low.Fill(lo[:n])
		g.high.Fill(dst[off : off+n])
		for i := 0; i < n; i++ {
			dst[off+i] = int16(max(-32768, min(32767, int32(dst[off+i])+int32(lo[i]))))
		}
	}
}

// DTMFDetector finds DTMF digits sent as tones, frame by frame. A digit is
// reported once, when it has been present in two frames in a row; it can be
// reported again only after a frame without it.
type DTMFDetector struct {
	rate    int
	last    rune // digit seen in the previous frame
	current rune // digit being held (already reported)
}

// NewDTMFDetector returns a detector for PCM at rate.
func NewDTMFDetector(rate int) *DTMFDetector { return &DTMFDetector{rate: rate} }

// Process examines one frame (10 to 60 ms) and returns a newly detected digit, or 0.
func (d *DTMFDetector) Process(pcm []int16) rune {
	digit := d.classify(pcm)
	var out rune
	switch {
	case digit == 0:
		d.current = 0
	case digit == d.last && digit != d.current:
		d.current = digit
		out = digit
	}
	d.last = digit
	return out
}

// classify returns the digit a frame holds, or 0: one row tone and one
// column tone must each dominate their group, their levels must be close
// (twist), they must carry most of the frame's energy (speech does not), and
// the frame must not be quiet.
func (d *DTMFDetector) classify(pcm []int16) rune {
	e := Energy(pcm)
	if e < 1e-5 { // below about -50 dBFS
		return 0
	}
	var rp, cp [4]float64
	r1, c1 := 0, 0
	for i := range 4 {
		rp[i] = Goertzel(pcm, d.rate, dtmfRows[i])
		cp[i] = Goertzel(pcm, d.rate, dtmfCols[i])
		if rp[i] > rp[r1] {
			r1 = i
		}
		if cp[i] > cp[c1] {
			c1 = i
		}
	}
	for i := range 4 {
		if i != r1 && rp[i]*6 > rp[r1] { // the others at least 8 dB weaker
			return 0
		}
		if i != c1 && cp[i]*6 > cp[c1] {
			return 0
		}
	}
	// Twist: the column tone within 8 dB above or 4 dB below the row tone.
	if cp[c1] > rp[r1]*6.3 || cp[c1] < rp[r1]*0.4 {
		return 0
	}
	// A sine of power p (Goertzel) carries 2p of mean-square energy.
	if 2*(rp[r1]+cp[c1]) < 0.7*e {
		return 0
	}
	return dtmfKeys[r1][c1]
}
