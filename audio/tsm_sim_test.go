package audio

import (
	"math/rand"
	"slices"
	"sort"
	"testing"
	"time"
)

// Excess is the smoothed depth above the target, and never more than the
// depth now.
func TestJitterBufferExcess(t *testing.T) {
	jb := NewJitterBuffer(JitterConfig{Rate: 8000, Shrinks: true})
	t0 := time.Unix(0, 0)
	p := make([]byte, 160)
	if e := jb.Excess(); e != 0 {
		t.Fatalf("empty buffer: excess %v", e)
	}
	now := t0
	seq := 0
	for ; seq < 100; seq++ { // steady: no excess
		now = t0.Add(time.Duration(seq) * 20 * time.Millisecond)
		jb.Push(uint16(seq), uint32(seq*160), 1, p, now)
		jb.Pop(now)
	}
	if e := jb.Excess(); e != 0 {
		t.Fatalf("steady stream: excess %v (stats %+v)", e, jb.Stats())
	}
	for range 20 { // 400 ms arrive at once
		jb.Push(uint16(seq), uint32(seq*160), 1, p, now)
		seq++
	}
	var excess []time.Duration
	for range 40 {
		now = now.Add(20 * time.Millisecond)
		jb.Push(uint16(seq), uint32(seq*160), 1, p, now)
		seq++
		jb.Pop(now)
		excess = append(excess, jb.Excess())
		if e, st := jb.Excess(), jb.Stats(); e > st.Depth-st.Target+time.Millisecond {
			t.Fatalf("excess %v above depth %v - target %v", e, st.Depth, st.Target)
		}
	}
	t.Logf("excess after a 400 ms burst, one pop per tick: %v", excess)
	if excess[39] < 200*time.Millisecond {
		t.Fatalf("excess %v after 40 ticks of a 400 ms burst", excess[39])
	}
	if st := jb.Stats(); st.Discarded != 0 {
		t.Fatalf("Shrinks: %d packets discarded", st.Discarded)
	}
	// Popping the excess away within one tick: the excess follows the
	// depth down at once, and the smoothed depth counts the tick once.
	before := jb.avgDepth
	for jb.Excess() > 0 {
		jb.Pop(now)
	}
	if jb.avgDepth != before {
		t.Fatalf("extra pops in one tick moved the smoothed depth from %.2f to %.2f", before, jb.avgDepth)
	}
}

// catchUp simulates a G.711 leg's receive path as bridge/ingress.go runs
// it with a Shrinker: every 20 ms tick pops packets, decodes them (or
// conceals, or fills silence) into a PCM fifo, shrinks each frame by what
// the jitter buffer reports as excess, and plays one 20 ms tick from the
// fifo. The sender sends speech over a network of 40-50 ms delay; at 5 s
// something makes a burst.
type catchUp struct {
	name string
	// fate gives packet i's arrival time (sent at send) and whether it comes
	// in a burst; !ok: it never arrives.
	fate  func(i int, send time.Time) (at time.Time, burst, ok bool)
	burst time.Time // when the burst arrives
	tsm   bool      // false: the jitter buffer's own packet drops
	vowel bool      // send a steady vowel (no pause to shrink) rather than speech
	secs  int       // how long the sender sends (default 12 s)
}

type catchUpResult struct {
	shed          time.Duration // from the burst until the delay is within 20 ms of the target
	peak          time.Duration // the highest delay after the burst
	over          time.Duration // the most the delay exceeds the target after it caught up
	steady        time.Duration // mean delay before the burst
	head, tail    time.Duration // mean delay over the first and the last 10 s of sending
	target        time.Duration
	stats         JitterStats
	in, out       []int16 // the speech sent, and what was played
	shedFrom      int     // output samples where shedding starts (after the burst's onset) ...
	shedTo        int     // ... and where it ended
	removed, maxK int     // samples shrunk away; most packets popped in one tick
}

