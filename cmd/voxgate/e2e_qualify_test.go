package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/sip"
)

// fakeCarrier is a second voxgate SIP server acting as a carrier: it
// answers calls (and holds them until hung up) or refuses them with a
// status, and counts them.
type fakeCarrier struct {
	srv  *sip.Server
	addr string

	mu     sync.Mutex
	calls  []string // the numbers it was called for
	refuse map[string]int
}

func startCarrier(t *testing.T, addr string, refuse map[string]int) *fakeCarrier {
	t.Helper()
	rtp := peertest.FreePorts(t, 20)
	fc := &fakeCarrier{addr: addr, refuse: refuse}
	srv, err := sip.NewServer(sip.Config{Listen: []sip.Listener{{Transport: "udp", Addr: addr}}, Domain: "carrier.test",
		RTPPorts: fmt.Sprintf("%d-%d", rtp, rtp+19), Codecs: []string{"pcmu", "pcma"}},
		sip.WithLogger(quietLog()), sip.WithHandler(sip.HandlerFunc(fc.handle)))
	if err != nil {
		t.Fatal(err)
	}
	var startErr error
	for i := 0; i < 50; i++ { // the port of a just-closed carrier may linger briefly
		if startErr = srv.Start(context.Background()); startErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if startErr != nil {
		t.Fatal(startErr)
	}
	fc.srv = srv
	t.Cleanup(func() { srv.Close() })
	return fc
}

func (fc *fakeCarrier) handle(ctx context.Context, c *sip.Call) {
	fc.mu.Lock()
	fc.calls = append(fc.calls, c.Dialed())
	status := fc.refuse[c.Dialed()]
	fc.mu.Unlock()
	if status != 0 {
		c.Reject(status, "refused by the test carrier")
		return
	}
	if err := c.Answer(ctx); err != nil {
		return
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
	}
}

func (fc *fakeCarrier) called() []string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]string(nil), fc.calls...)
}

// trunkInfo returns the REST API's view of trunk name.
func (g *gateway) trunkInfo(t *testing.T, name string) api.TrunkInfo {
	t.Helper()
	var ts []api.TrunkInfo
	g.api(t, "GET", "/api/v1/trunks", "", &ts)
	for _, ti := range ts {
		if ti.Name == name {
			return ti
		}
	}
	t.Fatalf("no trunk %q in %+v", name, ts)
	return api.TrunkInfo{}
}

