package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Binding is one registered contact, as the store keeps it (the SIP side's
// binding, field for field, and in a cluster the node that took it;
// cmd/voxgate converts).
type Binding struct {
	AOR       string    `json:"aor"`
	Contact   string    `json:"contact"`
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	CallID    string    `json:"call_id"`
	CSeq      uint32    `json:"cseq"`
	Expires   time.Time `json:"expires"`
	UserAgent string    `json:"user_agent"`
	// Node is the SIP address (cluster.advertise) of the node that took the
	// registration, in a cluster: a WebSocket binding is reached through it.
	Node string `json:"node,omitempty"`
}

// SaveBinding adds or replaces the binding of (AOR, Contact).
func (s *SQLite) SaveBinding(ctx context.Context, b Binding) error {
	if b.AOR == "" || b.Contact == "" {
		return errors.New("store: binding without an address-of-record or a contact")
	}
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO bindings (aor, contact, data, expires_ns) VALUES (?, ?, ?, ?)
		ON CONFLICT(aor, contact) DO UPDATE SET data = excluded.data, expires_ns = excluded.expires_ns`,
		b.AOR, b.Contact, data, ns(b.Expires))
	if err != nil {
		return fmt.Errorf("store: save binding %s %s: %w", b.AOR, b.Contact, err)
	}
	return nil
}

// DeleteBinding removes the binding of (aor, contact); contact "" removes
// every binding of aor. Removing what is not there is not an error.
func (s *SQLite) DeleteBinding(ctx context.Context, aor, contact string) error {
	var err error
	if contact == "" {
		_, err = s.exec(ctx, `DELETE FROM bindings WHERE aor = ?`, aor)
	} else {
		_, err = s.exec(ctx, `DELETE FROM bindings WHERE aor = ? AND contact = ?`, aor, contact)
	}
	if err != nil {
		return fmt.Errorf("store: delete binding %s %s: %w", aor, contact, err)
	}
	return nil
}

// LoadBindings deletes the bindings expired at now and returns the others.
func (s *SQLite) LoadBindings(ctx context.Context, now time.Time) ([]Binding, error) {
	if err := s.PruneBindings(ctx, now); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM bindings ORDER BY aor, contact`)
	if err != nil {
		return nil, fmt.Errorf("store: load bindings: %w", err)
	}
	defer rows.Close()
	var out []Binding
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("store: load bindings: %w", err)
		}
		var b Binding
		if err := json.Unmarshal(data, &b); err != nil {
			return nil, fmt.Errorf("store: load bindings: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// PruneBindings deletes the bindings expired at now.
func (s *SQLite) PruneBindings(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM bindings WHERE expires_ns <= ?`, ns(now)); err != nil {
		return fmt.Errorf("store: prune bindings: %w", err)
	}
	return nil
}
