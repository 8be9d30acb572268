package store

import (
	"context"
	"fmt"
	"time"
)

// DefaultRetention is how long history is kept when the config says nothing.
const DefaultRetention = 30 * 24 * time.Hour

// Pruned counts the rows one Prune deleted.
type Pruned struct {
	Calls, RoomEvents, Outbox, Bindings int64
}

// Prune deletes what is older than before: ended calls (with their legs)
// that ended before it, room stays that ended before it, outbox entries
// delivered or dropped before it, and registrations expired at now. Active
// calls, open room stays, pending outbox entries and the recordings' index
// are never pruned.
func (s *SQLite) Prune(ctx context.Context, before, now time.Time) (Pruned, error) {
	var p Pruned
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return p, fmt.Errorf("store: prune: %w", err)
	}
	defer tx.Rollback()
	steps := []struct {
		n *int64
		q string
		a []any
	}{
		{&p.Calls, `DELETE FROM calls WHERE ended_ns IS NOT NULL AND ended_ns < ?`, []any{ns(before)}},
		{&p.RoomEvents, `DELETE FROM room_events WHERE left_ns IS NOT NULL AND left_ns < ?`, []any{ns(before)}},
		{&p.Outbox, `DELETE FROM outbox WHERE (delivered_ns IS NOT NULL AND delivered_ns < ?) OR (dropped_ns IS NOT NULL AND dropped_ns < ?)`, []any{ns(before), ns(before)}},
		{&p.Bindings, `DELETE FROM bindings WHERE expires_ns <= ?`, []any{ns(now)}},
	}
	for _, st := range steps {
		res, err := tx.ExecContext(ctx, st.q, st.a...)
		if err != nil {
			return Pruned{}, fmt.Errorf("store: prune: %w", err)
		}
		*st.n, _ = res.RowsAffected()
	}
	if err := tx.Commit(); err != nil {
		return Pruned{}, fmt.Errorf("store: prune: %w", err)
	}
	return p, nil
}

// StartPruner prunes what is older than retention (<= 0: DefaultRetention)
// now and then every interval (<= 0: an hour) until Close.
func (s *SQLite) StartPruner(retention, interval time.Duration) {
	if retention <= 0 {
		retention = DefaultRetention
	}
	if interval <= 0 {
		interval = time.Hour
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			now := s.now()
			p, err := s.Prune(ctx, now.Add(-retention), now)
			cancel()
			if err != nil {
				s.log.Error("store: pruning history failed", "error", err)
			} else if p != (Pruned{}) {
				s.log.Info("store: pruned history", "retention", retention.String(), "calls", p.Calls,
					"room_events", p.RoomEvents, "outbox", p.Outbox, "bindings", p.Bindings)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
}
