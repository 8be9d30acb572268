package switchboard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// Gains a leg may be given through the API, in dB.
const minGainDB, maxGainDB = -40, 20

func (s *Switchboard) roomInfo(room *bridge.Room) api.RoomInfo {
	st := room.Stats()
	info := api.RoomInfo{Name: st.Name, Rate: st.Rate, Locked: st.Locked, Max: st.Max, Recording: st.Recording, Legs: []api.LegInfo{}}
	s.hub.mu.Lock()
	for _, l := range st.Legs {
		info.Legs = append(info.Legs, legInfo(l, s.hub.name(l.ID)))
	}
	s.hub.mu.Unlock()
	for i := range info.Legs {
		info.Legs[i].Moderator, info.Legs[i].Waiting = s.moderation(st.Name, info.Legs[i].ID)
	}
	info.Participants = len(info.Legs)
	return info
}

func legInfo(l bridge.LegStats, name string) api.LegInfo {
	return api.LegInfo{ID: l.ID, Name: name, Codec: l.Codec, Joined: l.Joined.UTC(), Muted: l.Muted, Deaf: l.Deaf, Talking: l.Talking,
		GainDB: round1(l.GainDB), LevelDBFS: round1(l.Level), Packets: l.Network.Received, Lost: l.Network.Lost, Concealed: l.Jitter.Concealed,
		JitterMS: ms(l.Network.Jitter), BufferMS: ms(l.Jitter.Depth), Sent: l.Sent, Dropped: l.Dropped}
}

func round1(v float64) float64 {
	if v < -200 { // the level of digital silence
		return -200
	}
	return float64(int64(v*10)) / 10
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Rooms lists the rooms somebody is in (or that record).
func (s *Switchboard) Rooms() []api.RoomInfo {
	var out []api.RoomInfo
	for _, room := range s.rooms.List() {
		if room.Len() > 0 || room.Recording() {
			out = append(out, s.roomInfo(room))
		}
	}
	return out
}

func (s *Switchboard) lookup(name string) (*bridge.Room, error) {
	room, ok := s.rooms.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("room %q: %w (rooms exist once somebody joined)", name, api.ErrNotFound)
	}
	return room, nil
}

// Room shows one room.
func (s *Switchboard) Room(name string) (api.RoomInfo, error) {
	room, err := s.lookup(name)
	if err != nil {
		return api.RoomInfo{}, err
	}
	return s.roomInfo(room), nil
}

// ChangeRoom locks or unlocks a room, sets its maximum, starts or stops its
// recording.
func (s *Switchboard) ChangeRoom(name string, ch api.RoomChange) (api.RoomInfo, error) {
	if ch.Max != nil && *ch.Max < 0 {
		return api.RoomInfo{}, fmt.Errorf("max: %d is negative (0 means no limit)", *ch.Max)
	}
	room, err := s.lookup(name)
	if err != nil {
		if info, ok, rerr := s.remoteRoomCommand(name, RoomCommand{Room: &ch}); ok { // hosted elsewhere (remoteview.go)
			return info, rerr
		}
		return api.RoomInfo{}, err
	}
	if ch.Locked != nil {
		room.Lock(*ch.Locked)
	}
	if ch.Max != nil {
		room.SetMax(*ch.Max)
	}
	if ch.Recording != nil {
		if *ch.Recording {
			if _, err := s.record(room); err != nil {
				if errors.Is(err, bridge.ErrRecording) {
					return api.RoomInfo{}, fmt.Errorf("room %q records already: %w", name, api.ErrConflict)
				}
				return api.RoomInfo{}, err
			}
		} else if err := s.stopRecording(room); err != nil {
			return api.RoomInfo{}, err
		}
	}
	return s.roomInfo(room), nil
}

