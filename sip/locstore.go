package sip

import (
	"context"
	"errors"
	"sync"
	"time"
)

// LocationStore keeps the registrar's bindings across restarts (the store
// implements it; cmd/voxgate wires it). The server loads the unexpired
// bindings at Start and writes every change through.
type LocationStore interface {
	// SaveBinding adds or replaces the binding of (AOR, Contact).
	SaveBinding(ctx context.Context, b Binding) error
	// DeleteBinding removes the binding of (aor, contact); contact ""
	// removes every binding of aor.
	DeleteBinding(ctx context.Context, aor, contact string) error
	// LoadBindings returns the bindings unexpired at now (and may forget
	// the expired ones).
	LoadBindings(ctx context.Context, now time.Time) ([]Binding, error)
}

// WithLocationStore makes registrations survive a restart: bindings are
// loaded from ls at Start and every change is written to it. Writes go
// through a bounded queue served by one goroutine, in order, so a slow
// disk never holds up a REGISTER; when the queue is full a write is dropped
// (and logged): the phone's next refresh writes it again.
func WithLocationStore(ls LocationStore) Option {
	return func(s *Server) error {
		if ls == nil {
			return errors.New("sip: nil location store")
		}
		s.locStore = ls
		return nil
	}
}

// locationQueue is how many binding writes may wait for the store.
const locationQueue = 1024

// bindingOp is one write to the location store: a save, or a delete when
// del is set (Contact "" deletes every binding of AOR).
type bindingOp struct {
	b   Binding
	del bool
}

// locWriter writes binding changes to the store from one goroutine.
type locWriter struct {
	s       *Server
	ops     chan bindingOp
	done    chan struct{}
	mu      sync.Mutex
	closed  bool
	dropped int
}

func (s *Server) startLocationStore(ctx context.Context) {
	if s.locStore == nil {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	bs, err := s.locStore.LoadBindings(lctx, time.Now())
	cancel()
	if err != nil {
		s.log.Error("sip: registrations could not be loaded: phones are reachable again when they refresh", "error", err)
	} else {
		s.location.load(bs)
		s.log.Info("sip: registrations loaded", "bindings", len(bs))
	}
	w := &locWriter{s: s, ops: make(chan bindingOp, locationQueue), done: make(chan struct{})}
	s.locWriter = w
	s.location.setPersist(w.queue)
	go w.run()
}

func (w *locWriter) run() {
	defer close(w.done)
	for op := range w.ops {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		if op.del {
			err = w.s.locStore.DeleteBinding(ctx, op.b.AOR, op.b.Contact)
		} else {
			err = w.s.locStore.SaveBinding(ctx, op.b)
		}
		cancel()
		if err != nil {
			w.s.log.Warn("sip: registration not stored", "user", op.b.AOR, "contact", op.b.Contact, "error", err)
		}
	}
}

// queue hands op to the writer without waiting (it is called with the
// location's lock held).
func (w *locWriter) queue(op bindingOp) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	select {
	case w.ops <- op:
	default:
		w.dropped++
		if w.dropped%100 == 1 {
			w.s.log.Warn("sip: the location store is too slow, registration writes dropped", "dropped", w.dropped)
		}
	}
}

// close writes what is queued (up to 5 s) and stops.
func (w *locWriter) close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.ops)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		w.s.log.Warn("sip: registration writes still pending at close")
	}
}
