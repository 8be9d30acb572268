package switchboard

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/internal/config"
)

// RingbackConfig says what a caller hears while a dial rings (README
// "Early media and ringback").
type RingbackConfig struct {
	// Phones is what a SIP caller gets: "ringing" (the default: 180
	// Ringing, and the phone plays its own ringback tone, as phones do) or
	// "generate" (183 Session Progress with SDP, and voxgate's tone, the
	// way Asterisk's Progress() with Ringing indications works).
	Phones string `yaml:"phones"`
	// Pages is what a browser caller hears: "generate" (the default:
	// voxgate's tone) or "off" (silence until the answer).
	Pages string `yaml:"pages"`
	// Country picks the ringback tone of a country (Asterisk's
	// indications.conf): us (the default), uk, de, fr, it, nl, es, at, ch,
	// se, no, dk, au, br, jp.
	Country string `yaml:"country"`
	// Tone is a tone of one's own in indications.conf syntax
	// ("425/1000,0/4000"), used instead of the country's.
	Tone string `yaml:"tone"`

	spec   audio.ToneSpec
	parsed bool
}

// Ringback modes.
const (
	ringbackRinging  = "ringing"
	ringbackGenerate = "generate"
	ringbackOff      = "off"
)

// ringbackTones are the ringback tones of countries, from Asterisk's
// indications.conf.
var ringbackTones = map[string]string{
	"us": "440+480/2000,0/4000",
	"uk": "400+450/400,0/200,400+450/400,0/2000",
	"de": "425/1000,0/4000",
	"fr": "440/1500,0/3500",
	"it": "425/1000,0/4000",
	"nl": "425/1000,0/4000",
	"es": "425/1500,0/3000",
	"at": "420/1000,0/5000",
	"ch": "425/1000,0/4000",
	"se": "425/1000,0/5000",
	"no": "425/1000,0/4000",
	"dk": "425/1000,0/4000",
	"au": "400+450/400,0/200,400+450/400,0/2000",
	"br": "425/1000,0/4000",
	"jp": "400+15/1000,0/2000",
}

// ringbackLevel is the peak level of voxgate's ringback (about -16 dBFS).
const ringbackLevel = 0.16

// Validate fills the defaults and reads the tone. Its errors are
// *config.Error naming the field below the ringback section.
func (r *RingbackConfig) Validate() error {
	r.Phones, r.Pages, r.Country = strings.ToLower(r.Phones), strings.ToLower(r.Pages), strings.ToLower(r.Country)
	switch r.Phones {
	case "":
		r.Phones = ringbackRinging
	case ringbackRinging, ringbackGenerate:
	default:
		return config.Fieldf("phones", "unknown mode %q (want ringing or generate)", r.Phones)
	}
	switch r.Pages {
	case "":
		r.Pages = ringbackGenerate
	case ringbackGenerate, ringbackOff:
	default:
		return config.Fieldf("pages", "unknown mode %q (want generate or off)", r.Pages)
	}
	if r.Country == "" {
		r.Country = "us"
	}
	tone, ok := ringbackTones[r.Country]
	if !ok {
		names := slices.Sorted(maps.Keys(ringbackTones))
		return config.Fieldf("country", "no ringback tone for %q (known: %s; or give tone)", r.Country, strings.Join(names, ", "))
	}
	field := "country"
	if r.Tone != "" {
		tone, field = r.Tone, "tone"
	}
	spec, err := audio.ParseToneSpec(tone)
	if err != nil {
		return config.FieldErr(field, err)
	}
	r.spec, r.parsed = spec, true
	return nil
}

// EarlyMediaLeg is a caller leg that can hear audio before its call is
// answered: voxgate's ringback, or the far end's early media. Legs that
// cannot just hear nothing until the answer.
type EarlyMediaLeg interface {
	// Progress makes audio written to the leg reach its caller before the
	// answer: a SIP caller gets 183 Session Progress with voxgate's SDP; a
	// page's media flows already. Idempotent.
	Progress(ctx context.Context) error
	// PlaysOwnRingback reports whether the caller's device plays a
	// ringback tone itself when told the far end rings (a desk phone on
	// 180), so voxgate generates one only when configured to.
	PlaysOwnRingback() bool
}

// DialTrace is what the switchboard wants to know of a call it places
// before the answer. A Dialer finds it in the context given to DialTrunk
// or to a Device (ContextDialTrace), as net/http/httptrace does.
type DialTrace struct {
	// EarlyMedia is called with the far end's early media (a 183 with
	// SDP: an announcement, the carrier's ringback) as a leg that carries
	// it until the answer or the failure of that call (Done). It must not
	// block.
	EarlyMedia func(m bridge.Leg)
}

type dialTraceKey struct{}

// ContextDialTrace returns the DialTrace of ctx (nil: none).
func ContextDialTrace(ctx context.Context) *DialTrace {
	t, _ := ctx.Value(dialTraceKey{}).(*DialTrace)
	return t
}

