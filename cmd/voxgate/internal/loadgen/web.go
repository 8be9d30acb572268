package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// message is the page protocol's message (webclient/protocol.go), the
// fields a page uses.
type message struct {
	Type      string                   `json:"type"`
	ID        string                   `json:"id,omitempty"`
	SDP       string                   `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	User      string                   `json:"user,omitempty"`
	Reason    string                   `json:"reason,omitempty"`
	Message   string                   `json:"message,omitempty"`
}

// newBrowserAPI is pion set up like a browser on this machine: the default
// codecs and interceptors (NACK, RTCP reports, TWCC), host candidates on
// loopback only.
func newBrowserAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg)), nil
}

// page is one signed-in browser tab that answers the first incoming call
// and then sends src and counts what it hears.
type page struct {
	api *webrtc.API
	ws  *websocket.Conn
	wmu sync.Mutex
	// The call's own candidates wait for its "answer" (the offer) to be
	// sent: pion gathers in its own goroutine, and voxgate answers a
	// candidate of a call it does not know yet with "no such call".
	gmu     sync.Mutex
	offered bool
	held    []message
	st      *stream
	add     func(*stream) // hands the stream to the pump once media can flow
	up      chan struct{} // closed when the call's media is connected
	upOnce  sync.Once

	mu      sync.Mutex
	pc      *webrtc.PeerConnection
	id      string
	remote  bool // the answer is applied: candidates can be added
	pending []webrtc.ICECandidateInit
	err     error
}

// openPage signs in as user and opens the WebSocket, as the page's script does.
func openPage(ctx context.Context, api *webrtc.API, base, user, password string, st *stream, add func(*stream)) (*page, error) {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	body, _ := json.Marshal(map[string]string{"user": user, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/login", strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sign-in as %s: %s", user, res.Status)
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	h := http.Header{"Origin": {base}}
	for _, c := range jar.Cookies(u) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+u.Host+"/ws", h)
	if err != nil {
		return nil, fmt.Errorf("WebSocket of %s: %w", user, err)
	}
	p := &page{api: api, ws: ws, st: st, add: add, up: make(chan struct{})}
	var hello message
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" {
		ws.Close()
		return nil, fmt.Errorf("WebSocket of %s: no hello (%v)", user, err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	go p.read()
	return p, nil
}

func (p *page) send(m message) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_ = p.ws.WriteJSON(m)
}

func (p *page) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

// read handles voxgate's messages until the socket closes.
func (p *page) read() {
	for {
		var m message
		if err := p.ws.ReadJSON(&m); err != nil {
			return
		}
		switch m.Type {
		case "incoming":
			p.mu.Lock()
			busy := p.pc != nil
			p.mu.Unlock()
			if busy {
				p.send(message{Type: "reject", ID: m.ID})
				continue
			}
			if err := p.answer(m.ID); err != nil {
				p.fail(err)
				p.send(message{Type: "reject", ID: m.ID})
			}
		case "answer":
			p.mu.Lock()
			pc := p.pc
			p.mu.Unlock()
			if pc == nil {
				continue
			}
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
				p.fail(err)
				continue
			}
			p.mu.Lock()
			p.remote = true
			pending := p.pending
			p.pending = nil
			p.mu.Unlock()
			for _, c := range pending {
				_ = pc.AddICECandidate(c)
			}
		case "candidate":
			if m.Candidate == nil {
				continue
			}
			p.mu.Lock()
			pc, ready := p.pc, p.remote
			if pc != nil && !ready {
				p.pending = append(p.pending, *m.Candidate)
			}
			p.mu.Unlock()
			if pc != nil && ready {
				_ = pc.AddICECandidate(*m.Candidate)
			}
		case "error":
			p.fail(fmt.Errorf("voxgate: %s", m.Message))
		case "ended":
			p.st.closed.Store(true)
		}
	}
}

// answer takes an incoming call: the page makes the offer (it always does
// in this protocol) and sends it as the answer to the ring.
func (p *page) answer(id string) error {
	p.gmu.Lock()
	p.offered, p.held = false, nil
	p.gmu.Unlock()
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "loadgen")
	if err != nil {
		pc.Close()
		return err
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		pc.Close()
		return err
	}
	go func() { // RTCP for the interceptors
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	p.st.write = func(b []byte) error { _, err := track.Write(b); return err }
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			n, _, err := t.Read(buf)
			if err != nil {
				return
			}
			p.st.received(buf[:n])
		}
	})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			j := c.ToJSON()
			p.candidate(message{Type: "candidate", ID: id, Candidate: &j})
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			p.upOnce.Do(func() {
				p.add(p.st)
				close(p.up)
			})
		case webrtc.PeerConnectionStateFailed:
			p.fail(errors.New("peer connection failed"))
		}
	})
	p.mu.Lock()
	p.pc, p.id = pc, id
	p.mu.Unlock()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	p.offer(message{Type: "answer", ID: id, SDP: offer.SDP})
	return nil
}

// candidate sends one of the call's own candidates, or holds it until the
// offer has gone.
func (p *page) candidate(m message) {
	p.gmu.Lock()
	defer p.gmu.Unlock()
	if !p.offered {
		p.held = append(p.held, m)
		return
	}
	p.send(m)
}

// offer sends the call's offer, then the candidates held until now.
func (p *page) offer(m message) {
	p.gmu.Lock()
	defer p.gmu.Unlock()
	p.send(m)
	p.offered = true
	for _, c := range p.held {
		p.send(c)
	}
	p.held = nil
}

// wait returns once the call's media is connected.
func (p *page) wait(ctx context.Context) error {
	select {
	case <-p.up:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.err != nil {
			return p.err
		}
		return fmt.Errorf("the page's call did not connect: %w", ctx.Err())
	}
}

// hangup ends the call from the page and closes it.
func (p *page) hangup() {
	p.st.closed.Store(true)
	p.mu.Lock()
	pc, id := p.pc, p.id
	p.mu.Unlock()
	if pc != nil {
		p.send(message{Type: "hangup", ID: id})
		_ = pc.Close()
	}
	p.ws.Close()
}
