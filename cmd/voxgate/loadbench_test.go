package main

// End-to-end load benchmarks: the real SIP server, web server, switchboard
// and bridge, wired as in production, on loopback UDP, fed 50 packets/s of
// speech per leg by a load generator (internal/loadgen) in a child process,
// so that this process's CPU time is voxgate's alone. Each benchmark sets
// every call up, lets media run for a warm-up, then measures one window
// (VOXGATE_LOADBENCH_WARMUP, default 2s; VOXGATE_LOADBENCH_WINDOW, default
// 5s). b.N is ignored beyond that one window: run them with -benchtime 1x.
// VOXGATE_LOADBENCH_CPUPROFILE=file writes a CPU profile of the measured
// window of the scenario alone (not of set-up, nor of the bare echo), as
// `-cpuprofile` cannot; VOXGATE_LOADBENCH_PERF=file records the window
// with perf (perf script reads it), which sees every sample where Go's
// profiler may not.
//
//	go test -run '^$' -bench E2E -benchtime 1x -timeout 20m ./cmd/voxgate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/loadgen"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/sip"
)

// loadJobEnv names the file that carries the generator's job to the child
// process (a job of 2,000 legs is too long for one environment variable).
const loadJobEnv = "VOXGATE_LOADGEN_JOB"

// TestLoadGenChild is the load generator's process: the benchmarks re-run
// this test binary with only this test and a job in the environment.
func TestLoadGenChild(t *testing.T) {
	path := os.Getenv(loadJobEnv)
	if path == "" {
		t.Skip("the load generator runs only as a child of the load benchmarks")
	}
	spec, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var job loadgen.Job
	if err := json.Unmarshal(spec, &job); err != nil {
		t.Fatal(err)
	}
	if err := loadgen.Run(context.Background(), job, os.Stdin, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

// The voxgate under load routes every caller (all are guests) with this
// plan: the echo, rooms 8<name> without PIN, and page users by name.
const loadPlan = `
contexts:
  load:
    rules:
      - number: "9196"
        echo: {}
      - prefix: "8"
        room: {}
      - pattern: 'page[0-9]+'
        dial: {user: "$number", timeout: 20}
      - reject: {status: 404, reason: "Not Found"}
origins:
  user: load
  web: load
  guest: load
`

// Port ranges: voxgate's RTP, and the generator's (below the kernel's
// ephemeral range, so that other sockets rarely sit in them; both skip
// ports someone holds).
const (
	loadVoxgateRTP = "20000-29999"
	loadGenRTP     = "10000-19999"
)

// loadGateway is voxgate started for a load run.
type loadGateway struct {
	a   *app
	sip string
	web string
	log *peertest.SyncBuffer
}

// startLoadGateway starts voxgate on the default config with loadPlan,
// rooms without tones, pages page1..pageN, logging at info as in production.
// rules, if not empty, are dialplan rules (YAML, indented as in loadPlan)
// put before loadPlan's own.
func startLoadGateway(tb testing.TB, pages, roomRate, opusComplexity int, rules string) *loadGateway {
	tb.Helper()
	cfg, err := parseConfig(configs.DefaultName, configs.Default)
	if err != nil {
		tb.Fatal(err)
	}
	if roomRate != 0 {
		cfg.Rooms.Rate = roomRate
	}
	if opusComplexity != 0 {
		cfg.Rooms.OpusComplexity = opusComplexity
	}
	port := peertest.FreePorts(tb, 1)
	cfg.SIP.Listen = []sip.Listener{{Transport: "udp", Addr: fmt.Sprintf("127.0.0.1:%d", port)}}
	cfg.SIP.RTPPorts = loadVoxgateRTP
	cfg.Dialplan = writePlanTB(tb, strings.Replace(loadPlan, "    rules:\n", "    rules:\n"+rules, 1))
	cfg.DataDir = tb.TempDir() // the call history is written as in production
	noTones(cfg)
	for i := 1; i <= pages; i++ {
		cfg.Users = append(cfg.Users, UserConfig{Name: fmt.Sprintf("page%d", i), Password: "page-secret"})
	}
	cfg.Web.Listen = "127.0.0.1:0"
	web := peertest.FreePorts(tb, 200)
	cfg.Web.UDPPorts = fmt.Sprintf("%d-%d", web, web+199)
	cfg.Web.ICEIPs = []string{"127.0.0.1"}
	cfg.Web.LoopbackICE = true
	if err := cfg.Web.Validate(); err != nil {
		tb.Fatal(err)
	}
	plan, err := loadDialplan("", cfg)
	if err != nil {
		tb.Fatal(err)
	}
	g := &loadGateway{log: &peertest.SyncBuffer{}, sip: fmt.Sprintf("127.0.0.1:%d", port)}
	log := slog.New(slog.NewTextHandler(g.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	g.a, err = wire(cfg, plan, sip.NewUsers(users(cfg)...), log, wiring{})
	if err == nil {
		err = g.a.Start(ctx)
	}
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	g.web = "http://" + g.a.web.Addr().String()
	tb.Cleanup(func() {
		g.a.Close()
		cancel()
		if tb.Failed() {
			tb.Logf("voxgate log (tail):\n%s", tail(g.log.String(), 60))
		}
	})
	return g
}

// writePlanTB is writePlan for benchmarks too.
func writePlanTB(tb testing.TB, plan string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "dialplan.yaml")
	if err := os.WriteFile(p, []byte(plan), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// loadTiming is how long a run warms up and measures.
type loadTiming struct {
	warmup, window time.Duration
	speechSeconds  float64 // 0: the whole file
	profile        string  // a CPU profile of the window goes there ("": none)
	perf           string  // perf record's data of the window goes there ("": none)
}

func benchTiming(tb testing.TB) loadTiming {
	d := func(env string, def time.Duration) time.Duration {
		v := os.Getenv(env)
		if v == "" {
			return def
		}
		x, err := time.ParseDuration(v)
		if err != nil {
			tb.Fatalf("%s: %v", env, err)
		}
		return x
	}
	return loadTiming{warmup: d("VOXGATE_LOADBENCH_WARMUP", 2*time.Second), window: d("VOXGATE_LOADBENCH_WINDOW", 5*time.Second),
		profile: os.Getenv("VOXGATE_LOADBENCH_CPUPROFILE"), perf: os.Getenv("VOXGATE_LOADBENCH_PERF")}
}

// startPerf runs perf record on this process for the window, with call
// graphs, into path (nothing when path is ""); the returned func waits for
// it. Go's own profiler sees a fraction of the samples on some virtual
// machines (530 ms of 1.8 s here); perf sees them all.
func startPerf(tb testing.TB, path string, window time.Duration) func() {
	if path == "" {
		return func() {}
	}
	cmd := exec.Command("perf", "record", "-g", "-F", "1999", "-p", strconv.Itoa(os.Getpid()), "-o", path,
		"--", "sleep", strconv.FormatFloat(window.Seconds(), 'f', 3, 64))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("perf: %v", err)
	}
	return func() {
		if err := cmd.Wait(); err != nil {
			tb.Errorf("perf: %v\n%s", err, out.String())
		}
	}
}

// selfCPU is this process's CPU time so far: voxgate's, as the generator
// runs in another process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// window is what one measured window saw.
type window struct {
	cpu, wall   time.Duration // this process's CPU time, and the wall time
	genCPU      time.Duration // the generator's CPU time in the window
	setup       time.Duration // setting every leg up (signalling), before the window
	sent, recv  []uint64      // RTP packets per leg, generator side, in the window
	heard       []uint64      // 20 ms frames of media time per leg the packets covered (DTX gaps too)
	deaf        int           // legs that had heard nothing when the generator was ready
	totalSent   uint64
	totalRecv   uint64
	totalHeard  uint64
	finalErrors string
}

// runWindow runs the generator on job: waits until it is ready, warms up,
// measures one window, and stops it (the calls are hung up).
// before, if not nil, runs after the warm-up, just before the window.
func runWindow(tb testing.TB, job loadgen.Job, tm loadTiming, before func()) window {
	tb.Helper()
	speech, err := filepath.Abs("../../testdata/speech/speech16k.wav")
	if err != nil {
		tb.Fatal(err)
	}
	job.Speech, job.SpeechSeconds, job.RTPPorts = speech, tm.speechSeconds, loadGenRTP
	spec, err := json.Marshal(job)
	if err != nil {
		tb.Fatal(err)
	}
	p := startGen(tb, spec)
	ready := p.next(tb, 5*time.Minute)
	if ready.Event != "ready" {
		p.kill()
		tb.Fatalf("the load generator failed: %s\n%s", ready.Error, tail(p.stderr.String(), 20))
	}
	time.Sleep(tm.warmup)
	if before != nil {
		before()
	}
	a := p.mark(tb)
	if tm.profile != "" {
		f, err := os.Create(tm.profile)
		if err != nil {
			tb.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
	}
	perfDone := startPerf(tb, tm.perf, tm.window)
	c0, t0 := selfCPU(), time.Now()
	time.Sleep(tm.window)
	b := p.mark(tb)
	c1, t1 := selfCPU(), time.Now()
	if tm.profile != "" {
		pprof.StopCPUProfile()
	}
	perfDone()
	p.stop(tb)
	w := window{cpu: c1 - c0, wall: t1.Sub(t0), genCPU: b.CPU - a.CPU, setup: ready.Setup, deaf: ready.Deaf}
	for i := range b.Sent {
		w.sent = append(w.sent, b.Sent[i]-a.Sent[i])
		w.recv = append(w.recv, b.Received[i]-a.Received[i])
		w.totalSent += w.sent[i]
		w.totalRecv += w.recv[i]
		if i < len(b.Heard) && i < len(a.Heard) {
			w.heard = append(w.heard, b.Heard[i]-a.Heard[i])
			w.totalHeard += w.heard[i]
		}
	}
	return w
}

// expected is the packets n legs receive in the window at 50 per second.
func (w window) expected(n int) float64 { return float64(n) * 50 * w.wall.Seconds() }

// coreShare is the share of one core used in the window.
func (w window) coreShare() float64 { return float64(w.cpu) / float64(w.wall) }

// genProc is the generator's child process.
type genProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	reports chan loadgen.Report
	stderr  *peertest.SyncBuffer
	once    sync.Once
}

func startGen(tb testing.TB, spec []byte) *genProc {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadGenChild$", "-test.count=1")
	path := filepath.Join(tb.TempDir(), "job.json")
	if err := os.WriteFile(path, spec, 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd.Env = append(os.Environ(), loadJobEnv+"="+path)
	p := &genProc{cmd: cmd, reports: make(chan loadgen.Report, 4), stderr: &peertest.SyncBuffer{}}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		defer close(p.reports)
		lines := bufio.NewScanner(out)
		lines.Buffer(make([]byte, 1<<20), 16<<20)
		for lines.Scan() {
			line := lines.Bytes()
			var r loadgen.Report
			if !bytes.HasPrefix(line, []byte("{")) || json.Unmarshal(line, &r) != nil {
				p.stderr.Write(append(line, '\n')) // the test framework's own lines
				continue
			}
			p.reports <- r
		}
	}()
	tb.Cleanup(p.kill)
	return p
}

// next is the generator's next report.
func (p *genProc) next(tb testing.TB, timeout time.Duration) loadgen.Report {
	tb.Helper()
	select {
	case r, ok := <-p.reports:
		if !ok {
			p.kill()
			tb.Fatalf("the load generator exited:\n%s", tail(p.stderr.String(), 30))
		}
		return r
	case <-time.After(timeout):
		p.kill()
		tb.Fatalf("the load generator said nothing for %s:\n%s", timeout, tail(p.stderr.String(), 30))
	}
	return loadgen.Report{}
}

func (p *genProc) mark(tb testing.TB) loadgen.Report {
	tb.Helper()
	if _, err := io.WriteString(p.stdin, "mark\n"); err != nil {
		tb.Fatal(err)
	}
	return p.next(tb, 30*time.Second)
}

// stop closes the generator's input: it hangs up, reports and exits.
func (p *genProc) stop(tb testing.TB) loadgen.Report {
	tb.Helper()
	p.stdin.Close()
	r := p.next(tb, 2*time.Minute)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			tb.Logf("the load generator: %v\n%s", err, tail(p.stderr.String(), 20))
		}
	case <-time.After(30 * time.Second):
		p.kill()
	}
	return r
}

// kill ends the child (its process only, by its id) if it still runs.
func (p *genProc) kill() {
	p.once.Do(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
		}
	})
}

