package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/sip"
)

// The interop matrix with baresip: each SIP transport (UDP, TCP, TLS) with
// each media encryption (plain RTP; SDES SRTP offered best effort as
// RTP/AVP with a=crypto, mediaenc=srtp; SDES SRTP mandatory as RTP/SAVP,
// mediaenc=srtp-mand). In each case baresip registers with digest auth and
// calls the echo test over that transport; its tone comes back (its own
// recording); voxgate refreshes the session (RFC 4028, a 2 s interval
// through the test knob) by re-INVITE at least once and baresip answers it,
// over the same transport and with the SRTP keys kept; and, for SRTP, a
// capture at baresip's RTP ports shows no plain RTP (no bare 160-byte G.711
// payload, and the payloads decoded as G.711 carry none of the tone) while
// voxgate dropped no SRTP packet. Each case logs one line of the matrix;
// the parent logs the whole table.
func TestInteropMatrixBaresip(t *testing.T) {
	peertest.Need(t, "baresip")
	type cell struct {
		transport, mediaenc, policy string
	}
	var cells []cell
	for _, tr := range []string{"udp", "tcp", "tls"} {
		for _, m := range []struct{ mediaenc, policy string }{
			{"", "off"},
			{"srtp", "offer"},
			{"srtp-mand", "require"},
		} {
			cells = append(cells, cell{tr, m.mediaenc, m.policy})
		}
	}
	media := func(c cell) string {
		if c.mediaenc == "" {
			return "plain"
		}
		return c.mediaenc
	}
	var (
		setup   sync.Mutex // one case at a time chooses ports and binds them
		mu      sync.Mutex
		results = map[cell]string{}
	)
	start := time.Now()
	t.Run("cases", func(t *testing.T) {
		for _, c := range cells {
			t.Run(c.transport+"-"+media(c), func(t *testing.T) {
				t.Parallel()
				line := "stopped early"
				defer func() { // also after a t.Fatal
					verdict := "pass"
					if t.Failed() {
						verdict = "FAIL"
					}
					t.Logf("matrix: baresip | %s | %s | %s (%s)", c.transport, media(c), verdict, line)
					mu.Lock()
					results[c] = verdict
					mu.Unlock()
				}()
				line = matrixCase(t, &setup, c.transport, c.mediaenc, c.policy)
			})
		}
	})
	var b strings.Builder
	fmt.Fprintf(&b, "interop matrix (%.0fs):\n| client | transport | plain | srtp (RTP/AVP+crypto) | srtp-mand (RTP/SAVP) |\n", time.Since(start).Seconds())
	for _, tr := range []string{"udp", "tcp", "tls"} {
		fmt.Fprintf(&b, "| baresip | %s |", tr)
		for _, c := range cells {
			if c.transport == tr {
				v := results[c]
				if v == "" {
					v = "not run"
				}
				fmt.Fprintf(&b, " %s |", v)
			}
		}
		b.WriteString("\n")
	}
	t.Log(b.String())
}

