package main

import (
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

// Three desk phones (baresip: two registered users on PCMU and PCMA and a
// guest) call the same room, each sending its own tone: each hears the two
// others and not itself, and voxgate reports each of them talking.
func TestBaresipConferenceRoom(t *testing.T) {
	peertest.Need(t, "baresip")
	g := startGateway(t, noTones)
	type phone struct {
		peertest.Phone
		freq float64
		b    *peertest.Baresip
	}
	phones := []*phone{
		{Phone: peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu"}, freq: 520},
		{Phone: peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcma"}, freq: 830},
		{Phone: peertest.Phone{User: "carol", Codec: "pcmu"}, freq: 1270},
	}
	for _, p := range phones {
		p.Tone, p.Dial = p.freq, "8001"
		p.b = peertest.StartPhone(t, g.addr, p.Phone)
	}
	time.Sleep(6 * time.Second)
	for _, p := range phones {
		p.b.Command("hangup", "")
	}
	for _, p := range phones {
		p.b.WaitFor("terminated", 5*time.Second)
		p.b.Stop()
	}
	for i, p := range phones {
		w := p.b.Received()
		n := len(w.Samples)
		if n < 4*w.Rate {
			t.Fatalf("phone %d recorded only %d samples", i, n)
		}
		last := w.Samples[n-4*w.Rate : n-w.Rate/2] // the last seconds, all three in
		own := audio.Goertzel(last, w.Rate, p.freq)
		weakest := 1.0
		for j, q := range phones {
			if j != i {
				weakest = min(weakest, audio.Goertzel(last, w.Rate, q.freq))
			}
		}
		t.Logf("phone %d (%.0f Hz): weakest other tone %.2g, own %.2g", i, p.freq, weakest, own)
		if weakest < 0.002 {
			t.Errorf("phone %d does not hear every other phone (weakest %.2g)", i, weakest)
		}
		if own > weakest/100 {
			t.Errorf("phone %d hears itself: own %.2g, weakest other %.2g", i, own, weakest)
		}
	}
	// Server-side voice activity on every desk phone: a talking event per leg.
	talkers := map[string]bool{}
	for _, line := range strings.Split(g.log.String(), "\n") {
		if strings.Contains(line, "event=talking") {
			if _, leg, ok := strings.Cut(line, " leg="); ok {
				talkers[strings.Fields(leg)[0]] = true
			}
		}
	}
	if len(talkers) != 3 {
		t.Fatalf("talking events for %d legs, want 3", len(talkers))
	}
}

// SIP user to SIP user: bob's registered phone rings (it answers by itself)
// when alice dials "bob", and each hears the other's tone.
func TestBaresipCallsRegisteredUser(t *testing.T) {
	peertest.Need(t, "baresip")
	g := startGateway(t, nil)
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcma", Tone: 900, Register: true})
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: 500, Dial: "bob"})
	time.Sleep(4 * time.Second)
	alice.Command("hangup", "")
	alice.WaitFor("terminated", 5*time.Second)
	bob.WaitFor("terminated", 5*time.Second)
	alice.Stop()
	bob.Stop()
	for _, c := range []struct {
		name string
		b    *peertest.Baresip
		hear float64
	}{{"alice", alice, 900}, {"bob", bob, 500}} {
		secs := c.b.HeardSeconds(c.hear, 0)
		t.Logf("%s heard %.0f Hz for %.1f s", c.name, c.hear, secs)
		if secs < 2.5 {
			t.Errorf("%s heard the other side for %.1f s", c.name, secs)
		}
	}
}
