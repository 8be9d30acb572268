package webclient

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/audio/opus"
	"github.com/voxgate/voxgate/bridge"
)

type passwords map[string]string

func (p passwords) CheckPassword(u, pw string) bool { v, ok := p[u]; return ok && v == pw }

type echoHandler struct{}

func (echoHandler) HandleCall(ctx context.Context, c *Call) {
	if c.Dialed() != "9196" {
		c.Reject(404, "not found")
		return
	}
	_ = c.Answer(ctx)
	_ = bridge.Echo(ctx, c)
}

func testWeb(t *testing.T) (*Server, string) {
	t.Helper()
	s, err := NewServer(Config{Listen: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}, LoopbackICE: true, UDPPorts: "41000-41999"},
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithAuthenticator(passwords{"alice": "pw"}), WithHandler(echoHandler{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, "http://" + s.Addr().String()
}

// client signs in and opens the WebSocket.
type client struct {
	t    *testing.T
	http *http.Client
	ws   *websocket.Conn
	in   chan Message
	wmu  sync.Mutex
}

func (c *client) send(m Message) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteJSON(m)
}

func signIn(t *testing.T, base, user, pw string) (*http.Client, int) {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	res, err := hc.Post(base+"/api/login", "application/json", strings.NewReader(`{"user":"`+user+`","password":"`+pw+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return hc, res.StatusCode
}

func dialWS(t *testing.T, base string, hc *http.Client, origin string) (*websocket.Conn, *http.Response, error) {
	u, _ := url.Parse(base)
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	if hc != nil {
		for _, c := range hc.Jar.Cookies(u) {
			h.Add("Cookie", c.Name+"="+c.Value)
		}
	}
	return websocket.DefaultDialer.Dial("ws://"+u.Host+"/ws", h)
}

func newClient(t *testing.T, base string) *client {
	hc, code := signIn(t, base, "alice", "pw")
	if code != 200 {
		t.Fatalf("sign-in: %d", code)
	}
	ws, _, err := dialWS(t, base, hc, base)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, http: hc, ws: ws, in: make(chan Message, 100)}
	go func() {
		for {
			var m Message
			if err := ws.ReadJSON(&m); err != nil {
				close(c.in)
				return
			}
			c.in <- m
		}
	}()
	t.Cleanup(func() { ws.Close() })
	return c
}

// expect returns the next message of type typ (of any type if typ is "").
func (c *client) expect(typ string) Message {
	c.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-c.in:
			if !ok {
				c.t.Fatalf("socket closed waiting for %s", typ)
			}
			if m.Type == typ || typ == "" {
				return m
			}
		case <-timeout:
			c.t.Fatalf("no %s message", typ)
		}
	}
}

func TestSignInAndWebSocketRefusals(t *testing.T) {
	_, base := testWeb(t)
	if _, code := signIn(t, base, "alice", "wrong"); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	if _, res, err := dialWS(t, base, nil, ""); err == nil || res == nil || res.StatusCode != 401 {
		t.Fatalf("WebSocket without a session: %v", err)
	}
	hc, _ := signIn(t, base, "alice", "pw")
	if _, res, err := dialWS(t, base, hc, "http://evil.example"); err == nil || res.StatusCode != 403 {
		t.Fatalf("foreign origin: %v", err)
	}
	res, err := hc.Get(base + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz: %v", err)
	}
	res, err = hc.Get(base + "/")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("page: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(body), "voxgate.js") {
		t.Fatal("the page is not served")
	}
}

// Garbage gets an error message and the socket (and other sessions) go on.
func TestBadMessages(t *testing.T) {
	_, base := testWeb(t)
	c := newClient(t, base)
	other := newClient(t, base)
	c.expect("hello")
	other.expect("hello")
	for _, raw := range []string{
		`{not json`,
		`{"type":"teleport"}`,
		`{"type":"dial","id":"x","number":"9196","sdp":"garbage"}`,
		`{"type":"join","id":"x","sdp":"v=0\r\n"}`,
		`{"type":"dial","id":"x","number":"9196","sdp":"v=0\r\nthis is not sdp"}`,
		`{"type":"candidate","id":"nope","candidate":{"candidate":"candidate:1 1 carrier-pigeon"}}`,
		`{"type":"dtmf","id":"x","digits":"12;rm -rf"}`,
	} {
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
			t.Fatal(err)
		}
		if m := c.expect("error"); m.Message == "" {
			t.Fatalf("%s: empty error", raw)
		}
	}
	_ = c.ws.WriteJSON(Message{Type: "ping"})
	c.expect("pong")
	_ = other.ws.WriteJSON(Message{Type: "ping"})
	other.expect("pong")
	// An oversized message closes only that socket.
	big := `{"type":"ping","id":"` + strings.Repeat("x", MaxMessage) + `"}`
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte(big))
	deadline := time.After(3 * time.Second)
	for open := true; open; {
		select {
		case _, ok := <-c.in:
			open = ok
		case <-deadline:
			t.Fatal("an oversized message did not close the socket")
		}
	}
	_ = other.ws.WriteJSON(Message{Type: "ping"})
	other.expect("pong")
}

