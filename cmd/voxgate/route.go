package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/webclient"
)

// router runs the dialplan's actions for SIP and browser calls alike.
type router struct {
	plan      atomic.Pointer[dialplan.Plan]
	recordDir string
	promptDir string // WAVs the REST API may play
	rooms     *bridge.Rooms
	log       *slog.Logger
	hub       *roomHub
	// sip and web place calls to users and trunks (set once both servers run).
	sip *sip.Server
	web *webclient.Server
	// onEnd, when set (tests), sees every call after it ended.
	onEnd func(*sip.Call)

	mu       sync.Mutex
	calls    map[string]*activeCall // routed calls in progress, by call id
	total    map[[2]string]uint64   // calls routed, by origin and action
	rejected map[int]uint64         // calls refused, by SIP status
	ctl      map[string]*roomCtl    // moderators and waiting legs, by room
}

// activeCall is a routed call in progress (for the REST API).
type activeCall struct {
	info webclient.CallInfo
	leg  routable
}

// track lists a routed call until it ends; the returned func unlists it.
func (r *router) track(c routable, origin string, a dialplan.Action) func() {
	info := webclient.CallInfo{ID: c.ID(), Origin: origin, From: callerName(c), To: c.Dialed(), Action: a.Kind, Started: time.Now().UTC()}
	switch a.Kind {
	case dialplan.Room:
		info.Room = a.Room.Name
	case dialplan.PIN:
		info.Room = a.PIN.Room.Name
	}
	r.mu.Lock()
	r.calls[c.ID()] = &activeCall{info: info, leg: c}
	r.total[[2]string{origin, info.Action}]++
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.calls, c.ID())
		r.mu.Unlock()
	}
}

// countRejected counts a call refused with status.
func (r *router) countRejected(status int) {
	r.mu.Lock()
	r.rejected[status]++
	r.mu.Unlock()
}

// roomHub names room participants and forwards room events to the browser
// pages that are in the room.
type roomHub struct {
	log   *slog.Logger
	mu    sync.Mutex
	names map[string]string                       // leg id -> display name
	pages map[string]map[*webclient.Call]struct{} // room -> pages in it
}

func newRoomHub(log *slog.Logger) *roomHub {
	return &roomHub{log: log, names: map[string]string{}, pages: map[string]map[*webclient.Call]struct{}{}}
}

func (h *roomHub) enter(room string, c routable) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch c := c.(type) {
	case *sip.Call:
		h.names[c.ID()] = c.Caller()
	case *webclient.Call:
		h.names[c.ID()] = c.User()
		if h.pages[room] == nil {
			h.pages[room] = map[*webclient.Call]struct{}{}
		}
		h.pages[room][c] = struct{}{}
	}
}

func (h *roomHub) leave(room string, c routable) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w, ok := c.(*webclient.Call); ok {
		delete(h.pages[room], w)
	}
}

func (h *roomHub) name(id string) string {
	if n := h.names[id]; n != "" {
		return n
	}
	return id
}

// participants tells a page who is in the room.
func (h *roomHub) participants(room *bridge.Room, c routable) {
	w, ok := c.(*webclient.Call)
	if !ok {
		return
	}
	h.mu.Lock()
	var names, talking []string
	for _, l := range room.Stats().Legs {
		names = append(names, h.name(l.ID))
		if l.Talking {
			talking = append(talking, h.name(l.ID))
		}
	}
	h.mu.Unlock()
	w.Participants(room.Name(), names)
	for _, n := range talking { // who is talking already
		w.Notify("talking", room.Name(), n)
	}
}

// run logs every room event and forwards it to the room's pages.
func (h *roomHub) run(events <-chan bridge.Event) {
	for e := range events {
		h.mu.Lock()
		name := h.name(e.Leg)
		pages := make([]*webclient.Call, 0, len(h.pages[e.Room]))
		for p := range h.pages[e.Room] {
			pages = append(pages, p)
		}
		if e.Type == "left" || e.Type == "kicked" {
			delete(h.names, e.Leg)
		}
		h.mu.Unlock()
		h.log.Info("room event", "room", e.Room, "leg", e.Leg, "name", name, "event", e.Type)
		for _, p := range pages {
			p.Notify(e.Type, e.Room, name)
		}
	}
}

