package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
	"github.com/voxgate/voxgate/webclient"
)

// control is the REST API's view of voxgate: the router's rooms and calls,
// the SIP side's registrations and trunks.
type control struct{ r *router }

var _ webclient.Control = control{}

// Gains a leg may be given through the API, in dB.
const minGainDB, maxGainDB = -40, 20

func (k control) roomInfo(room *bridge.Room) webclient.RoomInfo {
	st := room.Stats()
	info := webclient.RoomInfo{Name: st.Name, Rate: st.Rate, Locked: st.Locked, Max: st.Max, Recording: st.Recording, Legs: []webclient.LegInfo{}}
	k.r.hub.mu.Lock()
	for _, l := range st.Legs {
		info.Legs = append(info.Legs, legInfo(l, k.r.hub.name(l.ID)))
	}
	k.r.hub.mu.Unlock()
	for i := range info.Legs {
		info.Legs[i].Moderator, info.Legs[i].Waiting = k.r.moderation(st.Name, info.Legs[i].ID)
	}
	return info
}

func legInfo(l bridge.LegStats, name string) webclient.LegInfo {
	return webclient.LegInfo{ID: l.ID, Name: name, Codec: l.Codec, Joined: l.Joined.UTC(), Muted: l.Muted, Deaf: l.Deaf, Talking: l.Talking,
		GainDB: round1(l.GainDB), LevelDBFS: round1(l.Level), Packets: l.Received, Lost: l.Jitter.Lost, Concealed: l.Jitter.Concealed,
		JitterMS: ms(l.Jitter.Jitter), BufferMS: ms(l.Jitter.Depth), Sent: l.Sent, Dropped: l.Dropped}
}

func round1(v float64) float64 {
	if v < -200 { // the level of digital silence
		return -200
	}
	return float64(int64(v*10)) / 10
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Rooms lists the rooms somebody is in (or that record).
func (k control) Rooms() []webclient.RoomInfo {
	var out []webclient.RoomInfo
	for _, room := range k.r.rooms.List() {
		if room.Len() > 0 || room.Recording() {
			out = append(out, k.roomInfo(room))
		}
	}
	return out
}

func (k control) lookup(name string) (*bridge.Room, error) {
	room, ok := k.r.rooms.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("room %q: %w (rooms exist once somebody joined)", name, webclient.ErrNotFound)
	}
	return room, nil
}

// Room shows one room.
func (k control) Room(name string) (webclient.RoomInfo, error) {
	room, err := k.lookup(name)
	if err != nil {
		return webclient.RoomInfo{}, err
	}
	return k.roomInfo(room), nil
}

// ChangeRoom locks or unlocks a room, sets its maximum, starts or stops its
// recording.
func (k control) ChangeRoom(name string, ch webclient.RoomChange) (webclient.RoomInfo, error) {
	room, err := k.lookup(name)
	if err != nil {
		return webclient.RoomInfo{}, err
	}
	if ch.Max != nil && *ch.Max < 0 {
		return webclient.RoomInfo{}, fmt.Errorf("max: %d is negative (0 means no limit)", *ch.Max)
	}
	if ch.Locked != nil {
		room.Lock(*ch.Locked)
	}
	if ch.Max != nil {
		room.SetMax(*ch.Max)
	}
	if ch.Recording != nil {
		if *ch.Recording {
			if _, err := k.r.record(room); err != nil {
				if errors.Is(err, bridge.ErrRecording) {
					return webclient.RoomInfo{}, fmt.Errorf("room %q records already: %w", name, webclient.ErrConflict)
				}
				return webclient.RoomInfo{}, err
			}
		} else if err := room.StopRecording(); err != nil {
			return webclient.RoomInfo{}, err
		}
	}
	return k.roomInfo(room), nil
}

