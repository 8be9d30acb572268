package webclient

import (
	"errors"
	"math"
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

// roomStats answers a page's "room-stats" for the room its call m.ID is in.
func (g *signal) roomStats(m Message) error {
	if g.s.control == nil {
		return errors.New("room statistics are not available on this server")
	}
	if g.call(m.ID) == nil {
		return errors.New("no such call")
	}
	self := g.legID + "/" + m.ID
	for _, r := range g.s.control.Rooms() {
		for _, l := range r.Legs {
			if l.ID != self {
				continue
			}
			out := make([]LegQuality, 0, len(r.Legs))
			for _, o := range r.Legs {
				q := LegQuality{Leg: o.ID, Codec: o.Codec, JitterMS: math.Round(o.JitterMS*10) / 10}
				if lost := max(o.Lost, 0); o.Packets+uint64(lost) > 0 { // a duplicate-heavy stream counts negative loss
					q.LossPct = math.Round(1000*float64(lost)/float64(o.Packets+uint64(lost))) / 10
				}
				out = append(out, q)
			}
			g.send(Message{Type: "room-stats", ID: m.ID, Room: r.Name, Stats: out, Locked: r.Locked, Recording: r.Recording != ""})
			return nil
		}
	}
	return errors.New("this call is in no room")
}
