package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

// Two voxgate binaries behind Kamailio (configs/cluster/kamailio.cfg)
// sharing a Redis, on a test LAN (clusterNet): each node in a network
// namespace of its own (SIP on 5060 of its own address, RTP, HTTP and ICE
// there), Kamailio and Redis in theirs, every phone and every headless
// Chromium page in its own. A page reaches its node's web side across the
// LAN (through pageProxy, which serves the test page) and its media goes
// straight to the node (ICE).
//
//  0. a stranger's X-Voxgate-Room cannot make a cascade leg: Kamailio
//     strips it (seen on the wire), and a node ignores it from an address
//     that is not a live node's;
//  1. four participants enter room 8300 through different nodes: two
//     phones through Kamailio (the node that takes the first hosts it), a
//     phone calling the other node directly and a page on the other node;
//     that node bridges its two to the host over cascade legs. Each hears
//     the three others and not itself, and the room stays on its host.
//  2. alice registers through Kamailio; a page on the node that does not
//     hold her registration calls her: each hears the other.
func TestClusterChromiumAcrossNodes(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip", "kamailio", "redis-server")
	cn := newClusterNet(t)
	shared := cn.shared
	ctx := context.Background()
	nodes := []*clusterNode{cn.newNode(t, "a", 0), cn.newNode(t, "b", 1)}
	advertised := []string{nodes[0].advertise, nodes[1].advertise}
	if !waitUntil(10*time.Second, func() bool { ns, _ := shared.Nodes(ctx); return len(ns) == 2 }) {
		t.Fatal("the nodes did not join the cluster (node:<id> in Redis)")
	}
	kamAddr, _ := cn.kamailio(t, nodes)

	// 0. A stranger (a phone's namespace on the LAN) sends an INVITE to 555
	// with X-Voxgate-Room through Kamailio, then straight to a node: both
	// get the dialplan's answer (403: not a room), and what Kamailio
	// forwarded to the node has no X-Voxgate-Room.
	sniff := cn.lan.SniffUDP(t, 5060)
	stranger := cn.join(t)
	if code := inviteStatusIn(t, stranger, kamAddr, "555", "X-Voxgate-Room: 8300\r\n"); code != 403 {
		t.Fatalf("an INVITE to 555 with X-Voxgate-Room through Kamailio got %d, want 403 from the dialplan", code)
	}
	if code := inviteStatusIn(t, stranger, nodes[0].addr, "555", "X-Voxgate-Room: 8300\r\n"); code != 403 {
		t.Fatalf("an INVITE to 555 with X-Voxgate-Room from a stranger's address straight to node a got %d, want 403 from the dialplan", code)
	}
	var sent, forwarded int
	for _, d := range sniff.Datagrams() {
		msg := string(d.Payload)
		if !strings.HasPrefix(msg, "INVITE sip:555@") {
			continue
		}
		switch {
		case d.Src.Addr().String() == stranger.IP && d.Dst.String() == kamAddr:
			sent++
			if !strings.Contains(msg, "X-Voxgate-Room: 8300") {
				t.Fatalf("the stranger's INVITE on the wire has no X-Voxgate-Room:\n%s", msg)
			}
		case d.Src.String() == kamAddr:
			forwarded++
			if strings.Contains(strings.ToLower(msg), "x-voxgate-room") {
				t.Fatalf("Kamailio forwarded X-Voxgate-Room to %s:\n%s", d.Dst, msg)
			}
		}
	}
	if sent == 0 || forwarded == 0 {
		t.Fatalf("the capture on the LAN saw %d INVITEs from the stranger to Kamailio and %d from Kamailio to a node", sent, forwarded)
	}
	sniff.Stop()

	// 1. Two phones in room 8300 through Kamailio, a page on the other node.
	const room = "8300"
	const pageHz = 440.0
	phoneHz := []float64{700, 1130, 1550}
	var phones []*peertest.Baresip
	for i, f := range phoneHz[:2] {
		phones = append(phones, cn.phone(t, kamAddr, peertest.Phone{User: fmt.Sprintf("guest%d", i), Codec: "pcmu", Tone: f, Dial: room}))
		if !phones[i].WaitFor("Call established", 15*time.Second) {
			t.Fatalf("phone %d did not enter the room:\n%s", i, phones[i].Output())
		}
	}
	var hostAddr string
	if !waitUntil(10*time.Second, func() bool { hostAddr, _ = shared.RoomHost(ctx, room); return hostAddr != "" }) {
		t.Fatalf("nobody claimed room:%s", room)
	}
	host, other := nodes[0], nodes[1]
	if hostAddr == advertised[1] {
		host, other = nodes[1], nodes[0]
	}
	t.Logf("room %s is hosted on node %s; a phone calls node %s directly and the page joins through it", room, host.name, other.name)
	phones = append(phones, cn.phone(t, other.addr, peertest.Phone{User: "guest2", Codec: "pcmu", Tone: phoneHz[2], Dial: room}))
	if !phones[2].WaitFor("Call established", 15*time.Second) {
		t.Fatalf("the phone calling node %s directly did not enter the room:\n%s", other.name, phones[2].Output())
	}
	wav := filepath.Join(t.TempDir(), "mic.wav")
	peertest.ToneWAV(t, wav, 48000, pageHz, 40)
	pageNS := cn.join(t)
	base, uploads := cn.pageProxy(t, pageNS, other)
	chromium(t, pageNS, base, fmt.Sprintf("%s/test/call.html?user=bob&password=bob-secret&join=%s&secs=6", base, room), wav)
	_, w := recording(t, uploads)
	p := peertest.BestWindow(w, 2*time.Second, append(phoneHz[:3:3], pageHz))
	t.Logf("the page on node %s hears: phones %.2g %.2g %.2g, itself %.2g", other.name, p[0], p[1], p[2], p[3])
	if p[0] < 1e-3 || p[1] < 1e-3 || p[2] < 1e-3 {
		t.Errorf("the page does not hear the three phones of the room: %v", p)
	}
	if p[3] > min(p[0], p[1], p[2])/100 {
		t.Errorf("the page hears itself: %v", p)
	}
	if !strings.Contains(other.p.output(), `"msg":"room hosted on another node: call bridged to it"`) {
		t.Errorf("node %s did not bridge the page to the room's host", other.name)
	}
	if !strings.Contains(host.p.output(), `"origin":"cascade`) {
		t.Errorf("node %s did not take a cascade leg into the room", host.name)
	}
	if h, _ := shared.RoomHost(ctx, room); h != hostAddr {
		t.Errorf("room:%s moved from %s to %q", room, hostAddr, h)
	}
	for i, b := range phones {
		b.Command("hangup", "")
		b.WaitEnded(5 * time.Second)
		b.Stop()
		// The phone was in the room before and after the page: judge the
		// stretch where it heard the page and the other phone best.
		others := []float64{pageHz}
		for j, f := range phoneHz {
			if j != i {
				others = append(others, f)
			}
		}
		q := peertest.BestWindow(b.Received(), 2*time.Second, append(others, phoneHz[i]))
		t.Logf("phone %d hears: the page %.2g, the other phones %.2g %.2g, itself %.2g", i, q[0], q[1], q[2], q[3])
		if q[0] < 1e-3 || q[1] < 1e-3 || q[2] < 1e-3 || q[3] > min(q[0], q[1], q[2])/100 {
			t.Errorf("phone %d: page %.2g, other phones %.2g %.2g, own %.2g", i, q[0], q[1], q[2], q[3])
		}
	}

	// 2. A page calls alice, registered through the other node.
	const aliceHz = 900.0
	alice := cn.phone(t, kamAddr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Register: true})
	var reg *clusterNode
	if !waitUntil(10*time.Second, func() bool {
		for _, n := range nodes {
			if strings.Contains(n.p.output(), `"msg":"registered","user":"alice"`) {
				reg = n
				return true
			}
		}
		return false
	}) {
		t.Fatal("no node logged alice's registration")
	}
	page := nodes[0]
	if page == reg {
		page = nodes[1]
	}
	t.Logf("alice registered through node %s; the page calls her from node %s", reg.name, page.name)
	pageNS = cn.join(t)
	base, uploads = cn.pageProxy(t, pageNS, page)
	chromium(t, pageNS, base, fmt.Sprintf("%s/test/call.html?user=bob&password=bob-secret&dial=alice&secs=4", base), wav)
	_, w = recording(t, uploads)
	heard := audio.ToneSeconds(w.Samples, w.Rate, aliceHz, 0.2)
	own := audio.Goertzel(w.Samples, w.Rate, pageHz)
	t.Logf("the page heard alice for %.1f s (its own tone %.2g)", heard, own)
	if heard < 2 {
		t.Errorf("the page heard alice for %.1f s of 4", heard)
	}
	alice.WaitEnded(10 * time.Second)
	alice.Stop()
	if secs := alice.HeardSeconds(pageHz, 0); secs < 2 {
		t.Errorf("alice heard the page for %.1f s", secs)
	}
}

