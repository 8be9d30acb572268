package loadgen

import (
	"encoding/binary"
	"testing"
)

// A stream counts the media time its packets cover: a packet per frame,
// a DTX gap's frames, no more than 400 ms for one gap, nothing for a
// duplicate or a late packet; the timestamp may wrap.
func TestStreamHeard(t *testing.T) {
	pkt := func(ts uint32) []byte {
		b := make([]byte, 12)
		b[0] = 2 << 6
		binary.BigEndian.PutUint32(b[4:8], ts)
		return b
	}
	for _, c := range []struct {
		name    string
		samples uint32
		ts      []uint32
		heard   uint64
	}{
		{"steady PCMU", 160, []uint32{0, 160, 320, 480}, 4},
		{"a DTX gap of 400 ms", 960, []uint32{0, 960, 960 + 20*960}, 22},
		{"a gap of 2 s counts 400 ms", 960, []uint32{0, 100 * 960}, 21},
		{"a duplicate and a late packet", 160, []uint32{0, 160, 160, 480, 320}, 4}, // 480 covers 320
		{"wrapping", 160, []uint32{1<<32 - 160, 0, 160}, 3},
	} {
		s := &stream{src: &source{samples: c.samples}}
		for _, ts := range c.ts {
			s.received(pkt(ts))
		}
		s.received([]byte{0x80, 0}) // too short: not RTP
		if got := s.heard.Load(); got != c.heard {
			t.Errorf("%s: heard %d frames, want %d", c.name, got, c.heard)
		}
		if got := s.recv.Load(); got != uint64(len(c.ts)) {
			t.Errorf("%s: received %d packets, want %d", c.name, got, len(c.ts))
		}
	}
}
