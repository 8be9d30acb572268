package bridge

import (
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// The echo answers a packet that comes in step at once, from the reader's
// goroutine; a lost packet sends the stream through the jitter buffer
// (on the clock) until a second of packets came in step,
// after which it answers at once again; the caller hears its own tone
// throughout.
func TestEchoAnswersInStepPacketsAtOnce(t *testing.T) {
	leg := newMemLeg("echo", pcmu)
	var now time.Time
	start := time.Unix(5000, 0)
	e, err := newEcho(leg, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	leg.SetPacketHandler(e)
	s := newSender(t, leg, 700, 1)
	tick, sent := 0, 0
	// step runs one 20 ms tick: the sender's packet (unless lost) arrives,
	// then the clock ticks the echo. It reports whether the packet was
	// answered before the tick.
	step := func(lose bool) bool {
		now = start.Add(time.Duration(tick) * 20 * time.Millisecond)
		s.produce(time.Duration(tick) * 20 * time.Millisecond)
		before := len(leg.received())
		if lose {
			s.pending = nil
		} else {
			s.deliver(time.Duration(tick)*20*time.Millisecond + s.base)
		}
		at := len(leg.received()) > before
		e.tick(now)
		tick++
		sent++
		return at
	}
	for i := range 20 {
		if !step(false) {
			t.Fatalf("packet %d in step was not answered at once", i)
		}
	}
	step(true) // lost
	buffered := 0
	for range directAfter - 1 {
		if !step(false) {
			buffered++
		}
	}
	if buffered != directAfter-1 {
		t.Errorf("after a loss %d of %d packets went through the buffer, want all", buffered, directAfter-1)
	}
	direct := 0
	for range 30 {
		if step(false) {
			direct++
		}
	}
	if direct != 30 {
		t.Errorf("a second after the loss %d of 30 packets were answered at once, want all", direct)
	}
	pcm, rate := heard(t, leg)
	if secs := audio.ToneSeconds(pcm, rate, 700, 0.4); secs < float64(sent)*0.02-0.2 {
		t.Errorf("the echo carried the tone for %.2f s of %.2f", secs, float64(sent)*0.02)
	}
	if st := e.in.stats(); st.Received != directAfter-1 {
		t.Errorf("the jitter buffer got %d packets, want the %d after the loss", st.Received, directAfter-1)
	}
}