// routable is what the router needs of a call, from a phone or a browser.
type routable interface {
	bridge.Leg
	Dialed() string
	Answer(ctx context.Context) error
	Hangup(ctx context.Context)
}

// HandleCall routes a SIP call.
func (r *router) HandleCall(ctx context.Context, c *sip.Call) {
	if r.onEnd != nil {
		defer r.onEnd(c)
	}
	origin := c.Origin().Kind
	if origin == "trunk" {
		origin = "trunk:" + c.Origin().Name
	}
	r.route(ctx, c, origin, func(code int, reason string) { c.Reject(&sip.Rejection{Status: code, Reason: reason}) })
}

// browserRouter routes browser calls the same way.
type browserRouter struct{ r *router }

func (b browserRouter) HandleCall(ctx context.Context, c *webclient.Call) {
	b.r.route(ctx, c, "web", c.Reject)
}

// callerName is how a caller is shown to the callee and matched by rules.
func callerName(c routable) string {
	switch c := c.(type) {
	case *sip.Call:
		return c.Caller()
	case *webclient.Call:
		return c.User()
	}
	return c.ID()
}

func (r *router) route(ctx context.Context, c routable, origin string, rejectCall func(code int, reason string)) {
	reject := func(code int, reason string) {
		r.countRejected(code)
		rejectCall(code, reason)
	}
	plan := r.plan.Load()
	cctx := plan.ContextFor(origin)
	if cctx == "" {
		r.log.Warn("call refused: no dialplan context for its origin", "origin", origin, "dialed", c.Dialed(), "call_id", c.ID())
		reject(403, "Forbidden")
		return
	}
	a, err := plan.Route(dialplan.Call{Context: cctx, Number: c.Dialed(), Caller: callerName(c)})
	if err != nil {
		r.log.Info("no route", "context", cctx, "dialed", c.Dialed(), "caller", callerName(c), "call_id", c.ID(), "error", err)
		reject(404, "Not Found")
		return
	}
	log := r.log.With("call_id", c.ID(), "context", a.Context, "rule_line", a.Line, "action", a.Kind)
	log.Debug("routed", "dialed", c.Dialed())
	defer r.track(c, origin, a)()
	switch a.Kind {
	case dialplan.Echo:
		if err := c.Answer(ctx); err != nil {
			return
		}
		if err := bridge.Echo(ctx, c); err != nil && ctx.Err() == nil {
			log.Warn("echo ended", "error", err)
		}
	case dialplan.Room:
		if err := c.Answer(ctx); err != nil {
			return
		}
		moderator := false
		if a.Room.PIN != "" {
			var ok bool
			if ok, moderator = r.askPIN(ctx, c, dialplan.PINAction{Room: a.Room, Tries: 3}, log); !ok {
				return
			}
		}
		r.joinRoom(ctx, c, a.Room, moderator, log)
	case dialplan.PIN:
		if err := c.Answer(ctx); err != nil {
			return
		}
		if ok, moderator := r.askPIN(ctx, c, a.PIN, log); ok {
			r.joinRoom(ctx, c, a.PIN.Room, moderator, log)
		}
	case dialplan.Dial:
		r.dial(ctx, c, a.Dial, reject, log)
	case dialplan.Playback:
		if err := c.Answer(ctx); err != nil {
			return
		}
		r.playback(ctx, c, a.Playback.File, log)
		c.Hangup(ctx)
	case dialplan.Reject:
		log.Info("rejected by the dialplan", "status", a.Reject.Status)
		reject(a.Reject.Status, a.Reject.Reason)
	}
}

// room returns the room for a room action, created with its options.
func (r *router) room(ra dialplan.RoomAction) (*bridge.Room, error) {
	return r.rooms.GetWith(ra.Name, func(cfg *bridge.RoomConfig) {
		if ra.Rate != 0 {
			cfg.Rate = ra.Rate
		}
		if ra.Max != 0 {
			cfg.Max = ra.Max
		}
	})
}

