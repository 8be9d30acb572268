package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// openTest opens a store in a new temporary directory and closes it when the
// test ends.
func openTest(t *testing.T, opts ...Option) *SQLite {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), FileName), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// t0 is a fixed instant the tests count from.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
