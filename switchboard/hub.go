package switchboard

import (
	"log/slog"
	"sync"

	"github.com/voxgate/voxgate/bridge"
)

// roomHub names room participants and forwards room events to the legs
// that show their room (browser pages).
type roomHub struct {
	log      *slog.Logger
	observe  func(e bridge.Event, name string) // Config.RoomEvents (may be nil)
	mu       sync.Mutex
	names    map[string]string                 // leg id -> display name
	watchers map[string]map[string]RoomWatcher // room -> leg id -> watcher
}

func newRoomHub(log *slog.Logger) *roomHub {
	return &roomHub{log: log, names: map[string]string{}, watchers: map[string]map[string]RoomWatcher{}}
}

// enter names c and, if it shows rooms, sends it room's events from now on.
func (h *roomHub) enter(room string, c Leg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.names[c.ID()] = c.Caller()
	if w, ok := c.(RoomWatcher); ok {
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
	delete(h.watchers[room], c.ID())
	if len(h.watchers[room]) == 0 {
		delete(h.watchers, room)
	}
}

// name is a leg's display name; h.mu is held.
func (h *roomHub) name(id string) string {
	if n := h.names[id]; n != "" {
		return n
	}
	return id
}

// participants tells c, if it shows rooms, who is in the room and who talks.
func (h *roomHub) participants(room *bridge.Room, c Leg) {
	w, ok := c.(RoomWatcher)
	if !ok {
		return
	}
	h.mu.Lock()
	var names, talking []string
	for _, l := range room.Stats().Legs {
		names = append(names, h.name(l.ID))
		if l.Talking {
			talking = append(talking, h.name(l.ID))
		}
	}
	h.mu.Unlock()
	w.Participants(room.Name(), names)
	for _, n := range talking { // who is talking already
		w.Notify("talking", room.Name(), n)
	}
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
		h.mu.Lock()
		name := h.name(e.Leg)
		ws := make([]RoomWatcher, 0, len(h.watchers[e.Room]))
		for _, w := range h.watchers[e.Room] {
			ws = append(ws, w)
		}
		if e.Type == "left" || e.Type == "kicked" {
			delete(h.names, e.Leg)
		}
		h.mu.Unlock()
		h.log.Info("room event", "room", e.Room, "leg", e.Leg, "name", name, "event", e.Type)
		if h.observe != nil {
			h.observe(e, name)
		}
		for _, w := range ws {
			w.Notify(e.Type, e.Room, name)
		}
	}
}