// ChangeLeg mutes, deafens or sets the gain of a leg.
func (k control) ChangeLeg(roomName, id string, ch webclient.LegChange) (webclient.LegInfo, error) {
	room, err := k.lookup(roomName)
	if err != nil {
		return webclient.LegInfo{}, err
	}
	if ch.GainDB != nil && (*ch.GainDB < minGainDB || *ch.GainDB > maxGainDB) {
		return webclient.LegInfo{}, fmt.Errorf("gain_db: %g is outside %d..%d", *ch.GainDB, minGainDB, maxGainDB)
	}
	apply := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	if ch.Muted != nil {
		apply(func() error { return room.Mute(id, *ch.Muted) })
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
		return webclient.LegInfo{}, fmt.Errorf("leg %q in room %q: %w", id, roomName, webclient.ErrNotFound)
	}
	if err != nil {
		return webclient.LegInfo{}, err
	}
	for _, l := range k.roomInfo(room).Legs {
		if l.ID == id {
			return l, nil
		}
	}
	return webclient.LegInfo{}, fmt.Errorf("leg %q left room %q: %w", id, roomName, webclient.ErrNotFound)
}

// Kick removes a leg from its room and hangs its call up.
func (k control) Kick(roomName, id string) error {
	room, err := k.lookup(roomName)
	if err != nil {
		return err
	}
	if err := room.Kick(id); err != nil {
		if errors.Is(err, bridge.ErrNoLeg) {
			return fmt.Errorf("leg %q in room %q: %w", id, roomName, webclient.ErrNotFound)
		}
		return err
	}
	k.r.mu.Lock()
	c := k.r.calls[id]
	k.r.mu.Unlock()
	if c != nil {
		go hangup(c.leg)
	}
	return nil
}

func hangup(c routable) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c.Hangup(ctx)
}

// Registrations lists every registered SIP contact.
func (k control) Registrations() []webclient.Registration {
	if k.r.sip == nil {
		return nil
	}
	var out []webclient.Registration
	for _, b := range k.r.sip.Registrations() {
		out = append(out, webclient.Registration{User: b.AOR, Contact: b.Contact, Source: b.Source, Transport: b.Transport,
			UserAgent: b.UserAgent, Expires: b.Expires.UTC().Truncate(time.Second)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].User != out[j].User {
			return out[i].User < out[j].User
		}
		return out[i].Contact < out[j].Contact
	})
	return out
}

// Trunks shows voxgate's registration at each carrier.
func (k control) Trunks() []webclient.TrunkInfo {
	if k.r.sip == nil {
		return nil
	}
	var out []webclient.TrunkInfo
	for _, t := range k.r.sip.TrunkStates() {
		out = append(out, webclient.TrunkInfo{Name: t.Name, Registered: t.Registered, Expires: t.Expires.UTC().Truncate(time.Second), LastError: t.LastError})
	}
	return out
}

