package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/store"
)

// A registration over WebSocket is reachable from every node: JsSIP in
// Chromium registers with node A (SIP over WebSocket, A's web side in its
// own network namespace); a baresip desk phone calls alice through node B.
// B finds alice's binding in Redis, marked with the node that holds her
// WebSocket, and forwards the call to A (X-Voxgate-User); A rings her over
// the WebSocket. Each side hears the other's tone.
func TestClusterDeskPhoneCallsJsSIPOnOtherNode(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip", "redis-server")
	red := peertest.StartRedis(t)
	shared, err := store.OpenRedis(red.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	ctx := context.Background()

	ns := peertest.NewNetns(t)
	baseA, uploads, sipA := browserGatewayWithSIP(t, ns, true, func(cfg *Config) {
		cfg.Web.SIPWebSocket = true
		cfg.Cluster = ClusterConfig{Redis: red.URL(), NodeID: "node-a", RoomTTL: 3 * time.Second}
	})
	var advB string
	b := startGateway(t, func(cfg *Config) {
		advB = "sip:" + cfg.SIP.Listen[0].Addr
		cfg.Cluster = ClusterConfig{Redis: red.URL(), NodeID: "node-b", Advertise: advB, RoomTTL: 3 * time.Second}
	})
	if !waitUntil(10*time.Second, func() bool { ns, _ := shared.Nodes(ctx); return len(ns) == 2 }) {
		t.Fatal("the nodes did not join the cluster (node:<id> in Redis)")
	}

	jssipPage(t, ns, baseA, "alice", 600, "wait=1&secs=5&unregister=0")
	select {
	case u := <-uploads:
		if u.status != "ready" {
			t.Fatalf("the JsSIP page did not register: %s %s", u.status, u.message)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the JsSIP page did not get ready")
	}
	bs, err := shared.Bindings(ctx, "alice", time.Now())
	if err != nil || len(bs) != 1 || bs[0].Node != "sip:"+sipA || !strings.HasPrefix(strings.ToUpper(bs[0].Transport), "WS") {
		t.Fatalf("alice's binding in Redis: %+v %v (want one over WS, node sip:%s)", bs, err, sipA)
	}
	if len(b.srv.Bindings("alice")) != 0 {
		t.Fatal("node B holds alice's registration itself")
	}

	src := filepath.Join(t.TempDir(), "desk.wav")
	peertest.ToneWAV(t, src, 8000, 1000, 60)
	desk := peertest.StartBaresip(t, peertest.BaresipOptions{
		Account: fmt.Sprintf("<sip:bob@%s>;auth_pass=bob-secret;regint=0;audio_codecs=pcmu", b.addr),
		Source:  src, Dial: "sip:alice@" + b.addr,
	})
	echoCheck(t, uploads, 1000) // the page on A hears the desk phone calling B
	desk.WaitEnded(10 * time.Second)
	desk.Stop()
	secs := desk.HeardSeconds(600, 0)
	t.Logf("the desk phone on node B heard JsSIP (on node A) for %.1f s", secs)
	if secs < 3 {
		t.Errorf("the desk phone heard JsSIP for %.1f s", secs)
	}
	logsA := logsOf(t) // node A's (startGateway keeps B's in b.log)
	if !strings.Contains(logsA, "origin=forward") {
		t.Errorf("node A did not take a forwarded call:\n%s", tail(logsA, 60))
	}
	if !strings.Contains(b.log.String(), "call bridged") {
		t.Errorf("node B did not bridge the desk phone to node A:\n%s", tail(b.log.String(), 60))
	}
}