// A pion peer plays the browser: it signs in, dials the echo with Opus and
// hears its own tone back through voxgate's media path.
func TestBrowserEchoWithPion(t *testing.T) {
	_, base := testWeb(t)
	c := newClient(t, base)
	c.expect("hello")

	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	track, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "b")
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var heard []int16
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		dec, _ := opus.NewDecoder(48000)
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			mu.Lock()
			heard, _ = dec.Decode(heard, p.Payload)
			mu.Unlock()
		}
	})
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil {
			j := cand.ToJSON()
			c.send(Message{Type: "candidate", ID: "c1", Candidate: &Candidate{Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex}})
		}
	})
	offer, _ := pc.CreateOffer(nil)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	c.send(Message{Type: "dial", ID: "c1", Number: "9196", SDP: offer.SDP})
	var ans Message
	for ans.Type != "answer" { // pion gathers while answering: nothing may overtake the answer
		ans = c.expect("")
		if ans.Type == "candidate" {
			t.Fatal("a candidate came before the answer: the browser would drop it")
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans.SDP}); err != nil {
		t.Fatal(err)
	}
	var errs, answers atomic.Int32
	go func() {
		for m := range c.in {
			switch m.Type {
			case "candidate":
				_ = pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid, SDPMLineIndex: m.Candidate.SDPMLineIndex})
			case "error":
				errs.Add(1)
			case "answer": // to the ICE restart
				answers.Add(1)
				_ = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP})
			}
		}
	}()
	enc, _ := opus.NewEncoder(48000, opus.EncoderOptions{})
	tone := audio.Tone{Rate: 48000, Freq: 660, Level: 0.4}
	pcm := make([]int16, 960)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 150; i++ { // 3 s
		if i == 50 {
			// A second dial for the same call is refused; an ICE restart
			// (a new offer for it) is answered and the audio goes on.
			c.send(Message{Type: "dial", ID: "c1", Number: "9196", SDP: offer.SDP})
			restart, _ := pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
			if err := pc.SetLocalDescription(restart); err != nil {
				t.Fatal(err)
			}
			c.send(Message{Type: "offer", ID: "c1", SDP: restart.SDP})
		}
		<-tick.C
		tone.Fill(pcm)
		p, _ := enc.Encode(nil, pcm)
		_ = track.WriteSample(media.Sample{Data: p, Duration: 20 * time.Millisecond})
	}
	mu.Lock()
	got := append([]int16(nil), heard...)
	mu.Unlock()
	secs := audio.ToneSeconds(got, 48000, 660, 0.2)
	t.Logf("heard %.2f s, the tone in %.2f s", float64(len(got))/48000, secs)
	if secs < 1.5 {
		t.Fatalf("the echo carried the tone for %.2f s of 3", secs)
	}
	// The last second, after the restart, carries the tone too.
	if late := audio.ToneSeconds(got[len(got)-48000:], 48000, 660, 0.2); late < 0.8 {
		t.Fatalf("after the ICE restart the tone is in %.2f s of the last second", late)
	}
	if errs.Load() != 1 || answers.Load() != 1 {
		t.Fatalf("second dial: %d errors (want 1); ICE restart: %d answers (want 1)", errs.Load(), answers.Load())
	}
	c.send(Message{Type: "hangup", ID: "c1"})
}

func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{`{"type":"dial","id":"c1","number":"9196","sdp":"v=0\r\n"}`, `{"type":"ping"}`,
		`{"type":"candidate","id":"c1","candidate":{"candidate":"x","sdpMid":"0","sdpMLineIndex":0}}`, `{"type":"mute","id":"c","on":true}`, `{"type":"join","id":"c2","room":"8001","sdp":"v=0\r\n"}`, `{"type":"dtmf","id":"c","digits":"1#"}`,
		`{"type":"moderate","id":"c1","action":"mute","leg":"bob/c2"}`, `{"type":"moderate","id":"c1","action":"lock"}`, `{"type":"room-stats","id":"c1"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeMessage(out); err != nil {
			t.Fatalf("a valid message does not survive a round trip: %v", err)
		}
	})
}

func TestSessionsExpireAndResistForgery(t *testing.T) {
	s := newSessions(time.Hour)
	tok := s.issue("alice")
	if u, err := s.check(tok); err != nil || u.user != "alice" || u.guest() {
		t.Fatalf("fresh token: %q %v", u, err)
	}
	if _, err := s.check(strings.Replace(tok, "|", "x|", 1)); err == nil {
		t.Fatal("a tampered token was accepted")
	}
	if _, err := newSessions(time.Hour).check(tok); err == nil {
		t.Fatal("another process's token was accepted")
	}
	s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := s.check(tok); err == nil {
		t.Fatal("an expired token was accepted")
	}
}

func TestJoinIsADialOfTheRoomNumber(t *testing.T) {
	m, err := DecodeMessage([]byte(`{"type":"join","id":"c1","room":"8001","sdp":"v=0\r\n"}`))
	if err != nil || m.Number != "8001" || m.Room != "8001" {
		t.Fatalf("join decoded as %+v, %v", m, err)
	}
}
