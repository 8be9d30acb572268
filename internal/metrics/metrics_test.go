package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
	"github.com/voxgate/voxgate/events"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/switchboard"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// lint fails on any of promtool's lint problems in c's metrics.
func lint(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// sipServer is a real SIP server on a UDP port, with one trunk of the
// config (not registering), that has answered a few requests.
func sipServer(t *testing.T) *sip.Server {
	t.Helper()
	cfg := sip.Config{Listen: []sip.Listener{{Transport: "udp", Addr: "127.0.0.1:0"}}, RTPPorts: "32000-32999",
		Trunks: []sip.TrunkConfig{{Name: "carrier", Registrar: "sip:127.0.0.1:9"}}}
	s, err := sip.NewServer(cfg, sip.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conn, err := net.Dial("udp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	port := conn.LocalAddr().(*net.UDPAddr).Port
	for i, method := range []string{"OPTIONS", "FROBNICATE", "OPTIONS"} {
		msg := fmt.Sprintf("%s sip:voxgate SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKm%d;rport\r\n"+
			"From: <sip:alice@voxgate>;tag=f%d\r\nTo: <sip:voxgate>\r\nCall-ID: m%d\r\nCSeq: 1 %s\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			method, port, i, i, i, method)
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := conn.Read(make([]byte, 4096)); err != nil {
			t.Fatalf("%s: no answer: %v", method, err)
		}
	}
	return s
}

// The SIP collector reads a real server: requests by method (a made-up
// one as "other"), responses by code, the trunk's registration; no lint
// problems.
func TestSIPCollector(t *testing.T) {
	c := SIP(sipServer(t))
	lint(t, c)
	want := `
# HELP voxgate_sip_requests_total SIP requests received, by method (other: a method voxgate does not know).
# TYPE voxgate_sip_requests_total counter
voxgate_sip_requests_total{method="OPTIONS"} 2
voxgate_sip_requests_total{method="other"} 1
# HELP voxgate_sip_responses_total SIP responses voxgate sent, by status code.
# TYPE voxgate_sip_responses_total counter
voxgate_sip_responses_total{code="200"} 2
voxgate_sip_responses_total{code="501"} 1
# HELP voxgate_trunk_registered 1 when voxgate is registered at the trunk (a trunk of the config).
# TYPE voxgate_trunk_registered gauge
voxgate_trunk_registered{trunk="carrier"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "voxgate_sip_requests_total", "voxgate_sip_responses_total", "voxgate_trunk_registered"); err != nil {
		t.Fatal(err)
	}
}

// stats is a switchboard's snapshot after some calls, as data.
type stats switchboard.Stats

func (s stats) Stats() switchboard.Stats { return switchboard.Stats(s) }

// The switchboard collector turns the snapshots' histograms into
// Prometheus histograms (cumulative buckets, +Inf = count) and its
// counters into counters, with no lint problems; a real, fresh switchboard
// lints clean too.
func TestSwitchboardCollector(t *testing.T) {
	setup := bridge.NewHistogram(switchboard.SetupBuckets...)
	setup.Observe(30 * time.Millisecond)
	setup.Observe(3 * time.Second)
	setup.Observe(2 * time.Minute)
	mt := bridge.NewMeter()
	c := Switchboard(stats{Calls: map[string]int{"user": 1, "trunk:carrier": 2}, Rejected: map[int]uint64{404: 3},
		Routed: []switchboard.Routed{{Origin: "user", Action: "room", Count: 5}},
		Setup:  map[string]bridge.HistogramSnapshot{"dial": setup.Snapshot()},
		Media:  mt.Stats(), Rooms: 1, Legs: 3})
	lint(t, c)
	want := `
# HELP voxgate_call_setup_seconds Time from a call's arrival at the switchboard to its answer (for a dial: the callee's answer), by dialplan action.
# TYPE voxgate_call_setup_seconds histogram
voxgate_call_setup_seconds_bucket{action="dial",le="0.05"} 1
voxgate_call_setup_seconds_bucket{action="dial",le="0.1"} 1
voxgate_call_setup_seconds_bucket{action="dial",le="0.25"} 1
voxgate_call_setup_seconds_bucket{action="dial",le="0.5"} 1
voxgate_call_setup_seconds_bucket{action="dial",le="1"} 1
voxgate_call_setup_seconds_bucket{action="dial",le="2"} 1
voxgate_call_setup_seconds_bucket{action="dial",le="5"} 2
voxgate_call_setup_seconds_bucket{action="dial",le="10"} 2
voxgate_call_setup_seconds_bucket{action="dial",le="20"} 2
voxgate_call_setup_seconds_bucket{action="dial",le="30"} 2
voxgate_call_setup_seconds_bucket{action="dial",le="60"} 2
voxgate_call_setup_seconds_bucket{action="dial",le="+Inf"} 3
voxgate_call_setup_seconds_sum{action="dial"} 123.03
voxgate_call_setup_seconds_count{action="dial"} 3
# HELP voxgate_calls Routed calls in progress, by origin (user, guest, web, api, trunk:<name>).
# TYPE voxgate_calls gauge
voxgate_calls{origin="trunk:carrier"} 2
voxgate_calls{origin="user"} 1
# HELP voxgate_calls_rejected_total Calls refused, by SIP status.
# TYPE voxgate_calls_rejected_total counter
voxgate_calls_rejected_total{status="404"} 3
# HELP voxgate_calls_total Calls routed, by origin and dialplan action.
# TYPE voxgate_calls_total counter
voxgate_calls_total{action="room",origin="user"} 5
# HELP voxgate_room_legs Participants in rooms, summed over the rooms.
# TYPE voxgate_room_legs gauge
voxgate_room_legs 3
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "voxgate_call_setup_seconds", "voxgate_calls",
		"voxgate_calls_rejected_total", "voxgate_calls_total", "voxgate_room_legs"); err != nil {
		t.Fatal(err)
	}

	plan, err := dialplan.Parse("plan.yaml", []byte("contexts:\n  internal:\n    rules:\n      - number: \"1\"\n        echo: {}\norigins: {user: internal}\n"), dialplan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sb := switchboard.New(switchboard.Config{Plan: plan, Logger: quiet()})
	t.Cleanup(func() { _ = sb.Close(context.Background()) })
	lint(t, Switchboard(sb))
	if n := testutil.CollectAndCount(Switchboard(sb), "voxgate_room_tick_seconds", "voxgate_jitter_buffer_delay_seconds", "voxgate_rtp_packets_lost_total"); n != 3 {
		t.Fatalf("a fresh switchboard shows %d of the 3 media metrics", n)
	}
}

// The clock collector lints clean.
func TestClockCollector(t *testing.T) {
	lint(t, Clock(bridge.NewClock(1)))
}

// webhookStats is a webhook source with set counters.
type webhookStats events.Stats

func (w webhookStats) Stats() events.Stats { return events.Stats(w) }

func TestWebhooksCollector(t *testing.T) {
	c := Webhooks(webhookStats{Published: 3, Delivered: 2, Failed: 5, Expired: 1})
	lint(t, c)
	want := `
# HELP voxgate_webhook_attempts_total Webhook delivery attempts, by result: delivered (2xx) or failed (retried, or given up).
# TYPE voxgate_webhook_attempts_total counter
voxgate_webhook_attempts_total{result="delivered"} 2
voxgate_webhook_attempts_total{result="failed"} 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "voxgate_webhook_attempts_total"); err != nil {
		t.Error(err)
	}
	var none *events.Webhooks // no webhooks configured: zeros
	lint(t, Webhooks(none))
}
