package switchboard

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/voxgate/voxgate/api"
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
	// with each command sent on token, until ctx ends.
	ServeView(ctx context.Context, token, self string, do func(RoomCommand) error) RoomWatcher
}

// RoomViewEvent is what a host tells a view: the people in the room (Type
// "participants") or one participant's event (a RoomWatcher's Notify
// types). Self is the cascade leg's id on the host: the entering node shows
// it as its own page's leg.
type RoomViewEvent struct {
	Type   string        `json:"type"`
	Room   string        `json:"room"`
	Self   string        `json:"self"`
	People []Participant `json:"people,omitempty"`
	P      Participant   `json:"p"`
}

// RoomCommand is a moderator's action sent to the host: change a leg
// (mute, deafen), kick it or admit it (one held for a moderator), or
// change the room (lock, maximum, recording). The host does it only when
// the cascade leg it comes through is a moderator of the room, as a
// moderator's page there would.
type RoomCommand struct {
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
	mu         sync.Mutex
	host       string        // the cascade leg's id on the host
	people     []Participant // as the page sees them (its own leg under self)
}

// handle passes a host's view event to the page, its own leg renamed.
func (v *remoteView) handle(e RoomViewEvent) {
	v.mu.Lock()
	v.host = e.Self
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

// info is the view as the REST API shows a room (what the host told).
func (v *remoteView) info() api.RoomInfo {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := api.RoomInfo{Name: v.room, Legs: []api.LegInfo{}}
	for _, p := range v.people {
		r.Legs = append(r.Legs, api.LegInfo{ID: p.Leg, Name: p.Name, Muted: p.Muted, Moderator: p.Moderator})
	}
	r.Participants, r.Remote = len(r.Legs), true
	return r
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
// moderator sends; it returns the watcher for c.
func (s *Switchboard) serveView(ctx context.Context, c Leg, room, token string) RoomWatcher {
	rv, ok := s.cluster.(RoomViews)
	if !ok || token == "" {
		return nil
	}
	return rv.ServeView(ctx, token, c.ID(), func(cmd RoomCommand) error { return s.do(room, c.ID(), cmd) })
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
// the view of a page here that moderates it; ok is false when there is none.
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
	return true, v.send(cmd)
}

// remoteRoomCommand is remoteCommand for a change of the room itself; info
// is the room as the view knows it (the host does the change on its own
// time: the answer does not wait for it).
func (s *Switchboard) remoteRoomCommand(room string, cmd RoomCommand) (info api.RoomInfo, ok bool, err error) {
	v := s.moderatorView(room)
	if v == nil {
		return api.RoomInfo{}, false, nil
	}
	return v.info(), true, v.send(cmd)
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
