package switchboard

import (
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/voxgate/voxgate/api"
)

// moveChan is the channel on which leg id in room hears where it is moved
// (nil, which blocks for ever, when it has none).
func (s *Switchboard) moveChan(room, id string) chan string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctl := s.ctl[room]; ctl != nil {
		return ctl.moves[id]
	}
	return nil
}

// roomNameRe is what a room a leg is moved to may be called (the names the
// dialplan gives: digits, letters, . _ -).
var roomNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// pinCaller is a caller keying the PIN of a room.
type pinCaller struct {
	name  string
	since time.Time
	admit chan struct{} // closed by Admit
}

// enterPIN records that c keys room's PIN; the channel closes when an
// operator lets it in.
func (s *Switchboard) enterPIN(room string, c Leg) <-chan struct{} {
	p := &pinCaller{name: c.Caller(), since: time.Now(), admit: make(chan struct{})}
	s.mu.Lock()
	s.ctlLocked(room).atPIN[c.ID()] = p
	s.mu.Unlock()
	return p.admit
}

// leavePIN forgets that c keys room's PIN.
func (s *Switchboard) leavePIN(room string, c Leg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctl := s.ctl[room]; ctl != nil {
		delete(ctl.atPIN, c.ID())
		if len(ctl.legs) == 0 && len(ctl.atPIN) == 0 {
			delete(s.ctl, room)
		}
	}
}

// PINCallers lists the callers keying a room's PIN now, longest first.
func (s *Switchboard) PINCallers() []api.PINCaller {
	s.mu.Lock()
	out := []api.PINCaller{}
	for room, ctl := range s.ctl {
		for id, p := range ctl.atPIN {
			out = append(out, api.PINCaller{Leg: id, Name: p.name, Room: room, Since: p.since.UTC()})
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].Leg < out[j].Leg
	})
	return out
}

// Admit lets a caller in now: one keying the room's PIN joins as if it
// had keyed the PIN (not the moderator's); one waiting in the room for a
// moderator hears and is heard. A leg that does neither is left as it is.
func (s *Switchboard) Admit(roomName, id string) (api.LegInfo, error) {
	s.mu.Lock()
	var p *pinCaller
	if ctl := s.ctl[roomName]; ctl != nil {
		p = ctl.atPIN[id]
		delete(ctl.atPIN, id)
	}
	s.mu.Unlock()
	if p != nil {
		close(p.admit)
		s.log.Info("let in at the PIN", "room", roomName, "leg", id)
		return api.LegInfo{ID: id, Name: p.name}, nil
	}
	room, err := s.lookup(roomName)
	if err != nil {
		if ok, rerr := s.remoteCommand(roomName, RoomCommand{Leg: id, Admit: true}); ok { // hosted elsewhere (remoteview.go)
			return api.LegInfo{ID: id}, rerr
		}
		return api.LegInfo{}, err
	}
	s.mu.Lock()
	ctl := s.ctl[roomName]
	if ctl == nil || ctl.legs[id] == nil {
		s.mu.Unlock()
		return api.LegInfo{}, fmt.Errorf("leg %q in room %q: %w", id, roomName, api.ErrNotFound)
	}
	waited := ctl.waiting[id]
	delete(ctl.waiting, id) // its waiting tones stop
	s.mu.Unlock()
	if waited {
		_ = room.Mute(id, false)
		_ = room.Deafen(id, false)
		s.mutedChanged(roomName, id, false)
		s.log.Info("admitted without a moderator", "room", roomName, "leg", id)
	}
	for _, l := range s.roomInfo(room).Legs {
		if l.ID == id {
			return l, nil
		}
	}
	return api.LegInfo{}, fmt.Errorf("leg %q left room %q: %w", id, roomName, api.ErrNotFound)
}

// Move takes a leg out of its room into another (made if need be), as a
// plain participant of that room; its call goes on.
func (s *Switchboard) Move(roomName, id, to string) error {
	if !roomNameRe.MatchString(to) {
		return fmt.Errorf("room: %q is not a room name (1 to 64 of letters, digits, . _ -)", to)
	}
	if to == roomName {
		return fmt.Errorf("room: leg %q is in room %q already", id, to)
	}
	if _, err := s.lookup(roomName); err != nil {
		return err
	}
	if dest, ok := s.rooms.Lookup(to); ok && dest.Stats().Locked {
		return fmt.Errorf("room %q is locked: %w", to, api.ErrConflict)
	}
	ch := s.moveChan(roomName, id)
	if ch == nil {
		return fmt.Errorf("leg %q in room %q: %w", id, roomName, api.ErrNotFound)
	}
	select {
	case ch <- to:
	default:
		return fmt.Errorf("leg %q is being moved already: %w", id, api.ErrConflict)
	}
	// The leg moves on its own goroutine: answer once it is in the new room
	// (and listed there), so that what the caller does next (a transfer, a
	// kick) finds it where it asked it to be.
	deadline := time.Now().Add(moveWait)
	for time.Now().Before(deadline) {
		if dest, ok := s.rooms.Lookup(to); ok && stillIn(dest, id) {
			s.mu.Lock()
			ac := s.calls[id]
			listed := ac == nil || ac.info.Room == to
			s.mu.Unlock()
			if listed {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil // still on its way (a busy machine): it gets there
}

// moveWait is how long Move waits for the leg to arrive in its new room.
const moveWait = 2 * time.Second
