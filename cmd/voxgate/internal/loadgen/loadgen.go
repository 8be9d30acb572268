// Package loadgen is the load generator of voxgate's end-to-end benchmarks:
// SIP phones (sipgo: INVITE with an SDP offer, ACK, BYE), browser pages
// (sign-in, the page's WebSocket signalling, a pion PeerConnection) and bare
// RTP streams, each sending pre-encoded speech (or Opus DTX silence) at 50
// packets/s and counting the packets that come back.
//
// It runs in a child process of the benchmark, so that the benchmark's CPU
// figures (getrusage of its own process) count voxgate only. The child
// reads a Job, sets every leg up, prints a "ready" Report on its output,
// then a "mark" Report for every "mark" line on its input, and hangs up and
// prints a "final" Report when its input ends.
package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4"
)

// Kind is what a leg is.
type Kind string

// The kinds of legs.
const (
	// SIP: a call placed to voxgate with INVITE/ACK, ended with BYE.
	SIP Kind = "sip"
	// Web: a signed-in page that answers the call voxgate rings it with.
	Web Kind = "web"
	// UDP: RTP straight to Target, no signalling (the bare echo baseline).
	UDP Kind = "udp"
)

// Leg is one media stream the generator runs.
type Leg struct {
	Kind  Kind   `json:"kind"`
	Codec string `json:"codec"` // "pcmu", "pcmu-cn" (PCMU and comfort noise) or "opus" (web legs are always opus)
	// Talk sends speech; otherwise silence as a client sends it (Opus: DTX).
	Talk bool `json:"talk"`
	// Dial is the number a SIP leg calls.
	Dial string `json:"dial,omitempty"`
	// Target is where a UDP leg sends.
	Target string `json:"target,omitempty"`
	// User and Password sign a web leg in.
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
}

// Job is everything the child needs.
type Job struct {
	SIP  string `json:"sip"` // voxgate's SIP UDP address
	Web  string `json:"web"` // voxgate's web base URL
	Legs []Leg  `json:"legs"`
	// Speech is a 16 kHz mono WAV, looped; each leg starts elsewhere in it.
	Speech        string  `json:"speech"`
	SpeechSeconds float64 `json:"speech_seconds,omitempty"` // use only the start (0: all)
	// CallsPerSecond paces the INVITEs (0: 100/s).
	CallsPerSecond float64 `json:"calls_per_second,omitempty"`
	// RTPPorts is the range of the SIP legs' RTP/RTCP pairs, "min-max".
	RTPPorts string `json:"rtp_ports"`
	// MediaTimeout bounds the wait, once all legs are set up, for every leg
	// to hear something (default 5 s).
	MediaTimeout time.Duration `json:"media_timeout,omitempty"`
}

// Report is one line of the child's output.
type Report struct {
	Event string `json:"event"` // ready, mark, final or error
	// Sent and Received count RTP packets per leg, in the job's order.
	Sent     []uint64 `json:"sent,omitempty"`
	Received []uint64 `json:"received,omitempty"`
	// Heard is the media time each leg's packets covered, in 20 ms
	// frames: a DTX gap of up to 400 ms counts as heard.
	Heard []uint64 `json:"heard,omitempty"`
	// Deaf is the number of legs that had heard nothing when ready.
	Deaf int `json:"deaf,omitempty"`
	// Setup is how long setting every leg up took.
	Setup time.Duration `json:"setup,omitempty"`
	// CPU is the generator's own CPU time so far (user + system).
	CPU   time.Duration `json:"cpu"`
	Error string        `json:"error,omitempty"`
}

// Run runs job until in ends (or ctx does), writing Reports to out.
func Run(ctx context.Context, job Job, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	enc := json.NewEncoder(out)
	g := &generator{job: job, streams: make([]*stream, len(job.Legs))}
	start := time.Now()
	err := g.setup(ctx)
	if err == nil {
		err = g.waitMedia(ctx)
	}
	if err != nil {
		_ = enc.Encode(Report{Event: "error", Error: err.Error(), CPU: selfCPU()})
		g.teardown()
		return err
	}
	_ = enc.Encode(g.report("ready", time.Since(start)))
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		if lines.Text() == "mark" {
			_ = enc.Encode(g.report("mark", 0))
		}
	}
	final := g.report("final", 0)
	g.teardown()
	final.CPU = selfCPU()
	return enc.Encode(final)
}

// generator holds a job's legs while it runs.
type generator struct {
	job     Job
	src     *sources
	pump    *pump
	streams []*stream
	deaf    int

	mu    sync.Mutex
	calls []*sipCall
	pages []*page
	conns []net.PacketConn
}