// recordTrunk returns the trunk in the call record of the call to number
// ("" while there is none).
func (g *gateway) recordTrunk(t *testing.T, number string) string {
	t.Helper()
	calls, _, err := g.app.store.Calls(context.Background(), api.CallQuery{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if c.Callee == number && c.Ended != nil {
			return c.Trunk
		}
	}
	return ""
}

// Qualify and failover, end to end: baresip calls a number the dialplan
// sends through trunks [a, b]. Carrier A answers 503: the call goes
// through B, the log says why A failed, the record names B. A answers
// 486: no failover, baresip hears 486. A's carrier dies: qualify marks
// trunk a down in the API and /metrics, and the next call skips a at once.
func TestQualifyFailoverJourney(t *testing.T) {
	peertest.Need(t, "baresip")
	ports := peertest.FreePorts(t, 2)
	addrA, addrB := fmt.Sprintf("127.0.0.1:%d", ports), fmt.Sprintf("127.0.0.1:%d", ports+1)
	carA := startCarrier(t, addrA, map[string]int{"4930503": 503, "4930486": 486})
	carB := startCarrier(t, addrB, nil)
	planPath := writePlan(t, `
contexts:
  internal:
    allow_trunks: true
    rules:
      - prefix: "00"
        dial: {trunks: [a, b], number: "$1", timeout: 20, try_timeout: 8}
origins:
  user: internal
`)
	every := 300 * time.Millisecond
	g := startGateway(t, func(cfg *Config) {
		f := false
		cfg.Dialplan = planPath
		cfg.SIP.Trunks = []sip.TrunkConfig{
			{Name: "a", Registrar: "sip:" + addrA, Register: &f, Qualify: &every},
			{Name: "b", Registrar: "sip:" + addrB, Register: &f, Qualify: &every},
		}
	})
	waitFor(t, "both trunks answer OPTIONS", 10*time.Second, func() bool {
		a, b := g.trunkInfo(t, "a"), g.trunkInfo(t, "b")
		return a.Qualified && a.Reachable && a.RTTMS != nil && b.Qualified && b.Reachable
	})

	// A answers 503: B carries the call.
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: 440, Dial: "004930503"})
	if got := carB.called(); len(got) != 1 || got[0] != "4930503" {
		t.Fatalf("carrier B was called for %q", got)
	}
	if !strings.Contains(g.log.String(), `msg="dial: trunk failed, trying the next" call_id=`) && !strings.Contains(g.log.String(), "trunk failed, trying the next") {
		t.Fatalf("no failover line in the log:\n%s", g.log.String())
	}
	if !strings.Contains(g.log.String(), `trunk=a reason="503 refused by the test carrier"`) {
		t.Errorf("the failover line does not say trunk a answered 503:\n%s", g.log.String())
	}
	alice.Stop()
	waitFor(t, "the call record names trunk b", 10*time.Second, func() bool { return g.recordTrunk(t, "004930503") == "b" })

	// A answers 486: that is the answer; B is not tried.
	busy := peertest.StartBaresip(t, peertest.BaresipOptions{Account: "<sip:alice@" + g.addr + ">;auth_pass=alice-secret;regint=0;audio_codecs=pcmu",
		Dial: "sip:004930486@" + g.addr})
	// Not "486": the number dialled (004930486) is in baresip's output
	// before any answer, and a port or a time may hold it too.
	if !busy.WaitFor("session closed: 486", 10*time.Second) {
		t.Fatalf("baresip did not hear 486:\n%s", busy.Output())
	}
	busy.Stop()
	if got := carB.called(); len(got) != 1 {
		t.Fatalf("carrier B was tried after A's 486: %q", got)
	}
	if !strings.Contains(g.log.String(), "trunk answered; no failover") {
		t.Errorf("no line saying 486 is the answer:\n%s", g.log.String())
	}

	// A's carrier dies: trunk a is marked down within two missed probes,
	// the API and /metrics say so, and a call skips it at once.
	carA.srv.Close()
	waitFor(t, "trunk a is down in the API", 10*time.Second, func() bool { return !g.trunkInfo(t, "a").Reachable })
	if a := g.trunkInfo(t, "a"); a.QualifyError == "" || a.Since.IsZero() || !g.trunkInfo(t, "b").Reachable {
		t.Errorf("trunk a down: %+v", a)
	}
	fams := g.metrics(t)
	if v := metricValue(fams, "voxgate_trunk_reachable", "trunk", "a"); v != 0 {
		t.Errorf("voxgate_trunk_reachable{trunk=a} = %v, want 0", v)
	}
	if v := metricValue(fams, "voxgate_trunk_reachable", "trunk", "b"); v != 1 {
		t.Errorf("voxgate_trunk_reachable{trunk=b} = %v, want 1", v)
	}
	if v := metricValue(fams, "voxgate_trunk_qualify_rtt_seconds", "trunk", "b"); v <= 0 {
		t.Errorf("voxgate_trunk_qualify_rtt_seconds{trunk=b} = %v", v)
	}
	again := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: 440, Dial: "004930777"})
	again.Stop()
	if got := carB.called(); len(got) != 2 || got[1] != "4930777" {
		t.Fatalf("carrier B calls %q", got)
	}
	if !strings.Contains(g.log.String(), `trunk=a reason="marked down by qualify"`) {
		t.Errorf("no line saying trunk a was skipped:\n%s", g.log.String())
	}

	// A comes back: qualify marks it up again.
	startCarrier(t, addrA, nil)
	waitFor(t, "trunk a is up again", 10*time.Second, func() bool { return g.trunkInfo(t, "a").Reachable })
}

