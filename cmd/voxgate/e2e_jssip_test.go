package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

// SIP over WebSocket with a real browser softphone: JsSIP 3.13 (the bundle
// in testdata/jssip, rebuilt by its build.sh) in headless Chromium inside a
// network namespace registers over ws://.../sip with digest auth and calls
// with WebRTC media (ICE, DTLS-SRTP, Opus) on its SIP leg.

// jssipGateway is browserGatewayWithSIP with web.sip_websocket on.
func jssipGateway(t *testing.T, ns *peertest.Netns) (string, chan upload, string) {
	t.Helper()
	return browserGatewayWithSIP(t, ns, true, func(cfg *Config) { cfg.Web.SIPWebSocket = true })
}

// jssipPage opens the JsSIP test page as user with a microphone playing a
// tone of freq; query adds to its parameters.
func jssipPage(t *testing.T, ns *peertest.Netns, base, user string, freq float64, query string, flags ...string) *exec.Cmd {
	t.Helper()
	wav := filepath.Join(t.TempDir(), fmt.Sprintf("jssip%.0f.wav", freq))
	peertest.ToneWAV(t, wav, 48000, freq, 60)
	// Chromium's NetLog, to say why if the page fails: twice in CI (under
	// HTTP/2, over TLS) the connection went away as jssip.min.js was asked
	// for. The NetLog of a forced failure showed Chromium closing its
	// sessions on a network change (ERR_NETWORK_CHANGED): the namespace's
	// IPv6 link-local addresses, which came up a second or two after
	// Chromium had started (peertest.NewNetns now makes none).
	netlog := filepath.Join(t.TempDir(), "netlog.json")
	t.Cleanup(func() { // after Chromium has exited (cleanups run last first)
		if t.Failed() {
			ex, err := netLogExcerpt(netlog, 200, "jssip.min.js")
			t.Logf("Chromium's NetLog, the events that end something (%v):\n%s", err, ex)
		}
	})
	flags = append(flags, "--log-net-log="+netlog)
	return chromium(t, ns, base, fmt.Sprintf("%s/test/jssip/phone.html?user=%s&password=%s-secret&%s", base, user, user, query), wav, flags...)
}

