package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// Paths with spaces and URI characters open the file they name.
func TestOpenOddPaths(t *testing.T) {
	for _, name := range []string{"with space", "hash#and?query", "per%cent"} {
		dir := filepath.Join(t.TempDir(), name)
		s, err := OpenDir(context.Background(), dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s.Close()
		if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
			t.Errorf("%s: the file is not where asked: %v", name, err)
		}
	}
}
