package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/audio/opus"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/webclient"
)

// A user's open page on another node rings for a call on this one. On the
// test LAN (clusterNet: each node, phone and page in a namespace of its
// own), alice's desk phone registers through node A and calls bob; bob has
// no WebSocket registration anywhere, a desk phone registered through node
// A (it does not pick up) and a page open on node B only (a pion peer
// speaking the page's protocol, in its own namespace). Node B wrote
// pages:bob in Redis when the page opened; node A rings bob's phone and
// forwards the call to B (X-Voxgate-User), which rings the page. Both ring
// together; the page answers, the phone stops ringing, and each of alice
// and the page hears the other's tone. When the page closes, pages:bob no
// longer names node B.
func TestClusterLANPhoneRingsPageOnOtherNode(t *testing.T) {
	peertest.Need(t, "ip", "baresip", "redis-server")
	cn := newClusterNet(t)
	ctx := context.Background()
	nodes := []*clusterNode{cn.newNode(t, "a", 0), cn.newNode(t, "b", 1)}
	a, b := nodes[0], nodes[1]
	if !waitUntil(10*time.Second, func() bool { ns, _ := cn.shared.Nodes(ctx); return len(ns) == 2 }) {
		t.Fatal("the nodes did not join the cluster (node:<id> in Redis)")
	}
	const aliceHz, pageHz = 700.0, 1100.0
	bobPhone := cn.phone(t, a.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Register: true, Answer: "manual"})
	page := newLANPage(t, cn, b, "bob", "bob-secret")
	if !waitUntil(10*time.Second, func() bool {
		ns, _ := cn.shared.PageNodes(ctx, "bob", time.Now())
		return slices.Equal(ns, []string{b.advertise})
	}) {
		ns, _ := cn.shared.PageNodes(ctx, "bob", time.Now())
		t.Fatalf("pages:bob names %v, want node b (%s)", ns, b.advertise)
	}

	alice := cn.phone(t, a.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Register: true})
	alice.Command("dial", "sip:bob@"+a.addr)
	in := page.incoming(15 * time.Second)
	if !bobPhone.WaitFor("Incoming call", 10*time.Second) {
		t.Fatalf("bob's desk phone (node a) did not ring alongside his page on node b:\n%s", bobPhone.Output())
	}
	page.answer(in)
	if !alice.WaitFor("Call established", 10*time.Second) {
		t.Fatalf("alice's call was not answered by the page:\n%s", alice.Output())
	}
	if !bobPhone.WaitFor("session closed", 10*time.Second) { // baresip: an incoming call cancelled
		t.Errorf("bob's desk phone kept ringing after the page answered:\n%s", bobPhone.Output())
	}
	page.sendTone(pageHz, 4*time.Second)
	alice.Command("hangup", "")
	alice.WaitFor("terminated", 5*time.Second)
	alice.Stop()
	heardPage := alice.HeardSeconds(pageHz, 0)
	heardAlice := page.heardSeconds(aliceHz)
	t.Logf("alice (node a) heard the page (node b) for %.1f s; the page heard alice for %.1f s", heardPage, heardAlice)
	if heardPage < 2 {
		t.Errorf("alice heard the page for %.1f s", heardPage)
	}
	if heardAlice < 2 {
		t.Errorf("the page heard alice for %.1f s", heardAlice)
	}
	if strings.Contains(bobPhone.Output(), "Call established") {
		t.Errorf("bob's desk phone was connected too:\n%s", bobPhone.Output())
	}
	if out := b.p.output(); !strings.Contains(out, `"origin":"forward"`) {
		t.Errorf("node b did not take a forwarded call")
	}

	// The page closes: node b takes itself out of pages:bob.
	page.close()
	if !waitUntil(10*time.Second, func() bool { ns, _ := cn.shared.PageNodes(ctx, "bob", time.Now()); return len(ns) == 0 }) {
		ns, _ := cn.shared.PageNodes(ctx, "bob", time.Now())
		t.Errorf("pages:bob names %v after the page closed", ns)
	}
	bobPhone.Stop()
}

