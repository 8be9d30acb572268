package main

import (
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

// withCarol adds a third user to the default config.
func withCarol(cfg *Config) {
	noTones(cfg)
	cfg.Users = append(cfg.Users, UserConfig{Name: "carol", Password: "carol-secret"})
}

// heardAfter is how long phone p heard freq after since, its recording
// having started at started.
func heardAfter(t *testing.T, p *peertest.Baresip, freq float64, since time.Time, started time.Time) float64 {
	t.Helper()
	w := p.Received()
	skip := int(since.Sub(started).Seconds() * float64(w.Rate))
	if skip < 0 || skip > len(w.Samples) {
		return 0
	}
	return audio.ToneSeconds(w.Samples[skip:], w.Rate, freq, 0.2)
}

// transferPlan is the dialplan of the transfer tests: 666 is refused,
// 8<digits> are rooms, names ring users.
const transferPlan = `
contexts:
  internal:
    rules:
      - number: "666"
        reject: {status: 403, reason: "Premium numbers"}
      - prefix: "8"
        room: {}
      - pattern: '[a-z]+'
        dial: {user: "$number", timeout: 15}
origins: {user: internal, guest: internal}
`

// Blind transfer from a desk phone (baresip's /transfer, REFER with
// Referred-By): alice calls bob, bob transfers her to carol. voxgate
// answers 202, rings carol, connects alice with carol, and hangs bob up;
// alice then hears carol's tone and carol hears alice's. A transfer to a
// number carol's context may not reach gets 403.
func TestBaresipBlindTransfer(t *testing.T) {
	peertest.Need(t, "baresip")
	const aliceHz, bobHz, carolHz = 520.0, 830.0, 1270.0
	plan := writePlan(t, transferPlan)
	g := startGateway(t, func(cfg *Config) { withCarol(cfg); cfg.Dialplan = plan })
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: bobHz, Register: true})
	carol := peertest.StartPhone(t, g.addr, peertest.Phone{User: "carol", Password: "carol-secret", Codec: "pcma", Tone: carolHz, Register: true})
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Register: true, Dial: "bob"})
	started := time.Now() // about when alice's recording starts
	if !bob.WaitFor("Call established", 10*time.Second) {
		t.Fatalf("bob did not answer:\n%s", bob.Output())
	}
	time.Sleep(time.Second)

	bob.Command("transfer", "sip:carol@"+g.addr)
	if !carol.WaitFor("Call established", 15*time.Second) {
		t.Fatalf("carol was not called:\n%s\nbob:\n%s", carol.Output(), bob.Output())
	}
	transferred := time.Now()
	if !bob.WaitFor("terminated", 10*time.Second) {
		t.Fatalf("bob's call did not end after the transfer:\n%s", bob.Output())
	}
	log := g.log.String()
	for _, want := range []string{"transfer accepted", "transferred", "transfer done"} {
		if !strings.Contains(log, want) {
			t.Errorf("voxgate's log lacks %q", want)
		}
	}
	time.Sleep(3 * time.Second)

	// A number carol's context may not reach: 403 (baresip then hangs up).
	carol.Command("transfer", "sip:666@"+g.addr)
	if !carol.WaitFor("403 Forbidden", 10*time.Second) {
		t.Fatalf("carol saw no 403 for a forbidden transfer:\n%s", carol.Output())
	}
	if !strings.Contains(g.log.String(), "transfer refused") {
		t.Fatal("voxgate did not log the refused transfer")
	}
	alice.Stop()
	carol.Stop()
	if s := heardAfter(t, alice, carolHz, transferred, started); s < 1.5 {
		t.Errorf("alice heard carol for %.1f s after the transfer", s)
	}
	if s := carol.HeardSeconds(aliceHz, 0); s < 1.5 {
		t.Errorf("carol heard alice for %.1f s", s)
	}
	if s := heardAfter(t, alice, bobHz, transferred.Add(time.Second), started); s > 0.3 {
		t.Errorf("alice still heard bob for %.1f s after the transfer", s)
	}
}

// A desk phone in a room transfers to a user: voxgate dials the user into
// the room in the phone's place and hangs the phone up; the others in the
// room then hear the newcomer (and it hears them).
func TestBaresipTransferFromARoom(t *testing.T) {
	peertest.Need(t, "baresip")
	const aliceHz, bobHz, carolHz = 520.0, 830.0, 1270.0
	plan := writePlan(t, transferPlan)
	g := startGateway(t, func(cfg *Config) { withCarol(cfg); cfg.Dialplan = plan })
	carol := peertest.StartPhone(t, g.addr, peertest.Phone{User: "carol", Password: "carol-secret", Codec: "pcmu", Tone: carolHz, Register: true})
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Dial: "8005"})
	started := time.Now()
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcma", Tone: bobHz, Dial: "8005"})
	time.Sleep(time.Second)
	bob.Command("transfer", "sip:carol@"+g.addr)
	if !carol.WaitFor("Call established", 15*time.Second) {
		t.Fatalf("carol was not called:\n%s\nbob:\n%s", carol.Output(), bob.Output())
	}
	transferred := time.Now()
	if !bob.WaitFor("terminated", 10*time.Second) {
		t.Fatalf("bob's call did not end after the transfer:\n%s", bob.Output())
	}
	if !strings.Contains(g.log.String(), "transferred into the room") {
		t.Error("voxgate's log lacks the transfer into the room")
	}
	time.Sleep(3 * time.Second)
	alice.Stop()
	carol.Stop()
	if s := heardAfter(t, alice, carolHz, transferred, started); s < 1.5 {
		t.Errorf("alice heard carol for %.1f s after the transfer", s)
	}
	if s := carol.HeardSeconds(aliceHz, 0); s < 1.5 {
		t.Errorf("carol heard alice for %.1f s", s)
	}
	if s := heardAfter(t, alice, bobHz, transferred.Add(time.Second), started); s > 0.3 {
		t.Errorf("alice still heard bob for %.1f s after the transfer", s)
	}
}
