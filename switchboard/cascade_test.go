package switchboard

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCluster says which rooms are hosted on another node and hands out
// the cascade legs it "placed" there.
type fakeCluster struct {
	mu     sync.Mutex
	remote map[string]bool // rooms hosted elsewhere
	fail   bool            // the host refuses the cascade leg
	asked  []CascadeRoom
	legs   []*fakeLeg
}

func (c *fakeCluster) RoomElsewhere(_ context.Context, cr CascadeRoom) Device {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, cr)
	room := cr.Name
	if !c.remote[room] {
		return nil
	}
	return func(_ context.Context, from string) (Leg, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.fail {
			return nil, errors.New("503 Service Unavailable")
		}
		l := newFakeLeg("cascade-"+from, from, room)
		c.legs = append(c.legs, l)
		return l, nil
	}
}

func (c *fakeCluster) placed() []*fakeLeg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*fakeLeg(nil), c.legs...)
}

// A caller for a room hosted on another node is bridged to a cascade leg
// to that node, as itself, not put in a room here; either side hanging up
// ends both.
func TestCascadeToRoomOnAnotherNode(t *testing.T) {
	sb, logs := testBoard(t, testPlan)
	cl := &fakeCluster{remote: map[string]bool{"bridge": true}}
	sb.cluster = cl
	a := newFakeLeg("a", "alice", "7002")
	adone := call(sb, a, "user")
	eventually(t, "a cascade leg to the room's node", func() bool { return len(cl.placed()) == 1 })
	far := cl.placed()[0]
	if far.caller != "alice" || far.dialed != "bridge" {
		t.Fatalf("cascade leg from %q to %q", far.caller, far.dialed)
	}
	if answered, _, _ := a.state(); !answered {
		t.Fatal("the caller was not answered")
	}
	eventually(t, "the bridge logged", func() bool { return strings.Contains(logs.String(), "call bridged to it") })
	if inRoom(sb, "bridge", "a") {
		t.Fatal("the caller joined a room here too")
	}
	far.hangUp() // the host ended it
	waitEnded(t, adone)
	if _, _, ended := a.state(); ended != "hangup" {
		t.Fatalf("the caller's call ended by %q", ended)
	}

	// The caller hangs up: the cascade leg is hung up.
	b := newFakeLeg("b", "bob", "7002")
	bdone := call(sb, b, "user")
	eventually(t, "a second cascade leg", func() bool { return len(cl.placed()) == 2 })
	far = cl.placed()[1]
	b.hangUp()
	waitEnded(t, bdone)
	eventually(t, "the cascade leg hung up", func() bool { _, _, e := far.state(); return e == "hangup" })

	// A guest link's call (JoinRoom) is cascaded too.
	g := newFakeLeg("guest-1/c1", "Gina Guest", "bridge")
	gdone := make(chan struct{})
	go func() {
		defer close(gdone)
		sb.JoinRoom(context.Background(), g, "bridge", "guest")
	}()
	eventually(t, "a cascade leg for the guest", func() bool { return len(cl.placed()) == 3 })
	if far = cl.placed()[2]; far.caller != "Gina Guest" || inRoom(sb, "bridge", "guest-1/c1") {
		t.Fatalf("the guest's cascade leg is from %q; in the room here: %v", far.caller, inRoom(sb, "bridge", "guest-1/c1"))
	}
	g.hangUp()
	waitEnded(t, gdone)
}

// A cascade leg from another node joins the room here even when the
// cluster says another node hosts it (no loop), without asking; and when
// the host refuses a cascade leg, the caller joins the room here.
func TestCascadeLegNeverCascadesAgain(t *testing.T) {
	sb, _ := testBoard(t, testPlan)
	cl := &fakeCluster{remote: map[string]bool{"bridge": true}}
	sb.cluster = cl
	c := newFakeLeg("c", "carol", "bridge")
	cdone := make(chan struct{})
	go func() {
		defer close(cdone)
		sb.HostRoom(context.Background(), c, CascadeRoom{Name: "bridge"}, "cascade")
	}()
	eventually(t, "the cascade leg in the room here", func() bool { return inRoom(sb, "bridge", "c") })
	cl.mu.Lock()
	asked := len(cl.asked)
	cl.mu.Unlock()
	if asked != 0 || len(cl.placed()) != 0 {
		t.Fatalf("a cascade leg asked the cluster %d times and placed %d legs", asked, len(cl.placed()))
	}
	cl.mu.Lock()
	cl.fail = true
	cl.mu.Unlock()
	a := newFakeLeg("a", "alice", "7002")
	adone := call(sb, a, "user")
	eventually(t, "the caller in the room here", func() bool { return inRoom(sb, "bridge", "a") })
	a.hangUp()
	c.hangUp()
	waitEnded(t, adone)
	waitEnded(t, cdone)
}

// A moderator admitted by PIN on the entering node is a moderator on the
// room's node: the cascade leg carries it and the room's rules, and there a
// plain participant waits until it arrives.
func TestCascadeCarriesModerator(t *testing.T) {
	entry, _ := testBoard(t, testPlan)
	cl := &fakeCluster{remote: map[string]bool{"board": true}}
	entry.cluster = cl
	mod := newFakeLeg("m1", "alice", "7001")
	mdone := call(entry, mod, "user")
	mod.waitKeys(t)
	mod.key("9999#", time.Millisecond)
	eventually(t, "a cascade leg for the moderator", func() bool { return len(cl.placed()) == 1 })
	cl.mu.Lock()
	asked := cl.asked[len(cl.asked)-1]
	cl.mu.Unlock()
	if want := (CascadeRoom{Name: "board", Moderator: true, WaitForModerator: true}); asked != want {
		t.Fatalf("the cascade leg carries %+v, want %+v", asked, want)
	}
	mod.hangUp()
	waitEnded(t, mdone)

	// On the room's node: a plain participant from another node waits, the
	// moderator from another node lets it in.
	host, _ := testBoard(t, testPlan)
	join := func(l *fakeLeg, cr CascadeRoom) <-chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			host.HostRoom(context.Background(), l, cr, "cascade")
		}()
		return done
	}
	g := newFakeLeg("g1", "bob", "board")
	gdone := join(g, CascadeRoom{Name: "board", WaitForModerator: true})
	eventually(t, "the participant waits", func() bool { return inRoom(host, "board", "g1") && legOf(t, host, "board", "g1").Waiting })
	m := newFakeLeg("m2", "alice", "board")
	m2done := join(m, CascadeRoom{Name: "board", Moderator: true, WaitForModerator: true})
	eventually(t, "the participant is let in", func() bool { return !legOf(t, host, "board", "g1").Waiting })
	if !legOf(t, host, "board", "m2").Moderator {
		t.Error("the moderator from another node is not one here")
	}
	m.hangUp()
	g.hangUp()
	waitEnded(t, m2done)
	waitEnded(t, gdone)
}