// bareEcho is the baseline: a plain Go UDP echo, one goroutine per socket,
// each packet's G.711 payload decoded and encoded again, then sent back.
type bareEcho struct {
	conns []*net.UDPConn
	wg    sync.WaitGroup
}

func startBareEcho(tb testing.TB, n int) *bareEcho {
	tb.Helper()
	e := &bareEcho{}
	for i := 0; i < n; i++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			e.close()
			tb.Fatal(err)
		}
		e.conns = append(e.conns, c)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			buf, out := make([]byte, 1500), make([]byte, 0, 1500)
			var pcm []int16
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				if n < 12 {
					continue
				}
				pcm = audio.DecodeUlaw(pcm[:0], buf[12:n])
				out = audio.EncodeUlaw(append(out[:0], buf[:12]...), pcm)
				_, _ = c.WriteToUDPAddrPort(out, from)
			}
		}()
	}
	return e
}

func (e *bareEcho) close() {
	for _, c := range e.conns {
		c.Close()
	}
	e.wg.Wait()
}

// bareWindow measures the bare echo with streams PCMU speech streams from
// the same generator; each scenario runs it right before itself, so that
// its x-bare compares figures taken minutes apart at most.
func bareWindow(tb testing.TB, streams int, tm loadTiming) window {
	return bareWindowOf(tb, streams, loadgen.Leg{Codec: "pcmu", Talk: true}, tm)
}

