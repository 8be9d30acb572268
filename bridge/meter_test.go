package bridge

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// noLess fails when a counter went down between two readings.
func noLess(t *testing.T, when string, before, after MediaCounts) {
	t.Helper()
	if after.Received < before.Received || after.Lost < before.Lost || after.Concealed < before.Concealed || after.Dropped < before.Dropped {
		t.Fatalf("%s: counters went down: %+v -> %+v", when, before, after)
	}
}

// A meter's counters sum every leg that was ever in its rooms: they never
// go down when a leg leaves (the old gauges summed the present legs and
// dropped), read after every tick while legs with lossy streams leave one
// by one, and they keep counting the legs that stay.
func TestMeterCountsNeverDrop(t *testing.T) {
	mt := NewMeter()
	r := newTestRoom(t, RoomConfig{Name: "meter", Rate: 16000, Meter: mt})
	s := &sim{t: t, room: r, start: time.Unix(3000, 0)}
	var legs []*memLeg
	for k := range 4 {
		l := newMemLeg(fmt.Sprint("leg", k), codecFor(k))
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
		sd := newSender(t, l, legFreq(k), int64(k+1))
		sd.loss = 0.1
		legs, s.senders = append(legs, l), append(s.senders, sd)
	}
	var last MediaCounts
	check := func(when string) MeterStats {
		st := mt.Stats()
		noLess(t, when, last, st.Media)
		last = st.Media
		return st
	}
	s.run(2*time.Second, func(int) { check("while talking") })
	st := check("before anyone leaves")
	if st.Legs != 4 || st.Media.Received == 0 || st.Media.Lost == 0 || st.Media.Concealed == 0 {
		t.Fatalf("after 2 s of four lossy streams: %+v", st)
	}
	for k := range 3 {
		if err := r.Leave(legs[k].id); err != nil {
			t.Fatal(err)
		}
		s.senders[k] = nil
		st := check(fmt.Sprintf("after leg%d left", k))
		if st.Legs != 3-k {
			t.Fatalf("after leg%d left: %d legs metered", k, st.Legs)
		}
		s.run(500*time.Millisecond, func(int) { check("after a leave") })
	}
	grown := check("at the end")
	if grown.Media.Received <= st.Media.Received || grown.Media.Lost <= st.Media.Lost {
		t.Fatalf("the last leg's packets were not counted on: %+v then %+v", st.Media, grown.Media)
	}
	if grown.Tick.Count != uint64(s.ticks) {
		t.Fatalf("tick histogram has %d observations for %d ticks", grown.Tick.Count, s.ticks)
	}
	if grown.JitterDelay.Count == 0 {
		t.Fatal("no jitter buffer delay sampled")
	}
}

// rrLeg is a leg that counts its received RTP itself (as sip.Call does),
// over its whole call: its counts before it joined are not the room's.
type rrLeg struct {
	*memLeg
	mu sync.Mutex
	rr audio.ReceiveReport
}

func (l *rrLeg) ReceiveReport() audio.ReceiveReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rr
}

func (l *rrLeg) set(received uint64, lost int64) {
	l.mu.Lock()
	l.rr.Received, l.rr.Lost = received, lost
	l.mu.Unlock()
}

// A leg's own receive counters count from its join, and RFC 3550 loss that
// goes down (a late packet) is not reported lower than already seen.
func TestMeterReceiveReporter(t *testing.T) {
	mt := NewMeter()
	r := newTestRoom(t, RoomConfig{Name: "rr", Meter: mt})
	l := &rrLeg{memLeg: newMemLeg("a", pcmu)}
	l.set(100, 5) // before the room: a PIN prompt, another room
	if err := r.Join(l, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		received     uint64
		lost         int64
		wantReceived uint64
		wantLost     uint64
	}{
		{100, 5, 0, 0},
		{150, 12, 50, 7},
		{151, 10, 51, 7}, // a late packet: RFC 3550's loss went down
		{160, 13, 60, 8},
	} {
		l.set(c.received, c.lost)
		got := mt.Stats().Media
		if got.Received != c.wantReceived || got.Lost != c.wantLost {
			t.Fatalf("leg at %d received, %d lost: metered %+v, want %d and %d", c.received, c.lost, got, c.wantReceived, c.wantLost)
		}
	}
	l.set(161, 12)
	if err := r.Leave("a"); err != nil {
		t.Fatal(err)
	}
	l.set(500, 50) // after leaving: not the room's
	if got := mt.Stats(); got.Legs != 0 || got.Media.Received != 61 || got.Media.Lost != 8 {
		t.Fatalf("after the leg left: %+v, want 61 received, 8 lost", got)
	}
}

// Scrapes racing with legs leaving never see a sum go down (run with -race).
func TestMeterConcurrentScrapes(t *testing.T) {
	mt := NewMeter()
	r := newTestRoom(t, RoomConfig{Name: "race", Meter: mt})
	var legs []*rrLeg
	for k := range 20 {
		l := &rrLeg{memLeg: newMemLeg(fmt.Sprint("l", k), pcmu)}
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
		l.set(uint64(10*(k+1)), int64(k+1))
		legs = append(legs, l)
	}
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		var last MediaCounts
		for {
			select {
			case <-done:
				return
			default:
			}
			st := mt.Stats().Media
			if st.Received < last.Received || st.Lost < last.Lost {
				errs <- fmt.Errorf("went down: %+v -> %+v", last, st)
				return
			}
			last = st
		}
	}()
	for _, l := range legs {
		if err := r.Leave(l.id); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if st := mt.Stats(); st.Legs != 0 || st.Media.Received != 2100 || st.Media.Lost != 210 {
		t.Fatalf("after everyone left: %+v", st)
	}
}

// A histogram's snapshot is cumulative, in seconds, its count the sum of
// its buckets.
func TestHistogramSnapshot(t *testing.T) {
	h := NewHistogram(time.Millisecond, 10*time.Millisecond)
	for _, d := range []time.Duration{500 * time.Microsecond, time.Millisecond, 5 * time.Millisecond, time.Second} {
		h.Observe(d)
	}
	s := h.Snapshot()
	if s.Count != 4 || s.Buckets[0.001] != 2 || s.Buckets[0.01] != 3 || len(s.Buckets) != 2 {
		t.Fatalf("snapshot %+v", s)
	}
	if want := 1.0065; s.Sum < want-1e-9 || s.Sum > want+1e-9 {
		t.Fatalf("sum %v, want %v", s.Sum, want)
	}
}
