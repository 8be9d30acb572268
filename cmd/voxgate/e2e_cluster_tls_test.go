package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

// Phones over TLS and TCP in front of the cluster: Kamailio on the shipped
// kamailio.cfg with WITH_TLS (its TLS listener on 10.77.0.2:5061, a
// certificate from the test CA), talking UDP to two voxgate nodes on the
// test LAN (clusterNet).
//
//  1. Kamailio's TLS listener presents the certificate (checked against the
//     CA by name);
//  2. alice registers over TLS through Kamailio; the node keeps her binding
//     in Redis (source: Kamailio over UDP; Contact: her TLS leg);
//  3. bob, on the other node over UDP, calls her: the node sends the INVITE
//     to Kamailio over UDP, Kamailio down alice's TLS connection; each
//     hears the other, and bob's hang-up (the node's BYE) ends her call;
//  4. alice over TLS and carol over TCP dial room 8200 through Kamailio:
//     they hear each other, and alice's BYE over TLS ends her leg.
func TestClusterKamailioTLSPhones(t *testing.T) {
	peertest.Need(t, "baresip", "kamailio", "redis-server", "ip")
	for _, m := range []string{"ndb_redis.so", "tls.so"} {
		if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/kamailio/modules/" + m); err != nil {
			t.Fatalf("Kamailio's %s is missing (Debian kamailio-redis-modules, kamailio-tls-modules)", m)
		}
	}
	caFile, cert, key := testCerts(t)
	cn := newClusterNet(t)
	ctx := context.Background()
	tlsCfg := filepath.Join(t.TempDir(), "tls.cfg")
	if err := os.WriteFile(tlsCfg, []byte(fmt.Sprintf(kamailioTLSFile, cert, key)), 0o644); err != nil {
		t.Fatal(err)
	}
	nodes := []*clusterNode{cn.newNode(t, "a", 0), cn.newNode(t, "b", 1)}
	kamAddr, kamOut := cn.kamailio(t, nodes, "-A", "WITH_TLS", "-A", "LISTEN_TLS=tls:"+cn.kamNS.IP+":5061",
		"-A", fmt.Sprintf("TLS_CONFIG=\"%s\"", tlsCfg))
	kamTLS := cn.kamNS.IP + ":5061"

	// 1. The certificate, as a phone that checks it would see it.
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	if !waitUntil(5*time.Second, func() bool {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		raw, err := cn.lan.DialContext(dctx, "tcp", kamTLS)
		if err != nil {
			return false
		}
		defer raw.Close()
		c := tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: "localhost"})
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if err := c.HandshakeContext(dctx); err != nil {
			t.Logf("TLS handshake with Kamailio: %v", err)
			return false
		}
		return true
	}) {
		t.Fatal("Kamailio's TLS listener did not present the test CA's certificate for localhost")
	}

	// 2. alice registers over TLS.
	const aliceHz, bobHz, carolHz = 600.0, 1000.0, 1400.0
	alice := cn.phone(t, kamTLS, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz,
		Register: true, Transport: "tls", CAFile: caFile})
	var regNode *clusterNode
	if !waitUntil(5*time.Second, func() bool {
		for _, n := range nodes {
			if strings.Contains(n.p.output(), `"msg":"registered","user":"alice","source":"udp:`+kamAddr+`"`) {
				regNode = n
				return true
			}
		}
		return false
	}) {
		t.Fatal("no node logged alice's registration from Kamailio over UDP")
	}
	bs, err := cn.shared.Bindings(ctx, "alice", time.Now())
	if err != nil || len(bs) != 1 || bs[0].Source != kamAddr || !strings.Contains(bs[0].Contact, "transport=tls") {
		t.Fatalf("alice's binding in Redis: %+v %v (want one, from Kamailio %s, with her TLS contact)", bs, err, kamAddr)
	}
	other := nodes[0]
	if other == regNode {
		other = nodes[1]
	}
	t.Logf("alice registered over TLS through node %s: %s", regNode.name, bs[0].Contact)

	// 3. bob calls her through the other node.
	bob := cn.phone(t, other.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: bobHz, Dial: "alice"})
	if !alice.WaitFor("Call established", 5*time.Second) {
		t.Fatalf("alice's phone did not take bob's call:\n%s", alice.Output())
	}
	time.Sleep(3 * time.Second) // audio both ways
	bob.Command("hangup", "")
	bob.WaitEnded(5 * time.Second)
	if !alice.WaitEnded(5 * time.Second) {
		t.Fatalf("bob's hang-up did not reach alice over TLS:\n%s", alice.Output())
	}
	bob.Stop()
	alice.Stop()
	heardAlice, heardBob := bob.HeardSeconds(aliceHz, 0), alice.HeardSeconds(bobHz, 0)
	t.Logf("bob heard alice for %.1f s, alice heard bob for %.1f s", heardAlice, heardBob)
	if heardAlice < 1.5 || heardBob < 1.5 {
		t.Fatalf("bob heard alice for %.1f s, alice heard bob for %.1f s (over TLS through Kamailio)", heardAlice, heardBob)
	}
	if !strings.Contains(kamOut.String(), "voxgate: REGISTER alice to sip:"+regNode.ns.IP+":5060 (from tls:") {
		t.Error("Kamailio did not log alice's REGISTER coming over TLS")
	}

	// 4. alice (TLS) and carol (TCP) in room 8200 through Kamailio.
	alice = cn.phone(t, kamTLS, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz,
		Transport: "tls", CAFile: caFile, Dial: "8200"})
	carol := cn.phone(t, kamAddr, peertest.Phone{User: "carol", Codec: "pcmu", Tone: carolHz, Transport: "tcp", Dial: "8200"})
	var host *clusterNode
	if !waitUntil(5*time.Second, func() bool {
		for _, n := range nodes {
			if n.legs(t, "8200") == 2 {
				host = n
				return true
			}
		}
		return false
	}) {
		t.Fatalf("room 8200 does not have alice and carol on one node: %d on a, %d on b", nodes[0].legs(t, "8200"), nodes[1].legs(t, "8200"))
	}
	time.Sleep(3 * time.Second)
	alice.Command("hangup", "")
	alice.WaitEnded(5 * time.Second)
	if !waitUntil(5*time.Second, func() bool { return host.legs(t, "8200") == 1 }) {
		t.Fatalf("alice's BYE over TLS did not end her leg in room 8200 (%d legs)", host.legs(t, "8200"))
	}
	carol.Command("hangup", "")
	carol.WaitEnded(5 * time.Second)
	alice.Stop()
	carol.Stop()
	for _, c := range []struct {
		name        string
		b           *peertest.Baresip
		other, self float64
	}{{"alice (TLS)", alice, carolHz, aliceHz}, {"carol (TCP)", carol, aliceHz, carolHz}} {
		w := c.b.Received()
		heard := audio.ToneSeconds(w.Samples, w.Rate, c.other, 0.2)
		own := audio.Goertzel(w.Samples, w.Rate, c.self)
		t.Logf("%s heard the other for %.1f s in room 8200 on node %s (own tone %.2g)", c.name, heard, host.name, own)
		if heard < 1.5 || own > 1e-3 {
			t.Errorf("%s in room 8200: heard the other for %.1f s, its own tone at %.2g", c.name, heard, own)
		}
	}
}
