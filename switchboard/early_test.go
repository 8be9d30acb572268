package switchboard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/internal/config"
)

// earlyCaller is a caller leg that can hear audio before the answer: a
// page (ownRingback false) or a phone.
type earlyCaller struct {
	*fakeLeg
	ownRingback bool
	mu          sync.Mutex
	progress    int // Progress calls
	framesAt    int // frames written when it was answered
}

func (c *earlyCaller) Progress(context.Context) error {
	c.mu.Lock()
	c.progress++
	c.mu.Unlock()
	return nil
}

func (c *earlyCaller) PlaysOwnRingback() bool { return c.ownRingback }

func (c *earlyCaller) Answer(ctx context.Context) error {
	c.fakeLeg.mu.Lock()
	n := c.fakeLeg.frames
	c.fakeLeg.mu.Unlock()
	c.mu.Lock()
	c.framesAt = n
	c.mu.Unlock()
	return c.fakeLeg.Answer(ctx)
}

func (c *earlyCaller) counts() (progress, framesAtAnswer int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.progress, c.framesAt
}

// earlyDevice rings: after earlyAfter it sends early media (a leg, through
// the dial's trace), after answerAfter it answers (or fails with err).
type earlyDevice struct {
	earlyAfter, answerAfter time.Duration
	// answerWhen, if not nil, holds the answer (after answerAfter) until
	// the test closes it: a test that must see something happen before
	// the answer does not race a timer.
	answerWhen chan struct{}
	err        error
	early      *fakeLeg
	leg        *fakeLeg
}

type earlyDialer struct{ devices []*earlyDevice }

func (d *earlyDialer) Devices(string) []Device {
	var out []Device
	for _, dev := range d.devices {
		out = append(out, dev.ring)
	}
	return out
}

func (d *earlyDialer) Trunks() []string { return nil }

func (d *earlyDialer) DialTrunk(context.Context, string, string, string) (Leg, error) {
	return nil, ErrUnknownTrunk
}

func (dev *earlyDevice) ring(ctx context.Context, from string) (Leg, error) {
	sleep := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if dev.early != nil {
		if !sleep(dev.earlyAfter) {
			dev.early.end("cancelled")
			return nil, ctx.Err()
		}
		if tr := ContextDialTrace(ctx); tr != nil {
			tr.EarlyMedia(dev.early)
		}
	}
	if !sleep(dev.answerAfter) {
		if dev.early != nil {
			dev.early.end("cancelled")
		}
		return nil, ctx.Err()
	}
	if dev.answerWhen != nil {
		select {
		case <-dev.answerWhen:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if dev.err != nil {
		if dev.early != nil {
			dev.early.end("failed")
		}
		return nil, dev.err
	}
	dev.leg = newFakeLeg(fmt.Sprintf("answered-%p", dev), "", from)
	dev.leg.answered = true
	return dev.leg, nil
}

func (l *fakeLeg) hasHandler() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.handler != nil
}

// A page hears voxgate's ringback while the far end rings (frames written
// to it before the answer); a phone, by default, gets only Ringing and no
// audio; with phones: generate it gets the ringback too.
func TestRingbackWhileRinging(t *testing.T) {
	for _, c := range []struct {
		name        string
		ownRingback bool
		phones      string
		want        bool
	}{
		{"page", false, "", true},
		{"phone", true, "", false},
		{"phone, generate", true, "generate", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dl := &earlyDialer{devices: []*earlyDevice{{answerAfter: 700 * time.Millisecond}}} // no early media
			sb, _ := testBoard(t, testPlan, dl)
			sb.ringback = RingbackConfig{Phones: c.phones}
			if err := sb.ringback.Validate(); err != nil {
				t.Fatal(err)
			}
			caller := &earlyCaller{fakeLeg: newFakeLeg("c1", "alice", "bob"), ownRingback: c.ownRingback}
			done := call(sb, caller, "user")
			eventually(t, "the caller is answered", func() bool { a, _, _ := caller.state(); return a })
			progress, frames := caller.counts()
			if got := progress > 0 && frames >= 10; got != c.want {
				t.Errorf("before the answer: Progress %d times, %d frames written; want ringback %v", progress, frames, c.want)
			}
			if !c.want && (progress > 0 || frames > 0) {
				t.Errorf("a phone playing its own ringback got Progress %d times and %d frames", progress, frames)
			}
			caller.hangUp()
			waitEnded(t, done)
		})
	}
}

