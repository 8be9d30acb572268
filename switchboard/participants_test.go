package switchboard

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// A page sees the room's participants keyed by leg: two legs named alice
// are two participants, each with its kind (a page, a phone); a moderator's
// mute through the API reaches the page as "muted" for that leg only.
func TestPageSeesParticipantsByLeg(t *testing.T) {
	p, err := dialplan.Parse("plan.yaml", []byte(testPlan), dialplan.Options{Trunks: []string{"carrier"}})
	if err != nil {
		t.Fatal(err)
	}
	sb := New(Config{Plan: p, Logger: slog.New(slog.DiscardHandler),
		Rooms: bridge.RoomConfig{Rate: 8000, JoinTone: bridge.NoTone, LeaveTone: bridge.NoTone}})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sb.Close(ctx)
	}()
	phone := newFakeLeg("sip-1", "alice", "7002")
	pdone := call(sb, phone, "user")
	eventually(t, "the phone in the room", func() bool { return inRoom(sb, "bridge", "sip-1") })
	page := &fakePage{fakeLeg: newFakeLeg("alice/c1", "alice", "7002")}
	gdone := call(sb, page, "user")
	eventually(t, "the page in the room", func() bool { return inRoom(sb, "bridge", "alice/c1") })
	eventually(t, "the page is told who is in", func() bool {
		page.mu.Lock()
		defer page.mu.Unlock()
		return len(page.people) == 2
	})
	page.mu.Lock()
	kinds := map[string]string{}
	for _, q := range page.people {
		if q.Name != "alice" {
			t.Errorf("participant %+v: want the name alice", q)
		}
		kinds[q.Leg] = q.Kind
	}
	page.mu.Unlock()
	if kinds["sip-1"] != "phone" || kinds["alice/c1"] != "browser" {
		t.Fatalf("kinds by leg: %v, want sip-1 phone and alice/c1 browser", kinds)
	}
	on := true
	if _, err := sb.ChangeLeg("bridge", "sip-1", api.LegChange{Muted: &on}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the page is told the phone is muted", func() bool {
		page.mu.Lock()
		defer page.mu.Unlock()
		for i, e := range page.events {
			if e == "muted alice" && page.notes[i].Leg == "sip-1" && page.notes[i].Muted && page.notes[i].Kind == "phone" {
				return true
			}
		}
		return false
	})
	phone.hangUp()
	waitEnded(t, pdone)
	eventually(t, "the page is told that leg sip-1 left", func() bool {
		page.mu.Lock()
		defer page.mu.Unlock()
		for i, e := range page.events {
			if e == "left alice" && page.notes[i].Leg == "sip-1" {
				return true
			}
		}
		return false
	})
	page.hangUp()
	waitEnded(t, gdone)
}

// selfMutingPage is a page with a mute button (SelfMuter).
type selfMutingPage struct {
	*fakePage
	mu sync.Mutex
	f  func(on bool)
}

func (p *selfMutingPage) OnSelfMute(f func(on bool)) {
	p.mu.Lock()
	p.f = f
	p.mu.Unlock()
}

func (p *selfMutingPage) press(on bool) bool {
	p.mu.Lock()
	f := p.f
	p.mu.Unlock()
	if f != nil {
		f(on)
	}
	return f != nil
}

// A page that mutes itself is shown muted to the others (and to who joins
// later), unmuted again when it unmutes.
func TestPageSelfMuteShown(t *testing.T) {
	p, err := dialplan.Parse("plan.yaml", []byte(testPlan), dialplan.Options{Trunks: []string{"carrier"}})
	if err != nil {
		t.Fatal(err)
	}
	sb := New(Config{Plan: p, Logger: slog.New(slog.DiscardHandler),
		Rooms: bridge.RoomConfig{Rate: 8000, JoinTone: bridge.NoTone, LeaveTone: bridge.NoTone}})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sb.Close(ctx)
	}()
	a := &selfMutingPage{fakePage: &fakePage{fakeLeg: newFakeLeg("alice/c1", "alice", "7002")}}
	adone := call(sb, a, "web")
	b := &fakePage{fakeLeg: newFakeLeg("bob/c1", "bob", "7002")}
	bdone := call(sb, b, "web")
	eventually(t, "both in the room", func() bool { return inRoom(sb, "bridge", "alice/c1") && inRoom(sb, "bridge", "bob/c1") })
	eventually(t, "alice's button wired", func() bool { return a.press(true) })
	seen := func(typ string, muted bool) func() bool {
		return func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			for i, e := range b.events {
				if e == typ+" alice" && b.notes[i].Leg == "alice/c1" && b.notes[i].Muted == muted {
					return true
				}
			}
			return false
		}
	}
	eventually(t, "bob sees alice muted", seen("muted", true))
	c := &fakePage{fakeLeg: newFakeLeg("carol/c1", "carol", "7002")}
	cdone := call(sb, c, "web")
	eventually(t, "carol, joining, sees alice muted", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, q := range c.people {
			if q.Leg == "alice/c1" && q.Muted {
				return true
			}
		}
		return false
	})
	a.press(false)
	eventually(t, "bob sees alice unmuted", seen("unmuted", false))
	for _, l := range []*fakeLeg{a.fakeLeg, b.fakeLeg, c.fakeLeg} {
		l.hangUp()
	}
	for _, d := range []<-chan struct{}{adone, bdone, cdone} {
		waitEnded(t, d)
	}
}