// lanPage is a voxgate page signed in on a node of the test LAN from a
// namespace of its own: the page's WebSocket protocol over the LAN and a
// pion peer (Opus) whose ICE is on the namespace's address.
type lanPage struct {
	t     *testing.T
	ns    *peertest.Netns
	ws    *websocket.Conn
	wmu   sync.Mutex
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticSample
	up    chan struct{}
	msgs  chan webclient.Message

	mu    sync.Mutex
	heard []int16 // what it received, 48 kHz
}

func newLANPage(t *testing.T, cn *clusterNet, n *clusterNode, user, password string) *lanPage {
	t.Helper()
	ns := cn.join(t)
	base := n.p.webBase(t)
	jar, _ := cookiejar.New(nil)
	hc := ns.HTTPClient(5 * time.Second)
	hc.Jar = jar
	res, err := hc.Post(base+"/api/v1/login", "application/json", strings.NewReader(fmt.Sprintf(`{"user":%q,"password":%q}`, user, password)))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("sign-in on node %s: %v %v", n.name, res, err)
	}
	res.Body.Close()
	u, _ := url.Parse(base)
	h := http.Header{"Origin": {base}}
	for _, c := range jar.Cookies(u) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	d := websocket.Dialer{NetDialContext: ns.DialContext, HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("ws://"+u.Host+"/ws", h)
	if err != nil {
		t.Fatal(err)
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, ns.ListenUDP(t, ns.IP+":0"))) // host candidates: the namespace's address
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	track, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "page")
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	p := &lanPage{t: t, ns: ns, ws: ws, pc: pc, track: track, up: make(chan struct{}), msgs: make(chan webclient.Message, 64)}
	t.Cleanup(p.close)
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(p.up) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		dec, err := opus.NewDecoder(48000)
		if err != nil {
			return
		}
		var pcm []int16
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if pcm, err = dec.Decode(pcm[:0], pkt.Payload); err != nil {
				continue
			}
			p.mu.Lock()
			p.heard = append(p.heard, pcm...)
			p.mu.Unlock()
		}
	})
	go p.read()
	if hello := p.next("hello", 5*time.Second); hello.User != user {
		t.Fatalf("hello %+v", hello)
	}
	return p
}

func (p *lanPage) send(m webclient.Message) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.ws.WriteJSON(m)
}

func (p *lanPage) read() {
	defer close(p.msgs)
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
		default:
			select {
			case p.msgs <- m:
			default:
			}
		}
	}
}

// next waits for the next message of type typ (others are skipped).
func (p *lanPage) next(typ string, within time.Duration) webclient.Message {
	p.t.Helper()
	deadline := time.After(within)
	var seen []string
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				p.t.Fatalf("the page's WebSocket closed waiting for %q (saw %v)", typ, seen)
			}
			if m.Type == typ {
				return m
			}
			seen = append(seen, m.Type+":"+m.Message+m.Reason)
		case <-deadline:
			p.t.Fatalf("the page got no %q within %s (saw %v)", typ, within, seen)
		}
	}
}

// incoming waits for a call to ring the page.
func (p *lanPage) incoming(within time.Duration) webclient.Message {
	p.t.Helper()
	return p.next("incoming", within)
}

// answer takes the incoming call in (the page offers, voxgate answers) and
// waits until its media connects.
func (p *lanPage) answer(in webclient.Message) {
	p.t.Helper()
	og := webclient.NewCandidateGate(p.send) // its candidates wait for its answer
	p.pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			j := c.ToJSON()
			og.Candidate(webclient.Message{Type: "candidate", ID: in.ID, Candidate: &webclient.Candidate{Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex}})
		}
	})
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		p.t.Fatal(err)
	}
	og.Release(webclient.Message{Type: "answer", ID: in.ID, SDP: offer.SDP})
	select {
	case <-p.up:
	case <-time.After(15 * time.Second):
		p.t.Fatal("the page's answered call did not connect (ICE/DTLS across the LAN)")
	}
}

// sendTone sends freq for d, in real time.
func (p *lanPage) sendTone(freq float64, d time.Duration) { sendOpusTone(p.t, p.track, freq, d) }

// heardSeconds is how long the page heard freq.
func (p *lanPage) heardSeconds(freq float64) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return audio.ToneSeconds(p.heard, 48000, freq, 0.2)
}

// close closes the page (its WebSocket and peer). Idempotent.
func (p *lanPage) close() {
	_ = p.ws.Close()
	_ = p.pc.Close()
}
