package webclient

import (
	"errors"
	"fmt"
)

// Errors of a page's moderation.
var (
	// ErrNotModerator: the page's call is not a moderator of its room.
	ErrNotModerator = errors.New("only a moderator of the room may do that (key the room's moderator PIN when joining)")
	// ErrBadAction: not a moderation action.
	ErrBadAction = errors.New("unknown moderation action")
)

// moderationActions are what a page that moderates its room may do, to a
// participant (leg) or to the room (lock, unlock).
var moderationActions = map[string]bool{"mute": true, "unmute": true, "deafen": true, "undeafen": true, "kick": true,
	"admit": true, "lock": true, "unlock": true, "record": true, "stop-recording": true, "max": true}

// RemoteRoomer is a Control that also knows rooms hosted on other nodes of
// a cluster that pages here are in (over a cascade leg): a page moderates
// such a room as a local one, and ChangeLeg and Kick reach its host.
type RemoteRoomer interface {
	RemoteRooms() []RoomInfo
}

// roomActions need no leg.
var roomActions = map[string]bool{"lock": true, "unlock": true, "record": true, "stop-recording": true, "max": true}

// moderate runs a moderation action of the page's call m.ID, which must be
// a moderator in its room (it keyed the moderator PIN): the same operations
// as the REST API's, on the caller's own room only, without a token.
func (g *signal) moderate(m Message) error {
	if g.s.control == nil {
		return errors.New("moderation is not available on this server")
	}
	if !moderationActions[m.Action] {
		return fmt.Errorf("%w %q (want mute, unmute, deafen, undeafen, kick, admit, lock, unlock, record, stop-recording or max)", ErrBadAction, m.Action)
	}
	if g.call(m.ID) == nil {
		return errors.New("no such call")
	}
	self := g.legID + "/" + m.ID
	var room *RoomInfo
	moderator := false
	rooms := g.s.control.Rooms()
	if rr, ok := g.s.control.(RemoteRoomer); ok { // a room hosted on another node, seen from here
		rooms = append(rooms, rr.RemoteRooms()...)
	}
	for _, r := range rooms {
		for _, l := range r.Legs {
			if l.ID == self {
				room, moderator = &r, l.Moderator
			}
		}
		if room != nil {
			break
		}
	}
	if room == nil {
		return errors.New("this call is in no room")
	}
	if !moderator {
		return ErrNotModerator
	}
	switch m.Action {
	case "lock", "unlock":
		on := m.Action == "lock"
		_, err := g.s.control.ChangeRoom(room.Name, RoomChange{Locked: &on})
		return err
	case "record", "stop-recording":
		on := m.Action == "record"
		_, err := g.s.control.ChangeRoom(room.Name, RoomChange{Recording: &on})
		return err
	case "max":
		_, err := g.s.control.ChangeRoom(room.Name, RoomChange{Max: m.Max})
		return err
	case "admit":
		// A caller keying the room's PIN is not among its legs: the room's
		// Admit looks for the leg in that room only (or its host does).
		ops, ok := g.s.control.(RoomOps)
		if !ok {
			return errors.New("admitting is not available on this server")
		}
		_, err := ops.Admit(room.Name, m.Leg)
		if err == nil {
			g.log.Info("page moderation", "room", room.Name, "action", m.Action, "leg", m.Leg)
		}
		return err
	}
	in := false
	for _, l := range room.Legs {
		in = in || l.ID == m.Leg
	}
	if !in {
		return fmt.Errorf("leg %q is not in room %s", m.Leg, room.Name)
	}
	on := m.Action == "mute" || m.Action == "deafen"
	var err error
	switch m.Action {
	case "mute", "unmute":
		_, err = g.s.control.ChangeLeg(room.Name, m.Leg, LegChange{Muted: &on})
	case "deafen", "undeafen":
		_, err = g.s.control.ChangeLeg(room.Name, m.Leg, LegChange{Deaf: &on})
	case "kick":
		err = g.s.control.Kick(room.Name, m.Leg)
	}
	if err == nil {
		g.log.Info("page moderation", "room", room.Name, "action", m.Action, "leg", m.Leg)
	}
	return err
}
