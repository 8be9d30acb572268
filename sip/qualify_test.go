package sip

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/voxgate/voxgate/internal/freeport"
)

// until polls cond every 20 ms until it holds or the deadline passes.
func until(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeUDPAddr returns a 127.0.0.1 UDP address nobody listens on now.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", freeport.Ports(t, 1))
}

// A trunk is probed with OPTIONS: up with an RTT while its carrier (a
// second voxgate) answers, down within qualify_misses probes once the
// carrier is gone, up again when it is back. A trunk whose carrier answers
// 503 (draining) is down too; a trunk with qualify: 0 is never probed.
func TestQualifyTrunk(t *testing.T) {
	const every = 200 * time.Millisecond
	liveAddr, drainAddr := freeUDPAddr(t), freeUDPAddr(t)
	car := carrier(t, liveAddr)
	defer func() { car.Close() }()
	draining := carrier(t, drainAddr)
	defer draining.Close()
	draining.Drain(context.Background()) // no calls: returns at once, answers 503 from now on
	iv, off := every, time.Duration(0)
	var mu sync.Mutex
	var changes []string
	seen := func(trunk string, h Health) {
		mu.Lock()
		changes = append(changes, fmt.Sprintf("%s reachable=%v", trunk, h.Reachable))
		mu.Unlock()
	}
	gw, _ := testServer(t, func(cfg *Config) {
		cfg.Trunks = []TrunkConfig{
			{Name: "live", Registrar: "sip:" + liveAddr, Qualify: &iv},
			{Name: "draining", Registrar: "sip:" + drainAddr, Qualify: &iv},
			{Name: "off", Registrar: "sip:" + freeUDPAddr(t), Qualify: &off},
		}
	}, WithQualifyObserver(seen))
	health := func(name string) (Health, bool) { h, ok := gw.TrunkHealth()[name]; return h, ok }
	until(t, "the live trunk is qualified with an RTT", 3*time.Second, func() bool {
		h, _ := health("live")
		return h.Qualified && h.Reachable && h.RTT > 0 && h.LastError == ""
	})
	until(t, "the draining carrier's trunk is down", 3*time.Second, func() bool { return !gw.TrunkUp("draining") })
	if h, _ := health("draining"); !strings.Contains(h.LastError, "503") {
		t.Errorf("draining: last error %q, want the 503", h.LastError)
	}
	if _, ok := health("off"); ok || !gw.TrunkUp("off") {
		t.Errorf("qualify 0 probed the trunk: %+v", gw.TrunkHealth())
	}
	upSince, _ := health("live")

	car.Close()
	gone := time.Now()
	until(t, "the dead trunk is marked down", 6*time.Second, func() bool { return !gw.TrunkUp("live") })
	h, _ := health("live")
	// Two probes missed: at most two intervals plus two probe waits after
	// the carrier went, plus scheduling slack.
	if took := time.Since(gone); took > 2*(every+probeWait(every))+time.Second {
		t.Errorf("down after %v", took)
	}
	if h.LastError == "" || !h.Since.After(upSince.Since) || h.misses < 2 {
		t.Errorf("down: %+v", h)
	}

	car = carrier(t, liveAddr)
	until(t, "the trunk is up again once the carrier is back", 5*time.Second, func() bool { return gw.TrunkUp("live") })
	if h2, _ := health("live"); !h2.Since.After(h.Since) || h2.LastError != "" || h2.RTT <= 0 {
		t.Errorf("up again: %+v", h2)
	}
	// The observer heard each change once: a first answer is no change.
	mu.Lock()
	defer mu.Unlock()
	var live []string
	for _, c := range changes {
		if strings.HasPrefix(c, "live ") {
			live = append(live, c)
		}
	}
	if strings.Join(live, ", ") != "live reachable=false, live reachable=true" || !slices.Contains(changes, "draining reachable=false") {
		t.Errorf("observer saw %q", changes)
	}
}

// phone is a registered contact on a raw UDP socket that answers OPTIONS
// 200 until killed (its socket closes without unregistering).
type phone struct {
	c       *rawClient
	probes  sync.WaitGroup
	mu      sync.Mutex
	options int
}

func startPhone(t *testing.T, addr, user, password string) *phone {
	t.Helper()
	p := &phone{c: newRawClient(t, addr)}
	r := &registerer{t: t, c: p.c, callID: "qual-" + user + time.Now().Format("150405.000000")}
	if code, _, _ := r.do(user, password, ""); code != 200 {
		t.Fatalf("register %s: %d", user, code)
	}
	p.probes.Add(1)
	go func() {
		defer p.probes.Done()
		buf := make([]byte, 65535)
		for {
			_ = p.c.conn.SetReadDeadline(time.Time{})
			n, from, err := p.c.conn.ReadFromUDP(buf)
			if err != nil {
				return // killed
			}
			msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
			req, ok := msg.(*sip.Request)
			if err != nil || !ok || req.Method != sip.OPTIONS {
				continue
			}
			p.mu.Lock()
			p.options++
			p.mu.Unlock()
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			_, _ = p.c.conn.WriteToUDP([]byte(res.String()), from)
		}
	}()
	return p
}

