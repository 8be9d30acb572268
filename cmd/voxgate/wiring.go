package main

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/dialplan"
	"github.com/voxgate/voxgate/events"
	"github.com/voxgate/voxgate/internal/guard"
	"github.com/voxgate/voxgate/internal/metrics"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/switchboard"
	"github.com/voxgate/voxgate/webclient"
)

// Both call types are switchboard legs, with the same signatures.
var (
	_ switchboard.Leg           = (*sip.Call)(nil)
	_ switchboard.Leg           = (*webclient.Call)(nil)
	_ switchboard.RoomWatcher   = (*webclient.Call)(nil)
	_ switchboard.SelfMuter     = (*webclient.Call)(nil)
	_ bridge.QueuedWriter       = (*webclient.Call)(nil) // pion writes may wait: the room queues them
	_ bridge.ReceiveReporter    = (*sip.Call)(nil)
	_ bridge.ReceiveReporter    = (*webclient.Call)(nil)
	_ bridge.RemoteLossReporter = (*sip.Call)(nil)
	_ bridge.RemoteLossReporter = (*webclient.Call)(nil)
	_ bridge.DTXReceiver        = (*sip.Call)(nil)
	_ bridge.DTXReceiver        = (*webclient.Call)(nil)
	_ bridge.DTMFSender         = (*sip.Call)(nil)
	_ webclient.Control         = control{}
)

// app is voxgate wired together: the switchboard between the SIP side and
// the web side. Nothing listens until Start.
type app struct {
	sb        *switchboard.Switchboard
	sip       *sip.Server
	web       *webclient.Server
	store     *dataStore       // nil without data_dir
	hooks     *events.Webhooks // nil without webhooks
	closeOnce sync.Once
	// draining is set on SIGTERM: /readyz then answers 503.
	draining atomic.Bool
}

// errDraining is /readyz's reason while SIGTERM lets calls finish.
var errDraining = errors.New("shutting down (SIGTERM): letting calls finish, taking no new ones")

// ready is the "draining" readiness check.
func (a *app) ready(context.Context) error {
	if a.draining.Load() {
		return errDraining
	}
	return nil
}

// wiring holds what tests add to the servers.
type wiring struct {
	sipOpts []sip.Option
	webOpts []webclient.Option
	// ended sees each SIP call once the switchboard is done with it.
	ended func(*sip.Call)
}

// wire builds the SIP server, the web server and the switchboard and
// connects them, before anything starts.
func wire(cfg *Config, plan *dialplan.Plan, users *sip.Users, log *slog.Logger, w wiring) (*app, error) {
	if err := cfg.SIP.Validate(); err != nil {
		return nil, err
	}
	st, err := openStore(cfg, log) // store.go
	if err != nil {
		return nil, err
	}
	var records switchboard.CallRecords
	var hooks *events.Webhooks // nil: no webhooks (Publish does nothing)
	var roomEvents func(bridge.Event, string)
	if st != nil {
		var locations sip.LocationStore = sipLocations{st.SQLite}
		records = st.SQLite
		if len(cfg.Webhooks) > 0 {
			if hooks, err = events.New(cfg.Webhooks, st.SQLite, events.WithLogger(log)); err != nil {
				st.Close()
				return nil, err
			}
			records, locations = newHookedRecords(records, hooks), newHookedLocations(locations, hooks)
			roomEvents = roomEvent(hooks)
			w.sipOpts = append(w.sipOpts, sip.WithTrunkObserver(trunkEvent(hooks)), sip.WithQualifyObserver(qualifyEvent(hooks)))
		}
		w.sipOpts = append(w.sipOpts, sip.WithLocationStore(locations))
		w.webOpts = append(w.webOpts, webclient.WithHistory(st.SQLite))
		if cfg.Web.GuestKey == "" { // guest links outlive a restart
			key, err := st.guestKey(cfg.DataDir)
			if err != nil {
				st.Close()
				return nil, err
			}
			w.webOpts = append(w.webOpts, webclient.WithGuestKey(key))
		}
	}
	calls := &sipCalls{ended: w.ended}
	g := guard.New(cfg.SIP.Guard, log) // one guard for SIP, sign-in, API and WebSocket
	srv, err := sip.NewServer(cfg.SIP, append([]sip.Option{sip.WithLogger(log), sip.WithUsers(users), sip.WithHandler(calls), sip.WithGuard(g)}, w.sipOpts...)...)
	if err != nil {
		st.Close()
		return nil, err
	}
	pages := &webCalls{}
	a := &app{}
	// Readiness checks, asked by /readyz in this order; others (the store's
	// ping) are added here the same way.
	readiness := []webclient.Option{webclient.WithReadiness("draining", a.ready)}
	if st != nil {
		readiness = append(readiness, webclient.WithReadiness("store", st.Ping)) // the file answers
	}
	web, err := webclient.NewServer(cfg.Web, append(append([]webclient.Option{webclient.WithLogger(log), webclient.WithHandler(pages),
		webclient.WithControl(control{pages: pages, sip: srv}), webclient.WithAuthenticator(users.Checker(cfg.SIP.Domain)), webclient.WithGuard(g),
		webclient.WithCollectors(metrics.SIP(srv), metrics.Switchboard(sbStats{pages}), metrics.Clock(bridge.DefaultClock()), metrics.Webhooks(hooks)),
		webclient.WithVersion(version)}, // as voxgate version shows it (-ldflags -X main.version)
		readiness...), w.webOpts...)...)
	if err != nil {
		st.Close()
		return nil, err
	}
	rooms := bridge.RoomConfig{Rate: cfg.Rooms.Rate, Max: cfg.Rooms.Max}
	if cfg.Rooms.Tones != nil && !*cfg.Rooms.Tones {
		rooms.JoinTone, rooms.LeaveTone = bridge.NoTone, bridge.NoTone
	}
	sb := switchboard.New(switchboard.Config{Plan: plan, Dialers: []switchboard.Dialer{sipDialer{srv}, webDialer{web}},
		Rooms: rooms, RecordDir: cfg.Rooms.RecordDir, PromptDir: cfg.Rooms.PromptDir, Logger: log,
		Records: records, PlanFile: orDefault(cfg.Dialplan, configs.DialplanName), RoomEvents: roomEvents})
	calls.sb, pages.sb = sb, sb // before either server starts
	a.sb, a.sip, a.web, a.store, a.hooks = sb, srv, web, st, hooks
	return a, nil
}

