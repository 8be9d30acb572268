package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/dialplan"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/webclient"
)

// gatewayLogs holds each test's browser-gateway log (see logsOf).
var gatewayLogs sync.Map

// logsOf returns what the test's browser gateway has logged so far.
func logsOf(t *testing.T) string {
	if l, ok := gatewayLogs.Load(t); ok {
		return l.(*peertest.SyncBuffer).String()
	}
	return ""
}

type upload struct {
	status, message, pairs, talkers, present, errors string
	wav                                              []byte
}

// browserGateway runs voxgate's web side inside a network namespace: its
// HTTP listener and its ICE socket are made there, and a test route serves
// the test page and takes its upload.
func browserGateway(t *testing.T, ns *peertest.Netns) (string, chan upload) {
	base, uploads, _ := browserGatewayWithSIP(t, ns, false)
	return base, uploads
}

// browserGatewayWithSIP also starts the SIP side on loopback (outside the
// namespace) with the same router, so phones and browsers meet in rooms.
func browserGatewayWithSIP(t *testing.T, ns *peertest.Netns, withSIP bool, mutate ...func(*Config)) (string, chan upload, string) {
	t.Helper()
	cfg, err := parseConfig(configs.DefaultName, configs.Default)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Web.ICEIPs = []string{ns.IP}
	for _, m := range mutate {
		m(cfg)
	}
	if err := cfg.Web.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &peertest.SyncBuffer{}
	gatewayLogs.Store(t, logs)
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := false
	cfg.Rooms.Tones = &f
	plan, err := loadDialplan("", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sipAddr string
	if withSIP {
		port := peertest.FreePorts(t, 1)
		rtp := peertest.FreePorts(t, 40)
		cfg.SIP.Listen = []sip.Listener{{Transport: "udp", Addr: fmt.Sprintf("127.0.0.1:%d", port)}}
		cfg.SIP.RTPPorts = fmt.Sprintf("%d-%d", rtp, rtp+39)
		sipAddr = fmt.Sprintf("127.0.0.1:%d", port)
		if cfg.Cluster.Redis != "" && cfg.Cluster.Advertise == "" { // a cluster node (e2e_cluster_chromium_test.go)
			cfg.Cluster.Advertise = "sip:" + sipAddr
		}
	}
	uploads := make(chan upload, 4)
	page, err := os.ReadFile("testdata/browser/call.html")
	if err != nil {
		t.Fatal(err)
	}
	a, err := wire(cfg, plan, sip.NewUsers(users(cfg)...), log, wiring{webOpts: []webclient.Option{
		webclient.WithICEConn(ns.ListenUDP(t, ns.IP+":0")),
		webclient.WithMux(func(m *http.ServeMux) {
			m.HandleFunc("GET /test/call.html", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write(page)
			})
			// e2e_jssip_test.go's page and bundle, each answer logged: the
			// page once ran without JsSIP ("JsSIP is not defined"), so the
			// log says whether the bundle went out whole.
			jssip := http.StripPrefix("/test/jssip/", http.FileServer(http.Dir("testdata/jssip")))
			m.HandleFunc("GET /test/jssip/", func(w http.ResponseWriter, req *http.Request) {
				sw := &servedWriter{ResponseWriter: w, status: http.StatusOK}
				jssip.ServeHTTP(sw, req)
				log.Info("test file served", "path", req.URL.Path, "proto", req.Proto, "status", sw.status, "bytes", sw.n, "error", sw.err)
			})
			m.HandleFunc("POST /test/upload", func(w http.ResponseWriter, req *http.Request) {
				b, _ := io.ReadAll(io.LimitReader(req.Body, 10<<20))
				q := req.URL.Query()
				uploads <- upload{status: q.Get("status"), message: q.Get("message"), pairs: q.Get("pairs"), talkers: q.Get("talkers"), present: q.Get("present"), errors: q.Get("errors"), wav: b}
			})
		})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		if t.Failed() {
			t.Logf("voxgate log:\n%s", logs.String())
		}
	})
	if withSIP {
		if err := a.sip.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ln := ns.Listen(t, ns.IP+":0")
	if err := a.web.Serve(ln); err != nil {
		t.Fatal(err)
	}
	if a.cluster != nil {
		a.cluster.start()
	}
	return "http://" + ln.Addr().String(), uploads, sipAddr
}

// recording waits for a page's upload and returns it with the audio the
// page recorded.
func recording(t *testing.T, uploads chan upload) (upload, *audio.WAV) {
	t.Helper()
	var u upload
	select {
	case u = <-uploads:
	case <-time.After(40 * time.Second):
		t.Fatal("a page reported nothing")
	}
	if u.status != "ok" {
		t.Fatalf("a page failed: %s", u.message)
	}
	w, err := audio.ReadWAVFile(writeTemp(t, u.wav))
	if err != nil {
		t.Fatal(err)
	}
	return u, w
}

// echoCheck waits for a page's upload and checks the tone came back.
func echoCheck(t *testing.T, uploads chan upload, freq float64) upload {
	t.Helper()
	u, w := recording(t, uploads)
	secs := audio.ToneSeconds(w.Samples, w.Rate, freq, 0.2)
	t.Logf("the page recorded %.1f s at %d Hz over a %s candidate; %.0f Hz in %.1f s",
		float64(len(w.Samples))/float64(w.Rate), w.Rate, u.pairs, freq, secs)
	if secs < 3 {
		t.Fatalf("the echo carried the tone for %.1f s of 5", secs)
	}
	return u
}

// A TURN-only call: coturn in the namespace, the page forced to relay
// candidates (iceTransportPolicy "relay"), audio still flows.
func TestChromiumEchoOverTURN(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "turnserver")
	ns := peertest.NewNetns(t)
	ctx, cancel := context.WithCancel(context.Background())
	turn := ns.Command(ctx, "turnserver", "-n", "--listening-ip="+ns.IP, "--relay-ip="+ns.IP, "--listening-port=3478",
		"--lt-cred-mech", "--user=vg:turnpw", "--realm=voxgate", "--no-tls", "--no-dtls", "--no-cli", "--fingerprint",
		"--no-multicast-peers", "--log-file=stdout", "-v")
	tout := &peertest.SyncBuffer{}
	turn.Stdout, turn.Stderr = tout, tout
	if err := turn.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = turn.Wait()
		if t.Failed() {
			t.Logf("coturn output:\n%s", tout.String())
		}
	})
	base, uploads, _ := browserGatewayWithSIP(t, ns, false, func(cfg *Config) {
		cfg.Web.ICEServers = []webclient.ICEServer{{URLs: []string{"turn:" + ns.IP + ":3478?transport=udp"}, Username: "vg", Credential: "turnpw"}}
	})
	wav := filepath.Join(t.TempDir(), "mic.wav")
	peertest.ToneWAV(t, wav, 48000, 523, 30)
	// Relay-only ICE fails outright if coturn is not answering yet.
	ns.WaitSTUN(t, ns.IP+":3478", 15*time.Second)
	chromium(t, ns, base, fmt.Sprintf("%s/test/call.html?user=alice&password=alice-secret&dial=9196&secs=5&relay=1", base), wav)
	u := echoCheck(t, uploads, 523)
	if u.pairs != "relay" {
		t.Fatalf("the call used a %q candidate, not a relay", u.pairs)
	}
}

