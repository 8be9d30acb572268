package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// voxgateBinary builds the real binary once per test run.
func voxgateBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "voxgate-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "voxgate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	done chan error
	addr string
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// startBinary runs voxgate with a config on free ports and waits until it is up.
func startBinary(t *testing.T, extra string) *process {
	t.Helper()
	port := peertest.FreePorts(t, 1)
	rtp := peertest.FreePorts(t, 20)
	cfg := fmt.Sprintf(`log: {level: debug, format: json}
sip:
  listen:
    - {transport: udp, addr: "127.0.0.1:%d"}
    - {transport: tcp, addr: "127.0.0.1:%d"}
  rtp_ports: "%d-%d"
users:
  - {name: alice, password: alice-secret}
web: {listen: "127.0.0.1:0"}
%s`, port, port, rtp, rtp+19, extra)
	return startBinaryConfig(t, cfg, fmt.Sprintf("127.0.0.1:%d", port))
}

// startBinaryConfig runs voxgate with the config text cfg, whose SIP
// listens on addr, and waits until it is up.
func startBinaryConfig(t *testing.T, cfg, addr string) *process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "voxgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return runBinary(t, path, addr)
}

// runBinary runs voxgate on the config file path, whose SIP listens on
// addr, and waits until it is up; the test's end kills it.
func runBinary(t *testing.T, path, addr string) *process {
	t.Helper()
	return runBinaryIn(t, nil, path, addr)
}

// runBinaryIn is runBinary inside the network namespace ns (nil: the
// host's network).
func runBinaryIn(t *testing.T, ns *peertest.Netns, path, addr string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(voxgateBinary(t), "-config", path), done: make(chan error, 1), addr: addr}
	if ns != nil { // ip netns exec execs the binary: the pid is voxgate's
		p.cmd = ns.Command(context.Background(), voxgateBinary(t), "-config", path)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if strings.Contains(sc.Text(), "voxgate started") {
				once.Do(func() { close(started) })
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("voxgate output:\n%s", tail(p.output(), 200))
		}
	})
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		t.Fatalf("voxgate did not start:\n%s", p.output())
	}
	return p
}

func (p *process) waitExit(t *testing.T, within time.Duration) (time.Duration, error) {
	t.Helper()
	t0 := time.Now()
	select {
	case err := <-p.done:
		return time.Since(t0), err
	case <-time.After(within):
		t.Fatalf("voxgate did not exit within %v", within)
		return 0, nil
	}
}

func echoCall(t *testing.T, addr string) *peertest.Baresip {
	t.Helper()
	return peertest.StartPhone(t, addr, peertest.Phone{User: "alice", Password: "alice-secret", Tone: 500, Dial: "9196"})
}

// SIGTERM lets calls finish, up to drain_timeout, refusing new ones with 503;
// then the remaining calls are hung up and voxgate exits 0.
func TestSIGTERMDrainsCalls(t *testing.T) {
	peertest.Need(t, "baresip")
	p := startBinary(t, "drain_timeout: 3s\n")
	b := echoCall(t, p.addr)
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if b.WaitEnded(0) {
		t.Fatal("SIGTERM ended the call at once")
	}
	// A new call during the drain is refused with 503.
	c, err := net.Dial("udp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lp := c.LocalAddr().(*net.UDPAddr).Port
	fmt.Fprintf(c, "INVITE sip:9196@x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKdrain1\r\nFrom: <sip:g@example.org>;tag=1\r\nTo: <sip:9196@x>\r\nCall-ID: drain1\r\nCSeq: 1 INVITE\r\nContact: <sip:g@127.0.0.1:%d>\r\nContent-Length: 0\r\n\r\n", lp, lp)
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer to an INVITE during the drain: %v", err)
		}
		if strings.HasPrefix(string(buf[:n]), "SIP/2.0 1") {
			continue
		}
		if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 503") {
			t.Fatalf("INVITE during drain: %q", strings.SplitN(string(buf[:n]), "\r\n", 2)[0])
		}
		break
	}
	_, err = p.waitExit(t, 8*time.Second)
	if err != nil {
		t.Fatalf("exit: %v", err)
	}
	if el := time.Since(t0); el < 2500*time.Millisecond {
		t.Fatalf("voxgate exited after %v, before the 3 s drain", el)
	}
	if !b.WaitEnded(3 * time.Second) {
		t.Fatalf("the call was not hung up after the drain:\n%s", b.Output())
	}
}