func withDialTrace(ctx context.Context, t *DialTrace) context.Context {
	return context.WithValue(ctx, dialTraceKey{}, t)
}

// earlyPhase is what a caller hears while its dial rings: voxgate's
// ringback, replaced by the far end's early media when one comes (the
// first: of a user's devices rung at once, or of the trunks tried in
// turn, the first to send early media is heard until its call ends;
// others' are not). It ends when the dial has its answer.
type earlyPhase struct {
	s        *Switchboard
	c        Leg
	el       EarlyMediaLeg // nil: the caller hears nothing before the answer
	log      *slog.Logger
	ctx      context.Context
	generate bool // voxgate's ringback while no early media plays
	done     chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	stopped  bool
	room     *bridge.Room  // the ringback's room of c alone, or c bridged to media
	media    bridge.Leg    // whose early media c hears (nil: none)
	ringStop chan struct{} // stops the ringback's loop
}

// startEarly starts what c hears while its dial rings.
func (s *Switchboard) startEarly(ctx context.Context, c Leg, log *slog.Logger) *earlyPhase {
	e := &earlyPhase{s: s, c: c, log: log, ctx: ctx, done: make(chan struct{})}
	if el, ok := c.(EarlyMediaLeg); ok {
		e.el = el
		mode := s.ringback.Pages
		if el.PlaysOwnRingback() {
			mode = s.ringback.Phones
		}
		e.generate = mode == ringbackGenerate
	}
	e.mu.Lock()
	if e.generate {
		e.ringbackLocked()
	}
	e.mu.Unlock()
	return e
}

// trace is the DialTrace that brings the far end's early media here.
func (e *earlyPhase) trace() *DialTrace {
	return &DialTrace{EarlyMedia: func(m bridge.Leg) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.stopped { // a late 183 of a call being cancelled
			return
		}
		e.wg.Add(1)
		go func() { // off the SIP stack's goroutine
			defer e.wg.Done()
			e.takeMedia(m)
		}()
	}}
}

// ringbackLocked plays voxgate's ringback tone to the caller, looped.
func (e *earlyPhase) ringbackLocked() {
	if err := e.el.Progress(e.ctx); err != nil {
		e.log.Info("no ringback: the caller cannot hear audio before the answer", "error", err)
		e.generate = false
		return
	}
	room, err := e.s.soloRoom("ringback", e.c)
	if err != nil {
		e.log.Warn("no ringback", "error", err)
		return
	}
	intro, loop := e.s.ringback.spec.Render(8000, ringbackLevel)
	stop := make(chan struct{})
	e.room, e.ringStop = room, stop
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		pcm := intro
		for len(pcm) > 0 {
			if room.PlayToLeg(e.c.ID(), &audio.WAV{Rate: 8000, Samples: pcm}) != nil {
				return
			}
			t := time.NewTimer(time.Duration(len(pcm)) * time.Second / 8000)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
				return
			}
			pcm = loop
		}
	}()
	e.log.Debug("ringback", "tone", e.s.ringback.spec.String())
}

// closeLocked ends the ringback or the early media bridge.
func (e *earlyPhase) closeLocked() {
	if e.ringStop != nil {
		close(e.ringStop)
		e.ringStop = nil
	}
	if e.room != nil {
		e.room.Close()
		e.room = nil
	}
	e.media = nil
}

// takeMedia lets the caller hear m, the far end's early media, unless it
// hears another's already.
func (e *earlyPhase) takeMedia(m bridge.Leg) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.stopped || e.el == nil:
		return
	case e.media != nil:
		e.log.Info("early media of another call ignored: the caller hears the first", "early", m.ID(), "heard", e.media.ID())
		return
	}
	if err := e.el.Progress(e.ctx); err != nil {
		e.log.Info("early media not passed on: the caller cannot hear audio before the answer", "error", err)
		return
	}
	e.closeLocked()
	room, err := bridge.Connect(e.c, m, bridge.RoomConfig{Logger: e.log, Meter: e.s.meter})
	if err != nil {
		e.log.Warn("early media not passed on", "error", err)
		return
	}
	e.room, e.media = room, m
	e.log.Info("early media passed on to the caller", "early", m.ID())
	e.wg.Add(1)
	go func() { // that call failed: back to the ringback (the next trunk may ring)
		defer e.wg.Done()
		select {
		case <-m.Done():
		case <-e.done:
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.stopped || e.media != m {
			return
		}
		e.closeLocked()
		if e.generate {
			e.ringbackLocked()
		}
	}()
}

// stop ends what the caller hears before the answer; it returns once the
// caller's media is free for the call's bridge.
func (e *earlyPhase) stop() {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return
	}
	e.stopped = true
	e.closeLocked()
	e.mu.Unlock()
	close(e.done)
	e.wg.Wait()
}