// Start sends the webhooks waiting in the outbox, opens the SIP listeners,
// then the web server.
func (a *app) Start(ctx context.Context) error {
	a.hooks.Start()
	if err := a.sip.Start(ctx); err != nil {
		return err
	}
	if err := a.web.Start(ctx); err != nil {
		a.sip.Close()
		return err
	}
	return nil
}

// Close stops the servers and the switchboard. Idempotent.
func (a *app) Close() {
	a.closeOnce.Do(func() {
		a.sip.Close()
		a.web.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.sb.Close(ctx)
		// After the switchboard's last records (and their events); what is
		// not delivered within 3 s waits in the outbox for the next start.
		hctx, hcancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = a.hooks.Close(hctx)
		hcancel()
		_ = a.store.Close()
	})
}

// sipCalls hands SIP calls to the switchboard with their origin.
type sipCalls struct {
	sb    *switchboard.Switchboard
	ended func(*sip.Call)
}

func (h *sipCalls) HandleCall(ctx context.Context, c *sip.Call) {
	origin := c.Origin().Kind
	if origin == "trunk" {
		origin = "trunk:" + c.Origin().Name
	}
	h.sb.Handle(ctx, c, origin)
	if h.ended != nil {
		h.ended(c)
	}
}

// webCalls hands browser calls to the switchboard.
type webCalls struct{ sb *switchboard.Switchboard }

func (h *webCalls) HandleCall(ctx context.Context, c *webclient.Call) {
	if room := c.GuestRoom(); room != "" { // a guest link: its room, nothing else
		h.sb.JoinRoom(ctx, c, room, "guest")
		return
	}
	h.sb.Handle(ctx, c, "web")
}

// leg returns an answered call as a Leg (never a typed nil).
func leg[T switchboard.Leg](c T, err error) (switchboard.Leg, error) {
	if err != nil {
		return nil, err
	}
	return c, nil
}

// sipDialer rings registered phones and calls out through trunks.
type sipDialer struct{ srv *sip.Server }

func (d sipDialer) Devices(user string) []switchboard.Device {
	var out []switchboard.Device
	for _, b := range d.srv.ReachableBindings(user) { // qualify: not the unreachable ones
		out = append(out, func(ctx context.Context, from string) (switchboard.Leg, error) {
			return leg(d.srv.DialBinding(ctx, b, from))
		})
	}
	return out
}

func (d sipDialer) Trunks() []string {
	var out []string
	for _, t := range d.srv.TrunkStates() {
		out = append(out, t.Name)
	}
	return out
}

