package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/store"
	"github.com/voxgate/voxgate/switchboard"
	"github.com/voxgate/voxgate/webclient"
)

// The store is what the switchboard and the web side read and write.
var (
	_ switchboard.CallRecords = (*store.SQLite)(nil)
	_ webclient.History       = (*store.SQLite)(nil)
	_ sip.LocationStore       = sipLocations{}
	_ switchboard.RTTReporter = (*sip.Call)(nil)
	_ switchboard.SelfEnder   = (*sip.Call)(nil)
	_ switchboard.RTTReporter = (*webclient.Call)(nil)
)

// dataStore is the open store with the lock on its data_dir.
type dataStore struct {
	*store.SQLite
	lock *os.File
}

// openStore opens the store in cfg.DataDir (nil, nil without one): it takes
// the directory's lock (one voxgate per data_dir), closes what a previous
// run left open (calls in progress at a crash are marked ended, cause
// "crash"/"node restart") and starts the hourly pruning.
func openStore(cfg *Config, log *slog.Logger) (*dataStore, error) {
	if cfg.DataDir == "" {
		log.Warn("no data_dir: registrations, call history and webhooks are not kept across restarts")
		return nil, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.OpenDir(ctx, cfg.DataDir, store.WithLogger(log))
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	n, err := st.RecoverInterrupted(ctx, time.Now())
	if err != nil {
		st.Close()
		lock.Close()
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if n > 0 {
		log.Warn("calls in progress when voxgate last stopped are marked ended (cause: crash, node restart)", "calls", n)
	}
	st.StartPruner(cfg.Store.Retention, time.Hour)
	log.Info("store open", "file", st.Path(), "retention", cfg.Store.Retention.String())
	return &dataStore{SQLite: st, lock: lock}, nil
}

// Close closes the store, then releases the lock.
func (d *dataStore) Close() error {
	if d == nil {
		return nil
	}
	err := d.SQLite.Close()
	d.lock.Close()
	return err
}

// lockDir takes an exclusive lock on data_dir/voxgate.lock: a second voxgate
// on the same data_dir would mark the first one's calls as crashed. The
// kernel releases the lock when the process ends, even by kill -9.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "voxgate.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		other, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("data_dir %s is in use by another voxgate (pid %s): %w", dir, strings.TrimSpace(string(other)), err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// sipLocations keeps the registrar's bindings in the store.
type sipLocations struct{ st *store.SQLite }

func (l sipLocations) SaveBinding(ctx context.Context, b sip.Binding) error {
	return l.st.SaveBinding(ctx, storeBinding(b, ""))
}

func (l sipLocations) DeleteBinding(ctx context.Context, aor, contact string) error {
	return l.st.DeleteBinding(ctx, aor, contact)
}

func (l sipLocations) LoadBindings(ctx context.Context, now time.Time) ([]sip.Binding, error) {
	bs, err := l.st.LoadBindings(ctx, now)
	out := make([]sip.Binding, 0, len(bs))
	for _, b := range bs {
		out = append(out, sipBinding(b))
	}
	return out, err
}

// storeBinding is b as the store keeps it, taken by node ("": one node alone).
func storeBinding(b sip.Binding, node string) store.Binding {
	return store.Binding{AOR: b.AOR, Contact: b.Contact, Source: b.Source, Transport: b.Transport, CallID: b.CallID,
		CSeq: b.CSeq, Expires: b.Expires, UserAgent: b.UserAgent, Node: node}
}

// sipBinding is a stored binding as the registrar keeps it.
func sipBinding(b store.Binding) sip.Binding {
	return sip.Binding{AOR: b.AOR, Contact: b.Contact, Source: b.Source, Transport: b.Transport, CallID: b.CallID,
		CSeq: b.CSeq, Expires: b.Expires, UserAgent: b.UserAgent}
}

// guestKey is the key that signs guest links when web.guest_key is not set:
// data_dir/guest.key (32 random bytes, made on first start, mode 0600), so
// links outlive a restart.
func (d *dataStore) guestKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, "guest.key")
	key, err := os.ReadFile(path)
	if err == nil && len(key) >= 32 {
		return key, nil
	}
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	return key, nil
}
