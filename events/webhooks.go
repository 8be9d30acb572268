package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/store"
)

// Outbox is the durable queue deliveries wait in (the store implements it).
type Outbox interface {
	// Enqueue adds entries; an entry whose ID is there already is ignored.
	Enqueue(ctx context.Context, entries ...store.OutboxEntry) error
	// DueFor lists one endpoint's entries waiting with NextTry <= now,
	// oldest first.
	DueFor(ctx context.Context, endpoint string, now time.Time, limit int) ([]store.OutboxEntry, error)
	// DropOthers gives up the waiting entries of endpoints not in keep.
	DropOthers(ctx context.Context, keep []string, reason string) (int, error)
	Delivered(ctx context.Context, id string, at time.Time) error
	Retry(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error
	Drop(ctx context.Context, id string, reason string) error
}

// Settings are knobs for tests and experts; zero values are the defaults.
type Settings struct {
	// Poll is how often the outbox is read for retries that came due
	// (default 1s; a publish wakes the sender at once).
	Poll time.Duration
	// MinBackoff and MaxBackoff bound the wait between a failed attempt
	// and the next: it doubles from MinBackoff (default 2s) up to
	// MaxBackoff (default 5m), with ±20 % jitter.
	MinBackoff, MaxBackoff time.Duration
	// Queue is how many published events may wait to be written to the
	// outbox (default 4096); beyond it Publish drops and counts.
	Queue int
	// PerEndpoint is how many deliveries to one endpoint may be in flight
	// at once (default 4).
	PerEndpoint int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Option configures Webhooks.
type Option func(*Webhooks)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(w *Webhooks) { w.log = l } }

// WithClient sets the HTTP client (default: one that follows no redirects;
// each attempt has its endpoint's timeout).
func WithClient(c *http.Client) Option { return func(w *Webhooks) { w.client = c } }

// WithSettings sets the timing knobs.
func WithSettings(s Settings) Option { return func(w *Webhooks) { w.set = s } }

// Stats are the delivery counters since start (for /metrics).
type Stats struct {
	Published uint64 // events queued for at least one endpoint
	Delivered uint64 // deliveries an endpoint answered 2xx
	Failed    uint64 // attempts that failed (retried later, or dropped)
	Expired   uint64 // deliveries given up at max_age
	Lost      uint64 // events dropped because the queue to the outbox was full
}

// Webhooks publishes events to the configured endpoints through the outbox.
// Start runs it; Close stops it. Publish is safe from any goroutine and
// never blocks.
type Webhooks struct {
	eps    []Endpoint
	box    Outbox
	log    *slog.Logger
	client *http.Client
	set    Settings

	queue chan Event
	wake  chan struct{}

	mu       sync.Mutex
	inflight map[string]bool // outbox ids being delivered
	perEP    map[string]int  // deliveries in flight, by endpoint

	published, delivered, failed, expired, lost atomic.Uint64

	ctx       context.Context // ends at Close: in-flight POSTs are cancelled after the grace
	cancel    context.CancelFunc
	stop      chan struct{}
	wg        sync.WaitGroup // the writer and the sender
	sends     sync.WaitGroup // deliveries in flight
	startOnce sync.Once
	closeOnce sync.Once
}

// New returns Webhooks for the endpoints (checked with Validate) over box.
func New(endpoints []Endpoint, box Outbox, opts ...Option) (*Webhooks, error) {
	eps := append([]Endpoint(nil), endpoints...)
	if err := Validate(eps); err != nil {
		return nil, err
	}
	if box == nil && len(eps) > 0 {
		return nil, errors.New("webhooks need a store for their outbox")
	}
	w := &Webhooks{eps: eps, box: box, log: slog.Default(),
		inflight: map[string]bool{}, perEP: map[string]int{}, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	for _, o := range opts {
		o(w)
	}
	s := &w.set
	if s.Poll <= 0 {
		s.Poll = time.Second
	}
	if s.MinBackoff <= 0 {
		s.MinBackoff = 2 * time.Second
	}
	if s.MaxBackoff < s.MinBackoff {
		s.MaxBackoff = max(5*time.Minute, s.MinBackoff)
	}
	if s.Queue <= 0 {
		s.Queue = 4096
	}
	if s.PerEndpoint <= 0 {
		s.PerEndpoint = 4
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if w.client == nil {
		w.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	w.queue = make(chan Event, s.Queue)
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w, nil
}

// Enabled tells whether any endpoint is configured.
func (w *Webhooks) Enabled() bool { return w != nil && len(w.eps) > 0 }

// Start runs the writer (queue to outbox) and the sender (outbox to
// endpoints). Deliveries left in the outbox by an earlier run are sent too.
func (w *Webhooks) Start() {
	if !w.Enabled() {
		return
	}
	w.startOnce.Do(func() {
		names := make([]string, 0, len(w.eps))
		for _, ep := range w.eps {
			names = append(names, ep.Name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if n, err := w.box.DropOthers(ctx, names, "endpoint no longer configured"); err != nil {
			w.log.Error("webhook outbox cannot be read", "error", err)
		} else if n > 0 {
			w.log.Warn("webhook deliveries given up: their endpoint is no longer configured", "deliveries", n)
		}
		cancel()
		w.wg.Add(2)
		go w.writer()
		go w.sender()
	})
}

// Publish queues e for every endpoint that wants its type. It never blocks:
// when the queue to the outbox is full (the store stalls), the event is
// lost, logged and counted.
func (w *Webhooks) Publish(e Event) {
	if !w.Enabled() {
		return
	}
	wanted := false
	for i := range w.eps {
		if w.eps[i].Wants(e.Type) {
			wanted = true
			break
		}
	}
	if !wanted {
		return
	}
	if e.ID == "" {
		e.ID = newID()
	}
	if e.Time.IsZero() {
		e.Time = w.set.Now()
	}
	e.Time = e.Time.UTC()
	select {
	case w.queue <- e:
		w.published.Add(1)
	default:
		if n := w.lost.Add(1); n&(n-1) == 0 { // log the 1st, 2nd, 4th, 8th, … loss
			w.log.Warn("webhook event lost: the outbox queue is full", "event", e.Type, "event_id", e.ID, "lost", n)
		}
	}
}

// Stats returns the counters.
func (w *Webhooks) Stats() Stats {
	if w == nil {
		return Stats{}
	}
	return Stats{Published: w.published.Load(), Delivered: w.delivered.Load(), Failed: w.failed.Load(),
		Expired: w.expired.Load(), Lost: w.lost.Load()}
}

// Close stops taking events, writes those queued to the outbox, and waits
// until ctx ends for deliveries in flight (then cancels them: they stay in
// the outbox and are sent after the next start). Idempotent.
func (w *Webhooks) Close(ctx context.Context) error {
	if !w.Enabled() {
		return nil
	}
	w.closeOnce.Do(func() {
		close(w.stop)
		done := make(chan struct{})
		go func() {
			w.wg.Wait()
			w.sends.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			w.cancel()
			<-done
		}
		w.cancel()
	})
	return nil
}

// writer moves published events into the outbox, in batches.
func (w *Webhooks) writer() {
	defer w.wg.Done()
	batch := make([]Event, 0, 64)
	for {
		select {
		case e := <-w.queue:
			batch = append(batch[:0], e)
		drain:
			for len(batch) < cap(batch) {
				select {
				case e := <-w.queue:
					batch = append(batch, e)
				default:
					break drain
				}
			}
			w.write(batch)
		case <-w.stop:
			for { // what was published before Close still goes to the outbox
				select {
				case e := <-w.queue:
					w.write([]Event{e})
				default:
					return
				}
			}
		}
	}
}

// write puts batch in the outbox, one entry per endpoint that wants each
// event, retrying while the store fails (until Close).
func (w *Webhooks) write(batch []Event) {
	var entries []store.OutboxEntry
	for i := range batch {
		e := &batch[i]
		body, err := e.body()
		if err != nil {
			w.log.Error("webhook event cannot be encoded", "event", e.Type, "event_id", e.ID, "error", err)
			continue
		}
		for j := range w.eps {
			ep := &w.eps[j]
			if ep.Wants(e.Type) {
				entries = append(entries, store.OutboxEntry{ID: e.ID + "@" + ep.Name, Endpoint: ep.Name, Type: e.Type,
					Body: body, Created: e.Time, NextTry: e.Time})
			}
		}
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := w.box.Enqueue(ctx, entries...)
		cancel()
		if err == nil {
			break
		}
		w.log.Error("webhook events cannot be written to the outbox; retrying", "events", len(batch), "error", err)
		select {
		case <-time.After(wait):
		case <-w.stop:
			w.log.Error("webhook events lost at shutdown: the outbox cannot be written", "events", len(batch))
			w.lost.Add(uint64(len(batch)))
			return
		}
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// sender reads the outbox for deliveries due and starts them.
func (w *Webhooks) sender() {
	defer w.wg.Done()
	t := time.NewTicker(w.set.Poll)
	defer t.Stop()
	for {
		w.sendDue()
		select {
		case <-w.wake:
		case <-t.C:
		case <-w.stop:
			return
		}
	}
}

// sendDue starts a delivery for each due entry not in flight, each endpoint
// read on its own (a slow endpoint's backlog never hides another's) within
// its limit of deliveries in flight.
func (w *Webhooks) sendDue() {
	for i := range w.eps {
		ep := &w.eps[i]
		// What is in flight now may finish while the outbox is read: the
		// copy read may then be stale (an attempt behind), so it waits
		// for the next pass.
		w.mu.Lock()
		busy := w.perEP[ep.Name]
		was := make(map[string]bool, len(w.inflight))
		for id := range w.inflight {
			was[id] = true
		}
		w.mu.Unlock()
		if busy >= w.set.PerEndpoint {
			continue
		}
		ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
		// In-flight entries are still due: read past them.
		due, err := w.box.DueFor(ctx, ep.Name, w.set.Now(), w.set.PerEndpoint+busy)
		cancel()
		if err != nil {
			if w.ctx.Err() == nil {
				w.log.Error("webhook outbox cannot be read", "endpoint", ep.Name, "error", err)
			}
			return
		}
		for _, en := range due {
			w.mu.Lock()
			skip := was[en.ID] || w.inflight[en.ID] || w.perEP[ep.Name] >= w.set.PerEndpoint
			if !skip {
				w.inflight[en.ID] = true
				w.perEP[ep.Name]++
			}
			w.mu.Unlock()
			if skip {
				continue
			}
			w.sends.Add(1)
			go func() {
				defer w.sends.Done()
				w.deliver(ep, en)
				w.mu.Lock()
				delete(w.inflight, en.ID)
				w.perEP[ep.Name]--
				w.mu.Unlock()
				select { // the endpoint may have more waiting
				case w.wake <- struct{}{}:
				default:
				}
			}()
		}
	}
}

// deliver makes one attempt and records its outcome in the outbox.
func (w *Webhooks) deliver(ep *Endpoint, en store.OutboxEntry) {
	attempt := en.Attempts + 1
	now := w.set.Now()
	log := w.log.With("endpoint", ep.Name, "event", en.Type, "event_id", eventID(en), "attempt", attempt)
	err := w.post(ep, en, attempt, now)
	if errors.Is(err, context.Canceled) && w.ctx.Err() != nil {
		return // shutting down: left in the outbox as it was
	}
	// The counters move after the outbox is written: a reader of Stats
	// finds the outbox in step.
	if err == nil {
		log.Debug("webhook delivered")
		w.finish(en.ID, func(ctx context.Context) error { return w.box.Delivered(ctx, en.ID, w.set.Now()) })
		w.delivered.Add(1)
		return
	}
	defer w.failed.Add(1)
	if age := w.set.Now().Sub(en.Created); age >= ep.MaxAge {
		log.Warn("webhook given up: older than max_age", "max_age_ms", ep.MaxAge.Milliseconds(), "error", err)
		w.finish(en.ID, func(ctx context.Context) error {
			return w.box.Drop(ctx, en.ID, "max_age reached: "+err.Error())
		})
		w.expired.Add(1)
		return
	}
	next := w.set.Now().Add(w.backoff(attempt))
	if limit := en.Created.Add(ep.MaxAge); next.After(limit) {
		next = limit // one last try at max_age
	}
	log.Info("webhook attempt failed; will retry", "error", err, "retry_in_ms", next.Sub(w.set.Now()).Milliseconds())
	w.finish(en.ID, func(ctx context.Context) error { return w.box.Retry(ctx, en.ID, attempt, next, err.Error()) })
}

// finish records an outcome in the outbox.
func (w *Webhooks) finish(id string, f func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		w.log.Error("webhook outbox cannot be updated (the delivery may be repeated)", "id", id, "error", err)
	}
}

// post sends one attempt; a non-2xx answer is an error.
func (w *Webhooks) post(ep *Endpoint, en store.OutboxEntry, attempt int, now time.Time) error {
	ctx, cancel := context.WithTimeout(w.ctx, ep.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(en.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "voxgate-webhooks")
	req.Header.Set(HeaderEventID, eventID(en))
	req.Header.Set(HeaderEventType, en.Type)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	req.Header.Set(HeaderSignature, Sign(ep.Secret, now, en.Body))
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return nil
}

// backoff is the wait after the attempt-th failure.
func (w *Webhooks) backoff(attempt int) time.Duration {
	d := w.set.MinBackoff
	for i := 1; i < attempt && d < w.set.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.set.MaxBackoff)
	return time.Duration(float64(d) * (0.8 + 0.4*mrand.Float64()))
}

// eventID is the event's id, the outbox id without its endpoint.
func eventID(en store.OutboxEntry) string {
	if i := bytes.LastIndexByte([]byte(en.ID), '@'); i > 0 {
		return en.ID[:i]
	}
	return en.ID
}
