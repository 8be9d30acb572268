package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/audio/opus"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/webclient"
)

// An operator makes a guest link for the room a desk phone is in; a
// browser (pion, doing what the page does) opens it, signs in as a guest
// with a display name and joins: the room's API listing shows the name,
// the call is listed as origin guest, and the phone hears the guest's tone.
func TestGuestLinkJoinsRoomWithDisplayName(t *testing.T) {
	peertest.Need(t, "baresip")
	g := startGateway(t, func(cfg *Config) {
		noTones(cfg)
		cfg.Web.ICEIPs = []string{"127.0.0.1"}
		cfg.Web.LoopbackICE = true
	})
	const guestHz = 660.0
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: 1130, Dial: "8002"})
	defer alice.Stop()
	waitRoom(t, g, "002", func(r webclient.RoomInfo) bool { return len(r.Legs) == 1 })

	var link webclient.GuestLink
	if code := g.api(t, "POST", "/api/v1/rooms/002/guest-links", `{"ttl_seconds":600}`, &link); code != 201 {
		t.Fatalf("guest link: %d", code)
	}
	u, err := url.Parse(link.URL)
	if err != nil || u.Query().Get("guest") == "" {
		t.Fatalf("link %q", link.URL)
	}

	// Sign in as the page does with ?guest=: the token and a typed name.
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	body, _ := json.Marshal(map[string]string{"guest": u.Query().Get("guest"), "name": "Bob Guest"})
	res, err := hc.Post(g.web+"/api/v1/login", "application/json", strings.NewReader(string(body)))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("guest sign-in: %v %v", res, err)
	}
	res.Body.Close()
	h := http.Header{"Origin": {g.web}}
	for _, c := range jar.Cookies(u) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+u.Host+"/ws", h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	page := newGuestPage(t, ws)
	page.join("002")

	room := waitRoom(t, g, "002", func(r webclient.RoomInfo) bool { return len(r.Legs) == 2 })
	names := map[string]bool{}
	for _, l := range room.Legs {
		names[l.Name] = true
	}
	if !names["alice"] || !names["Bob Guest"] {
		t.Fatalf("the room lists %+v, want alice and Bob Guest", room.Legs)
	}
	var calls []webclient.CallInfo
	g.api(t, "GET", "/api/v1/calls/active", "", &calls)
	guests := 0
	for _, c := range calls {
		if c.Origin == "guest" && c.From == "Bob Guest" && c.Room == "002" {
			guests++
		}
	}
	if guests != 1 {
		t.Fatalf("active calls %+v: want one guest call", calls)
	}
	if !page.sawParticipant("alice") {
		t.Errorf("the guest's page was not told alice is in the room")
	}

	page.sendTone(guestHz, 3*time.Second)
	alice.Command("hangup", "")
	alice.WaitEnded(5 * time.Second)
	alice.Stop()
	p := peertest.BestWindow(alice.Received(), 2*time.Second, []float64{guestHz, 1130})
	t.Logf("the desk phone hears: guest %.2g, itself %.2g", p[0], p[1])
	if p[0] < 1e-3 || p[1] > p[0]/100 {
		t.Errorf("the desk phone does not hear the guest: guest %.2g, itself %.2g", p[0], p[1])
	}
}

// waitRoom polls the API until room satisfies ok (10 s at most).
func waitRoom(t *testing.T, g *gateway, name string, ok func(webclient.RoomInfo) bool) webclient.RoomInfo {
	t.Helper()
	var r webclient.RoomInfo
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r = webclient.RoomInfo{}
		if g.api(t, "GET", "/api/v1/rooms/"+name, "", &r) == 200 && ok(r) {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("room %s never got there: %+v", name, r)
	return r
}

// guestPage is a pion PeerConnection signalled as the page does.
type guestPage struct {
	t     *testing.T
	ws    *websocket.Conn
	wmu   sync.Mutex
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticSample
	up    chan struct{}
	og    *webclient.CandidateGate // its candidates wait for its join

	mu     sync.Mutex
	people []string
	errs   []string
}

func newGuestPage(t *testing.T, ws *websocket.Conn) *guestPage {
	t.Helper()
	var hello webclient.Message
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" || hello.User != "Bob Guest" || hello.Room != "002" {
		t.Fatalf("hello %+v %v", hello, err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	return newPionPage(t, ws, "guest")
}

// newPionPage plays a browser page on ws (signed in, its hello read):
// a pion peer with an Opus track labelled label, on loopback, that
// signals its candidates as call c1 and reads the page's messages.
func newPionPage(t *testing.T, ws *websocket.Conn, label string) *guestPage {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	track, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", label)
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	p := &guestPage{t: t, ws: ws, pc: pc, track: track, up: make(chan struct{})}
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

func (p *guestPage) send(m webclient.Message) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.ws.WriteJSON(m)
}

func (p *guestPage) read() {
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
		case "participants":
			p.mu.Lock()
			p.people = append(p.people, m.Names...)
			p.mu.Unlock()
		case "error":
			p.mu.Lock()
			p.errs = append(p.errs, m.Message)
			p.mu.Unlock()
		case "ended":
			p.mu.Lock()
			p.errs = append(p.errs, "ended: "+m.Reason)
			p.mu.Unlock()
		}
	}
}

