package switchboard

import (
	"errors"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
)

// An operator admits a caller waiting for a moderator: it is unmuted and no
// longer waits; admitting again changes nothing; an unknown leg is 404.
func TestAdmitWaitingCaller(t *testing.T) {
	sb, _ := testBoard(t, testPlan)
	l := newFakeLeg("w1", "alice", "7001")
	done := call(sb, l, "user")
	l.waitKeys(t)
	l.key("1111#", 10*time.Millisecond)
	eventually(t, "alice waits in the board", func() bool {
		_, waiting := sb.moderation("board", "w1")
		return inRoom(sb, "board", "w1") && waiting
	})
	for i := 0; i < 2; i++ { // the second time: nothing to do
		leg, err := sb.Admit("board", "w1")
		if err != nil {
			t.Fatal(err)
		}
		if leg.Waiting || leg.Muted || leg.Deaf {
			t.Fatalf("admitted, the leg shows %+v", leg)
		}
	}
	if _, err := sb.Admit("board", "nobody"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("admitting an unknown leg: %v", err)
	}
	if _, err := sb.Admit("nowhere", "w1"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("admitting in an unknown room: %v", err)
	}
	l.hangUp()
	waitEnded(t, done)
}

// A leg moved to another room leaves its room and is in the other, its
// call going on; a page in the first room is told it left. Bad moves are
// refused with a reason: a bad name, its own room, an unknown leg, a
// locked room.
func TestMoveLegToAnotherRoom(t *testing.T) {
	sb, _ := testBoard(t, testPlan)
	a := newFakeLeg("m1", "alice", "7002")
	adone := call(sb, a, "user")
	page := &fakePage{fakeLeg: newFakeLeg("bob/c1", "bob", "7002")}
	pdone := call(sb, page, "web")
	eventually(t, "both in the bridge", func() bool { return inRoom(sb, "bridge", "m1") && inRoom(sb, "bridge", "bob/c1") })
	for _, c := range []struct {
		room, leg, to string
		want          error
	}{
		{"bridge", "m1", "bad name!", nil},
		{"bridge", "m1", "bridge", nil},
		{"bridge", "nobody", "five", api.ErrNotFound},
		{"nowhere", "m1", "five", api.ErrNotFound},
	} {
		err := sb.Move(c.room, c.leg, c.to)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("move %s %s to %q: %v, want an error (%v)", c.room, c.leg, c.to, err, c.want)
		}
	}
	if err := sb.Move("bridge", "m1", "five"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice in room five, not in the bridge", func() bool { return inRoom(sb, "five", "m1") && !inRoom(sb, "bridge", "m1") })
	eventually(t, "alice keeps her name in room five", func() bool {
		info, err := sb.Room("five")
		return err == nil && len(info.Legs) == 1 && info.Legs[0].Name == "alice"
	})
	if _, _, ended := a.state(); ended != "" {
		t.Fatalf("the moved call ended: %s", ended)
	}
	eventually(t, "alice's call is listed in room five", func() bool {
		for _, c := range sb.Calls() {
			if c.ID == "m1" {
				return c.Room == "five"
			}
		}
		return false
	})
	eventually(t, "the page is told alice left", func() bool {
		page.mu.Lock()
		defer page.mu.Unlock()
		for i, e := range page.events {
			if e == "left alice" && page.notes[i].Leg == "m1" {
				return true
			}
		}
		return false
	})
	// Back again, but the bridge is locked now.
	if _, err := sb.ChangeRoom("bridge", api.RoomChange{Locked: ptrTo(true)}); err != nil {
		t.Fatal(err)
	}
	if err := sb.Move("five", "m1", "bridge"); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("a move into a locked room: %v", err)
	}
	a.hangUp()
	waitEnded(t, adone)
	eventually(t, "alice left room five", func() bool { return !inRoom(sb, "five", "m1") })
	page.hangUp()
	waitEnded(t, pdone)
}

func ptrTo[T any](v T) *T { return &v }

// A caller keying a room's PIN is listed, and an operator lets it in
// without the PIN: it joins as a participant (here it then waits for a
// moderator, as one who keyed the PIN would).
func TestAdmitCallerAtPIN(t *testing.T) {
	sb, _ := testBoard(t, testPlan)
	l := newFakeLeg("p1", "alice", "7001")
	done := call(sb, l, "user")
	l.waitKeys(t)
	eventually(t, "alice listed at the board's PIN", func() bool {
		ps := sb.PINCallers()
		return len(ps) == 1 && ps[0].Leg == "p1" && ps[0].Name == "alice" && ps[0].Room == "board"
	})
	if _, err := sb.Admit("board", "p1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice in the board, waiting for a moderator", func() bool {
		moderator, waiting := sb.moderation("board", "p1")
		return inRoom(sb, "board", "p1") && waiting && !moderator
	})
	if ps := sb.PINCallers(); len(ps) != 0 {
		t.Fatalf("still listed at the PIN: %+v", ps)
	}
	l.hangUp()
	waitEnded(t, done)
}
