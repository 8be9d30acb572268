package switchboard

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
)

// RoomViews is the part of a Cluster that shows a room hosted on another
// node to a page that entered it here (over a cascade leg): who is in it,
// who talks, who is muted, and lets the page's moderator act on it. The
// entering node names a view with a token the cascade leg carries; the host
// tells that view what it would tell a page of its own in the room, and
// takes moderation commands on it.
type RoomViews interface {
	// WatchRoom (on the entering node, before the cascade leg is placed)
	// calls f with each view event the host sends for token, until stop;
	// send passes a command to the host.
	WatchRoom(ctx context.Context, token string, f func(RoomViewEvent)) (send func(RoomCommand) error, stop func(), err error)
	// ServeView (on the host) returns the watcher that sends the view
	// events of token, self being the cascade leg's id here, and calls do
	// with each command sent on token, until ctx ends; it sends the event
	// do returns (the command's "result") on the view, after the events
	// the command caused.
	ServeView(ctx context.Context, token, self string, do func(RoomCommand) RoomViewEvent) ViewWatcher
}

// ViewWatcher is the host's side of a view: told what a page would be
// told, and, every viewStateEvery while the view lives, the room's state
// and its legs' reception (a "stats" event).
type ViewWatcher interface {
	RoomWatcher
	RoomState(room string, st RoomState)
}

// viewStateEvery is how often a host tells a view its room's state. The
// host pushes it rather than answering the entering node's questions: the
// page asks every 3 s all the time it is in the room, so asking would be
// two messages (question and answer) where one does, and would answer
// from a state one question old. One message of some 60 bytes per leg
// every 2 s per remote page keeps Redis traffic small, and a lock or a
// recording started by anyone (a page here, the REST API, another node's
// moderator) reaches the remote page within the page's next question or
// the one after.
const viewStateEvery = 2 * time.Second

// RoomState is a room's state and its legs' reception as its host tells a
// view: what a page's "room-stats" shows.
type RoomState struct {
	Locked    bool           `json:"locked,omitempty"`
	Max       int            `json:"max,omitempty"`
	Recording string         `json:"recording,omitempty"`
	Legs      []LegReception `json:"legs,omitempty"`
}

// LegReception is one leg's reception as its host measures it: packets
// received and lost on the way to it, and their jitter.
type LegReception struct {
	Leg      string  `json:"leg"`
	Codec    string  `json:"codec,omitempty"`
	Packets  uint64  `json:"packets,omitempty"`
	Lost     int64   `json:"lost,omitempty"`
	JitterMS float64 `json:"jitter_ms,omitempty"`
}

// RoomViewEvent is what a host tells a view: the people in the room (Type
// "participants"), one participant's event (a RoomWatcher's Notify types),
// the room's state (Type "stats", State) or its answer to a command (Type
// "result": Command, the command's id; when refused, Error and Kind, one
// of the Refused kinds or "" for another error; after a change of the
// room, its State then). Self is the cascade leg's id on the host: the
// entering node shows it as its own page's leg.
type RoomViewEvent struct {
	Type    string        `json:"type"`
	Room    string        `json:"room"`
	Self    string        `json:"self"`
	People  []Participant `json:"people,omitempty"`
	P       Participant   `json:"p"`
	State   *RoomState    `json:"state,omitempty"`
	Command string        `json:"command,omitempty"`
	Error   string        `json:"error,omitempty"`
	Kind    string        `json:"kind,omitempty"`
}

// RoomCommand is a moderator's action sent to the host: change a leg
// (mute, deafen), kick it or admit it (one held for a moderator), or
// change the room (lock, maximum, recording). The host does it only when
// the cascade leg it comes through is a moderator of the room, as a
// moderator's page there would, and answers it on the view by its ID.
type RoomCommand struct {
	ID     string        `json:"id,omitempty"`
	Leg    string        `json:"leg,omitempty"`
	Change api.LegChange `json:"change"`
	Kick   bool          `json:"kick,omitempty"`
	Admit  bool          `json:"admit,omitempty"`
	// Room changes the room itself; Leg is then unused.
	Room *api.RoomChange `json:"room,omitempty"`
}

// do carries cmd out in room (here) for the cascade leg self, a moderator
// of it (or ErrNotModerator).
func (s *Switchboard) do(room, self string, cmd RoomCommand) error {
	if moderator, _ := s.moderation(room, self); !moderator {
		return ErrNotModerator
	}
	switch {
	case cmd.Room != nil:
		_, err := s.ChangeRoom(room, *cmd.Room)
		return err
	case cmd.Admit:
		_, err := s.Admit(room, cmd.Leg)
		return err
	case cmd.Kick:
		return s.Kick(room, cmd.Leg)
	}
	_, err := s.ChangeLeg(room, cmd.Leg, cmd.Change)
	return err
}