// bareWindowOf is bareWindow with streams like leg (its codec, talking or
// not: a silent Opus stream is one DTX packet per 400 ms).
func bareWindowOf(tb testing.TB, streams int, leg loadgen.Leg, tm loadTiming) window {
	tb.Helper()
	e := startBareEcho(tb, streams)
	defer e.close()
	tm.profile, tm.perf = "", ""
	job := loadgen.Job{}
	for _, c := range e.conns {
		job.Legs = append(job.Legs, loadgen.Leg{Kind: loadgen.UDP, Codec: leg.Codec, Talk: leg.Talk, Target: c.LocalAddr().String()})
	}
	w := runWindow(tb, job, tm, nil)
	// Media time, as for voxgate: a DTX packet covers its gap.
	if r := float64(w.totalHeard) / w.expected(streams); r < 0.9 {
		tb.Fatalf("the bare echo returned %.2f of the media time expected", r)
	}
	return w
}

// scenario is one load benchmark.
type scenario struct {
	pages int           // page users voxgate knows (page1..)
	legs  []loadgen.Leg // the generator's legs
	// unit is what the figures are per: "call", "leg" or "room"; units is
	// how many there are.
	unit  string
	units int
	// bare runs the bare echo with this many streams first, for x-bare;
	// bareLeg is what they send ("": PCMU speech).
	bare    int
	bareLeg loadgen.Leg
	// minRx fails the run below this share of the media time expected
	// back (each leg hears 50 frames per second, a DTX gap of up to 400 ms
	// counting as heard); 0 checks nothing.
	minRx float64
	// rooms and members: the rooms voxgate must have during the run.
	rooms, members int
	roomRate       int     // rooms.rate (0: the default, 16000)
	opusComplexity int     // rooms.opus_complexity (0: the default, 5)
	cps            float64 // calls per second while setting up (0: the default)
	plan           string  // dialplan rules put before loadPlan's (see startLoadGateway)
}

