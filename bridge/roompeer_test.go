package bridge

import (
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// A peer in a room (a bot) hears the others' mix without itself, at its own
// rate; the others hear the peer's tone, paced by the room's clock; the
// peer leaves when it is done.
func TestRoomPeer(t *testing.T) {
	r := newTestRoom(t, RoomConfig{Name: "bot"})
	s := &sim{t: t, room: r, start: time.Unix(1000, 0)}
	a, b := newMemLeg("a", pcmu), newMemLeg("b", opc)
	for k, l := range []*memLeg{a, b} {
		s.senders = append(s.senders, newSender(t, l, legFreq(k), int64(k)))
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const botFreq = 1500
	peer := &tonePeer{heard: make([]int16, 0, 16000*4), gen: audio.Tone{Rate: 16000, Freq: botFreq, Level: 0.08}, done: make(chan struct{})}
	if err := r.JoinPeer("bot", peer, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	if r.Peers() != 1 || r.Len() != 3 {
		t.Fatalf("peers %d, legs %d", r.Peers(), r.Len())
	}
	s.run(3*time.Second, nil)
	s.waitSent(a, b)
	checkHearsFreq(t, a, []float64{legFreq(1), botFreq}, legFreq(0))
	checkHearsFreq(t, b, []float64{legFreq(0), botFreq}, legFreq(1))
	h := peer.heard[len(peer.heard)/3:]
	for _, f := range []float64{legFreq(0), legFreq(1)} {
		if p := audio.Goertzel(h, 16000, f); p < 0.0016/20 {
			t.Errorf("the peer does not hear %.0f Hz (%.2g)", f, p)
		}
	}
	if p := audio.Goertzel(h, 16000, botFreq); p > 1e-6 {
		t.Errorf("the peer hears itself (%.2g)", p)
	}
	close(peer.done)
	deadline := time.Now().Add(3 * time.Second)
	for r.Peers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the peer did not leave when done")
		}
		time.Sleep(time.Millisecond)
	}
}

// tapRec records what a tap hands it.
type tapRec struct {
	rate        int
	said, heard []int16
}

func (p *tapRec) Rate() int { return p.rate }
func (p *tapRec) Put(said, heard []int16) {
	p.said, p.heard = append(p.said, said...), append(p.heard, heard...)
}

// A tap on a leg of a room gets what the leg says (its own tone) and what
// it hears (the other's tone, not its own), at the tap's rate.
func TestRoomTap(t *testing.T) {
	r := newTestRoom(t, RoomConfig{Name: "tap", Rate: 8000})
	s := &sim{t: t, room: r, start: time.Unix(1000, 0)}
	a, b := newMemLeg("a", pcmu), newMemLeg("b", pcmu)
	for k, l := range []*memLeg{a, b} {
		s.senders = append(s.senders, newSender(t, l, legFreq(k), int64(k)))
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &tapRec{rate: 16000}
	if err := r.Tap("a", rec); err != nil {
		t.Fatal(err)
	}
	if err := r.Tap("a", rec); err != ErrTapped {
		t.Fatalf("a second tap: %v", err)
	}
	s.run(2*time.Second, nil)
	r.Untap("a")
	if len(rec.said) < 16000 || len(rec.said) != len(rec.heard) {
		t.Fatalf("said %d, heard %d samples", len(rec.said), len(rec.heard))
	}
	said, heard := rec.said[len(rec.said)/3:], rec.heard[len(rec.heard)/3:]
	if audio.ToneSeconds(said, 16000, legFreq(0), 0.2) < 1 || audio.ToneSeconds(said, 16000, legFreq(1), 0.2) > 0 ||
		audio.ToneSeconds(heard, 16000, legFreq(1), 0.2) < 1 || audio.ToneSeconds(heard, 16000, legFreq(0), 0.2) > 0 {
		t.Fatal("the tap's channels are not the leg's voice and what it hears")
	}
}

// A room with a peer (at another rate than the room's) and a tap on a leg
// allocates nothing in its steady state.
func TestRoomPeerAndTapAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector (make test runs this test again without it)")
	}
	r := newTestRoom(t, RoomConfig{Name: "allocs", Rate: 16000, Meter: NewMeter()})
	l := &allocLeg{discardLeg: discardLeg{id: "leg", codec: pcmu, done: make(chan struct{})}}
	if err := r.Join(l, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	f := makeFeed(t, pcmu, 700, true)
	peer := &tonePeer{heard: make([]int16, 0, 8000), gen: audio.Tone{Rate: 8000, Freq: 1200, Level: 0.1}, done: make(chan struct{})}
	if err := r.JoinPeer("bot", peer, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Tap("leg", &tonePeer{gen: audio.Tone{Rate: 48000}}); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	var p audio.Packet
	step := func() {
		p = audio.Packet{Seq: f.seq, Timestamp: f.ts, SSRC: 1, Payload: f.pkts[int(f.seq)%len(f.pkts)]}
		l.h.HandlePacket(&p)
		f.seq++
		f.ts += 160
		r.Tick(now)
		now = now.Add(FrameDuration)
	}
	for range 100 {
		step()
	}
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Fatalf("%v allocations per tick", n)
	}
}