// chromium runs headless Chromium in the namespace on url, with a fake
// microphone playing wav; extra flags go before the url.
func chromium(t *testing.T, ns *peertest.Netns, origin, url, wav string, extra ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := ns.Command(ctx, "chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--use-file-for-fake-audio-capture="+wav,
		"--autoplay-policy=no-user-gesture-required", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--user-data-dir="+t.TempDir(),
		// The page is plain HTTP off localhost: let it use the microphone
		// (users serve voxgate over HTTPS for the same reason).
		"--unsafely-treat-insecure-origin-as-secure="+origin,
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE "+ns.IP)
	cmd.Args = append(append(cmd.Args, extra...), url)
	out := &peertest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
	})
	return cmd
}

// Headless Chromium with a fake microphone playing a tone signs in, calls
// the echo extension over real WebRTC (ICE, DTLS-SRTP, Opus), and the tone
// comes back: checked by signal in what the page recorded.
func TestChromiumCallsEcho(t *testing.T) {
	peertest.Need(t, "chromium", "ip")
	ns := peertest.NewNetns(t)
	base, uploads := browserGateway(t, ns)
	wav := filepath.Join(t.TempDir(), "mic.wav")
	peertest.ToneWAV(t, wav, 48000, 440, 30)
	chromium(t, ns, base, fmt.Sprintf("%s/test/call.html?user=alice&password=alice-secret&dial=9196&secs=5", base), wav)
	echoCheck(t, uploads, 440)
}

