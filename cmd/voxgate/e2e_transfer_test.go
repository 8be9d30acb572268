package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/events"
	"github.com/voxgate/voxgate/webclient"
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

// hungUp waits up to 10 s until phone p's call has ended.
func hungUp(p *peertest.Baresip) bool { return p.WaitEnded(10 * time.Second) }

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
	if !hungUp(bob) {
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
	heardTransfer(t, alice, carol, transferred, started)
}

// heardTransfer checks that, once bob transferred away at transferred,
// alice heard carol and not bob any more, and carol heard alice (the tones
// of transferPlan's tests; alice's recording started at started).
func heardTransfer(t *testing.T, alice, carol *peertest.Baresip, transferred, started time.Time) {
	t.Helper()
	const aliceHz, bobHz, carolHz = 520.0, 830.0, 1270.0
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
	if !hungUp(bob) {
		t.Fatalf("bob's call did not end after the transfer:\n%s", bob.Output())
	}
	if !strings.Contains(g.log.String(), "transferred into the room") {
		t.Error("voxgate's log lacks the transfer into the room")
	}
	time.Sleep(3 * time.Second)
	alice.Stop()
	carol.Stop()
	heardTransfer(t, alice, carol, transferred, started)
}

// Attended transfer with Replaces (RFC 3891), from sipp (baresip 1.0 has
// no attended transfer): the transferor calls bob (call 1) and carol
// (call 2, xfer-consult.xml), then sends REFER on call 1 with Refer-To:
// <sip:carol@voxgate?Replaces=call 2> (xfer-attended.xml). voxgate answers
// 202, NOTIFYs "100 Trying" and "200 OK" as message/sipfrag (sipp checks
// them), connects bob with carol (both legs it already holds) and hangs
// up both of the transferor's legs; bob and carol then hear each other.
func TestSippAttendedTransfer(t *testing.T) {
	peertest.Need(t, "sipp", "baresip")
	const bobHz, carolHz = 830.0, 1270.0
	plan := writePlan(t, transferPlan)
	g := startGateway(t, func(cfg *Config) { withCarol(cfg); cfg.Dialplan = plan })
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: bobHz, Register: true})
	carol := peertest.StartPhone(t, g.addr, peertest.Phone{User: "carol", Password: "carol-secret", Codec: "pcma", Tone: carolHz, Register: true})
	consult, err := filepath.Abs("testdata/sipp/xfer-consult.xml")
	if err != nil {
		t.Fatal(err)
	}
	refer, _ := filepath.Abs("testdata/sipp/xfer-attended.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Call 2: the consultation call to carol; it stays up until voxgate's BYE.
	call2, totag := startConsultation(ctx, t, g, consult)
	if !carol.WaitFor("Call established", 10*time.Second) {
		t.Fatalf("carol did not answer call 2:\n%s", carol.Output())
	}

	// Call 1 to bob, and its REFER with Replaces naming call 2.
	port1, media1 := peertest.FreePorts(t, 1), peertest.FreePorts(t, 4)
	out, err := peertest.Sipp(ctx, t.TempDir(), "-sf", refer, g.addr, "-s", "bob", "-m", "1", "-nostdin",
		"-set", "target", "carol", "-set", "callid", "consult-1%40sipp", "-set", "totag", totag,
		"-timeout", "30s", "-timeout_error", "-p", fmt.Sprint(port1), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", fmt.Sprint(media1), "-trace_err")
	transferred := time.Now()
	if err != nil {
		t.Fatalf("the REFER with Replaces failed: %v\n%s", err, tail(out, 30))
	}
	select {
	case r := <-call2:
		if r.err != nil {
			t.Fatalf("call 2 did not end with voxgate's BYE: %v\n%s", r.err, tail(r.out, 30))
		}
	case <-ctx.Done():
		t.Fatal("call 2 did not end")
	}
	if !strings.Contains(g.log.String(), "attended transfer") {
		t.Error("voxgate's log lacks the attended transfer")
	}
	time.Sleep(3 * time.Second)
	bob.Stop()
	carol.Stop()
	// Both phones' recordings end now: what they heard in the last 2.5 s
	// is the transferred call.
	for _, c := range []struct {
		name  string
		p     *peertest.Baresip
		other float64
	}{{"bob", bob, carolHz}, {"carol", carol, bobHz}} {
		w := c.p.Received()
		n := int(2.5 * float64(w.Rate))
		if n > len(w.Samples) {
			t.Fatalf("%s's recording is short", c.name)
		}
		if s := audio.ToneSeconds(w.Samples[len(w.Samples)-n:], w.Rate, c.other, 0.2); s < 1.5 {
			t.Errorf("%s heard the other for %.1f s of the last 2.5 s after the transfer (at %s)", c.name, s, transferred.Format(time.StampMilli))
		}
	}
}

// An operator transfers a live call through the REST API: alice calls bob,
// POST /api/v1/calls/{alice's call}/transfer {"to":"carol"} rings carol,
// connects alice with her and hangs bob up; then a transfer of alice's
// call to a number her context may not reach is refused with 403, and one
// to a room moves her (carol is hung up).
func TestRESTTransfer(t *testing.T) {
	peertest.Need(t, "baresip")
	const aliceHz, bobHz, carolHz = 520.0, 830.0, 1270.0
	plan := writePlan(t, transferPlan)
	hooks := make(chan events.TransferData, 10) // call.transferred webhooks
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type string              `json:"type"`
			Data events.TransferData `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev.Type != events.CallTransfer {
			t.Errorf("webhook: %v %q", err, ev.Type)
		} else {
			hooks <- ev.Data
		}
	}))
	defer hookSrv.Close()
	g := startGateway(t, func(cfg *Config) {
		withCarol(cfg)
		cfg.Dialplan = plan
		cfg.Webhooks = []events.Endpoint{{Name: "pbx", URL: hookSrv.URL, Secret: "transfer-hook-secret", Events: []string{"call.transferred"}}}
	})
	nextHook := func() events.TransferData {
		t.Helper()
		select {
		case d := <-hooks:
			return d
		case <-time.After(15 * time.Second):
			t.Fatal("no call.transferred webhook")
			return events.TransferData{}
		}
	}
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: bobHz, Register: true})
	carol := peertest.StartPhone(t, g.addr, peertest.Phone{User: "carol", Password: "carol-secret", Codec: "pcmu", Tone: carolHz, Register: true})
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Register: true, Dial: "bob"})
	started := time.Now()
	var calls []webclient.CallInfo
	g.api(t, "GET", "/api/v1/calls/active", "", &calls)
	if len(calls) != 1 || calls[0].From != "alice" {
		t.Fatalf("calls: %+v", calls)
	}
	id := url.PathEscape(calls[0].ID)
	var body string
	if code := g.api(t, "POST", "/api/v1/calls/"+id+"/transfer", `{"to":"666"}`, &body); code != 403 || !strings.Contains(body, "Premium numbers") {
		t.Fatalf("a refused target: %d %s", code, body)
	}
	if d := nextHook(); d.Status != 403 || d.To != "666" || d.By != "api" {
		t.Errorf("webhook of the refused transfer: %+v", d)
	}
	if code := g.api(t, "POST", "/api/v1/calls/"+id+"/transfer", `{"to":"carol"}`, &body); code != 202 {
		t.Fatalf("transfer: %d %s", code, body)
	}
	if !carol.WaitFor("Call established", 15*time.Second) {
		t.Fatalf("carol was not called:\n%s", carol.Output())
	}
	transferred := time.Now()
	if !hungUp(bob) {
		t.Fatalf("bob was not hung up:\n%s", bob.Output())
	}
	if d := nextHook(); d.Status != 200 || d.To != "carol" || d.Attended {
		t.Errorf("webhook of the transfer: %+v", d)
	}
	time.Sleep(3 * time.Second)
	if s := heardAfter(t, alice, carolHz, transferred, started); s < 1.5 {
		t.Errorf("alice heard carol for %.1f s after the transfer", s)
	}
	if code := g.api(t, "POST", "/api/v1/calls/"+id+"/transfer", `{"to":"8007"}`, &body); code != 202 {
		t.Fatalf("transfer to a room: %d %s", code, body)
	}
	if !hungUp(carol) {
		t.Fatalf("carol was not hung up:\n%s", carol.Output())
	}
	waitRoom(t, g, "007", func(r webclient.RoomInfo) bool { return len(r.Legs) == 1 && r.Legs[0].ID == calls[0].ID })
}

// sipp calls bob and transfers him to carol with Refer-Sub: false (RFC
// 4488) after a REFER with a malformed Refer-To (400): voxgate answers 202
// with Refer-Sub: false, sends no NOTIFY, and ends sipp's leg with BYE;
// bob then hears carol.
func TestSippTransferWithoutSubscription(t *testing.T) {
	peertest.Need(t, "sipp", "baresip")
	const bobHz, carolHz = 830.0, 1270.0
	plan := writePlan(t, transferPlan)
	g := startGateway(t, func(cfg *Config) { withCarol(cfg); cfg.Dialplan = plan })
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: bobHz, Register: true})
	carol := peertest.StartPhone(t, g.addr, peertest.Phone{User: "carol", Password: "carol-secret", Codec: "pcma", Tone: carolHz, Register: true})
	sippTransferor(t, g, "xfer-nosub.xml", "carol")
	if !carol.WaitFor("Call established", 10*time.Second) {
		t.Fatalf("carol was not called:\n%s", carol.Output())
	}
	log := g.log.String()
	if !strings.Contains(log, "notify=false") || !strings.Contains(log, "referred_by=<sip:transferor@") {
		t.Errorf("voxgate did not log the transfer without NOTIFY, with Referred-By")
	}
	time.Sleep(3 * time.Second)
	bob.Stop()
	carol.Stop()
	w := bob.Received()
	n := int(2.5 * float64(w.Rate))
	if s := audio.ToneSeconds(w.Samples[len(w.Samples)-n:], w.Rate, carolHz, 0.2); s < 1.5 {
		t.Errorf("bob heard carol for %.1f s of the last 2.5 s", s)
	}
}

// A transfer to a target that cannot be reached leaves the call as it was:
// sipp calls bob and transfers him to dave (no phone, no page); voxgate
// answers 202 and NOTIFYs "100 Trying" then "480" (sipp checks the
// sipfrags), and the call goes on: sipp's own BYE gets 200.
func TestSippTransferTargetFails(t *testing.T) {
	peertest.Need(t, "sipp", "baresip")
	plan := writePlan(t, transferPlan)
	g := startGateway(t, func(cfg *Config) { withCarol(cfg); cfg.Dialplan = plan })
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: 830, Register: true})
	sippTransferor(t, g, "xfer-fail.xml", "dave")
	if !strings.Contains(g.log.String(), "status=480") {
		t.Error("voxgate did not log the failed transfer's 480")
	}
	if !hungUp(bob) {
		t.Fatalf("bob's call did not end with sipp's BYE:\n%s", bob.Output())
	}
}

// A desk phone in a call with a browser transfers the browser: a page
// signed in as alice (Chromium, WebRTC) calls bob's phone; bob transfers
// the call to carol (baresip's /transfer); the page then hears carol's
// tone and no longer bob's, and bob's call ends.
func TestBaresipTransfersABrowser(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	const pageHz, bobHz, carolHz = 480.0, 850.0, 1270.0
	ns := peertest.NewNetns(t)
	base, uploads, sipAddr := browserGatewayWithSIP(t, ns, true, func(cfg *Config) {
		cfg.Users = append(cfg.Users, UserConfig{Name: "carol", Password: "carol-secret"})
	})
	bob := peertest.StartPhone(t, sipAddr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: bobHz, Register: true})
	carol := peertest.StartPhone(t, sipAddr, peertest.Phone{User: "carol", Password: "carol-secret", Codec: "pcmu", Tone: carolHz, Register: true})
	wav := filepath.Join(t.TempDir(), "mic.wav")
	peertest.ToneWAV(t, wav, 48000, pageHz, 30)
	chromium(t, ns, base, fmt.Sprintf("%s/test/call.html?user=alice&password=alice-secret&dial=bob&secs=8", base), wav)
	if !bob.WaitFor("Call established", 30*time.Second) {
		t.Fatalf("the page's call did not reach bob:\n%s", bob.Output())
	}
	time.Sleep(time.Second)
	bob.Command("transfer", "sip:carol@"+sipAddr)
	if !carol.WaitFor("Call established", 15*time.Second) {
		t.Fatalf("carol was not called:\n%s\nbob:\n%s", carol.Output(), bob.Output())
	}
	if !hungUp(bob) {
		t.Fatalf("bob's call did not end after the transfer:\n%s", bob.Output())
	}
	_, w := recording(t, uploads) // 8 s from the page's answer: the last 3 s are after the transfer
	n := 3 * w.Rate
	if n > len(w.Samples) {
		t.Fatalf("the page recorded only %d samples", len(w.Samples))
	}
	last := w.Samples[len(w.Samples)-n:]
	heardCarol, heardBob := audio.ToneSeconds(last, w.Rate, carolHz, 0.2), audio.ToneSeconds(last, w.Rate, bobHz, 0.2)
	t.Logf("in its last 3 s the page heard carol for %.1f s, bob for %.1f s", heardCarol, heardBob)
	if heardCarol < 2 || heardBob > 0.3 {
		t.Errorf("the page did not hear carol instead of bob after the transfer")
	}
	carol.Stop()
	if s := carol.HeardSeconds(pageHz, 0); s < 1.5 {
		t.Errorf("carol heard the page for %.1f s", s)
	}
}

// sippResult is how a sipp run ended.
type sippResult struct {
	out string
	err error
}

// startConsultation starts xfer-consult.xml: sipp calls carol through g
// (Call-ID consult-1@sipp, From tag consult1) and stays in the call until
// voxgate's BYE. It returns the run's result channel and voxgate's To tag.
func startConsultation(ctx context.Context, t *testing.T, g *gateway, scenario string) (<-chan sippResult, string) {
	t.Helper()
	dir := t.TempDir()
	port, media := peertest.FreePorts(t, 1), peertest.FreePorts(t, 4)
	done := make(chan sippResult, 1)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go func() {
		out, err := peertest.Sipp(ctx, dir, "-sf", scenario, g.addr, "-s", "carol", "-m", "1", "-nostdin", "-cid_str", "consult-%u@sipp",
			"-timeout", "45s", "-timeout_error", "-p", fmt.Sprint(port), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", fmt.Sprint(media), "-trace_err")
		done <- sippResult{out, err}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "totag.txt"))
		if totag := strings.TrimSpace(string(b)); totag != "" {
			return done, totag
		}
		if time.Now().After(deadline) {
			cancel()
			r := <-done
			t.Fatalf("the consultation call was not answered: %v\n%s", r.err, tail(r.out, 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An INVITE with Replaces (RFC 3891) takes the place of a call voxgate
// holds: sipp calls carol (call 2), a second sipp sends INVITE with
// Replaces naming call 2; voxgate answers it, connects it with carol and
// ends call 2 with BYE; carol's call goes on until the new caller hangs
// up. Replaces naming no call gets 481.
func TestSippInviteWithReplaces(t *testing.T) {
	peertest.Need(t, "sipp", "baresip")
	plan := writePlan(t, transferPlan)
	g := startGateway(t, func(cfg *Config) { withCarol(cfg); cfg.Dialplan = plan })
	carol := peertest.StartPhone(t, g.addr, peertest.Phone{User: "carol", Password: "carol-secret", Codec: "pcmu", Tone: 1270, Register: true})
	consult, err := filepath.Abs("testdata/sipp/xfer-consult.xml")
	if err != nil {
		t.Fatal(err)
	}
	replaces, _ := filepath.Abs("testdata/sipp/xfer-replaces.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runReplaces := func(totag string) sippResult {
		port, media := peertest.FreePorts(t, 1), peertest.FreePorts(t, 4)
		out, err := peertest.Sipp(ctx, t.TempDir(), "-sf", replaces, g.addr, "-s", "carol", "-m", "1", "-nostdin",
			"-set", "callid", "consult-1@sipp", "-set", "totag", totag,
			"-timeout", "20s", "-timeout_error", "-p", fmt.Sprint(port), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", fmt.Sprint(media), "-trace_err")
		return sippResult{out, err}
	}
	call2, totag := startConsultation(ctx, t, g, consult)
	if !carol.WaitFor("Call established", 10*time.Second) {
		t.Fatalf("carol did not answer call 2:\n%s", carol.Output())
	}
	if r := runReplaces("no-such-tag"); r.err == nil || !strings.Contains(r.out, "481") {
		t.Fatalf("a Replaces naming no call was not refused with 481: %v\n%s", r.err, tail(r.out, 20))
	}
	replaced := make(chan sippResult, 1)
	go func() { replaced <- runReplaces(totag) }()
	select {
	case r := <-call2:
		if r.err != nil {
			t.Fatalf("call 2 did not end with voxgate's BYE: %v\n%s", r.err, tail(r.out, 30))
		}
	case <-ctx.Done():
		t.Fatal("call 2 did not end")
	}
	if strings.Contains(carol.Output(), "session closed") || strings.Contains(carol.Output(), "terminated") {
		t.Fatalf("carol's call ended with the replaced call:\n%s", carol.Output())
	}
	if r := <-replaced; r.err != nil {
		t.Fatalf("the INVITE with Replaces failed: %v\n%s", r.err, tail(r.out, 30))
	}
	if !hungUp(carol) {
		t.Fatalf("carol's call did not end with the new caller's BYE:\n%s", carol.Output())
	}
	if !strings.Contains(g.log.String(), "call replaced") {
		t.Error("voxgate's log lacks the replaced call")
	}
}

// sippTransferor runs the sipp scenario testdata/sipp/<scenario>: a
// transferor that calls bob through g and transfers him to target; the
// test fails unless the scenario passes (its checks of voxgate's answers).
func sippTransferor(t *testing.T, g *gateway, scenario, target string) {
	t.Helper()
	sf, err := filepath.Abs("testdata/sipp/" + scenario)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	port, media := peertest.FreePorts(t, 1), peertest.FreePorts(t, 4)
	out, err := peertest.Sipp(ctx, t.TempDir(), "-sf", sf, g.addr, "-s", "bob", "-m", "1", "-nostdin", "-set", "target", target,
		"-timeout", "30s", "-timeout_error", "-p", fmt.Sprint(port), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", fmt.Sprint(media), "-trace_err")
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, tail(out, 30))
	}
}