// inviteStatus sends a bare INVITE (no SDP) for number to addr over UDP,
// with extra header lines, and returns the final status.
func inviteStatus(t *testing.T, addr, number, extra string) int {
	t.Helper()
	return inviteStatusIn(t, nil, addr, number, extra)
}

// inviteStatusIn is inviteStatus from the network namespace ns (nil: the
// host's 127.0.0.1).
func inviteStatusIn(t *testing.T, ns *peertest.Netns, addr, number, extra string) int {
	t.Helper()
	var conn net.PacketConn
	if ns != nil {
		conn = ns.ListenUDP(t, ns.IP+":0")
	} else {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	}
	defer conn.Close()
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().String()
	msg := fmt.Sprintf("INVITE sip:%[1]s@%[2]s SIP/2.0\r\nVia: SIP/2.0/UDP %[3]s;branch=z9hG4bK-stranger;rport\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:stranger@%[3]s>;tag=s1\r\nTo: <sip:%[1]s@%[2]s>\r\nCall-ID: stranger-%[3]s\r\n"+
		"CSeq: 1 INVITE\r\nContact: <sip:stranger@%[3]s>\r\n%[4]sContent-Length: 0\r\n\r\n", number, addr, local, extra)
	if _, err := conn.WriteTo([]byte(msg), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		_ = conn.SetReadDeadline(deadline)
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			break
		}
		var code int
		if _, err := fmt.Sscanf(string(buf[:n]), "SIP/2.0 %d", &code); err == nil && code >= 200 {
			return code
		}
	}
	t.Fatalf("no final answer to the INVITE to %s through %s", number, addr)
	return 0
}
