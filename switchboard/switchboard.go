// Package switchboard owns the call logic: a new leg arrives (a desk phone,
// a trunk, a browser page), the dialplan decides, and the action runs: a
// room with a PIN and moderators, a dial fork where the first answer wins,
// the echo test, a prompt, a refusal. It also does what the REST API asks
// of calls and rooms (kick, mute, dial into a room, play) and keeps the
// call counters. It sees every leg through the Leg interface and every way
// out through a Dialer, so desk phones and browsers are treated alike.
package switchboard

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// Config configures a Switchboard.
type Config struct {
	// Plan is the dialplan calls are routed by (SetPlan replaces it).
	Plan *dialplan.Plan
	// Dialers place calls out to users and trunks (the SIP and web sides).
	Dialers []Dialer
	// Rooms is the template of conference rooms (rate, maximum, tones);
	// its Events and Logger are the switchboard's.
	Rooms bridge.RoomConfig
	// RecordDir: when set, every room's mix is recorded there.
	RecordDir string
	// PromptDir holds the WAV files the REST API may play into rooms.
	PromptDir string
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// RoomEvents, when set, is told of every room event (joined, left,
	// kicked, talking, stopped-talking) with the participant's display
	// name, in order, from one goroutine; it must not block (webhooks).
	RoomEvents func(e bridge.Event, name string)
	// Settings are knobs for tests (timeouts); zero values are the defaults.
	Settings Settings
	// Records keeps the call history (nil: none is kept).
	Records CallRecords
	// PlanFile names the dialplan file in call records' rule (file:line).
	PlanFile string
	// Ringback is what callers hear while a dial rings (early.go).
	Ringback RingbackConfig
	// Transfers, when set, is told how each transfer ended (done, refused
	// or failed); it must not block (webhooks).
	Transfers func(TransferOutcome)
	// Cluster, when set, says which node hosts a room (cascade.go); nil:
	// one node alone, every room is here.
	Cluster Cluster
	// Streams opens media streams to bots for the stream action (package
	// stream gives one); nil: the action refuses calls with 503.
	Streams StreamDialer
	// StreamEvents, when set, is told when a media stream to a bot
	// connects and ends (webhooks); it must not block.
	StreamEvents func(StreamEvent)
}

// Settings are timing knobs, for tests and experts.
type Settings struct {
	// DigitTimeout is how long a PIN prompt waits for the next digit
	// (default 15 s).
	DigitTimeout time.Duration
	// WaitToneEvery is how often a caller waiting for a moderator hears the
	// waiting tone (default 10 s).
	WaitToneEvery time.Duration
	// HistoryQueue is how many call-history writes may wait for a slow
	// store before more are dropped (default 4096).
	HistoryQueue int
}

// Switchboard routes calls and runs their actions. Its goroutines are its
// own: Close waits for them.
type Switchboard struct {
	plan      atomic.Pointer[dialplan.Plan]
	dialers   []Dialer
	rooms     *bridge.Rooms
	recordDir string
	promptDir string
	set       Settings
	log       *slog.Logger
	hub       *roomHub
	events    chan bridge.Event
	hubDone   chan struct{}
	records   CallRecords
	journal   *journal // nil without records
	planFile  string
	meter     *bridge.Meter // the media of every room, 1:1 call and echo
	ringback  RingbackConfig
	xfer      transfers             // two-party calls a transfer may change (transfer.go)
	transfers func(TransferOutcome) // Config.Transfers (may be nil)
	cluster   Cluster               // nil: one node alone
	streams   StreamDialer          // nil: no media streams
	// streamEvents is Config.StreamEvents (may be nil).
	streamEvents func(StreamEvent)
	// streamStats counts the room streams' reconnects (roomstream.go).
	streamStats streamCounters

	ctx    context.Context // ends when Close starts
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	calls    map[string]*activeCall // routed calls in progress, by call id
	total    map[[2]string]uint64   // calls routed, by origin and action
	rejected map[int]uint64         // calls refused, by SIP status
	timing   map[string]*callTiming // set-up and duration histograms, by action
	ctl      map[string]*roomCtl    // moderators and waiting legs, by room
	recs     map[string]recording   // recordings in progress, by room (with records)
	views    map[string]*remoteView // rooms hosted elsewhere, by the page's leg id here (remoteview.go)
	bots     map[string]*botStream  // media streams on rooms and calls, by id (roomstream.go)
}

// activeCall is a routed call in progress (for the REST API).
type activeCall struct {
	info     api.CallInfo
	leg      Leg
	arrived  time.Time // with the monotonic clock (info.Started has none)
	answered time.Time // zero until s.answer
	timing   *callTiming
	log      *callLog // the call record's notes (nil without records)
}