func (c catchUp) run(t *testing.T) catchUpResult {
	t.Helper()
	const rate, frame = 8000, 160
	n := max(c.secs, 12) * 50
	speech := loadSpeech(t, rate)
	if c.vowel {
		speech = vowel(rate, 110, len(speech))
	}
	for len(speech) < n*frame {
		speech = append(speech, speech...)
	}
	t0 := time.Unix(1_000_000, 0)
	pcmu, _ := LookupCodec("PCMU")
	type arrival struct {
		at time.Time
		i  int
	}
	rng := rand.New(rand.NewSource(7))
	var arr []arrival
	for i := range n {
		send := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		at, burst, ok := c.fate(i, send)
		switch {
		case !ok:
			continue
		case burst: // a burst comes in order, 1 µs apart
			at = at.Add(-time.Duration(n-i) * time.Microsecond)
		default: // 0-10 ms of jitter
			at = at.Add(time.Duration(rng.Intn(10_000)) * time.Microsecond)
		}
		arr = append(arr, arrival{at, i})
	}
	sort.SliceStable(arr, func(a, b int) bool { return arr[a].at.Before(arr[b].at) })
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = EncodeUlaw(nil, speech[i*frame:(i+1)*frame])
	}

	jb := NewJitterBuffer(JitterConfig{Rate: rate, Silent: pcmu.Silent, Shrinks: c.tsm})
	dec := newPLCDecoder("PCMU", rate, DecodeUlaw)
	shr := NewShrinker(rate, frame)
	fifo := make([]int16, 0, rate/10*2)
	res := catchUpResult{in: speech[:n*frame], shedFrom: -1}
	var steady, head, tail []time.Duration
	skipped := false
	ai := 0
	arrived, caught := false, false
	for k := 0; k < n+100; k++ {
		now := t0.Add(time.Duration(k) * 20 * time.Millisecond)
		for ai < len(arr) && !arr[ai].at.After(now) {
			i := arr[ai].i
			jb.Push(uint16(i), uint32(i*frame), 1, payloads[i], arr[ai].at)
			ai++
		}
		pops := 0
		for len(fifo) < frame {
			payload, st := jb.Pop(now)
			if st == JitterEmpty {
				break
			}
			pops++
			m := len(fifo)
			switch {
			case st == JitterPacket && pcmu.Silent(payload):
				fifo = grow(fifo, frame)
				skipped = true
			case st == JitterPacket:
				if skipped { // fade out what the decoder held from before the silence
					fifo, _ = dec.Conceal(fifo, frame)
					fifo = fifo[:m]
					skipped = false
				}
				fifo, _ = dec.Decode(fifo, payload)
			case skipped:
				fifo = grow(fifo, frame)
			default:
				fifo, _ = dec.Conceal(fifo, frame)
			}
			if c.tsm {
				want := int(jb.Excess() * rate / time.Second)
				var r int
				fifo, r = shr.Shrink(fifo[:m], fifo[m:], want)
				res.removed += r
				if r > 0 && res.shedFrom < 0 && !now.Before(c.burst) {
					res.shedFrom = len(res.out)
				}
			}
		}
		res.maxK = max(res.maxK, pops)
		tick := min(len(fifo), frame)
		res.out = append(res.out, fifo[:tick]...)
		res.out = append(res.out, make([]int16, frame-tick)...)
		fifo = fifo[:copy(fifo, fifo[tick:])]

		st := jb.Stats()
		delay := st.Depth + time.Duration(len(fifo))*time.Second/rate
		if k < n && k >= n-500 {
			tail = append(tail, delay)
		}
		if k >= 50 && k < 550 {
			head = append(head, delay)
		}
		switch {
		case now.Before(c.burst) && now.Sub(t0) > time.Second:
			steady = append(steady, delay)
		case now.Before(c.burst):
		case !arrived && delay <= st.Target+20*time.Millisecond: // the burst is not in yet
		case !caught:
			arrived = true
			res.peak = max(res.peak, delay)
			if delay <= st.Target+20*time.Millisecond {
				caught = true
				res.shed = now.Sub(c.burst)
				res.target = st.Target
				res.shedTo = len(res.out)
			}
		default:
			res.over = max(res.over, delay-st.Target)
		}
	}
	if !caught {
		res.shed = -1
	}
	res.steady = mean(steady)
	res.head, res.tail = mean(head), mean(tail)
	res.stats = jb.Stats()
	return res
}

