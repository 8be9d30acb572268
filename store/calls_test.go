package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
)

// seedCalls writes n calls a second apart from t0 (caller u<i%3>, callee
// n<i%4>, room r<i%2> for even i), ending those with i%5 != 0.
func seedCalls(t *testing.T, s *SQLite, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		r := api.CallRecord{ID: fmt.Sprintf("call_%03d", i), CallID: fmt.Sprintf("leg-%d", i), Origin: "user",
			Caller: fmt.Sprintf("u%d", i%3), Callee: fmt.Sprintf("n%d", i%4), Action: "dial", Started: t0.Add(time.Duration(i) * time.Second)}
		if i%2 == 0 {
			r.Action, r.Room = "room", fmt.Sprintf("r%d", i%4/2)
		}
		if err := s.CallStarted(ctx, r); err != nil {
			t.Fatal(err)
		}
		if i%5 != 0 {
			if err := s.CallEnded(ctx, r.ID, r.Started.Add(30*time.Second), api.HangupCause{By: "caller"}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func callIDs(cs []api.CallRecord) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestCallsFilters(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	seedCalls(t, s, 20)
	tests := []struct {
		name string
		q    api.CallQuery
		want []string
	}{
		{"newest first, limit", api.CallQuery{Limit: 3}, []string{"call_019", "call_018", "call_017"}},
		{"since", api.CallQuery{Since: t0.Add(17 * time.Second)}, []string{"call_019", "call_018", "call_017"}},
		{"until", api.CallQuery{Until: t0.Add(2 * time.Second)}, []string{"call_001", "call_000"}},
		{"since and until", api.CallQuery{Since: t0.Add(5 * time.Second), Until: t0.Add(7 * time.Second)}, []string{"call_006", "call_005"}},
		{"number matches caller", api.CallQuery{Number: "u2", Until: t0.Add(9 * time.Second)}, []string{"call_008", "call_005", "call_002"}},
		{"number matches callee", api.CallQuery{Number: "n3", Until: t0.Add(12 * time.Second)}, []string{"call_011", "call_007", "call_003"}},
		{"room", api.CallQuery{Room: "r1", Until: t0.Add(12 * time.Second)}, []string{"call_010", "call_006", "call_002"}},
		{"active", api.CallQuery{Status: api.CallActive}, []string{"call_015", "call_010", "call_005", "call_000"}},
		{"ended", api.CallQuery{Status: api.CallEnded, Limit: 2}, []string{"call_019", "call_018"}},
		{"cursor", api.CallQuery{AfterStarted: t0.Add(3 * time.Second), AfterID: "call_003"}, []string{"call_002", "call_001", "call_000"}},
		{"nothing", api.CallQuery{Number: "nobody"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := s.Calls(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(callIDs(got)) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", callIDs(got), tc.want)
			}
		})
	}
	if _, _, err := s.Calls(ctx, api.CallQuery{Status: "ringing"}); err == nil {
		t.Error("an unknown status was accepted")
	}
}

// Paging through every call with the (start, id) cursor sees each exactly
// once, also when several calls start in the same nanosecond.
func TestCallsPagination(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	for i := range 23 {
		at := t0.Add(time.Duration(i/4) * time.Second) // four calls share each start
		if err := s.CallStarted(ctx, api.CallRecord{ID: fmt.Sprintf("c%02d", i), Caller: "a", Callee: "b", Started: at}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	var q api.CallQuery
	q.Limit = 5
	pages := 0
	for {
		page, more, err := s.Calls(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range page {
			if seen[c.ID] {
				t.Fatalf("call %s on two pages", c.ID)
			}
			seen[c.ID] = true
		}
		if !more {
			break
		}
		last := page[len(page)-1]
		q.AfterStarted, q.AfterID = last.Started, last.ID
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 23 || pages != 5 {
		t.Fatalf("saw %d calls in %d pages, want 23 in 5", len(seen), pages)
	}
}

func TestCallLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	r := api.CallRecord{ID: "call_1", CallID: "abc@host", Origin: "trunk:carrier", Caller: "+4930123", Callee: "7000",
		Context: "public", Rule: "dialplan.yaml:12", Action: "pin", Room: "bridge", Started: t0}
	if err := s.CallStarted(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Call(ctx, "call_1")
	if err != nil || got.Status != api.CallActive || got.Ended != nil || got.Cause != nil || got.Rule != "dialplan.yaml:12" {
		t.Fatalf("started: %+v %v", got, err)
	}
	if err := s.CallAnswered(ctx, "call_1", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.CallAnswered(ctx, "call_1", t0.Add(5*time.Second)); err != nil { // the first answer stays
		t.Fatal(err)
	}
	rtt := 42.5
	left := t0.Add(time.Minute)
	legs := []api.CallLeg{{ID: "abc@host", Role: "caller", Name: "+4930123", Codec: "PCMA", Rate: 8000, Joined: t0, Left: &left,
		Quality: api.LegQuality{PacketsReceived: 2990, PacketsExpected: 3000, Lost: 10, LossPercent: 0.33, JitterMS: 4.2, RTTMS: &rtt, MOS: 4.32}}}
	cause := api.HangupCause{By: "caller"}
	if err := s.CallEnded(ctx, "call_1", left, cause, legs); err != nil {
		t.Fatal(err)
	}
	// A second end changes nothing.
	if err := s.CallEnded(ctx, "call_1", left.Add(time.Hour), api.HangupCause{By: "system"}, nil); err != nil {
		t.Fatal(err)
	}
	got, err = s.Call(ctx, "call_1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != api.CallEnded || !got.Answered.Equal(t0.Add(time.Second)) || !got.Ended.Equal(left) || *got.Cause != cause {
		t.Fatalf("ended: %+v", got)
	}
	if len(got.Legs) != 1 || got.Legs[0].Quality.MOS != 4.32 || *got.Legs[0].Quality.RTTMS != 42.5 || !got.Legs[0].Left.Equal(left) {
		t.Fatalf("legs: %+v", got.Legs)
	}
	for name, err := range map[string]error{
		"get":      func() error { _, err := s.Call(ctx, "nope"); return err }(),
		"answered": s.CallAnswered(ctx, "nope", t0),
		"ended":    s.CallEnded(ctx, "nope", t0, cause, nil),
	} {
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, api.ErrNotFound) {
			t.Errorf("%s of an unknown call: %v", name, err)
		}
	}
}

// Calls, room stays and recordings left open by a crash are closed at the
// next start, with cause crash / node restart.
func TestRecoverInterrupted(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	seedCalls(t, s, 10) // call_000 and call_005 stay active
	if err := s.LegJoined(ctx, api.RoomEvent{Room: "r0", Leg: "leg-0", CallID: "call_000", Name: "u0", Joined: t0}); err != nil {
		t.Fatal(err)
	}
	restart := t0.Add(time.Hour)
	n, err := s.RecoverInterrupted(ctx, restart)
	if err != nil || n != 2 {
		t.Fatalf("recovered %d (%v), want 2", n, err)
	}
	for _, id := range []string{"call_000", "call_005"} {
		c, _ := s.Call(ctx, id)
		if c.Status != api.CallEnded || c.Cause == nil || c.Cause.By != "crash" || c.Cause.Reason != "node restart" || !c.Ended.Equal(restart) {
			t.Errorf("%s after recovery: %+v %+v", id, c, c.Cause)
		}
	}
	c, _ := s.Call(ctx, "call_001")
	if c.Cause.By != "caller" {
		t.Errorf("a call that ended before the crash changed: %+v", c.Cause)
	}
	h, _ := s.RoomHistory(ctx, "r0", time.Time{}, 10)
	if len(h) != 1 || h[0].Left == nil || !h[0].Left.Equal(restart) {
		t.Errorf("room stay after recovery: %+v", h)
	}
	if n, _ := s.RecoverInterrupted(ctx, restart); n != 0 {
		t.Errorf("a second recovery closed %d calls", n)
	}
}

// A call's records are written with statements prepared once for the
// store's life, not parsed again for each call; Close finalizes them.
func TestHotStatementsPreparedOnce(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		s.stmtMu.Lock()
		defer s.stmtMu.Unlock()
		return len(s.stmts)
	}
	for i := range 50 {
		id := fmt.Sprintf("hot-%d", i)
		if err := s.CallStarted(ctx, api.CallRecord{ID: id, Started: t0}); err != nil {
			t.Fatal(err)
		}
		if err := s.CallAnswered(ctx, id, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 2 {
		t.Fatalf("%d statements prepared for 50 calls' starts and answers, want 2", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d statements left after Close", n)
	}
}