// result is a scenario's figures, by metric name.
type result map[string]float64

func runScenario(tb testing.TB, sc scenario, tm loadTiming) result {
	tb.Helper()
	res := result{}
	var bare window
	if sc.bare > 0 && sc.bareLeg.Codec != "" {
		bare = bareWindowOf(tb, sc.bare, sc.bareLeg, tm)
	} else if sc.bare > 0 {
		bare = bareWindow(tb, sc.bare, tm)
	}
	g := startLoadGateway(tb, sc.pages, sc.roomRate, sc.opusComplexity, sc.plan)
	job := loadgen.Job{SIP: g.sip, Web: g.web, Legs: sc.legs, CallsPerSecond: sc.cps}
	var before func()
	if sc.rooms > 0 {
		// While the calls are up (the generator hangs up after the window),
		// and before the window, so that the check costs it nothing.
		before = func() { checkRooms(tb, g, sc.rooms, sc.members) }
	}
	w := runWindow(tb, job, tm, before)
	share := w.coreShare()
	n := float64(sc.units)
	res["%core"] = 100 * share
	res["%core/"+sc.unit] = 100 * share / n
	res[sc.unit+"s/core"] = n / share
	// rx-ratio is media time, not packets: a room sends a listener of a
	// DTX codec (Opus) a packet every 400 ms while it has nothing to hear
	// (a silent room; a talker alone in a call), and the RTP timestamp
	// covers the gap.
	expected := w.expected(len(sc.legs))
	res["rx-ratio"] = float64(w.totalHeard) / expected
	// What the talking legs sent, of 50 per second: below 1, the generator
	// could not keep up.
	var talkSent uint64
	talking := 0
	for i, l := range sc.legs {
		if l.Talk {
			talkSent += w.sent[i]
			talking++
		}
	}
	if talking > 0 {
		res["tx-ratio"] = float64(talkSent) / w.expected(talking)
	}
	if sc.bare > 0 {
		perPacket := float64(w.cpu) / float64(w.totalRecv)
		barePerPacket := float64(bare.cpu) / float64(bare.totalRecv)
		res["x-bare"] = perPacket / barePerPacket
		res["bare-%core"] = 100 * bare.coreShare()
	}
	tb.Logf("%d legs set up in %s; window %s: voxgate %s CPU (%.1f%% of a core), generator %s; packets sent %d, received %d covering %d frames (expected %.0f), deaf at start %d",
		len(sc.legs), w.setup.Round(time.Millisecond), w.wall.Round(time.Millisecond), w.cpu.Round(time.Millisecond), 100*share,
		w.genCPU.Round(time.Millisecond), w.totalSent, w.totalRecv, w.totalHeard, expected, w.deaf)
	var deaf []int
	for i, n := range w.recv {
		if n == 0 {
			deaf = append(deaf, i)
		}
	}
	if len(deaf) > 0 {
		tb.Logf("%d legs heard nothing in the window: %v", len(deaf), deaf[:min(len(deaf), 20)])
	}
	if sc.minRx > 0 && res["rx-ratio"] < sc.minRx {
		tb.Fatalf("media did not flow: the generator heard %.2f of the media time expected (want %.2f): voxgate did not keep up (it used %.0f%% of a core), so its figures are withheld",
			res["rx-ratio"], sc.minRx, 100*share)
	}
	return res
}