// Errors of remote rooms.
var (
	// ErrNotModerator: a command came through a cascade leg that is not a
	// moderator of its room.
	ErrNotModerator = errors.New("only a moderator of the room may do that")
)

// remoteView is a room hosted elsewhere as one page here sees it.
type remoteView struct {
	room, self string // the room, and the page's leg id here
	w          RoomWatcher
	send       func(RoomCommand) error
	wait       time.Duration // for the host's answer to a command (0: commandWait)
	mu         sync.Mutex
	host       string        // the cascade leg's id on the host
	people     []Participant // as the page sees them (its own leg under self)
	state      RoomState     // the host's last "stats" (its own leg under self)
	// pair is the call's bridge to the host here (nil until connected):
	// the page's own reception is measured on it, not on the host (where
	// the cascade leg's is that of the nodes' network).
	pair interface{ Stats() bridge.RoomStats }
	// pending are the commands waiting for the host's answer, by id
	// (remotecmd.go).
	pending map[string]chan RoomViewEvent
}

// handle passes a host's view event to the page, its own leg renamed.
func (v *remoteView) handle(e RoomViewEvent) {
	v.mu.Lock()
	v.host = e.Self
	if e.Type == "stats" || e.Type == "result" { // kept for the page's room-stats, not an event of the page's
		if e.State != nil {
			v.state = *e.State
			for i := range v.state.Legs {
				if v.state.Legs[i].Leg == e.Self {
					v.state.Legs[i].Leg = v.self
				}
			}
		}
		v.mu.Unlock()
		if e.Type == "result" {
			v.answered(e)
		}
		return
	}
	mine := func(p *Participant) {
		if p.Leg == e.Self {
			p.Leg, p.Kind = v.self, "browser"
		}
	}
	for i := range e.People {
		mine(&e.People[i])
	}
	mine(&e.P)
	switch e.Type {
	case "participants":
		v.people = e.People
	case "joined":
		v.people = append(slices.DeleteFunc(v.people, func(p Participant) bool { return p.Leg == e.P.Leg }), e.P)
	case "left", "kicked":
		v.people = slices.DeleteFunc(v.people, func(p Participant) bool { return p.Leg == e.P.Leg })
	case "muted", "unmuted":
		for i := range v.people {
			if v.people[i].Leg == e.P.Leg {
				v.people[i].Muted = e.Type == "muted"
			}
		}
	}
	v.mu.Unlock()
	if e.Type == "participants" {
		v.w.Participants(e.Room, e.People)
		return
	}
	v.w.Notify(e.Type, e.Room, e.P)
}