// matrixCase runs one cell of the interop matrix and returns what it
// measured, for the matrix line.
func matrixCase(t *testing.T, setup *sync.Mutex, transport, mediaenc, policy string) string {
	const freq = 650
	setup.Lock()
	locked := true
	unlock := func() {
		if locked {
			locked = false
			setup.Unlock()
		}
	}
	defer unlock()
	g, tlsAddr, caFile := startTLSGateway(t, srtpFor("alice", policy),
		sip.WithTimerSettings(sip.TimerSettings{Expires: 2 * time.Second, MinSE: time.Second}))
	addr := g.addr
	if transport == "tls" {
		addr = tlsAddr
	}
	b := peertest.StartPhone(t, addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: freq,
		Register: true, Dial: "9196", MediaEnc: mediaenc, Transport: transport, CAFile: caFile})
	// The capture watches the one port baresip receives RTP on (voxgate's
	// log names it): the cases run side by side, and another case's
	// gateway may take RTP ports inside baresip's range.
	m := regexp.MustCompile(`msg="call answered" .*remote_rtp=127\.0\.0\.1:(\d+)`).FindStringSubmatch(g.log.String())
	if m == nil {
		t.Fatalf("voxgate logged no answered call:\n%s", b.Output())
	}
	rtpPort, _ := strconv.Atoi(m[1])
	capture := peertest.CaptureRTP(t, rtpPort, rtpPort)
	callStart := time.Now()
	unlock()

	if bs := g.srv.Bindings("alice"); len(bs) != 1 || !strings.EqualFold(bs[0].Transport, transport) {
		t.Errorf("bindings %+v, want one over %s", bs, transport)
	}
	refreshed := func() int {
		n := 0
		for _, l := range strings.Split(g.log.String(), "\n") {
			if strings.Contains(l, `msg="session refreshed"`) && strings.Contains(l, "method=INVITE status=200") {
				n++
			}
		}
		return n
	}
	// The call lasts 3 s and until voxgate's first refresh was answered
	// (due after 1 s; 10 s at most on a busy machine).
	deadline := callStart.Add(10 * time.Second)
	for (time.Since(callStart) < 3*time.Second || refreshed() < 1) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	callEnd := time.Now()
	b.Command("hangup", "")
	if !b.WaitEnded(5 * time.Second) {
		t.Fatalf("call did not end:\n%s", b.Output())
	}
	b.Stop()
	for d := time.Now().Add(5 * time.Second); g.router.ended() == 0 && time.Now().Before(d); {
		time.Sleep(20 * time.Millisecond)
	}

	heard := toneIn(b.Received(), freq, 0.5, 2.5)
	if heard < 1.3 {
		t.Errorf("baresip heard its echo %.1fs of 2s", heard)
	}
	refreshes := refreshed()
	if refreshes < 1 {
		t.Errorf("no session refresh (re-INVITE) answered 200 by baresip")
	}
	// Each refresh was ACKed, and the call ended with baresip's BYE, not
	// with a failed refresh.
	for _, bad := range []string{"ACK of a refresh failed", "session refresh failed", "session timer expired"} {
		if strings.Contains(g.log.String(), bad) {
			t.Errorf("voxgate logged %q", bad)
		}
	}
	if !strings.Contains(g.log.String(), `reason="remote hangup"`) {
		t.Errorf("the call did not end with baresip's BYE")
	}
	if !strings.Contains(g.log.String(), "source="+transport+":127.0.0.1:") {
		t.Errorf("voxgate logged no request over %s", transport)
	}
	st, _ := g.router.lastStats()
	if st.PacketsReceived < 100 {
		t.Errorf("voxgate received %d RTP packets", st.PacketsReceived)
	}
	log := g.log.String()
	if strings.Contains(log, "inline:") {
		t.Errorf("voxgate logged an SDES key")
	}
	line := fmt.Sprintf("heard %.1fs of 2s, %d refreshes, %d packets in", heard, refreshes, st.PacketsReceived)
	if mediaenc == "" {
		if strings.Contains(log, "srtp=AES") || strings.Contains(log, "srtp=AEAD") {
			t.Errorf("a plain call logged an SRTP suite")
		}
		return line
	}
	wire := capture.Between(callStart, callEnd)
	onWire := audio.ToneSeconds(wire, 8000, freq, 0.2)
	pts, sizes := capture.PayloadTypes(), capture.PayloadSizes()
	if pts[0] < 100 {
		t.Errorf("only %d audio packets captured at baresip's RTP port %d", pts[0], rtpPort)
	}
	if sizes[160] != 0 {
		t.Errorf("%d packets with a bare 160-byte payload: plain RTP on the wire", sizes[160])
	}
	if onWire > 0.1 {
		t.Errorf("the tone decodes from the wire (%.2fs): the media is not encrypted", onWire)
	}
	if !strings.Contains(log, "srtp=AES_CM_128_HMAC_SHA1") && !strings.Contains(log, "srtp=AEAD_AES_128_GCM") {
		t.Errorf("voxgate did not log an SRTP suite for the call")
	}
	if st.SRTPAuthFailures != 0 {
		t.Errorf("voxgate dropped %d SRTP packets", st.SRTPAuthFailures)
	}
	return line + fmt.Sprintf(", SRTP: %d packets captured, %d plain-sized, tone on the wire %.2fs, %d dropped",
		pts[0], sizes[160], onWire, st.SRTPAuthFailures)
}
