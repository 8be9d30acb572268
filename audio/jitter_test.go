package audio

import (
	"encoding/binary"
	"math/rand"
	"sort"
	"testing"
	"time"
)

// netSim sends one packet per 20 ms of the sender's clock (running fast or
// slow by drift) over a network with a delay of base +- jitter, loss, and an
// optional burst; the receiver pops every 20 ms of its own clock.
type netSim struct {
	seed      int64
	loss      float64
	base      time.Duration
	jitter    time.Duration
	drift     float64 // +0.001: the sender's clock runs 0.1 % fast
	burstAt   int     // first packet of a burst of 10 lost packets (0: none)
	duration  time.Duration
	talkspurt bool // payload marks 1 s of speech, 1 s of silence
	ssrcAt    int  // the SSRC changes at this packet (0: never)
	startSeq  uint16
}

type simResult struct {
	sent, dropped, played, conceal, empty int
	delays                                []time.Duration // play time minus send time
	lateDelays                            []time.Duration // same, over the last minute
	early                                 []time.Duration // same, over the first minute after start-up
	stats                                 JitterStats
	maxDepth                              time.Duration
}

func (n netSim) run(t *testing.T) simResult {
	t.Helper()
	rng := rand.New(rand.NewSource(n.seed))
	silent := func(p []byte) bool { return len(p) > 4 && p[4] == 0 }
	jb := NewJitterBuffer(JitterConfig{Rate: 8000, Silent: silent})
	type arrival struct {
		at      time.Time
		seq     uint16
		ts      uint32
		ssrc    uint32
		payload []byte
	}
	t0 := time.Unix(1_000_000, 0)
	var arrivals []arrival
	sendTimes := map[uint32]time.Time{}
	var res simResult
	period := time.Duration(float64(20*time.Millisecond) / (1 + n.drift))
	for i := 0; time.Duration(i)*period < n.duration; i++ {
		sendAt := t0.Add(time.Duration(i) * period)
		res.sent++
		idx := uint32(i)
		sendTimes[idx] = sendAt
		if (n.burstAt > 0 && i >= n.burstAt && i < n.burstAt+10) || rng.Float64() < n.loss {
			res.dropped++
			continue
		}
		d := n.base + time.Duration((rng.Float64()*2-1)*float64(n.jitter))
		p := make([]byte, 160)
		binary.BigEndian.PutUint32(p, idx)
		p[4] = 1
		if n.talkspurt && (i/50)%2 == 1 {
			p[4] = 0
		}
		ssrc := uint32(1)
		if n.ssrcAt > 0 && i >= n.ssrcAt {
			ssrc = 2
		}
		arrivals = append(arrivals, arrival{sendAt.Add(d), n.startSeq + uint16(i), uint32(i) * 160, ssrc, p})
	}
	sort.SliceStable(arrivals, func(a, b int) bool { return arrivals[a].at.Before(arrivals[b].at) })
	ai := 0
	end := t0.Add(n.duration + time.Second)
	for now := t0; now.Before(end); now = now.Add(20 * time.Millisecond) {
		for ai < len(arrivals) && !arrivals[ai].at.After(now) {
			a := arrivals[ai]
			jb.Push(a.seq, a.ts, a.ssrc, a.payload, a.at)
			ai++
		}
		p, st := jb.Pop(now)
		res.maxDepth = max(res.maxDepth, jb.Stats().Depth)
		switch st {
		case JitterPacket:
			res.played++
			d := now.Sub(sendTimes[binary.BigEndian.Uint32(p)])
			res.delays = append(res.delays, d)
			if now.Sub(t0) > n.duration-time.Minute {
				res.lateDelays = append(res.lateDelays, d)
			}
			if el := now.Sub(t0); el > 10*time.Second && el < 70*time.Second {
				res.early = append(res.early, d)
			}
		case JitterConceal:
			res.conceal++
		default:
			res.empty++
		}
	}
	res.stats = jb.Stats()
	return res
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s / time.Duration(len(ds))
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// 5 % loss, 40 +- 20 ms of delay (so reordering), a burst of 10 lost packets:
// concealment tracks the loss and the delay stays bounded.
func TestJitterBufferLossJitterBurst(t *testing.T) {
	r := netSim{seed: 1, loss: 0.05, base: 40 * time.Millisecond, jitter: 20 * time.Millisecond, burstAt: 3000, duration: 2 * time.Minute}.run(t)
	t.Logf("sent %d dropped %d played %d conceal %d empty %d; stats %+v; mean delay %v max %v",
		r.sent, r.dropped, r.played, r.conceal, r.empty, r.stats, mean(r.delays), maxDur(r.delays))
	if r.stats.Lost < uint64(r.dropped)*8/10 || r.stats.Lost > uint64(r.dropped)*13/10 {
		t.Errorf("lost %d, network dropped %d", r.stats.Lost, r.dropped)
	}
	if r.played+r.dropped < r.sent*97/100 {
		t.Errorf("played %d + dropped %d of %d sent: packets disappeared (late %d, discarded %d)",
			r.played, r.dropped, r.sent, r.stats.Late, r.stats.Discarded)
	}
	if m := maxDur(r.delays); m > 200*time.Millisecond+20*time.Millisecond {
		t.Errorf("max delay %v over the 200 ms bound", m)
	}
	if m := mean(r.delays); m > 120*time.Millisecond || m < 60*time.Millisecond {
		t.Errorf("mean delay %v: want about the 60 ms network maximum plus a packet", m)
	}
}

// Clock drift of 0.1 % either way for 10 simulated minutes: the delay does
// not creep, because the buffer drops or stretches (in silence).
func TestJitterBufferClockDrift(t *testing.T) {
	for _, drift := range []float64{0.001, -0.001} {
		r := netSim{seed: 2, loss: 0.01, base: 40 * time.Millisecond, jitter: 20 * time.Millisecond,
			drift: drift, duration: 10 * time.Minute, talkspurt: true}.run(t)
		early, late := mean(r.early), mean(r.lateDelays)
		t.Logf("drift %+.1f%%: early mean delay %v, last minute %v, max %v, discarded %d, concealed %d",
			drift*100, early, late, maxDur(r.delays), r.stats.Discarded, r.stats.Concealed)
		if late > early+30*time.Millisecond || late < early-30*time.Millisecond {
			t.Errorf("drift %+.1f%%: delay moved from %v to %v", drift*100, early, late)
		}
		if m := maxDur(r.delays); m > 220*time.Millisecond {
			t.Errorf("drift %+.1f%%: max delay %v", drift*100, m)
		}
		if drift > 0 && (r.stats.Discarded < 25 || r.stats.Discarded > 45) {
			t.Errorf("0.6 s of extra audio (30 packets) should have been dropped, dropped %d", r.stats.Discarded)
		}
	}
}

// The buffer grows for a bad network and shrinks again when it calms.
func TestJitterBufferAdapts(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	jb := NewJitterBuffer(JitterConfig{Rate: 8000})
	t0 := time.Unix(0, 0)
	p := make([]byte, 160)
	targetAt := func(from, to int, jitter time.Duration) time.Duration {
		var arr []struct {
			at  time.Time
			seq int
		}
		for i := from; i < to; i++ {
			d := 20*time.Millisecond + time.Duration(rng.Float64()*float64(jitter))
			arr = append(arr, struct {
				at  time.Time
				seq int
			}{t0.Add(time.Duration(i)*20*time.Millisecond + d), i})
		}
		sort.Slice(arr, func(a, b int) bool { return arr[a].at.Before(arr[b].at) })
		k := 0
		for now := t0.Add(time.Duration(from) * 20 * time.Millisecond); k < len(arr); now = now.Add(20 * time.Millisecond) {
			for k < len(arr) && !arr[k].at.After(now) {
				jb.Push(uint16(arr[k].seq), uint32(arr[k].seq*160), 7, p, arr[k].at)
				k++
			}
			jb.Pop(now)
		}
		return jb.Stats().Target
	}
	calm := targetAt(0, 500, 2*time.Millisecond)
	rough := targetAt(500, 1500, 120*time.Millisecond)
	calmAgain := targetAt(1500, 3500, 2*time.Millisecond)
	t.Logf("target: calm %v, rough %v, calm again %v", calm, rough, calmAgain)
	if calm > 40*time.Millisecond || rough < 100*time.Millisecond || calmAgain > 40*time.Millisecond {
		t.Fatalf("target calm %v, rough %v, calm again %v", calm, rough, calmAgain)
	}
}

// Sequence and timestamp wrap, and an SSRC change, keep the audio flowing.
func TestJitterBufferWrapAndSSRC(t *testing.T) {
	r := netSim{seed: 4, base: 30 * time.Millisecond, jitter: 5 * time.Millisecond, duration: 30 * time.Second,
		startSeq: 65000, ssrcAt: 800}.run(t)
	if r.played < r.sent-30 {
		t.Fatalf("played %d of %d across a sequence wrap and an SSRC change (stats %+v)", r.played, r.sent, r.stats)
	}
	if r.stats.Resyncs != 1 {
		t.Fatalf("resyncs %d, want 1 (the SSRC change)", r.stats.Resyncs)
	}
}

// Duplicates and late packets are dropped and counted.
func TestJitterBufferDuplicateAndLate(t *testing.T) {
	jb := NewJitterBuffer(JitterConfig{Rate: 8000, Min: 20 * time.Millisecond, Max: 40 * time.Millisecond})
	t0 := time.Unix(0, 0)
	p := []byte{1, 2, 3}
	jb.Push(1, 160, 9, p, t0)
	jb.Push(1, 160, 9, p, t0)
	if jb.Stats().Duplicate != 1 {
		t.Fatalf("duplicate not counted: %+v", jb.Stats())
	}
	now := t0
	for i := 0; i < 5; i++ {
		now = now.Add(20 * time.Millisecond)
		jb.Pop(now)
	}
	jb.Push(0, 0, 9, p, now) // older than what was played
	if jb.Stats().Late != 1 {
		t.Fatalf("late not counted: %+v", jb.Stats())
	}
}

// A sender that pauses for 5 s and comes back: no burst of concealment, the
// buffer rebuffers and plays on.
func TestJitterBufferPause(t *testing.T) {
	jb := NewJitterBuffer(JitterConfig{Rate: 8000})
	t0 := time.Unix(0, 0)
	p := make([]byte, 160)
	conceal, played := 0, 0
	seq := uint16(0)
	for tick := 0; tick < 1000; tick++ {
		now := t0.Add(time.Duration(tick) * 20 * time.Millisecond)
		if tick < 300 || tick >= 550 { // silent from 6 s to 11 s
			jb.Push(seq, uint32(tick)*160, 5, p, now.Add(-5*time.Millisecond))
			seq++
		}
		_, st := jb.Pop(now)
		switch st {
		case JitterConceal:
			conceal++
		case JitterPacket:
			played++
		}
	}
	if conceal > jbPauseAfter+2 || played < int(seq)-20 {
		t.Fatalf("conceal %d, played %d of %d", conceal, played, seq)
	}
}

func FuzzJitterBuffer(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 2, 0, 1, 5, 0, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		jb := NewJitterBuffer(JitterConfig{Rate: 8000, Silent: func(p []byte) bool { return len(p) > 0 && p[0] == 0 }})
		now := time.Unix(0, 0)
		for len(b) >= 7 {
			seq := binary.BigEndian.Uint16(b)
			ts := binary.BigEndian.Uint32(b[2:])
			ssrc := uint32(b[6] & 1)
			n := int(b[6] >> 1)
			b = b[7:]
			n = min(n, len(b))
			jb.Push(seq, ts, ssrc, b[:n], now)
			b = b[n:]
			now = now.Add(time.Duration(ts%40) * time.Millisecond)
			p, st := jb.Pop(now)
			if st == JitterPacket && p == nil {
				t.Fatal("packet status without a payload")
			}
			if d := jb.Stats().Depth; d < 0 || d > jbSlots*time.Second {
				t.Fatalf("depth %v", d)
			}
			if e := jb.Excess(); e < 0 || e > jb.Stats().Depth {
				t.Fatalf("excess %v, depth %v", e, jb.Stats().Depth)
			}
		}
	})
}