func (r *router) joinRoom(ctx context.Context, c routable, ra dialplan.RoomAction, moderator bool, log *slog.Logger) {
	r.hub.enter(ra.Name, c) // before joining: the joined event names the caller
	defer r.hub.leave(ra.Name, c)
	var room *bridge.Room
	var wait bool
	for {
		var err error
		if room, err = r.room(ra); err != nil {
			log.Error("room unavailable", "room", ra.Name, "error", err)
			c.Hangup(ctx)
			return
		}
		wait = r.mustWait(room, ra, moderator)
		err = room.Join(c, bridge.JoinOptions{Muted: wait, Deaf: wait})
		if errors.Is(err, bridge.ErrClosed) { // released as it emptied: get it afresh
			continue
		}
		if err != nil {
			log.Info("room refused the call", "room", room.Name(), "error", err)
			c.Hangup(ctx)
			return
		}
		break
	}
	r.admit(room, c, ra, moderator, wait, log)
	defer r.depart(room, c, log)
	stopKeys := r.keypad(ctx, room, c, log)
	defer stopKeys()
	r.hub.participants(room, c)
	if (r.recordDir != "" || ra.Record) && !room.Recording() {
		if _, err := r.record(room); err != nil && !errors.Is(err, bridge.ErrRecording) {
			log.Error("recording failed to start", "room", room.Name(), "error", err)
		}
	}
	<-c.Done()
	_ = room.Leave(c.ID()) // now, not when the room notices the call ended
	if room.Len() == 0 {   // the last one out ends the recording, whoever started it
		_ = room.StopRecording()
	}
	r.rooms.Release(room.Name()) // an empty room is forgotten
}

// record starts recording room's mix in the recording directory (the
// working directory when none is set); it returns the file.
func (r *router) record(room *bridge.Room) (string, error) {
	dir := r.recordDir
	if dir == "" {
		dir = "."
	}
	name := filepath.Join(dir, fmt.Sprintf("room-%s-%s.wav", room.Name(), time.Now().UTC().Format("20060102T150405Z")))
	return name, room.Record(name, false)
}

// stillIn reports whether leg id is in the room.
func stillIn(room *bridge.Room, id string) bool {
	for _, l := range room.Stats().Legs {
		if l.ID == id {
			return true
		}
	}
	return false
}

// promptWAV loads a prompt, or makes the built-in one (a short tone).
func promptWAV(file string, freq float64, seconds float64) (*audio.WAV, error) {
	if file != "" {
		return audio.ReadWAVFile(file)
	}
	w := &audio.WAV{Rate: 8000, Samples: make([]int16, int(8000*seconds))}
	(&audio.Tone{Rate: 8000, Freq: freq, Level: 0.2}).Fill(w.Samples)
	return w, nil
}

// playback plays a prompt to the call alone (in a room of its own).
func (r *router) playback(ctx context.Context, c routable, file string, log *slog.Logger) {
	w, err := promptWAV(file, 440, 1)
	if err != nil {
		log.Error("prompt unreadable", "file", file, "error", err)
		return
	}
	solo, err := bridge.NewRoom(bridge.RoomConfig{Name: "playback-" + c.ID(), Rate: 8000, Logger: r.log, JoinTone: bridge.NoTone, LeaveTone: bridge.NoTone})
	if err != nil {
		return
	}
	defer solo.Close()
	if err := solo.Join(c, bridge.JoinOptions{}); err != nil {
		return
	}
	_ = solo.PlayToLeg(c.ID(), w)
	select {
	case <-time.After(time.Duration(len(w.Samples))*time.Second/time.Duration(w.Rate) + 300*time.Millisecond):
	case <-c.Done():
	case <-ctx.Done():
	}
}

// digits delivers the DTMF a call sends (RFC 4733, SIP INFO, or a page's keypad).
func digits(c routable) (<-chan rune, func()) {
	ch := make(chan rune, 32)
	push := func(d rune) {
		select {
		case ch <- d:
		default:
		}
	}
	switch c := c.(type) {
	case *sip.Call:
		c.OnDTMF(push)
		return ch, func() { c.OnDTMF(nil) }
	case *webclient.Call:
		c.OnDTMF(func(s string) error {
			for _, d := range s {
				push(d)
			}
			return nil
		})
		return ch, func() { c.OnDTMF(nil) }
	}
	return ch, func() {}
}