// New returns a switchboard routing by cfg.Plan.
func New(cfg Config) *Switchboard {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Settings.DigitTimeout == 0 {
		cfg.Settings.DigitTimeout = 15 * time.Second
	}
	if cfg.Settings.WaitToneEvery == 0 {
		cfg.Settings.WaitToneEvery = 10 * time.Second
	}
	s := &Switchboard{dialers: cfg.Dialers, recordDir: cfg.RecordDir, promptDir: cfg.PromptDir, set: cfg.Settings, log: log,
		hub: newRoomHub(log), events: make(chan bridge.Event, 256), hubDone: make(chan struct{}),
		calls: map[string]*activeCall{}, total: map[[2]string]uint64{}, rejected: map[int]uint64{}, ctl: map[string]*roomCtl{},
		timing: map[string]*callTiming{}, meter: bridge.NewMeter(),
		records: cfg.Records, planFile: cfg.PlanFile, recs: map[string]recording{}, bots: map[string]*botStream{}}
	s.ringback = cfg.Ringback
	if !s.ringback.parsed {
		if err := s.ringback.Validate(); err != nil {
			log.Warn("ringback: bad settings, the defaults are used", "error", err)
			s.ringback = RingbackConfig{}
			_ = s.ringback.Validate()
		}
	}
	if cfg.Records != nil {
		s.journal = newJournal(cfg.Records, log, cmp.Or(cfg.Settings.HistoryQueue, journalQueue))
	}
	s.hub.observe = cfg.RoomEvents
	s.transfers, s.cluster, s.streams, s.streamEvents = cfg.Transfers, cfg.Cluster, cfg.Streams, cfg.StreamEvents
	s.hub.state = s.legState
	s.ctx, s.cancel = context.WithCancel(context.Background())
	tmpl := cfg.Rooms
	tmpl.Logger, tmpl.Events, tmpl.Meter = log, s.events, s.meter
	s.rooms = bridge.NewRooms(tmpl)
	s.plan.Store(cfg.Plan)
	go func() {
		defer close(s.hubDone)
		s.hub.run(s.events, s.ctx.Done())
	}()
	return s
}

// SetPlan routes new calls by plan (a reloaded dialplan); calls in progress
// keep their action.
func (s *Switchboard) SetPlan(plan *dialplan.Plan) { s.plan.Store(plan) }

// goOwned runs f on a goroutine Close waits for; it reports false (and runs
// nothing) once Close has started.
func (s *Switchboard) goOwned(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// enter counts a routed call in, reporting false once Close has started.
func (s *Switchboard) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Close ends every routed call, waits (until ctx ends) for the
// switchboard's goroutines, and closes the rooms. Idempotent.
func (s *Switchboard) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.rooms.Close()
	<-s.hubDone // rooms may still send events: sends never block, and they are dropped
	s.mu.Lock()
	var recording []string
	for room := range s.recs {
		recording = append(recording, room)
	}
	s.mu.Unlock()
	for _, room := range recording { // closing the rooms ended them
		s.recordingEnded(room)
	}
	jctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.journal.close(jctx)
	return err
}

// Handle routes a new call from origin ("user", "guest", "web" or
// "trunk:<name>") and runs its action; it returns when the call is over
// for the switchboard.
func (s *Switchboard) Handle(ctx context.Context, c Leg, origin string) {
	s.owned(ctx, c, func(ctx context.Context) { s.route(ctx, c, origin) })
}

// owned runs a call's handling f as one the switchboard owns: refused 503
// once Close has started, and its context ended by Close.
func (s *Switchboard) owned(ctx context.Context, c Leg, f func(ctx context.Context)) {
	if !s.enter() {
		c.Reject(503, "Service Unavailable")
		return
	}
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel) // Close ends every call
	defer stop()
	f(ctx)
}

// track lists a routed call until it ends and writes its record; the
// returned func unlists it and closes the record.
func (s *Switchboard) track(c Leg, origin string, a dialplan.Action) func() {
	now := time.Now()
	info := api.CallInfo{ID: c.ID(), Origin: origin, From: c.Caller(), To: c.Dialed(), Action: a.Kind, Started: now.UTC()}
	var cl *callLog
	if s.records != nil {
		cl = &callLog{id: newID("call_"), started: info.Started}
	}
	switch a.Kind {
	case dialplan.Room:
		info.Room = a.Room.Name
	case dialplan.PIN:
		info.Room = a.PIN.Room.Name
	}
	s.mu.Lock()
	ac := &activeCall{info: info, leg: c, arrived: now, timing: s.timingLocked(info.Action), log: cl}
	s.calls[c.ID()] = ac
	s.total[[2]string{origin, info.Action}]++
	s.mu.Unlock()
	if cl != nil {
		s.callStarted(cl, info, c, a)
	}
	return func() {
		if cl != nil {
			s.callEnded(cl, c)
		}
		s.mu.Lock()
		if s.calls[c.ID()] == ac {
			delete(s.calls, c.ID())
		}
		if !ac.answered.IsZero() {
			ac.timing.duration.Observe(time.Since(ac.answered))
		}
		s.mu.Unlock()
	}
}