// checkRooms fails unless voxgate has rooms rooms of members legs each.
func checkRooms(tb testing.TB, g *loadGateway, rooms, members int) {
	tb.Helper()
	got := g.a.sb.Rooms()
	bad := 0
	for _, r := range got {
		if len(r.Legs) != members {
			bad++
		}
	}
	if len(got) != rooms || bad > 0 {
		tb.Fatalf("voxgate has %d rooms (want %d), %d of them without %d members", len(got), rooms, bad, members)
	}
}

// Scenarios, by their sizes.

func echoScenario(calls int) scenario {
	sc := scenario{unit: "call", units: calls, bare: calls, minRx: 0.9}
	for i := 0; i < calls; i++ {
		sc.legs = append(sc.legs, loadgen.Leg{Kind: loadgen.SIP, Codec: "pcmu", Talk: true, Dial: "9196"})
	}
	return sc
}

// pcmuToWebScenario: each call is a SIP PCMU phone calling a page user
// (pageN), whose page answers with Opus; both talk. Two legs per call.
func pcmuToWebScenario(calls int) scenario {
	sc := scenario{pages: calls, unit: "call", units: calls, bare: 2 * calls, minRx: 0.9}
	for i := 1; i <= calls; i++ {
		user := fmt.Sprintf("page%d", i)
		sc.legs = append(sc.legs, loadgen.Leg{Kind: loadgen.Web, Talk: true, User: user, Password: "page-secret"},
			loadgen.Leg{Kind: loadgen.SIP, Codec: "pcmu", Talk: true, Dial: user})
	}
	return sc
}

