package main

import (
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/webclient"
)

const moderatedPlan = `
contexts:
  internal:
    rules:
      - number: "7100"
        pin: {room: {name: board, pin: "1111", moderator_pin: "9999", wait_for_moderator: true, end_with_moderator: true}}
origins:
  user: internal
  guest: internal
`

// A moderated dial-in bridge with three desk phones (baresip): alice and
// bob key the PIN and wait, hearing neither each other nor anything but the
// waiting tone; carol keys the moderator PIN and the conference starts; bob
// keys *6 and nobody hears him any more; carol hangs up and the bridge ends
// for everyone. The REST API shows who waits and who moderates.
func TestModeratedBridge(t *testing.T) {
	peertest.Need(t, "baresip")
	plan := writePlan(t, moderatedPlan)
	g := startGateway(t, func(cfg *Config) {
		noTones(cfg)
		cfg.Dialplan = plan
	})
	const aliceHz, bobHz, carolHz = 520.0, 830.0, 1270.0
	phone := func(p peertest.Phone, hz float64) *peertest.Baresip {
		p.Tone, p.Dial = hz, "7100"
		return peertest.StartPhone(t, g.addr, p)
	}
	waitLog := func(s string, n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(g.log.String(), s) < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if strings.Count(g.log.String(), s) < n {
			t.Fatalf("voxgate did not log %q %d times", s, n)
		}
	}
	alice := phone(peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu"}, aliceHz)
	time.Sleep(time.Second) // the prompt
	alice.Command("sndcode", "1111#")
	waitLog("waiting for a moderator", 1)
	bob := phone(peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcma"}, bobHz)
	time.Sleep(time.Second)
	bob.Command("sndcode", "1111#")
	waitLog("waiting for a moderator", 2)
	tWaiting := time.Now()
	var room webclient.RoomInfo
	g.api(t, "GET", "/api/rooms/board", "", &room)
	if len(room.Legs) != 2 || !room.Legs[0].Waiting || !room.Legs[1].Waiting || !room.Legs[0].Muted {
		t.Fatalf("before the moderator: %+v", room.Legs)
	}
	time.Sleep(3 * time.Second)

	carol := phone(peertest.Phone{User: "carol", Codec: "pcmu"}, carolHz)
	time.Sleep(time.Second)
	carol.Command("sndcode", "9999#")
	waitLog("the moderator is in", 1)
	tStart := time.Now()
	g.api(t, "GET", "/api/rooms/board", "", &room)
	moderators, waiting := 0, 0
	for _, l := range room.Legs {
		if l.Moderator {
			moderators++
		}
		if l.Waiting {
			waiting++
		}
	}
	if len(room.Legs) != 3 || moderators != 1 || waiting != 0 {
		t.Fatalf("after the moderator: %+v", room.Legs)
	}
	time.Sleep(4 * time.Second)

	bob.Command("sndcode", "*6")
	waitLog("keypad: mute", 1)
	tMute := time.Now()
	time.Sleep(3 * time.Second)

	carol.Command("hangup", "")
	tEnd := time.Now()
	for name, b := range map[string]*peertest.Baresip{"alice": alice, "bob": bob} {
		if !b.WaitEnded(6 * time.Second) {
			t.Fatalf("%s was not hung up when the moderator left:\n%s", name, b.Output())
		}
	}
	tGone := time.Now()
	waitLog("the last moderator left: the conference ends", 1)
	for _, b := range []*peertest.Baresip{alice, bob, carol} {
		b.Stop()
	}

	// alice's recording ends when she was hung up: place the phases on it.
	w := alice.Received()
	rate := float64(w.Rate)
	at := func(ts time.Time) int { return len(w.Samples) - int(tGone.Sub(ts).Seconds()*rate) }
	window := func(from, to time.Time) []int16 {
		a, b := max(at(from), 0), min(at(to), len(w.Samples))
		if b-a < int(rate) {
			t.Fatalf("a window of %d samples", b-a)
		}
		return w.Samples[a:b]
	}
	half := 500 * time.Millisecond
	phases := []struct {
		name       string
		pcm        []int16
		bob, carol bool
	}{
		{"waiting", window(tWaiting.Add(half), tStart.Add(-2*time.Second)), false, false},
		{"started", window(tStart.Add(time.Second), tMute.Add(-half)), true, true},
		{"bob muted", window(tMute.Add(700*time.Millisecond), tEnd.Add(-300*time.Millisecond)), false, true},
	}
	if secs := audio.ToneSeconds(w.Samples, w.Rate, 400, 0.2); secs < 0.1 {
		t.Errorf("alice did not hear the waiting tone (%.2f s of 400 Hz)", secs)
	}
	// Presence is the share of 20 ms windows a tone holds a tenth of the
	// energy in: robust to the phase jumps of a jitter buffer shrinking
	// after a burst (baresip sends the audio held back during a digit at once).
	for _, p := range phases {
		secs := float64(len(p.pcm)) / rate
		b := audio.ToneSeconds(p.pcm, w.Rate, bobHz, 0.1) / secs
		c := audio.ToneSeconds(p.pcm, w.Rate, carolHz, 0.1) / secs
		t.Logf("alice, %s: bob in %.0f%% of it, carol in %.0f%%", p.name, 100*b, 100*c)
		for _, x := range []struct {
			who  string
			want bool
			got  float64
		}{{"bob", p.bob, b}, {"carol", p.carol, c}} {
			if x.want && x.got < 0.7 {
				t.Errorf("alice does not hear %s while %s (%.0f%%)", x.who, p.name, 100*x.got)
			}
			if !x.want && x.got > 0.05 {
				t.Errorf("alice hears %s while %s (%.0f%%)", x.who, p.name, 100*x.got)
			}
		}
	}
}
