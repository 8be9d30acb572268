package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/webclient"
)

// viewPlan: rooms 8xxx with a PIN and a moderator PIN.
const viewPlan = `
contexts:
  internal:
    rules:
      - pattern: '8\d+'
        room: {name: "$number", pin: "1111", moderator_pin: "9999"}
      - reject: {status: 404, reason: "Not Found"}
origins:
  user: internal
  web: internal
  guest: internal
`

// A page on the entering node sees and moderates a room hosted on another
// node as a local one. Two in-process nodes share a Redis; room 8400 is
// hosted on node A (a desk phone keyed its PIN there). A page signed in on
// node B joins it with the moderator PIN: B bridges it to A over a
// cascade leg, and A tells B's view of the room (Redis pub/sub) what a
// page of its own would see. The page is told who is in the room (itself
// under its own leg id, as moderator), who talks, who joins, and its
// room-stats: the room's quality, lock and recording as A tells them; it
// mutes a second phone (A mutes it) and removes it (A hangs it up).
func TestClusterPageSeesRemoteRoom(t *testing.T) {
	peertest.Need(t, "baresip", "redis-server")
	red := peertest.StartRedis(t)
	plan := writePlan(t, viewPlan)
	var nodes []*gateway
	for _, id := range []string{"a", "b"} {
		nodes = append(nodes, startGateway(t, func(cfg *Config) {
			noTones(cfg)
			cfg.Dialplan = plan
			cfg.Rooms.RecordDir = t.TempDir()
			cfg.Web.ICEIPs = []string{"127.0.0.1"}
			cfg.Web.LoopbackICE = true
			cfg.Cluster = ClusterConfig{Redis: red.URL(), NodeID: "node-" + id, Advertise: "sip:" + cfg.SIP.Listen[0].Addr, RoomTTL: 3 * time.Second}
		}))
	}
	a, b := nodes[0], nodes[1]
	const room = "8400"
	pinCallers := func(g *gateway) int {
		var list []json.RawMessage
		viewAPI(t, g, "/api/v1/pin-callers", &list)
		return len(list)
	}
	// enter dials the room through g and keys pin once the node asks for it.
	enter := func(g *gateway, user string, hz float64) *peertest.Baresip {
		t.Helper()
		p := peertest.StartPhone(t, g.addr, peertest.Phone{User: user, Codec: "pcmu", Tone: hz, Dial: room})
		if !waitUntil(10*time.Second, func() bool { return pinCallers(g) == 1 }) {
			t.Fatalf("%s is not asked for the PIN:\n%s", user, p.Output())
		}
		p.Command("sndcode", "1111#")
		if !waitUntil(10*time.Second, func() bool { return pinCallers(g) == 0 }) {
			t.Fatalf("%s's PIN was not taken", user)
		}
		return p
	}
	first := enter(a, "guest0", 700)
	if !waitUntil(5*time.Second, func() bool { return len(viewRoom(t, a, room).Legs) == 1 }) {
		t.Fatal("the first phone is not in the room on node A")
	}

	// carol's page on node B joins with the moderator PIN.
	page := newViewPage(t, b, "bob", "bob-secret")
	page.join(room)
	if !waitUntil(10*time.Second, func() bool { return pinCallers(b) == 1 }) {
		t.Fatal("the page is not asked for the PIN on node B")
	}
	page.send(webclient.Message{Type: "dtmf", ID: "c1", Digits: "9999#"})
	self := page.leg + "/c1"
	var people []string
	if !waitUntil(10*time.Second, func() bool {
		m, ok := page.last("participants", "")
		if !ok {
			return false
		}
		people = people[:0]
		mod := false
		for _, p := range m.People {
			people = append(people, p.Leg+"="+p.Name)
			mod = mod || (p.Leg == self && p.Moderator && p.Kind == "browser")
		}
		return len(m.People) == 2 && mod
	}) {
		t.Fatalf("the page's participants of the room on node A: %v (want the phone and itself, %s, as moderator); messages %v", people, self, page.types())
	}
	if len(viewRoom(t, a, room).Legs) != 2 || len(viewRoom(t, b, room).Legs) != 0 {
		t.Fatalf("room %s: %d legs on node A, %d on node B (want 2 and 0)", room, len(viewRoom(t, a, room).Legs), len(viewRoom(t, b, room).Legs))
	}
	phoneLeg := ""
	for _, l := range viewRoom(t, a, room).Legs {
		if l.Name == "guest0" {
			phoneLeg = l.ID
		}
	}
	if _, ok := page.last("talking", phoneLeg); !ok && !waitUntil(5*time.Second, func() bool { _, ok := page.last("talking", phoneLeg); return ok }) {
		t.Errorf("the page was not told that the phone (leg %s) talks; messages %v", phoneLeg, page.types())
	}

	// The page's room-stats (asked every 3 s by the real page) are those of
	// the room on node A: its name, each leg's quality (its own leg under
	// its id here, measured here), and its lock and recording as node A's
	// host tells them, whoever changed them (here node A's REST API).
	stats := func(what string, ok func(webclient.Message) bool) webclient.Message {
		t.Helper()
		var m webclient.Message
		if !waitUntil(15*time.Second, func() bool {
			page.send(webclient.Message{Type: "room-stats", ID: "c1"})
			time.Sleep(250 * time.Millisecond)
			m, _ = page.last("room-stats", "")
			return ok(m)
		}) {
			t.Fatalf("the page's room-stats %s: %+v (messages %v)", what, m, page.types())
		}
		return m
	}
	quality := func(m webclient.Message, leg, codec string) bool {
		for _, q := range m.Stats {
			if q.Leg == leg && strings.EqualFold(q.Codec, codec) && q.LossPct >= 0 && q.LossPct <= 100 && q.JitterMS >= 0 {
				return true
			}
		}
		return false
	}
	// The room records from its first participant (rooms.record_dir).
	stats("with the room on node A, its legs' quality and its recording", func(m webclient.Message) bool {
		return m.ID == "c1" && m.Room == room && len(m.Stats) == 2 && quality(m, phoneLeg, "pcmu") && quality(m, self, "opus") && !m.Locked && m.Recording
	})
	if code := a.api(t, "PATCH", "/api/v1/rooms/"+room, `{"locked":true,"recording":false}`, nil); code != 200 {
		t.Fatalf("locking room %s on node A and stopping its recording: %d", room, code)
	}
	stats("after node A's API locked the room and stopped its recording", func(m webclient.Message) bool {
		return m.Room == room && m.Locked && !m.Recording && quality(m, phoneLeg, "pcmu")
	})
	if code := a.api(t, "PATCH", "/api/v1/rooms/"+room, `{"locked":false,"recording":true}`, nil); code != 200 {
		t.Fatalf("unlocking room %s on node A and recording it again: %d", room, code)
	}
	stats("after node A's API unlocked the room and recorded it again", func(m webclient.Message) bool {
		return m.Room == room && !m.Locked && m.Recording
	})

	// A second phone joins on node A: the page is told; it mutes the
	// phone, then removes it.
	second := enter(a, "guest1", 1100)
	var secondLeg string
	if !waitUntil(10*time.Second, func() bool {
		m, ok := page.lastByName("joined", "guest1")
		secondLeg = m.Leg
		return ok
	}) {
		t.Fatalf("the page was not told that guest1 joined; messages %v", page.types())
	}
	page.send(webclient.Message{Type: "moderate", ID: "c1", Action: "mute", Leg: secondLeg})
	if !waitUntil(5*time.Second, func() bool { _, ok := page.last("muted", secondLeg); return ok }) {
		t.Fatalf("the page was not told that it muted guest1; messages %v", page.types())
	}
	muted := false
	for _, l := range viewRoom(t, a, room).Legs {
		muted = muted || (l.ID == secondLeg && l.Muted)
	}
	if !muted {
		t.Errorf("node A did not mute guest1 (leg %s): %+v", secondLeg, viewRoom(t, a, room).Legs)
	}
	// The room itself, from the page on node B: lock, a maximum,
	// recording, then unlock and stop; node A's API shows each. What node
	// A refuses (recording a room that records already) comes back to the
	// page as an error that says why, as for a room of its own node.
	roomIs := func(what string, ok func(webclient.RoomInfo) bool) {
		t.Helper()
		if !waitUntil(5*time.Second, func() bool { return ok(viewRoom(t, a, room)) }) {
			t.Fatalf("node A's room after the page's %s: %+v (messages %v)", what, viewRoom(t, a, room), page.types())
		}
	}
	// refused sends m and waits for the page's error for it, naming why.
	var refusals []string
	refused := func(m webclient.Message, why string) {
		t.Helper()
		n := len(page.errors())
		page.send(m)
		var errs []string
		if !waitUntil(10*time.Second, func() bool { errs = page.errors(); return len(errs) > n }) {
			t.Fatalf("the page's %s %s got no error; messages %v", m.Action, m.Leg, page.types())
		}
		if got := errs[n]; !strings.Contains(got, why) {
			t.Fatalf("the page's %s %s got %q, want an error naming %q", m.Action, m.Leg, got, why)
		}
		refusals = append(refusals, errs[n])
	}
	five, zero := 5, 0
	page.send(webclient.Message{Type: "moderate", ID: "c1", Action: "lock"})
	roomIs("lock", func(r webclient.RoomInfo) bool { return r.Locked })
	page.send(webclient.Message{Type: "moderate", ID: "c1", Action: "max", Max: &five})
	roomIs("max 5", func(r webclient.RoomInfo) bool { return r.Max == 5 })
	refused(webclient.Message{Type: "moderate", ID: "c1", Action: "record"}, `room "`+room+`" records already`)
	page.send(webclient.Message{Type: "moderate", ID: "c1", Action: "stop-recording"})
	roomIs("stop-recording", func(r webclient.RoomInfo) bool { return r.Recording == "" })
	page.send(webclient.Message{Type: "moderate", ID: "c1", Action: "record"})
	roomIs("record", func(r webclient.RoomInfo) bool { return r.Recording != "" })
	page.send(webclient.Message{Type: "moderate", ID: "c1", Action: "unlock"})
	page.send(webclient.Message{Type: "moderate", ID: "c1", Action: "max", Max: &zero})
	page.send(webclient.Message{Type: "moderate", ID: "c1", Action: "stop-recording"})
	roomIs("unlock, max 0 and stop-recording", func(r webclient.RoomInfo) bool { return !r.Locked && r.Max == 0 && r.Recording == "" })

	// GET /api/v1/rooms on node B lists the room, hosted on node A, with
	// its participants (the two phones and the page's cascade leg); node A
	// lists it as its own.
	var listed []webclient.RoomInfo
	if !waitUntil(10*time.Second, func() bool {
		listed = nil
		viewAPI(t, b, "/api/v1/rooms", &listed)
		return len(listed) == 1 && listed[0].Name == room && listed[0].Remote && listed[0].Node == "node-a" && listed[0].Participants == 3
	}) {
		t.Fatalf("node B lists the rooms %+v, want %s on node-a, remote, with 3 participants", listed, room)
	}
	viewAPI(t, a, "/api/v1/rooms", &listed)
	if len(listed) != 1 || listed[0].Remote || listed[0].Node != "node-a" || listed[0].Participants != 3 || len(listed[0].Legs) != 3 {
		t.Fatalf("node A lists the rooms %+v, want its own %s with 3 legs", listed, room)
	}

	// A third caller waits at the room's PIN on node A; the page lets it in.
	third := peertest.StartPhone(t, a.addr, peertest.Phone{User: "guest2", Codec: "pcmu", Dial: room})
	var held []api.PINCaller
	if !waitUntil(10*time.Second, func() bool { held = nil; viewAPI(t, a, "/api/v1/pin-callers", &held); return len(held) == 1 }) {
		t.Fatalf("guest2 is not asked for the PIN on node A:\n%s", third.Output())
	}
	page.send(webclient.Message{Type: "moderate", ID: "c1", Action: "admit", Leg: held[0].Leg})
	if !waitUntil(10*time.Second, func() bool { _, ok := page.lastByName("joined", "guest2"); return ok }) {
		t.Fatalf("the page's admit did not let guest2 in; messages %v", page.types())
	}
	if n := pinCallers(a); n != 0 {
		t.Errorf("%d callers still at the PIN on node A after the admit", n)
	}
	third.Command("hangup", "")
	third.WaitFor("terminated", 5*time.Second)
	third.Stop()

	page.send(webclient.Message{Type: "moderate", ID: "c1", Action: "kick", Leg: secondLeg})
	if !waitUntil(5*time.Second, func() bool { _, ok := page.last("kicked", secondLeg); return ok }) {
		t.Fatalf("the page was not told that it removed guest1; messages %v", page.types())
	}
	if !second.WaitEnded(5 * time.Second) {
		t.Errorf("guest1's call did not end when the page on node B removed it:\n%s", second.Output())
	}
	if !waitUntil(5*time.Second, func() bool { return len(viewRoom(t, a, room).Legs) == 2 }) {
		t.Errorf("room %s on node A has %d legs after the kick, want 2", room, len(viewRoom(t, a, room).Legs))
	}
	// guest1 has left: node A refuses the page's admit of it (a leg not
	// in the room), and node B's REST API answers 404 for it, as node A's
	// own does, with node A's reason.
	refused(webclient.Message{Type: "moderate", ID: "c1", Action: "admit", Leg: secondLeg}, fmt.Sprintf("leg %q in room %q: not found", secondLeg, room))
	for name, g := range map[string]*gateway{"A": a, "B": b} {
		var body webclient.APIError
		if code := g.api(t, "PATCH", "/api/v1/rooms/"+room+"/legs/"+secondLeg, `{"muted":true}`, &body); code != http.StatusNotFound || !strings.Contains(body.Error, secondLeg) {
			t.Errorf("muting guest1, gone, through node %s's API: %d %+v, want 404 naming the leg", name, code, body)
		}
	}
	if code := b.api(t, "DELETE", "/api/v1/rooms/"+room+"/legs/"+secondLeg, "", nil); code != http.StatusNotFound {
		t.Errorf("removing guest1, gone, through node B's API: %d, want 404", code)
	}
	// ... while its good commands still work.
	page.send(webclient.Message{Type: "moderate", ID: "c1", Action: "lock"})
	roomIs("lock after the refusals", func(r webclient.RoomInfo) bool { return r.Locked })
	if code := b.api(t, "PATCH", "/api/v1/rooms/"+room, `{"locked":false}`, nil); code != 200 {
		t.Errorf("unlocking the room through node B's API: %d", code)
	}
	roomIs("node B's API's unlock", func(r webclient.RoomInfo) bool { return !r.Locked })
	if errs := page.errors(); !slices.Equal(errs, refusals) {
		t.Errorf("the page got errors %q, want only the refusals %q", errs, refusals)
	}
	second.Stop()
	first.Command("hangup", "")
	first.WaitEnded(5 * time.Second)
	first.Stop()
}

