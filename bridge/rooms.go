package bridge

import (
	"sort"
	"sync"
)

// Rooms is the set of conference rooms, created on first use from a
// template configuration. A room nobody is in keeps no clock running.
type Rooms struct {
	template RoomConfig

	mu     sync.Mutex
	rooms  map[string]*Room
	closed bool
}

// NewRooms returns an empty set; every room gets template's settings.
func NewRooms(template RoomConfig) *Rooms {
	return &Rooms{template: template, rooms: map[string]*Room{}}
}

// Get returns the room called name, creating it from the template.
func (rs *Rooms) Get(name string) (*Room, error) { return rs.GetWith(name, nil) }

// Close closes every room (finishing recordings). Idempotent.
func (rs *Rooms) Close() error {
	rs.mu.Lock()
	rs.closed = true
	rooms := rs.rooms
	rs.rooms = map[string]*Room{}
	rs.mu.Unlock()
	var first error
	for _, r := range rooms {
		if err := r.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// GetWith returns the room called name, creating it with the template
// changed by opts (a dialplan rule's rate or maximum); an existing room keeps
// the settings it was created with.
func (rs *Rooms) GetWith(name string, opts func(*RoomConfig)) (*Room, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return nil, ErrClosed
	}
	if r := rs.rooms[name]; r != nil {
		return r, nil
	}
	cfg := rs.template
	cfg.Name = name
	if opts != nil {
		opts(&cfg)
	}
	r, err := NewRoom(cfg)
	if err != nil {
		return nil, err
	}
	rs.rooms[name] = r
	return r, nil
}

// List returns the rooms that exist now, by name (a room is created on its
// first join and kept, idle, after its last leg left).
func (rs *Rooms) List() []*Room {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]*Room, 0, len(rs.rooms))
	for _, r := range rs.rooms {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// Lookup returns the room called name if it exists (it never creates one).
func (rs *Rooms) Lookup(name string) (*Room, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.rooms[name]
	return r, ok
}

// Release closes and forgets the room called name if nobody is in it and it
// does not record, so rooms made for one meeting do not pile up; the next
// Get makes it afresh. A Join racing with it gets ErrClosed (get the room
// again). It reports whether the room was released.
func (rs *Rooms) Release(name string) bool {
	rs.mu.Lock()
	r := rs.rooms[name]
	if r == nil {
		rs.mu.Unlock()
		return false
	}
	r.mu.Lock()
	idle := len(r.members) == 0 && r.rec == nil
	if idle {
		r.closed = true // under r.mu: no Join can slip in after the check
	}
	r.mu.Unlock()
	if idle {
		delete(rs.rooms, name)
	}
	rs.mu.Unlock()
	if idle {
		r.stopClock()
	}
	return idle
}
