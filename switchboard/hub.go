package switchboard

import (
	"cmp"
	"log/slog"
	"sync"

	"github.com/voxgate/voxgate/bridge"
)

// roomHub names room participants and forwards room events to the legs
// that show their room (browser pages).
type roomHub struct {
	log     *slog.Logger
	observe func(e bridge.Event, name string) // Config.RoomEvents (may be nil)
	// state tells a leg's muted and moderator state (the switchboard's).
	state func(room, leg string) (muted, moderator bool)
	mu    sync.Mutex
	names map[string]string // leg id -> display name
	kinds map[string]string // leg id -> "browser" or "phone"
	// selfMuted are the legs that muted their own microphone (a page's
	// button): shown muted whatever the room's mute.
	selfMuted map[string]bool
	// A leg's name is kept while it is in a room (entered, not yet left)
	// or its room events are still to come (joined, its left not yet
	// seen): a leg moved between rooms keeps its name throughout.
	entered, inRooms map[string]int
	watchers         map[string]map[string]RoomWatcher // room -> leg id -> watcher
}

func newRoomHub(log *slog.Logger) *roomHub {
	return &roomHub{log: log, names: map[string]string{}, kinds: map[string]string{}, selfMuted: map[string]bool{}, entered: map[string]int{}, inRooms: map[string]int{}, watchers: map[string]map[string]RoomWatcher{}}
}

// enter names c and, if it shows rooms (w: c itself, or the view of a
// cascade leg; nil: it does not), sends w room's events from now on.
func (h *roomHub) enter(room string, c Leg, w RoomWatcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.names[c.ID()] = c.Caller()
	h.entered[c.ID()]++
	h.kinds[c.ID()] = "phone"
	if w != nil {
		h.kinds[c.ID()] = "browser"
		if h.watchers[room] == nil {
			h.watchers[room] = map[string]RoomWatcher{}
		}
		h.watchers[room][c.ID()] = w
	}
}

// leave stops sending room's events to c.
func (h *roomHub) leave(room string, c Leg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.entered[c.ID()]--; h.entered[c.ID()] <= 0 {
		delete(h.entered, c.ID())
		h.forgetLocked(c.ID())
	}
	delete(h.watchers[room], c.ID())
	if len(h.watchers[room]) == 0 {
		delete(h.watchers, room)
	}
}

// forgetLocked drops a leg's name and kind once it has left every room and
// its last room event is handled; h.mu is held.
func (h *roomHub) forgetLocked(id string) {
	if h.entered[id] > 0 || h.inRooms[id] > 0 {
		return
	}
	delete(h.names, id)
	delete(h.kinds, id)
	delete(h.selfMuted, id)
}

// name is a leg's display name; h.mu is held.
func (h *roomHub) name(id string) string {
	if n := h.names[id]; n != "" {
		return n
	}
	return id
}

// participant is leg id as a page shows it; h.mu is held.
func (h *roomHub) participant(id string) Participant {
	return Participant{Leg: id, Name: h.name(id), Kind: cmp.Or(h.kinds[id], "phone"), Muted: h.selfMuted[id]}
}

// participants tells w (nil: nobody) who is in the room and who talks.
func (h *roomHub) participants(room *bridge.Room, w RoomWatcher) {
	if w == nil {
		return
	}
	legs := room.Stats().Legs
	var people, talking []Participant
	h.mu.Lock()
	for _, l := range legs {
		p := h.participant(l.ID)
		p.Muted = p.Muted || l.Muted
		people = append(people, p)
		if l.Talking {
			talking = append(talking, p)
		}
	}
	h.mu.Unlock()
	if h.state != nil {
		for i := range people {
			_, people[i].Moderator = h.state(room.Name(), people[i].Leg)
		}
	}
	w.Participants(room.Name(), people)
	for _, p := range talking { // who is talking already
		w.Notify("talking", room.Name(), p)
	}
}

// notify tells room's watchers that leg id is muted or not in the room
// (roomMuted), shown muted too while it muted itself.
func (h *roomHub) notify(room, id string, roomMuted bool) {
	h.mu.Lock()
	p := h.participant(id)
	ws := make([]RoomWatcher, 0, len(h.watchers[room]))
	for _, w := range h.watchers[room] {
		ws = append(ws, w)
	}
	h.mu.Unlock()
	p.Muted = p.Muted || roomMuted
	typ := "unmuted"
	if p.Muted {
		typ = "muted"
	}
	for _, w := range ws {
		w.Notify(typ, room, p)
	}
}

// selfMute records that leg id muted or unmuted its own microphone and
// tells room's watchers.
func (h *roomHub) selfMute(room, id string, on bool) {
	h.mu.Lock()
	if on {
		h.selfMuted[id] = true
	} else {
		delete(h.selfMuted, id)
	}
	h.mu.Unlock()
	roomMuted := false
	if h.state != nil {
		roomMuted, _ = h.state(room, id)
	}
	h.notify(room, id, roomMuted)
}

// run logs every room event and forwards it to the room's watchers, until
// stop is closed.
func (h *roomHub) run(events <-chan bridge.Event, stop <-chan struct{}) {
	for {
		var e bridge.Event
		select {
		case e = <-events:
		case <-stop:
			return
		}
		var muted, moderator bool
		if h.state != nil && e.Type == "joined" {
			muted, moderator = h.state(e.Room, e.Leg)
		}
		h.mu.Lock()
		p := h.participant(e.Leg)
		p.Muted, p.Moderator = p.Muted || muted, moderator // known on joining; muted and unmuted tell changes
		name := p.Name
		ws := make([]RoomWatcher, 0, len(h.watchers[e.Room]))
		for _, w := range h.watchers[e.Room] {
			ws = append(ws, w)
		}
		switch e.Type {
		case "joined":
			h.inRooms[e.Leg]++
		case "left", "kicked":
			if h.inRooms[e.Leg]--; h.inRooms[e.Leg] <= 0 {
				delete(h.inRooms, e.Leg)
				h.forgetLocked(e.Leg)
			}
		}
		h.mu.Unlock()
		h.log.Info("room event", "room", e.Room, "leg", e.Leg, "name", name, "event", e.Type)
		if h.observe != nil {
			h.observe(e, name)
		}
		for _, w := range ws {
			w.Notify(e.Type, e.Room, p)
		}
	}
}