// viewAPI GETs path from g's REST API into v.
func viewAPI(t *testing.T, g *gateway, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", g.web+path, nil)
	req.Header.Set("Authorization", "Bearer "+testAPIToken)
	res, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	if res.StatusCode == 200 {
		_ = json.NewDecoder(res.Body).Decode(v)
	}
	return res.StatusCode
}

// viewRoom is room as g's REST API shows it (no legs: not there).
func viewRoom(t *testing.T, g *gateway, room string) webclient.RoomInfo {
	var r webclient.RoomInfo
	viewAPI(t, g, "/api/v1/rooms/"+room, &r)
	return r
}

// viewPage is a page signed in on a node (a pion peer on loopback) that
// keeps every message it is sent.
type viewPage struct {
	t   *testing.T
	ws  *websocket.Conn
	wmu sync.Mutex
	pc  *webrtc.PeerConnection
	leg string // its hello's leg prefix
	up  chan struct{}
	og  *webclient.CandidateGate // its candidates wait for its join

	mu   sync.Mutex
	msgs []webclient.Message
	errs []string
}

func newViewPage(t *testing.T, g *gateway, user, password string) *viewPage {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	res, err := hc.Post(g.web+"/api/v1/login", "application/json", strings.NewReader(fmt.Sprintf(`{"user":%q,"password":%q}`, user, password)))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("sign-in: %v %v", res, err)
	}
	res.Body.Close()
	u, _ := url.Parse(g.web)
	h := http.Header{"Origin": {g.web}}
	for _, c := range jar.Cookies(u) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+u.Host+"/ws", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	var hello webclient.Message
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" {
		t.Fatalf("hello %+v %v", hello, err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	track, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "page")
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	p := &viewPage{t: t, ws: ws, pc: pc, leg: hello.Leg, up: make(chan struct{})}
	p.og = webclient.NewCandidateGate(p.send)
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(p.up) })
		}
	})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			j := c.ToJSON()
			p.og.Candidate(webclient.Message{Type: "candidate", ID: "c1", Candidate: &webclient.Candidate{Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex}})
		}
	})
	go p.read()
	return p
}