// askPIN plays the prompt and collects a PIN ending with # (or complete
// once it can only be one of the PINs), up to the given tries; a wrong PIN
// each time hangs up with a message (a low tone). It reports whether the
// caller keyed the moderator PIN.
func (r *router) askPIN(ctx context.Context, c routable, pa dialplan.PINAction, log *slog.Logger) (ok, moderator bool) {
	prompt, err := promptWAV(pa.Prompt, 660, 0.5)
	if err != nil {
		log.Error("PIN prompt unreadable", "file", pa.Prompt, "error", err)
		c.Hangup(ctx)
		return false, false
	}
	solo, err := bridge.NewRoom(bridge.RoomConfig{Name: "pin-" + c.ID(), Rate: 8000, Logger: r.log, JoinTone: bridge.NoTone, LeaveTone: bridge.NoTone})
	if err != nil {
		return false, false
	}
	defer solo.Close()
	if err := solo.Join(c, bridge.JoinOptions{}); err != nil {
		return false, false
	}
	keys, stop := digits(c)
	defer stop()
	pins := []string{pa.Room.PIN}
	if pa.Room.ModeratorPIN != "" {
		pins = append(pins, pa.Room.ModeratorPIN)
	}
	tries := max(pa.Tries, 1)
	for try := 1; try <= tries; try++ {
		_ = solo.PlayToLeg(c.ID(), prompt)
		var got strings.Builder
		timeout := time.NewTimer(15 * time.Second)
	collect:
		for {
			select {
			case d := <-keys:
				if d == '#' {
					break collect
				}
				got.WriteRune(d)
				if complete(got.String(), pins) {
					break collect
				}
			case <-timeout.C:
				break collect
			case <-c.Done():
				timeout.Stop()
				return false, false
			case <-ctx.Done():
				timeout.Stop()
				return false, false
			}
		}
		timeout.Stop()
		if k := got.String(); k == pa.Room.PIN || (pa.Room.ModeratorPIN != "" && k == pa.Room.ModeratorPIN) {
			moderator = k == pa.Room.ModeratorPIN
			log.Info("PIN accepted", "room", pa.Room.Name, "try", try, "moderator", moderator)
			_ = solo.Leave(c.ID())
			return true, moderator
		}
		log.Info("wrong PIN", "room", pa.Room.Name, "try", try, "keyed", len(got.String()))
	}
	bye, _ := promptWAV("", 220, 0.8)
	_ = solo.PlayToLeg(c.ID(), bye)
	select {
	case <-time.After(time.Second):
	case <-c.Done():
	}
	c.Hangup(ctx)
	return false, false
}

// complete reports whether keyed is one of pins and no longer one starts
// with it (so 1234 waits for # when 12345 is a PIN too).
func complete(keyed string, pins []string) bool {
	match := false
	for _, p := range pins {
		if p == keyed {
			match = true
		} else if strings.HasPrefix(p, keyed) {
			return false
		}
	}
	return match
}

var errNotReachable = errors.New("user has no open page and no registered phone")