func (g *generator) setup(ctx context.Context) error {
	src, err := loadSources(g.job.Speech, g.job.SpeechSeconds)
	if err != nil {
		return err
	}
	g.src = src
	g.pump = startPump(ctx, len(g.job.Legs))
	// Streams first, so that every leg's input is encoded before any call.
	for i, l := range g.job.Legs {
		codec := l.Codec
		if l.Kind == Web {
			codec = "opus"
		}
		s, err := src.get(codec, l.Talk)
		if err != nil {
			return err
		}
		// 337 frames (6.74 s) apart: no two legs say the same thing at once.
		g.streams[i] = newStream(s, i*337, nil)
	}
	// Pages sign in before any call, so that voxgate can ring them.
	if err := g.openPages(ctx); err != nil {
		return err
	}
	for i, l := range g.job.Legs {
		if l.Kind == UDP {
			if err := g.bareStream(ctx, i, l.Target); err != nil {
				return err
			}
		}
	}
	if err := g.placeCalls(ctx); err != nil {
		return err
	}
	for _, p := range g.pages {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.wait(wctx)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// openPages signs every web leg's page in, a few at once.
func (g *generator) openPages(ctx context.Context) error {
	var api *webrtc.API
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i, l := range g.job.Legs {
		if l.Kind != Web {
			continue
		}
		if api == nil {
			a, err := newBrowserAPI()
			if err != nil {
				return err
			}
			api = a
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			p, err := openPage(ctx, api, g.job.Web, l.User, l.Password, g.streams[i], g.pump.add)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("leg %d: %w", i, err))
				return
			}
			g.pages = append(g.pages, p)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// bareStream sends to target from a socket of its own and counts what
// comes back on it.
func (g *generator) bareStream(ctx context.Context, i int, target string) error {
	dst, err := netip.ParseAddrPort(target)
	if err != nil {
		return fmt.Errorf("leg %d: %w", i, err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.conns = append(g.conns, c)
	g.mu.Unlock()
	s := g.streams[i]
	s.write = func(b []byte) error { _, err := c.WriteToUDPAddrPort(b, dst); return err }
	go count(c, s)
	g.pump.add(s)
	return nil
}

// count counts the packets arriving on c until it closes.
func count(c net.PacketConn, s *stream) {
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		s.received(buf[:n])
	}
}

// drain reads and drops (voxgate's RTCP reports).
func drain(c net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := c.ReadFrom(buf); err != nil {
			return
		}
	}
}

// placeCalls dials every SIP leg, paced, a bounded number at once.
func (g *generator) placeCalls(ctx context.Context) error {
	var idx []int
	for i, l := range g.job.Legs {
		if l.Kind == SIP {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	ph, err := newPhones(ctx, g.job.SIP, g.job.RTPPorts)
	if err != nil {
		return err
	}
	rate := g.job.CallsPerSecond
	if rate <= 0 {
		rate = 100
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	// A bounded number in flight: when voxgate is slow to answer (its
	// CPU is busy with the calls already up), calls wait here instead of
	// piling up in its transaction layer until they time out.
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for n, i := range idx {
		if n > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			l := g.job.Legs[i]
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			c, err := ph.call(cctx, fmt.Sprintf("load%d", i), l.Dial, l.Codec)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("leg %d: %w", i, err))
				mu.Unlock()
				return
			}
			g.mu.Lock()
			g.calls = append(g.calls, c)
			g.mu.Unlock()
			s := g.streams[i]
			if s.pt != cnPT { // comfort noise keeps its own payload type
				s.pt = c.payloadTyp
			}
			s.write = func(b []byte) error { _, err := c.rtp.WriteToUDPAddrPort(b, c.remote); return err }
			go count(c.rtp, s)
			go drain(c.rtcp)
			g.pump.add(s)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d calls failed, the first: %w", len(errs), len(idx), errs[0])
	}
	return nil
}

// waitMedia waits until every leg has heard something, or the timeout:
// then the legs still deaf are reported, and the benchmark decides.
func (g *generator) waitMedia(ctx context.Context) error {
	timeout := g.job.MediaTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		g.deaf = 0
		for _, s := range g.streams {
			if s.recv.Load() == 0 {
				g.deaf++
			}
		}
		if g.deaf == 0 || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (g *generator) report(event string, setup time.Duration) Report {
	r := Report{Event: event, Setup: setup, Deaf: g.deaf, CPU: selfCPU(),
		Sent: make([]uint64, len(g.streams)), Received: make([]uint64, len(g.streams)), Heard: make([]uint64, len(g.streams))}
	for i, s := range g.streams {
		if s != nil {
			r.Sent[i], r.Received[i], r.Heard[i] = s.sent.Load(), s.recv.Load(), s.heard.Load()
		}
	}
	return r
}

// teardown hangs every call up (BYE, a bounded number at once, as a
// PBX would) and closes pages and sockets.
func (g *generator) teardown() {
	for _, s := range g.streams {
		if s != nil {
			s.closed.Store(true)
		}
	}
	g.mu.Lock()
	calls, pages, conns := g.calls, g.pages, g.conns
	g.mu.Unlock()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, c := range calls {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = c.hangup(ctx)
		}()
	}
	wg.Wait()
	for _, p := range pages {
		p.hangup()
	}
	for _, c := range conns {
		c.Close()
	}
}

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
