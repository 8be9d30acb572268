package webclient

import (
	"errors"
	"math"
	"slices"
)

// LegQuality is one participant's reception as voxgate measures it: what
// a page shows beside each name in its room.
type LegQuality struct {
	Leg   string `json:"leg"`
	Codec string `json:"codec"`
	// LossPct is the share of the leg's packets lost on the way to voxgate.
	LossPct  float64 `json:"loss_pct"`
	JitterMS float64 `json:"jitter_ms"`
}

// roomStats answers a page's "room-stats" for the room its call m.ID is in:
// a room hosted on another node of a cluster (RemoteRoomer: the page's
// call is bridged to it here, and the host tells its state and quality),
// else a room here.
func (g *signal) roomStats(m Message) error {
	if g.s.control == nil {
		return errors.New("room statistics are not available on this server")
	}
	if g.call(m.ID) == nil {
		return errors.New("no such call")
	}
	out, ok := roomStatsOf(g.s.control, g.legID+"/"+m.ID)
	if !ok {
		return errors.New("this call is in no room")
	}
	out.ID = m.ID
	g.send(out)
	return nil
}

// roomStatsOf is the "room-stats" of the room leg self is in, as c knows
// it; ok is false when it is in none.
func roomStatsOf(c Control, self string) (m Message, ok bool) {
	var rooms []RoomInfo
	if rr, ok := c.(RemoteRoomer); ok { // first: a page bridged to a room on another node sees that room
		rooms = rr.RemoteRooms()
	}
	rooms = append(rooms, c.Rooms()...)
	for _, r := range rooms {
		if slices.ContainsFunc(r.Legs, func(l LegInfo) bool { return l.ID == self }) {
			return Message{Type: "room-stats", Room: r.Name, Stats: legQuality(r.Legs), Locked: r.Locked, Recording: r.Recording != ""}, true
		}
	}
	return Message{}, false
}

// legQuality is each leg's reception as a page shows it; a leg whose
// codec is not known yet (a remote room's host has not told it) is left
// out.
func legQuality(legs []LegInfo) []LegQuality {
	out := make([]LegQuality, 0, len(legs))
	for _, o := range legs {
		if o.Codec == "" {
			continue
		}
		q := LegQuality{Leg: o.ID, Codec: o.Codec, JitterMS: math.Round(o.JitterMS*10) / 10}
		if lost := max(o.Lost, 0); o.Packets+uint64(lost) > 0 { // a duplicate-heavy stream counts negative loss
			q.LossPct = math.Round(1000*float64(lost)/float64(o.Packets+uint64(lost))) / 10
		}
		out = append(out, q)
	}
	return out
}