// A registered phone that is killed (no unregister) stops answering
// OPTIONS: qualify marks its contact unreachable in the API and /metrics,
// and a call to its user rings only the phone that still answers. The
// killed phone registered over UDP, then over TCP (probed on its
// connection while it lives).
func TestQualifyKilledPhone(t *testing.T) {
	for _, tp := range []string{"udp", "tcp"} {
		t.Run(tp, func(t *testing.T) { qualifyKilledPhone(t, tp) })
	}
}

func qualifyKilledPhone(t *testing.T, transport string) {
	peertest.Need(t, "baresip")
	g := startGateway(t, func(cfg *Config) { cfg.SIP.QualifyContacts = 300 * time.Millisecond })
	desk := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Register: true})
	defer desk.Stop()
	mobile := peertest.StartBaresip(t, peertest.BaresipOptions{Account: "<sip:bob@" + g.addr + ";transport=" + transport +
		">;auth_pass=bob-secret;regint=60;answermode=auto;audio_codecs=pcmu"})
	if !mobile.WaitFor("[2 bindings]", 10*time.Second) {
		t.Fatalf("bob's second phone did not register:\n%s", mobile.Output())
	}
	regs := func() []api.Registration {
		var rs []api.Registration
		g.api(t, "GET", "/api/v1/registrations", "", &rs)
		return rs
	}
	waitFor(t, "both of bob's phones answer OPTIONS", 10*time.Second, func() bool {
		n := 0
		for _, r := range regs() {
			if r.User == "bob" && r.Qualified && r.Reachable && r.RTTMS != nil {
				n++
			}
		}
		return n == 2
	})
	if rs := regs(); !slices.ContainsFunc(rs, func(r api.Registration) bool { return strings.EqualFold(r.Transport, transport) && r.User == "bob" }) {
		t.Fatalf("no %s registration of bob: %+v", transport, rs)
	}
	mobile.Kill()
	waitFor(t, "the killed phone is unreachable", 10*time.Second, func() bool {
		for _, r := range regs() {
			if r.User == "bob" && !r.Reachable {
				return r.LastError != "" && !r.Since.IsZero() && strings.EqualFold(r.Transport, transport)
			}
		}
		return false
	})
	if v := metricValue(g.metrics(t), "voxgate_sip_contacts_unreachable"); v != 1 {
		t.Errorf("voxgate_sip_contacts_unreachable = %v, want 1", v)
	}
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: 440, Dial: "bob"})
	defer alice.Stop()
	if !desk.WaitFor("Call established", 10*time.Second) {
		t.Fatalf("the desk phone did not take the call:\n%s", desk.Output())
	}
	if !strings.Contains(g.log.String(), "user=bob devices=1") {
		t.Errorf("the dial rang more than the reachable phone:\n%s", g.log.String())
	}
}

// sipp probes voxgate with OPTIONS as Kamailio's dispatcher does: 200 with
// Allow and Accept; once voxgate drains (what SIGTERM does), 503 with
// Retry-After.
func TestSippOptionsProbe(t *testing.T) {
	peertest.Need(t, "sipp")
	g := startGateway(t, nil)
	run := func(file string) (string, error) {
		scenario, err := filepath.Abs("testdata/sipp/" + file)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return peertest.Sipp(ctx, t.TempDir(), "-sf", scenario, g.addr, "-m", "1", "-nostdin", "-timeout", "10s", "-timeout_error",
			"-p", fmt.Sprint(peertest.FreePorts(t, 1)), "-i", "127.0.0.1", "-trace_err")
	}
	if out, err := run("options.xml"); err != nil {
		t.Fatalf("OPTIONS: %v\n%s", err, tail(out, 25))
	}
	if out, err := run("options-draining.xml"); err == nil {
		t.Fatalf("a 503 scenario passed before draining:\n%s", tail(out, 25))
	}
	g.app.draining.Store(true) // as main does on SIGTERM
	g.srv.Drain(context.Background())
	if out, err := run("options-draining.xml"); err != nil {
		t.Fatalf("OPTIONS while draining: %v\n%s", err, tail(out, 25))
	}
}

// quietLog discards a carrier's log.
func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
