package bridge

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/audio/opus"
)

// checkHears asserts that what leg k heard (from `from` seconds on) holds
// the tone of every leg in others and not its own.
func checkHears(t *testing.T, l *memLeg, k int, others []int, absent []int, from float64) {
	t.Helper()
	pcm, rate := heard(t, l)
	start := int(from * float64(rate))
	if start >= len(pcm) {
		t.Fatalf("leg %s heard only %d samples", l.id, len(pcm))
	}
	pcm = pcm[start:]
	weakest := 1.0
	for _, j := range others {
		weakest = min(weakest, audio.Goertzel(pcm, rate, legFreq(j)))
	}
	// A tone at level 0.08 has a Goertzel power of 0.0016.
	if weakest < 0.0016/20 {
		t.Errorf("leg %s (%d): weakest other tone %.2g, want about 0.0016", l.id, k, weakest)
	}
	for _, j := range absent {
		if p := audio.Goertzel(pcm, rate, legFreq(j)); p > weakest/100 {
			t.Errorf("leg %s (%d) hears tone of leg %d: %.2g (weakest wanted %.2g)", l.id, k, j, p, weakest)
		}
	}
}

// Ten legs, G.711 at 8 kHz and Opus at 48 kHz mixed at 16 kHz: each hears
// all the others and not itself, while three legs suffer 5 % loss and
// 40 ms +- 20 ms of jitter.
func TestRoomTenLegsMixMinus(t *testing.T) {
	r := newTestRoom(t, RoomConfig{Name: "ten"})
	s := &sim{t: t, room: r, start: time.Unix(1000, 0)}
	var legs []*memLeg
	for k := 0; k < 10; k++ {
		l := newMemLeg(fmt.Sprintf("leg%d", k), codecFor(k))
		legs = append(legs, l)
		sd := newSender(t, l, legFreq(k), int64(k))
		if k < 3 {
			sd.loss, sd.base, sd.jitter = 0.05, 40*time.Millisecond, 20*time.Millisecond
		}
		s.senders = append(s.senders, sd)
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s.run(3*time.Second, nil)
	s.waitSent(legs...)
	for k, l := range legs {
		var others []int
		for j := range legs {
			if j != k {
				others = append(others, j)
			}
		}
		checkHears(t, l, k, others, []int{k}, 1)
	}
	st := r.Stats()
	for _, ls := range st.Legs[:3] {
		if ls.Jitter.Lost == 0 || ls.Jitter.Concealed == 0 {
			t.Errorf("%s: lossy leg shows no loss: %+v", ls.ID, ls.Jitter)
		}
	}
	t.Logf("mean tick %v for 10 legs", st.MeanTick)
}

// Mute, deaf, kick, lock and the maximum.
func TestRoomControls(t *testing.T) {
	events := make(chan Event, 100)
	r := newTestRoom(t, RoomConfig{Name: "ctl", Max: 3, Events: events})
	s := &sim{t: t, room: r, start: time.Unix(2000, 0)}
	var legs []*memLeg
	for k := 0; k < 3; k++ {
		l := newMemLeg(fmt.Sprintf("c%d", k), codecFor(k))
		legs = append(legs, l)
		s.senders = append(s.senders, newSender(t, l, legFreq(k), int64(k)))
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Join(newMemLeg("c9", pcmu), JoinOptions{}); err != ErrFull {
		t.Fatalf("fourth leg: %v, want ErrFull", err)
	}
	// Leg 0 muted, leg 1 deaf.
	if err := r.Mute("c0", true); err != nil {
		t.Fatal(err)
	}
	if err := r.Deafen("c1", true); err != nil {
		t.Fatal(err)
	}
	s.run(2*time.Second, nil)
	s.waitSent(legs...)
	checkHears(t, legs[2], 2, []int{1}, []int{0, 2}, 0.5) // leg 2 hears 1, not the muted 0
	pcm1, rate1 := heard(t, legs[1])
	if lvl := audio.LevelDBFS(pcm1[rate1/2:]); lvl > -60 {
		t.Errorf("deaf leg hears %.1f dBFS", lvl)
	}
	// Kick leg 2: the others stop hearing it; an event says so.
	if err := r.Kick("c2"); err != nil {
		t.Fatal(err)
	}
	s.senders[2] = nil
	before := len(legs[0].received())
	r.Mute("c0", false)
	r.Deafen("c1", false)
	s.run(1*time.Second, nil)
	s.waitSent(legs[0], legs[1])
	l0 := &memLeg{codec: legs[0].codec, payloads: legs[0].received()[before:]}
	checkHears(t, l0, 0, []int{1}, []int{0, 2}, 0.3)
	found := false
	for len(events) > 0 {
		if e := <-events; e.Type == "kicked" && e.Leg == "c2" {
			found = true
		}
	}
	if !found {
		t.Error("no kicked event")
	}
	// Lock: a new leg is refused even with room to spare.
	r.Lock(true)
	if err := r.Join(newMemLeg("c7", pcmu), JoinOptions{}); err != ErrLocked {
		t.Fatalf("join while locked: %v", err)
	}
	r.Lock(false)
	if err := r.Join(newMemLeg("c7", pcmu), JoinOptions{}); err != nil {
		t.Fatalf("join after unlock: %v", err)
	}
	if err := r.Mute("nobody", true); err != ErrNoLeg {
		t.Fatalf("mute unknown leg: %v", err)
	}
}

// A leg whose clock runs 0.5 % fast for 10 simulated minutes: the delay
// through the room stays bounded (its jitter buffer drops the surplus).
func TestRoomClockDriftBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("10 simulated minutes")
	}
	r := newTestRoom(t, RoomConfig{Name: "drift", Rate: 8000})
	s := &sim{t: t, room: r, start: time.Unix(3000, 0)}
	a, b := newMemLeg("fast", pcmu), newMemLeg("b", pcmu)
	sa := newSender(t, a, 500, 1)
	sa.drift = 0.005
	sb := newSender(t, b, 900, 2)
	s.senders = []*sender{sa, sb}
	for _, l := range []*memLeg{a, b} {
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var maxDepth time.Duration
	s.run(10*time.Minute, func(tick int) {
		if tick%50 == 0 {
			maxDepth = max(maxDepth, r.Stats().Legs[0].Jitter.Depth)
		}
	})
	js := r.Stats().Legs[0].Jitter
	r.mu.Lock()
	shed := time.Duration(r.members[0].in.shed) * time.Second / 8000
	r.mu.Unlock()
	t.Logf("fast leg after 10 min: depth %v (max %v), target %v, discarded %d, %v shed by time compression", js.Depth, maxDepth, js.Target, js.Discarded, shed)
	if maxDepth > 200*time.Millisecond || js.Depth > 100*time.Millisecond {
		t.Fatalf("delay crept: depth %v, max %v", js.Depth, maxDepth)
	}
	// 0.5 % of 10 minutes is 3 s of surplus audio: compressed away, not dropped.
	if js.Discarded > 0 || shed < 2500*time.Millisecond || shed > 3500*time.Millisecond {
		t.Fatalf("discarded %d packets and shed %v, want none discarded and about 3 s shed", js.Discarded, shed)
	}
}

// A leg that stops sending for 5 s and comes back: the others hear its tone
// stop and resume with no extra gap and no burst.
func TestRoomPauseAndResume(t *testing.T) {
	r := newTestRoom(t, RoomConfig{Name: "pause", Rate: 8000})
	s := &sim{t: t, room: r, start: time.Unix(4000, 0)}
	a, b := newMemLeg("a", pcmu), newMemLeg("b", pcmu)
	sa, sb := newSender(t, a, 700, 1), newSender(t, b, 1100, 2)
	s.senders = []*sender{sa, sb}
	r.Join(a, JoinOptions{})
	r.Join(b, JoinOptions{})
	s.run(2*time.Second, nil)
	s.senders[0] = nil // a's phone stops sending (no packets at all)
	s.run(5*time.Second, nil)
	sa.next = s.now // it resumes, numbering on
	s.senders[0] = sa
	s.run(3*time.Second, nil)
	s.waitSent(b)
	pcm, rate := heard(t, b)
	// Per 20 ms frame: does b hear a's tone?
	var on []bool
	for off := 0; off+160 <= len(pcm); off += 160 {
		on = append(on, audio.Goertzel(pcm[off:off+160], rate, 700) > 0.0016/10)
	}
	// Longest run without the tone, and frames with the tone after resuming.
	longest, run := 0, 0
	for i := 10; i < len(on); i++ {
		if !on[i] {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	after := 0
	for _, v := range on[350:] {
		if v {
			after++
		}
	}
	t.Logf("longest gap %d ms; tone in %d of the last %d frames", longest*20, after, len(on)-350)
	if longest*20 > 5000+120 {
		t.Fatalf("gap of %d ms for a 5 s pause", longest*20)
	}
	if after < len(on)-350-8 {
		t.Fatalf("after resuming the tone is in only %d of %d frames", after, len(on)-350)
	}
	if got, want := len(b.received()), s.ticks; got > want {
		t.Fatalf("b got %d frames in %d ticks: a burst", got, want)
	}
}

// A click into one leg comes out of another within 60 ms at zero jitter.
func TestRoomDelay(t *testing.T) {
	r := newTestRoom(t, RoomConfig{Name: "delay", Rate: 8000})
	s := &sim{t: t, room: r, start: time.Unix(5000, 0)}
	a, b := newMemLeg("a", pcmu), newMemLeg("b", pcmu)
	sa := newSender(t, a, 1000, 1)
	sa.base = 0
	sa.on = false
	s.senders = []*sender{sa, newSender(t, b, 300, 2)}
	s.senders[1].on = false
	r.Join(a, JoinOptions{})
	r.Join(b, JoinOptions{})
	s.run(time.Second, nil)
	clickTick := s.ticks
	sa.on = true
	s.run(20*time.Millisecond, nil)
	sa.on = false
	s.run(500*time.Millisecond, nil)
	s.waitSent(b)
	got := b.received()
	for i := clickTick; i < len(got); i++ {
		pcm, _ := audio.G711{}.Decode(nil, got[i])
		if audio.LevelDBFS(pcm) > -40 {
			delay := time.Duration(i-clickTick) * 20 * time.Millisecond
			t.Logf("click heard %v after it was sent; a's jitter buffer %+v", delay, r.Stats().Legs[0].Jitter)
			if delay > 60*time.Millisecond {
				t.Fatalf("delay %v > 60 ms", delay)
			}
			return
		}
	}
	t.Fatal("the click never came out")
}

// The mix goes to a WAV that holds every participant's tone; per-leg tracks
// hold their own; the file is valid while recording and after.
func TestRoomRecording(t *testing.T) {
	r := newTestRoom(t, RoomConfig{Name: "rec"})
	s := &sim{t: t, room: r, start: time.Unix(6000, 0)}
	var legs []*memLeg
	for k := 0; k < 3; k++ {
		l := newMemLeg(fmt.Sprintf("r%d", k), codecFor(k))
		legs = append(legs, l)
		s.senders = append(s.senders, newSender(t, l, legFreq(k), int64(k)))
		r.Join(l, JoinOptions{})
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "room.wav")
	if err := r.Record(path, true); err != nil {
		t.Fatal(err)
	}
	if err := r.Record(path, true); err != ErrRecording {
		t.Fatalf("second recording: %v", err)
	}
	s.run(2500*time.Millisecond, nil)
	// Mid-recording (as if killed now), the file already reads.
	if w, err := audio.ReadWAVFile(path); err != nil || len(w.Samples) < 16000 {
		t.Fatalf("file during recording: %v", err)
	}
	if err := r.StopRecording(); err != nil {
		t.Fatal(err)
	}
	w, err := audio.ReadWAVFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.Rate != 16000 || len(w.Samples) != 125*320 {
		t.Fatalf("recording: rate %d, %d samples", w.Rate, len(w.Samples))
	}
	for k := range legs {
		if p := audio.Goertzel(w.Samples[16000:], 16000, legFreq(k)); p < 0.0016/4 {
			t.Errorf("leg %d's tone missing from the recording (%.2g)", k, p)
		}
		track, err := audio.ReadWAVFile(filepath.Join(dir, fmt.Sprintf("room-r%d.wav", k)))
		if err != nil {
			t.Fatal(err)
		}
		own := audio.Goertzel(track.Samples[16000:], 16000, legFreq(k))
		other := audio.Goertzel(track.Samples[16000:], 16000, legFreq((k+1)%3))
		if own < 0.0016/4 || other > own/100 {
			t.Errorf("track %d: own %.2g other %.2g", k, own, other)
		}
	}
	_ = os.Remove(path)
}

// A prompt to one leg is heard by that leg only; a room prompt by everyone.
func TestRoomPrompts(t *testing.T) {
	r := newTestRoom(t, RoomConfig{Name: "prompt", Rate: 8000})
	s := &sim{t: t, room: r, start: time.Unix(7000, 0)}
	a, b := newMemLeg("a", pcmu), newMemLeg("b", pcma)
	sa, sb := newSender(t, a, 500, 1), newSender(t, b, 600, 2)
	sa.on, sb.on = false, false
	s.senders = []*sender{sa, sb}
	r.Join(a, JoinOptions{})
	r.Join(b, JoinOptions{})
	pin := &audio.WAV{Rate: 16000, Samples: make([]int16, 16000)}
	(&audio.Tone{Rate: 16000, Freq: 1500, Level: 0.3}).Fill(pin.Samples)
	if err := r.PlayToLeg("a", pin); err != nil {
		t.Fatal(err)
	}
	s.run(time.Second, nil)
	s.waitSent(a, b)
	pa, _ := heard(t, a)
	pb, _ := heard(t, b)
	if audio.Goertzel(pa, 8000, 1500) < 0.01 || audio.Goertzel(pb, 8000, 1500) > 1e-5 {
		t.Fatalf("leg prompt: a %.2g, b %.2g", audio.Goertzel(pa, 8000, 1500), audio.Goertzel(pb, 8000, 1500))
	}
	na, nb := len(a.received()), len(b.received())
	r.PlayToRoom(pin)
	s.run(time.Second, nil)
	s.waitSent(a, b)
	for _, l := range []*memLeg{{codec: pcmu, payloads: a.received()[na:]}, {codec: pcma, payloads: b.received()[nb:]}} {
		p, _ := heard(t, l)
		if audio.Goertzel(p, 8000, 1500) < 0.01 {
			t.Fatalf("room prompt not heard: %.2g", audio.Goertzel(p, 8000, 1500))
		}
	}
}

// Talk events: start and stop with the leg's id, desk phones included.
func TestRoomTalkEvents(t *testing.T) {
	events := make(chan Event, 100)
	r := newTestRoom(t, RoomConfig{Name: "talk", Rate: 8000, Events: events})
	s := &sim{t: t, room: r, start: time.Unix(8000, 0)}
	a, b := newMemLeg("desk", pcmu), newMemLeg("b", pcmu)
	sa, sb := newSender(t, a, 500, 1), newSender(t, b, 600, 2)
	sa.on, sb.on = false, false
	s.senders = []*sender{sa, sb}
	r.Join(a, JoinOptions{})
	r.Join(b, JoinOptions{})
	s.run(time.Second, nil)
	sa.on = true
	s.run(time.Second, nil)
	sa.on = false
	s.run(time.Second, nil)
	var got []string
	for len(events) > 0 {
		e := <-events
		if e.Leg == "desk" && e.Type != "joined" {
			got = append(got, e.Type)
		}
	}
	if fmt.Sprint(got) != "[talking stopped-talking]" {
		t.Fatalf("events %v", got)
	}
}

// An empty room stops its clock; no goroutine is left once it is closed.
func TestRoomNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	r, err := NewRoom(RoomConfig{Name: "g", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	legs := []*memLeg{newMemLeg("x", pcmu), newMemLeg("y", opc)}
	for _, l := range legs {
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the real clock ticks
	if r.Stats().Ticks == 0 {
		t.Fatal("the clock did not run")
	}
	legs[0].hangup() // a leg that ends leaves by itself
	deadline := time.Now().Add(2 * time.Second)
	for r.Len() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.Len() != 1 {
		t.Fatalf("ended leg still in the room (%d legs)", r.Len())
	}
	r.Leave("y")
	ticks := r.Stats().Ticks
	time.Sleep(100 * time.Millisecond)
	if r.Stats().Ticks != ticks {
		t.Fatal("an empty room keeps ticking")
	}
	r.Close()
	r.Close()
	deadline = time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left (before %d):\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// stallLeg never returns from WritePayload until released: a stuck peer.
type stallLeg struct {
	*memLeg
	release chan struct{}
}

func (l *stallLeg) WritePayload(p []byte, n uint32) error {
	<-l.release
	return nil
}

func (l *stallLeg) QueueWrites() bool { return true }

// A stalled leg that asked for queued writes delays nobody: ticks stay
// fast, the others hear normally, and the stuck leg's queue drops its
// oldest frames.
func TestRoomStalledLeg(t *testing.T) {
	r := newTestRoom(t, RoomConfig{Name: "stall", Rate: 8000})
	s := &sim{t: t, room: r, start: time.Unix(9000, 0)}
	a, b := newMemLeg("a", pcmu), newMemLeg("b", pcmu)
	stuck := &stallLeg{memLeg: newMemLeg("stuck", pcmu), release: make(chan struct{})}
	defer close(stuck.release)
	s.senders = []*sender{newSender(t, a, 500, 1), newSender(t, b, 900, 2), newSender(t, stuck.memLeg, 1300, 3)}
	for _, l := range []Leg{a, b, stuck} {
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The sim waits for egress queues to drain; the stuck one never will, so
	// tick by hand here.
	var durations []time.Duration
	for i := 0; i < 100; i++ {
		now := s.start.Add(s.now)
		r.simNow.Store(now.UnixNano())
		for _, sd := range s.senders {
			sd.produce(s.now)
			sd.deliver(s.now)
		}
		for _, sd := range s.senders {
			for sd.leg.consumed.Load() < sd.sent {
				runtime.Gosched()
			}
		}
		t0 := time.Now()
		r.Tick(now)
		// A tick waiting on the stuck leg would never return; a busy
		// machine (and -race) may still pause one for a while.
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("tick took %v with a stalled leg", d)
		}
		durations = append(durations, time.Since(t0))
		s.ticks++
		s.now += 20 * time.Millisecond
		time.Sleep(time.Millisecond) // let the healthy senders run
	}
	slices.Sort(durations)
	if med := durations[len(durations)/2]; med > 20*time.Millisecond {
		t.Fatalf("median tick %v with a stalled leg", med)
	}
	s.waitSent(a)
	checkHearsFreq(t, a, []float64{900, 1300}, 500)
	for _, ls := range r.Stats().Legs {
		if ls.ID == "stuck" && ls.Dropped < 90 {
			t.Fatalf("stuck leg dropped only %d frames", ls.Dropped)
		}
	}
}

func checkHearsFreq(t *testing.T, l *memLeg, others []float64, own float64) {
	t.Helper()
	pcm, rate := heard(t, l)
	pcm = pcm[len(pcm)/3:]
	for _, f := range others {
		if p := audio.Goertzel(pcm, rate, f); p < 0.0016/20 {
			t.Errorf("leg %s does not hear %.0f Hz (%.2g)", l.id, f, p)
		}
	}
	if p := audio.Goertzel(pcm, rate, own); p > 1e-6 {
		t.Errorf("leg %s hears itself (%.2g)", l.id, p)
	}
}

// Gain: a leg turned down by 20 dB is heard 20 dB lower.
func TestRoomGain(t *testing.T) {
	r := newTestRoom(t, RoomConfig{Name: "gain", Rate: 8000})
	s := &sim{t: t, room: r, start: time.Unix(9500, 0)}
	a, b, c := newMemLeg("a", pcmu), newMemLeg("b", pcmu), newMemLeg("c", pcmu)
	s.senders = []*sender{newSender(t, a, 500, 1), newSender(t, b, 900, 2), newSender(t, c, 1300, 3)}
	for _, l := range []*memLeg{a, b, c} {
		r.Join(l, JoinOptions{})
	}
	if err := r.SetGain("a", -20); err != nil {
		t.Fatal(err)
	}
	s.run(2*time.Second, nil)
	s.waitSent(c)
	pcm, rate := heard(t, c)
	pcm = pcm[rate/2:]
	ratio := 10 * math.Log10(audio.Goertzel(pcm, rate, 500)/audio.Goertzel(pcm, rate, 900))
	if ratio > -18 || ratio < -22 {
		t.Fatalf("a is heard %.1f dB relative to b, want -20", ratio)
	}
}

// Connect: a desk phone (PCMU) and a browser (Opus) in a call of their own.
func TestConnectTranscodes(t *testing.T) {
	a, b := newMemLeg("phone", pcmu), newMemLeg("browser", opc)
	r, err := Connect(a, b, RoomConfig{ManualClock: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Rate() != 8000 {
		t.Fatalf("PCMU-Opus call mixed at %d Hz", r.Rate())
	}
	s := &sim{t: t, room: r, start: time.Unix(9900, 0)}
	s.senders = []*sender{newSender(t, a, 600, 1), newSender(t, b, 1000, 2)}
	s.run(2*time.Second, nil)
	s.waitSent(a, b)
	checkHearsFreq(t, a, []float64{1000}, 600)
	checkHearsFreq(t, b, []float64{600}, 1000)
	if err := r.Join(newMemLeg("third", pcmu), JoinOptions{}); err != ErrFull {
		t.Fatalf("a third leg in a 1:1 call: %v", err)
	}
}

// A deaf leg hears its own prompt (a waiting tone, a confirmation beep) and
// still nothing of the room.
func TestDeafLegHearsItsOwnPrompt(t *testing.T) {
	r := newTestRoom(t, RoomConfig{Name: "deaf-prompt"})
	s := &sim{t: t, room: r, start: time.Unix(3000, 0)}
	var legs []*memLeg
	for k := 0; k < 2; k++ {
		l := newMemLeg(fmt.Sprintf("d%d", k), codecFor(k))
		legs = append(legs, l)
		s.senders = append(s.senders, newSender(t, l, legFreq(k), int64(k)))
		if err := r.Join(l, JoinOptions{Deaf: k == 1}); err != nil {
			t.Fatal(err)
		}
	}
	w := &audio.WAV{Rate: 8000, Samples: make([]int16, 8000*2)}
	(&audio.Tone{Rate: 8000, Freq: 1500, Level: 0.1}).Fill(w.Samples)
	if err := r.PlayToLeg("d1", w); err != nil {
		t.Fatal(err)
	}
	s.run(1500*time.Millisecond, nil)
	s.waitSent(legs...)
	pcm, rate := heard(t, legs[1])
	pcm = pcm[rate/2:]
	prompt, room := audio.Goertzel(pcm, rate, 1500), audio.Goertzel(pcm, rate, legFreq(0))
	t.Logf("deaf leg: prompt %.2g, the other leg's tone %.2g", prompt, room)
	if prompt < 0.001 || room > prompt/1000 {
		t.Fatalf("deaf leg: prompt %.2g, the room %.2g", prompt, room)
	}
}

// A room nobody is in is released and made afresh by the next Get; one
// with a leg, or recording, is kept; a Join racing with the release gets
// ErrClosed.
func TestRoomsRelease(t *testing.T) {
	rs := NewRooms(RoomConfig{ManualClock: true, JoinTone: NoTone, LeaveTone: NoTone})
	defer rs.Close()
	r, _ := rs.Get("a")
	l := newMemLeg("x", pcmu)
	if err := r.Join(l, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	if rs.Release("a") {
		t.Fatal("released a room with a leg in it")
	}
	_ = r.Leave("x")
	if err := r.Record(filepath.Join(t.TempDir(), "a.wav"), false); err != nil {
		t.Fatal(err)
	}
	if rs.Release("a") {
		t.Fatal("released a recording room")
	}
	_ = r.StopRecording()
	if !rs.Release("a") || rs.Release("a") {
		t.Fatal("an idle room was not released exactly once")
	}
	if _, ok := rs.Lookup("a"); ok {
		t.Fatal("a released room is still listed")
	}
	if err := r.Join(l, JoinOptions{}); err != ErrClosed {
		t.Fatalf("join into a released room: %v, want ErrClosed", err)
	}
	r2, _ := rs.Get("a")
	if r2 == r {
		t.Fatal("Get returned the released room")
	}
	if err := r2.Join(l, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Legs that send silence cost a jitter buffer pop each: their payloads are
// not decoded, they count as not talking, and the talker is still heard.
// A silent room sends its Opus listeners a packet every 400 ms (DTX) and
// its G.711 listeners silence encoded once.
func TestRoomSilentLegsNotDecoded(t *testing.T) {
	for _, c := range []audio.Codec{opc, pcmu} {
		t.Run(c.Name, func(t *testing.T) {
			r := newTestRoom(t, RoomConfig{Name: "quiet", Rate: 16000})
			s := &sim{t: t, room: r, start: time.Unix(9000, 0)}
			talker, q1, q2 := newMemLeg("talker", c), newMemLeg("q1", c), newMemLeg("q2", c)
			st, s1, s2 := newSender(t, talker, 700, 1), newSender(t, q1, 0, 2), newSender(t, q2, 0, 3)
			s1.on, s2.on = false, false
			if c == opc { // as a browser or baresip asked for usedtx=1 sends
				for _, sd := range []*sender{s1, s2} {
					enc, err := opus.NewEncoder(48000, opus.EncoderOptions{DTX: true})
					if err != nil {
						t.Fatal(err)
					}
					sd.enc = enc
				}
			}
			s.senders = []*sender{st, s1, s2}
			for _, l := range []Leg{talker, q1, q2} {
				if err := r.Join(l, JoinOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			s.run(2*time.Second, nil)
			s.waitSent(q1)
			checkHearsFreq(t, q1, []float64{700}, 0)
			r.mu.Lock()
			for _, m := range r.members {
				t.Logf("%s: decoded %d, skipped %d", m.id, m.in.decoded, m.in.skips)
				// An Opus encoder enters DTX after about 200 ms of silence.
				if m.id != "talker" && (m.in.decoded > 15 || m.in.skips < 80) {
					t.Errorf("silent leg %s: decoded %d, skipped %d", m.id, m.in.decoded, m.in.skips)
				}
			}
			r.mu.Unlock()
			// The talker is the only voice: its mix-minus is silence, sent
			// as such (DTX for Opus, G.711's silent frame), not encoded.
			heard := talker.received()[20:] // after the first ticks and the VAD's onset
			sent, loud := 0, 0
			for _, p := range heard {
				if len(p) > 0 {
					sent++
				}
				if c == pcmu && len(p) > 0 && bytes.Count(p, []byte{0xff}) != len(p) {
					loud++
				}
			}
			t.Logf("the lone talker got %d packets in %d ticks", sent, len(heard))
			if c == opc && sent > len(heard)/dtxEvery+1 {
				t.Errorf("the lone Opus talker got %d packets in %d ticks, want DTX (one per %d)", sent, len(heard), dtxEvery)
			}
			if c == pcmu && (sent != len(heard) || loud > 0) {
				t.Errorf("the lone G.711 talker got %d packets in %d ticks, %d not silent; want a silent frame every tick", sent, len(heard), loud)
			}

			// The talker stops: nobody says anything now.
			st.on = false
			n0 := len(q1.received())
			s.run(2*time.Second, nil)
			got := q1.received()[n0+20:] // after the talker's VAD hangover
			packets := 0
			for _, p := range got {
				if len(p) > 0 {
					packets++
				}
			}
			t.Logf("silent room: %d packets in %d ticks", packets, len(got))
			if c == opc && (packets == 0 || packets > len(got)/dtxEvery+1) {
				t.Fatalf("Opus listener in a silent room got %d packets in %d ticks, want one per %d", packets, len(got), dtxEvery)
			}
			if c == pcmu && packets != len(got) {
				t.Fatalf("G.711 listener got %d packets in %d ticks, want every tick", packets, len(got))
			}
		})
	}
}

// allocLeg is a leg that keeps its handler for the test to feed and drops
// what the room writes to it.
type allocLeg struct {
	discardLeg
	h audio.PacketHandler
}

func (l *allocLeg) SetPacketHandler(h audio.PacketHandler) { l.h = h }

// A room's steady state allocates nothing: packets pushed into the jitter
// buffers, decoded, resampled, mixed, encoded once per group and per
// talker, and written, for every codec.
func TestRoomTickAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector (make test runs this test again without it)")
	}
	r := newTestRoom(t, RoomConfig{Name: "allocs", Rate: 16000, Meter: NewMeter()}) // metered, as in voxgate
	codecs := []audio.Codec{pcmu, pcma, opc, {Name: "G722", Rate: 8000}, opc}
	var legs []*allocLeg
	var feeds []*feed
	for i, c := range codecs {
		l := &allocLeg{discardLeg: discardLeg{id: fmt.Sprint("leg", i), codec: c, done: make(chan struct{})}}
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
		legs = append(legs, l)
		feeds = append(feeds, makeFeed(t, c, 300+150*float64(i), i != 4)) // the last one is silent
	}
	now := time.Unix(1000, 0)
	var p audio.Packet
	step := func() {
		for i, l := range legs {
			f := feeds[i]
			p = audio.Packet{Seq: f.seq, Timestamp: f.ts, SSRC: 1, Payload: f.pkts[int(f.seq)%len(f.pkts)]}
			l.h.HandlePacket(&p)
			f.seq++
			f.ts += uint32(l.codec.Rate / 50)
		}
		r.Tick(now)
		now = now.Add(FrameDuration)
	}
	for range 100 { // warm up: buffers grow to their size
		step()
	}
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Fatalf("%v allocations per tick of a 5-leg room", n)
	}
}

// A room whose legs are all silent on DTX codecs dozes: it skips its ticks
// but one in dtxEvery, which sends each leg its DTX packet, and the RTP
// clock of every leg runs on. The first voiced packet wakes it: the others
// hear the talker as soon as in a room that never dozed.
func TestRoomDozesWhileSilent(t *testing.T) {
	awake := dozeRun(t, true)
	dozed := dozeRun(t, false)
	t.Logf("the talker heard %d ticks after it started in a dozing room, %d in one that never dozes", dozed, awake)
	if dozed < 0 || dozed > awake+1 {
		t.Fatalf("a dozing room woke late: %d ticks, %d awake", dozed, awake)
	}
}

func dozeRun(t *testing.T, noDoze bool) int {
	r := newTestRoom(t, RoomConfig{Name: "doze", Rate: 16000})
	r.noDoze = noDoze
	s := &sim{t: t, room: r, start: time.Unix(9000, 0)}
	var legs []*memLeg
	var senders []*sender
	for i := range 3 {
		l := newMemLeg(fmt.Sprint("q", i), opc)
		sd := newSender(t, l, 600+300*float64(i), int64(i))
		enc, err := opus.NewEncoder(48000, opus.EncoderOptions{DTX: true})
		if err != nil {
			t.Fatal(err)
		}
		sd.enc, sd.on = enc, false
		legs, senders = append(legs, l), append(senders, sd)
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s.senders = senders
	s.run(3*time.Second, nil)
	s.waitSent(legs...)
	r.mu.Lock()
	dozing, dozes := r.dozing.Load(), r.dozes
	r.mu.Unlock()
	if want := uint64(1); noDoze {
		want = 0
	} else if !dozing || dozes != want {
		t.Fatalf("a silent room: dozing %v, %d dozes", dozing, dozes)
	}
	n0 := len(legs[1].received())
	senders[0].on = true // q0 talks
	s.run(time.Second, nil)
	s.waitSent(legs...)
	if r.dozing.Load() {
		t.Fatal("the room still dozes while a leg talks")
	}
	got := legs[1].received()
	first := -1
	for i, p := range got[n0:] {
		if len(p) > 0 && !opus.Silent(p) {
			first = i
			break
		}
	}
	checkHearsFreq(t, legs[1], []float64{600}, 900)
	if gaps := len(got); gaps < s.ticks-1-s.pendingGap(legs[1]) {
		t.Fatalf("q1's RTP clock covers %d ticks of %d", gaps, s.ticks)
	}
	return first
}

// gapLeg records what a queued leg is asked to write: payload sizes and
// the RTP clock each write covers; it blocks until released.
type gapLeg struct {
	*memLeg
	release chan struct{}
	total   atomic.Uint64 // RTP clock units written, gaps included
}

func (l *gapLeg) WritePayload(p []byte, n uint32) error {
	<-l.release
	l.total.Add(uint64(n))
	return nil
}

func (l *gapLeg) QueueWrites() bool { return true }

// A queued leg that falls behind loses its oldest frames, not their time:
// the RTP clock covers every frame the room sent it.
func TestEgressKeepsClockOfDroppedFrames(t *testing.T) {
	l := &gapLeg{memLeg: newMemLeg("slow", pcmu), release: make(chan struct{})}
	e := newEgress(l)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.run(ctx); close(done) }()
	for range 10 {
		e.push([]byte{1, 2, 3}, 160)
	}
	close(l.release)
	deadline := time.Now().Add(2 * time.Second)
	for l.total.Load() < 10*160 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if got := l.total.Load(); got != 10*160 {
		sent, dropped := e.counts()
		t.Fatalf("RTP clock advanced %d for 10 frames of 160 (sent %d, dropped %d)", got, sent, dropped)
	}
}

// cnLeg is a G.711 leg whose far end took comfort noise (RFC 3389).
type cnLeg struct{ *memLeg }

func (cnLeg) ComfortNoise() bool { return true }

// G.711 legs that took comfort noise are sent gaps while they hear
// silence, with the codec's silent frame (which the SIP leg sends as a
// comfort noise packet) every 400 ms; a room of them dozes. Legs without
// it get a silent frame every 20 ms, and their room never dozes.
func TestRoomComfortNoiseLegs(t *testing.T) {
	for _, cn := range []bool{true, false} {
		t.Run(fmt.Sprint("cn=", cn), func(t *testing.T) {
			r := newTestRoom(t, RoomConfig{Name: "cn", Rate: 8000})
			s := &sim{t: t, room: r, start: time.Unix(9000, 0)}
			var legs []*memLeg
			for i := range 2 {
				l := newMemLeg(fmt.Sprint("p", i), pcmu)
				sd := newSender(t, l, 500, int64(i))
				sd.on = false // G.711 silence, 50 packets a second
				var leg Leg = l
				if cn {
					leg = cnLeg{l}
				}
				if err := r.Join(leg, JoinOptions{}); err != nil {
					t.Fatal(err)
				}
				legs, s.senders = append(legs, l), append(s.senders, sd)
			}
			s.run(4*time.Second, nil)
			s.waitSent(legs...)
			frames := 0
			got := legs[1].received()
			for _, p := range got {
				if len(p) > 0 {
					frames++
				}
			}
			ticks := len(got) + s.pendingGap(legs[1]) // a gap is written with the next frame
			if cn {
				if !r.dozing.Load() {
					t.Error("a room of silent comfort-noise legs does not doze")
				}
				// 4 s: some 10 frames, one per 400 ms (dtxEvery ticks).
				if frames < 8 || frames > 12 || ticks < s.ticks-1 {
					t.Errorf("a comfort-noise leg got %d frames in %d ticks of RTP clock, want one per %d ticks", frames, ticks, dtxEvery)
				}
				return
			}
			if r.dozing.Load() {
				t.Error("a room of G.711 legs without comfort noise dozes")
			}
			if frames < 190 {
				t.Errorf("a G.711 leg without comfort noise got %d frames in 4 s, want one per tick", frames)
			}
		})
	}
}

// flipCNLeg takes comfort noise until told otherwise (a re-INVITE that
// dropped it).
type flipCNLeg struct {
	*memLeg
	cn atomic.Bool
}

func (l *flipCNLeg) ComfortNoise() bool { return l.cn.Load() }

// A leg whose far end drops comfort noise mid-call gets a silent frame
// every tick again within 400 ms, and its room stops dozing.
func TestRoomComfortNoiseDropped(t *testing.T) {
	r := newTestRoom(t, RoomConfig{Name: "cn-drop", Rate: 8000})
	s := &sim{t: t, room: r, start: time.Unix(9000, 0)}
	var legs []*memLeg
	var flip *flipCNLeg
	for i := range 2 {
		l := newMemLeg(fmt.Sprint("p", i), pcmu)
		sd := newSender(t, l, 500, int64(i))
		sd.on = false
		f := &flipCNLeg{memLeg: l}
		f.cn.Store(true)
		if i == 1 {
			flip = f
		}
		if err := r.Join(f, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
		legs, s.senders = append(legs, l), append(s.senders, sd)
	}
	s.run(2*time.Second, nil)
	s.waitSent(legs...)
	if !r.dozing.Load() {
		t.Fatal("a room of silent comfort-noise legs does not doze")
	}
	flip.cn.Store(false)
	s.run(500*time.Millisecond, nil) // the change is seen within dtxEvery ticks
	n := len(legs[1].received())
	s.run(time.Second, nil)
	s.waitSent(legs...)
	frames := 0
	for _, p := range legs[1].received()[n:] {
		if len(p) > 0 {
			frames++
		}
	}
	if r.dozing.Load() {
		t.Error("the room still dozes with a leg that takes no comfort noise any more")
	}
	if frames < 49 {
		t.Errorf("after dropping comfort noise the leg got %d frames in 50 ticks, want one per tick", frames)
	}
}

// On a real clock a dozing room is not even ticked between its DTX
// packets (its worker skips it): a room of two silent Opus legs runs
// about 2.5 ticks a second, not 50, while its legs' RTP time still covers
// every 20 ms. A voiced packet has it ticked again at the next tick.
func TestRoomDozingSkipsClockTicks(t *testing.T) {
	r, err := NewRoom(RoomConfig{Name: "doze-clock", Rate: 16000, Clock: NewClock(1), Logger: quiet(), JoinTone: NoTone, LeaveTone: NoTone})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a, b := newMemLeg("a", opc), newMemLeg("b", opc)
	for _, l := range []*memLeg{a, b} {
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ticked := func() uint64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.ticked
	}
	for deadline := time.Now().Add(3 * time.Second); !r.dozing.Load(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a room of two silent Opus legs did not doze")
		}
	}
	time.Sleep(100 * time.Millisecond)
	n0, m0, t0 := ticked(), len(a.received()), time.Now()
	time.Sleep(2 * time.Second)
	n, m, wall := ticked()-n0, len(a.received())-m0, time.Since(t0)
	frames := int(wall / FrameDuration)
	t.Logf("dozing for %v: %d ticks, the leg's media time %d frames (of %d)", wall.Round(time.Millisecond), n, m, frames)
	if n > 8 {
		t.Fatalf("a dozing room ticked %d times in 2 s, want about 5", n)
	}
	if m < frames-25 || m > frames+25 {
		t.Fatalf("the leg's media time covers %d frames of %d: the RTP clock did not run on", m, frames)
	}
	// A voice stirs it.
	enc := testEncoder(t, opc)
	pcm := make([]int16, enc.Rate()/50)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/float64(enc.Rate())))
	}
	n0 = ticked()
	for i := range 10 {
		p, err := enc.Encode(nil, pcm)
		if err != nil {
			t.Fatal(err)
		}
		a.push(audio.Packet{Seq: uint16(100 + i), Timestamp: uint32(960 * (100 + i)), SSRC: 7, Payload: p})
	}
	time.Sleep(200 * time.Millisecond)
	if n := ticked() - n0; n < 5 || r.dozing.Load() {
		t.Fatalf("after a voiced packet: %d ticks in 200 ms (want about 10), dozing %v", n, r.dozing.Load())
	}
}
