package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/voxgate/voxgate/api"
)

// RecordingStarted adds a recording to the index (no end, size 0 yet).
func (s *SQLite) RecordingStarted(ctx context.Context, r api.Recording) error {
	if r.ID == "" || r.Path == "" {
		return errors.New("store: recording without an id or a path")
	}
	if r.File == "" {
		r.File = filepath.Base(r.Path)
	}
	if r.Start.IsZero() {
		r.Start = s.now()
	}
	_, err := s.exec(ctx, `INSERT INTO recordings (id, room, file, path, start_ns) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(id) DO NOTHING`, r.ID, r.Room, r.File, r.Path, ns(r.Start))
	if err != nil {
		return fmt.Errorf("store: recording %s: %w", r.ID, err)
	}
	return nil
}

// RecordingEnded notes a recording's end and the file's size.
func (s *SQLite) RecordingEnded(ctx context.Context, id string, at time.Time, size int64) error {
	return s.exec1(ctx, "recording "+id+" ended",
		`UPDATE recordings SET end_ns = ?, size = ? WHERE id = ?`, ns(at), size, id)
}

// recoverRecordings ends the recordings a previous run left open, with the
// size their file has now.
func (s *SQLite) recoverRecordings(ctx context.Context, at time.Time) error {
	open, err := s.recordings(ctx, `WHERE end_ns IS NULL`)
	if err != nil {
		return err
	}
	for _, r := range open {
		var size int64
		end := at
		if st, err := os.Stat(r.Path); err == nil {
			size, end = st.Size(), st.ModTime()
		}
		if err := s.RecordingEnded(ctx, r.ID, end, size); err != nil {
			return err
		}
	}
	return nil
}

// Recordings lists the index, newest first, at most limit (<= 0: 100).
func (s *SQLite) Recordings(ctx context.Context, limit int) ([]api.Recording, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.recordings(ctx, `ORDER BY start_ns DESC, id DESC LIMIT ?`, limit)
}

// Recording returns one entry of the index.
func (s *SQLite) Recording(ctx context.Context, id string) (api.Recording, error) {
	rs, err := s.recordings(ctx, `WHERE id = ?`, id)
	if err != nil {
		return api.Recording{}, err
	}
	if len(rs) == 0 {
		return api.Recording{}, fmt.Errorf("store: recording %s: %w", id, ErrNotFound)
	}
	return rs[0], nil
}

func (s *SQLite) recordings(ctx context.Context, tail string, args ...any) ([]api.Recording, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, room, file, path, start_ns, end_ns, size FROM recordings `+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("store: recordings: %w", err)
	}
	defer rows.Close()
	var out []api.Recording
	for rows.Next() {
		var r api.Recording
		var start int64
		var end sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Room, &r.File, &r.Path, &start, &end, &r.Size); err != nil {
			return nil, fmt.Errorf("store: recordings: %w", err)
		}
		r.Start = fromNS(start)
		if end.Valid {
			t := fromNS(end.Int64)
			r.End = &t
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
