package switchboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// fakeLeg is a call with no network: the test keys digits into it and
// reads what the switchboard did to it.
type fakeLeg struct {
	id, caller, dialed string
	codec              audio.Codec
	done               chan struct{}
	endOnce            sync.Once

	mu       sync.Mutex
	answered bool
	ringing  bool
	status   int    // rejected with
	ended    string // "hangup", "rejected", "far end"
	onDTMF   func(rune)
	sent     string // digits sent toward it
	handler  audio.PacketHandler
	frames   int
}

func newFakeLeg(id, caller, dialed string) *fakeLeg {
	return &fakeLeg{id: id, caller: caller, dialed: dialed, codec: audio.Codec{Name: "PCMU", Rate: 8000}, done: make(chan struct{})}
}

func (l *fakeLeg) ID() string            { return l.id }
func (l *fakeLeg) Codec() audio.Codec    { return l.codec }
func (l *fakeLeg) Done() <-chan struct{} { return l.done }
func (l *fakeLeg) Caller() string        { return l.caller }
func (l *fakeLeg) Dialed() string        { return l.dialed }

func (l *fakeLeg) SetPacketHandler(h audio.PacketHandler) {
	l.mu.Lock()
	l.handler = h
	l.mu.Unlock()
}

func (l *fakeLeg) WritePayload([]byte, uint32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames++
	return nil
}

func (l *fakeLeg) Ringing() error {
	l.mu.Lock()
	l.ringing = true
	l.mu.Unlock()
	return nil
}

func (l *fakeLeg) Answer(context.Context) error {
	select {
	case <-l.done:
		return errors.New("call ended")
	default:
	}
	l.mu.Lock()
	l.answered = true
	l.mu.Unlock()
	return nil
}

func (l *fakeLeg) Reject(status int, _ string) {
	l.mu.Lock()
	l.status = status
	l.mu.Unlock()
	l.end("rejected")
}

func (l *fakeLeg) Hangup(context.Context) { l.end("hangup") }

// reasonedLeg is a fake leg told why voxgate hangs it up (as a page is).
type reasonedLeg struct{ *fakeLeg }

func (l reasonedLeg) HangupBecause(_ context.Context, reason string) { l.end(reason) }

// hangUp is the far end hanging up.
func (l *fakeLeg) hangUp() { l.end("far end") }

func (l *fakeLeg) end(why string) {
	l.endOnce.Do(func() {
		l.mu.Lock()
		l.ended = why
		l.mu.Unlock()
		close(l.done)
	})
}

func (l *fakeLeg) OnDTMF(f func(rune)) {
	l.mu.Lock()
	l.onDTMF = f
	l.mu.Unlock()
}

func (l *fakeLeg) SendDTMF(d string) error {
	l.mu.Lock()
	l.sent += d
	l.mu.Unlock()
	return nil
}

// key types digits, gap apart; a digit with nobody listening is lost, as
// on a real phone.
func (l *fakeLeg) key(digits string, gap time.Duration) {
	for _, d := range digits {
		l.mu.Lock()
		f := l.onDTMF
		l.mu.Unlock()
		if f != nil {
			f(d)
		}
		time.Sleep(gap)
	}
}

// waitKeys waits until the switchboard listens for digits.
func (l *fakeLeg) waitKeys(t *testing.T) {
	t.Helper()
	eventually(t, "the call listens for digits", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.onDTMF != nil
	})
}

func (l *fakeLeg) state() (answered bool, status int, ended string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answered, l.status, l.ended
}

// fakePage is a browser-like leg: it shows its room.
type fakePage struct {
	*fakeLeg
	mu     sync.Mutex
	names  []string
	people []Participant
	events []string
	notes  []Participant // the participant of each event
}

func (p *fakePage) Participants(room string, people []Participant) {
	p.mu.Lock()
	p.names = p.names[:0]
	p.people = append([]Participant(nil), people...)
	for _, q := range people {
		p.names = append(p.names, q.Name)
	}
	p.mu.Unlock()
}

func (p *fakePage) Notify(typ, room string, q Participant) {
	p.mu.Lock()
	p.events = append(p.events, typ+" "+q.Name)
	p.notes = append(p.notes, q)
	p.mu.Unlock()
}

func (p *fakePage) participants() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.names...)
}

// fakeDevice answers after delay with a new leg, or fails with err; it
// gives up when its ctx ends (cancelled: another device answered).
type fakeDevice struct {
	delay  time.Duration
	err    error
	late   bool // answers even after being cancelled (a race on the wire)
	leg    *fakeLeg
	called chan struct{}
}

type fakeDialer struct {
	devices map[string][]*fakeDevice
	trunks  map[string]*fakeDevice
}

func (d *fakeDialer) Devices(user string) []Device {
	var out []Device
	for _, dev := range d.devices[user] {
		out = append(out, dev.ring)
	}
	return out
}

func (d *fakeDialer) Trunks() []string {
	var out []string
	for name := range d.trunks {
		out = append(out, name)
	}
	return out
}

func (d *fakeDialer) DialTrunk(ctx context.Context, trunk, number, callerID string) (Leg, error) {
	dev, ok := d.trunks[trunk]
	if !ok {
		return nil, ErrUnknownTrunk
	}
	return dev.ring(ctx, callerID)
}

func (dev *fakeDevice) ring(ctx context.Context, from string) (Leg, error) {
	if dev.called != nil {
		close(dev.called)
	}
	t := time.NewTimer(dev.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		if !dev.late {
			return nil, ctx.Err()
		}
	}
	if dev.err != nil {
		return nil, dev.err
	}
	dev.leg = newFakeLeg(fmt.Sprintf("out-%p", dev), "", from)
	dev.leg.answered = true
	return dev.leg, nil
}

// rejection is a far end's final status, as sip.Rejection carries it.
type rejection struct {
	status int
	reason string
}

func (r rejection) Error() string            { return r.reason }
func (r rejection) SIPStatus() (int, string) { return r.status, r.reason }

// logBuffer collects a switchboard's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testBoard is a switchboard on plan with fake dialers and quick timeouts.
func testBoard(t *testing.T, plan string, dialers ...Dialer) (*Switchboard, *logBuffer) {
	t.Helper()
	p, err := dialplan.Parse("plan.yaml", []byte(plan), dialplan.Options{Trunks: []string{"carrier"}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sb := New(Config{Plan: p, Dialers: dialers, Logger: log,
		Rooms:    bridge.RoomConfig{Rate: 8000, JoinTone: bridge.NoTone, LeaveTone: bridge.NoTone},
		Settings: Settings{DigitTimeout: 700 * time.Millisecond, WaitToneEvery: 50 * time.Millisecond}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sb.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return sb, logs
}

// call hands leg to the switchboard as origin and returns a channel closed
// when Handle returns.
func call(sb *Switchboard, leg Leg, origin string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		sb.Handle(context.Background(), leg, origin)
	}()
	return done
}

// eventually waits up to 3 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inRoom reports whether leg id is in the named room.
func inRoom(sb *Switchboard, room, id string) bool {
	info, err := sb.Room(room)
	if err != nil {
		return false
	}
	for _, l := range info.Legs {
		if l.ID == id {
			return true
		}
	}
	return false
}

// waitEnded waits for Handle to return.
func waitEnded(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the call's handling did not end")
	}
}

// goroutines counts the goroutines now, after a moment to settle.
func goroutines() int {
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	return runtime.NumGoroutine()
}

// ctxClose closes sb with a 5 s limit.
func ctxClose(t *testing.T, sb *Switchboard) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sb.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
