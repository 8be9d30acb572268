package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
)

const writerEnv = "VOXGATE_STORE_WRITER"

// writeMany enqueues n entries and writes n calls, one transaction each.
func writeMany(ctx context.Context, s *SQLite, prefix string, n int) error {
	for i := range n {
		if err := s.Enqueue(ctx, OutboxEntry{ID: fmt.Sprintf("%s-%d", prefix, i), Endpoint: "e", Type: "t", Created: t0}); err != nil {
			return err
		}
		id := fmt.Sprintf("%s-call-%d", prefix, i)
		if err := s.CallStarted(ctx, api.CallRecord{ID: id, Started: t0.Add(time.Duration(i))}); err != nil {
			return err
		}
		if err := s.CallEnded(ctx, id, t0.Add(time.Second), api.HangupCause{By: "caller"}, []api.CallLeg{{ID: "l", Codec: "PCMU"}}); err != nil {
			return err
		}
	}
	return nil
}

// TestWriterProcess is the second process of TestTwoProcesses (it does
// nothing when run on its own).
func TestWriterProcess(t *testing.T) {
	path := os.Getenv(writerEnv)
	if path == "" {
		t.Skip("run by TestTwoProcesses")
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := writeMany(context.Background(), s, "child", 200); err != nil {
		t.Fatal(err)
	}
}

// Two processes write to the same file at once: SQLite's locking
// serialises them, every write lands, and the file checks out.
func TestTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second process")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	child := exec.Command(os.Args[0], "-test.run=^TestWriterProcess$", "-test.count=1")
	child.Env = append(os.Environ(), writerEnv+"="+path)
	out := make(chan error, 1)
	var childOut []byte
	go func() {
		var err error
		childOut, err = child.CombinedOutput()
		out <- err
	}()
	if err := writeMany(ctx, s, "parent", 200); err != nil {
		t.Fatal(err)
	}
	if err := <-out; err != nil {
		t.Fatalf("the second process failed: %v\n%s", err, childOut)
	}
	due, err := s.Due(ctx, t0, 1000)
	if err != nil || len(due) != 400 {
		t.Fatalf("%d outbox entries (%v), want 400", len(due), err)
	}
	calls, _, err := s.Calls(ctx, api.CallQuery{Limit: 500, Status: api.CallEnded})
	if err != nil || len(calls) != 400 {
		t.Fatalf("%d ended calls (%v), want 400", len(calls), err)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

// Two handles on one file in one process, writing from many goroutines.
func TestTwoHandles(t *testing.T) {
	ctx := context.Background()
	a, b := openTwo(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- writeMany(ctx, s, fmt.Sprintf("g%d", i), 25)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	due, err := b.Due(ctx, t0, 1000)
	if err != nil || len(due) != 200 {
		t.Fatalf("%d entries seen through the other handle (%v), want 200", len(due), err)
	}
	if err := a.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}