// TrunkUp is false for a trunk qualify marked down (a failover skips it).
func (d sipDialer) TrunkUp(trunk string) bool { return d.srv.TrunkUp(trunk) }

func (d sipDialer) DialTrunk(ctx context.Context, trunk, number, callerID string) (switchboard.Leg, error) {
	return leg(d.srv.DialTrunk(ctx, trunk, number, sip.DialOptions{CallerID: callerID}))
}

// webDialer rings a user's open pages (all at once: the first to answer
// takes the call).
type webDialer struct{ web *webclient.Server }

func (d webDialer) Devices(user string) []switchboard.Device {
	if !d.web.Online(user) {
		return nil
	}
	return []switchboard.Device{func(ctx context.Context, from string) (switchboard.Leg, error) {
		return leg(d.web.Ring(ctx, user, from))
	}}
}

func (webDialer) Trunks() []string { return nil }

func (webDialer) DialTrunk(context.Context, string, string, string) (switchboard.Leg, error) {
	return nil, switchboard.ErrUnknownTrunk
}

// control is the REST API: the switchboard's rooms and calls, the SIP
// side's registrations, trunks and counters.
type control struct {
	pages *webCalls // its switchboard, set before the web server starts
	sip   *sip.Server
}

func (k control) Rooms() []api.RoomInfo                     { return k.pages.sb.Rooms() }
func (k control) Room(name string) (api.RoomInfo, error)    { return k.pages.sb.Room(name) }
func (k control) Kick(room, leg string) error               { return k.pages.sb.Kick(room, leg) }
func (k control) Calls() []api.CallInfo                     { return k.pages.sb.Calls() }
func (k control) Hangup(id string) error                    { return k.pages.sb.Hangup(id) }
func (k control) Dial(room string, d api.DialRequest) error { return k.pages.sb.Dial(room, d) }
func (k control) Play(room string, p api.PlayRequest) error { return k.pages.sb.Play(room, p) }
func (k control) ChangeRoom(name string, ch api.RoomChange) (api.RoomInfo, error) {
	return k.pages.sb.ChangeRoom(name, ch)
}
func (k control) ChangeLeg(room, leg string, ch api.LegChange) (api.LegInfo, error) {
	return k.pages.sb.ChangeLeg(room, leg, ch)
}

// Registrations lists every registered SIP contact.
func (k control) Registrations() []api.Registration {
	var out []api.Registration
	for _, b := range k.sip.Registrations() {
		r := api.Registration{User: b.AOR, Contact: b.Contact, Source: b.Source, Transport: b.Transport,
			UserAgent: b.UserAgent, Expires: b.Expires.UTC().Truncate(time.Second)}
		h := k.sip.ContactHealth(b)
		r.Reachable, r.Qualified, r.LastError, r.RTTMS, r.Since = h.Reachable, h.Qualified, h.LastError, rttMS(h), since(h)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].User != out[j].User {
			return out[i].User < out[j].User
		}
		return out[i].Contact < out[j].Contact
	})
	return out
}

// Trunks shows voxgate's registration at each carrier.
func (k control) Trunks() []api.TrunkInfo {
	var out []api.TrunkInfo
	health := k.sip.TrunkHealth()
	for _, t := range k.sip.TrunkStates() {
		ti := api.TrunkInfo{Name: t.Name, Registered: t.Registered, Expires: t.Expires.UTC().Truncate(time.Second), LastError: t.LastError, Reachable: true}
		if h, ok := health[t.Name]; ok {
			ti.Reachable, ti.Qualified, ti.QualifyError, ti.RTTMS, ti.Since = h.Reachable, h.Qualified, h.LastError, rttMS(h), since(h)
		}
		out = append(out, ti)
	}
	return out
}

// rttMS is a qualify round trip in milliseconds (nil: none measured).
func rttMS(h sip.Health) *float64 {
	if h.RTT <= 0 {
		return nil
	}
	v := math.Round(float64(h.RTT.Microseconds())/10) / 100
	return &v
}

// since is when a qualify state began, for the API.
func since(h sip.Health) time.Time {
	if h.Since.IsZero() {
		return time.Time{}
	}
	return h.Since.UTC().Truncate(time.Millisecond)
}

// sbStats reads the switchboard's counters for /metrics (the switchboard
// is made after the web server).
type sbStats struct{ pages *webCalls }

func (k sbStats) Stats() switchboard.Stats { return k.pages.sb.Stats() }