// info is the view as the REST API shows a room (what the host told):
// its state and each leg's reception as of the host's last "stats", the
// page's own reception as measured here.
func (v *remoteView) info() api.RoomInfo {
	v.mu.Lock()
	pair := v.pair
	v.mu.Unlock()
	var own *bridge.LegStats
	if pair != nil {
		for _, l := range pair.Stats().Legs {
			if l.ID == v.self {
				own = &l
			}
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	r := api.RoomInfo{Name: v.room, Legs: []api.LegInfo{}, Locked: v.state.Locked, Max: v.state.Max, Recording: v.state.Recording}
	for _, p := range v.people {
		l := api.LegInfo{ID: p.Leg, Name: p.Name, Muted: p.Muted, Moderator: p.Moderator}
		for _, q := range v.state.Legs {
			if q.Leg == p.Leg {
				l.Codec, l.Packets, l.Lost, l.JitterMS = q.Codec, q.Packets, q.Lost, q.JitterMS
			}
		}
		if p.Leg == v.self && own != nil {
			l.Codec, l.Packets, l.Lost, l.JitterMS = own.Codec, own.Network.Received, own.Network.Lost, ms(own.Network.Jitter)
		}
		r.Legs = append(r.Legs, l)
	}
	r.Participants, r.Remote = len(r.Legs), true
	return r
}

// connected tells the view of page leg id the call's bridge to the host.
func (s *Switchboard) connected(id string, pair interface{ Stats() bridge.RoomStats }) {
	s.mu.Lock()
	v := s.views[id]
	s.mu.Unlock()
	if v != nil {
		v.mu.Lock()
		v.pair = pair
		v.mu.Unlock()
	}
}

// viewToken names a new view for c when c shows its room (a page) and the
// cluster has views ("" : no view).
func (s *Switchboard) viewToken(c Leg) string {
	_, ok := c.(RoomWatcher)
	_, ok2 := s.cluster.(RoomViews)
	if !ok || !ok2 {
		return ""
	}
	return newID("view_")
}

// watchRemote starts the view token (viewToken) of a room hosted elsewhere
// for c; it returns the func that ends it.
func (s *Switchboard) watchRemote(ctx context.Context, c Leg, room, token string) func() {
	if token == "" {
		return func() {}
	}
	v := &remoteView{room: room, self: c.ID(), w: c.(RoomWatcher)}
	send, stop, err := s.cluster.(RoomViews).WatchRoom(ctx, token, v.handle)
	if err != nil {
		s.log.Warn("cluster: the page will not see the room's participants (hosted on another node)", "call_id", c.ID(), "room", room, "error", err)
		return func() {}
	}
	v.send = send
	s.mu.Lock()
	if s.views == nil {
		s.views = map[string]*remoteView{}
	}
	s.views[c.ID()] = v
	s.mu.Unlock()
	return func() {
		stop()
		s.mu.Lock()
		delete(s.views, c.ID())
		s.mu.Unlock()
	}
}

// serveView makes the cascade leg c (in room, here) tell the entering
// node's view token what a page would see, and do the commands its
// moderator sends; it returns the watcher for c (nil: no view) and the
// func that stops telling it the room's state (RoomState).
func (s *Switchboard) serveView(ctx context.Context, c Leg, room, token string) (RoomWatcher, func()) {
	rv, ok := s.cluster.(RoomViews)
	if !ok || token == "" {
		return nil, func() {}
	}
	w := rv.ServeView(ctx, token, c.ID(), func(cmd RoomCommand) RoomViewEvent {
		err := s.do(room, c.ID(), cmd)
		e := commandResult(room, c.ID(), cmd, err)
		if r, ok := s.rooms.Lookup(room); ok && err == nil && cmd.Room != nil {
			st := roomState(r.Stats()) // the view shows the change at once
			e.State = &st
		}
		return e
	})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(viewStateEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if r, ok := s.rooms.Lookup(room); ok {
				w.RoomState(room, roomState(r.Stats()))
			}
		}
	}()
	return w, func() {
		cancel()
		<-done
	}
}

// roomState is a room's state as a host tells a view.
func roomState(st bridge.RoomStats) RoomState {
	out := RoomState{Locked: st.Locked, Max: st.Max, Recording: st.Recording, Legs: make([]LegReception, 0, len(st.Legs))}
	for _, l := range st.Legs {
		out.Legs = append(out.Legs, LegReception{Leg: l.ID, Codec: l.Codec, Packets: l.Network.Received, Lost: l.Network.Lost, JitterMS: ms(l.Network.Jitter)})
	}
	return out
}

// RemoteRooms lists the rooms hosted on other nodes that pages here are
// in, as their hosts show them; a page's own leg has its id here.
func (s *Switchboard) RemoteRooms() []api.RoomInfo {
	s.mu.Lock()
	views := make([]*remoteView, 0, len(s.views))
	for _, v := range s.views {
		views = append(views, v)
	}
	s.mu.Unlock()
	var out []api.RoomInfo
	for _, v := range views {
		out = append(out, v.info())
	}
	return out
}

// remoteCommand sends cmd to the host of a room that is not here, through
// the view of a page here that moderates it, and returns the host's
// answer (remotecmd.go); ok is false when there is no such view.
func (s *Switchboard) remoteCommand(room string, cmd RoomCommand) (ok bool, err error) {
	v := s.moderatorView(room)
	if v == nil {
		return false, nil
	}
	v.mu.Lock()
	if cmd.Leg == v.self { // the page's own leg, by its id here
		cmd.Leg = v.host
	}
	v.mu.Unlock()
	return true, v.command(cmd)
}

// remoteRoomCommand is remoteCommand for a change of the room itself; info
// is the room as the view knows it once the host answered (its answer to
// a change carries the room's state).
func (s *Switchboard) remoteRoomCommand(room string, cmd RoomCommand) (info api.RoomInfo, ok bool, err error) {
	v := s.moderatorView(room)
	if v == nil {
		return api.RoomInfo{}, false, nil
	}
	err = v.command(cmd)
	return v.info(), true, err
}

// moderatorView is the view of a page here that moderates room (hosted
// elsewhere), or nil.
func (s *Switchboard) moderatorView(room string) *remoteView {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.views {
		if x.room == room && x.moderator() {
			return x
		}
	}
	return nil
}

// moderator is whether the page moderates the room (as its host says).
func (v *remoteView) moderator() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, p := range v.people {
		if p.Leg == v.self {
			return p.Moderator
		}
	}
	return false
}

// viewerKey carries, in a cascade leg's context on the host, the watcher
// that tells the entering node's view (serveView).
type viewerKey struct{}

// watcherOf is who is told of c's room: c itself when it shows its room (a
// page), the view of a cascade leg, or nil.
func watcherOf(ctx context.Context, c Leg) RoomWatcher {
	if w, ok := c.(RoomWatcher); ok {
		return w
	}
	if w, ok := ctx.Value(viewerKey{}).(RoomWatcher); ok {
		return w
	}
	return nil
}