// ChangeLeg mutes, deafens or sets the gain of a leg.
func (s *Switchboard) ChangeLeg(roomName, id string, ch api.LegChange) (api.LegInfo, error) {
	room, err := s.lookup(roomName)
	if err != nil {
		if ok, rerr := s.remoteCommand(roomName, RoomCommand{Leg: id, Change: ch}); ok { // hosted elsewhere (remoteview.go)
			return api.LegInfo{ID: id}, rerr
		}
		return api.LegInfo{}, err
	}
	if ch.GainDB != nil && (*ch.GainDB < minGainDB || *ch.GainDB > maxGainDB) {
		return api.LegInfo{}, fmt.Errorf("gain_db: %g is outside %d..%d", *ch.GainDB, minGainDB, maxGainDB)
	}
	apply := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	if ch.Muted != nil {
		apply(func() error { return room.Mute(id, *ch.Muted) })
		if err == nil {
			s.mutedChanged(roomName, id, *ch.Muted)
		}
	}
	if ch.Deaf != nil {
		apply(func() error { return room.Deafen(id, *ch.Deaf) })
	}
	if ch.GainDB != nil {
		apply(func() error { return room.SetGain(id, *ch.GainDB) })
	}
	if err == nil && ch.Muted == nil && ch.Deaf == nil && ch.GainDB == nil && !stillIn(room, id) {
		err = bridge.ErrNoLeg
	}
	if errors.Is(err, bridge.ErrNoLeg) {
		return api.LegInfo{}, fmt.Errorf("leg %q in room %q: %w", id, roomName, api.ErrNotFound)
	}
	if err != nil {
		return api.LegInfo{}, err
	}
	for _, l := range s.roomInfo(room).Legs {
		if l.ID == id {
			return l, nil
		}
	}
	return api.LegInfo{}, fmt.Errorf("leg %q left room %q: %w", id, roomName, api.ErrNotFound)
}

// Kick removes a leg from its room and hangs its call up.
func (s *Switchboard) Kick(roomName, id string) error {
	room, err := s.lookup(roomName)
	if err != nil {
		if ok, rerr := s.remoteCommand(roomName, RoomCommand{Leg: id, Kick: true}); ok { // hosted elsewhere (remoteview.go)
			return rerr
		}
		return err
	}
	if err := room.Kick(id); err != nil {
		if errors.Is(err, bridge.ErrNoLeg) {
			return fmt.Errorf("leg %q in room %q: %w", id, roomName, api.ErrNotFound)
		}
		return err
	}
	s.mu.Lock()
	c := s.calls[id]
	s.mu.Unlock()
	if c != nil {
		s.setCause(c.leg, "api", 0, "kicked")
		// The page is told why by its call's end too: its room's
		// "kicked" event may come after its call is over.
		s.goOwned(func() { hangupBecause(c.leg, KickedReason) })
	}
	return nil
}