// SIGINT stops at once (hanging up calls).
func TestSIGINTStopsAtOnce(t *testing.T) {
	peertest.Need(t, "baresip")
	p := startBinary(t, "drain_timeout: 30s\n")
	b := echoCall(t, p.addr)
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	el, err := p.waitExit(t, 5*time.Second)
	if err != nil {
		t.Fatalf("exit: %v", err)
	}
	if el > 3*time.Second {
		t.Fatalf("SIGINT took %v", el)
	}
	if !strings.Contains(p.output(), `"reason":"local hangup"`) {
		t.Fatal("voxgate did not hang up the call")
	}
	// baresip sees the BYE, or (when the BYE and the exit race) the closed
	// socket; either way its call is over.
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(b.Output(), "terminated") && !strings.Contains(b.Output(), "session closed") {
		if time.Now().After(deadline) {
			t.Fatalf("baresip's call did not end:\n%s", b.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A config error stops voxgate with the file, line and field.
func TestBinaryConfigError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("sip:\n  listen:\n    - {transport: udp, addr: \"127.0.0.1:5060\"}\n    - {transport: carrier-pigeon, addr: \"127.0.0.1:5060\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(voxgateBinary(t), "-config", path).CombinedOutput()
	if err == nil {
		t.Fatal("voxgate started with a bad config")
	}
	want := path + ":4: sip.listen[1].transport"
	if !strings.Contains(string(out), want) {
		t.Fatalf("output %q lacks %q", out, want)
	}
}

// SIGHUP reloads the users; a broken file keeps the old ones.
func TestSIGHUPReloadsUsers(t *testing.T) {
	peertest.Need(t, "baresip")
	p := startBinary(t, "")
	path := p.cmd.Args[2]
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(orig), "users:\n", "users:\n  - {name: carol, password: carol-secret}\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(p.output(), "users reloaded") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	b := peertest.StartPhone(t, p.addr, peertest.Phone{User: "carol", Password: "carol-secret", Register: true}) // a user added by SIGHUP registers
	b.Stop()
	if err := os.WriteFile(path, []byte("users: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(3 * time.Second)
	for !strings.Contains(p.output(), "reload failed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(p.output(), "reload failed, keeping the old users") {
		t.Fatal("a broken file on reload was not reported")
	}
	// A broken dialplan on reload keeps the old one, and says why.
	planPath := filepath.Join(filepath.Dir(path), "plan.yaml")
	if err := os.WriteFile(planPath, []byte("contexts:\n  a:\n    rules:\n      - goto: a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(orig, []byte("dialplan: plan.yaml\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(3 * time.Second)
	for !strings.Contains(p.output(), "keeping the old dialplan") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(p.output(), "keeping the old dialplan") || !strings.Contains(p.output(), "goto loop") {
		t.Fatal("a broken dialplan on reload was not reported with its reason")
	}
	peertest.StartPhone(t, p.addr, peertest.Phone{User: "carol", Password: "carol-secret", Register: true}) // users survive a failed reload
}

// A room recording is a valid WAV holding the participant's tone after
// voxgate is stopped with SIGTERM in the middle of it.
func TestRecordingSurvivesSIGTERM(t *testing.T) {
	peertest.Need(t, "baresip")
	dir := t.TempDir()
	p := startBinary(t, fmt.Sprintf("drain_timeout: 1s\nrooms: {record_dir: %q, tones: false}\n", dir))
	peertest.StartPhone(t, p.addr, peertest.Phone{User: "alice", Password: "alice-secret", Tone: 740, Dial: "8042"})
	time.Sleep(3 * time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := p.waitExit(t, 10*time.Second); err != nil {
		t.Fatalf("exit: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "room-042-*.wav"))
	if len(files) != 1 {
		t.Fatalf("recordings: %v", files)
	}
	w, err := audio.ReadWAVFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	secs := audio.ToneSeconds(w.Samples, w.Rate, 740, 0.2)
	t.Logf("recording: %.1f s at %d Hz, the tone in %.1f s", float64(len(w.Samples))/float64(w.Rate), w.Rate, secs)
	if secs < 2.5 {
		t.Fatalf("the participant's tone is in only %.1f s of the recording", secs)
	}
}
