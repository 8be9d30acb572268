package webclient

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/voxgate/voxgate/bridge"
)

// callCatcher answers the echo and hands each call to the test.
type callCatcher struct{ calls chan *Call }

func (h callCatcher) HandleCall(ctx context.Context, c *Call) {
	h.calls <- c
	_ = c.Answer(ctx)
	_ = bridge.Echo(ctx, c)
}

// A client whose candidates all go out before its "dial" (as a pion or
// other client may send them: gathering runs on its own): voxgate holds
// them, adds them to the call once its offer is in, and answers no error.
// Candidates for a call that never starts get "no such call" after the
// wait; beyond the held calls' bound at once; garbage at once.
func TestEarlyCandidatesWaitForTheirCall(t *testing.T) {
	logs := &syncBuffer{}
	calls := make(chan *Call, 4)
	s, err := NewServer(Config{Listen: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}, LoopbackICE: true, UDPPorts: "41000-41999"},
		WithLogger(slog.New(slog.NewTextHandler(logs, nil))), WithAuthenticator(passwords{"alice": "pw"}), WithHandler(callCatcher{calls}))
	if err != nil {
		t.Fatal(err)
	}
	s.earlyWait = 500 * time.Millisecond
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	base := "http://" + s.Addr().String()
	c := newClient(t, base)
	c.expect("hello")

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
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	var mine []Message
	var mu sync.Mutex
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil {
			j := cand.ToJSON()
			mu.Lock()
			mine = append(mine, Message{Type: "candidate", ID: "c1", Candidate: &Candidate{Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex}})
			mu.Unlock()
		}
	})
	offer, err := pc.CreateOffer(nil) // no candidates in it
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	mu.Lock()
	early := mine
	mu.Unlock()
	if len(early) == 0 {
		t.Fatal("the client gathered no candidate")
	}
	for _, cand := range early {
		c.send(cand)
	}
	c.send(Message{Type: "dial", ID: "c1", Number: "9196", SDP: offer.SDP})
	for {
		got := c.expect("")
		if got.Type == "error" {
			t.Fatalf("an early candidate got %q", got.Message)
		}
		if got.Type == "answer" {
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: got.SDP}); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	var call *Call
	select {
	case call = <-calls:
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not reach the handler")
	}
	// voxgate's side knows the client's host candidate on loopback: it
	// was added (a candidate only learnt from the client's checks would be
	// peer-reflexive).
	host := false
	for end := time.Now().Add(5 * time.Second); !host && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for _, st := range call.pc.GetStats() {
			if rc, ok := st.(webrtc.ICECandidateStats); ok && rc.Type == webrtc.StatsTypeRemoteCandidate && rc.CandidateType == webrtc.ICECandidateTypeHost && rc.IP == "127.0.0.1" {
				host = true
			}
		}
	}
	if !host {
		t.Error("voxgate's side of the call has no host candidate of the client's: the early candidates were not added")
	}
	if !strings.Contains(logs.String(), "early_candidates=") || strings.Contains(logs.String(), "early_candidates=0") {
		t.Errorf("voxgate did not log the early candidates it added:\n%s", logs.String())
	}

	// A call that never comes: "no such call" once the wait is over.
	ghost := early[0]
	ghost.ID = "ghost"
	c.send(ghost)
	start := time.Now()
	if e := c.expect("error"); e.ID != "ghost" || !strings.Contains(e.Message, "no such call") {
		t.Fatalf("the ghost call's candidate: %+v", e)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("the ghost call's candidate was refused after %v, before the wait (500ms)", d)
	}
	// Too many calls waiting: the one beyond the bound is refused at once.
	for i, id := range []string{"w1", "w2", "w3", "w4", "w5"} {
		m := early[0]
		m.ID = id
		c.send(m)
		if i < maxEarlyCalls {
			continue
		}
		if e := c.expect("error"); e.ID != id || !strings.Contains(e.Message, "no such call") {
			t.Fatalf("candidate of the %d-th waiting call: %+v", i+1, e)
		}
	}
	// Garbage is refused at once, not held.
	c.send(Message{Type: "candidate", ID: "junk", Candidate: &Candidate{Candidate: "candidate:1 1 carrier-pigeon"}})
	for {
		e := c.expect("error")
		if e.ID == "junk" {
			if !strings.Contains(e.Message, "bad candidate") {
				t.Fatalf("garbage candidate: %+v", e)
			}
			break
		}
	}
	c.send(Message{Type: "hangup", ID: "c1"})
}
