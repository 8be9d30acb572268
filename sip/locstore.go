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
// disk never holds up a REGISTER; a binding saved again while its last
// save still waits replaces that save (the store gets the newest once);
// when the queue is full a write is dropped (and logged): the phone's next
// refresh writes it again.
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

// bindingKey names a binding: its address-of-record and contact.
type bindingKey struct{ aor, contact string }

// locWriter writes binding changes to the store from one goroutine.
type locWriter struct {
	s    *Server
	wake chan struct{} // a token: the queue has something, or the writer is closed
	done chan struct{}

	mu      sync.Mutex
	ops     []bindingOp        // waiting for the store, in order
	spare   []bindingOp        // the writer's last batch, for ops to reuse
	saves   map[bindingKey]int // the index in ops of each binding's waiting save
	closed  bool
	dropped int
	// superseded counts saves replaced by a newer one of the same binding.
	superseded int
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
	w := newLocWriter(s)
	s.locWriter = w
	s.location.setPersist(w.queue)
	go w.run()
}

func newLocWriter(s *Server) *locWriter {
	return &locWriter{s: s, wake: make(chan struct{}, 1), done: make(chan struct{}), saves: map[bindingKey]int{}}
}

// run writes the queued ops, a batch at a time, until close.
func (w *locWriter) run() {
	defer close(w.done)
	for {
		<-w.wake // a token, or closed: both mean look at the queue
		w.mu.Lock()
		batch, closed := w.ops, w.closed
		w.ops, w.spare = w.spare[:0], nil
		clear(w.saves)
		w.mu.Unlock()
		for _, op := range batch {
			w.write(op)
		}
		clear(batch) // hold no strings
		w.mu.Lock()
		w.spare = batch[:0]
		w.mu.Unlock()
		if closed {
			return
		}
	}
}

func (w *locWriter) write(op bindingOp) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if op.del {
		err = w.s.locStore.DeleteBinding(ctx, op.b.AOR, op.b.Contact)
	} else {
		err = w.s.locStore.SaveBinding(ctx, op.b)
	}
	if err != nil {
		w.s.log.Warn("sip: registration not stored", "user", op.b.AOR, "contact", op.b.Contact, "error", err)
	}
}

// queue hands op to the writer without waiting (it is called with the
// location's lock held). A save of a binding whose last save still waits
// replaces it there; a delete is queued after whatever waits, and a save
// after it is queued after it.
func (w *locWriter) queue(op bindingOp) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	key := bindingKey{op.b.AOR, op.b.Contact}
	switch {
	case op.del && op.b.Contact == "":
		for k := range w.saves {
			if k.aor == op.b.AOR {
				delete(w.saves, k)
			}
		}
	case op.del:
		delete(w.saves, key)
	default:
		if i, ok := w.saves[key]; ok {
			w.ops[i] = op
			w.superseded++
			return
		}
	}
	if len(w.ops) >= locationQueue {
		w.dropped++
		if w.dropped%100 == 1 {
			w.s.log.Warn("sip: the location store is too slow, registration writes dropped", "dropped", w.dropped)
		}
		return
	}
	w.ops = append(w.ops, op)
	if !op.del {
		w.saves[key] = len(w.ops) - 1
	}
	select {
	case w.wake <- struct{}{}:
	default: // the writer has a token already
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
		close(w.wake) // the writer takes what is queued, then sees the end
	}
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		w.s.log.Warn("sip: registration writes still pending at close")
	}
}