// waitGatewayLog waits until the gateway has logged s.
func waitGatewayLog(t *testing.T, s string, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(logsOf(t), s) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// JsSIP registers (digest), calls the echo test, puts it on hold and
// takes it back (re-INVITEs with WebRTC offers), keys two digits (SIP
// INFO), and hears its own tone.
func TestJsSIPCallsEcho(t *testing.T) {
	peertest.Need(t, "chromium", "ip")
	ns := peertest.NewNetns(t)
	base, uploads, _ := jssipGateway(t, ns)
	jssipPage(t, ns, base, "alice", 440, "dial=9196&secs=5&hold=1&dtmf=42")
	u := echoCheck(t, uploads, 440)
	t.Logf("JsSIP's media went over a %s candidate", u.pairs)
	logs := logsOf(t)
	if !strings.Contains(logs, "registered user=alice source=ws:") {
		t.Errorf("alice did not register over the WebSocket:\n%s", logs)
	}
	if !strings.Contains(logs, `incoming call`) || !strings.Contains(logs, "source=ws:") {
		t.Errorf("the call did not come over the WebSocket")
	}
	if !strings.Contains(logs, `re-INVITE from a browser" call_id`) || !strings.Contains(logs, "hold=true") {
		t.Errorf("voxgate did not take JsSIP's hold re-INVITE")
	}
	// Its two digits came as SIP INFO (logs count digits, never show them).
	if !waitGatewayLog(t, "dtmf_digits=2", 5*time.Second) {
		t.Errorf("JsSIP's digits sent as SIP INFO were not counted")
	}
}

// JsSIP and a baresip desk phone in one room, each with its own tone: each
// hears the other and not itself.
func TestJsSIPAndDeskPhoneInRoom(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	ns := peertest.NewNetns(t)
	base, uploads, sipAddr := jssipGateway(t, ns)
	b := peertest.StartPhone(t, sipAddr, peertest.Phone{User: "carol", Codec: "pcmu", Tone: 1130, Dial: "8001"})
	jssipPage(t, ns, base, "alice", 440, "dial=8001&secs=6")
	_, w := recording(t, uploads)
	lv := peertest.BestWindow(w, 2*time.Second, []float64{1130, 440})
	t.Logf("JsSIP hears: desk phone %.2g, itself %.2g", lv[0], lv[1])
	if lv[0] < 1e-3 || lv[1] > lv[0]/100 {
		t.Errorf("JsSIP in the room: desk phone %.2g, itself %.2g", lv[0], lv[1])
	}
	b.Command("hangup", "")
	b.WaitEnded(5 * time.Second)
	b.Stop()
	p := peertest.BestWindow(b.Received(), 2*time.Second, []float64{440, 1130})
	t.Logf("the desk phone hears: JsSIP %.2g, itself %.2g", p[0], p[1])
	if p[0] < 1e-3 || p[1] > p[0]/100 {
		t.Errorf("the desk phone in the room: JsSIP %.2g, itself %.2g", p[0], p[1])
	}
}

// A baresip desk phone calls a user registered with JsSIP: voxgate reaches
// it over its WebSocket with a WebRTC offer, JsSIP answers, each side hears
// the other's tone. When the browser goes away without unregistering, its
// binding goes with its WebSocket.
func TestDeskPhoneCallsJsSIPUser(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	ns := peertest.NewNetns(t)
	base, uploads, sipAddr := jssipGateway(t, ns)
	page := jssipPage(t, ns, base, "alice", 600, "wait=1&secs=5&unregister=0")
	select {
	case u := <-uploads:
		if u.status != "ready" {
			t.Fatalf("the JsSIP page did not register: %s %s", u.status, u.message)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the JsSIP page did not get ready")
	}
	src := filepath.Join(t.TempDir(), "desk.wav")
	peertest.ToneWAV(t, src, 8000, 1000, 60)
	b := peertest.StartBaresip(t, peertest.BaresipOptions{
		Account: fmt.Sprintf("<sip:bob@%s>;auth_pass=bob-secret;regint=0;audio_codecs=pcmu", sipAddr),
		Source:  src, Dial: "sip:alice@" + sipAddr,
	})
	echoCheck(t, uploads, 1000) // the page hears the desk phone
	b.WaitEnded(10 * time.Second)
	b.Stop()
	secs := b.HeardSeconds(600, 0)
	t.Logf("the desk phone heard JsSIP's 600 Hz for %.1f s", secs)
	if secs < 3 {
		t.Errorf("the desk phone heard JsSIP for %.1f s", secs)
	}
	// The page did not unregister; ending Chromium closes its WebSocket.
	_ = page.Process.Kill()
	if !waitGatewayLog(t, `unregistered: its WebSocket closed" user=alice`, 20*time.Second) {
		t.Errorf("alice's binding stayed after her WebSocket closed")
	}
}

// Over HTTPS the page's WebSocket is wss:// (TLS is the web server's):
// JsSIP registers and calls the echo over it.
func TestJsSIPOverWSS(t *testing.T) {
	peertest.Need(t, "chromium", "ip")
	ns := peertest.NewNetns(t)
	_, cert, key := testCerts(t)
	base, uploads, _ := browserGatewayWithSIP(t, ns, true, func(cfg *Config) {
		cfg.Web.SIPWebSocket = true
		cfg.Web.TLSCert, cfg.Web.TLSKey = cert, key
	})
	base = "https://" + strings.TrimPrefix(base, "http://")
	// The test CA's certificate names 127.0.0.1, not the namespace's address.
	// Its digits go as RFC 4733 telephone-events (RTCRtpSender.dtmf), which
	// voxgate agreed to in its answer and takes from the RTP relay.
	jssipPage(t, ns, base, "bob", 520, "dial=9196&secs=4&dtmf=58&dtmftype=RFC2833", "--ignore-certificate-errors")
	echoCheck(t, uploads, 520)
	if logs := logsOf(t); !strings.Contains(logs, "registered user=bob source=ws:") {
		t.Errorf("bob did not register over the secure WebSocket:\n%s", logs)
	}
	if !waitGatewayLog(t, "dtmf_digits=2", 5*time.Second) {
		t.Errorf("JsSIP's two RFC 4733 digits were not counted")
	}
	logs := logsOf(t)
	if n := strings.Count(logs, `msg="DTMF digit received" call_id=`); n != 2 || strings.Count(logs, `via="RFC 4733"`) != 2 {
		t.Errorf("%d digits received, %d of them as RFC 4733; want 2 and 2", n, strings.Count(logs, `via="RFC 4733"`))
	}
}

// RFC 4733 both ways on a browser's SIP leg: a baresip desk phone calls a
// JsSIP user (voxgate's WebRTC offer has telephone-event/48000, which
// Chromium takes); JsSIP sends its digits through RTCRtpSender.dtmf, and
// they reach the desk phone as RFC 4733 (seen on the wire at its ports);
// the desk phone's digits are sent to the browser as RFC 4733 (voxgate's
// browser leg counts them sent: Chromium gives a page no way to see
// received digits; webclient's tests check them at a pion peer).
func TestJsSIPDigitsRFC4733(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	ns := peertest.NewNetns(t)
	base, uploads, sipAddr := jssipGateway(t, ns)
	jssipPage(t, ns, base, "alice", 600, "wait=1&secs=4&dtmf=42&dtmftype=RFC2833")
	select {
	case u := <-uploads:
		if u.status != "ready" {
			t.Fatalf("the JsSIP page did not register: %s %s", u.status, u.message)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the JsSIP page did not get ready")
	}
	b := peertest.StartBaresip(t, peertest.BaresipOptions{
		Account: fmt.Sprintf("<sip:bob@%s>;auth_pass=bob-secret;regint=0;audio_codecs=pcmu", sipAddr),
		Dial:    "sip:alice@" + sipAddr,
	})
	capture := peertest.CaptureRTP(t, b.RTPMin, b.RTPMax)
	if !b.WaitFor("Call established", 20*time.Second) {
		t.Fatalf("the call to the JsSIP user was not established:\n%s", b.Output())
	}
	b.Command("sndcode", "73")
	u := <-uploads
	if u.status != "ok" {
		t.Fatalf("the JsSIP page: %s %s", u.status, u.message)
	}
	deadline := time.Now().Add(10 * time.Second)
	for capture.DTMF() != "42" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := capture.DTMF(); got != "42" {
		t.Errorf("the desk phone got digits %q as RFC 4733, want JsSIP's \"42\"", got)
	}
	b.WaitEnded(10 * time.Second)
	b.Stop()
	if !waitGatewayLog(t, "dtmf_sent_digits=2", 10*time.Second) {
		t.Fatalf("no call ended")
	}
	logs := logsOf(t)
	if n := strings.Count(logs, "dtmf_digits=2 dtmf_sent_digits=2"); n != 2 {
		t.Errorf("%d legs received and sent two digits, want both (the browser's and the desk phone's)", n)
	}
	if strings.Contains(logs, `via=INFO`) {
		t.Errorf("a digit came as SIP INFO")
	}
}
