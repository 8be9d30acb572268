package bridge

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// FrameDuration is the length of one mixing step.
const FrameDuration = 20 * time.Millisecond

// maxCatchUp is how far a clock runs late ticks back to back after a stall
// (a busy machine, a paused process). Beyond it the clock skips ahead and
// the jitter buffers shed what piled up.
const maxCatchUp = time.Second

// ticker is anything the clock drives: a room or an echo. tick runs one
// 20 ms step for the scheduled time at (which lags the wall clock while
// the clock catches up); it returns quickly and never blocks for long.
type ticker interface {
	tick(at time.Time)
}

// dozer is a ticker that may not need every tick (a dozing room): the
// worker ticks it with tickIdle, which also says how many of the next
// ticks it can skip, and skips them unless wake is called meanwhile. A
// dozer counts the ticks it missed from the at of the next one.
type dozer interface {
	tickIdle(at time.Time) (idle int)
}

// Clock drives many rooms from a few goroutines: one worker per CPU, each
// waking once per 20 ms for all its rooms, instead of a goroutine and a
// timer per room. A worker that falls behind (CPU contention, a stall)
// runs the ticks it missed back to back, so a room's output keeps real
// time and delay returns to its target instead of growing. A worker with
// no rooms stops: idle rooms cost nothing. A Clock is safe for concurrent
// use; its zero value is not usable, use NewClock.
type Clock struct {
	workers []*worker

	ticks, late, skipped atomic.Uint64
}

// NewClock returns a clock with n workers (n <= 0: one per CPU).
func NewClock(n int) *Clock {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	c := &Clock{}
	for range n {
		c.workers = append(c.workers, &worker{clock: c, members: map[ticker]struct{}{}})
	}
	return c
}

var (
	defaultClockOnce sync.Once
	defaultClock     *Clock
)

// DefaultClock is the clock rooms use when their config names none: one per
// process, so every room and echo shares the same few goroutines.
func DefaultClock() *Clock {
	defaultClockOnce.Do(func() { defaultClock = NewClock(0) })
	return defaultClock
}

// ClockStats are a clock's counters since it was made.
type ClockStats struct {
	Ticks   uint64 // ticks run, summed over the workers
	Late    uint64 // ticks run more than one period after their time (caught up)
	Skipped uint64 // ticks never run: the clock was more than maxCatchUp behind
}

// Stats returns the clock's counters.
func (c *Clock) Stats() ClockStats {
	return ClockStats{Ticks: c.ticks.Load(), Late: c.late.Load(), Skipped: c.skipped.Load()}
}

// add starts driving t on the least loaded worker; it returns that worker
// for remove.
func (c *Clock) add(t ticker) *worker {
	best := c.workers[0]
	for _, w := range c.workers[1:] {
		if w.size() < best.size() {
			best = w
		}
	}
	best.add(t)
	return best
}

// worker is one goroutine ticking a set of rooms.
type worker struct {
	clock *Clock

	mu       sync.Mutex
	members  map[ticker]struct{}
	running  bool
	dirty    bool
	woken    []ticker // to tick at the next tick, idle or not
	anyWoken atomic.Bool

	// The worker goroutine's own: a copy of members, reused, and the
	// number of ticks run.
	list  []slot
	index uint64
}

// slot is a ticker in the worker's list and the tick it is due next.
type slot struct {
	t    ticker
	d    dozer // t, if it can doze
	next uint64
}

// wake has the worker tick t at its next tick (t dozed and was stirred).
func (w *worker) wake(t ticker) {
	w.mu.Lock()
	w.woken = append(w.woken, t)
	w.anyWoken.Store(true)
	w.mu.Unlock()
}

// takeWoken makes the woken tickers due now.
func (w *worker) takeWoken() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.woken {
		for i := range w.list {
			if w.list[i].t == t {
				w.list[i].next = w.index
				break
			}
		}
	}
	clear(w.woken)
	w.woken = w.woken[:0]
	w.anyWoken.Store(false)
}

func (w *worker) size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.members)
}

func (w *worker) add(t ticker) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.members[t] = struct{}{}
	w.dirty = true
	if !w.running {
		w.running = true
		go w.run()
	}
}

// remove stops driving t. A tick of t already running may finish after
// remove returns: tickers guard their own state (a room checks that it is
// still running under its lock).
func (w *worker) remove(t ticker) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.members, t)
	w.dirty = true
}

// snapshot refreshes the worker's own list of members when it changed; it
// reports false (and marks the worker stopped) when there are none left.
func (w *worker) snapshot() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.members) == 0 {
		w.running = false
		clear(w.list)
		w.list = w.list[:0]
		return false
	}
	if w.dirty {
		due := make(map[ticker]uint64, len(w.list))
		for _, s := range w.list {
			due[s.t] = s.next
		}
		clear(w.list)
		w.list = w.list[:0]
		for t := range w.members {
			next, ok := due[t]
			if !ok {
				next = w.index
			}
			d, _ := t.(dozer)
			w.list = append(w.list, slot{t: t, d: d, next: next})
		}
		w.dirty = false
	}
	return true
}

func (w *worker) run() {
	next := time.Now().Add(FrameDuration)
	timer := time.NewTimer(FrameDuration)
	defer timer.Stop()
	for {
		<-timer.C
		// Run every tick that is due, oldest first: after a stall the
		// rooms catch up on the frames they owe instead of dropping them.
		for {
			now := time.Now()
			if next.After(now) {
				timer.Reset(next.Sub(now))
				break
			}
			behind := now.Sub(next)
			if behind > maxCatchUp {
				n := uint64(behind / FrameDuration)
				w.clock.skipped.Add(n)
				next = next.Add(time.Duration(n) * FrameDuration)
				behind -= time.Duration(n) * FrameDuration
			}
			if !w.snapshot() {
				return
			}
			if w.anyWoken.Load() {
				w.takeWoken()
			}
			for i := range w.list {
				s := &w.list[i]
				if s.next > w.index {
					continue // dozing
				}
				s.next = w.index + 1
				if s.d != nil {
					s.next += uint64(max(s.d.tickIdle(next), 0))
				} else {
					s.t.tick(next)
				}
			}
			w.index++
			w.clock.ticks.Add(1)
			if behind >= FrameDuration {
				w.clock.late.Add(1)
			}
			next = next.Add(FrameDuration)
		}
	}
}
