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

// openTwo opens two handles on one new store file (as two processes
// would), both closed when the test ends.
func openTwo(t *testing.T) (a, b *SQLite) {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	a, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err = Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// t0 is a fixed instant the tests count from.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
