package store

import (
	"context"
	"slices"
	"testing"
	"time"
)

// A node's outbox in Redis: enqueue (an id twice is kept once), due by
// next try, retry, delivered; a dead node's waiting entries are taken over
// by a live node, due at once, and only once; a live node's are not.
func TestRedisOutbox(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	now := time.Now()
	a, b := r.Outbox("a"), r.Outbox("b")
	for _, n := range []string{"a", "b"} {
		if err := r.Heartbeat(ctx, n, "sip:"+n, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	e1 := OutboxEntry{ID: "evt_1@crm", Endpoint: "crm", Type: "call.ended", Body: []byte(`{"id":"evt_1"}`), Created: now}
	e2 := OutboxEntry{ID: "evt_2@crm", Endpoint: "crm", Type: "call.ended", Body: []byte(`{"id":"evt_2"}`), Created: now, NextTry: now.Add(time.Hour)}
	e3 := OutboxEntry{ID: "evt_3@ops", Endpoint: "ops", Type: "registration", Body: []byte(`{}`), Created: now}
	if err := a.Enqueue(ctx, e1, e2, e3); err != nil {
		t.Fatal(err)
	}
	dup := e1
	dup.Body = []byte(`changed`)
	if err := a.Enqueue(ctx, dup); err != nil {
		t.Fatal(err)
	}
	due, err := a.DueFor(ctx, "crm", now.Add(time.Second), 0)
	if err != nil || len(due) != 1 || due[0].ID != "evt_1@crm" || string(due[0].Body) != `{"id":"evt_1"}` {
		t.Fatalf("due for crm: %+v %v (want evt_1 as first enqueued)", due, err)
	}
	if got, _ := b.DueFor(ctx, "crm", now.Add(2*time.Hour), 0); len(got) != 0 {
		t.Fatalf("node b sees node a's entries: %+v", got)
	}
	if err := a.Retry(ctx, "evt_1@crm", 1, now.Add(time.Minute), "refused"); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.DueFor(ctx, "crm", now.Add(time.Second), 0); len(got) != 0 {
		t.Fatalf("a retried entry is due before its next try: %+v", got)
	}
	if got, _ := a.DueFor(ctx, "crm", now.Add(2*time.Minute), 0); len(got) != 1 || got[0].Attempts != 1 || got[0].LastError != "refused" {
		t.Fatalf("the retried entry: %+v", got)
	}
	if err := a.Delivered(ctx, "evt_3@ops", now); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.DueFor(ctx, "ops", now.Add(time.Hour), 0); len(got) != 0 {
		t.Fatalf("a delivered entry is still due: %+v", got)
	}
	if err := a.Enqueue(ctx, e3); err != nil { // delivered ids are forgotten: a new event has a new id
		t.Fatal(err)
	}

	// a is alive: b takes nothing.
	if took, err := b.Adopt(ctx, []string{"crm", "ops"}); err != nil || len(took) != 0 {
		t.Fatalf("b took %v from a live node (%v)", took, err)
	}
	// a dies (its liveness key expires): b takes its three entries, due now.
	if err := r.Leave(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	took, err := b.Adopt(ctx, []string{"crm", "ops"})
	if err != nil || took["a"] != 3 {
		t.Fatalf("b took %v from the dead node a (%v), want 3", took, err)
	}
	if again, _ := b.Adopt(ctx, []string{"crm", "ops"}); len(again) != 0 {
		t.Fatalf("taken twice: %v", again)
	}
	var ids []string
	for _, ep := range []string{"crm", "ops"} {
		got, err := b.DueFor(ctx, ep, time.Now().Add(time.Second), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			ids = append(ids, e.ID)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"evt_1@crm", "evt_2@crm", "evt_3@ops"}) {
		t.Fatalf("b's due entries after taking a's over: %v", ids)
	}
	if got, _ := a.DueFor(ctx, "crm", now.Add(2*time.Hour), 0); len(got) != 0 {
		t.Fatalf("the dead node's queue still has %+v", got)
	}
	// a comes back and delivers what it had in flight: b finds it gone.
	if err := a.Delivered(ctx, "evt_2@crm", now); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.DueFor(ctx, "crm", time.Now().Add(time.Second), 0); len(got) != 1 || got[0].ID != "evt_1@crm" {
		t.Fatalf("b's crm entries after a delivered evt_2: %+v", got)
	}
	if n, err := b.DropOthers(ctx, []string{"crm"}, "gone"); err != nil || n != 1 {
		t.Fatalf("drop others: %d %v, want 1 (ops)", n, err)
	}
}
