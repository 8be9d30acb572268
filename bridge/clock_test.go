package bridge

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countTicker records the times it was ticked for; stall makes one tick
// take that long, like a busy machine or a paused process.
type countTicker struct {
	mu    sync.Mutex
	times []time.Time
	stall time.Duration
}

func (c *countTicker) tick(at time.Time) {
	c.mu.Lock()
	c.times = append(c.times, at)
	stall := c.stall
	c.stall = 0
	c.mu.Unlock()
	time.Sleep(stall)
}

func (c *countTicker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.times)
}

// After a stall the clock runs the ticks it missed, so over any stretch
// of time a room produces one frame per 20 ms: its listeners' buffers do
// not run dry and its own inputs do not pile up.
func TestClockCatchesUpAfterStall(t *testing.T) {
	c := NewClock(1)
	ct := &countTicker{}
	w := c.add(ct)
	defer w.remove(ct)
	start := time.Now()
	time.Sleep(200 * time.Millisecond)
	ct.mu.Lock()
	ct.stall = 500 * time.Millisecond
	ct.mu.Unlock()
	time.Sleep(900 * time.Millisecond)
	// On a busy machine the worker may itself be waiting for a CPU: give it
	// a moment, but it must reach one tick per 20 ms since the start.
	var got, want int
	for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
		got, want = ct.count(), int(time.Since(start)/FrameDuration)
		if got >= want-2 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d ticks in %v (want about %d); %+v", got, time.Since(start), want, c.Stats())
	if got < want-2 || got > want+1 {
		t.Fatalf("%d ticks, want %d", got, want)
	}
	if c.Stats().Late < 20 {
		t.Fatalf("the stall's ticks were not run late: %+v", c.Stats())
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for i := 1; i < len(ct.times); i++ { // scheduled times: exactly one period apart
		if d := ct.times[i].Sub(ct.times[i-1]); d != FrameDuration {
			t.Fatalf("tick %d scheduled %v after the one before", i, d)
		}
	}
}

// Beyond maxCatchUp the clock skips ahead instead of bursting seconds of
// audio at once.
func TestClockSkipsAfterLongStall(t *testing.T) {
	c := NewClock(1)
	ct := &countTicker{stall: maxCatchUp + 300*time.Millisecond}
	w := c.add(ct)
	defer w.remove(ct)
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Skipped == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := c.Stats(); s.Skipped < 10 {
		t.Fatalf("clock did not skip ahead: %+v", s)
	}
}

// A clock with nothing to drive has no goroutine: idle costs nothing.
func TestClockStopsWhenIdle(t *testing.T) {
	before := runtime.NumGoroutine()
	c := NewClock(2)
	var ts []*countTicker
	var ws []*worker
	for range 4 {
		ct := &countTicker{}
		ts = append(ts, ct)
		ws = append(ws, c.add(ct))
	}
	if ws[0] == ws[1] && ws[1] == ws[2] {
		t.Fatal("tickers not spread over the workers")
	}
	for i, ct := range ts {
		wait := time.Now().Add(2 * time.Second)
		for ct.count() < 2 && time.Now().Before(wait) {
			time.Sleep(5 * time.Millisecond)
		}
		if ct.count() < 2 {
			t.Fatalf("ticker %d ticked %d times", i, ct.count())
		}
		ws[i].remove(ct)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left, %d before", n, before)
	}
}

// dozeTicker is a countTicker that asks to skip idle ticks after each.
type dozeTicker struct {
	countTicker
	idle atomic.Int64
}

func (d *dozeTicker) tickIdle(at time.Time) int {
	d.tick(at)
	return int(d.idle.Load())
}

// A ticker that can doze is skipped for the ticks it says it does not
// need, and wake has it ticked at the next tick.
func TestClockSkipsDozingTickers(t *testing.T) {
	c := NewClock(1)
	awake, dozy := &countTicker{}, &dozeTicker{}
	dozy.idle.Store(24) // one tick in 25: every 500 ms
	w := c.add(awake)
	defer w.remove(awake)
	c.workers[0].add(dozy)
	defer w.remove(dozy)
	time.Sleep(1100 * time.Millisecond)
	a, d := awake.count(), dozy.count()
	t.Logf("in 1.1 s: %d ticks of the awake ticker, %d of the dozing one", a, d)
	if d < 2 || d > 4 || a < 40 {
		t.Fatalf("%d ticks of the dozing ticker (want 3: one per 500 ms), %d of the awake one", d, a)
	}
	// Woken: ticked at the next tick, then (idle 0) every tick.
	dozy.idle.Store(0)
	d0 := dozy.count()
	w.wake(dozy)
	time.Sleep(200 * time.Millisecond)
	if n := dozy.count() - d0; n < 5 {
		t.Fatalf("%d ticks in 200 ms after wake, want about 10", n)
	}
	// Ticks carry their scheduled times, 20 ms apart while awake.
	dozy.mu.Lock()
	times := append([]time.Time(nil), dozy.times...)
	dozy.mu.Unlock()
	if gap := times[1].Sub(times[0]); gap != 25*FrameDuration {
		t.Errorf("dozing ticks %v apart, want %v", gap, 25*FrameDuration)
	}
	if gap := times[len(times)-1].Sub(times[len(times)-2]); gap != FrameDuration {
		t.Errorf("woken ticks %v apart, want %v", gap, FrameDuration)
	}
}