// answer answers c and counts its set-up time: from the call's arrival at
// the switchboard to its answer (for a dial, the callee's answer). A call
// answered already (one a bot handed on) is left as it is.
func (s *Switchboard) answer(ctx context.Context, c Leg) error {
	s.mu.Lock()
	ac := s.calls[c.ID()]
	again := ac != nil && !ac.answered.IsZero()
	s.mu.Unlock()
	if again {
		return nil
	}
	if err := c.Answer(ctx); err != nil {
		return err
	}
	s.answered(c, time.Time{})
	return nil
}

// answered marks a tracked call answered now and counts its set-up time
// from since (zero: from its arrival).
func (s *Switchboard) answered(c Leg, since time.Time) {
	s.mu.Lock()
	ac := s.calls[c.ID()]
	if ac == nil || !ac.answered.IsZero() {
		s.mu.Unlock()
		return
	}
	if since.IsZero() {
		since = ac.arrived
	}
	ac.answered = time.Now()
	ac.timing.setup.Observe(ac.answered.Sub(since))
	cl, at := ac.log, ac.answered.UTC()
	s.mu.Unlock()
	s.recordAnswered(cl, at) // records.go
}

// reject refuses c with status and counts it.
func (s *Switchboard) reject(c Leg, status int, reason string) {
	s.setCause(c, "system", status, reason)
	s.mu.Lock()
	s.rejected[status]++
	s.mu.Unlock()
	c.Reject(status, reason)
}

// route asks the dialplan and runs the action (one file per action).
func (s *Switchboard) route(ctx context.Context, c Leg, origin string) {
	plan := s.plan.Load()
	cctx := plan.ContextFor(origin)
	if cctx == "" {
		s.log.Warn("call refused: no dialplan context for its origin", "origin", origin, "dialed", c.Dialed(), "call_id", c.ID())
		s.unrouted(c, origin, "", 403, "Forbidden (no dialplan context for the origin)")
		s.reject(c, 403, "Forbidden")
		return
	}
	a, err := plan.Route(dialplan.Call{Context: cctx, Number: c.Dialed(), Caller: c.Caller()})
	if err != nil {
		s.log.Info("no route", "context", cctx, "dialed", c.Dialed(), "caller", c.Caller(), "call_id", c.ID(), "error", err)
		s.unrouted(c, origin, cctx, 404, "Not Found (no dialplan rule)")
		s.reject(c, 404, "Not Found")
		return
	}
	log := s.log.With("call_id", c.ID(), "context", a.Context, "rule_line", a.Line, "action", a.Kind)
	log.Debug("routed", "dialed", c.Dialed())
	defer s.track(c, origin, a)()
	if a.MaxDuration > 0 { // the context's limit: the action ends with ctx
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, a.MaxDuration, errMaxDuration)
		defer cancel()
		defer func() {
			if errors.Is(context.Cause(ctx), errMaxDuration) { // before the record ends (track)
				log.Info("maximum call duration reached: hanging up", "max_duration_ms", a.MaxDuration.Milliseconds())
				s.endedByContext(ctx, c)
				hangup(c)
			}
		}()
	}
	s.runAction(ctx, c, a, log)
}

// runAction runs a routed action on c (one file per action).
func (s *Switchboard) runAction(ctx context.Context, c Leg, a dialplan.Action, log *slog.Logger) {
	switch a.Kind {
	case dialplan.Echo:
		s.echo(ctx, c, log)
	case dialplan.Room:
		s.roomAction(ctx, c, a.Room, log)
	case dialplan.PIN:
		s.pinAction(ctx, c, a.PIN, log)
	case dialplan.Dial:
		s.dial(ctx, c, a.Dial, log)
	case dialplan.Playback:
		s.playbackAction(ctx, c, a.Playback.File, log)
	case dialplan.Stream:
		s.streamAction(ctx, c, a, log)
	case dialplan.Reject:
		log.Info("rejected by the dialplan", "status", a.Reject.Status)
		s.setCause(c, "dialplan", a.Reject.Status, a.Reject.Reason)
		s.reject(c, a.Reject.Status, a.Reject.Reason)
	}
}

// hangup ends c, giving the far end up to 3 s to hear of it.
func hangup(c Leg) { hangupBecause(c, "") }

// hangupBecause hangs c up telling it why, if there is a reason and c can
// be told (ReasonedHangup).
func hangupBecause(c Leg, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if r, ok := c.(ReasonedHangup); ok && reason != "" {
		r.HangupBecause(ctx, reason)
		return
	}
	c.Hangup(ctx)
}