// roomScenario: rooms rooms (8000, 8001...) of legs legs of codec each;
// the first talkers legs of each room talk, the others are silent. Every
// leg must hear the room's whole media time (an Opus listener in silence
// gets a DTX packet every 400 ms, whose timestamp covers the gap), so a
// leg that hears less means voxgate did not keep up and its CPU figure is
// a floor, not a cost.
func roomScenario(rooms, legs int, codec string, talkers int) scenario {
	sc := scenario{unit: "leg", units: rooms * legs, rooms: rooms, members: legs, minRx: 0.9}
	for r := 0; r < rooms; r++ {
		for i := 0; i < legs; i++ {
			sc.legs = append(sc.legs, loadgen.Leg{Kind: loadgen.SIP, Codec: codec, Talk: i < talkers, Dial: fmt.Sprintf("8%03d", r)})
		}
	}
	return sc
}

func report(b *testing.B, res result) {
	for name, v := range res {
		b.ReportMetric(v, name)
	}
}

// BenchmarkE2EBareUDPEcho is the baseline the others are compared with: no
// voxgate, a plain Go UDP echo in this process (G.711 decode and encode of
// each payload), fed by the same generator with as many PCMU speech
// streams as BenchmarkE2EPCMUEcho has calls.
func BenchmarkE2EBareUDPEcho(b *testing.B) {
	b.Run("streams=100", func(b *testing.B) {
		tm := benchTiming(b)
		w := bareWindow(b, 100, tm)
		share := w.coreShare()
		report(b, result{"%core": 100 * share, "%core/stream": share, "streams/core": 100 / share,
			"rx-ratio": float64(w.totalRecv) / w.expected(100), "us/packet": float64(w.cpu.Microseconds()) / float64(w.totalRecv)})
	})
}

// BenchmarkE2EPCMUEcho: SIP PCMU calls to voxgate's echo (jitter buffer,
// decode, encode per call).
func BenchmarkE2EPCMUEcho(b *testing.B) {
	b.Run("calls=100", func(b *testing.B) { report(b, runScenario(b, echoScenario(100), benchTiming(b))) })
}

// BenchmarkE2EPCMUToOpusWebRTC: SIP PCMU phones calling browser users
// (pion, Opus, DTLS-SRTP); voxgate bridges and transcodes each pair.
func BenchmarkE2EPCMUToOpusWebRTC(b *testing.B) {
	b.Run("calls=30", func(b *testing.B) { report(b, runScenario(b, pcmuToWebScenario(30), benchTiming(b))) })
	// The same at a lower Opus complexity (rooms.opus_complexity), the
	// trade an operator can make for density.
	b.Run("calls=30/complexity=2", func(b *testing.B) {
		sc := pcmuToWebScenario(30)
		sc.opusComplexity = 2
		report(b, runScenario(b, sc, benchTiming(b)))
	})
}

// BenchmarkE2ERoom50PCMU: one room, 50 SIP PCMU legs, all talking, on
// the default config (rooms.rate 16000): with only G.711 legs in it the
// room mixes at 8 kHz by itself, so no leg has a resampler.
func BenchmarkE2ERoom50PCMU(b *testing.B) {
	sc := roomScenario(1, 50, "pcmu", 50)
	sc.bare = 50
	b.Run("legs=50", func(b *testing.B) { report(b, runScenario(b, sc, benchTiming(b))) })
}

