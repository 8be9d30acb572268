package switchboard

import (
	"context"
	"testing"
)

// A guest link's call goes straight into its room: no dialplan (the plan
// has no context for guests), no PIN (the bridge has one); it is listed
// with its display name and as origin guest, and sees who is there.
func TestJoinRoomDirectly(t *testing.T) {
	sb, _ := testBoard(t, testPlan)
	a := newFakeLeg("a", "alice", "7002")
	adone := call(sb, a, "user")
	eventually(t, "alice in the bridge", func() bool { return inRoom(sb, "bridge", "a") })
	g := &fakePage{fakeLeg: newFakeLeg("guest-1/c1", "Bob Guest", "bridge")}
	gdone := make(chan struct{})
	go func() {
		defer close(gdone)
		sb.JoinRoom(context.Background(), g, "bridge", "guest")
	}()
	eventually(t, "the guest in the bridge", func() bool { return inRoom(sb, "bridge", "guest-1/c1") })
	if answered, _, _ := g.state(); !answered {
		t.Fatal("the guest's call was not answered")
	}
	room, _ := sb.Room("bridge")
	names := map[string]bool{}
	for _, l := range room.Legs {
		names[l.Name] = true
	}
	if !names["alice"] || !names["Bob Guest"] {
		t.Fatalf("the room lists %+v", room.Legs)
	}
	found := false
	for _, c := range sb.Calls() {
		if c.ID == "guest-1/c1" {
			found = c.Origin == "guest" && c.Action == "room" && c.Room == "bridge" && c.From == "Bob Guest"
		}
	}
	if !found {
		t.Fatalf("calls %+v: the guest's call is not listed as origin guest in the bridge", sb.Calls())
	}
	eventually(t, "the guest's page shows alice", func() bool {
		for _, n := range g.participants() {
			if n == "alice" {
				return true
			}
		}
		return false
	})
	g.hangUp()
	waitEnded(t, gdone)
	if inRoom(sb, "bridge", "guest-1/c1") {
		t.Fatal("the guest stayed in the room after hanging up")
	}
	a.hangUp()
	waitEnded(t, adone)
}
