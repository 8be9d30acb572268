package switchboard

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/audio"
)

// push sends n PCMU packets into a leg's room, leaving out every fifth
// (lost on the way), from sequence number seq.
func (l *fakeLeg) push(seq uint16, n int) {
	l.mu.Lock()
	h := l.handler
	l.mu.Unlock()
	payload := bytes.Repeat([]byte{0x55}, 160) // not silence: decoded
	for i := range n {
		if i%5 == 4 {
			continue
		}
		s := seq + uint16(i)
		h.HandlePacket(&audio.Packet{Seq: s, Timestamp: uint32(s) * 160, SSRC: 7, Payload: payload})
	}
}

// A dial's set-up time is the callee's ringing; its duration is counted
// when it ends; the media of its 1:1 call is metered like a room's.
func TestStatsCallTimes(t *testing.T) {
	bob := &fakeDevice{delay: 150 * time.Millisecond}
	sb, _ := testBoard(t, testPlan, &fakeDialer{devices: map[string][]*fakeDevice{"bob": {bob}}})
	caller := newFakeLeg("c1", "alice", "bob")
	done := call(sb, caller, "user")
	eventually(t, "the call is bridged", func() bool { return sb.Stats().Media.Legs == 2 })
	caller.push(0, 20)
	eventually(t, "the caller's packets are counted", func() bool { return sb.Stats().Media.Media.Received == 16 })
	caller.hangUp()
	waitEnded(t, done)
	// A leg that ended leaves its room on a goroutine of its own: it may
	// still be leaving as the call's handling returns.
	eventually(t, "both legs left", func() bool { return sb.Stats().Media.Legs == 0 })
	st := sb.Stats()
	setup, duration := st.Setup["dial"], st.Duration["dial"]
	if setup.Count != 1 || setup.Buckets[0.1] != 0 || setup.Buckets[1] != 1 {
		t.Errorf("set-up of a call answered after 150 ms: %+v", setup)
	}
	if duration.Count != 1 || duration.Buckets[5] != 1 {
		t.Errorf("duration of a short call: %+v", duration)
	}
	if st.Media.Legs != 0 || st.Media.Media.Received != 16 {
		t.Errorf("after the call: %+v", st.Media)
	}
	if len(st.Routed) != 1 || st.Routed[0] != (Routed{Origin: "user", Action: "dial", Count: 1}) {
		t.Errorf("routed: %+v", st.Routed)
	}
}

// Counters over a room never go down when a participant leaves, while
// the legs that stay keep adding to them.
func TestStatsMediaNeverDrops(t *testing.T) {
	sb, _ := testBoard(t, testPlan)
	a, b := newFakeLeg("a", "alice", "7002"), newFakeLeg("b", "bob", "7002")
	adone, bdone := call(sb, a, "user"), call(sb, b, "user")
	eventually(t, "both in the room", func() bool { return inRoom(sb, "bridge", "a") && inRoom(sb, "bridge", "b") })
	a.push(0, 50)
	b.push(0, 50)
	eventually(t, "both streams played out, losses concealed", func() bool {
		m := sb.Stats().Media
		return m.Media.Received == 80 && m.Media.Lost >= 18
	})
	before := sb.Stats()
	if before.Rooms != 1 || before.Legs != 2 || before.Media.Legs != 2 {
		t.Fatalf("room gauges: %+v", before)
	}
	a.hangUp()
	waitEnded(t, adone)
	eventually(t, "a left", func() bool { return sb.Stats().Media.Legs == 1 })
	after := sb.Stats()
	if after.Media.Media.Received < before.Media.Media.Received || after.Media.Media.Lost < before.Media.Media.Lost || after.Media.Media.Concealed < before.Media.Media.Concealed {
		t.Fatalf("counters went down when a left: %+v -> %+v", before.Media.Media, after.Media.Media)
	}
	if after.Legs != 1 || after.Media.Legs != 1 {
		t.Fatalf("after a left: %+v", after)
	}
	b.push(50, 50)
	eventually(t, "b's packets counted on", func() bool { return sb.Stats().Media.Media.Received == 120 })
	b.hangUp()
	waitEnded(t, bdone)
	if st := sb.Stats(); st.Media.Media.Received != 120 || st.Rooms != 0 || st.Duration["room"].Count != 2 || st.Setup["room"].Count != 2 {
		t.Fatalf("after everyone left: %+v", st)
	}
}

// A call the REST API dials into a room counts its ringing as its set-up,
// and its duration when it ends.
func TestStatsAPIDial(t *testing.T) {
	bob := &fakeDevice{delay: 120 * time.Millisecond}
	sb, _ := testBoard(t, testPlan, &fakeDialer{devices: map[string][]*fakeDevice{"bob": {bob}}})
	if err := sb.Dial("bridge", api.DialRequest{User: "bob"}); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("out-%p", bob) // the leg's id; bob.leg is read once it is in the room
	eventually(t, "bob is in the room", func() bool { return inRoom(sb, "bridge", id) })
	st := sb.Stats()
	if setup := st.Setup["room"]; setup.Count != 1 || setup.Buckets[0.1] != 0 || setup.Buckets[0.25] != 1 {
		t.Errorf("set-up of a call rung for 120 ms: %+v", setup)
	}
	if len(st.Routed) != 1 || st.Routed[0] != (Routed{Origin: "api", Action: "room", Count: 1}) || st.Calls["api"] != 1 {
		t.Errorf("routed %+v, in progress %v", st.Routed, st.Calls)
	}
	bob.leg.hangUp()
	eventually(t, "the call's duration is counted", func() bool { return sb.Stats().Duration["room"].Count == 1 })
}
