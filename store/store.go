// Package store keeps voxgate's durable state: registrations, call records
// with their quality, room history, the recordings' index and the webhook
// outbox. The default (and so far only) backend is one SQLite file opened
// through the pure-Go driver modernc.org/sqlite, so running voxgate needs no
// other server and no cgo for the database.
//
// The file is opened in WAL mode: readers never block the writer, and a
// process killed at any point (kill -9) leaves a file that opens cleanly with
// every committed transaction in it. A second process may open the same file;
// SQLite's own file locking serialises the writers (busy_timeout makes a writer
// wait instead of failing at once).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/voxgate/voxgate/api"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

var (
	// ErrNotFound is returned when a row named by its id does not exist;
	// it wraps api.ErrNotFound, which the REST API answers with 404.
	ErrNotFound = fmt.Errorf("store: %w", api.ErrNotFound)
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("store: closed")
)

// FileName is the name of the database file that voxgate keeps in its data_dir.
const FileName = "voxgate.db"

// SQLite is the store backed by one SQLite file. Its methods are safe for
// concurrent use.
type SQLite struct {
	db   *sql.DB
	path string
	log  *slog.Logger
	now  func() time.Time

	busyTimeout time.Duration
	synchronous string

	closeOnce sync.Once
	closeErr  error
	stop      chan struct{}
	wg        sync.WaitGroup

	stmtMu sync.Mutex
	stmts  stmtCache // the hot statements, prepared once

	batchMu sync.Mutex
	batch   *batch // WriteBatch's connection (nil: none yet)
}

// Option configures Open.
type Option func(*SQLite) error

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *SQLite) error {
		if l == nil {
			return errors.New("store: nil logger")
		}
		s.log = l
		return nil
	}
}

// WithBusyTimeout sets how long a writer waits for another connection or
// process that holds the write lock before it fails with SQLITE_BUSY
// (default 5 s).
func WithBusyTimeout(d time.Duration) Option {
	return func(s *SQLite) error {
		if d < 0 {
			return fmt.Errorf("store: negative busy timeout %v", d)
		}
		s.busyTimeout = d
		return nil
	}
}

// WithSynchronousFull makes every commit wait until the WAL is flushed to
// stable storage (PRAGMA synchronous=FULL). The default is NORMAL, which in
// WAL mode is safe against a crash of the process (kill -9, panic, OOM kill):
// a committed transaction is in the OS's page cache and survives. Only a power
// loss or kernel crash can lose the last transactions before a checkpoint, and
// even then the file is never corrupt. Call records and the outbox are written
// several times per call, so NORMAL saves an fsync per write.
func WithSynchronousFull() Option {
	return func(s *SQLite) error {
		s.synchronous = "FULL"
		return nil
	}
}

// WithClock sets the clock used where a method needs "now" (tests).
func WithClock(now func() time.Time) Option {
	return func(s *SQLite) error {
		if now == nil {
			return errors.New("store: nil clock")
		}
		s.now = now
		return nil
	}
}

// OpenDir opens (creating the directory if missing) the store file FileName
// inside dir.
func OpenDir(ctx context.Context, dir string, opts ...Option) (*SQLite, error) {
	if dir == "" {
		return nil, errors.New("store: empty data_dir")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: data_dir: %w", err)
	}
	return Open(ctx, filepath.Join(dir, FileName), opts...)
}

// Open opens the SQLite file at path (created if missing), applies the
// migrations it lacks and returns the store. Close it when done.
func Open(ctx context.Context, path string, opts ...Option) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("store: empty path")
	}
	s := &SQLite{
		path:        path,
		log:         slog.Default(),
		now:         time.Now,
		busyTimeout: 5 * time.Second,
		synchronous: "NORMAL",
		stop:        make(chan struct{}),
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", s.busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous("+s.synchronous+")")
	// Every transaction takes the write lock at BEGIN: a deferred transaction
	// that reads and then writes can fail with SQLITE_BUSY at once (no wait)
	// when another process wrote in between; an immediate one waits its turn.
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// A few connections: WAL lets readers run beside the one writer.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s.db = db
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if mode != "wal" {
		db.Close()
		return nil, fmt.Errorf("store: open %s: journal_mode is %q, want wal (a file system without shared memory?)", path, mode)
	}
	if err := migrate(ctx, db, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return s, nil
}

// Path returns the database file's path.
func (s *SQLite) Path() string { return s.path }

// Ping reports whether the database answers (readiness).
func (s *SQLite) Ping(ctx context.Context) error {
	select {
	case <-s.stop:
		return ErrClosed
	default:
	}
	return s.db.PingContext(ctx)
}

// IntegrityCheck runs PRAGMA integrity_check and returns nil when it says ok.
func (s *SQLite) IntegrityCheck(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(msgs) == 1 && msgs[0] == "ok" {
		return nil
	}
	return fmt.Errorf("store: integrity_check: %v", msgs)
}

// Close stops the store's goroutines (the pruner) and closes the database.
// It is idempotent.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.closeBatch()
		s.stmtMu.Lock()
		s.stmts.close()
		s.stmtMu.Unlock()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// ns converts a time to the stored form, Unix nanoseconds; the zero time is 0.
func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNS converts a stored Unix-nanosecond value back; 0 is the zero time.
func fromNS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

// nullNS is fromNS for a nullable column.
func nullNS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromNS(v.Int64)
}

// prepared returns the statement of q, prepared once: a call's records
// and a REGISTER's binding are written with the same few statements, and
// SQLite parsing and planning each of them every time was a tenth of
// voxgate's CPU under a call load. Only outside transactions: the same
// statement bound into a transaction (Tx.StmtContext) left a write lock
// behind that another handle then waited on until SQLITE_BUSY
// (TestTwoHandles), so a transaction's statements are prepared with it.
func (s *SQLite) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	return s.stmts.get(ctx, s.db.PrepareContext, q)
}

// stmtCache holds statements prepared once, by their SQL.
type stmtCache map[string]*sql.Stmt

// get returns q's statement, prepared with prepare the first time.
func (c *stmtCache) get(ctx context.Context, prepare func(context.Context, string) (*sql.Stmt, error), q string) (*sql.Stmt, error) {
	if st := (*c)[q]; st != nil {
		return st, nil
	}
	st, err := prepare(ctx, q)
	if err != nil {
		return nil, err
	}
	if *c == nil {
		*c = stmtCache{}
	}
	(*c)[q] = st
	return st, nil
}

// close closes every statement and empties the cache.
func (c *stmtCache) close() {
	for _, st := range *c {
		_ = st.Close()
	}
	*c = nil
}

// exec runs q, prepared once, with args (in the batch ctx carries, if
// any).
func (s *SQLite) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if b := batchOf(ctx); b != nil {
		return b.ExecContext(ctx, q, args...)
	}
	st, err := s.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}
