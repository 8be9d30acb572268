package main

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/webclient"
)

// A page signed in on one node calls a phone registered through Kamailio
// on the other node: the node reads the binding from Redis and rings the
// phone through Kamailio, and the phone hears the page. Two in-process
// nodes (the page is a pion peer: loopback ICE is a test knob), each on
// its own port of 127.0.0.1, behind the shipped Kamailio config.
func TestClusterPageCallsPhoneOnOtherNode(t *testing.T) {
	peertest.Need(t, "baresip", "kamailio", "redis-server")
	red := peertest.StartRedis(t)
	var nodes []*gateway
	var advertised []string
	for _, id := range []string{"a", "b"} {
		var adv string
		nodes = append(nodes, startGateway(t, func(cfg *Config) {
			cfg.Web.ICEIPs = []string{"127.0.0.1"}
			cfg.Web.LoopbackICE = true
			adv = "sip:" + cfg.SIP.Listen[0].Addr
			cfg.Cluster = ClusterConfig{Redis: red.URL(), NodeID: "node-" + id, Advertise: adv, RoomTTL: 3 * time.Second}
		}))
		advertised = append(advertised, adv)
	}
	kamAddr, _ := startClusterKamailio(t, advertised, red.Port)
	const phoneHz, pageHz = 700.0, 1100.0
	alice := peertest.StartPhone(t, kamAddr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: phoneHz, Register: true})
	var page *gateway
	switch {
	case len(nodes[0].srv.Bindings("alice")) == 1:
		page = nodes[1]
	case len(nodes[1].srv.Bindings("alice")) == 1:
		page = nodes[0]
	default:
		t.Fatal("no node holds alice's registration")
	}
	if len(page.srv.Bindings("alice")) != 0 {
		t.Fatal("both nodes hold alice's registration")
	}

	// bob signs in on the other node and dials alice from the page.
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	res, err := hc.Post(page.web+"/api/v1/login", "application/json", strings.NewReader(`{"user":"bob","password":"bob-secret"}`))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("sign-in: %v %v", res, err)
	}
	res.Body.Close()
	u, _ := url.Parse(page.web)
	h := http.Header{"Origin": {page.web}}
	for _, c := range jar.Cookies(u) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+u.Host+"/ws", h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var hello webclient.Message
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ws.ReadJSON(&hello); err != nil || hello.Type != "hello" || hello.User != "bob" {
		t.Fatalf("hello %+v %v", hello, err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	p := newPionPage(t, ws, "page")
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	p.send(webclient.Message{Type: "dial", ID: "c1", Number: "alice", SDP: offer.SDP})
	select {
	case <-p.up:
	case <-time.After(15 * time.Second):
		p.mu.Lock()
		defer p.mu.Unlock()
		t.Fatalf("the page's call to alice did not connect (errors %q)", p.errs)
	}
	if !alice.WaitFor("Call established", 10*time.Second) {
		t.Fatalf("alice's phone did not take the call:\n%s", alice.Output())
	}
	p.sendTone(pageHz, 3*time.Second)
	alice.Command("hangup", "")
	alice.WaitEnded(5 * time.Second)
	alice.Stop()
	secs := alice.HeardSeconds(pageHz, 0)
	t.Logf("alice (registered through the other node) heard the page for %.1f s", secs)
	if secs < 1.5 {
		t.Fatalf("alice heard the page for %.1f s", secs)
	}
	if !strings.Contains(page.log.String(), "user=alice") {
		t.Errorf("the page's node did not log the call to alice")
	}
}