// ring calls out through a trunk, or rings every open page and every
// registered phone of a user at once: the first to answer wins and the
// others are cancelled (a late answer is hung up).
func (r *router) ring(ctx context.Context, from string, d dialplan.DialAction, log *slog.Logger) (routable, error) {
	if d.Trunk != "" {
		return r.sip.DialTrunk(ctx, d.Trunk, d.Number, sip.DialOptions{CallerID: d.CallerID})
	}
	type answer struct {
		leg routable
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan answer, 8)
	n := 0
	if r.web != nil && r.web.Online(d.User) {
		n++
		go func() {
			w, err := r.web.Ring(ctx, d.User, from)
			if err != nil {
				results <- answer{nil, err}
				return
			}
			results <- answer{w, nil}
		}()
	}
	if r.sip != nil {
		for _, b := range r.sip.Bindings(d.User) {
			n++
			go func() {
				p, err := r.sip.DialBinding(ctx, b, from)
				if err != nil {
					results <- answer{nil, err}
					return
				}
				results <- answer{p, nil}
			}()
		}
	}
	if n == 0 {
		return nil, errNotReachable
	}
	log.Info("ringing", "user", d.User, "devices", n)
	var winner routable
	var lastErr error
	for i := 0; i < n; i++ {
		a := <-results
		switch {
		case a.err != nil:
			lastErr = a.err
		case winner == nil:
			winner = a.leg
			cancel() // stop ringing the others
		default: // answered too late
			a.leg.Hangup(context.Background())
		}
	}
	if winner != nil {
		return winner, nil
	}
	return nil, lastErr
}

// dial rings a user or calls out through a trunk and bridges the caller to
// whoever answers, transcoding where the codecs differ.
func (r *router) dial(ctx context.Context, c routable, d dialplan.DialAction, reject func(int, string), log *slog.Logger) {
	rctx, cancel := context.WithTimeout(ctx, time.Duration(d.Timeout)*time.Second)
	defer cancel()
	switch cc := c.(type) { // the caller hears or sees that it rings
	case *sip.Call:
		_ = cc.Ringing()
	case *webclient.Call:
		cc.Ringing()
	}
	callee, err := r.ring(rctx, callerName(c), d, log)
	if err != nil {
		log.Info("no answer", "user", d.User, "trunk", d.Trunk, "error", err)
		var rej *sip.Rejection
		switch {
		case errors.Is(err, errNotReachable):
			reject(480, "Temporarily Unavailable")
		case errors.Is(err, webclient.ErrDeclined):
			reject(486, "Busy Here")
		case errors.As(err, &rej):
			reject(rej.Status, rej.Reason)
		default:
			reject(480, "Temporarily Unavailable")
		}
		return
	}
	if err := c.Answer(ctx); err != nil {
		callee.Hangup(ctx)
		return
	}
	_ = callee.Answer(ctx) // tells a page the call is up
	// Digits keyed on a page go to a phone or trunk as RFC 4733 events.
	if w, ok := c.(*webclient.Call); ok {
		if p, ok := callee.(*sip.Call); ok {
			w.OnDTMF(p.SendDTMF)
		}
	}
	if w, ok := callee.(*webclient.Call); ok {
		if p, ok := c.(*sip.Call); ok {
			w.OnDTMF(p.SendDTMF)
		}
	}
	room, err := bridge.Connect(c, callee, bridge.RoomConfig{Logger: r.log})
	if err != nil {
		log.Error("cannot bridge the call", "error", err)
		c.Hangup(ctx)
		callee.Hangup(ctx)
		return
	}
	log.Info("call bridged", "caller", callerName(c), "user", d.User, "trunk", d.Trunk, "number", d.Number, "rate", room.Rate())
	select {
	case <-c.Done():
	case <-callee.Done():
	case <-ctx.Done():
	}
	hctx, hcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer hcancel()
	c.Hangup(hctx)
	callee.Hangup(hctx)
	room.Close()
}

func newRouter(cfg *Config, plan *dialplan.Plan, log *slog.Logger) *router {
	events := make(chan bridge.Event, 256)
	hub := newRoomHub(log)
	go hub.run(events)
	tmpl := bridge.RoomConfig{Rate: cfg.Rooms.Rate, Max: cfg.Rooms.Max, Logger: log, Events: events}
	if cfg.Rooms.Tones != nil && !*cfg.Rooms.Tones {
		tmpl.JoinTone, tmpl.LeaveTone = bridge.NoTone, bridge.NoTone
	}
	r := &router{recordDir: cfg.Rooms.RecordDir, promptDir: cfg.Rooms.PromptDir, rooms: bridge.NewRooms(tmpl), hub: hub, log: log,
		calls: map[string]*activeCall{}, total: map[[2]string]uint64{}, rejected: map[int]uint64{}, ctl: map[string]*roomCtl{}}
	r.plan.Store(plan)
	return r
}
