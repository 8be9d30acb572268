package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/voxgate/voxgate/api"
)

// Limits of a page of call history.
const (
	DefaultCallLimit = 50
	MaxCallLimit     = 500
)

// CallStarted writes a new call record (status active). It is written as
// soon as the call is routed, so a crash leaves a started row that the next
// start marks ended (RecoverInterrupted).
func (s *SQLite) CallStarted(ctx context.Context, r api.CallRecord) error {
	if r.ID == "" {
		return errors.New("store: call record without an id")
	}
	if r.Started.IsZero() {
		r.Started = s.now()
	}
	_, err := s.exec(ctx, `INSERT INTO calls
		(id, call_id, origin, caller, callee, context, rule, action, room, user, trunk, started_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
		r.ID, r.CallID, r.Origin, r.Caller, r.Callee, r.Context, r.Rule, r.Action, r.Room, r.User, r.Trunk, ns(r.Started))
	if err != nil {
		return fmt.Errorf("store: call %s started: %w", r.ID, err)
	}
	return nil
}

// CallAnswered notes when the call was answered (the first time only).
func (s *SQLite) CallAnswered(ctx context.Context, id string, at time.Time) error {
	return s.exec1(ctx, "call "+id+" answered",
		`UPDATE calls SET answered_ns = COALESCE(answered_ns, ?) WHERE id = ?`, ns(at), id)
}

// CallTrunk notes the trunk that carried a call (a dial through several
// trunks names the first in its record until a later one answers).
func (s *SQLite) CallTrunk(ctx context.Context, id, trunk string) error {
	return s.exec1(ctx, "call "+id+" trunk", `UPDATE calls SET trunk = ? WHERE id = ?`, trunk, id)
}

// CallEnded closes a call record: when, why, and its legs with their
// quality, in one transaction.
func (s *SQLite) CallEnded(ctx context.Context, id string, at time.Time, cause api.HangupCause, legs []api.CallLeg) error {
	err := s.inTx(ctx, func(tx txConn) error {
		res, err := tx.ExecContext(ctx, `UPDATE calls SET ended_ns = ?, cause_by = ?, cause_status = ?, cause_reason = ?
		WHERE id = ? AND ended_ns IS NULL`, ns(at), cause.By, cause.Status, cause.Reason, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM calls WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return nil // ended already
		}
		for i, l := range legs {
			q, err := json.Marshal(l.Quality)
			if err != nil {
				return err
			}
			var left any
			if l.Left != nil {
				left = ns(*l.Left)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO call_legs (call_id, seq, leg_id, role, name, codec, rate, joined_ns, left_ns, quality)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, i, l.ID, l.Role, l.Name, l.Codec, l.Rate, ns(l.Joined), left, string(q)); err != nil {
				return fmt.Errorf("leg %s: %w", l.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: call %s ended: %w", id, err)
	}
	return nil
}

// RecoverInterrupted closes what a previous run left open when it stopped
// without closing it (a crash, kill -9, power loss): calls still active are
// marked ended at at with cause {by: crash, reason: node restart}, room stays
// left, recordings ended (their size read from the file). Run it at start,
// before any call is taken. It returns the number of calls it closed.
func (s *SQLite) RecoverInterrupted(ctx context.Context, at time.Time) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: recover: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE calls SET ended_ns = MAX(?, started_ns), cause_by = 'crash', cause_status = 0,
		cause_reason = 'node restart' WHERE ended_ns IS NULL`, ns(at))
	if err != nil {
		return 0, fmt.Errorf("store: recover calls: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `UPDATE room_events SET left_ns = MAX(?, joined_ns) WHERE left_ns IS NULL`, ns(at)); err != nil {
		return 0, fmt.Errorf("store: recover room history: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: recover: %w", err)
	}
	if err := s.recoverRecordings(ctx, at); err != nil {
		return int(n), err
	}
	return int(n), nil
}

// exec1 runs an update that must touch one row (ErrNotFound otherwise).
func (s *SQLite) exec1(ctx context.Context, what, q string, args ...any) error {
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	return nil
}

const callColumns = `id, call_id, origin, caller, callee, context, rule, action, room, user, trunk,
	started_ns, answered_ns, ended_ns, cause_by, cause_status, cause_reason`

type scanner interface{ Scan(dest ...any) error }

func scanCall(sc scanner) (api.CallRecord, error) {
	var r api.CallRecord
	var started int64
	var answered, ended, status sql.NullInt64
	var by, reason sql.NullString
	if err := sc.Scan(&r.ID, &r.CallID, &r.Origin, &r.Caller, &r.Callee, &r.Context, &r.Rule, &r.Action, &r.Room, &r.User, &r.Trunk,
		&started, &answered, &ended, &by, &status, &reason); err != nil {
		return r, err
	}
	r.Started = fromNS(started)
	r.Status = api.CallActive
	if answered.Valid {
		t := fromNS(answered.Int64)
		r.Answered = &t
	}
	if ended.Valid {
		t := fromNS(ended.Int64)
		r.Ended = &t
		r.Status = api.CallEnded
		r.Cause = &api.HangupCause{By: by.String, Status: int(status.Int64), Reason: reason.String}
	}
	return r, nil
}

// Call returns one call record with its legs.
func (s *SQLite) Call(ctx context.Context, id string) (api.CallRecord, error) {
	r, err := scanCall(s.db.QueryRowContext(ctx, `SELECT `+callColumns+` FROM calls WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("store: call %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("store: call %s: %w", id, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT leg_id, role, name, codec, rate, joined_ns, left_ns, quality
		FROM call_legs WHERE call_id = ? ORDER BY seq`, id)
	if err != nil {
		return r, fmt.Errorf("store: call %s legs: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var l api.CallLeg
		var joined int64
		var left sql.NullInt64
		var q string
		if err := rows.Scan(&l.ID, &l.Role, &l.Name, &l.Codec, &l.Rate, &joined, &left, &q); err != nil {
			return r, fmt.Errorf("store: call %s legs: %w", id, err)
		}
		l.Joined = fromNS(joined)
		if left.Valid {
			t := fromNS(left.Int64)
			l.Left = &t
		}
		if err := json.Unmarshal([]byte(q), &l.Quality); err != nil {
			return r, fmt.Errorf("store: call %s leg %s quality: %w", id, l.ID, err)
		}
		r.Legs = append(r.Legs, l)
	}
	return r, rows.Err()
}

// Calls lists call records newest first (by start, then id), filtered by q,
// without their legs. It returns one record more than it shows when there
// is a next page: more reports whether there is.
func (s *SQLite) Calls(ctx context.Context, q api.CallQuery) (calls []api.CallRecord, more bool, err error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultCallLimit
	}
	limit = min(limit, MaxCallLimit)
	var where []string
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if !q.Since.IsZero() {
		add("started_ns >= ?", ns(q.Since))
	}
	if !q.Until.IsZero() {
		add("started_ns < ?", ns(q.Until))
	}
	if q.Number != "" {
		add("(caller = ? OR callee = ?)", q.Number, q.Number)
	}
	if q.User != "" {
		add("(caller = ? OR callee = ? OR user = ?)", q.User, q.User, q.User)
	}
	if q.Room != "" {
		add("room = ?", q.Room)
	}
	switch q.Status {
	case "":
	case api.CallActive:
		add("ended_ns IS NULL")
	case api.CallEnded:
		add("ended_ns IS NOT NULL")
	default:
		return nil, false, fmt.Errorf("store: unknown call status %q (want active or ended)", q.Status)
	}
	if !q.AfterStarted.IsZero() {
		add("(started_ns < ? OR (started_ns = ? AND id < ?))", ns(q.AfterStarted), ns(q.AfterStarted), q.AfterID)
	}
	query := `SELECT ` + callColumns + ` FROM calls`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY started_ns DESC, id DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("store: calls: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanCall(rows)
		if err != nil {
			return nil, false, fmt.Errorf("store: calls: %w", err)
		}
		calls = append(calls, r)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("store: calls: %w", err)
	}
	if len(calls) > limit {
		return calls[:limit], true, nil
	}
	return calls, false, nil
}