func (p *viewPage) send(m webclient.Message) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.ws.WriteJSON(m)
}

func (p *viewPage) read() {
	for {
		var m webclient.Message
		if err := p.ws.ReadJSON(&m); err != nil {
			return
		}
		switch m.Type {
		case "answer":
			_ = p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP})
		case "candidate":
			_ = p.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid, SDPMLineIndex: m.Candidate.SDPMLineIndex})
		}
		p.mu.Lock()
		p.msgs = append(p.msgs, m)
		if m.Type == "error" || m.Type == "ended" {
			p.errs = append(p.errs, m.Type+": "+m.Message+m.Reason)
		}
		p.mu.Unlock()
	}
}

// join offers a call into room and waits until its media connects.
func (p *viewPage) join(room string) {
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		p.t.Fatal(err)
	}
	p.og.Release(webclient.Message{Type: "join", ID: "c1", Room: room, SDP: offer.SDP})
	select {
	case <-p.up:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("the page's call did not connect; messages %v", p.types())
	}
}

// last is the last message of type typ (about leg, unless "").
func (p *viewPage) last(typ, leg string) (webclient.Message, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.msgs) - 1; i >= 0; i-- {
		if m := p.msgs[i]; m.Type == typ && (leg == "" || m.Leg == leg) {
			return m, true
		}
	}
	return webclient.Message{}, false
}

// lastByName is the last message of type typ about a participant named name.
func (p *viewPage) lastByName(typ, name string) (webclient.Message, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.msgs) - 1; i >= 0; i-- {
		if m := p.msgs[i]; m.Type == typ && m.Name == name {
			return m, true
		}
	}
	return webclient.Message{}, false
}

// errors are the page's error and ended messages so far.
func (p *viewPage) errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.errs)
}

// types lists the messages' types and legs, for failures.
func (p *viewPage) types() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.msgs {
		if m.Type != "candidate" {
			out = append(out, m.Type+":"+m.Leg)
		}
	}
	return out
}
