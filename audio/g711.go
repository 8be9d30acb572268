package audio

import "github.com/zaf/g711"

// G.711 lookup tables, built once so that the hot path is one table load per
// sample (zaf's slice API allocates per call). Decoding uses zaf/g711's
// per-sample API. Encoding follows the CCITT/Sun reference (g711.c, as in sox):
// zaf rounds negative samples at segment edges one step differently, and we
// want to be bit-exact with sox, which the golden files in testdata check.
var (
	ulawDecode [256]int16
	alawDecode [256]int16
	ulawEncode [1 << 16]uint8 // indexed by uint16(sample): sox rounds, so every bit counts
	alawEncode [1 << 16]uint8
)

func init() {
	for i := 0; i < 256; i++ {
		ulawDecode[i] = g711.DecodeUlawFrame(uint8(i))
		alawDecode[i] = g711.DecodeAlawFrame(uint8(i))
	}
	for i := range ulawEncode {
		ulawEncode[i] = linear14ToUlaw(roundShift(int16(uint16(i)), 2))
	}
	for i := range alawEncode {
		alawEncode[i] = linear13ToAlaw(roundShift(int16(uint16(i)), 3))
	}
}

// roundShift scales a 16-bit sample down by 2^n rounding to nearest and
// clipping at the top, as sox does before G.711 encoding.
func roundShift(s int16, n uint) int16 {
	v := (int32(s) + 1<<(n-1)) >> n
	return int16(min(v, int32(32767)>>n))
}

var (
	segUEnd = [8]int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
	segAEnd = [8]int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
)

func segment(v int, ends *[8]int) int {
	for i, e := range ends {
		if v <= e {
			return i
		}
	}
	return 8
}

// linear14ToUlaw encodes a 14-bit sample (G.711 section 3, Sun g711.c).
func linear14ToUlaw(pcm int16) uint8 {
	v, mask := int(pcm), 0xFF
	if v < 0 {
		v, mask = -v, 0x7F
	}
	v = min(v, 8159) + 0x84>>2
	seg := segment(v, &segUEnd)
	if seg >= 8 {
		return uint8(0x7F ^ mask)
	}
	return uint8((seg<<4 | (v>>(seg+1))&0xF) ^ mask)
}

// linear13ToAlaw encodes a 13-bit sample (G.711 section 2, Sun g711.c).
func linear13ToAlaw(pcm int16) uint8 {
	v, mask := int(pcm), 0xD5
	if v < 0 {
		v, mask = -v-1, 0x55
	}
	seg := segment(v, &segAEnd)
	if seg >= 8 {
		return uint8(0x7F ^ mask)
	}
	q := v >> seg
	if seg < 2 {
		q = v >> 1
	}
	return uint8((seg<<4 | q&0xF) ^ mask)
}

// EncodeUlaw appends the mu-law encoding of pcm to dst.
func EncodeUlaw(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = append(dst, ulawEncode[uint16(s)])
	}
	return dst
}

// DecodeUlaw appends the PCM decoding of mu-law payload to dst.
func DecodeUlaw(dst []int16, payload []byte) []int16 {
	for _, b := range payload {
		dst = append(dst, ulawDecode[b])
	}
	return dst
}

// EncodeAlaw appends the A-law encoding of pcm to dst.
func EncodeAlaw(dst []byte, pcm []int16) []byte {
	for _, s := range pcm {
		dst = append(dst, alawEncode[uint16(s)])
	}
	return dst
}

// DecodeAlaw appends the PCM decoding of A-law payload to dst.
func DecodeAlaw(dst []int16, payload []byte) []int16 {
	for _, b := range payload {
		dst = append(dst, alawDecode[b])
	}
	return dst
}

// G711 is a stateless G.711 codec (mu-law when ALaw is false) at 8 kHz.
type G711 struct{ ALaw bool }

// Rate implements Encoder and Decoder.
func (G711) Rate() int { return 8000 }

// Encode implements Encoder.
func (g G711) Encode(dst []byte, pcm []int16) ([]byte, error) {
	if g.ALaw {
		return EncodeAlaw(dst, pcm), nil
	}
	return EncodeUlaw(dst, pcm), nil
}

// Decode implements Decoder.
func (g G711) Decode(dst []int16, payload []byte) ([]int16, error) {
	if g.ALaw {
		return DecodeAlaw(dst, payload), nil
	}
	return DecodeUlaw(dst, payload), nil
}

// String names the codec for pipeline dumps.
func (g G711) String() string {
	if g.ALaw {
		return "PCMA/8000"
	}
	return "PCMU/8000"
}

func init() {
	RegisterCodec(g711Info(false))
	RegisterCodec(g711Info(true))
}

// g711Info is the registry entry of mu-law (PCMU) or A-law (PCMA).
func g711Info(alaw bool) CodecInfo {
	g := G711{ALaw: alaw}
	info := CodecInfo{Name: "PCMU", PayloadType: 0, Rate: 8000, PCMRate: 8000, Silent: g.silent,
		NewEncoder: func(int) (CodecEncoder, error) { return g, nil },
		NewDecoder: func(int) (CodecDecoder, error) {
			dec := func(dst []int16, p []byte) []int16 { dst, _ = g.Decode(dst, p); return dst }
			return newPLCDecoder(g.String(), 8000, dec), nil
		},
	}
	if alaw {
		info.Name, info.PayloadType = "PCMA", 8
	}
	return info
}

// silent reports whether every byte of a payload is in the smallest
// segment (below -48 dBFS): mu-law and A-law put those at 0x70-0x7F and
// 0xF0-0xFF, and around 0x55/0xD5.
func (g G711) silent(p []byte) bool {
	for _, b := range p {
		v := b & 0x7F
		if (!g.ALaw && v < 0x70) || (g.ALaw && (v^0x55) >= 0x10) {
			return false
		}
	}
	return len(p) > 0
}