// Calls lists the routed calls in progress, oldest first.
func (k control) Calls() []webclient.CallInfo {
	k.r.mu.Lock()
	out := make([]webclient.CallInfo, 0, len(k.r.calls))
	for _, c := range k.r.calls {
		out = append(out, c.info)
	}
	k.r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Hangup ends a call.
func (k control) Hangup(id string) error {
	k.r.mu.Lock()
	c := k.r.calls[id]
	k.r.mu.Unlock()
	if c == nil {
		return fmt.Errorf("call %q: %w", id, webclient.ErrNotFound)
	}
	hangup(c.leg)
	return nil
}

// Metrics are the SIP side's, the router's and the rooms' counters.
func (k control) Metrics() []webclient.Metric {
	var ms []webclient.Metric
	label := func(name, v string) []webclient.Label { return []webclient.Label{{Name: name, Value: v}} }
	if s := k.r.sip; s != nil {
		st := s.ServerStats()
		ms = append(ms,
			webclient.Gauge("voxgate_sip_registrations", "Registered SIP contacts.", float64(st.Registrations)),
			webclient.Gauge("voxgate_sip_calls", "SIP calls in progress (both directions).", float64(st.Calls)),
			webclient.Metric{Name: "voxgate_sip_auth_failures_total", Help: "SIP requests with a wrong user or password.", Type: "counter",
				Samples: []webclient.Sample{{Value: float64(st.AuthFailures)}}},
			webclient.Metric{Name: "voxgate_sip_malformed_total", Help: "Malformed SIP requests answered 400.", Type: "counter",
				Samples: []webclient.Sample{{Value: float64(st.Malformed)}}})
		req := webclient.Metric{Name: "voxgate_sip_requests_total", Help: "SIP requests received, by method.", Type: "counter"}
		for _, m := range sortedKeys(st.Requests) {
			req.Samples = append(req.Samples, webclient.Sample{Labels: label("method", m), Value: float64(st.Requests[m])})
		}
		res := webclient.Metric{Name: "voxgate_sip_responses_total", Help: "SIP responses voxgate sent, by status.", Type: "counter"}
		for _, c := range sortedKeys(st.Responses) {
			res.Samples = append(res.Samples, webclient.Sample{Labels: label("code", strconv.Itoa(c)), Value: float64(st.Responses[c])})
		}
		trunks := webclient.Metric{Name: "voxgate_trunk_registered", Help: "1 when voxgate is registered at the trunk.", Type: "gauge"}
		for _, t := range s.TrunkStates() {
			v := 0.0
			if t.Registered {
				v = 1
			}
			trunks.Samples = append(trunks.Samples, webclient.Sample{Labels: label("trunk", t.Name), Value: v})
		}
		ms = append(ms, req, res, trunks)
	}
	k.r.mu.Lock()
	active := map[string]int{}
	for _, c := range k.r.calls {
		active[c.info.Origin]++
	}
	calls := webclient.Metric{Name: "voxgate_calls", Help: "Routed calls in progress, by origin.", Type: "gauge"}
	for _, o := range sortedKeys(active) {
		calls.Samples = append(calls.Samples, webclient.Sample{Labels: label("origin", o), Value: float64(active[o])})
	}
	total := webclient.Metric{Name: "voxgate_calls_total", Help: "Calls routed, by origin and dialplan action.", Type: "counter"}
	keys := make([][2]string, 0, len(k.r.total))
	for key := range k.r.total {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+" "+keys[i][1] < keys[j][0]+" "+keys[j][1] })
	for _, key := range keys {
		total.Samples = append(total.Samples, webclient.Sample{Labels: []webclient.Label{{Name: "origin", Value: key[0]}, {Name: "action", Value: key[1]}},
			Value: float64(k.r.total[key])})
	}
	rejected := webclient.Metric{Name: "voxgate_calls_rejected_total", Help: "Calls refused, by SIP status.", Type: "counter"}
	for _, c := range sortedKeys(k.r.rejected) {
		rejected.Samples = append(rejected.Samples, webclient.Sample{Labels: label("status", strconv.Itoa(c)), Value: float64(k.r.rejected[c])})
	}
	k.r.mu.Unlock()
	ms = append(ms, calls, total, rejected)

	legs := webclient.Metric{Name: "voxgate_room_legs", Help: "Participants in each room.", Type: "gauge"}
	talking := webclient.Metric{Name: "voxgate_room_talking", Help: "Participants talking now, by room.", Type: "gauge"}
	tick := webclient.Metric{Name: "voxgate_room_tick_seconds", Help: "Mean time one 20 ms mixing tick takes, by room.", Type: "gauge"}
	lost := webclient.Metric{Name: "voxgate_room_packets_lost", Help: "Packets lost on the way in, summed over the room's present legs.", Type: "gauge"}
	dropped := webclient.Metric{Name: "voxgate_room_frames_dropped", Help: "Frames dropped toward slow legs, summed over the room's present legs.", Type: "gauge"}
	rooms := 0
	for _, room := range k.r.rooms.List() {
		st := room.Stats()
		if len(st.Legs) == 0 {
			continue
		}
		rooms++
		var nt, nl, nd float64
		for _, l := range st.Legs {
			if l.Talking {
				nt++
			}
			nl += float64(l.Jitter.Lost)
			nd += float64(l.Dropped)
		}
		lb := label("room", st.Name)
		legs.Samples = append(legs.Samples, webclient.Sample{Labels: lb, Value: float64(len(st.Legs))})
		talking.Samples = append(talking.Samples, webclient.Sample{Labels: lb, Value: nt})
		tick.Samples = append(tick.Samples, webclient.Sample{Labels: lb, Value: st.MeanTick.Seconds()})
		lost.Samples = append(lost.Samples, webclient.Sample{Labels: lb, Value: nl})
		dropped.Samples = append(dropped.Samples, webclient.Sample{Labels: lb, Value: nd})
	}
	return append(ms, webclient.Gauge("voxgate_rooms", "Rooms somebody is in.", float64(rooms)), legs, talking, tick, lost, dropped)
}

