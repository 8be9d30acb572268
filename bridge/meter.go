package bridge

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// Histogram counts durations in fixed buckets with atomic counters: safe to
// observe from a room's tick (no lock, no allocation) while a scrape reads
// a snapshot. Its zero value is not usable, use NewHistogram.
type Histogram struct {
	bounds []time.Duration // upper bounds, ascending
	counts []atomic.Uint64 // per bucket (not cumulative); the last is above every bound
	sum    atomic.Int64    // nanoseconds
}

// NewHistogram returns a histogram with the given upper bounds (ascending).
func NewHistogram(bounds ...time.Duration) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(h.bounds) && d > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// HistogramSnapshot is a histogram's state at one moment, in Prometheus's
// shape: cumulative counts by upper bound in seconds.
type HistogramSnapshot struct {
	Count   uint64
	Sum     float64            // seconds
	Buckets map[float64]uint64 // upper bound in seconds -> observations at or below it
}

// Snapshot reads the histogram. Count is the sum of the buckets, so the
// snapshot is consistent even while ticks observe (Sum may lag by the
// observations in flight).
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Buckets: make(map[float64]uint64, len(h.bounds))}
	for i, b := range h.bounds {
		s.Count += h.counts[i].Load()
		s.Buckets[b.Seconds()] = s.Count
	}
	s.Count += h.counts[len(h.bounds)].Load()
	s.Sum = time.Duration(h.sum.Load()).Seconds()
	return s
}

// Buckets of the media histograms.
var (
	// TickBuckets: a tick must end well inside its 20 ms.
	TickBuckets = []time.Duration{50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond}
	// JitterBuckets: the audio a jitter buffer holds.
	JitterBuckets = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond,
		80 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 500 * time.Millisecond}
)

// MediaCounts are counters summed over legs.
type MediaCounts struct {
	Received  uint64 // RTP packets received
	Lost      uint64 // RTP packets lost on the way in
	Concealed uint64 // frames concealed (lost, late or stretched)
	Dropped   uint64 // frames a leg refused or its queue dropped (slow or ended leg)
}

func (c *MediaCounts) add(o MediaCounts) {
	c.Received += o.Received
	c.Lost += o.Lost
	c.Concealed += o.Concealed
	c.Dropped += o.Dropped
}

// MeterStats are what a meter counted since it was made.
type MeterStats struct {
	// Media is summed over every leg that was ever in a metered room or
	// echo: the legs that left, plus the present legs' counts now. It never
	// goes down.
	Media MediaCounts
	// Legs present now.
	Legs int
	// Tick: how long each tick of a metered room took.
	Tick HistogramSnapshot
	// JitterDelay: the audio buffered in each leg's jitter buffer, sampled
	// once a second of ticks per leg.
	JitterDelay HistogramSnapshot
}

// Meter counts the media of the rooms (and echoes) it is given to, for
// /metrics: counters over every leg ever (a leg's counts are added to a
// running total when it leaves, so the sums never drop when somebody hangs
// up), a histogram of tick times and one of jitter buffer delay. The tick
// only touches atomic counters. A Meter is safe for concurrent use; its
// zero value is not usable, use NewMeter.
type Meter struct {
	tick, jitter *Histogram

	mu    sync.Mutex
	ended MediaCounts
	live  map[*tally]struct{}
}

// NewMeter returns a meter with nothing counted.
func NewMeter() *Meter {
	return &Meter{tick: NewHistogram(TickBuckets...), jitter: NewHistogram(JitterBuckets...), live: map[*tally]struct{}{}}
}

// tally is one leg's counts while it is in a room: the leg's own receive
// counters (cumulative over its call) are taken from what they were when it
// joined, and never reported lower than already seen (RFC 3550's loss goes
// down when a late packet arrives).
type tally struct {
	leg     Leg
	in      *ingress
	dropped func() uint64
	base    audio.ReceiveReport
	seen    MediaCounts
}

func (t *tally) report() audio.ReceiveReport {
	if rr, ok := t.leg.(ReceiveReporter); ok {
		return rr.ReceiveReport()
	}
	jb := t.in.stats()
	return audio.ReceiveReport{Received: jb.Received, Lost: int64(jb.Lost)}
}

// now returns the leg's counts, at least what was seen before.
func (t *tally) now() MediaCounts {
	r := t.report()
	c := MediaCounts{Concealed: t.in.stats().Concealed}
	if r.Received > t.base.Received {
		c.Received = r.Received - t.base.Received
	}
	if d := r.Lost - t.base.Lost; d > 0 {
		c.Lost = uint64(d)
	}
	if t.dropped != nil {
		c.Dropped = t.dropped()
	}
	t.seen = MediaCounts{Received: max(t.seen.Received, c.Received), Lost: max(t.seen.Lost, c.Lost),
		Concealed: max(t.seen.Concealed, c.Concealed), Dropped: max(t.seen.Dropped, c.Dropped)}
	return t.seen
}

// attach starts counting a leg; nil meters count nothing.
func (mt *Meter) attach(leg Leg, in *ingress, dropped func() uint64) *tally {
	if mt == nil {
		return nil
	}
	t := &tally{leg: leg, in: in, dropped: dropped}
	if rr, ok := leg.(ReceiveReporter); ok {
		t.base = rr.ReceiveReport()
	}
	mt.mu.Lock()
	mt.live[t] = struct{}{}
	mt.mu.Unlock()
	return t
}

// detach adds a leg's final counts to the running total.
func (mt *Meter) detach(t *tally) {
	if mt == nil || t == nil {
		return
	}
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if _, ok := mt.live[t]; !ok {
		return
	}
	delete(mt.live, t)
	mt.ended.add(t.now())
}

// observeTick counts one tick's time (from the tick: atomics only).
func (mt *Meter) observeTick(d time.Duration) {
	if mt != nil {
		mt.tick.Observe(d)
	}
}

// observeJitter counts one sample of a leg's buffered audio.
func (mt *Meter) observeJitter(d time.Duration) {
	if mt != nil {
		mt.jitter.Observe(d)
	}
}

// Stats returns the meter's counters and histograms.
func (mt *Meter) Stats() MeterStats {
	mt.mu.Lock()
	st := MeterStats{Media: mt.ended, Legs: len(mt.live)}
	for t := range mt.live {
		st.Media.add(t.now())
	}
	mt.mu.Unlock()
	st.Tick, st.JitterDelay = mt.tick.Snapshot(), mt.jitter.Snapshot()
	return st
}

// jitterEvery is how often (in ticks) a room samples its legs' jitter
// buffer delay: once a second.
const jitterEvery = 50

// depth is the audio the leg's jitter buffer holds now.
func (in *ingress) depth() time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.jb.Stats().Depth
}