// Two devices rung at once both send early media: the caller hears the
// first one's (it is bridged to it), the second is ignored; at the answer
// the early media bridge is gone and the caller is bridged to the callee.
func TestForkedEarlyMediaFirstHeard(t *testing.T) {
	first := &earlyDevice{earlyAfter: 50 * time.Millisecond, answerAfter: 600 * time.Millisecond, early: newFakeLeg("early-first", "", "")}
	second := &earlyDevice{earlyAfter: 150 * time.Millisecond, answerAfter: 5 * time.Second, early: newFakeLeg("early-second", "", "")}
	sb, logs := testBoard(t, testPlan, &earlyDialer{devices: []*earlyDevice{first, second}})
	caller := &earlyCaller{fakeLeg: newFakeLeg("c1", "alice", "bob")}
	done := call(sb, caller, "user")
	eventually(t, "the first early media is bridged to the caller", func() bool { return first.early.hasHandler() })
	eventually(t, "the second early media is ignored", func() bool {
		return strings.Contains(logs.String(), "early media of another call ignored")
	})
	if second.early.hasHandler() {
		t.Error("the second device's early media is bridged too")
	}
	eventually(t, "the caller is answered", func() bool { a, _, _ := caller.state(); return a })
	if first.early.hasHandler() {
		t.Error("the early media bridge outlived the answer")
	}
	eventually(t, "the caller is bridged to the callee", func() bool { return first.leg != nil && first.leg.hasHandler() })
	caller.hangUp()
	waitEnded(t, done)
}

// A call whose early media was heard fails: the caller hears the ringback
// again while the dial goes on (here a second device answers later).
func TestEarlyMediaEndsBackToRingback(t *testing.T) {
	failing := &earlyDevice{earlyAfter: 30 * time.Millisecond, answerAfter: 200 * time.Millisecond, err: rejection{503, "Service Unavailable"}, early: newFakeLeg("early-failing", "", "")}
	// No early media; it answers once the ringback is back (a timer here
	// raced the failure's handling on a loaded machine, CI once).
	answering := &earlyDevice{answerAfter: 100 * time.Millisecond, answerWhen: make(chan struct{})}
	sb, logs := testBoard(t, testPlan, &earlyDialer{devices: []*earlyDevice{failing, answering}})
	caller := &earlyCaller{fakeLeg: newFakeLeg("c1", "alice", "bob")}
	done := call(sb, caller, "user")
	eventually(t, "the failing call's early media is heard", func() bool {
		return strings.Contains(logs.String(), "early media passed on to the caller")
	})
	eventually(t, "the ringback comes back after it failed", func() bool {
		return strings.Count(logs.String(), `msg=ringback`) >= 2
	})
	close(answering.answerWhen)
	eventually(t, "the caller is answered", func() bool { a, _, _ := caller.state(); return a })
	caller.hangUp()
	waitEnded(t, done)
}

// Bad ringback settings are refused with the field named.
func TestRingbackConfig(t *testing.T) {
	for _, c := range []struct {
		cfg   RingbackConfig
		field string
		msg   string
	}{
		{RingbackConfig{Phones: "loud"}, "phones", `unknown mode "loud"`},
		{RingbackConfig{Pages: "ringing"}, "pages", `unknown mode "ringing"`},
		{RingbackConfig{Country: "xx"}, "country", `no ringback tone for "xx"`},
		{RingbackConfig{Tone: "425/1000,0/abc"}, "tone", `part 2 "0/abc"`},
	} {
		err := c.cfg.Validate()
		var fe *config.Error
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: %v, want field %s with %q", c.cfg, err, c.field, c.msg)
		}
	}
	for country := range ringbackTones { // every country's tone parses
		r := RingbackConfig{Country: country}
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", country, err)
		}
	}
	r := RingbackConfig{Country: "DE", Tone: "!950/330,0"}
	if err := r.Validate(); err != nil || r.Phones != "ringing" || r.Pages != "generate" || r.spec.String() != "!950/330,0" {
		t.Errorf("defaults and own tone: %+v, %v", r, err)
	}
}