// join offers a call into room and waits until its media connects.
func (p *guestPage) join(room string) {
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
		p.mu.Lock()
		defer p.mu.Unlock()
		p.t.Fatalf("the guest's call did not connect (errors %q)", p.errs)
	}
}

func (p *guestPage) sawParticipant(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.people {
		if n == name {
			return true
		}
	}
	return false
}

// sendTone sends a tone as Opus in 20 ms frames for d.
func (p *guestPage) sendTone(freq float64, d time.Duration) { sendOpusTone(p.t, p.track, freq, d) }

// sendOpusTone sends freq on track as 48 kHz Opus in 20 ms frames, in real
// time, for d (a pion page's microphone).
func sendOpusTone(t testing.TB, track *webrtc.TrackLocalStaticSample, freq float64, d time.Duration) {
	enc, err := opus.NewEncoder(48000, opus.EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tone := audio.Tone{Rate: 48000, Freq: freq, Level: 0.4}
	pcm := make([]int16, 960)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < int(d/(20*time.Millisecond)); i++ {
		<-tick.C
		tone.Fill(pcm)
		pkt, _ := enc.Encode(nil, pcm)
		_ = track.WriteSample(media.Sample{Data: pkt, Duration: 20 * time.Millisecond})
	}
}

// Headless Chromium opens a guest link that fixes the display name: the
// real page signs in as the guest and joins the link's room at once; the
// room's API listing shows the name. (The API is called with a hashed
// admin token of web.tokens, from inside the namespace.)
func TestChromiumOpensGuestLink(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "curl")
	ns := peertest.NewNetns(t)
	const admin = "e2e-admin-token"
	base, _, _ := browserGatewayWithSIP(t, ns, false, func(cfg *Config) {
		cfg.Web.Tokens = []webclient.Token{{Name: "e2e", SHA256: webclient.HashToken(admin), Scopes: []string{"admin"}}}
	})
	api := func(method, path, body string, out any) int {
		cmd := ns.Command(context.Background(), "curl", "-s", "-m", "5", "-X", method, "-H", "Authorization: Bearer "+admin,
			"-H", "Content-Type: application/json", "--data-raw", body, "-w", "\n%{http_code}", base+path)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("curl %s %s: %v", method, path, err)
		}
		s := strings.TrimSpace(string(b))
		i := strings.LastIndexByte(s, '\n')
		code, _ := strconv.Atoi(s[i+1:])
		if out != nil && i > 0 {
			_ = json.Unmarshal([]byte(s[:i]), out)
		}
		return code
	}
	var link webclient.GuestLink
	if code := api("POST", "/api/v1/rooms/lobby/guest-links", `{"name":"Carol Guest","ttl_seconds":300}`, &link); code != 201 {
		t.Fatalf("guest link: %d", code)
	}
	chromium(t, ns, base, link.URL, toneFile(t, 48000, 440))
	var room webclient.RoomInfo
	deadline := time.Now().Add(20 * time.Second) // Chromium starts slowly on a busy machine
	for time.Now().Before(deadline) {
		room = webclient.RoomInfo{}
		if api("GET", "/api/v1/rooms/lobby", "", &room) == 200 && len(room.Legs) == 1 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(room.Legs) != 1 || room.Legs[0].Name != "Carol Guest" {
		t.Fatalf("room lobby: %+v, want the guest Carol Guest\n%s", room, logsOf(t))
	}
	if !strings.Contains(logsOf(t), "guest signed in") {
		t.Errorf("no guest sign-in logged")
	}
}
