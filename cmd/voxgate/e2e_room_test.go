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
		p.b.WaitEnded(5 * time.Second)
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
	alice.WaitEnded(5 * time.Second)
	bob.WaitEnded(5 * time.Second)
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

// A room of desk phones mixes at 8 kHz while only G.711 phones are in it,
// at its configured 16 kHz while a G.722 phone is in, and at 8 kHz again
// when that one leaves: the two G.711 phones hear each other in every
// quarter second throughout (no gap at either switch), the G.722 phone
// hears both, and they hear it.
func TestBaresipRoomRateFollowsLegs(t *testing.T) {
	peertest.Need(t, "baresip")
	g := startGateway(t, func(cfg *Config) {
		noTones(cfg)
		cfg.SIP.Codecs = []string{"opus", "g722", "pcmu", "pcma"}
	})
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: 520, Dial: "8001"})
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcma", Tone: 830, Dial: "8001"})
	time.Sleep(2 * time.Second)
	carol := peertest.StartPhone(t, g.addr, peertest.Phone{User: "carol", Codec: "G722/16000/1", Tone: 1270, Dial: "8001"})
	time.Sleep(3 * time.Second)
	carol.Command("hangup", "")
	if !carol.WaitEnded(5 * time.Second) {
		t.Fatalf("carol's call did not end:\n%s", carol.Output())
	}
	time.Sleep(3 * time.Second) // carol's baresip exits at the end: its exit is a burst of work
	for _, b := range []*peertest.Baresip{alice, bob} {
		b.Command("hangup", "")
	}
	carol.Stop()
	for _, b := range []*peertest.Baresip{alice, bob} {
		b.WaitEnded(5 * time.Second)
		b.Stop()
	}
	logs := g.log.String()
	var rates []string // the room's mixing rates, in order: 8 kHz from the first tick
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `msg="mixing rate"`) {
			_, to, _ := strings.Cut(line, " to=")
			rates = append(rates, strings.Fields(to)[0])
		}
	}
	if !strings.Contains(logs, "codec=G722") || strings.Join(rates, " ") != "8000 16000 8000" {
		t.Fatalf("want carol on G.722 and the room at 8000, 16000, then 8000 Hz; got %v:\n%s", rates, logs)
	}
	// Each G.711 phone hears the other in every quarter second from the
	// first one it heard it in until the hang-up.
	for _, c := range []struct {
		name  string
		b     *peertest.Baresip
		other float64
	}{{"alice", alice, 830}, {"bob", bob, 520}} {
		w := c.b.Received()
		q := w.Rate / 4
		first, gaps, chunks, carolChunks := -1, 0, 0, 0
		for i := 0; i+q <= len(w.Samples)-w.Rate; i += q { // the last second may hold a hang-up (the two are not at once)
			if audio.Goertzel(w.Samples[i:i+q], w.Rate, 1270) >= 0.002 {
				carolChunks++
			}
			p := audio.Goertzel(w.Samples[i:i+q], w.Rate, c.other)
			if first < 0 {
				if p >= 0.002 {
					first = i
				}
				continue
			}
			chunks++
			if p < 0.002 {
				gaps++
				t.Logf("%s: the other phone's tone at %.2f s is %.2g", c.name, float64(i)/float64(w.Rate), p)
			}
		}
		t.Logf("%s heard the other phone in %d of %d quarter seconds since it first did, carol in %d", c.name, chunks-gaps, chunks, carolChunks)
		if first < 0 || chunks < 24 || gaps > 0 {
			t.Errorf("%s does not hear the other G.711 phone throughout (from %d, %d gaps in %d quarter seconds)", c.name, first, gaps, chunks)
		}
		if carolChunks < 8 { // she was in for 3 s
			t.Errorf("%s heard carol's G.722 tone in %d quarter seconds", c.name, carolChunks)
		}
	}
	w := carol.Received()
	for _, f := range []float64{520, 830} {
		if p := audio.Goertzel(w.Samples[len(w.Samples)/3:], w.Rate, f); p < 0.002/4 {
			t.Errorf("carol (G.722) does not hear the %.0f Hz phone: %.2g", f, p)
		}
	}
}
