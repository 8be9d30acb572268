package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// OutboxEntry is one webhook delivery waiting in the outbox.
type OutboxEntry struct {
	ID        string // idempotency id, unique; Enqueue ignores a duplicate
	Endpoint  string // endpoint name from the config
	Type      string // event type, e.g. "call.ended"
	Body      []byte // the JSON body to send
	Created   time.Time
	Attempts  int
	NextTry   time.Time
	LastError string
}

// Enqueue adds entries to the outbox in one transaction. An entry whose ID is
// already there (pending, delivered or dropped) is ignored, so a producer that
// retries after a crash does not send an event twice. A zero Created is now;
// a zero NextTry is Created (due at once).
func (s *SQLite) Enqueue(ctx context.Context, entries ...OutboxEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for _, e := range entries {
		if e.ID == "" {
			return errors.New("store: outbox entry without an id")
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: enqueue: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO outbox
		(id, endpoint, type, body, created_ns, attempts, next_try_ns, last_error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("store: enqueue: %w", err)
	}
	defer st.Close()
	now := s.now()
	for _, e := range entries {
		if e.Created.IsZero() {
			e.Created = now
		}
		if e.NextTry.IsZero() {
			e.NextTry = e.Created
		}
		body := e.Body
		if body == nil {
			body = []byte{}
		}
		if _, err := st.ExecContext(ctx, e.ID, e.Endpoint, e.Type, body,
			ns(e.Created), e.Attempts, ns(e.NextTry), e.LastError); err != nil {
			return fmt.Errorf("store: enqueue %s: %w", e.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: enqueue: %w", err)
	}
	return nil
}

// Due returns the entries neither delivered nor dropped whose NextTry is at or
// before now, oldest NextTry first, at most limit (limit <= 0 means 100).
func (s *SQLite) Due(ctx context.Context, now time.Time, limit int) ([]OutboxEntry, error) {
	return s.due(ctx, "", now, limit)
}

// DueFor is Due for the entries of one endpoint (so that a slow endpoint's
// backlog never hides another's).
func (s *SQLite) DueFor(ctx context.Context, endpoint string, now time.Time, limit int) ([]OutboxEntry, error) {
	return s.due(ctx, endpoint, now, limit)
}

// due lists due entries, of endpoint only when it is not empty.
func (s *SQLite) due(ctx context.Context, endpoint string, now time.Time, limit int) ([]OutboxEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, endpoint, type, body, created_ns, attempts, next_try_ns, last_error
		FROM outbox WHERE delivered_ns IS NULL AND dropped_ns IS NULL AND next_try_ns <= ? AND (? = '' OR endpoint = ?)
		ORDER BY next_try_ns, created_ns, id LIMIT ?`, ns(now), endpoint, endpoint, limit)
	if err != nil {
		return nil, fmt.Errorf("store: due: %w", err)
	}
	defer rows.Close()
	var out []OutboxEntry
	for rows.Next() {
		var e OutboxEntry
		var created, next int64
		if err := rows.Scan(&e.ID, &e.Endpoint, &e.Type, &e.Body, &created, &e.Attempts, &next, &e.LastError); err != nil {
			return nil, fmt.Errorf("store: due: %w", err)
		}
		e.Created, e.NextTry = fromNS(created), fromNS(next)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: due: %w", err)
	}
	return out, nil
}

// DropOthers gives up every waiting entry whose endpoint is not in keep (an
// endpoint removed from the config) and reports how many.
func (s *SQLite) DropOthers(ctx context.Context, keep []string, reason string) (int, error) {
	q := `UPDATE outbox SET dropped_ns = ?, drop_reason = ? WHERE delivered_ns IS NULL AND dropped_ns IS NULL`
	args := []any{ns(s.now()), reason}
	if len(keep) > 0 {
		q += ` AND endpoint NOT IN (?` + strings.Repeat(`, ?`, len(keep)-1) + `)`
		for _, k := range keep {
			args = append(args, k)
		}
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("store: outbox drop others: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Delivered marks the entry delivered at at; it is no longer due and is pruned
// by retention. Marking a delivered entry again is not an error.
func (s *SQLite) Delivered(ctx context.Context, id string, at time.Time) error {
	return s.outboxUpdate(ctx, "delivered", id,
		`UPDATE outbox SET delivered_ns = COALESCE(delivered_ns, ?) WHERE id = ?`, ns(at), id)
}

// Retry records a failed attempt: the attempt count so far, when to try next
// and the error.
func (s *SQLite) Retry(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error {
	return s.outboxUpdate(ctx, "retry", id,
		`UPDATE outbox SET attempts = ?, next_try_ns = ?, last_error = ? WHERE id = ?`,
		attempts, ns(next), lastErr, id)
}

// Drop gives the entry up (too old, or its endpoint is gone): it is no longer
// due and is pruned by retention.
func (s *SQLite) Drop(ctx context.Context, id string, reason string) error {
	return s.outboxUpdate(ctx, "drop", id,
		`UPDATE outbox SET dropped_ns = COALESCE(dropped_ns, ?), drop_reason = ? WHERE id = ?`,
		ns(s.now()), reason, id)
}

func (s *SQLite) outboxUpdate(ctx context.Context, what, id, q string, args ...any) error {
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: outbox %s %s: %w", what, id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: outbox %s %s: %w", what, id, ErrNotFound)
	}
	return nil
}

// OutboxState is an entry's full row, for tests and tools.
type OutboxState struct {
	OutboxEntry
	Delivered  time.Time
	Dropped    time.Time
	DropReason string
}

// OutboxGet returns one entry with its delivery state.
func (s *SQLite) OutboxGet(ctx context.Context, id string) (OutboxState, error) {
	var o OutboxState
	var created, next int64
	var del, drop sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT id, endpoint, type, body, created_ns, attempts, next_try_ns, last_error,
		delivered_ns, dropped_ns, drop_reason FROM outbox WHERE id = ?`, id).Scan(
		&o.ID, &o.Endpoint, &o.Type, &o.Body, &created, &o.Attempts, &next, &o.LastError, &del, &drop, &o.DropReason)
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("store: outbox %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return o, fmt.Errorf("store: outbox %s: %w", id, err)
	}
	o.Created, o.NextTry, o.Delivered, o.Dropped = fromNS(created), fromNS(next), nullNS(del), nullNS(drop)
	return o, nil
}
