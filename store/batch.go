package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// A batch writes many of the store's writes in one transaction: the call
// history's writes come three or more per call, and under a call load
// their commits (each one a write of the WAL) were most of what the store
// cost. Every method that writes takes part when it is called with the
// context WriteBatch hands its ops; a method that writes more than one
// statement (CallEnded) runs them in a savepoint of the batch, so it is
// still all or nothing.

// batchKey carries the batch in the context of WriteBatch's ops.
type batchKey struct{}

// batch is the store's batch connection, kept from one batch to the next
// with its statements prepared on it.
type batch struct {
	conn  *sql.Conn
	stmts stmtCache
}

// stmt returns q prepared on the batch's connection.
func (b *batch) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	return b.stmts.get(ctx, b.conn.PrepareContext, q)
}

// ExecContext runs q, prepared once on the batch's connection.
func (b *batch) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := b.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryRowContext runs a query in the batch's transaction.
func (b *batch) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return b.conn.QueryRowContext(ctx, q, args...)
}

// close closes the statements and gives the connection back (or, after an
// error, drops it: a connection whose transaction is in an unknown state is
// not used again).
func (b *batch) close(bad bool) {
	b.stmts.close()
	if bad {
		_ = b.conn.Raw(func(any) error { return driver.ErrBadConn }) // the pool closes it
	}
	_ = b.conn.Close()
}

// batchOf returns the batch ctx carries, or nil.
func batchOf(ctx context.Context) *batch {
	b, _ := ctx.Value(batchKey{}).(*batch)
	return b
}

// WriteBatch runs ops one after the other in one transaction, committed
// when the last has run. Each op gets a context that makes the store's
// writes part of it; an op that fails has written nothing (each method is
// all or nothing, as on its own), and its error is in errs[i]. err is not
// nil when the transaction failed: with errs nil nothing ran (the batch
// could not begin) and the ops may be written one by one; with errs set,
// they ran but the commit failed and nothing of them was kept.
func (s *SQLite) WriteBatch(ctx context.Context, ops []func(context.Context) error) (errs []error, err error) {
	s.batchMu.Lock()
	defer s.batchMu.Unlock()
	select {
	case <-s.stop:
		return nil, ErrClosed
	default:
	}
	if s.batch == nil {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("store: batch: %w", err)
		}
		s.batch = &batch{conn: conn}
	}
	b := s.batch
	if _, err := b.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		s.dropBatch()
		return nil, fmt.Errorf("store: batch: %w", err)
	}
	bctx := context.WithValue(ctx, batchKey{}, b)
	errs = make([]error, len(ops))
	for i, op := range ops {
		errs[i] = op(bctx)
	}
	if _, err := b.ExecContext(ctx, "COMMIT"); err != nil {
		_, rerr := b.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		if rerr != nil {
			s.dropBatch()
		}
		return errs, fmt.Errorf("store: batch of %d writes: commit: %w", len(ops), err)
	}
	return errs, nil
}

// dropBatch closes the batch connection after an error; the next batch
// opens another.
func (s *SQLite) dropBatch() {
	if s.batch != nil {
		s.batch.close(true)
		s.batch = nil
	}
}

// closeBatch gives the batch connection back (Close).
func (s *SQLite) closeBatch() {
	s.batchMu.Lock()
	defer s.batchMu.Unlock()
	if s.batch != nil {
		s.batch.close(false)
		s.batch = nil
	}
}

// txConn is what a multi-statement write runs its statements on: its own
// transaction, or the batch it is part of.
type txConn interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// inTx runs fn all or nothing: in a transaction of its own, or, in a
// batch, in a savepoint of the batch's transaction. fn returning
// errNoWrite undoes what it did and inTx returns nil.
func (s *SQLite) inTx(ctx context.Context, fn func(q txConn) error) error {
	if b := batchOf(ctx); b != nil {
		if _, err := b.ExecContext(ctx, "SAVEPOINT write"); err != nil {
			return err
		}
		err := fn(b)
		if err != nil {
			if _, rerr := b.ExecContext(ctx, "ROLLBACK TO write"); rerr != nil {
				return errors.Join(err, rerr)
			}
		}
		if _, rerr := b.ExecContext(ctx, "RELEASE write"); rerr != nil && err == nil {
			return rerr
		}
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