func (p *phone) kill() { p.c.conn.Close(); p.probes.Wait() }

// With sip.qualify_contacts, every registered contact is probed; a phone
// killed without unregistering is marked unreachable after qualify_misses
// probes and left out of ReachableBindings (what a dial rings), while the
// user's other phone stays; the count of unreachable contacts follows.
func TestQualifyContacts(t *testing.T) {
	gw, addr := testServer(t, func(cfg *Config) { cfg.QualifyContacts = 200 * time.Millisecond })
	desk, mobile := startPhone(t, addr, "alice", "alice-secret"), startPhone(t, addr, "alice", "alice-secret")
	defer desk.kill()
	bs := gw.Bindings("alice")
	if len(bs) != 2 {
		t.Fatalf("bindings %+v", bs)
	}
	until(t, "both contacts are qualified", 3*time.Second, func() bool {
		for _, b := range bs {
			if h := gw.ContactHealth(b); !h.Qualified || !h.Reachable || h.RTT <= 0 {
				return false
			}
		}
		return true
	})
	mobile.kill()
	until(t, "the killed phone is unreachable", 6*time.Second, func() bool { return gw.UnreachableContacts() == 1 })
	ring := gw.ReachableBindings("alice")
	if len(ring) != 1 || !strings.Contains(ring[0].Contact, ":"+itoa(desk.c.port())) {
		t.Fatalf("would ring %+v, want only the desk phone on port %d", ring, desk.c.port())
	}
	if len(gw.Bindings("alice")) != 2 {
		t.Fatal("the unreachable contact's registration was dropped; it should stay until it expires")
	}
	for _, b := range bs {
		if h := gw.ContactHealth(b); strings.Contains(b.Contact, ":"+itoa(mobile.c.port())) && (h.Reachable || h.LastError == "") {
			t.Errorf("killed phone's health %+v", h)
		}
	}
	desk.mu.Lock()
	n := desk.options
	desk.mu.Unlock()
	if n < 2 {
		t.Errorf("the desk phone got %d OPTIONS", n)
	}
}

// OPTIONS to voxgate: 200 with Allow and Accept; 503 with Retry-After once
// it drains (a Kamailio dispatcher takes the node out).
func TestOptionsWhileDraining(t *testing.T) {
	gw, addr := testServer(t, nil)
	c := newRawClient(t, addr)
	c.send(request("OPTIONS", "sip:voxgate@127.0.0.1", "od1", 1, "", ""))
	res := c.final(3 * time.Second)
	if res.StatusCode != 200 || res.GetHeader("Allow") == nil || !strings.Contains(res.GetHeader("Allow").Value(), "OPTIONS") ||
		res.GetHeader("Accept") == nil {
		t.Fatalf("before draining: %s", res)
	}
	if h := res.GetHeader("Supported"); (h != nil) != (gw.supportedTags() != "") {
		t.Errorf("Supported %v, want %q", h, gw.supportedTags())
	}
	gw.Drain(context.Background())
	if !gw.Draining() {
		t.Fatal("Draining false after Drain")
	}
	c.send(request("OPTIONS", "sip:voxgate@127.0.0.1", "od2", 1, "", ""))
	if res := c.final(3 * time.Second); res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("while draining: %s", res)
	}
}

func TestQualifyConfig(t *testing.T) {
	neg, short := -time.Second, 10*time.Millisecond
	for _, c := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"negative contacts", Config{QualifyContacts: -1}, "qualify_contacts"},
		{"too short contacts", Config{QualifyContacts: time.Millisecond}, "qualify_contacts"},
		{"negative misses", Config{QualifyMisses: -1}, "qualify_misses"},
		{"negative trunk", Config{Trunks: []TrunkConfig{{Name: "a", Registrar: "sip:127.0.0.1:5070", Qualify: &neg}}}, "trunks[0].qualify"},
		{"too short trunk", Config{Trunks: []TrunkConfig{{Name: "a", Registrar: "sip:127.0.0.1:5070", Qualify: &short}}}, "trunks[0].qualify"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("got %v, want an error naming %s", err, c.field)
			}
		})
	}
	cfg := Config{Trunks: []TrunkConfig{{Name: "a", Registrar: "sip:127.0.0.1:5070"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.QualifyMisses != 2 || cfg.QualifyContacts != 0 || *cfg.Trunks[0].Qualify != DefaultTrunkQualify {
		t.Fatalf("defaults: misses %d contacts %v trunk %v", cfg.QualifyMisses, cfg.QualifyContacts, *cfg.Trunks[0].Qualify)
	}
}
