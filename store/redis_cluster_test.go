package store

import (
	"cmp"
	"context"
	"slices"
	"testing"
	"time"
)

func TestRedisPages(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	const a, b = "sip:10.0.0.1:5060", "sip:10.0.0.2:5060"
	pages := func() []string {
		t.Helper()
		ns, err := r.PageNodes(ctx, "alice", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ns)
		return ns
	}
	if got := pages(); len(got) != 0 {
		t.Fatalf("pages before any: %v", got)
	}
	if err := r.SetPage(ctx, "alice", a, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := r.SetPage(ctx, "alice", b, time.Now().Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if got := pages(); !slices.Equal(got, []string{a, b}) {
		t.Fatalf("pages %v, want both nodes", got)
	}
	// An entry not renewed expires; the key lives as long as its longest.
	if !waitFor(5*time.Second, func() bool { return slices.Equal(pages(), []string{a}) }) {
		t.Fatalf("pages %v after b's entry expired, want a only", pages())
	}
	if ttl := r.c.PTTL(ctx, "pages:alice").Val(); ttl < 50*time.Minute {
		t.Fatalf("pages:alice lives %v, want about an hour", ttl)
	}
	// Renewing moves the expiry; dropping removes the node's entry.
	if err := r.SetPage(ctx, "alice", b, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := r.DropPage(ctx, "alice", a); err != nil {
		t.Fatal(err)
	}
	if got := pages(); !slices.Equal(got, []string{b}) {
		t.Fatalf("pages %v after a dropped, want b", got)
	}
	if err := r.SetPage(ctx, "alice", a, time.Now().Add(-time.Second)); err == nil {
		t.Fatal("a page that expired already was taken")
	}
	// Another user's pages are apart.
	if ns, _ := r.PageNodes(ctx, "bob", time.Now()); len(ns) != 0 {
		t.Fatalf("bob's pages %v", ns)
	}
}

func TestRedisClusterRooms(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	const a, b = "sip:10.0.0.1:5060", "sip:10.0.0.2:5060"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Heartbeat(ctx, "na", a, time.Minute))
	must(r.Heartbeat(ctx, "nb", b, time.Minute))
	for _, room := range []string{"8100", "8101"} {
		if _, err := r.ClaimRoom(ctx, room, b, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.ClaimRoom(ctx, "8200", a, time.Minute); err != nil {
		t.Fatal(err)
	}
	must(r.SetNodeRooms(ctx, "na", map[string]RoomSummary{"8200": {Participants: 1}}, time.Minute))
	// b lists a room it no longer hosts (8102: nobody's claim).
	must(r.SetNodeRooms(ctx, "nb", map[string]RoomSummary{"8100": {Participants: 3, Rate: 16000, Locked: true}, "8101": {Participants: 1, Max: 5, Recording: "/rec/8101.wav"}, "8102": {Participants: 2}}, time.Minute))
	got, err := r.ClusterRooms(ctx, "na")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(x, y HostedRoom) int { return cmp.Compare(x.Name, y.Name) })
	want := []HostedRoom{
		{Name: "8100", Node: "nb", RoomSummary: RoomSummary{Participants: 3, Rate: 16000, Locked: true}},
		{Name: "8101", Node: "nb", RoomSummary: RoomSummary{Participants: 1, Max: 5, Recording: "/rec/8101.wav"}},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rooms seen from na: %+v, want %+v", got, want)
	}
	// Replaced whole: 8101 emptied on b.
	must(r.SetNodeRooms(ctx, "nb", map[string]RoomSummary{"8100": {Participants: 2}}, time.Minute))
	if got, _ := r.ClusterRooms(ctx, "na"); len(got) != 1 || got[0].Name != "8100" || got[0].Participants != 2 {
		t.Fatalf("rooms after b's renewal: %+v", got)
	}
	// A node that is not alive is left out, whatever its list says.
	must(r.Leave(ctx, "nb"))
	if got, _ := r.ClusterRooms(ctx, "na"); len(got) != 0 {
		t.Fatalf("rooms of a node that left: %+v", got)
	}
	// From b, a's room is listed; an empty list deletes the key.
	must(r.Heartbeat(ctx, "nb", b, time.Minute))
	if got, _ := r.ClusterRooms(ctx, "nb"); len(got) != 1 || got[0].Name != "8200" || got[0].Node != "na" {
		t.Fatalf("rooms seen from nb: %+v", got)
	}
	must(r.SetNodeRooms(ctx, "na", nil, time.Minute))
	if n := r.c.Exists(ctx, "rooms:na").Val(); n != 0 {
		t.Fatal("an empty list left rooms:na")
	}
}

// waitFor polls ok until it holds or d passes.
func waitFor(d time.Duration, ok func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
