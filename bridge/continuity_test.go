package bridge

import (
	"math"
	"math/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/audio/opus"
)

// A leg that starts and stops talking moves between its own encoder and
// its group's shared one. Its far end must hear one continuous stream:
// here B talks in bursts while A speaks, and what B receives (always A,
// whichever encoder made it) is compared, frame by frame, with A's audio
// encoded by one encoder that never switched. Without the hand-over of the
// encoder's state, the frames after each switch are damaged.
func TestEncoderSwitchContinuity(t *testing.T) {
	with, _ := switchSNR(t, false, false)
	without, _ := switchSNR(t, true, false)
	t.Logf("worst SNR in the 100 ms after a switch: %.1f dB with the state hand-over, %.1f dB without", with, without)
	if with < 30 {
		t.Fatalf("a switch of encoder is heard: %.1f dB SNR against a continuous encoder", with)
	}
	// With another listener on the shared encoder, B's own encoder first
	// converges on the shared mix, then B moves over.
	// Waveforms then differ (the shared encoder's history is not B's), so
	// what is measured is the level of each frame against the reference's.
	_, withJump := switchSNR(t, false, true)
	_, withoutJump := switchSNR(t, true, true)
	t.Logf("with a second listener: worst level jump %.1f dB with convergence, %.1f dB without", withJump, withoutJump)
	if withJump > 3 {
		t.Fatalf("a switch of encoder is heard: a %.1f dB level jump", withJump)
	}
}

// switchSNR runs the room and returns the worst per-frame SNR (dB) of B's
// stream against the continuous reference in the frames after a switch.
func switchSNR(t *testing.T, noCopy, listener bool) (worst, jump float64) {
	t.Helper()
	w, err := audio.ReadWAVFile(filepath.Join("..", "testdata", "speech", "speech16k.wav"))
	if err != nil {
		t.Fatal(err)
	}
	speech := append([]int16(nil), w.Samples[:16000*8]...)
	rng := rand.New(rand.NewSource(1))
	for i := range speech { // a microphone's noise floor (-55 dBFS): the room never falls silent
		speech[i] += int16(rng.NormFloat64() * 58)
	}
	r := newTestRoom(t, RoomConfig{Name: "switch", Rate: 16000})
	r.noStateCopy = noCopy
	s := &sim{t: t, room: r, start: time.Unix(9000, 0)}
	a, b := newMemLeg("a", opc), newMemLeg("b", opc)
	sa, sb := newSender(t, a, 0, 1), newSender(t, b, 1000, 2)
	enc16, err := opus.NewEncoder(16000, opus.EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa.enc, sa.pcm, sa.speech, sa.logSent = enc16, make([]int16, 320), speech, true
	s.senders = []*sender{sa, sb}
	legs := []Leg{a, b}
	if listener { // C never talks: the shared encoder stays in use
		c := newMemLeg("c", opc)
		sc := newSender(t, c, 0, 3)
		sc.on = false
		s.senders = append(s.senders, sc)
		legs = append(legs, c)
	}
	for _, l := range legs {
		if err := r.Join(l, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var switches []int // B's tick numbers where its encoder path changed
	s.run(7*time.Second, func(tick int) {
		talk := (tick/40)%2 == 1 // B talks 800 ms, then is quiet 800 ms
		if talk != sb.on {
			sb.on = talk
		}
		r.mu.Lock()
		for _, m := range r.members {
			if m.id == "b" && tick > 0 {
				switches = append(switches, boolInt(m.onShared))
			}
		}
		r.mu.Unlock()
	})
	s.waitSent(b)

	// The reference: A's packets decoded as the room decodes them, then
	// encoded by one encoder (the room's kind) that never switched.
	dec, _ := opus.NewDecoder(16000)
	ref, _ := newEncoder(opc, 16000)
	var refPkts [][]byte
	pcm := make([]int16, 0, 960)
	for _, p := range sa.sentLog {
		pcm, _ = dec.Decode(pcm[:0], p)
		out, _ := ref.encode(nil, pcm)
		refPkts = append(refPkts, out)
	}
	got := b.received()
	// Align: the jitter buffer delays A's frames by a few ticks.
	best, lag := -1, 0
	for d := 0; d < 20; d++ {
		same := 0
		for i := d; i < len(got) && i-d < len(refPkts); i++ {
			if string(got[i]) == string(refPkts[i-d]) {
				same++
			}
		}
		if same > best {
			best, lag = same, d
		}
	}
	decGot, _ := opus.NewDecoder(16000)
	decRef, _ := opus.NewDecoder(16000)
	worst = math.Inf(1)
	var x, y []int16
	for i := lag; i < len(got) && i-lag < len(refPkts) && i < len(switches); i++ {
		x, _ = decGot.Decode(x[:0], got[i])
		y, _ = decRef.Decode(y[:0], refPkts[i-lag])
		near := false // within 5 ticks after B's path changed
		for j := max(1, i-5); j <= i; j++ {
			if switches[j] != switches[j-1] {
				near = true
			}
		}
		if !near || i < lag+50 {
			continue
		}
		var sig, noise float64
		for k := range min(len(x), len(y)) {
			sig += float64(y[k]) * float64(y[k])
			d := float64(x[k]) - float64(y[k])
			noise += d * d
		}
		if sig < 1e3*float64(len(y)) { // a quiet frame says little
			continue
		}
		snr := 10 * math.Log10(sig/math.Max(noise, 1e-9))
		worst = min(worst, snr)
		var gx float64
		for _, v := range x {
			gx += float64(v) * float64(v)
		}
		jump = max(jump, math.Abs(10*math.Log10((gx+1)/(sig+1))))
	}
	t.Logf("noCopy=%v listener=%v: lag %d ticks, %d of %d payloads identical to the reference; after switches: worst SNR %.1f dB, worst level jump %.1f dB",
		noCopy, listener, lag, best, len(got), worst, jump)
	return worst, jump
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
