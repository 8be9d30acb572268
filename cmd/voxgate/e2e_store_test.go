package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/store"
)

// storeNode is the real voxgate binary on a data_dir, with its ports.
type storeNode struct {
	cfgPath, dataDir, sipAddr, web string
}

func newStoreNode(t *testing.T) *storeNode {
	t.Helper()
	sipPort := peertest.FreePorts(t, 1)
	rtp := peertest.FreePorts(t, 40)
	webPort := peertest.FreePorts(t, 1)
	n := &storeNode{dataDir: filepath.Join(t.TempDir(), "data"), sipAddr: fmt.Sprintf("127.0.0.1:%d", sipPort),
		web: fmt.Sprintf("http://127.0.0.1:%d", webPort)}
	// sipp calls without credentials (a guest): let guests ring users too.
	plan := writePlan(t, `contexts:
  public:
    rules:
      - number: "9196"
        echo: {}
      - pattern: '[a-z]+'
        dial: {user: "$number", timeout: 10}
origins: {guest: public, user: public}
`)
	cfg := fmt.Sprintf(`log: {level: info, format: json}
sip:
  listen:
    - {transport: udp, addr: "127.0.0.1:%d"}
  rtp_ports: "%d-%d"
users:
  - {name: bob, password: bob-secret}
web: {listen: "127.0.0.1:%d", api_token: %s}
data_dir: %q
dialplan: %q
`, sipPort, rtp, rtp+39, webPort, testAPIToken, n.dataDir, plan)
	n.cfgPath = filepath.Join(t.TempDir(), "voxgate.yaml")
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// start runs the binary and waits until it says it started.
func (n *storeNode) start(t *testing.T) *process {
	t.Helper()
	return runBinary(t, n.cfgPath, n.sipAddr)
}

// get reads a JSON answer of the REST API.
func (n *storeNode) get(t *testing.T, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", n.web+path, nil)
	req.Header.Set("Authorization", "Bearer "+testAPIToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

// calls reads the whole call history, following the cursor.
func (n *storeNode) calls(t *testing.T, query string) []api.CallRecord {
	t.Helper()
	var out []api.CallRecord
	next := ""
	for range 50 {
		var page struct {
			Calls []api.CallRecord `json:"calls"`
			Next  string           `json:"next"`
		}
		q := "/api/v1/calls?limit=7&" + query
		if next != "" {
			q += "&cursor=" + next
		}
		n.get(t, q, &page)
		out = append(out, page.Calls...)
		if next = page.Next; next == "" {
			return out
		}
	}
	t.Fatal("the history does not end")
	return nil
}

// pcapDir is a directory with sip-tester's captures under pcap/, where
// sipp's uac_pcap scenario looks for them.
func pcapDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "pcap"), 0o755); err != nil {
		t.Fatal(err)
	}
	pcaps, _ := filepath.Glob("/usr/share/sip-tester/*.pcap")
	if len(pcaps) == 0 {
		t.Fatal("sip-tester's pcap files are missing (/usr/share/sip-tester)")
	}
	for _, p := range pcaps {
		if err := os.Symlink(p, filepath.Join(dir, "pcap", filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill -9 during 20 calls: after a restart on the same data_dir the file
// checks out, every call that ended before the kill has its complete
// record, the calls cut off are marked ended by a crash, and the
// registration made before the kill is still there and rings the phone.
func TestStoreSurvivesKill9(t *testing.T) {
	peertest.Need(t, "sipp")
	n := newStoreNode(t)
	p := n.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// bob registers.
	register, err := filepath.Abs("testdata/sipp/register.xml")
	if err != nil {
		t.Fatal(err)
	}
	bobPort := peertest.FreePorts(t, 1)
	if out, err := peertest.Sipp(ctx, t.TempDir(), "-sf", register, n.sipAddr, "-s", "bob", "-au", "bob", "-ap", "bob-secret",
		"-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error", "-p", fmt.Sprint(bobPort), "-i", "127.0.0.1"); err != nil {
		t.Fatalf("sipp register: %v\n%s", err, tail(out, 20))
	}

	// Ten calls to the echo test that play ten seconds of G.711 A-law from
	// a capture (sipp's uac_pcap) and end.
	sipp := func(ctx context.Context, dir, number string, calls int, args ...string) (string, error) {
		port, media := peertest.FreePorts(t, 1), peertest.FreePorts(t, 4)
		return peertest.Sipp(ctx, dir, append(args, n.sipAddr, "-s", number, "-m", fmt.Sprint(calls), "-l", fmt.Sprint(calls),
			"-r", "20", "-nostdin", "-timeout", "60s", "-p", fmt.Sprint(port), "-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", fmt.Sprint(media))...)
	}
	out, err := sipp(ctx, pcapDir(t), "9196", 10, "-sn", "uac_pcap")
	if err != nil || !strings.Contains(out, "Successful call") {
		t.Fatalf("sipp, ten calls: %v\n%s", err, tail(out, 30))
	}
	// A call's end is written by the switchboard's history queue a moment
	// after the BYE: wait until all ten are on disk (the API reads the file).
	waitFor(t, "ten ended calls in the history", 10*time.Second, func() bool {
		return len(n.calls(t, "status=ended")) == 10
	})

	// Ten long calls, up when voxgate is killed.
	longCtx, stopLong := context.WithCancel(ctx)
	longDone := make(chan struct{})
	go func() {
		defer close(longDone)
		_, _ = sipp(longCtx, t.TempDir(), "9196", 10, "-sn", "uac", "-d", "60000")
	}()
	defer func() { stopLong(); <-longDone }()
	waitFor(t, "ten calls in progress recorded", 15*time.Second, func() bool {
		return len(n.calls(t, "status=active")) == 10
	})
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no clean-up at all
		t.Fatal(err)
	}
	if _, err := p.waitExit(t, 5*time.Second); err == nil {
		t.Fatal("voxgate exited cleanly after SIGKILL?")
	}
	stopLong()
	<-longDone

	// The file opens cleanly in another process's handle.
	st, err := store.OpenDir(context.Background(), n.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.Close()

	p2 := n.start(t)
	if !strings.Contains(p2.output(), "marked ended (cause: crash, node restart)") {
		t.Errorf("the restart did not report the interrupted calls")
	}
	all := n.calls(t, "")
	if len(all) != 20 {
		t.Fatalf("%d calls in the history after the restart, want 20", len(all))
	}
	var ended, crashed int
	for _, c := range all {
		if c.Status != api.CallEnded || c.Cause == nil || c.Ended == nil {
			t.Errorf("call %s not ended after the restart: %+v", c.ID, c)
			continue
		}
		if c.Cause.By == "crash" {
			crashed++
			if c.Cause.Reason != "node restart" {
				t.Errorf("crashed call %s: cause %+v", c.ID, c.Cause)
			}
			continue
		}
		ended++
		var full api.CallRecord
		n.get(t, "/api/v1/calls/"+c.ID, &full)
		if full.Action != "echo" || full.Callee != "9196" || full.Origin != "guest" || !strings.Contains(full.Rule, "dialplan.yaml:") ||
			full.Answered == nil || full.Ended.Before(*full.Answered) || full.Cause.By != "caller" {
			t.Errorf("ended call %s incomplete: %+v cause %+v", c.ID, full, full.Cause)
		}
		if len(full.Legs) != 1 || full.Legs[0].Codec == "" || full.Legs[0].Quality.PacketsReceived == 0 || full.Legs[0].Quality.MOS < 3.5 {
			t.Errorf("ended call %s legs: %+v", c.ID, full.Legs)
		}
	}
	if ended != 10 || crashed != 10 {
		t.Errorf("%d calls ended before the kill and %d cut off, want 10 and 10", ended, crashed)
	}
	var regs []api.Registration
	n.get(t, "/api/registrations", &regs)
	if len(regs) != 1 || regs[0].User != "bob" || !strings.Contains(regs[0].Contact, fmt.Sprintf(":%d", bobPort)) {
		t.Fatalf("registrations after the restart: %+v", regs)
	}

	// bob, registered before the kill, is reachable: a call to bob rings
	// his phone (sipp answering on the port he registered from).
	uasDone := make(chan string, 1)
	go func() {
		out, _ := peertest.Sipp(ctx, t.TempDir(), "-sn", "uas", "-p", fmt.Sprint(bobPort), "-i", "127.0.0.1", "-m", "1",
			"-nostdin", "-timeout", "30s", "-mi", "127.0.0.1", "-mp", fmt.Sprint(peertest.FreePorts(t, 4)))
		uasDone <- out
	}()
	waitFor(t, "bob's phone listening", 5*time.Second, func() bool {
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", bobPort))
		if err == nil {
			c.Close()
		}
		return err != nil // taken: sipp is up
	})
	out, err = sipp(ctx, t.TempDir(), "bob", 1, "-sn", "uac", "-d", "500")
	if err != nil || !strings.Contains(out, "Successful call") {
		t.Fatalf("calling bob after the restart: %v\n%s", err, tail(out, 30))
	}
	if uas := <-uasDone; !strings.Contains(uas, "Successful call") {
		t.Fatalf("bob's phone did not take the call:\n%s", tail(uas, 30))
	}
	waitFor(t, "the call to bob in the history", 10*time.Second, func() bool {
		for _, c := range n.calls(t, "user=bob&status=ended") {
			if c.Action == "dial" && c.Answered != nil {
				return true
			}
		}
		return false
	})
}
