package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func ids(es []OutboxEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestOutboxDue(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	err := s.Enqueue(ctx,
		OutboxEntry{ID: "c", Endpoint: "crm", Type: "call.ended", Body: []byte(`{"n":3}`), Created: t0, NextTry: t0.Add(3 * time.Second)},
		OutboxEntry{ID: "a", Endpoint: "crm", Type: "call.started", Body: []byte(`{"n":1}`), Created: t0, NextTry: t0.Add(1 * time.Second)},
		OutboxEntry{ID: "b", Endpoint: "ops", Type: "call.answered", Body: []byte(`{"n":2}`), Created: t0, NextTry: t0.Add(2 * time.Second)},
		OutboxEntry{ID: "later", Endpoint: "crm", Type: "call.ended", Body: []byte(`{}`), Created: t0, NextTry: t0.Add(time.Hour)},
		OutboxEntry{ID: "now", Endpoint: "crm", Type: "room.joined", Body: []byte(`{}`), Created: t0}, // NextTry zero: due at Created
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		now   time.Time
		limit int
		want  []string
	}{
		{"before all", t0.Add(-time.Second), 10, nil},
		{"only created-now", t0, 10, []string{"now"}},
		{"oldest first", t0.Add(2 * time.Second), 10, []string{"now", "a", "b"}},
		{"limit", t0.Add(10 * time.Second), 2, []string{"now", "a"}},
		{"all", t0.Add(2 * time.Hour), 10, []string{"now", "a", "b", "c", "later"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Due(ctx, tc.now, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(tc.want) {
				t.Fatalf("Due(%v, %d) = %v, want %v", tc.now, tc.limit, ids(got), tc.want)
			}
		})
	}
	got, _ := s.Due(ctx, t0.Add(10*time.Second), 10)
	for _, e := range got {
		if e.ID == "b" {
			if e.Endpoint != "ops" || e.Type != "call.answered" || string(e.Body) != `{"n":2}` ||
				!e.Created.Equal(t0) || !e.NextTry.Equal(t0.Add(2*time.Second)) || e.Attempts != 0 {
				t.Fatalf("entry b read back as %+v", e)
			}
		}
	}
}

func TestOutboxLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	e := OutboxEntry{ID: "ev-1", Endpoint: "crm", Type: "call.ended", Body: []byte(`{"x":1}`), Created: t0}
	if err := s.Enqueue(ctx, e); err != nil {
		t.Fatal(err)
	}
	// A duplicate id is ignored, even with another body.
	dup := e
	dup.Body = []byte(`{"x":2}`)
	if err := s.Enqueue(ctx, dup); err != nil {
		t.Fatal(err)
	}
	due, err := s.Due(ctx, t0, 10)
	if err != nil || len(due) != 1 || string(due[0].Body) != `{"x":1}` {
		t.Fatalf("after duplicate enqueue: %v %+v", err, due)
	}

	// A failed attempt moves NextTry.
	if err := s.Retry(ctx, "ev-1", 1, t0.Add(30*time.Second), "503 Service Unavailable"); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.Due(ctx, t0.Add(29*time.Second), 10); len(due) != 0 {
		t.Fatalf("due before its retry time: %+v", due)
	}
	due, _ = s.Due(ctx, t0.Add(30*time.Second), 10)
	if len(due) != 1 || due[0].Attempts != 1 || due[0].LastError != "503 Service Unavailable" {
		t.Fatalf("after retry: %+v", due)
	}

	// Delivered: no longer due, and enqueueing the same id again does not bring it back.
	if err := s.Delivered(ctx, "ev-1", t0.Add(31*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, e); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.Due(ctx, t0.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("due after delivered: %+v", due)
	}
	st, err := s.OutboxGet(ctx, "ev-1")
	if err != nil || !st.Delivered.Equal(t0.Add(31*time.Second)) {
		t.Fatalf("OutboxGet = %+v, %v", st, err)
	}

	// Drop.
	if err := s.Enqueue(ctx, OutboxEntry{ID: "ev-2", Endpoint: "crm", Type: "x", Created: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Drop(ctx, "ev-2", "older than max_age"); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.Due(ctx, t0.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("due after drop: %+v", due)
	}
	st, _ = s.OutboxGet(ctx, "ev-2")
	if st.Dropped.IsZero() || st.DropReason != "older than max_age" {
		t.Fatalf("dropped state %+v", st)
	}

	// Unknown ids.
	for name, err := range map[string]error{
		"delivered": s.Delivered(ctx, "nope", t0),
		"retry":     s.Retry(ctx, "nope", 1, t0, ""),
		"drop":      s.Drop(ctx, "nope", ""),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s on an unknown id: %v, want ErrNotFound", name, err)
		}
	}
	if err := s.Enqueue(ctx, OutboxEntry{Endpoint: "crm"}); err == nil {
		t.Error("Enqueue without an id succeeded")
	}
}

// TestOutboxSurvivesReopen: what was enqueued is still due after the store is
// closed and opened again (a restart).
func TestOutboxSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := s.Enqueue(ctx, OutboxEntry{ID: fmt.Sprintf("e%02d", i), Endpoint: "crm", Type: "call.ended", Created: t0.Add(time.Duration(i) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delivered(ctx, "e00", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	due, err := s.Due(ctx, t0.Add(time.Minute), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 49 || due[0].ID != "e01" || due[48].ID != "e49" {
		t.Fatalf("after reopen %d due: first %v", len(due), ids(due[:min(3, len(due))]))
	}
}