func writeTemp(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "rec.wav")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Two Chromium pages and one baresip desk phone in one room, each with its
// own tone: each hears the other two and not its own.
func TestChromiumChromiumBaresipRoom(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	ns := peertest.NewNetns(t)
	base, uploads, sipAddr := browserGatewayWithSIP(t, ns, true)
	freqs := []float64{440, 700, 1130} // page 1, page 2, desk phone
	// The desk phone talks in bursts: a steady tone becomes the voice
	// detector's noise floor within seconds, and a page that joins later
	// would never see it talking.
	b := peertest.StartPhone(t, sipAddr, peertest.Phone{User: "carol", Codec: "pcmu", Tone: freqs[2], Pulse: true, Dial: "8001"})
	for i, user := range []string{"alice", "bob"} {
		wav := filepath.Join(t.TempDir(), fmt.Sprintf("mic%d.wav", i))
		peertest.ToneWAV(t, wav, 48000, freqs[i], 60)
		how := "dial" // alice dials the room's number, bob joins it with the join message
		if user == "bob" {
			how = "join"
		}
		// Each page records once all three are in the room: Chromium may
		// start one page seconds after the other on a busy machine.
		chromium(t, ns, base, fmt.Sprintf("%s/test/call.html?user=%s&password=%s-secret&%s=8001&secs=8&everyone=3", base, user, user, how), wav)
	}
	for n := 0; n < 2; n++ {
		u, w := recording(t, uploads)
		// Which page is this? The one whose own tone is missing.
		whole := []float64{audio.Goertzel(w.Samples, w.Rate, freqs[0]), audio.Goertzel(w.Samples, w.Rate, freqs[1])}
		own := 0
		if whole[1] < whole[0] {
			own = 1
		}
		other := 1 - own
		// A page that just joined takes a moment (ICE, DTLS, jitter
		// buffers) before the others hear it: judge the stretch where this
		// page heard both others best.
		p := make([]float64, 3)
		order := []int{other, 2, own}
		for i, v := range peertest.BestWindow(w, 2*time.Second, []float64{freqs[other], freqs[2], freqs[own]}) {
			p[order[i]] = v
		}
		t.Logf("page %d hears: page %d %.2g, desk phone %.2g, itself %.2g; talking shown: %s; in the room: %s", own, other, p[other], p[2], p[own], u.talkers, u.present)
		// The page shows who talks, the desk phone (guest "carol") included.
		if !strings.Contains(u.talkers, "carol") {
			t.Errorf("page %d was not told the desk phone is talking (talkers %q)", own, u.talkers)
		}
		if p[other] < 1e-3 || p[2] < 1e-3 {
			t.Errorf("page %d does not hear everyone: %v", own, p)
		}
		if p[own] > min(p[other], p[2])/100 {
			t.Errorf("page %d hears itself: %v", own, p)
		}
	}
	b.Command("hangup", "")
	b.WaitEnded(5 * time.Second)
	b.Stop()
	// The phone was in the room before and after the pages: judge the
	// stretch where it heard both best.
	p := peertest.BestWindow(b.Received(), 2*time.Second, freqs)
	pa, pb, own := p[0], p[1], p[2]
	t.Logf("desk phone hears: page 0 %.2g, page 1 %.2g, itself %.2g", pa, pb, own)
	if pa < 1e-3 || pb < 1e-3 || own > min(pa, pb)/100 {
		t.Errorf("desk phone: pages %.2g %.2g, own %.2g", pa, pb, own)
	}
}

