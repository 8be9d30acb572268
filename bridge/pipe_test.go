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

func (p *tonePeer) Put(pcm []int16) {
	if pcm != nil && len(p.heard)+len(pcm) <= cap(p.heard) {
		p.heard = append(p.heard, pcm...)
	}
}
func (p *tonePeer) Take(dst []int16) bool { p.gen.Fill(dst); return true }
func (p *tonePeer) Done() <-chan struct{} { return p.done }

// A pipe hands the leg's audio to its peer at 8 kHz (a G.722 leg's too,
// resampled) and its steady state allocates nothing.
func TestPipe(t *testing.T) {
	for _, c := range []audio.Codec{pcmu, {Name: "G722", Rate: 8000}} {
		t.Run(c.Name, func(t *testing.T) {
			l := &allocLeg{discardLeg: discardLeg{id: "leg", codec: c, done: make(chan struct{})}}
			peer := &tonePeer{heard: make([]int16, 0, PipeRate*4), gen: audio.Tone{Rate: PipeRate, Freq: 1200, Level: 0.2}, done: make(chan struct{})}
			p, err := newPipe(l, peer)
			if err != nil {
				t.Fatal(err)
			}
			l.SetPacketHandler(p.in)
			f := makeFeed(t, c, 700, true)
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
			if n := audio.ToneSeconds(peer.heard, PipeRate, 700, 0.2); n < 1.5 {
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
