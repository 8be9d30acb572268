package bridge

import (
	"math"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// clickLeg receives a room's output in real time and notes when each click
// (a loud frame after quiet ones) arrives.
type clickLeg struct {
	discardLeg
	h      audio.PacketHandler
	mu     sync.Mutex
	loud   bool
	clicks []time.Time
	pcm    []int16
}

func (l *clickLeg) SetPacketHandler(h audio.PacketHandler) {
	l.mu.Lock()
	l.h = h
	l.mu.Unlock()
}

func (l *clickLeg) handler() audio.PacketHandler {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h
}

func (l *clickLeg) WritePayload(p []byte, _ uint32) error {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pcm, _ = audio.G711{}.Decode(l.pcm[:0], p)
	var e float64
	for _, v := range l.pcm {
		e += float64(v) * float64(v)
	}
	loud := len(l.pcm) > 0 && e/float64(len(l.pcm)) > 1e6 // above -30 dBFS
	if loud && !l.loud {
		l.clicks = append(l.clicks, now)
	}
	l.loud = loud
	return nil
}

// stallTicker blocks its clock worker once, like a machine that stops
// giving the process a CPU for a while.
type stallTicker struct {
	at    time.Time
	stall time.Duration
	once  sync.Once
}

func (s *stallTicker) tick(time.Time) {
	if time.Now().After(s.at) {
		s.once.Do(func() { time.Sleep(s.stall) })
	}
}

// BenchmarkRoomDelay measures the one-way delay a room adds, in real time on
// a clock of its own: a PCMU leg sends a loud 20 ms click every 200 ms over
// a quiet noise floor, and the time from sending a click to another leg
// receiving it is taken for each click. With network jitter the packets
// arrive up to that much late (reordered); with a stall, the room's clock
// stops for 1 s once, and "recover-ms" is how long after the stall the
// delay is back within 20 ms of what it was before. A benchmark, not a
// test: the figures depend on the machine. Run with -benchtime 1x.
func BenchmarkRoomDelay(b *testing.B) {
	for _, c := range []struct {
		name   string
		jitter time.Duration
		stall  time.Duration
	}{
		{"jitter=0", 0, 0},
		{"jitter=20ms", 20 * time.Millisecond, 0},
		{"stall=1s", 0, time.Second},
	} {
		b.Run(c.name, func(b *testing.B) { roomDelay(b, c.jitter, c.stall) })
	}
}

func roomDelay(b *testing.B, jitter, stall time.Duration) {
	clock := NewClock(1)
	r, err := NewRoom(RoomConfig{Name: "delay", Rate: 8000, Clock: clock, Logger: quiet(), JoinTone: NoTone, LeaveTone: NoTone})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	a := &clickLeg{discardLeg: discardLeg{id: "a", codec: pcmu, done: make(chan struct{})}}
	l := &clickLeg{discardLeg: discardLeg{id: "b", codec: pcmu, done: make(chan struct{})}}
	for _, leg := range []Leg{a, l} {
		if err := r.Join(leg, JoinOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	const run = 12 * time.Second
	start := time.Now()
	st := &stallTicker{at: start.Add(4 * time.Second), stall: stall}
	if stall > 0 {
		w := clock.add(st)
		defer w.remove(st)
	}
	rng := rand.New(rand.NewSource(1))
	var sent []time.Time
	var wg sync.WaitGroup
	tk := time.NewTicker(FrameDuration)
	pcm := make([]int16, 160)
	tone := audio.Tone{Rate: 8000, Freq: 1000, Level: 0.5}
	var seq uint16
	for i := 0; time.Since(start) < run; i++ {
		<-tk.C
		click := i%10 == 5
		if click {
			tone.Fill(pcm)
			sent = append(sent, time.Now())
		} else {
			for k := range pcm { // a quiet noise floor (-45 dBFS): never skipped as silence
				pcm[k] = int16(rng.NormFloat64() * 180)
			}
		}
		payload, _ := audio.G711{}.Encode(nil, pcm)
		p := audio.Packet{Seq: seq, Timestamp: uint32(seq) * 160, SSRC: 9, Payload: payload}
		seq++
		if jitter == 0 {
			a.handler().HandlePacket(&p)
			continue
		}
		wg.Add(1)
		time.AfterFunc(time.Duration(rng.Int63n(int64(jitter))), func() { defer wg.Done(); a.handler().HandlePacket(&p) })
	}
	tk.Stop()
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	l.mu.Lock()
	got := slices.Clone(l.clicks)
	l.mu.Unlock()
	b.ReportMetric(float64(len(sent)-len(got)), "lost-clicks")
	// Each click heard is matched with the last one sent before it: clicks
	// are 200 ms apart, far more than the delay outside a stall.
	var delays []float64
	var at []time.Time // when the matched click was sent
	for _, g := range got {
		i, _ := slices.BinarySearchFunc(sent, g, func(s, g time.Time) int { return s.Compare(g) })
		if i == 0 {
			continue
		}
		delays = append(delays, float64(g.Sub(sent[i-1]).Microseconds())/1000)
		at = append(at, sent[i-1])
	}
	if len(delays) < len(sent)/2 {
		b.Fatalf("%d clicks sent, %d heard", len(sent), len(got))
	}
	if stall > 0 {
		// The worst delay before the stall, and how long after it ended
		// the delay was back within 20 ms of that, for good.
		var before float64
		recover := math.Inf(1)
		end := st.at.Add(stall)
		for i, d := range delays {
			switch {
			case at[i].Before(st.at):
				before = max(before, d)
			case at[i].After(end) && d <= before+20 && math.IsInf(recover, 1):
				recover = float64(at[i].Sub(end).Milliseconds())
			case at[i].After(end) && d > before+20:
				recover = math.Inf(1)
			}
		}
		b.ReportMetric(before, "before-ms")
		b.ReportMetric(recover, "recover-ms")
		b.Logf("delays (ms): %.0f; %+v", delays, clock.Stats())
		return
	}
	slices.Sort(delays)
	b.ReportMetric(delays[len(delays)/2], "p50-ms")
	b.ReportMetric(delays[len(delays)*99/100], "p99-ms")
	b.ReportMetric(delays[len(delays)-1], "max-ms")
}