func sortedKeys[K string | int, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

var callerIDRe = regexp.MustCompile(`^[A-Za-z0-9+_.!~*'()-]{1,64}$`)

// Dial calls a user or a number through a trunk and puts whoever answers
// into the room (created if need be), as a plain participant.
func (k control) Dial(room string, d webclient.DialRequest) error {
	if (d.User == "") == (d.Trunk == "") {
		return errors.New("give user or trunk (one of them)")
	}
	if d.Trunk != "" && d.Number == "" {
		return errors.New("number: a trunk call needs the number to dial")
	}
	if d.CallerID != "" && !callerIDRe.MatchString(d.CallerID) {
		return fmt.Errorf("caller_id: %q is not a SIP user (letters, digits, + - _ . ! ~ * ' ( ))", d.CallerID)
	}
	if d.Timeout < 0 || d.Timeout > 300 {
		return fmt.Errorf("timeout: %d is not 0..300 seconds", d.Timeout)
	}
	if k.r.sip == nil || k.r.web == nil {
		return fmt.Errorf("voxgate is still starting: %w", webclient.ErrConflict)
	}
	if d.Trunk != "" {
		known := false
		for _, t := range k.r.sip.TrunkStates() {
			known = known || t.Name == d.Trunk
		}
		if !known {
			return fmt.Errorf("trunk %q: %w", d.Trunk, webclient.ErrNotFound)
		}
	} else if !k.r.web.Online(d.User) && len(k.r.sip.Bindings(d.User)) == 0 {
		return fmt.Errorf("user %q has no open page and no registered phone: %w", d.User, webclient.ErrConflict)
	}
	da := dialplan.DialAction{User: d.User, Trunk: d.Trunk, Number: d.Number, CallerID: d.CallerID, Timeout: cmp.Or(d.Timeout, 30)}
	go k.r.dialIntoRoom(room, da)
	return nil
}

// dialIntoRoom rings da and joins the answer to room until the call ends.
func (r *router) dialIntoRoom(room string, da dialplan.DialAction) {
	log := r.log.With("room", room, "user", da.User, "trunk", da.Trunk, "number", da.Number)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(da.Timeout)*time.Second)
	leg, err := r.ring(ctx, cmp.Or(da.CallerID, "room-"+room), da, log)
	cancel()
	if err != nil {
		log.Info("dial into room: no answer", "error", err)
		return
	}
	log.Info("dial into room: answered", "call_id", leg.ID())
	actx := context.Background()
	if err := leg.Answer(actx); err != nil { // tells a page the call is up
		return
	}
	ra := dialplan.RoomAction{Name: room}
	defer r.track(leg, "api", dialplan.Action{Kind: dialplan.Room, Room: ra})()
	r.joinRoom(actx, leg, ra, false, log)
	leg.Hangup(actx)
}

// Play plays a WAV from rooms.prompt_dir to a room or one of its legs.
func (k control) Play(roomName string, p webclient.PlayRequest) error {
	if k.r.promptDir == "" {
		return fmt.Errorf("set rooms.prompt_dir to play prompts: %w", webclient.ErrConflict)
	}
	if p.File == "" || p.File != filepath.Base(p.File) || !strings.EqualFold(filepath.Ext(p.File), ".wav") {
		return fmt.Errorf("file: %q is not the name of a .wav file in rooms.prompt_dir", p.File)
	}
	room, err := k.lookup(roomName)
	if err != nil {
		return err
	}
	w, err := audio.ReadWAVFile(filepath.Join(k.r.promptDir, p.File))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("prompt %q: %w", p.File, webclient.ErrNotFound)
		}
		return fmt.Errorf("file: %v", err)
	}
	if p.Leg == "" {
		return room.PlayToRoom(w)
	}
	if err := room.PlayToLeg(p.Leg, w); errors.Is(err, bridge.ErrNoLeg) {
		return fmt.Errorf("leg %q in room %q: %w", p.Leg, roomName, webclient.ErrNotFound)
	} else if err != nil {
		return err
	}
	return nil
}
