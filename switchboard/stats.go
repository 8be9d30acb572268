package switchboard

import (
	"time"

	"github.com/voxgate/voxgate/bridge"
)

// Buckets of the call histograms.
var (
	// SetupBuckets: a room answers at once; a dial rings for seconds.
	SetupBuckets = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second, time.Minute}
	// DurationBuckets: from a wrong number to a long meeting.
	DurationBuckets = []time.Duration{5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
		5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour}
)

// callTiming holds the histograms of one dialplan action's calls.
type callTiming struct {
	setup, duration *bridge.Histogram
}

// timingLocked returns the histograms of action's calls (s.mu held). The
// actions are the dialplan's few kinds, so the map stays small.
func (s *Switchboard) timingLocked(action string) *callTiming {
	t := s.timing[action]
	if t == nil {
		t = &callTiming{setup: bridge.NewHistogram(SetupBuckets...), duration: bridge.NewHistogram(DurationBuckets...)}
		s.timing[action] = t
	}
	return t
}

// Routed is how many calls from one origin got one dialplan action.
type Routed struct {
	Origin, Action string
	Count          uint64
}

// Stats are the switchboard's counters, for /metrics. Labels come from the
// configuration and the dialplan's action kinds, never from what a caller
// dialled: origins are "user", "guest", "web", "api" or "trunk:<name>"
// with a configured trunk's name.
type Stats struct {
	// Calls are the routed calls in progress, by origin.
	Calls map[string]int
	// Routed counts the calls routed since start, by origin and action.
	Routed []Routed
	// Rejected counts the calls refused, by SIP status.
	Rejected map[int]uint64
	// Rooms somebody is in now, the participants in them, and how many of
	// them talk.
	Rooms, Legs, Talking int
	// Setup: from a call's arrival at the switchboard to its answer (for
	// a dial, when the callee answered; for a call the API dials into a
	// room, its ringing); Duration: from the answer to the end. By
	// dialplan action; answered calls only.
	Setup, Duration map[string]bridge.HistogramSnapshot
	// Media of every room, 1:1 call and echo test since start.
	Media bridge.MeterStats
	// BotStreams are the media streams on rooms and calls now (room
	// streams and forks, roomstream.go), by kind; StreamReconnects counts
	// room streams' reconnects since start.
	BotStreams       map[string]int
	StreamReconnects uint64
}

// Stats returns the switchboard's counters now.
func (s *Switchboard) Stats() Stats {
	st := Stats{Calls: map[string]int{}, Rejected: map[int]uint64{},
		Setup: map[string]bridge.HistogramSnapshot{}, Duration: map[string]bridge.HistogramSnapshot{}}
	s.mu.Lock()
	for _, c := range s.calls {
		st.Calls[c.info.Origin]++
	}
	for k, n := range s.total {
		st.Routed = append(st.Routed, Routed{Origin: k[0], Action: k[1], Count: n})
	}
	for code, n := range s.rejected {
		st.Rejected[code] = n
	}
	for action, t := range s.timing {
		st.Setup[action], st.Duration[action] = t.setup.Snapshot(), t.duration.Snapshot()
	}
	st.BotStreams = map[string]int{"room": 0, "call": 0}
	for _, b := range s.bots {
		st.BotStreams[b.info.Kind]++
	}
	s.mu.Unlock()
	st.StreamReconnects = s.streamStats.reconnects.Load()
	for _, room := range s.rooms.List() {
		rs := room.Stats()
		if len(rs.Legs) == 0 {
			continue
		}
		st.Rooms++
		st.Legs += len(rs.Legs)
		for _, l := range rs.Legs {
			if l.Talking {
				st.Talking++
			}
		}
	}
	st.Media = s.meter.Stats()
	return st
}
