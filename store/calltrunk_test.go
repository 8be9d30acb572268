package store

import (
	"context"
	"errors"
	"testing"

	"github.com/voxgate/voxgate/api"
)

// CallTrunk rewrites the trunk of a record (the trunk a failover ended
// on) and says so when there is no such record.
func TestCallTrunk(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	r := api.CallRecord{ID: "call_ft", CallID: "ft@host", Origin: "user", Caller: "alice", Callee: "0049", Action: "dial", Trunk: "a", Started: t0}
	if err := s.CallStarted(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.CallTrunk(ctx, "call_ft", "b"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Call(ctx, "call_ft"); err != nil || got.Trunk != "b" {
		t.Fatalf("trunk %q (%v), want b", got.Trunk, err)
	}
	if calls, _, err := s.Calls(ctx, api.CallQuery{Limit: 10}); err != nil || len(calls) != 1 || calls[0].Trunk != "b" {
		t.Fatalf("listed %+v (%v)", calls, err)
	}
	if err := s.CallTrunk(ctx, "call_none", "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown record: %v", err)
	}
}
