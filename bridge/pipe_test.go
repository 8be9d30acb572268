package bridge

import (
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// tonePeer hears what a pipe hands it and says a tone.
type tonePeer struct {
	heard []int16
	gen   audio.Tone
	done  chan struct{}
}

func (p *tonePeer) Rate() int { return p.gen.Rate }
func (p *tonePeer) Put(pcm, _ []int16) {
	if pcm != nil && len(p.heard)+len(pcm) <= cap(p.heard) {
		p.heard = append(p.heard, pcm...)
	}
}
func (p *tonePeer) Take(dst []int16) bool { p.gen.Fill(dst); return true }
func (p *tonePeer) Done() <-chan struct{} { return p.done }

// A pipe hands the leg's audio to its peer at the peer's rate: 8 kHz (a
// G.722 leg's too, resampled), or 16 kHz, where a G.722 leg's 6 kHz tone
// arrives as it was sent; its steady state allocates nothing.
func TestPipe(t *testing.T) {
	g722 := audio.Codec{Name: "G722", Rate: 8000}
	for _, tc := range []struct {
		name  string
		c     audio.Codec
		rate  int
		freq  float64
		heard float64 // seconds of the tone of 2 s the peer must hear (at least; 0: none)
	}{
		{"PCMU", pcmu, 8000, 700, 1.5},
		{"G722", g722, 8000, 700, 1.5},
		{"G722 wideband", g722, 16000, 6000, 1.5},
		{"G722 at 8 kHz loses 6 kHz", g722, 8000, 6000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			l := &allocLeg{discardLeg: discardLeg{id: "leg", codec: c, done: make(chan struct{})}}
			peer := &tonePeer{heard: make([]int16, 0, tc.rate*4), gen: audio.Tone{Rate: tc.rate, Freq: 1200, Level: 0.2}, done: make(chan struct{})}
			p, err := newPipe(l, peer)
			if err != nil {
				t.Fatal(err)
			}
			l.SetPacketHandler(p.in)
			f := makeFeed(t, c, tc.freq, true)
			now := time.Unix(1000, 0)
			p.in.now = func() time.Time { return now } // packets arrive on the test's clock
			var pkt audio.Packet
			step := func() {
				pkt = audio.Packet{Seq: f.seq, Timestamp: f.ts, SSRC: 1, Payload: f.pkts[int(f.seq)%len(f.pkts)]}
				l.h.HandlePacket(&pkt)
				f.seq++
				f.ts += uint32(c.Rate / 50)
				p.tick(now)
				now = now.Add(FrameDuration)
			}
			for range 100 {
				step()
			}
			n := audio.ToneSeconds(peer.heard, tc.rate, tc.freq, 0.2)
			if (tc.heard > 0 && n < tc.heard) || (tc.heard == 0 && n > 0.1) {
				t.Fatalf("the peer heard the leg's tone for %.2fs of 2s", n)
			}
			if raceEnabled {
				return
			}
			if n := testing.AllocsPerRun(200, step); n != 0 {
				t.Fatalf("%v allocations per tick", n)
			}
		})
	}
}
