package switchboard

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
)

const testPlan = `
contexts:
  internal:
    allow_trunks: true
    rules:
      - number: "7000"
        pin: {room: {name: bridge, pin: "1234"}}
      - number: "7001"
        pin: {room: {name: board, pin: "1111", moderator_pin: "9999", wait_for_moderator: true}}
      - number: "7002"
        room: {name: bridge}
      - number: "9196"
        echo: {}
      - number: "5"
        goto: other
      - prefix: "+"
        dial: {trunk: carrier, number: "$1", timeout: 2}
      - pattern: '[a-z]+'
        dial: {user: "$number", timeout: 1}
  other:
    rules:
      - number: "5"
        room: {name: five}
origins: {user: internal, web: internal}
`

// A PIN caller is let into the room by the right PIN, keyed quickly or
// slowly, with or without #, from a desk phone or a browser page; a page
// is told who is in the room.
func TestPINRight(t *testing.T) {
	for _, c := range []struct {
		name, keys string
		gap        time.Duration
		page       bool
	}{
		{"hash", "1234#", 10 * time.Millisecond, false},
		{"no hash", "1234", 10 * time.Millisecond, false},
		{"slow keying", "1234#", 200 * time.Millisecond, false}, // each gap well under the 700 ms digit timeout (a busy machine adds delay)
		{"page", "1234#", 10 * time.Millisecond, true},
		{"page, no hash", "1234", 10 * time.Millisecond, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			sb, logs := testBoard(t, testPlan)
			phone := newFakeLeg("phone", "carol", "7002")
			pdone := call(sb, phone, "user")
			eventually(t, "the phone is in the room", func() bool { return inRoom(sb, "bridge", "phone") })
			l := newFakeLeg("c1", "alice", "7000")
			var leg Leg = l
			var page *fakePage
			if c.page {
				page = &fakePage{fakeLeg: l}
				leg = page
			}
			done := call(sb, leg, "web")
			l.waitKeys(t)
			l.key(c.keys, c.gap)
			eventually(t, "the caller is in the room", func() bool { return inRoom(sb, "bridge", "c1") })
			if answered, _, _ := l.state(); !answered {
				t.Error("the PIN caller was not answered")
			}
			if !strings.Contains(logs.String(), "PIN accepted") {
				t.Errorf("no PIN accepted in the log:\n%s", logs)
			}
			if page != nil {
				eventually(t, "the page is told who is in", func() bool { return len(page.participants()) == 2 })
				if got := page.participants(); !slices.Contains(got, "carol") || !slices.Contains(got, "alice") {
					t.Errorf("participants %v", got)
				}
			}
			l.hangUp()
			waitEnded(t, done)
			eventually(t, "the caller left", func() bool { return !inRoom(sb, "bridge", "c1") })
			phone.hangUp()
			waitEnded(t, pdone)
		})
	}
}

// Three wrong PINs (or none, the caller keying nothing) hang up; the
// caller never reaches the room.
func TestPINWrong(t *testing.T) {
	for _, c := range []struct {
		name  string
		keys  []string
		pause time.Duration // after each key string
	}{
		{"three wrong", []string{"1111#", "2222#", "0000#"}, 0},
		{"nothing keyed", nil, 0},
		{"too slow", []string{"12", "34#"}, time.Second}, // a pause over the 700 ms digit timeout ends the try
	} {
		t.Run(c.name, func(t *testing.T) {
			sb, logs := testBoard(t, testPlan)
			l := newFakeLeg("c1", "alice", "7000")
			done := call(sb, l, "user")
			for _, k := range c.keys {
				l.waitKeys(t)
				l.key(k, 5*time.Millisecond)
				time.Sleep(c.pause)
			}
			waitEnded(t, done)
			if _, _, ended := l.state(); ended != "hangup" {
				t.Errorf("the caller was not hung up (%q)", ended)
			}
			if inRoom(sb, "bridge", "c1") || strings.Contains(logs.String(), "PIN accepted") {
				t.Errorf("a wrong PIN got in:\n%s", logs)
			}
			if n := strings.Count(logs.String(), "wrong PIN"); n != 3 {
				t.Errorf("%d wrong tries logged, want 3:\n%s", n, logs)
			}
		})
	}
}