// After a sender's 1 s stall and after a 400 ms gap that ends in a burst
// (DTMF events in place of audio, then the audio held meanwhile), the
// delay is back within 20 ms of the target within 1 s, by time-scale
// compression: no packet is dropped and the audio has no click.
func TestJitterShrinkCatchUp(t *testing.T) {
	const at = 250 // the event starts at 5 s
	base := 40 * time.Millisecond
	t0 := time.Unix(1_000_000, 0)
	pkt := func(i int) time.Time { return t0.Add(time.Duration(i) * 20 * time.Millisecond) }
	stall := func(i int, send time.Time) (time.Time, bool, bool) {
		if i >= at && i < at+50 { // held, then sent at once
			return pkt(at + 50).Add(base), true, true
		}
		return send.Add(base), false, true
	}
	dtmf := func(i int, send time.Time) (time.Time, bool, bool) {
		switch {
		case i >= at && i < at+20: // DTMF events took these sequence numbers
			return time.Time{}, false, false
		case i >= at+20 && i < at+40: // the audio of the next 400 ms, in a burst
			return pkt(at + 40).Add(base), true, true
		}
		return send.Add(base), false, true
	}
	for _, c := range []struct {
		catchUp
		within time.Duration // the delay must be back this soon; 0: log only
	}{
		{catchUp{name: "1 s stall", fate: stall, burst: pkt(at + 50).Add(base), tsm: true}, time.Second},
		{catchUp{name: "400 ms DTMF gap", fate: dtmf, burst: pkt(at + 40).Add(base), tsm: true}, time.Second},
		// A voice that never pauses loses at most half of its audio: 1 s
		// of excess takes 2 s, 400 ms well under 1 s.
		{catchUp{name: "1 s stall, steady vowel", fate: stall, burst: pkt(at + 50).Add(base), tsm: true, vowel: true}, 2100 * time.Millisecond},
		{catchUp{name: "400 ms DTMF gap, steady vowel", fate: dtmf, burst: pkt(at + 40).Add(base), tsm: true, vowel: true}, time.Second},
		// Before: the jitter buffer drops a packet per 200 ms at most.
		{catchUp{name: "1 s stall, packet drops", fate: stall, burst: pkt(at + 50).Add(base)}, 0},
		{catchUp{name: "400 ms DTMF gap, packet drops", fate: dtmf, burst: pkt(at + 40).Add(base)}, 0},
	} {
		r := c.run(t)
		t.Logf("%s: steady delay %v; after the burst: peak %v, back within 20 ms of the target (%v) after %v, then at most %v above it; shrunk %v, up to %d packets a tick; stats %+v",
			c.name, r.steady, r.peak, r.target, r.shed, r.over, time.Duration(r.removed)*time.Second/8000, r.maxK, r.stats)
		if c.within == 0 {
			continue
		}
		if r.shed < 0 || r.shed > c.within {
			t.Errorf("%s: shed the burst in %v, want %v", c.name, r.shed, c.within)
		}
		if r.over > 20*time.Millisecond {
			t.Errorf("%s: delay rose to %v above the target after catching up", c.name, r.over)
		}
		if r.stats.Discarded != 0 {
			t.Errorf("%s: %d packets discarded", c.name, r.stats.Discarded)
		}
		// Discontinuities while shedding, compared with the speech sent.
		if r.shedFrom < 0 || r.shedTo <= r.shedFrom {
			t.Errorf("%s: no shedding seen (from %d to %d)", c.name, r.shedFrom, r.shedTo)
			continue
		}
		win := r.out[r.shedFrom:r.shedTo]
		ji, jo := maxJump(r.in), maxJump(win)
		_, ni := clicks(r.in, 8000, 6)
		wo, no := clicks(win, 8000, 6)
		t.Logf("%s: while shedding (%v of output): max jump %d (speech sent: %d), worst click ratio %.1f, samples over 6: %d (speech sent: %d in %v)",
			c.name, time.Duration(len(win))*time.Second/8000, jo, ji, wo, no, ni, time.Duration(len(r.in))*time.Second/8000)
		if allowed := ni*len(win)/len(r.in)*3/2 + 2; jo > ji || no > allowed {
			t.Errorf("%s: discontinuities while shedding: max jump %d, %d samples over the click limit", c.name, jo, no)
		}
	}
}

// grow extends pcm by n zeros, as bridge/ingress.go does for silence.
func grow(pcm []int16, n int) []int16 {
	l := len(pcm)
	pcm = slices.Grow(pcm, n)[:l+n]
	clear(pcm[l:])
	return pcm
}

// A sender clock 0.1 % fast for 2 minutes: with Shrinks the buffer drops
// nothing, the consumer sheds the creep by time-scale compression, and
// the delay does not grow.
func TestJitterShrinkDrift(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	fast := func(i int, send time.Time) (time.Time, bool, bool) {
		return t0.Add(time.Duration(float64(i) * float64(20*time.Millisecond) / 1.001)).Add(40 * time.Millisecond), false, true
	}
	r := catchUp{name: "drift", fate: fast, burst: t0.Add(time.Hour), tsm: true, secs: 120}.run(t)
	t.Logf("sender 0.1%% fast for 2 min: mean delay %v over the first 10 s, %v over the last 10 s; shrunk %v; stats %+v",
		r.head, r.tail, time.Duration(r.removed)*time.Second/8000, r.stats)
	if r.tail > r.head+20*time.Millisecond || r.stats.Discarded != 0 {
		t.Fatalf("delay crept from %v to %v, %d packets discarded", r.head, r.tail, r.stats.Discarded)
	}
	if r.removed < 8000*80/1000 { // of 120 ms of creep
		t.Fatalf("shrunk %d samples, want the 120 ms the sender ran ahead", r.removed)
	}
}
