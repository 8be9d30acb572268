package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/sip"
)

// gateway is a voxgate started in-process on the embedded default config,
// with free ports.
type gateway struct {
	srv    *sip.Server
	router *testRouter
	port   int
	log    *peertest.SyncBuffer
	addr   string
	web    string // the web server's base URL; the REST API takes testAPIToken
	app    *app
}

const testAPIToken = "test-api-token"

func startGateway(t *testing.T, mutate func(*Config)) *gateway {
	t.Helper()
	return startGatewayWith(t, mutate)
}

// startGatewayWith is startGateway with options for the SIP server (test knobs).
func startGatewayWith(t *testing.T, mutate func(*Config), sipOpts ...sip.Option) *gateway {
	t.Helper()
	cfg, err := parseConfig(configs.DefaultName, configs.Default)
	if err != nil {
		t.Fatal(err)
	}
	port := peertest.FreePorts(t, 1)
	rtp := peertest.FreePorts(t, 40)
	cfg.SIP.Listen = []sip.Listener{{Transport: "udp", Addr: fmt.Sprintf("127.0.0.1:%d", port)}, {Transport: "tcp", Addr: fmt.Sprintf("127.0.0.1:%d", port)}}
	cfg.SIP.RTPPorts = fmt.Sprintf("%d-%d", rtp, rtp+39)
	cfg.Web.APIToken = testAPIToken
	cfg.DataDir = t.TempDir()
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.SIP.Validate(); err != nil {
		t.Fatal(err)
	}
	g := &gateway{port: port, log: &peertest.SyncBuffer{}, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	log := slog.New(slog.NewTextHandler(g.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	g.router = &testRouter{}
	plan, err := loadDialplan("", cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Web.Listen = "127.0.0.1:0"
	webPorts := peertest.FreePorts(t, 20)
	cfg.Web.UDPPorts = fmt.Sprintf("%d-%d", webPorts, webPorts+19)
	a, err := wire(cfg, plan, sip.NewUsers(users(cfg)...), log, wiring{ended: g.router.add, sipOpts: sipOpts})
	if err == nil {
		err = a.Start(ctx)
	}
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	g.srv, g.app = a.sip, a
	g.web = "http://" + a.web.Addr().String()
	t.Cleanup(func() {
		var media string
		if t.Failed() {
			media = g.mediaMetrics()
		}
		a.Close()
		cancel()
		if t.Failed() {
			t.Logf("voxgate log:\n%s", g.log.String())
			t.Logf("voxgate media counters at the failure (the clock's are the test process's, all tests so far):\n%s", media)
		}
	})
	return g
}

// mediaMetrics returns the /metrics lines that tell a stalled clock (late
// or skipped ticks) from media that came late or not at all (concealed or
// dropped frames, lost packets), for a failed test's log.
func (g *gateway) mediaMetrics() string {
	req, _ := http.NewRequest("GET", g.web+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testAPIToken)
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		for _, p := range []string{"voxgate_clock_", "voxgate_frames_", "voxgate_rtp_packets_", "voxgate_jitter_buffer_delay_seconds_sum", "voxgate_jitter_buffer_delay_seconds_count", "voxgate_room_tick_seconds_sum", "voxgate_room_tick_seconds_count"} {
			if strings.HasPrefix(line, p) {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, "\n")
}

// noTones turns the rooms' join and leave beeps off (they would mask tones).
func noTones(cfg *Config) {
	f := false
	cfg.Rooms.Tones = &f
}

// writePlan writes a dialplan for a test gateway and returns its path.
func writePlan(t *testing.T, plan string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dialplan.yaml")
	if err := os.WriteFile(p, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testRouter records the calls the router handled.
type testRouter struct {
	mu    sync.Mutex
	calls []*sip.Call
}

func (r *testRouter) add(c *sip.Call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *testRouter) ended() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *testRouter) lastStats() (sip.Stats, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return sip.Stats{}, false
	}
	return r.calls[len(r.calls)-1].Stats(), true
}