// The PIN is never logged, only its length.
func TestPINNotLogged(t *testing.T) {
	sb, logs := testBoard(t, testPlan)
	l := newFakeLeg("c1", "alice", "7000")
	done := call(sb, l, "user")
	l.waitKeys(t)
	l.key("5678#", time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	l.hangUp()
	waitEnded(t, done)
	if strings.Contains(logs.String(), "5678") {
		t.Errorf("the keyed PIN is in the log:\n%s", logs)
	}
}

// With wait_for_moderator, PIN callers wait muted and deaf; the moderator's
// arrival lets them in.
func TestModeratorLetsWaitersIn(t *testing.T) {
	sb, _ := testBoard(t, testPlan)
	guest := newFakeLeg("g1", "bob", "7001")
	gdone := call(sb, guest, "user")
	guest.waitKeys(t)
	guest.key("1111#", time.Millisecond)
	eventually(t, "the guest waits in the room", func() bool { return inRoom(sb, "board", "g1") })
	leg := legOf(t, sb, "board", "g1")
	if !leg.Waiting || !leg.Muted || !leg.Deaf {
		t.Fatalf("the guest does not wait muted and deaf: %+v", leg)
	}
	mod := newFakeLeg("m1", "alice", "7001")
	mdone := call(sb, mod, "user")
	mod.waitKeys(t)
	mod.key("9999#", time.Millisecond)
	eventually(t, "the moderator is in", func() bool { return inRoom(sb, "board", "m1") })
	eventually(t, "the guest is let in", func() bool {
		l := legOf(t, sb, "board", "g1")
		return !l.Waiting && !l.Muted && !l.Deaf
	})
	if !legOf(t, sb, "board", "m1").Moderator {
		t.Error("the moderator is not shown as one")
	}
	mod.hangUp()
	waitEnded(t, mdone)
	eventually(t, "the guest waits again", func() bool { return legOf(t, sb, "board", "g1").Waiting })
	guest.hangUp()
	waitEnded(t, gdone)
}

func legOf(t *testing.T, sb *Switchboard, room, id string) api.LegInfo {
	t.Helper()
	info, err := sb.Room(room)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range info.Legs {
		if l.ID == id {
			return l
		}
	}
	t.Fatalf("leg %s not in room %s: %+v", id, room, info)
	return api.LegInfo{}
}

// A user's devices ring at once: the first answer wins and is bridged to
// the caller, the slower ones are cancelled, a late answer is hung up.
func TestRingForkFirstAnswerWins(t *testing.T) {
	fast := &fakeDevice{delay: 30 * time.Millisecond}
	slow := &fakeDevice{delay: 5 * time.Second, called: make(chan struct{})}
	late := &fakeDevice{delay: 100 * time.Millisecond, late: true}
	busy := &fakeDevice{err: rejection{486, "Busy Here"}}
	sb, _ := testBoard(t, testPlan, &fakeDialer{devices: map[string][]*fakeDevice{"bob": {fast, slow, late, busy}}})
	caller := newFakeLeg("c1", "alice", "bob")
	done := call(sb, caller, "user")
	eventually(t, "the caller is answered", func() bool { a, _, _ := caller.state(); return a })
	<-slow.called
	if slow.leg != nil {
		t.Error("the slow device answered though cancelled")
	}
	eventually(t, "the late answer is hung up", func() bool {
		if late.leg == nil {
			return false
		}
		_, _, ended := late.leg.state()
		return ended == "hangup"
	})
	if _, _, ended := fast.leg.state(); ended != "" {
		t.Fatalf("the winner ended: %s", ended)
	}
	caller.key("5", 0) // digits go across
	eventually(t, "the digit reaches the callee", func() bool {
		fast.leg.mu.Lock()
		defer fast.leg.mu.Unlock()
		return fast.leg.sent == "5"
	})
	caller.hangUp()
	waitEnded(t, done)
	if _, _, ended := fast.leg.state(); ended != "hangup" {
		// Failed once (2026-12-03, a busy machine), not reproduced in 240
		// runs since: say what the other legs were, and whether the hang-up
		// came late or never.
		_, _, lateEnded := late.leg.state()
		_, _, callerEnded := caller.state()
		later := false
		for i := 0; i < 100 && !later; i++ {
			time.Sleep(20 * time.Millisecond)
			_, _, e := fast.leg.state()
			later = e == "hangup"
		}
		t.Errorf("the callee was not hung up when the caller left (%q; caller %q, late device %q; hung up within 2 s after: %v)", ended, callerEnded, lateEnded, later)
	}
}

// When nobody answers, the caller hears why: every device busy (486), no
// answer in time or nobody reachable (480), a trunk's refusal as it came.
func TestRingForkFailures(t *testing.T) {
	for _, c := range []struct {
		name    string
		dialed  string
		devices []*fakeDevice
		trunk   *fakeDevice
		want    int
	}{
		{"all busy", "bob", []*fakeDevice{{err: rejection{486, "Busy Here"}}, {err: rejection{486, "Busy Here"}}}, nil, 486},
		{"timeout", "bob", []*fakeDevice{{delay: 5 * time.Second}}, nil, 480},
		{"not reachable", "bob", nil, nil, 480},
		{"trunk refuses", "+4930", nil, &fakeDevice{err: rejection{403, "Forbidden"}}, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := &fakeDialer{devices: map[string][]*fakeDevice{"bob": c.devices}, trunks: map[string]*fakeDevice{}}
			if c.trunk != nil {
				d.trunks["carrier"] = c.trunk
			}
			sb, _ := testBoard(t, testPlan, d)
			caller := newFakeLeg("c1", "alice", c.dialed)
			waitEnded(t, call(sb, caller, "user"))
			if answered, status, _ := caller.state(); answered || status != c.want {
				t.Errorf("answered %v, status %d; want refused with %d", answered, status, c.want)
			}
		})
	}
}

