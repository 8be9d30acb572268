package main

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/audio/opus"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/dialplan"
	"github.com/voxgate/voxgate/events"
	"github.com/voxgate/voxgate/internal/guard"
	"github.com/voxgate/voxgate/internal/metrics"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/stream"
	"github.com/voxgate/voxgate/switchboard"
	"github.com/voxgate/voxgate/webclient"
)

// Both call types are switchboard legs, with the same signatures.
var (
	_ switchboard.Leg            = (*sip.Call)(nil)
	_ switchboard.Leg            = (*webclient.Call)(nil)
	_ switchboard.RoomWatcher    = (*webclient.Call)(nil)
	_ switchboard.ReasonedHangup = (*webclient.Call)(nil)
	_ switchboard.EarlyMediaLeg  = (*sip.Call)(nil)
	_ switchboard.EarlyMediaLeg  = (*webclient.Call)(nil)
	_ bridge.Leg                 = (*sip.EarlyMedia)(nil)
	_ switchboard.SelfMuter      = (*webclient.Call)(nil)
	_ bridge.QueuedWriter        = (*webclient.Call)(nil) // pion writes may wait: the room queues them
	_ bridge.ReceiveReporter     = (*sip.Call)(nil)
	_ bridge.ReceiveReporter     = (*webclient.Call)(nil)
	_ bridge.RemoteLossReporter  = (*sip.Call)(nil)
	_ bridge.RemoteLossReporter  = (*webclient.Call)(nil)
	_ bridge.DTXReceiver         = (*sip.Call)(nil)
	_ bridge.DTXReceiver         = (*webclient.Call)(nil)
	_ bridge.DTMFSender          = (*sip.Call)(nil)
	_ webclient.Control          = control{}
	_ webclient.RemoteRoomer     = control{}
	_ webclient.ClusterRoomer    = control{}
)

