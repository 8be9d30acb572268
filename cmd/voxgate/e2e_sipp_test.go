package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

// sipp's hidden uac_pcap scenario calls the echo extension, plays G.711 A-law
// from a capture plus an RFC 2833 DTMF '1', and hangs up.
func TestSippUacPcapEcho(t *testing.T) {
	peertest.Need(t, "sipp")
	g := startGateway(t, nil)
	dir := pcapDir(t)
	port := peertest.FreePorts(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := peertest.Sipp(ctx, dir, "-sn", "uac_pcap", g.addr, "-s", "9196", "-m", "1", "-nostdin",
		"-timeout", "40s", "-timeout_error", "-p", fmt.Sprint(port), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-trace_err")
	if err != nil {
		t.Fatalf("sipp uac_pcap failed: %v\n%s", err, tail(out, 25))
	}
	if !strings.Contains(out, "Successful call") {
		t.Fatalf("sipp output:\n%s", tail(out, 25))
	}
	deadline := time.Now().Add(3 * time.Second)
	for g.router.ended() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st, ok := g.router.lastStats()
	if !ok {
		t.Fatal("voxgate saw no call")
	}
	t.Logf("voxgate: rx %d tx %d packets, dtmf %q, jitter %v", st.PacketsReceived, st.PacketsSent, st.DTMFReceived, st.Jitter)
	if st.PacketsReceived < 100 || st.PacketsSent < 100 {
		t.Errorf("too little media: rx %d tx %d", st.PacketsReceived, st.PacketsSent)
	}
	if st.DTMFReceived != "1" {
		t.Errorf("DTMF received %q, want the pcap's RFC 2833 '1'", st.DTMFReceived)
	}
}

// sipp registers with digest authentication (-au/-ap).
func TestSippRegisterDigest(t *testing.T) {
	peertest.Need(t, "sipp")
	g := startGateway(t, nil)
	scenario, err := filepath.Abs("testdata/sipp/register.xml")
	if err != nil {
		t.Fatal(err)
	}
	port := peertest.FreePorts(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := peertest.Sipp(ctx, t.TempDir(), "-sf", scenario, g.addr, "-s", "bob", "-au", "bob", "-ap", "bob-secret",
		"-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error", "-p", fmt.Sprint(port), "-i", "127.0.0.1", "-trace_err")
	if err != nil {
		t.Fatalf("sipp register failed: %v\n%s", err, tail(out, 25))
	}
	b := g.srv.Bindings("bob")
	if len(b) != 1 || !strings.Contains(b[0].Contact, fmt.Sprintf(":%d", port)) {
		t.Fatalf("bindings after sipp REGISTER: %+v", b)
	}
	// The same with a wrong password fails.
	out, err = peertest.Sipp(ctx, t.TempDir(), "-sf", scenario, g.addr, "-s", "alice", "-au", "alice", "-ap", "nope",
		"-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error", "-p", fmt.Sprint(port), "-i", "127.0.0.1")
	if err == nil {
		t.Fatalf("sipp registered with a wrong password:\n%s", tail(out, 25))
	}
	if len(g.srv.Bindings("alice")) != 0 {
		t.Fatal("binding for a wrong password")
	}
}

// sippRun is what a sipp run printed, and how it ended.
type sippRun struct {
	out string
	err error
}

// sippInBackground runs sipp with args in dir until it ends or ctx does;
// its outcome comes on the channel.
func sippInBackground(ctx context.Context, dir string, args ...string) <-chan sippRun {
	done := make(chan sippRun, 1)
	go func() {
		out, err := peertest.Sipp(ctx, dir, args...)
		done <- sippRun{out, err}
	}()
	return done
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sipp sends an INVITE without SDP (a late offer) to the prompt: voxgate
// offers in its 200, takes sipp's PCMU answer from the ACK, plays the prompt
// to the address in it (sipp echoes the RTP back) and hangs up.
func TestSippLateOffer(t *testing.T) {
	peertest.Need(t, "sipp")
	plan := writePlan(t, "contexts:\n  public:\n    rules:\n      - number: \"9197\"\n        playback: {}\norigins:\n  guest: public\n")
	g := startGateway(t, func(cfg *Config) { cfg.Dialplan = plan })
	scenario, err := filepath.Abs("testdata/sipp/late-offer.xml")
	if err != nil {
		t.Fatal(err)
	}
	port := peertest.FreePorts(t, 1)
	media := peertest.FreePorts(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := peertest.Sipp(ctx, t.TempDir(), "-sf", scenario, g.addr, "-s", "9197", "-m", "1", "-nostdin", "-rtp_echo",
		"-timeout", "20s", "-timeout_error", "-p", fmt.Sprint(port), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", fmt.Sprint(media), "-trace_err")
	if err != nil {
		t.Fatalf("sipp late offer failed: %v\n%s", err, tail(out, 25))
	}
	deadline := time.Now().Add(3 * time.Second)
	for g.router.ended() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st, ok := g.router.lastStats()
	if !ok {
		t.Fatal("voxgate saw no call")
	}
	t.Logf("voxgate: tx %d rx %d packets", st.PacketsSent, st.PacketsReceived)
	if st.PacketsSent < 40 || st.PacketsReceived < 20 {
		t.Fatalf("the prompt did not reach sipp's media port and come back: tx %d rx %d", st.PacketsSent, st.PacketsReceived)
	}
	if !strings.Contains(g.log.String(), "late_offer=true") || !strings.Contains(g.log.String(), `msg="call answered" call_id`) {
		t.Fatalf("voxgate did not log a late-offer call answered:\n%s", g.log.String())
	}
}

// A REGISTER flood from sipp (digest, 8,000 registrations as fast as it
// goes) against a voxgate allowed 500 transactions at once: the excess is
// refused 503, and the heap held afterwards stays bounded (without the
// bound, each registration's transaction would hold about 5 KB for 32 s).
func TestSippRegisterFloodBounded(t *testing.T) {
	peertest.Need(t, "sipp")
	g := startGateway(t, func(cfg *Config) {
		cfg.SIP.MaxTransactions = 500
		cfg.SIP.Guard.SlowAfter, cfg.SIP.Guard.BanAfter = 1<<20, 1<<20
	})
	scenario, err := filepath.Abs("testdata/sipp/register.xml")
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	port := peertest.FreePorts(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, _ := peertest.Sipp(ctx, t.TempDir(), "-sf", scenario, g.addr, "-s", "bob", "-au", "bob", "-ap", "bob-secret",
		"-r", "1000", "-m", "8000", "-l", "1000", "-nd", "-nostdin", "-timeout", "60s", "-p", fmt.Sprint(port), "-i", "127.0.0.1", "-recv_timeout", "2000")
	st := g.srv.ServerStats()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	held := int64(ms.HeapInuse) - int64(base)
	t.Logf("after the flood: %d transactions alive, %d requests refused 503, %d REGISTERs, heap held %.1f MB",
		st.Transactions, st.Overloaded, st.Requests["REGISTER"], float64(held)/1e6)
	if st.Overloaded == 0 {
		t.Fatalf("the flood never reached the bound; sipp:\n%s", tail(out, 20))
	}
	if st.Transactions > 500 {
		t.Errorf("%d transactions alive over the bound of 500", st.Transactions)
	}
	if held > 20<<20 {
		t.Errorf("the flood left %.1f MB held", float64(held)/1e6)
	}
}