// A desk phone calls a browser user: the page rings, answers, and each side
// hears the other's tone (PCMU on the phone, Opus in the browser).
func TestDeskPhoneCallsBrowserUser(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	ns := peertest.NewNetns(t)
	base, uploads, sipAddr := browserGatewayWithSIP(t, ns, true)
	wav := filepath.Join(t.TempDir(), "mic.wav")
	peertest.ToneWAV(t, wav, 48000, 600, 30)
	chromium(t, ns, base, fmt.Sprintf("%s/test/call.html?user=alice&password=alice-secret&wait=1&secs=5", base), wav)
	select {
	case u := <-uploads:
		if u.status != "ready" {
			t.Fatalf("the page is not waiting for calls: %s %s", u.status, u.message)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the page did not get ready")
	}
	src := filepath.Join(t.TempDir(), "desk.wav")
	peertest.ToneWAV(t, src, 8000, 1000, 60)
	b := peertest.StartBaresip(t, peertest.BaresipOptions{
		Account: fmt.Sprintf("<sip:bob@%s>;auth_pass=bob-secret;regint=0;audio_codecs=pcmu", sipAddr),
		Source:  src, Dial: "sip:alice@" + sipAddr,
	})
	u := echoCheck(t, uploads, 1000) // the page hears the desk phone
	b.WaitEnded(10 * time.Second)
	b.Stop()
	secs := b.HeardSeconds(600, 0)
	t.Logf("the desk phone heard the page's 600 Hz for %.1f s; the page used a %s candidate", secs, u.pairs)
	if secs < 3 {
		t.Fatalf("the desk phone heard the browser for %.1f s", secs)
	}
}

// A browser calls a registered desk phone (the phone answers by itself): the
// tones cross both ways and a digit pressed on the page reaches the phone as
// RFC 4733.
func TestBrowserCallsDeskPhoneWithDTMF(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	ns := peertest.NewNetns(t)
	base, uploads, sipAddr := browserGatewayWithSIP(t, ns, true)
	b := peertest.StartPhone(t, sipAddr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcmu", Tone: 850, Register: true})
	capture := peertest.CaptureRTP(t, b.RTPMin, b.RTPMax)
	wav := filepath.Join(t.TempDir(), "mic.wav")
	peertest.ToneWAV(t, wav, 48000, 480, 30)
	chromium(t, ns, base, fmt.Sprintf("%s/test/call.html?user=alice&password=alice-secret&dial=bob&secs=5&dtmf=7", base), wav)
	u := echoCheck(t, uploads, 850) // the page hears the phone
	if u.errors != "" {
		t.Errorf("the page got errors: %s", u.errors)
	}
	// baresip 1.0 does not print the digits it receives. voxgate's call to
	// the phone must have sent the digit's RFC 4733 events (that a far end
	// decodes them is shown by the trunk journey, where the carrier counts the
	// digit; logs count digits, never show them); the capture of the phone's
	// RTP ports is reported as well.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logsOf(t), "dtmf_sent_digits=1") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("RFC 4733 digits captured on the way to the phone: %q (payload types %v)", capture.DTMF(), capture.PayloadTypes())
	if !strings.Contains(logsOf(t), "dtmf_sent_digits=1") {
		t.Errorf("voxgate did not send the page's digit to the phone as RFC 4733")
	}
	b.WaitEnded(5 * time.Second)
	b.Stop()
	w := b.Received()
	secs := audio.ToneSeconds(w.Samples, w.Rate, 480, 0.2)
	t.Logf("the desk phone heard the page's 480 Hz for %.1f s", secs)
	if secs < 3 {
		t.Fatalf("the desk phone heard the browser for %.1f s", secs)
	}
}

const carrierPlan = `
contexts:
  numbers:
    rules:
      - pattern: '\d+'
        dial: {user: "$number"}
origins:
  user: numbers
`

const gatewayPlan = `
contexts:
  internal:
    allow_trunks: true
    rules:
      - pattern: '\+(\d{6,15})'
        dial: {trunk: carrier, number: "$1", caller_id: "4930123"}
  from-carrier:
    rules:
      - number: "4930123"
        dial: {user: alice}
origins:
  user: internal
  web: internal
  trunks: {carrier: from-carrier}
`

// carrierFor starts a second voxgate acting as a carrier: it accepts the
// gateway's registration (digest), and routes a number to the phone that
// registered under it.
func carrierFor(t *testing.T) (string, *sip.Server, *testRouter) {
	t.Helper()
	port := peertest.FreePorts(t, 1)
	rtp := peertest.FreePorts(t, 40)
	cfg, err := parseConfig(configs.DefaultName, configs.Default)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = []sip.Listener{{Transport: "udp", Addr: fmt.Sprintf("127.0.0.1:%d", port)}}
	cfg.SIP.RTPPorts = fmt.Sprintf("%d-%d", rtp, rtp+39)
	cfg.SIP.MinExpires = 2
	cfg.SIP.Domain = "carrier.test"
	cfg.Users = []UserConfig{{Name: "4930123", Password: "trunk-pw"}, {Name: "15551230001", Password: "far-pw"}}
	if err := cfg.SIP.Validate(); err != nil {
		t.Fatal(err)
	}
	plan, err := dialplan.Parse("carrier.yaml", []byte(carrierPlan), dialplan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &peertest.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	router := &testRouter{}
	a, err := wire(cfg, plan, sip.NewUsers(users(cfg)...), log, wiring{ended: router.add})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.sip.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := a.sip
	t.Cleanup(func() {
		a.Close()
		if t.Failed() {
			t.Logf("carrier log:\n%s", logs.String())
		}
	})
	return fmt.Sprintf("127.0.0.1:%d", port), srv, router
}

// Journey 1: a browser calls a phone number. The page dials +15551230001;
// the dialplan sends it through the trunk to which voxgate registered with
// digest auth; the carrier (a second voxgate) rings the phone registered
// there (baresip). Tones cross both ways, a digit pressed on the page
// reaches the carrier as RFC 4733, and hanging up on the page ends both.
func TestBrowserCallsNumberThroughTrunk(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	carrierAddr, carrier, carrierCalls := carrierFor(t)
	far := peertest.StartPhone(t, carrierAddr, peertest.Phone{User: "15551230001", Password: "far-pw", Codec: "pcma", Tone: 950, Register: true})
	ns := peertest.NewNetns(t)
	planPath := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(planPath, []byte(gatewayPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	base, uploads, _ := browserGatewayWithSIP(t, ns, true, func(cfg *Config) {
		cfg.Dialplan = planPath
		cfg.SIP.Trunks = []sip.TrunkConfig{{Name: "carrier", Registrar: "sip:" + carrierAddr, Username: "4930123", Password: "trunk-pw", Expires: 60}}
	})
	deadline := time.Now().Add(10 * time.Second)
	for len(carrier.Bindings("4930123")) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(carrier.Bindings("4930123")) == 0 {
		t.Fatal("voxgate did not register to the carrier")
	}
	chromium(t, ns, base, fmt.Sprintf("%s/test/call.html?user=alice&password=alice-secret&dial=%%2B15551230001&secs=5&dtmf=5", base), toneFile(t, 48000, 420))
	u := echoCheck(t, uploads, 950) // the page hears the far phone
	if u.errors != "" {
		t.Errorf("the page got errors: %s", u.errors)
	}
	if !far.WaitEnded(10 * time.Second) {
		t.Errorf("hanging up on the page did not end the far call:\n%s", far.Output())
	}
	far.Stop()
	w := far.Received()
	secs := audio.ToneSeconds(w.Samples, w.Rate, 420, 0.2)
	t.Logf("the far phone heard the page's 420 Hz for %.1f s", secs)
	if secs < 3 {
		t.Errorf("the far phone heard the browser for %.1f s", secs)
	}
	// The carrier's call counted the digit (logs never show digits).
	deadline = time.Now().Add(3 * time.Second)
	for st, _ := carrierCalls.lastStats(); st.DTMFReceived != "5" && time.Now().Before(deadline); st, _ = carrierCalls.lastStats() {
		time.Sleep(50 * time.Millisecond)
	}
	if st, _ := carrierCalls.lastStats(); st.DTMFReceived != "5" {
		t.Errorf("the page's digit did not reach the carrier as RFC 4733 (got %q)", st.DTMFReceived)
	}
}

func toneFile(t *testing.T, rate int, freq float64) string {
	p := filepath.Join(t.TempDir(), fmt.Sprintf("tone%.0f.wav", freq))
	peertest.ToneWAV(t, p, rate, freq, 60)
	return p
}

// Browser to browser, with forking: alice's page dials "bob"; bob's page and
// bob's desk phone (which does not pick up) ring at once; the page answers
// first, the phone's ringing is cancelled, and the two pages hear each other.
func TestBrowserCallsBrowserWhileHisPhoneRings(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	ns := peertest.NewNetns(t)
	base, uploads, sipAddr := browserGatewayWithSIP(t, ns, true)
	phone := peertest.StartPhone(t, sipAddr, peertest.Phone{User: "bob", Password: "bob-secret", Register: true, Answer: "manual"})
	chromium(t, ns, base, fmt.Sprintf("%s/test/call.html?user=bob&password=bob-secret&wait=1&secs=5", base), toneFile(t, 48000, 760))
	select {
	case u := <-uploads:
		if u.status != "ready" {
			t.Fatalf("bob's page is not waiting: %s %s", u.status, u.message)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("bob's page did not get ready")
	}
	chromium(t, ns, base, fmt.Sprintf("%s/test/call.html?user=alice&password=alice-secret&dial=bob&secs=5", base), toneFile(t, 48000, 1240))
	heard := map[string]bool{}
	for i := 0; i < 2; i++ {
		_, w := recording(t, uploads)
		for _, f := range []float64{760, 1240} {
			if s := audio.ToneSeconds(w.Samples, w.Rate, f, 0.2); s >= 3 {
				heard[fmt.Sprint(f)] = true
				t.Logf("a page heard %.0f Hz for %.1f s", f, s)
			}
		}
	}
	if !heard["760"] || !heard["1240"] {
		t.Fatalf("the pages did not hear each other: %v", heard)
	}
	if !phone.WaitFor("Incoming call", 2*time.Second) {
		t.Errorf("bob's desk phone did not ring alongside his page:\n%s", phone.Output())
	}
	if strings.Contains(phone.Output(), "Call established") {
		t.Errorf("the desk phone was connected too:\n%s", phone.Output())
	}
}

// pinPlan puts a PIN in front of room "bridge" for pages and a direct way in
// for the desk phone.
const pinPlan = `
contexts:
  internal:
    rules:
      - number: "7000"
        pin: {room: {name: bridge, pin: "1234"}}
      - number: "7009"
        room: {name: bridge}
origins: {user: internal, web: internal, guest: internal}
`

// A page dials a PIN-protected bridge and keys the PIN on its keypad (DTMF
// over the WebSocket): it leaves the PIN prompt at once for the room, where
// it hears the desk phone already there, and the phone hears it.
func TestChromiumKeysPINIntoRoom(t *testing.T) {
	peertest.Need(t, "chromium", "ip", "baresip")
	ns := peertest.NewNetns(t)
	planPath := writePlan(t, pinPlan)
	base, uploads, sipAddr := browserGatewayWithSIP(t, ns, true, func(cfg *Config) { cfg.Dialplan = planPath })
	b := peertest.StartPhone(t, sipAddr, peertest.Phone{User: "carol", Codec: "pcmu", Tone: 1130, Dial: "7009"})
	chromium(t, ns, base, fmt.Sprintf("%s/test/call.html?user=alice&password=alice-secret&dial=7000&pin=1234%%23&everyone=2&secs=5", base), toneFile(t, 48000, 440))
	u, w := recording(t, uploads)
	lv := peertest.Levels(w, 1.0/3, 1130, 440)
	phone, own := lv[0], lv[1]
	t.Logf("the page hears: desk phone %.2g, itself %.2g; in the room: %s", phone, own, u.present)
	if phone < 1e-3 || own > phone/100 {
		t.Errorf("the page in the PIN room: desk phone %.2g, itself %.2g", phone, own)
	}
	if !strings.Contains(logsOf(t), "PIN accepted") {
		t.Errorf("voxgate did not log the PIN accepted:\n%s", logsOf(t))
	}
	b.Command("hangup", "")
	b.WaitEnded(5 * time.Second)
	b.Stop()
	p := peertest.BestWindow(b.Received(), 2*time.Second, []float64{440, 1130})
	t.Logf("the desk phone hears: page %.2g, itself %.2g", p[0], p[1])
	if p[0] < 1e-3 || p[1] > p[0]/100 {
		t.Errorf("the desk phone does not hear the page: page %.2g, itself %.2g", p[0], p[1])
	}
}

// servedWriter notes what a handler answered: status, bytes, the first
// write error (the client gone).
type servedWriter struct {
	http.ResponseWriter
	status int
	n      int
	err    error
}

func (w *servedWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

func (w *servedWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += n
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}