// app is voxgate wired together: the switchboard between the SIP side and
// the web side. Nothing listens until Start.
type app struct {
	sb        *switchboard.Switchboard
	sip       *sip.Server
	web       *webclient.Server
	store     *dataStore       // nil without data_dir
	hooks     *events.Webhooks // nil without webhooks
	cluster   *cluster         // nil without cluster.redis
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
	// The codec registry is the process's: the last wired config's
	// complexity holds for the encoders made from then on.
	if err := opus.SetComplexity(cmp.Or(cfg.Rooms.OpusComplexity, opus.DefaultComplexity)); err != nil {
		return nil, err
	}
	st, err := openStore(cfg, log) // store.go
	if err != nil {
		return nil, err
	}
	var records switchboard.CallRecords
	var hooks *events.Webhooks // nil: no webhooks (Publish does nothing)
	var roomEvents func(bridge.Event, string)
	var transfers func(switchboard.TransferOutcome)
	var streamEvents func(switchboard.StreamEvent)
	var cl *cluster // nil: one node alone
	if cfg.Cluster.Redis != "" {
		if cl, err = newCluster(cfg.Cluster, log); err != nil {
			st.Close()
			return nil, err
		}
	}
	if cl != nil { // a cascade leg is believed from the cluster's nodes only
		w.sipOpts = append(w.sipOpts, sip.WithCascadeFrom(cl.trusted))
	}
	if st == nil && cl != nil { // registrations in Redis, nothing else kept
		w.sipOpts = append(w.sipOpts, sip.WithLocationStore(redisLocations{cl.r, cfg.Cluster.Advertise}))
	}
	if st != nil {
		var locations sip.LocationStore = sipLocations{st.SQLite}
		if cl != nil { // shared by the nodes, instead of this node's file
			locations = redisLocations{cl.r, cfg.Cluster.Advertise}
		}
		records = st.SQLite
		if len(cfg.Webhooks) > 0 {
			var box events.Outbox = st.SQLite
			if cl != nil { // in Redis, so that a live node delivers what a dead one left
				box = cl.webhookOutbox(cfg.Webhooks)
			}
			if hooks, err = events.New(cfg.Webhooks, box, events.WithLogger(log)); err != nil {
				st.Close()
				cl.close()
				return nil, err
			}
			records, locations = newHookedRecords(records, hooks), newHookedLocations(locations, hooks)
			roomEvents, transfers, streamEvents = roomEvent(hooks), transferEvent(hooks), streamEvent(hooks)
			w.sipOpts = append(w.sipOpts, sip.WithTrunkObserver(trunkEvent(hooks)), sip.WithQualifyObserver(qualifyEvent(hooks)))
		}
		w.sipOpts = append(w.sipOpts, sip.WithLocationStore(locations))
		w.webOpts = append(w.webOpts, webclient.WithHistory(st.SQLite))
		if cfg.Web.GuestKey == "" { // guest links outlive a restart
			key, err := st.guestKey(cfg.DataDir)
			if err != nil {
				st.Close()
				cl.close()
				return nil, err
			}
			w.webOpts = append(w.webOpts, webclient.WithGuestKey(key))
		}
	}
	calls := &sipCalls{ended: w.ended}
	g := guard.New(cfg.SIP.Guard, log) // one guard for SIP, sign-in, API and WebSocket
	wrtc := sipWebSocket(cfg, &w)      // SIP over WebSocket on the web server (sipws.go)
	srv, err := sip.NewServer(cfg.SIP, append([]sip.Option{sip.WithLogger(log), sip.WithUsers(users), sip.WithHandler(calls), sip.WithReferrer(calls), sip.WithGuard(g)}, w.sipOpts...)...)
	if err != nil {
		st.Close()
		cl.close()
		return nil, err
	}
	a := &app{}
	pages := &webCalls{draining: a.draining.Load}
	// Readiness checks, asked by /readyz in this order; others (the store's
	// ping) are added here the same way.
	readiness := []webclient.Option{webclient.WithReadiness("draining", a.ready)}
	if st != nil {
		readiness = append(readiness, webclient.WithReadiness("store", st.Ping)) // the file answers
	}
	if cl != nil {
		readiness = append(readiness, webclient.WithReadiness("redis", cl.ready)) // the cluster's shared state
		// A user's open pages here are told to the other nodes: their calls
		// for the user ring them too (clusterpages.go).
		w.webOpts = append(w.webOpts, webclient.WithPresence(cl.presence))
	}
	web, err := webclient.NewServer(cfg.Web, append(append([]webclient.Option{webclient.WithLogger(log), webclient.WithHandler(pages),
		webclient.WithControl(control{pages: pages, sip: srv, cl: cl}), webclient.WithAuthenticator(users.Checker(cfg.SIP.Domain)), webclient.WithGuard(g),
		webclient.WithCollectors(metrics.SIP(srv), metrics.Switchboard(sbStats{pages}), metrics.Clock(bridge.DefaultClock()), metrics.Webhooks(hooks), metrics.Streams(stream.Totals)),
		webclient.WithVersion(version)}, // as voxgate version shows it (-ldflags -X main.version)
		readiness...), append(w.webOpts, wrtc.handler(srv)...)...)...)
	if err != nil {
		st.Close()
		cl.close()
		return nil, err
	}
	wrtc.web = web // before either server starts
	rooms := bridge.RoomConfig{Rate: cfg.Rooms.Rate, Max: cfg.Rooms.Max}
	if cfg.Rooms.Tones != nil && !*cfg.Rooms.Tones {
		rooms.JoinTone, rooms.LeaveTone = bridge.NoTone, bridge.NoTone
	}
	if cl != nil {
		roomEvents = chainRoomEvents(roomEvents, cl.roomEvent)
	}
	sb := switchboard.New(switchboard.Config{Plan: plan, Dialers: []switchboard.Dialer{sipDialer{srv, cl}, webDialer{web}},
		Rooms: rooms, RecordDir: cfg.Rooms.RecordDir, PromptDir: cfg.Rooms.PromptDir, Logger: log,
		Records: records, PlanFile: orDefault(cfg.Dialplan, configs.DialplanName), RoomEvents: roomEvents,
		Ringback: cfg.Ringback, Transfers: transfers, Cluster: sbCluster(cl, srv), Streams: botStreams(log), StreamEvents: streamEvents})
	calls.sb, pages.sb = sb, sb // before either server starts
	a.sb, a.sip, a.web, a.store, a.hooks, a.cluster = sb, srv, web, st, hooks, cl
	if cl != nil {
		cl.rooms, cl.draining, cl.local, cl.pages = roomsWithLegs(sb), a.draining.Load, srv.Registrations, web.OnlineUsers
	}
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
	if a.cluster != nil {
		a.cluster.start()
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
		// not delivered within 3 s waits in the outbox for the next start
		// (in a cluster, for another node: the outbox is in Redis, so the
		// cluster's connection closes after).
		hctx, hcancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = a.hooks.Close(hctx)
		hcancel()
		if a.cluster != nil {
			a.cluster.close() // releases this node's rooms
		}
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
	switch {
	case origin == "cascade": // another node's participant in a room hosted here
		cs := c.Cascade()
		h.sb.HostRoom(ctx, c, switchboard.CascadeRoom{Name: cs.Room, Moderator: cs.Moderator, WaitForModerator: cs.WaitForModerator, EndWithModerator: cs.EndWithModerator, View: cs.View}, origin)
	case origin == "forward": // another node's call for a user whose WebSocket is here
		h.sb.RingHere(ctx, c, c.Origin().Name, origin)
	case c.Replaces() != "": // an INVITE with Replaces (RFC 3891)
		h.sb.Replace(ctx, c, origin, c.Replaces())
	default:
		h.sb.Handle(ctx, c, origin)
	}
	if h.ended != nil {
		h.ended(c)
	}
}

// Refer hands a phone's transfer (REFER) to the switchboard: the phone is
// the transferor, its partner (or its room) the transferee.
func (h *sipCalls) Refer(c *sip.Call, r sip.Refer, done func(error)) error {
	return h.sb.StartTransfer(c.ID(), switchboard.Transfer{To: r.Target.User, Replaces: r.ReplacesCall, By: r.ReferredBy}, done)
}

var _ sip.Referrer = (*sipCalls)(nil)

// webCalls hands browser calls to the switchboard.
type webCalls struct {
	sb *switchboard.Switchboard
	// draining: SIGTERM; a page's new call is refused like a SIP one, so
	// no room on a draining node takes a new leg.
	draining func() bool
}

func (h *webCalls) HandleCall(ctx context.Context, c *webclient.Call) {
	if h.draining != nil && h.draining() {
		c.Reject(503, "Service Unavailable (draining)")
		return
	}
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
type sipDialer struct {
	srv *sip.Server
	cl  *cluster // nil: one node alone
}

func (d sipDialer) Devices(user string) []switchboard.Device {
	var out []switchboard.Device
	bs := d.srv.ReachableBindings(user) // qualify: not the unreachable ones
	var forward []string
	if d.cl != nil { // and those registered through other nodes
		var others []sip.Binding
		others, forward = d.cl.bindings(user, d.srv.Bindings(user))
		bs = append(bs, others...)
		for _, node := range d.cl.pageNodes(user) { // the user's open pages there
			if !slices.Contains(forward, node) {
				forward = append(forward, node)
			}
		}
	}
	for _, b := range bs {
		out = append(out, func(ctx context.Context, from string) (switchboard.Leg, error) {
			return leg(d.srv.DialBinding(ctx, b, from, earlyOptions(ctx)))
		})
	}
	for _, node := range forward { // the node holding the user's WebSocket or pages rings them
		out = append(out, func(ctx context.Context, from string) (switchboard.Leg, error) {
			return leg(d.srv.DialNodeUser(ctx, node, user, from))
		})
	}
	return out
}

// DevicesHere rings, for a call another node forwarded here, the user's
// registrations over WebSocket on this node (the other node rang the
// others itself).
func (d sipDialer) DevicesHere(user string) []switchboard.Device {
	var out []switchboard.Device
	for _, b := range d.srv.ReachableBindings(user) {
		if !strings.HasPrefix(strings.ToUpper(b.Transport), "WS") {
			continue
		}
		out = append(out, func(ctx context.Context, from string) (switchboard.Leg, error) {
			return leg(d.srv.DialBinding(ctx, b, from, earlyOptions(ctx)))
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
	o := earlyOptions(ctx)
	o.CallerID = callerID
	return leg(d.srv.DialTrunk(ctx, trunk, number, o))
}

// earlyOptions passes the far end's early media to the switchboard's
// DialTrace of ctx.
func earlyOptions(ctx context.Context) sip.DialOptions {
	t := switchboard.ContextDialTrace(ctx)
	if t == nil || t.EarlyMedia == nil {
		return sip.DialOptions{}
	}
	return sip.DialOptions{OnEarlyMedia: func(m *sip.EarlyMedia) { t.EarlyMedia(m) }}
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
	cl    *cluster // nil: one node alone
}

// Rooms lists this node's rooms (in a cluster, each names this node).
func (k control) Rooms() []api.RoomInfo {
	rooms := k.pages.sb.Rooms()
	if k.cl != nil {
		for i := range rooms {
			rooms[i].Node = k.cl.cfg.NodeID
		}
	}
	return rooms
}

// ClusterRooms lists the rooms other live nodes host (none alone).
func (k control) ClusterRooms() []api.RoomInfo {
	if k.cl == nil {
		return nil
	}
	return k.cl.otherRooms()
}

func (k control) RemoteRooms() []api.RoomInfo               { return k.pages.sb.RemoteRooms() }
func (k control) Room(name string) (api.RoomInfo, error)    { return k.pages.sb.Room(name) }
func (k control) Kick(room, leg string) error               { return k.pages.sb.Kick(room, leg) }
func (k control) Calls() []api.CallInfo                     { return k.pages.sb.Calls() }
func (k control) Hangup(id string) error                    { return k.pages.sb.Hangup(id) }
func (k control) Dial(room string, d api.DialRequest) error { return k.pages.sb.Dial(room, d) }
func (k control) Play(room string, p api.PlayRequest) error { return k.pages.sb.Play(room, p) }

// Transfer moves a live leg to a number, user or room (transfer.go in the switchboard).
func (k control) Transfer(id string, r api.TransferRequest) error {
	return k.pages.sb.TransferLeg(id, r)
}

var _ webclient.Transferer = control{}

// StartCallStream forks a live call's audio to a bot (roomstream.go and
// fork.go in the switchboard).
func (k control) StartCallStream(id string, r api.StreamRequest) (api.StreamInfo, error) {
	return k.pages.sb.StartCallStream(id, r)
}

// StartRoomStream adds a bot to a room as a participant.
func (k control) StartRoomStream(room string, r api.StreamRequest) (api.StreamInfo, error) {
	return k.pages.sb.StartRoomStream(room, r)
}

// Streams lists the streams on calls and rooms.
func (k control) Streams() []api.StreamInfo { return k.pages.sb.Streams() }

// StopStream stops one.
func (k control) StopStream(id string) (api.StreamInfo, error) { return k.pages.sb.StopStream(id) }

var _ webclient.Streamer = control{}

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

// sbCluster is the switchboard's view of the cluster (nil: one node alone).
func sbCluster(cl *cluster, srv *sip.Server) switchboard.Cluster {
	if cl == nil {
		return nil
	}
	return clusterRooms{cl, srv}
}
