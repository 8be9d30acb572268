// Package peertest runs real SIP peers (baresip, sipp) for voxgate's
// end-to-end tests: it writes their configuration, starts them as child
// processes, and reads what they printed and recorded.
package peertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/internal/freeport"
)

// Need fails the test when a peer program is missing: `make test` installs
// them, so a missing one is a broken set-up, not a reason to skip.
func Need(t testing.TB, programs ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("real-peer test; run without -short (make test)")
	}
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed: run `make test`, which installs it (.ci/deps test)", p)
		}
	}
}

// FreePorts returns an even port p such that UDP and TCP p..p+n-1 are all
// free on 127.0.0.1 right now, below the kernel's ephemeral range (where no
// other process's connection takes it before the program binds it).
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	return freeport.Ports(t, n)
}

// ToneWAV writes a mono 16-bit WAV of a sine at freq Hz.
func ToneWAV(t testing.TB, path string, rate int, freq float64, seconds float64) {
	t.Helper()
	pcm := make([]int16, int(float64(rate)*seconds))
	(&audio.Tone{Rate: rate, Freq: freq, Level: 0.5}).Fill(pcm)
	if err := audio.WriteWAVFile(path, rate, pcm); err != nil {
		t.Fatal(err)
	}
}

// SilenceThenToneWAV writes a mono 16-bit WAV of silence for quiet, then a
// sine at freq Hz, seconds long in all.
func SilenceThenToneWAV(t testing.TB, path string, rate int, quiet time.Duration, freq float64, seconds float64) {
	t.Helper()
	pcm := make([]int16, int(float64(rate)*seconds))
	(&audio.Tone{Rate: rate, Freq: freq, Level: 0.5}).Fill(pcm[min(len(pcm), int(quiet.Seconds()*float64(rate))):])
	if err := audio.WriteWAVFile(path, rate, pcm); err != nil {
		t.Fatal(err)
	}
}

// PulsedToneWAV writes a mono 16-bit WAV of a sine at freq Hz in bursts,
// on for 1.5 s and off for 0.5 s, seconds long in all: a talker as a voice
// detector with an adaptive noise floor sees one, again and again (a
// steady tone becomes its noise floor within seconds).
func PulsedToneWAV(t testing.TB, path string, rate int, freq float64, seconds float64) {
	t.Helper()
	pcm := make([]int16, int(float64(rate)*seconds))
	(&audio.Tone{Rate: rate, Freq: freq, Level: 0.5}).Fill(pcm)
	for i := range pcm {
		if i%(2*rate) >= rate*3/2 {
			pcm[i] = 0
		}
	}
	if err := audio.WriteWAVFile(path, rate, pcm); err != nil {
		t.Fatal(err)
	}
}

// SyncBuffer collects a process's or a logger's output for concurrent reading.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Baresip is a running baresip: a scriptable desk phone.
type Baresip struct {
	t   testing.TB
	Dir string
	// RTPMin and RTPMax bound the ports baresip receives media on.
	RTPMin, RTPMax int
	cmd            *exec.Cmd
	out            *SyncBuffer
	ctrl           int
	ns             *Netns
	done           chan struct{}
}

// BaresipOptions configure a baresip run.
type BaresipOptions struct {
	// Account is the accounts line, e.g.
	// "<sip:alice@127.0.0.1:5060>;auth_pass=x;regint=60;audio_codecs=pcmu".
	Account string
	// Source is the WAV file baresip sends (it hangs up when the file ends).
	Source string
	// Dial is a URI to call at start.
	Dial string
	// CAFile is baresip's sip_cafile (PEM) for SIP over TLS. baresip 1.0
	// does not verify the server's certificate with it.
	CAFile string
	// Rate is baresip's audio source and player rate (default 8000).
	Rate int
	// Netns runs baresip inside a namespace (SIP, RTP and its control
	// socket on the namespace's address); nil: the host's 127.0.0.1.
	Netns *Netns
}