// BenchmarkE2ERoom50Opus3Talkers: one room, 50 SIP Opus legs; 3 talk, 47
// send what a muted client sends (Opus DTX).
func BenchmarkE2ERoom50Opus3Talkers(b *testing.B) {
	sc := roomScenario(1, 50, "opus", 3)
	b.Run("legs=50", func(b *testing.B) { report(b, runScenario(b, sc, benchTiming(b))) })
}

// BenchmarkE2E1000Rooms2Silent: 1,000 rooms of two silent Opus (DTX) legs:
// 2,000 SIP calls, set up at 50 calls/s (40 s), 32 at most in flight.
// x-bare compares it with the bare echo of 2,000 silent Opus streams (a
// DTX packet per 400 ms each, echoed), per packet the generator gets
// back.
func BenchmarkE2E1000Rooms2Silent(b *testing.B) {
	sc := roomScenario(1000, 2, "opus", 0)
	sc.cps = 50
	sc.bare, sc.bareLeg = 2000, loadgen.Leg{Codec: "opus"}
	b.Run("rooms=1000/legs=2000", func(b *testing.B) { report(b, runScenario(b, sc, benchTiming(b))) })
}

// BenchmarkE2E1000Rooms2SilentPCMUCN: 1,000 rooms of two silent SIP PCMU
// desk phones that took comfort noise (RFC 3389): each sends a SID every
// 400 ms, as phones with VAD do, and gets one. For scale, 100 rooms of two
// silent PCMU phones without comfort noise (digital silence, 50 packets a
// second each way).
func BenchmarkE2E1000Rooms2SilentPCMUCN(b *testing.B) {
	sc := roomScenario(1000, 2, "pcmu-cn", 0)
	sc.cps = 50
	b.Run("rooms=1000/legs=2000", func(b *testing.B) { report(b, runScenario(b, sc, benchTiming(b))) })
	plain := roomScenario(100, 2, "pcmu", 0)
	plain.cps = 50
	b.Run("rooms=100/legs=200/no-cn", func(b *testing.B) { report(b, runScenario(b, plain, benchTiming(b))) })
}

// TestLoadBenchSmoke runs every load scenario tiny (two calls, three small
// rooms, a one-second window) and checks that media flows, so that the
// benchmarks' harness cannot rot unnoticed.
func TestLoadBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts voxgate and a generator process")
	}
	tm := loadTiming{warmup: 300 * time.Millisecond, window: time.Second, speechSeconds: 3}
	t.Run("bare", func(t *testing.T) {
		w := bareWindow(t, 2, tm)
		t.Logf("bare echo: %d packets back", w.totalRecv)
	})
	silent := roomScenario(3, 2, "opus", 0)
	silentCN := roomScenario(3, 2, "pcmu-cn", 0)
	talk := roomScenario(1, 3, "opus", 1)
	pcmuRoom := roomScenario(1, 2, "pcmu", 2)
	echo := echoScenario(2)
	echo.bare = 0 // run once, by "bare"
	web := pcmuToWebScenario(2)
	web.bare = 0
	bot := streamScenario(t, 2)
	bot.bare = 0
	for _, c := range []struct {
		name string
		sc   scenario
	}{{"echo", echo}, {"pcmu-webrtc", web}, {"pcmu-room", pcmuRoom}, {"opus-room", talk}, {"silent-rooms", silent}, {"silent-rooms-pcmu-cn", silentCN}, {"streams", bot}} {
		sc := c.sc
		t.Run(c.name, func(t *testing.T) {
			if sc.minRx > 0 {
				sc.minRx = 0.7 // a 1 s window under -race on a busy machine
			}
			tm := tm
			if c.name == "silent-rooms-pcmu-cn" {
				// voxgate repeats an unchanged SID every 5 s: a window
				// shorter than that would hear nothing.
				tm.window, tm.speechSeconds = 5500*time.Millisecond, 8
			}
			res := runScenario(t, sc, tm)
			t.Logf("%v", res)
		})
	}
}
