package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema's steps, in order: migrations[i] brings the
// schema from version i to i+1. A step is never edited once released; a
// change is a new step at the end. Each step runs in its own transaction
// together with the update of schema_version, so a crash mid-way leaves the
// previous version whole.
var migrations = []string{
	// 1: the webhook outbox and registrations.
	`CREATE TABLE outbox (
		id          TEXT PRIMARY KEY,
		endpoint    TEXT NOT NULL,
		type        TEXT NOT NULL,
		body        BLOB NOT NULL,
		created_ns  INTEGER NOT NULL,
		attempts    INTEGER NOT NULL DEFAULT 0,
		next_try_ns INTEGER NOT NULL,
		last_error  TEXT NOT NULL DEFAULT '',
		delivered_ns INTEGER,
		dropped_ns  INTEGER,
		drop_reason TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX outbox_due ON outbox(next_try_ns) WHERE delivered_ns IS NULL AND dropped_ns IS NULL;
	CREATE TABLE bindings (
		aor        TEXT NOT NULL,
		contact    TEXT NOT NULL,
		data       BLOB NOT NULL,
		expires_ns INTEGER NOT NULL,
		PRIMARY KEY (aor, contact)
	);
	CREATE INDEX bindings_expires ON bindings(expires_ns);`,

	// 2: call records with their legs, room history, the recordings' index.
	`CREATE TABLE calls (
		id           TEXT PRIMARY KEY,
		call_id      TEXT NOT NULL,
		origin       TEXT NOT NULL,
		caller       TEXT NOT NULL,
		callee       TEXT NOT NULL,
		context      TEXT NOT NULL DEFAULT '',
		rule         TEXT NOT NULL DEFAULT '',
		action       TEXT NOT NULL DEFAULT '',
		room         TEXT NOT NULL DEFAULT '',
		user         TEXT NOT NULL DEFAULT '',
		trunk        TEXT NOT NULL DEFAULT '',
		started_ns   INTEGER NOT NULL,
		answered_ns  INTEGER,
		ended_ns     INTEGER,
		cause_by     TEXT,
		cause_status INTEGER,
		cause_reason TEXT
	);
	CREATE INDEX calls_started ON calls(started_ns, id);
	CREATE INDEX calls_ended ON calls(ended_ns) WHERE ended_ns IS NOT NULL;
	CREATE INDEX calls_active ON calls(started_ns) WHERE ended_ns IS NULL;
	CREATE INDEX calls_caller ON calls(caller, started_ns);
	CREATE INDEX calls_callee ON calls(callee, started_ns);
	CREATE INDEX calls_room ON calls(room, started_ns) WHERE room != '';
	CREATE TABLE call_legs (
		call_id   TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
		seq       INTEGER NOT NULL,
		leg_id    TEXT NOT NULL,
		role      TEXT NOT NULL,
		name      TEXT NOT NULL,
		codec     TEXT NOT NULL,
		rate      INTEGER NOT NULL,
		joined_ns INTEGER NOT NULL,
		left_ns   INTEGER,
		quality   TEXT NOT NULL,
		PRIMARY KEY (call_id, seq)
	);
	CREATE TABLE room_events (
		id        INTEGER PRIMARY KEY,
		room      TEXT NOT NULL,
		leg_id    TEXT NOT NULL,
		call_id   TEXT NOT NULL DEFAULT '',
		name      TEXT NOT NULL,
		joined_ns INTEGER NOT NULL,
		left_ns   INTEGER
	);
	CREATE INDEX room_events_room ON room_events(room, joined_ns);
	CREATE INDEX room_events_open ON room_events(leg_id) WHERE left_ns IS NULL;
	CREATE TABLE recordings (
		id       TEXT PRIMARY KEY,
		room     TEXT NOT NULL,
		file     TEXT NOT NULL,
		path     TEXT NOT NULL,
		start_ns INTEGER NOT NULL,
		end_ns   INTEGER,
		size     INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX recordings_start ON recordings(start_ns);`,
}

// migrate applies the steps of steps that the database lacks. Two processes
// opening a new file at once are safe: each step's transaction takes the write
// lock at BEGIN (_txlock=immediate) and reads the version inside it.
func migrate(ctx context.Context, db *sql.DB, steps []string) error {
	if _, err := db.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	for {
		done, err := migrateOne(ctx, db, steps)
		if err != nil || done {
			return err
		}
	}
}

func migrateOne(ctx context.Context, db *sql.DB, steps []string) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	v, err := schemaVersion(ctx, tx)
	if err != nil {
		return false, err
	}
	if v > len(steps) {
		return false, fmt.Errorf("schema version %d is newer than this program knows (%d): a newer voxgate wrote this file", v, len(steps))
	}
	if v == len(steps) {
		return true, tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, steps[v]); err != nil {
		return false, fmt.Errorf("migration %d: %w", v+1, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES (?)`, v+1); err != nil {
		return false, err
	}
	return false, tx.Commit()
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema_version: %w", err)
	}
	return int(v.Int64), nil
}

// SchemaVersion returns the database's schema version.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	return schemaVersion(ctx, s.db)
}
