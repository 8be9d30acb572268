package switchboard

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
	"github.com/voxgate/voxgate/store"
)

// recordBoard is a switchboard writing its history to a real SQLite store.
func recordBoard(t *testing.T, rec CallRecords, dialers ...Dialer) *Switchboard {
	return recordBoardQueue(t, rec, 0, dialers...)
}

func recordBoardQueue(t *testing.T, rec CallRecords, queue int, dialers ...Dialer) *Switchboard {
	return recordBoardWith(t, rec, func(c *Config) { c.Settings.HistoryQueue = queue }, dialers...)
}

func recordBoardWith(t *testing.T, rec CallRecords, mutate func(*Config), dialers ...Dialer) *Switchboard {
	t.Helper()
	p, err := dialplan.Parse("plan.yaml", []byte(testPlan), dialplan.Options{Trunks: []string{"carrier"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Plan: p, Dialers: dialers, Logger: slog.New(slog.DiscardHandler), Records: rec, PlanFile: "plan.yaml",
		Rooms:    bridge.RoomConfig{Rate: 8000, JoinTone: bridge.NoTone, LeaveTone: bridge.NoTone},
		Settings: Settings{DigitTimeout: 700 * time.Millisecond, WaitToneEvery: 50 * time.Millisecond}}
	if mutate != nil {
		mutate(&cfg)
	}
	return New(cfg)
}

func openStore(t *testing.T) *store.SQLite {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "voxgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// recordOf finds the one record of the call with leg id.
func recordOf(t *testing.T, st *store.SQLite, legID string) api.CallRecord {
	t.Helper()
	calls, _, err := st.Calls(context.Background(), api.CallQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if c.CallID == legID {
			r, err := st.Call(context.Background(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatalf("no record of call %s among %d", legID, len(calls))
	return api.CallRecord{}
}

// Every kind of call leaves a complete record: rule file:line, answer and
// end times, the cause, the legs with codec and MOS, and room history.
func TestCallRecords(t *testing.T) {
	st := openStore(t)
	bob := &fakeDevice{delay: 20 * time.Millisecond}
	busy := &fakeDevice{err: rejection{486, "Busy Here"}}
	sb := recordBoard(t, st, &fakeDialer{devices: map[string][]*fakeDevice{"bob": {bob}, "carol": {busy}}})

	// A dial answered by bob; the caller hangs up. The caller's leg lost
	// 2% of its packets.
	dial := &reportingLeg{fakeLeg: newFakeLeg("dial-1", "alice", "bob"),
		rr: audio.ReceiveReport{Received: 980, Expected: 1000, Lost: 20, Jitter: 5 * time.Millisecond}}
	done := call(sb, dial, "user")
	eventually(t, "bob answers", func() bool { a, _, _ := dial.state(); return a })
	dial.hangUp()
	waitEnded(t, done)

	// carol is busy.
	toCarol := newFakeLeg("dial-2", "alice", "carol")
	waitEnded(t, call(sb, toCarol, "user"))

	// A room: joined, then kicked through the API.
	room := newFakeLeg("room-1", "alice", "7002")
	done = call(sb, room, "web")
	eventually(t, "in the room", func() bool { return inRoom(sb, "bridge", "room-1") })
	if err := sb.Kick("bridge", "room-1"); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, done)

	// No rule for this number.
	lost := newFakeLeg("none-1", "alice", "0000")
	waitEnded(t, call(sb, lost, "user"))

	ctxClose(t, sb) // writes what the journal holds

	r := recordOf(t, st, "dial-1")
	if r.Action != "dial" || r.User != "bob" || r.Caller != "alice" || r.Callee != "bob" || r.Origin != "user" ||
		r.Context != "internal" || !strings.HasPrefix(r.Rule, "plan.yaml:") || r.Status != api.CallEnded {
		t.Errorf("dial record: %+v", r)
	}
	if r.Answered == nil || r.Ended == nil || r.Answered.Before(r.Started) || r.Ended.Before(*r.Answered) {
		t.Errorf("dial times: started %v answered %v ended %v", r.Started, r.Answered, r.Ended)
	}
	if r.Cause == nil || r.Cause.By != "caller" {
		t.Errorf("dial cause %+v, want caller", r.Cause)
	}
	if len(r.Legs) != 2 || r.Legs[0].Role != "caller" || r.Legs[1].Role != "callee" || r.Legs[0].Codec != "PCMU" || r.Legs[1].Rate != 8000 {
		t.Fatalf("dial legs: %+v", r.Legs)
	}
	q := r.Legs[0].Quality
	// Ie_eff = 95*2/27.1 = 7.01; delay 60 + 2*5 ms: Id = 1.68; R = 84.51, MOS 4.18.
	if q.PacketsReceived != 980 || q.Lost != 20 || q.LossPercent != 2 || q.JitterMS != 5 || q.MOS != 4.18 {
		t.Errorf("caller's quality %+v, want 2%% loss, 5 ms jitter, MOS 4.18", q)
	}
	if q := r.Legs[1].Quality; q.MOS != 0 || q.PacketsReceived != 0 {
		t.Errorf("callee without media: %+v, want MOS 0 (unknown)", q)
	}
	if line := strings.TrimPrefix(r.Rule, "plan.yaml:"); line != "18" {
		t.Errorf("rule %q, want plan.yaml:18 (the pattern rule)", r.Rule)
	}

	r = recordOf(t, st, "dial-2")
	if r.Answered != nil || r.Cause == nil || r.Cause.By != "callee" || r.Cause.Status != 486 {
		t.Errorf("busy record: answered %v cause %+v", r.Answered, r.Cause)
	}

	r = recordOf(t, st, "room-1")
	if r.Action != "room" || r.Room != "bridge" || r.Cause == nil || r.Cause.By != "api" || r.Cause.Reason != "kicked" {
		t.Errorf("room record: %+v cause %+v", r, r.Cause)
	}
	hist, err := st.RoomHistory(context.Background(), "bridge", time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].Leg != "room-1" || hist[0].CallID != r.ID || hist[0].Name != "alice" || hist[0].Left == nil {
		t.Errorf("room history: %+v", hist)
	}

	r = recordOf(t, st, "none-1")
	if r.Cause == nil || r.Cause.By != "dialplan" || r.Cause.Status != 404 || r.Rule != "" {
		t.Errorf("unrouted record: %+v cause %+v", r, r.Cause)
	}
}

// A room recorded into record_dir is in the recordings' index, with its
// start, end and the file's size once the last participant left.
func TestRecordingsIndexed(t *testing.T) {
	st := openStore(t)
	dir := t.TempDir()
	sb := recordBoardWith(t, st, func(c *Config) { c.RecordDir = dir })
	a, b := newFakeLeg("rec-a", "alice", "7002"), newFakeLeg("rec-b", "bob", "7002")
	da, db := call(sb, a, "user"), call(sb, b, "user")
	eventually(t, "both in the room", func() bool { return inRoom(sb, "bridge", "rec-a") && inRoom(sb, "bridge", "rec-b") })
	a.hangUp()
	b.hangUp()
	waitEnded(t, da)
	waitEnded(t, db)
	ctxClose(t, sb)
	recs, err := st.Recordings(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d recordings indexed, want 1", len(recs))
	}
	r := recs[0]
	fi, err := os.Stat(r.Path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Room != "bridge" || filepath.Dir(r.Path) != dir || r.File != filepath.Base(r.Path) || r.End == nil || r.End.Before(r.Start) ||
		r.Size != fi.Size() || r.Size < 44 { // at least the WAV header
		t.Fatalf("index entry %+v (file %d bytes)", r, fi.Size())
	}
	hist, _ := st.RoomHistory(context.Background(), "bridge", time.Time{}, 10)
	if len(hist) != 2 {
		t.Fatalf("room history %+v, want two stays", hist)
	}
}

// reportingLeg is a leg that counts what it receives, as the SIP and web
// legs do.
type reportingLeg struct {
	*fakeLeg
	rr audio.ReceiveReport
}

func (l *reportingLeg) ReceiveReport() audio.ReceiveReport { return l.rr }

// stuckRecords never returns from a write: the store hangs.
type stuckRecords struct{ release chan struct{} }

func (s stuckRecords) wait() error                                       { <-s.release; return nil }
func (s stuckRecords) CallStarted(context.Context, api.CallRecord) error { return s.wait() }
func (s stuckRecords) CallAnswered(context.Context, string, time.Time) error {
	return s.wait()
}
func (s stuckRecords) CallEnded(context.Context, string, time.Time, api.HangupCause, []api.CallLeg) error {
	return s.wait()
}
func (s stuckRecords) LegJoined(context.Context, api.RoomEvent) error { return s.wait() }
func (s stuckRecords) LegLeft(context.Context, string, string, time.Time) error {
	return s.wait()
}
func (s stuckRecords) RecordingStarted(context.Context, api.Recording) error { return s.wait() }
func (s stuckRecords) RecordingEnded(context.Context, string, time.Time, int64) error {
	return s.wait()
}

// A store that hangs never holds up a call: calls are routed and end.
func TestCallRecordsNeverBlockCalls(t *testing.T) {
	rec := stuckRecords{release: make(chan struct{})}
	const queue = 8
	sb := recordBoardQueue(t, rec, queue)
	for i := range queue { // 3 writes each: more than the queue holds
		c := newFakeLeg(fmt.Sprintf("echo-%d", i), "alice", "9196")
		done := call(sb, c, "user")
		eventually(t, "answered", func() bool { a, _, _ := c.state(); return a })
		c.hangUp()
		waitEnded(t, done)
	}
	if sb.journal.dropped.Load() == 0 {
		t.Error("no write was dropped although the store hung")
	}
	close(rec.release)
	ctxClose(t, sb)
}

// The E-model's MOS against values worked by hand from G.107 and G.113.
func TestEstimateMOS(t *testing.T) {
	tests := []struct {
		name  string
		codec string
		loss  float64
		delay time.Duration
		want  float64
	}{
		// R = 93.2: 1 + 3.262 + 93.2*33.2*6.8*7e-6 = 4.409
		{"G.711 ideal", "PCMU", 0, 0, 4.41},
		// Id = 0.024*150 = 3.6, R = 89.6
		{"G.711 150 ms", "PCMA", 0, 150 * time.Millisecond, 4.33},
		// Ie_eff = 95*1/(1+25.1) = 3.64, R = 89.56
		{"G.711 1% loss", "PCMU", 1, 0, 4.33},
		// Ie_eff = 95*5/30.1 = 15.78, R = 77.42
		{"G.711 5% loss", "PCMU", 5, 0, 3.92},
		// Id = 0.024*300 + 0.11*122.7 = 20.70, R = 72.50
		{"G.711 300 ms", "PCMU", 0, 300 * time.Millisecond, 3.71},
		// Ie_eff = 95*20/45.1 = 42.13, R = 51.07
		{"G.711 20% loss", "PCMU", 20, 0, 2.63},
		// Opus, Bpl 30: Ie_eff = 95*5/35 = 13.57, R = 79.63
		{"Opus 5% loss", "opus", 5, 0, 4.01},
		{"unknown codec as G.711", "GSM", 1, 0, 4.33},
		{"floor", "PCMU", 100, 2 * time.Second, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := EstimateMOS(tc.codec, tc.loss, tc.delay)
			if math.Abs(got-tc.want) > 0.01 {
				t.Errorf("EstimateMOS(%s, %v%%, %v) = %.3f, want %.2f", tc.codec, tc.loss, tc.delay, got, tc.want)
			}
		})
	}
	// Known points of the R to MOS curve (G.107 Figure B.1).
	for r, want := range map[float64]float64{-5: 1, 0: 1, 50: 2.58, 60: 3.1, 70: 3.6, 80: 4.02, 90: 4.34, 100: 4.5, 120: 4.5} {
		if got := MOSFromR(r); math.Abs(got-want) > 0.01 {
			t.Errorf("MOSFromR(%v) = %.3f, want %.2f", r, got, want)
		}
	}
}

// selfEndingLeg is a leg that is hanging up on its own (a SIP session
// timer that expired): its context ends before its Done closes.
type selfEndingLeg struct{ *fakeLeg }

func (selfEndingLeg) EndedItself() (string, bool) {
	return "session timer expired: no refresh from the peer", true
}

// A leg that ends itself has that as its record's cause, even when the
// switchboard sees the call's context end before the leg is done (CI once
// recorded "voxgate stopping or the call's context ended" for a session
// timer's hang-up).
func TestSelfEndedCauseWinsOverContext(t *testing.T) {
	st := openStore(t)
	sb := recordBoard(t, st)
	leg := selfEndingLeg{newFakeLeg("room-9", "alice", "7002")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sb.Handle(ctx, leg, "user")
	}()
	eventually(t, "in the room", func() bool { return inRoom(sb, "bridge", "room-9") })
	cancel()
	waitEnded(t, done)
	ctxClose(t, sb)
	r := recordOf(t, st, "room-9")
	if r.Cause == nil || r.Cause.By != "system" || !strings.Contains(r.Cause.Reason, "session timer expired") {
		t.Fatalf("cause %+v, want the leg's own: session timer expired", r.Cause)
	}
}