// StartBaresip starts baresip in a fresh directory.
func StartBaresip(t testing.TB, o BaresipOptions) *Baresip {
	t.Helper()
	dir := t.TempDir()
	port := FreePorts(t, 3) // SIP UDP+TCP on port, TLS on port+1, ctrl on port+2
	// baresip (libre) puts RTP on an even port and RTCP on the next, and
	// rounds an odd start of rtp_ports down: a range starting at an odd
	// port gave it one below the range (a capture of the range then saw
	// nothing). So the range starts even.
	rtp := FreePorts(t, 41)
	if rtp%2 == 1 {
		rtp++
	}
	src := o.Source
	if src == "" {
		src = filepath.Join(dir, "silence.wav")
		ToneWAV(t, src, 8000, 0, 60)
	}
	ip := "127.0.0.1"
	if o.Netns != nil {
		ip = o.Netns.IP
	}
	cfg := fmt.Sprintf(`module_path /usr/lib/baresip/modules
sip_listen %[1]s:%[2]d
net_interface %[1]s
audio_source aufile,%[3]s
audio_player aubridge,nil
audio_alert aubridge,nil
ausrc_srate %[8]d
auplay_srate %[8]d
ausrc_channels 1
auplay_channels 1
rtp_ports %[4]d-%[5]d
statmode_default off
module g711.so
module opus.so
module g722.so
module aufile.so
module aubridge.so
module sndfile.so
snd_path %[6]s
module_tmp uuid.so
module_tmp account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen %[1]s:%[7]d
`, ip, port, src, rtp, rtp+39, dir, port+2, cmpInt(o.Rate, 8000))
	if strings.Contains(o.Account, ";mediaenc=srtp") {
		cfg += "module srtp.so\n" // SDES (RFC 4568)
	}
	if o.CAFile != "" {
		cfg += "sip_cafile " + o.CAFile + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(o.Account+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-f", dir}
	if o.Dial != "" {
		args = append(args, "-e", "/dial "+o.Dial)
	}
	b := &Baresip{t: t, Dir: dir, RTPMin: rtp, RTPMax: rtp + 39, out: &SyncBuffer{}, ctrl: port + 2, ns: o.Netns, done: make(chan struct{})}
	if o.Netns != nil {
		b.cmd = o.Netns.Command(context.Background(), "baresip", args...)
	} else {
		b.cmd = exec.Command("baresip", args...)
	}
	b.cmd.Dir = dir
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(b.Stop)
	return b
}

func cmpInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// Output returns everything baresip printed so far.
func (b *Baresip) Output() string { return b.out.String() }

// WaitFor waits until baresip has printed s.
func (b *Baresip) WaitFor(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(b.Output(), s) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// WaitEnded waits until baresip's call has ended. baresip says "session
// closed" when the far end ended it (BYE, or a failure), and "Call with ...
// terminated" when a call that lasted at least a second ended; a call
// under a second that the far end ends prints only the first.
func (b *Baresip) WaitEnded(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if out := b.Output(); strings.Contains(out, "terminated") || strings.Contains(out, "session closed") {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Command sends a command over ctrl_tcp (netstring-framed JSON).
func (b *Baresip) Command(cmd, params string) {
	b.t.Helper()
	var conn net.Conn
	var err error
	for i := 0; i < 50; i++ {
		if b.ns != nil {
			conn, err = b.ns.DialContext(context.Background(), "tcp", fmt.Sprintf("%s:%d", b.ns.IP, b.ctrl))
		} else {
			conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", b.ctrl))
		}
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("baresip ctrl_tcp: %v", err)
	}
	defer conn.Close()
	js, _ := json.Marshal(map[string]string{"command": cmd, "params": params, "token": "t"})
	if _, err := fmt.Fprintf(conn, "%d:%s,", len(js), js); err != nil {
		b.t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	_, _ = conn.Read(buf) // the response; events may follow
}

// Stop ends baresip (SIGTERM, then SIGKILL) and waits for it.
func (b *Baresip) Stop() {
	select {
	case <-b.done:
		return
	default:
	}
	_ = b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.done:
	case <-time.After(3 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// Received returns the audio baresip received in its (only) call, from the
// sndfile module's dump-*-dec.wav.
func (b *Baresip) Received() *audio.WAV {
	b.t.Helper()
	files, _ := filepath.Glob(filepath.Join(b.Dir, "dump-*-dec.wav"))
	if len(files) != 1 {
		b.t.Fatalf("want one received-audio dump, found %v\nbaresip output:\n%s", files, b.Output())
	}
	w, err := audio.ReadWAVFile(files[0])
	if err != nil {
		b.t.Fatal(err)
	}
	return w
}

// Sipp runs sipp to completion in dir and returns its exit error and output.
func Sipp(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "sipp", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func interfaceIndex(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	return ifi.Index, nil
}
