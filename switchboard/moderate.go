package switchboard

import (
	"context"
	"log/slog"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// roomCtl is what the switchboard keeps per room for moderators and the keypad
// (the bridge's room only mixes; who may do what is the dialplan's).
type roomCtl struct {
	legs       map[string]Leg // legs that joined through the switchboard
	moderators map[string]bool
	waiting    map[string]bool        // held, muted and deaf, until a moderator comes
	moves      map[string]chan string // a leg's way out to another room (Move)
	atPIN      map[string]*pinCaller  // callers keying the room's PIN, by leg id
	mutedAll   bool                   // a moderator muted everyone else
	wait, end  bool                   // wait_for_moderator, end_with_moderator
}

// Keypad and status tones (distinct from the join and leave beeps).
var (
	waitTone   = beeps(400, 2)
	lowTone    = beeps(350, 1) // muted, locked
	highTone   = beeps(950, 1) // unmuted, unlocked
	goodbyeTon = beeps(220, 3)
)

// beeps is n beeps of 150 ms at freq, 150 ms apart.
func beeps(freq float64, n int) *audio.WAV {
	w := &audio.WAV{Rate: 8000, Samples: make([]int16, n*2400)}
	for i := 0; i < n; i++ {
		(&audio.Tone{Rate: 8000, Freq: freq, Level: 0.15}).Fill(w.Samples[i*2400 : i*2400+1200])
	}
	return w
}

// ctlLocked returns the room's control state, creating it; s.mu is held.
func (s *Switchboard) ctlLocked(room string) *roomCtl {
	c := s.ctl[room]
	if c == nil {
		c = &roomCtl{legs: map[string]Leg{}, moderators: map[string]bool{}, waiting: map[string]bool{}, moves: map[string]chan string{}, atPIN: map[string]*pinCaller{}}
		s.ctl[room] = c
	}
	return c
}

// mustWait reports whether a caller joining room must wait for a moderator.
func (s *Switchboard) mustWait(room *bridge.Room, ra dialplan.RoomAction, moderator bool) bool {
	if moderator || !ra.WaitForModerator {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ctlLocked(room.Name()).moderators) == 0
}

// admit records a leg that joined; a moderator's arrival lets everyone who
// waited in.
func (s *Switchboard) admit(room *bridge.Room, c Leg, ra dialplan.RoomAction, moderator, wait bool, log *slog.Logger) {
	s.mu.Lock()
	ctl := s.ctlLocked(room.Name())
	ctl.legs[c.ID()] = c
	ctl.moves[c.ID()] = make(chan string, 1)
	ctl.wait = ctl.wait || ra.WaitForModerator
	ctl.end = ctl.end || ra.EndWithModerator
	var released []string
	if moderator {
		ctl.moderators[c.ID()] = true
		for id := range ctl.waiting {
			released = append(released, id)
		}
		clear(ctl.waiting)
	}
	if wait && len(ctl.moderators) > 0 { // a moderator came in since mustWait
		wait = false
		released = append(released, c.ID())
	}
	if wait {
		ctl.waiting[c.ID()] = true
	}
	s.mu.Unlock()
	for _, id := range released {
		_ = room.Mute(id, false)
		_ = room.Deafen(id, false)
		s.mutedChanged(room.Name(), id, false)
	}
	if moderator && len(released) > 0 {
		log.Info("the moderator is in: the conference starts", "room", room.Name(), "waited", len(released))
	}
	if wait {
		log.Info("waiting for a moderator", "room", room.Name())
		s.goOwned(func() { s.waitTones(room, c) })
	}
}

// waitTones plays the waiting tone to c every 10 s while it waits.
func (s *Switchboard) waitTones(room *bridge.Room, c Leg) {
	t := time.NewTicker(s.set.WaitToneEvery)
	defer t.Stop()
	for {
		s.mu.Lock()
		waiting := s.ctlLocked(room.Name()).waiting[c.ID()]
		s.mu.Unlock()
		if !waiting {
			return
		}
		_ = room.PlayToLeg(c.ID(), waitTone)
		select {
		case <-t.C:
		case <-c.Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// depart forgets a leg that left. When the last moderator leaves, the room
// ends (end_with_moderator: everyone is hung up after a goodbye tone) or
// the others wait again (wait_for_moderator).
func (s *Switchboard) depart(room *bridge.Room, c Leg, log *slog.Logger) {
	s.mu.Lock()
	ctl := s.ctlLocked(room.Name())
	wasModerator := ctl.moderators[c.ID()]
	delete(ctl.legs, c.ID())
	delete(ctl.moves, c.ID())
	delete(ctl.moderators, c.ID())
	delete(ctl.waiting, c.ID())
	var others []Leg
	lastModerator := wasModerator && len(ctl.moderators) == 0
	if lastModerator {
		for _, o := range ctl.legs {
			others = append(others, o)
		}
	}
	end, wait := ctl.end, ctl.wait
	if lastModerator && !end && wait {
		for _, o := range others {
			ctl.waiting[o.ID()] = true
		}
	}
	if len(ctl.legs) == 0 && len(ctl.atPIN) == 0 {
		delete(s.ctl, room.Name())
	}
	s.mu.Unlock()
	switch {
	case lastModerator && end && len(others) > 0:
		log.Info("the last moderator left: the conference ends", "room", room.Name(), "hung_up", len(others))
		for _, o := range others {
			_ = room.PlayToLeg(o.ID(), goodbyeTon)
		}
		s.goOwned(func() {
			t := time.NewTimer(time.Second)
			defer t.Stop()
			select {
			case <-t.C:
			case <-s.ctx.Done():
			}
			for _, o := range others {
				s.setCause(o, "system", 0, "the last moderator left")
				hangup(o)
			}
		})
	case lastModerator && wait && len(others) > 0:
		log.Info("the last moderator left: the others wait again", "room", room.Name(), "waiting", len(others))
		for _, o := range others {
			_ = room.Mute(o.ID(), true)
			_ = room.Deafen(o.ID(), true)
			s.mutedChanged(room.Name(), o.ID(), true)
			s.goOwned(func() { s.waitTones(room, o) })
		}
	}
}

// keypad runs the in-room keys of c until the returned func is called:
// *6 mutes or unmutes oneself; a moderator's *7 locks or unlocks the room
// and *8 mutes or unmutes everyone else. A tone confirms each (low: muted
// or locked; high: unmuted or unlocked).
func (s *Switchboard) keypad(ctx context.Context, room *bridge.Room, c Leg, log *slog.Logger) func() {
	keys, stop := digits(c)
	done := make(chan struct{})
	s.goOwned(func() {
		star := time.Time{}
		for {
			select {
			case d := <-keys:
				if d == '*' {
					star = time.Now()
					continue
				}
				if time.Since(star) > 3*time.Second {
					continue
				}
				star = time.Time{}
				s.keyCommand(room, c, d, log)
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	})
	return func() {
		stop()
		close(done)
	}
}

func (s *Switchboard) keyCommand(room *bridge.Room, c Leg, d rune, log *slog.Logger) {
	s.mu.Lock()
	ctl := s.ctlLocked(room.Name())
	moderator, waiting := ctl.moderators[c.ID()], ctl.waiting[c.ID()]
	s.mu.Unlock()
	confirm := func(on bool) {
		if on {
			_ = room.PlayToLeg(c.ID(), lowTone)
		} else {
			_ = room.PlayToLeg(c.ID(), highTone)
		}
	}
	switch {
	case d == '6' && !waiting:
		muted := false
		for _, l := range room.Stats().Legs {
			if l.ID == c.ID() {
				muted = l.Muted
			}
		}
		if room.Mute(c.ID(), !muted) == nil {
			log.Info("keypad: mute", "room", room.Name(), "muted", !muted)
			s.mutedChanged(room.Name(), c.ID(), !muted)
			confirm(!muted)
		}
	case d == '7' && moderator:
		locked := !room.Stats().Locked
		room.Lock(locked)
		log.Info("keypad: lock", "room", room.Name(), "locked", locked)
		confirm(locked)
	case d == '8' && moderator:
		s.mu.Lock()
		ctl.mutedAll = !ctl.mutedAll
		on := ctl.mutedAll
		var ids []string
		for id := range ctl.legs {
			if !ctl.moderators[id] && !ctl.waiting[id] {
				ids = append(ids, id)
			}
		}
		s.mu.Unlock()
		for _, id := range ids {
			if room.Mute(id, on) == nil {
				s.mutedChanged(room.Name(), id, on)
			}
		}
		log.Info("keypad: mute all", "room", room.Name(), "muted", on, "legs", len(ids))
		confirm(on)
	default:
		log.Debug("keypad: key ignored", "room", room.Name(), "moderator", moderator) // never the key: digits may be PINs
	}
}

// moderation tells the REST API whether a leg moderates or waits.
func (s *Switchboard) moderation(room, id string) (moderator, waiting bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctl := s.ctl[room]; ctl != nil {
		return ctl.moderators[id], ctl.waiting[id]
	}
	return false, false
}
