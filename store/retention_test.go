package store

import (
	"context"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
)

// Prune deletes ended calls, closed room stays and sent or dropped webhooks
// older than the retention, and expired registrations; nothing else.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	old, recent := t0.Add(-40*24*time.Hour), t0.Add(-time.Hour)
	cut := t0.Add(-30 * 24 * time.Hour)
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	left := api.CallLeg{ID: "l", Role: "caller", Codec: "PCMU", Rate: 8000, Joined: old}
	mustDo(s.CallStarted(ctx, api.CallRecord{ID: "old-ended", Started: old}))
	mustDo(s.CallEnded(ctx, "old-ended", old.Add(time.Minute), api.HangupCause{By: "caller"}, []api.CallLeg{left}))
	mustDo(s.CallStarted(ctx, api.CallRecord{ID: "old-active", Started: old}))
	mustDo(s.CallStarted(ctx, api.CallRecord{ID: "recent-ended", Started: recent}))
	mustDo(s.CallEnded(ctx, "recent-ended", recent.Add(time.Minute), api.HangupCause{By: "caller"}, nil))

	mustDo(s.LegJoined(ctx, api.RoomEvent{Room: "r", Leg: "a", Name: "a", Joined: old}))
	mustDo(s.LegLeft(ctx, "r", "a", old.Add(time.Minute)))
	mustDo(s.LegJoined(ctx, api.RoomEvent{Room: "r", Leg: "b", Name: "b", Joined: old})) // still in

	mustDo(s.Enqueue(ctx, OutboxEntry{ID: "sent-old", Created: old}, OutboxEntry{ID: "dropped-old", Created: old},
		OutboxEntry{ID: "pending-old", Created: old}, OutboxEntry{ID: "sent-recent", Created: recent}))
	mustDo(s.Delivered(ctx, "sent-old", old))
	mustDo(s.Delivered(ctx, "sent-recent", recent))
	s.now = func() time.Time { return old }
	mustDo(s.Drop(ctx, "dropped-old", "too old"))

	mustDo(s.SaveBinding(ctx, Binding{AOR: "alice", Contact: "sip:a@1", Expires: t0.Add(-time.Second)}))
	mustDo(s.SaveBinding(ctx, Binding{AOR: "alice", Contact: "sip:a@2", Expires: t0.Add(time.Minute)}))

	p, err := s.Prune(ctx, cut, t0)
	if err != nil {
		t.Fatal(err)
	}
	if p != (Pruned{Calls: 1, RoomEvents: 1, Outbox: 2, Bindings: 1}) {
		t.Errorf("pruned %+v", p)
	}
	calls, _, _ := s.Calls(ctx, api.CallQuery{})
	if ids := callIDs(calls); len(ids) != 2 || ids[0] != "recent-ended" || ids[1] != "old-active" {
		t.Errorf("calls kept: %v", ids)
	}
	var legs int
	mustDo(s.db.QueryRow(`SELECT COUNT(*) FROM call_legs`).Scan(&legs))
	if legs != 0 {
		t.Errorf("%d legs of pruned calls left (foreign key cascade)", legs)
	}
	h, _ := s.RoomHistory(ctx, "r", time.Time{}, 10)
	if len(h) != 1 || h[0].Leg != "b" {
		t.Errorf("room history kept: %+v", h)
	}
	for id, want := range map[string]bool{"sent-old": false, "dropped-old": false, "pending-old": true, "sent-recent": true} {
		_, err := s.OutboxGet(ctx, id)
		if (err == nil) != want {
			t.Errorf("outbox %s kept=%v, want %v", id, err == nil, want)
		}
	}
	bs, _ := s.LoadBindings(ctx, t0)
	if len(bs) != 1 || bs[0].Contact != "sip:a@2" {
		t.Errorf("bindings kept: %+v", bs)
	}
}

// The pruner runs at once and then on its interval, and stops at Close.
func TestPrunerRuns(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, WithClock(func() time.Time { return t0 }))
	if err := s.CallStarted(ctx, api.CallRecord{ID: "old", Started: t0.Add(-100 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CallEnded(ctx, "old", t0.Add(-99*time.Hour), api.HangupCause{By: "caller"}, nil); err != nil {
		t.Fatal(err)
	}
	s.StartPruner(48*time.Hour, 10*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := s.Call(ctx, "old"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pruner did not delete a call older than the retention")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