func BenchmarkJitterBufferPushPop(b *testing.B) {
	jb := NewJitterBuffer(JitterConfig{Rate: 8000})
	p := make([]byte, 160)
	now := time.Unix(0, 0)
	var seq uint16
	b.ReportAllocs()
	for b.Loop() {
		jb.Push(seq, uint32(seq)*160, 1, p, now)
		seq++
		now = now.Add(20 * time.Millisecond)
		jb.Pop(now)
	}
}

// A sender in DTX pauses with consecutive sequence numbers and a jump in
// timestamps: when it talks again, its first packets play, none is taken
// for late (the numbers Pop gave up as lost during the pause resume).
func TestJitterDTXResumeKeepsOnset(t *testing.T) {
	jb := NewJitterBuffer(JitterConfig{Rate: 48000})
	now := time.Unix(100, 0)
	seq, ts := uint16(0), uint32(0)
	for burst := range 5 {
		for range 10 { // 200 ms of talk
			jb.Push(seq, ts, 1, []byte{byte(seq), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, now)
			seq++
			ts += 960
			jb.Pop(now)
			now = now.Add(20 * time.Millisecond)
		}
		for range 20 + burst { // a DTX pause: nothing sent, the clock runs on
			jb.Pop(now)
			now = now.Add(20 * time.Millisecond)
			ts += 960
		}
	}
	for range 10 { // play out what is left
		jb.Pop(now)
		now = now.Add(20 * time.Millisecond)
	}
	st := jb.Stats()
	t.Logf("%+v", st)
	// Only the last pause, after which nothing came, leaves its guesses lost.
	if st.Late > 0 || st.Played != 50 || st.Lost > jbPauseAfter-1 {
		t.Fatalf("%d of 50 played, %d late, %d lost: the first packets after each pause were dropped", st.Played, st.Late, st.Lost)
	}
}
