package switchboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// roomAction answers and joins a conference room, asking its PIN first
// when it has one.
func (s *Switchboard) roomAction(ctx context.Context, c Leg, ra dialplan.RoomAction, log *slog.Logger) {
	if err := s.answer(ctx, c); err != nil {
		return
	}
	moderator := false
	if ra.PIN != "" {
		var ok bool
		if ok, moderator = s.askPIN(ctx, c, dialplan.PINAction{Room: ra, Tries: 3}, log); !ok {
			return
		}
	}
	s.joinRoom(ctx, c, ra, moderator, log)
}

// room returns the room for a room action, created with its options.
func (s *Switchboard) room(ra dialplan.RoomAction) (*bridge.Room, error) {
	return s.rooms.GetWith(ra.Name, func(cfg *bridge.RoomConfig) {
		if ra.Rate != 0 {
			cfg.Rate = ra.Rate
		}
		if ra.Max != 0 {
			cfg.Max = ra.Max
		}
	})
}

// joinRoom puts c into the room until its call ends (or ctx does), and
// into another room each time it is moved (Move).
func (s *Switchboard) joinRoom(ctx context.Context, c Leg, ra dialplan.RoomAction, moderator bool, log *slog.Logger) {
	for {
		to := s.joinRoomOnce(ctx, c, ra, moderator, log)
		if to == "" {
			return
		}
		log.Info("moved to another room", "from", ra.Name, "room", to)
		s.movedTo(c, to)                                     // the active call shows (and a transfer finds) its new room
		ra, moderator = dialplan.RoomAction{Name: to}, false // the new room's defaults, as a plain participant
	}
}

// joinRoomOnce puts c into one room until its call ends, or until it is
// moved: then it returns the room it goes to. A room hosted on another
// node of a cluster is reached over a cascade leg instead (cascade.go).
func (s *Switchboard) joinRoomOnce(ctx context.Context, c Leg, ra dialplan.RoomAction, moderator bool, log *slog.Logger) (moveTo string) {
	if s.cascade(ctx, c, ra, moderator, log) { // hosted on another node: bridged to it
		return ""
	}
	w := watcherOf(ctx, c)
	s.hub.enter(ra.Name, c, w) // before joining: the joined event names the caller
	defer s.hub.leave(ra.Name, c)
	var room *bridge.Room
	var wait bool
	for {
		var err error
		if room, err = s.room(ra); err != nil {
			log.Error("room unavailable", "room", ra.Name, "error", err)
			c.Hangup(ctx)
			return ""
		}
		wait = s.mustWait(room, ra, moderator)
		err = room.Join(c, bridge.JoinOptions{Muted: wait, Deaf: wait})
		if errors.Is(err, bridge.ErrClosed) { // released as it emptied: get it afresh
			continue
		}
		if err != nil {
			log.Info("room refused the call", "room", room.Name(), "error", err)
			c.Hangup(ctx)
			return ""
		}
		break
	}
	s.admit(room, c, ra, moderator, wait, log)
	s.roomEntered(room, ra, log) // its bot, if the room has one (roomstream.go)
	defer s.depart(room, c, log)
	s.legJoined(room.Name(), c)
	defer s.legLeft(room.Name(), c)
	stopKeys := s.keypad(ctx, room, c, log)
	defer stopKeys()
	defer s.showSelfMute(room.Name(), c)()
	s.hub.participants(room, w)
	if (s.recordDir != "" || ra.Record) && !room.Recording() {
		if _, err := s.record(room); err != nil && !errors.Is(err, bridge.ErrRecording) {
			log.Error("recording failed to start", "room", room.Name(), "error", err)
		}
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		s.endedByContext(ctx, c)
		hangup(c)
	case moveTo = <-s.moveChan(room.Name(), c.ID()):
	}
	_ = room.Leave(c.ID()) // now, not when the room notices the call ended
	s.roomLeft(room)       // nobody but bots left: they go too
	if room.Len() == 0 {   // the last one out ends the recording, whoever started it
		_ = s.stopRecording(room)
	}
	s.rooms.Release(room.Name()) // an empty room is forgotten
	return moveTo
}

// record starts recording room's mix in the recording directory (the
// working directory when none is set); it returns the file.
func (s *Switchboard) record(room *bridge.Room) (string, error) {
	dir := s.recordDir
	if dir == "" {
		dir = "."
	}
	name := filepath.Join(dir, fmt.Sprintf("room-%s-%s.wav", room.Name(), time.Now().UTC().Format("20060102T150405Z")))
	if err := room.Record(name, false); err != nil {
		return name, err
	}
	s.recordingStarted(room.Name(), name)
	return name, nil
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
