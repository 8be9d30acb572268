package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voxgate/voxgate/api"
)

// A file written by a version-1 voxgate (outbox and registrations only) is
// migrated to the current schema at Open, keeping its rows.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	if v, _ := schemaVersion(ctx, db); v != 1 {
		t.Fatalf("old file at version %d, want 1", v)
	}
	if _, err := db.Exec(`INSERT INTO outbox (id, endpoint, type, body, created_ns, next_try_ns) VALUES ('old-1', 'crm', 'call.ended', '{}', ?, ?)`,
		t0.UnixNano(), t0.UnixNano()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`SELECT 1 FROM calls`); err == nil {
		t.Fatal("a version-1 file has the calls table")
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(migrations) {
		t.Fatalf("after Open: version %d (%v), want %d", v, err, len(migrations))
	}
	due, err := s.Due(ctx, t0, 10)
	if err != nil || len(due) != 1 || due[0].ID != "old-1" {
		t.Fatalf("the old outbox row after migrating: %+v %v", due, err)
	}
	if _, _, err := s.Calls(ctx, api.CallQuery{}); err != nil {
		t.Fatalf("calls after migrating: %v", err)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	// Opening again applies nothing twice.
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

// A file from a newer voxgate is refused, not damaged.
func TestMigrateRefusesNewer(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a version-99 file: %v", err)
	}
}

// A failing step leaves the previous version whole (the step's transaction
// rolls back).
func TestMigrateStepIsAtomic(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	db, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	steps := []string{`CREATE TABLE a (x INTEGER)`, `CREATE TABLE b (y INTEGER); CREATE TABLE a (z INTEGER)`}
	if err := migrate(ctx, db, steps); err == nil {
		t.Fatal("a failing step succeeded")
	}
	if v, _ := schemaVersion(ctx, db); v != 1 {
		t.Fatalf("version %d after a failed step 2, want 1", v)
	}
	if _, err := db.Exec(`SELECT 1 FROM b`); err == nil {
		t.Fatal("the failed step's first statement stayed")
	}
}
