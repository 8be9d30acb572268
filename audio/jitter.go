package audio

import (
	"time"
)

// JitterStatus says what Pop returned.
type JitterStatus int

// What a jitter buffer pop yields.
const (
	// JitterPacket: the next packet, in order.
	JitterPacket JitterStatus = iota
	// JitterConceal: the packet due now is missing (lost, late, or the buffer
	// is stretching to grow); the caller conceals one frame.
	JitterConceal
	// JitterEmpty: nothing to play (not started, or the sender paused); the
	// caller plays silence or comfort noise.
	JitterEmpty
)

func (s JitterStatus) String() string {
	switch s {
	case JitterPacket:
		return "packet"
	case JitterConceal:
		return "conceal"
	}
	return "empty"
}

// JitterConfig tunes a JitterBuffer.
type JitterConfig struct {
	// Rate is the RTP clock rate (8000 for G.711, 48000 for Opus).
	Rate int
	// Min and Max bound the target depth (default one packet and 200 ms).
	Min, Max time.Duration
	// Silent, when set, tells whether a payload carries silence; the buffer
	// then drops or stretches preferably there. Without it, adjustments
	// happen wherever they fall.
	Silent func(payload []byte) bool
	// Shrinks: the consumer compresses time (a Shrinker) to shed what
	// Excess reports; the buffer never drops a packet to shrink, it only
	// stretches to grow.
	Shrinks bool
}

// JitterStats are a jitter buffer's counters.
type JitterStats struct {
	Received  uint64        // packets pushed
	Played    uint64        // packets popped in order
	Late      uint64        // arrived after their play-out time, dropped
	Duplicate uint64        // same sequence number twice, dropped
	Lost      uint64        // never arrived: concealed in their place
	Concealed uint64        // frames concealed: Lost plus stretching
	Discarded uint64        // dropped to shrink the buffer (drift, calmer network)
	Resyncs   uint64        // restarts: SSRC change, sequence jump
	Pauses    uint64        // the sender stopped (or a long loss burst): playout waits, then rebuffers
	Depth     time.Duration // buffered audio now
	Target    time.Duration // the depth the buffer aims at
	Jitter    time.Duration // interarrival jitter (RFC 3550)
}

const (
	jbSlots      = 64 // ring size: far beyond Max at any packet size voxgate takes
	jbMaxPayload = 1500
	jbPauseAfter = 3 // empty pops in a row before the stream counts as paused
)

type jbSlot struct {
	used    bool
	ext     int64
	ts      uint32
	payload []byte
}

// JitterBuffer reorders RTP packets and releases them at a steady pace with
// an adaptive delay: deep enough for the measured jitter, between Min and
// Max, shrinking again when the network calms, and absorbing clock drift by
// dropping or stretching (preferably in silence) so the delay never creeps.
// It is not safe for concurrent use. Push and Pop allocate nothing once each
// slot has held one packet.
type JitterBuffer struct {
	cfg   JitterConfig
	slots [jbSlots]jbSlot
	stats JitterStats

	started   bool
	ssrc      uint32
	next      int64 // extended sequence number due next
	highest   int64
	playAfter time.Time // playout (re)starts no earlier than this
	emptyRun  int

	frameTS  uint32  // timestamp units per packet, learned
	frameDur float64 // ms per packet
	lastTS   uint32
	lastExt  int64

	// delay statistics, in ms
	transitSet bool
	transit    float64
	jitter     float64
	baseCur    float64 // lowest transit in the current window
	basePrev   float64 // lowest transit in the previous window
	baseStart  time.Time
	peak       float64   // decaying peak of transit above the base
	avgDepth   float64   // smoothed depth in packets, as the first pop of a tick finds it
	avgAt      time.Time // when avgDepth last moved
	lastAdjust time.Time
	calmSince  time.Time
}

// NewJitterBuffer returns an empty buffer.
func NewJitterBuffer(cfg JitterConfig) *JitterBuffer {
	if cfg.Rate == 0 {
		cfg.Rate = 8000
	}
	if cfg.Max == 0 {
		cfg.Max = 200 * time.Millisecond
	}
	j := &JitterBuffer{cfg: cfg}
	j.frameTS = uint32(cfg.Rate / 50)
	j.frameDur = 20
	return j
}

func (j *JitterBuffer) ms(ts uint32) float64 { return float64(ts) * 1000 / float64(j.cfg.Rate) }

// targetMS is the depth aimed at: the recent delay spread plus one packet,
// within Min and Max.
func (j *JitterBuffer) targetMS() float64 {
	t := j.peak + j.frameDur
	lo := max(float64(j.cfg.Min.Milliseconds()), j.frameDur)
	hi := float64(j.cfg.Max.Milliseconds())
	return min(max(t, lo), hi)
}

