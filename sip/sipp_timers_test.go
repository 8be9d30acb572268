package sip

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/internal/freeport"
)

// These tests run sipp (Debian's sip-tester) against a real Server with the
// scenarios in testdata/sipp: session timers (RFC 4028), UPDATE (RFC 3311),
// a re-INVITE without SDP and offers without a common codec.

func needSipp(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real-peer test (sipp); run without -short")
	}
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Fatal("sipp is not installed: `.ci/deps test` installs it (Debian sip-tester)")
	}
}

// freeUDPPort returns an even UDP port of 127.0.0.1 free a moment ago, with
// the next three free too (sipp's -mp binds audio and video RTP and RTCP),
// below the ephemeral range.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	return freeport.Ports(t, 4)
}

// runSipp runs one sipp call of scenario against addr and fails the test
// with sipp's output and error log when the scenario fails.
func runSipp(t *testing.T, scenario, addr string, timeout time.Duration, extra ...string) {
	t.Helper()
	sf, err := filepath.Abs(filepath.Join("testdata/sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	args := []string{"-sf", sf, "-m", "1", "-nostdin", "-timeout", fmt.Sprintf("%ds", int(timeout/time.Second)), "-timeout_error",
		"-p", fmt.Sprint(freeUDPPort(t)), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", fmt.Sprint(freeUDPPort(t)),
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"), "-trace_msg", "-message_file", filepath.Join(dir, "messages.log")}
	args = append(args, extra...)
	if addr != "" {
		args = append(args, addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sipp", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Successful call") {
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		msgs, _ := os.ReadFile(filepath.Join(dir, "messages.log"))
		t.Fatalf("sipp %s failed: %v\n%s\nerrors:\n%s\nmessages:\n%s", scenario, err, lastLines(string(out), 20), errs, lastLines(string(msgs), 150))
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// answering is a handler that answers every call and hands it to the test.
func answering(calls chan<- *Call) Handler {
	return HandlerFunc(func(ctx context.Context, c *Call) {
		if err := c.Answer(ctx); err != nil {
			return
		}
		select {
		case calls <- c:
		default:
		}
	})
}

// A short session interval for tests: sipp asks for 6 s (RFC 4028's floor
// is 90 s; the TimerSettings knob lowers it).
var shortTimers = TimerSettings{MinSE: 2 * time.Second}

func takeCall(t *testing.T, calls <-chan *Call) *Call {
	t.Helper()
	select {
	case c := <-calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("voxgate saw no call")
		return nil
	}
}

func waitEnded(t *testing.T, c *Call, within time.Duration) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(within):
		t.Fatalf("call still up after %s", within)
	}
}

// sipp is the refresher (refresher=uac) and refreshes by re-INVITE and by
// UPDATE every 2.5 s for 7.5 s, past the 6 s interval: the call stays up
// (a BYE from voxgate would fail the scenario) until sipp hangs up.
func TestSippTimerPeerRefreshes(t *testing.T) {
	c := sippTimerCall(t, "timer-peer-refreshes.xml")
	if r := c.EndReason(); r != "remote hangup" {
		t.Fatalf("end reason %q, want remote hangup (sipp's BYE)", r)
	}
}

// sipp asks voxgate to refresh (refresher=uas) and allows UPDATE: voxgate
// refreshes by UPDATE at half the interval; sipp answers two.
func TestSippTimerVoxgateRefreshesByUpdate(t *testing.T) {
	c := sippTimerCall(t, "timer-voxgate-refreshes.xml")
	n := c.refreshCount()
	if n < 2 || c.EndReason() != "remote hangup" {
		t.Fatalf("refreshes %d (want 2), end reason %q", n, c.EndReason())
	}
}

// sipp never refreshes: voxgate hangs up with BYE and a Reason header at the
// interval minus min(32 s, interval/3) = 4 s, not before.
func TestSippTimerPeerSilentGetsBye(t *testing.T) {
	needSipp(t)
	calls := make(chan *Call, 1)
	_, addr := testServer(t, nil, WithHandler(answering(calls)), WithTimerSettings(shortTimers))
	start := time.Now()
	runSipp(t, "timer-peer-silent.xml", addr, 30*time.Second, "-s", "9196")
	c := takeCall(t, calls)
	waitEnded(t, c, 3*time.Second)
	if took := time.Since(start); took < 4*time.Second {
		t.Fatalf("voxgate hung up after %s, before the 4 s the peer had to refresh", took)
	}
	if r := c.EndReason(); r != "session expired" {
		t.Fatalf("end reason %q, want session expired", r)
	}
}

// Session-Expires 60 is below voxgate's Min-SE (90, the default): 422 with
// Min-SE: 90; sipp's retry at 90 is answered with Session-Expires 90.
func TestSippTimer422(t *testing.T) {
	needSipp(t)
	calls := make(chan *Call, 2)
	_, addr := testServer(t, nil, WithHandler(answering(calls)))
	runSipp(t, "timer-422.xml", addr, 20*time.Second, "-s", "9196")
}

// An UPDATE with a new offer (PCMA only) is answered in the 200 and switches
// the codec; an UPDATE without SDP is a refresh.
func TestSippUpdateOffer(t *testing.T) {
	needSipp(t)
	calls := make(chan *Call, 1)
	_, addr := testServer(t, nil, WithHandler(answering(calls)))
	runSipp(t, "update-offer.xml", addr, 20*time.Second, "-s", "9196")
	c := takeCall(t, calls)
	if got := c.Codec(); got != (audio.Codec{Name: "PCMA", Rate: 8000}) {
		t.Fatalf("codec after UPDATE %+v, want PCMA", got)
	}
}

// A re-INVITE without SDP gets a 200 offering PCMU and PCMA; the ACK's
// answer (PCMA) is taken.
func TestSippReinviteWithoutSDP(t *testing.T) {
	needSipp(t)
	calls := make(chan *Call, 1)
	_, addr := testServer(t, nil, WithHandler(answering(calls)))
	runSipp(t, "reinvite-no-sdp.xml", addr, 20*time.Second, "-s", "9196")
	c := takeCall(t, calls)
	if got := c.Codec(); got != (audio.Codec{Name: "PCMA", Rate: 8000}) {
		t.Fatalf("codec after the re-INVITE %+v, want PCMA from the ACK's answer", got)
	}
}

// Offers without a codec in common get 488 with Warning 305: a first
// INVITE, and mid-call a re-INVITE and an UPDATE, after which the call goes
// on with its codec unchanged.
func TestSippNoCommonCodec(t *testing.T) {
	needSipp(t)
	calls := make(chan *Call, 1)
	_, addr := testServer(t, nil, WithHandler(answering(calls)))
	runSipp(t, "invite-no-common-codec.xml", addr, 20*time.Second, "-s", "9196")
	runSipp(t, "no-common-codec.xml", addr, 20*time.Second, "-s", "9196")
	c := takeCall(t, calls)
	waitEnded(t, c, 3*time.Second) // sipp has its 200 to the BYE a moment before the call is over here
	if got := c.Codec(); got.Name != "PCMU" || c.EndReason() != "remote hangup" {
		t.Fatalf("codec %+v, end %q: want PCMU kept and sipp's BYE", got, c.EndReason())
	}
}

// sippUAS starts sipp running scenario as a UAS for calls calls; wait
// returns when sipp has ended and fails the test unless every call passed.
func sippUAS(t *testing.T, scenario string, calls int) (port int, wait func()) {
	t.Helper()
	port = freeUDPPort(t)
	sf, _ := filepath.Abs(filepath.Join("testdata/sipp", scenario))
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	cmd := exec.CommandContext(ctx, "sipp", "-sf", sf, "-m", fmt.Sprint(calls), "-nostdin", "-timeout", "30s", "-timeout_error",
		"-p", fmt.Sprint(port), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", fmt.Sprint(freeUDPPort(t)),
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	cmd.Dir = dir
	var out syncWriter
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cancel(); <-done })
	return port, func() {
		t.Helper()
		var err error
		select {
		case err = <-done:
			done <- err // for the cleanup
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil || !strings.Contains(out.String(), "Successful call") {
			errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
			t.Fatalf("sipp %s: %v\n%s\n%s", scenario, err, lastLines(out.String(), 20), errs)
		}
	}
}

// dialSipp calls sipp at port as voxgate calls a registered phone.
func dialSipp(t *testing.T, srv *Server, port int) *Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := Binding{AOR: "sipp", Contact: fmt.Sprintf("sip:sipp@127.0.0.1:%d", port), Source: fmt.Sprintf("127.0.0.1:%d", port)}
	for {
		c, err := srv.DialBinding(ctx, b, "voxgate")
		if err == nil {
			return c
		}
		if ctx.Err() != nil {
			t.Fatalf("dial sipp: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // sipp may not be listening yet
	}
}

// voxgate's INVITE asks for a 4 s interval; sipp answers 422 with Min-SE: 8
// and voxgate calls again asking for 8 (RFC 4028 7.4).
func TestSippTimerVoxgateDials422(t *testing.T) {
	needSipp(t)
	srv, _ := testServer(t, nil, WithTimerSettings(TimerSettings{Expires: 4 * time.Second, MinSE: 2 * time.Second}))
	port, wait := sippUAS(t, "timer-voxgate-dials-422.xml", 2)
	c := dialSipp(t, srv, port)
	c.timer.mu.Lock()
	iv, we := c.timer.interval, c.timer.weRefresh
	c.timer.mu.Unlock()
	if iv != 8 || !we {
		t.Errorf("session interval %d s (voxgate refreshing %v), want 8 s from the 422's Min-SE, voxgate refreshing", iv, we)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Hangup(ctx)
	wait()
}

// voxgate calls sipp (sip/dial.go): its INVITE offers session timers; sipp
// makes voxgate the refresher and does not allow UPDATE, so voxgate
// refreshes by re-INVITE, twice; then voxgate hangs up.
func TestSippTimerVoxgateDials(t *testing.T) {
	needSipp(t)
	srv, _ := testServer(t, nil, WithTimerSettings(shortTimers))
	port, wait := sippUAS(t, "timer-voxgate-dials.xml", 1)
	c := dialSipp(t, srv, port)
	// The interval is 6 s: refreshes go at 3 s and 6 s.
	for deadline := time.Now().Add(12 * time.Second); ; {
		n := c.refreshCount()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d refreshes after 12 s, want 2", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Hangup(ctx)
	wait()
}

// The same with an Allow without UPDATE: voxgate refreshes the call it
// answered by re-INVITE (with its unchanged SDP) and ACKs each 200.
func TestSippTimerVoxgateRefreshesByReinvite(t *testing.T) {
	c := sippTimerCall(t, "timer-voxgate-reinvites.xml")
	n := c.refreshCount()
	if n < 2 || c.EndReason() != "remote hangup" {
		t.Fatalf("refreshes %d (want 2), end reason %q", n, c.EndReason())
	}
}

// voxgate's refresh refused with 503 is tried again a sixth of the interval
// later; refused with 491 (glare), 2.1 to 4 s later; the third is answered
// and the call goes on.
func TestSippTimerRefreshRetried(t *testing.T) {
	c := sippTimerCall(t, "timer-refresh-refused.xml")
	n := c.refreshCount()
	if n != 1 || c.EndReason() != "remote hangup" {
		t.Fatalf("refreshes answered 2xx %d (want 1), end reason %q", n, c.EndReason())
	}
}

// An UPDATE with a new offer on an SRTP call goes through the call's SRTP
// policy: the answer stays RTP/SAVP with voxgate's key, and the codec
// switches.
func TestSippUpdateSRTP(t *testing.T) {
	needSipp(t)
	calls := make(chan *Call, 1)
	_, addr := testServer(t, func(cfg *Config) { cfg.SRTP = SRTPOffer }, WithHandler(answering(calls)))
	runSipp(t, "update-srtp.xml", addr, 20*time.Second, "-s", "9196")
	c := takeCall(t, calls)
	if c.Codec().Name != "PCMA" || c.SRTP() == "" {
		t.Fatalf("after the UPDATE: codec %s, SRTP %q; want PCMA over SRTP", c.Codec().Name, c.SRTP())
	}
}

// sippTimerCall runs a sipp scenario against a server with short session
// timers that answers every call, and returns the call once it ended.
func sippTimerCall(t *testing.T, scenario string) *Call {
	t.Helper()
	needSipp(t)
	calls := make(chan *Call, 1)
	_, addr := testServer(t, nil, WithHandler(answering(calls)), WithTimerSettings(shortTimers))
	runSipp(t, scenario, addr, 30*time.Second, "-s", "9196")
	c := takeCall(t, calls)
	waitEnded(t, c, 3*time.Second)
	return c
}

// refreshCount is how many session refreshes voxgate sent on c.
func (c *Call) refreshCount() int {
	c.timer.mu.Lock()
	defer c.timer.mu.Unlock()
	return c.timer.refreshes
}

// Session timers over TCP (sipp -t t1, one connection): sipp refreshes by
// re-INVITE and UPDATE and the call stays up; voxgate refreshes by UPDATE
// down sipp's connection; sipp goes silent and gets voxgate's BYE with a
// Reason. (Over UDP: the tests above; over TLS with baresip:
// cmd/voxgate's interop matrix.)
func TestSippTimersOverTCP(t *testing.T) {
	needSipp(t)
	for _, tc := range []struct{ scenario, reason string }{
		{"timer-peer-refreshes.xml", "remote hangup"},
		{"timer-voxgate-refreshes.xml", "remote hangup"},
		{"timer-peer-silent.xml", "session expired"},
	} {
		t.Run(strings.TrimSuffix(tc.scenario, ".xml"), func(t *testing.T) {
			t.Parallel()
			calls := make(chan *Call, 1)
			_, addr := testServer(t, func(cfg *Config) { cfg.Listen = []Listener{{Transport: "tcp", Addr: "127.0.0.1:0"}} },
				WithHandler(answering(calls)), WithTimerSettings(shortTimers))
			runSipp(t, tc.scenario, addr, 30*time.Second, "-s", "9196", "-t", "t1")
			c := takeCall(t, calls)
			waitEnded(t, c, 3*time.Second)
			if r := c.EndReason(); r != tc.reason {
				t.Fatalf("end reason %q, want %q", r, tc.reason)
			}
			if tc.scenario == "timer-voxgate-refreshes.xml" && c.refreshCount() < 2 {
				t.Fatalf("voxgate sent %d refreshes, want 2", c.refreshCount())
			}
		})
	}
}
