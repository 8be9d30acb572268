package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/voxgate/voxgate/api"
)

// LegJoined notes that a participant joined a room (room history).
func (s *SQLite) LegJoined(ctx context.Context, e api.RoomEvent) error {
	if e.Joined.IsZero() {
		e.Joined = s.now()
	}
	_, err := s.exec(ctx, `INSERT INTO room_events (room, leg_id, call_id, name, joined_ns) VALUES (?, ?, ?, ?, ?)`,
		e.Room, e.Leg, e.CallID, e.Name, ns(e.Joined))
	if err != nil {
		return fmt.Errorf("store: room %s joined: %w", e.Room, err)
	}
	return nil
}

// LegLeft notes that leg left room: it closes the leg's open stay there.
func (s *SQLite) LegLeft(ctx context.Context, room, leg string, at time.Time) error {
	return s.exec1(ctx, "room "+room+" left",
		`UPDATE room_events SET left_ns = ? WHERE room = ? AND leg_id = ? AND left_ns IS NULL`, ns(at), room, leg)
}

// RoomHistory returns who was in room, newest stay first, those that began
// before until (zero: all), at most limit (<= 0: 100).
func (s *SQLite) RoomHistory(ctx context.Context, room string, until time.Time, limit int) ([]api.RoomEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	u := int64(1<<63 - 1)
	if !until.IsZero() {
		u = ns(until)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT room, leg_id, call_id, name, joined_ns, left_ns FROM room_events
		WHERE room = ? AND joined_ns < ? ORDER BY joined_ns DESC, id DESC LIMIT ?`, room, u, limit)
	if err != nil {
		return nil, fmt.Errorf("store: room %s history: %w", room, err)
	}
	defer rows.Close()
	var out []api.RoomEvent
	for rows.Next() {
		var e api.RoomEvent
		var joined int64
		var left sql.NullInt64
		if err := rows.Scan(&e.Room, &e.Leg, &e.CallID, &e.Name, &joined, &left); err != nil {
			return nil, fmt.Errorf("store: room %s history: %w", room, err)
		}
		e.Joined = fromNS(joined)
		if left.Valid {
			t := fromNS(left.Int64)
			e.Left = &t
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