func (j *JitterBuffer) reset(ssrc uint32, ext int64, now time.Time) {
	for i := range j.slots {
		j.slots[i].used = false
	}
	j.started = true
	j.ssrc = ssrc
	j.next = ext
	j.highest = ext - 1
	j.emptyRun = 0
	j.playAfter = now.Add(time.Duration(j.targetMS() * float64(time.Millisecond)))
	j.avgDepth = 0
	j.avgAt = time.Time{}
}

// extend turns a 16-bit sequence number into one that keeps counting past
// wraps: the value nearest to the highest seen.
func (j *JitterBuffer) extend(seq uint16) int64 {
	return j.highest + int64(int16(seq-uint16(j.highest)))
}

// Push adds a received packet. payload is copied.
func (j *JitterBuffer) Push(seq uint16, ts, ssrc uint32, payload []byte, now time.Time) {
	j.stats.Received++
	if len(payload) > jbMaxPayload {
		j.stats.Discarded++
		return
	}
	if j.emptyRun >= jbPauseAfter {
		// The sender paused; its timestamps may not have kept pace with
		// the pause. Measure delay afresh rather than read the pause as jitter.
		j.transitSet = false
	}
	var ext int64
	switch {
	case !j.started || ssrc != j.ssrc:
		if j.started {
			j.stats.Resyncs++
		}
		j.transitSet = false
		ext = int64(seq)
		j.reset(ssrc, ext, now)
	default:
		ext = j.extend(seq)
	}
	j.measure(ts, now)
	if ext > j.next+jbSlots-1 || ext < j.next-jbSlots*4 { // a jump: the sender restarted its numbering
		j.stats.Resyncs++
		j.reset(ssrc, ext, now)
	}
	if ext < j.next && j.emptyRun > 0 && ext > j.highest && ext >= j.next-int64(min(j.emptyRun, jbPauseAfter-1)) {
		// A packet newer than any received, whose number Pop already gave
		// up as lost while nothing came: the sender paused (DTX) or its
		// packets came late. Play resumes here; nothing of it is skipped.
		j.stats.Lost -= uint64(j.next - ext)
		j.next = ext
	}
	if ext < j.next {
		j.stats.Late++
		return
	}
	s := &j.slots[ext&(jbSlots-1)]
	if s.used && s.ext == ext {
		j.stats.Duplicate++
		return
	}
	s.used, s.ext, s.ts = true, ext, ts
	if s.payload == nil {
		s.payload = make([]byte, 0, max(len(payload), 256))
	}
	s.payload = append(s.payload[:0], payload...)
	if ext > j.highest {
		if ext == j.highest+1 && j.lastExt == j.highest && ts != j.lastTS {
			if d := ts - j.lastTS; d > 0 && d < uint32(j.cfg.Rate/5) { // learn the packet duration
				j.frameTS = d
				j.frameDur = j.ms(d)
			}
		}
		j.highest = ext
		j.lastExt, j.lastTS = ext, ts
	}
	if j.emptyRun >= jbPauseAfter && ext >= j.next { // talk resumes after a pause: rebuffer
		j.next = ext
		j.emptyRun = 0
		j.playAfter = now.Add(time.Duration(j.targetMS() * float64(time.Millisecond)))
	}
}

// measure updates jitter (RFC 3550 A.8) and the delay spread from one arrival.
func (j *JitterBuffer) measure(ts uint32, now time.Time) {
	arrival := float64(now.UnixNano()) / 1e6
	transit := arrival - j.ms(ts)
	if !j.transitSet {
		j.transitSet = true
		j.transit = transit
		j.baseCur, j.basePrev = transit, transit
		j.baseStart = now
		return
	}
	// The timestamp wraps every 2^32 units: keep transit continuous.
	wrap := j.ms(1<<32-1) + j.ms(1)
	for transit-j.transit > wrap/2 {
		transit -= wrap
	}
	for j.transit-transit > wrap/2 {
		transit += wrap
	}
	d := transit - j.transit
	j.transit = transit
	if d < 0 {
		d = -d
	}
	j.jitter += (d - j.jitter) / 16
	// The base is the lowest transit over the last 2 to 4 seconds, so it
	// follows clock drift; the spread above it is what the buffer must hold.
	if now.Sub(j.baseStart) > 2*time.Second {
		j.basePrev, j.baseCur, j.baseStart = j.baseCur, transit, now
	}
	j.baseCur = min(j.baseCur, transit)
	spread := transit - min(j.baseCur, j.basePrev)
	j.peak = max(spread, j.peak*0.997) // fast attack, decay with a half-life of about 230 packets
}