// goto continues in another context; an unknown origin is refused 403, an
// unknown number 404.
func TestRouting(t *testing.T) {
	sb, _ := testBoard(t, testPlan)
	l := newFakeLeg("c1", "alice", "5")
	done := call(sb, l, "user")
	eventually(t, "goto reaches room five", func() bool { return inRoom(sb, "five", "c1") })
	l.hangUp()
	waitEnded(t, done)
	for _, c := range []struct {
		origin, dialed string
		want           int
	}{
		{"guest", "9196", 403},
		{"user", "0000", 404},
	} {
		l := newFakeLeg("c2", "x", c.dialed)
		waitEnded(t, call(sb, l, c.origin))
		if _, status, _ := l.state(); status != c.want {
			t.Errorf("%s dialling %s: %d, want %d", c.origin, c.dialed, status, c.want)
		}
	}
	if st := sb.Stats(); len(st.Rejected) != 2 || st.Rejected[403] != 1 || st.Rejected[404] != 1 {
		t.Errorf("rejections counted: %v", st.Rejected)
	}
}

// The REST API's view: mute, kick and hang up through the control surface.
func TestControl(t *testing.T) {
	sb, _ := testBoard(t, testPlan)
	a, b := newFakeLeg("a", "alice", "7002"), newFakeLeg("b", "bob", "7002")
	adone, bdone := call(sb, a, "user"), call(sb, b, "user")
	eventually(t, "both in the room", func() bool { return inRoom(sb, "bridge", "a") && inRoom(sb, "bridge", "b") })
	on := true
	if l, err := sb.ChangeLeg("bridge", "a", api.LegChange{Muted: &on}); err != nil || !l.Muted {
		t.Fatalf("mute: %+v %v", l, err)
	}
	if _, err := sb.ChangeLeg("bridge", "nobody", api.LegChange{Muted: &on}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("muting an unknown leg: %v", err)
	}
	if calls := sb.Calls(); len(calls) != 2 || calls[0].Room != "bridge" {
		t.Errorf("calls %+v", calls)
	}
	if err := sb.Kick("bridge", "a"); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, adone)
	if _, _, ended := a.state(); ended != "hangup" {
		t.Errorf("a kicked leg is not hung up: %q", ended)
	}
	// A leg that can be told why (a page) is told it was removed.
	c := reasonedLeg{newFakeLeg("c", "carol", "7002")}
	cdone := call(sb, c, "user")
	eventually(t, "carol in the room", func() bool { return inRoom(sb, "bridge", "c") })
	if err := sb.Kick("bridge", "c"); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, cdone)
	if _, _, ended := c.state(); ended != KickedReason {
		t.Errorf("a kicked page is hung up with %q, want %q", ended, KickedReason)
	}
	if err := sb.Hangup("b"); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, bdone)
	if err := sb.Hangup("b"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("hanging up an ended call: %v", err)
	}
	if _, err := sb.Room("bridge"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("the empty room is still there: %v", err)
	}
}

// Close ends the calls in progress, waits for every goroutine the
// switchboard started, and refuses new calls with 503.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	before := goroutines()
	p := testPlan
	sb, _ := testBoard(t, p)
	legs := []*fakeLeg{newFakeLeg("a", "alice", "7002"), newFakeLeg("b", "bob", "7001"), newFakeLeg("c", "carol", "9196")}
	var dones []<-chan struct{}
	for _, l := range legs {
		dones = append(dones, call(sb, l, "user"))
	}
	legs[1].waitKeys(t)
	legs[1].key("1111#", time.Millisecond) // waits for a moderator, with waiting tones
	eventually(t, "in the rooms", func() bool { return inRoom(sb, "bridge", "a") && inRoom(sb, "board", "b") })
	ctxClose(t, sb)
	for _, d := range dones {
		waitEnded(t, d)
	}
	late := newFakeLeg("d", "dave", "7002")
	waitEnded(t, call(sb, late, "user"))
	if _, status, _ := late.state(); status != 503 {
		t.Errorf("a call after Close got %d, want 503", status)
	}
	deadline := time.Now().Add(3 * time.Second)
	for goroutines() > before && time.Now().Before(deadline) {
	}
	if n := goroutines(); n > before {
		t.Errorf("%d goroutines left (before %d)", n, before)
	}
}
