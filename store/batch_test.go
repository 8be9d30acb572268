package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
)

// A batch is one transaction: another handle sees none of its writes until
// it is committed, then all of them; a failing op is undone alone (a
// CallEnded whose leg cannot be written leaves its call active), the ops
// after it still run; and the file is left unlocked for the next writer.
func TestWriteBatch(t *testing.T) {
	ctx := context.Background()
	a, b := openTwo(t)

	// c-bad already has a leg 0, so that its CallEnded fails at the leg
	// after its update.
	if err := a.CallStarted(ctx, api.CallRecord{ID: "c-bad", Started: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.db.ExecContext(ctx, `INSERT INTO call_legs (call_id, seq, leg_id, role, name, codec, rate, joined_ns, quality)
		VALUES ('c-bad', 0, 'x', 'caller', '', 'PCMU', 8000, 0, '{}')`); err != nil {
		t.Fatal(err)
	}
	legs := []api.CallLeg{{ID: "l1", Role: "caller", Codec: "PCMU", Rate: 8000, Joined: t0}}
	var seenInside error
	var ops []func(context.Context) error
	for i := range 3 {
		id := fmt.Sprintf("c%d", i)
		ops = append(ops,
			func(ctx context.Context) error {
				return a.CallStarted(ctx, api.CallRecord{ID: id, Caller: "alice", Started: t0})
			},
			func(ctx context.Context) error { return a.CallAnswered(ctx, id, t0.Add(time.Second)) },
			func(ctx context.Context) error {
				return a.CallEnded(ctx, id, t0.Add(time.Minute), api.HangupCause{By: "caller"}, legs)
			})
	}
	ops = append(ops,
		func(ctx context.Context) error { return a.CallAnswered(ctx, "nobody", t0) }, // not found
		func(ctx context.Context) error {
			return a.CallEnded(ctx, "c-bad", t0.Add(time.Minute), api.HangupCause{By: "caller"}, legs)
		},
		func(ctx context.Context) error {
			_, seenInside = b.Call(ctx, "c0") // the other handle, while the batch is open
			return nil
		},
		func(ctx context.Context) error {
			return a.LegJoined(ctx, api.RoomEvent{Room: "r", Leg: "l1", CallID: "c0", Joined: t0})
		})
	errs, err := a.WriteBatch(ctx, ops)
	if err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	if len(errs) != len(ops) {
		t.Fatalf("%d errors for %d ops", len(errs), len(ops))
	}
	for i, e := range errs {
		switch i {
		case 9:
			if !errors.Is(e, ErrNotFound) {
				t.Errorf("op %d (CallAnswered of an unknown call): %v, want ErrNotFound", i, e)
			}
		case 10:
			if e == nil {
				t.Errorf("op %d (CallEnded with a conflicting leg) did not fail", i)
			}
		default:
			if e != nil {
				t.Errorf("op %d: %v", i, e)
			}
		}
	}
	if !errors.Is(seenInside, ErrNotFound) {
		t.Errorf("another handle saw the batch's record before its commit (err %v)", seenInside)
	}
	for i := range 3 {
		r, err := b.Call(ctx, fmt.Sprintf("c%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != api.CallEnded || r.Answered == nil || len(r.Legs) != 1 || r.Legs[0].ID != "l1" {
			t.Errorf("c%d after the batch: %+v", i, r)
		}
	}
	bad, err := b.Call(ctx, "c-bad")
	if err != nil {
		t.Fatal(err)
	}
	if bad.Status != api.CallActive || len(bad.Legs) != 1 || bad.Legs[0].ID != "x" {
		t.Errorf("the failed CallEnded was not undone alone: %+v", bad)
	}
	if h, err := b.RoomHistory(ctx, "r", time.Time{}, 0); err != nil || len(h) != 1 {
		t.Errorf("room history after the batch: %v, %v", h, err)
	}
	// The other handle can write at once (no lock left behind), and the
	// next batch works on the same connection.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := b.CallStarted(short, api.CallRecord{ID: "after", Started: t0}); err != nil {
		t.Fatalf("a write by another handle after the batch: %v", err)
	}
	// (c0 exists: its CallStarted again writes nothing and is no error.)
	if errs, err := a.WriteBatch(ctx, ops[:1]); err != nil || errs[0] != nil {
		t.Fatalf("a second batch: %v %v", errs, err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteBatch(ctx, ops[:1]); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteBatch after Close: %v, want ErrClosed", err)
	}
}