// Pop returns what to play for the next packet interval. The returned
// payload is valid until the next Push or Pop.
func (j *JitterBuffer) Pop(now time.Time) ([]byte, JitterStatus) {
	if !j.started || now.Before(j.playAfter) {
		return nil, JitterEmpty
	}
	depth := j.highest - j.next + 1
	if depth <= 0 {
		j.emptyRun++
		if j.emptyRun < jbPauseAfter {
			j.stats.Lost++
			j.stats.Concealed++
			j.next++
			return nil, JitterConceal
		}
		if j.emptyRun == jbPauseAfter {
			j.stats.Pauses++
		}
		return nil, JitterEmpty
	}
	j.emptyRun = 0
	j.smoothDepth(depth, now)
	target := j.targetMS() / j.frameDur
	canAdjust := now.Sub(j.lastAdjust) > 200*time.Millisecond
	s := &j.slots[j.next&(jbSlots-1)]
	have := s.used && s.ext == j.next
	silent := have && j.cfg.Silent != nil && j.cfg.Silent(s.payload)
	switch {
	case !j.cfg.Shrinks && canAdjust && j.avgDepth > target+1 && depth > 1 && (silent || j.cfg.Silent == nil || j.avgDepth > target+3):
		// Too deep (a sender clock running fast, or a network that calmed
		// down): drop this packet and play the next.
		if have {
			s.used = false
			j.stats.Discarded++
		}
		j.next++
		j.lastAdjust = now
		j.avgDepth--
		s = &j.slots[j.next&(jbSlots-1)]
		have = s.used && s.ext == j.next
	case canAdjust && j.avgDepth < target-1 && (silent || j.cfg.Silent == nil || j.avgDepth < target-3):
		// Too shallow (a slow sender clock, or the network got worse):
		// stretch by one concealed frame without advancing.
		j.lastAdjust = now
		j.avgDepth++
		j.stats.Concealed++
		return nil, JitterConceal
	}
	j.next++
	if !have {
		j.stats.Lost++
		j.stats.Concealed++
		return nil, JitterConceal
	}
	s.used = false
	j.stats.Played++
	return s.payload, JitterPacket
}

// smoothDepth folds the depth a pop finds into avgDepth, weighted by the
// time since the last one: a consumer that pops several packets in one
// tick (catching up after a Shrinker shortened its audio) counts the
// depth of the tick once, as the first pop finds it, rather than the
// emptier depths of its later pops. One packet interval weighs 0.05.
func (j *JitterBuffer) smoothDepth(depth int64, now time.Time) {
	w := 1.0 // first pop since a reset
	if !j.avgAt.IsZero() {
		w = min(float64(now.Sub(j.avgAt))/(j.frameDur*float64(time.Millisecond)), 2)
	}
	if w <= 0 {
		return
	}
	j.avgDepth += (float64(depth) - j.avgDepth) * 0.05 * w
	j.avgAt = now
}

// Excess returns how much buffered audio lies above the target depth: the
// smoothed depth (or the depth now, if lower) minus the target, never
// negative. A consumer that compresses time (JitterConfig.Shrinks) sheds
// this much, a little per frame. Taking the lower of the two keeps a
// consumer from shedding on after it caught up, while the smoothed depth
// still lags behind.
func (j *JitterBuffer) Excess() time.Duration {
	depth := j.highest - j.next + 1
	if !j.started || depth <= 0 {
		return 0
	}
	// avgDepth counts the packet a pop takes; depth here is what remains.
	d := min(j.avgDepth-1, float64(depth))*j.frameDur - j.targetMS()
	if d <= 0 {
		return 0
	}
	return time.Duration(d * float64(time.Millisecond))
}

// Stats returns the counters and the current depth, target and jitter.
func (j *JitterBuffer) Stats() JitterStats {
	st := j.stats
	if d := j.highest - j.next + 1; d > 0 {
		st.Depth = time.Duration(float64(d) * j.frameDur * float64(time.Millisecond))
	}
	st.Target = time.Duration(j.targetMS() * float64(time.Millisecond))
	st.Jitter = time.Duration(j.jitter * float64(time.Millisecond))
	return st
}

// Peek returns the packet due next without taking it, if it is here: after
// Pop reports a loss, the packet that followed the lost one, whose Opus
// in-band FEC carries a coarse copy of it. The payload is valid until the
// next Push or Pop.
func (j *JitterBuffer) Peek() ([]byte, bool) {
	s := &j.slots[j.next&(jbSlots-1)]
	if !j.started || !s.used || s.ext != j.next {
		return nil, false
	}
	return s.payload, true
}

// Lost is Stats().Lost without the rest: a consumer compares it around a
// Pop to tell a lost packet from a stretch.
func (j *JitterBuffer) Lost() uint64 { return j.stats.Lost }

// Flush forgets every buffered packet and the playout position, keeping
// the counters: the next packet starts playout afresh, after the target
// delay, as after a pause. A room that stopped listening to a silent leg
// (it dozes) flushes what piled up meanwhile.
func (j *JitterBuffer) Flush() {
	for i := range j.slots {
		j.slots[i].used = false
	}
	j.started = false
	j.transitSet = false
	j.emptyRun = 0
}