// Calls lists the routed calls in progress, oldest first.
func (s *Switchboard) Calls() []api.CallInfo {
	s.mu.Lock()
	out := make([]api.CallInfo, 0, len(s.calls))
	for _, c := range s.calls {
		out = append(out, c.info)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Hangup ends a call.
func (s *Switchboard) Hangup(id string) error {
	s.mu.Lock()
	c := s.calls[id]
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("call %q: %w", id, api.ErrNotFound)
	}
	s.setCause(c.leg, "api", 0, "hung up through the API")
	hangup(c.leg)
	return nil
}

var callerIDRe = regexp.MustCompile(`^[A-Za-z0-9+_.!~*'()-]{1,64}$`)

// Dial calls a user or a number through a trunk and puts whoever answers
// into the room (created if need be), as a plain participant.
func (s *Switchboard) Dial(room string, d api.DialRequest) error {
	if d.Trunk != "" && len(d.Trunks) > 0 {
		return errors.New("give trunk or trunks, not both")
	}
	if d.Trunk != "" {
		d.Trunks = []string{d.Trunk}
	}
	if (d.User == "") == (len(d.Trunks) == 0) {
		return errors.New("give user or trunk (one of them)")
	}
	if len(d.Trunks) > 0 && d.Number == "" {
		return errors.New("number: a trunk call needs the number to dial")
	}
	if d.CallerID != "" && !callerIDRe.MatchString(d.CallerID) {
		return fmt.Errorf("caller_id: %q is not a SIP user (letters, digits, + - _ . ! ~ * ' ( ))", d.CallerID)
	}
	if d.Timeout < 0 || d.Timeout > 300 {
		return fmt.Errorf("timeout: %d is not 0..300 seconds", d.Timeout)
	}
	for i, t := range d.Trunks {
		if !s.hasTrunk(t) {
			return fmt.Errorf("trunk %q: %w", t, api.ErrNotFound)
		}
		if slices.Index(d.Trunks, t) < i {
			return fmt.Errorf("trunks: %q is listed twice", t)
		}
	}
	if d.User != "" && !s.reachable(d.User) {
		return fmt.Errorf("user %q has no open page and no registered phone: %w", d.User, api.ErrConflict)
	}
	da := dialplan.DialAction{User: d.User, Trunks: d.Trunks, Number: d.Number, CallerID: d.CallerID, Timeout: cmp.Or(d.Timeout, 30)}
	if len(da.Trunks) > 0 {
		da.Trunk = da.Trunks[0]
	}
	if !s.goOwned(func() { s.dialIntoRoom(room, da) }) {
		return fmt.Errorf("voxgate is stopping: %w", api.ErrConflict)
	}
	return nil
}

// dialIntoRoom rings da and joins the answer to room until the call ends.
func (s *Switchboard) dialIntoRoom(room string, da dialplan.DialAction) {
	log := s.log.With("room", room, "user", da.User, "trunk", da.Trunk, "number", da.Number)
	ctx, cancel := context.WithTimeout(s.ctx, time.Duration(da.Timeout)*time.Second)
	ringing := time.Now()
	leg, _, err := s.ring(ctx, cmp.Or(da.CallerID, "room-"+room), da, log)
	cancel()
	if err != nil {
		log.Info("dial into room: no answer", "error", err)
		return
	}
	log.Info("dial into room: answered", "call_id", leg.ID())
	if err := leg.Answer(s.ctx); err != nil { // tells a page the call is up
		return
	}
	ra := dialplan.RoomAction{Name: room}
	defer s.track(leg, "api", dialplan.Action{Kind: dialplan.Room, Room: ra})()
	s.answered(leg, ringing) // its set-up: the ringing
	s.joinRoom(s.ctx, leg, ra, false, log)
	hangup(leg)
}

// Play plays a WAV from rooms.prompt_dir to a room or one of its legs.
func (s *Switchboard) Play(roomName string, p api.PlayRequest) error {
	if s.promptDir == "" {
		return fmt.Errorf("set rooms.prompt_dir to play prompts: %w", api.ErrConflict)
	}
	if p.File == "" || p.File != filepath.Base(p.File) || !strings.EqualFold(filepath.Ext(p.File), ".wav") {
		return fmt.Errorf("file: %q is not the name of a .wav file in rooms.prompt_dir", p.File)
	}
	room, err := s.lookup(roomName)
	if err != nil {
		return err
	}
	w, err := audio.ReadWAVFile(filepath.Join(s.promptDir, p.File))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("prompt %q: %w", p.File, api.ErrNotFound)
		}
		return fmt.Errorf("file: %v", err)
	}
	if p.Leg == "" {
		return room.PlayToRoom(w)
	}
	if err := room.PlayToLeg(p.Leg, w); errors.Is(err, bridge.ErrNoLeg) {
		return fmt.Errorf("leg %q in room %q: %w", p.Leg, roomName, api.ErrNotFound)
	} else if err != nil {
		return err
	}
	return nil
}

// hasTrunk reports whether a dialer calls out through trunk.
func (s *Switchboard) hasTrunk(trunk string) bool {
	for _, dl := range s.dialers {
		if slices.Contains(dl.Trunks(), trunk) {
			return true
		}
	}
	return false
}

// reachable reports whether user has a device to ring now.
func (s *Switchboard) reachable(user string) bool {
	for _, dl := range s.dialers {
		if len(dl.Devices(user)) > 0 {
			return true
		}
	}
	return false
}
