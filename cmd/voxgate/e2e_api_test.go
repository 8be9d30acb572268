package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/webclient"
)

// metrics scrapes the gateway's /metrics and parses it as Prometheus does.
func (g *gateway) metrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	var body string
	if code := g.api(t, "GET", "/metrics", "", &body); code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// metricValue is the value of the sample of name with the given label
// pairs (name, value, ...); a histogram's _count and _sum are read from its
// family. -1 when there is no such sample.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	base, part := name, ""
	for _, suffix := range []string{"_count", "_sum"} {
		if b, ok := strings.CutSuffix(name, suffix); ok && fams[name] == nil && fams[b].GetType() == dto.MetricType_HISTOGRAM {
			base, part = b, suffix
		}
	}
	f := fams[base]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case part == "_count":
			return float64(m.GetHistogram().GetSampleCount())
		case part == "_sum":
			return m.GetHistogram().GetSampleSum()
		case f.GetType() == dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case f.GetType() == dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		default:
			return m.GetUntyped().GetValue()
		}
	}
	return -1
}

// api calls the gateway's REST API and decodes the JSON answer into out.
func (g *gateway) api(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, g.web+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testAPIToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil {
		if s, ok := out.(*string); ok {
			*s = string(b)
		} else if err := json.Unmarshal(b, out); err != nil && res.StatusCode == 200 {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	if res.StatusCode != 200 {
		t.Logf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return res.StatusCode
}

// An operator watches and runs a room of two desk phones (baresip, one on
// PCMU, one on Opus) through the REST API: the room, its calls, the
// registration and /metrics show them; muting and deafening bob is heard
// (alice no longer hears bob's tone, bob no longer hears alice's); kicking
// alice hangs her phone up.
func TestRESTAPIRunsARoomOfDeskPhones(t *testing.T) {
	peertest.Need(t, "baresip")
	g := startGateway(t, noTones)
	const aliceHz, bobHz = 520.0, 830.0
	// alice registers (the API lists her) and dials the room once she is.
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Register: true, Dial: "8002"})
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "opus/48000/2", Tone: bobHz, Dial: "8002"})
	time.Sleep(4 * time.Second)

	var rooms []webclient.RoomInfo
	g.api(t, "GET", "/api/rooms", "", &rooms)
	if len(rooms) != 1 || rooms[0].Name != "002" || len(rooms[0].Legs) != 2 { // the default dialplan: 8<room>
		t.Fatalf("rooms: %+v", rooms)
	}
	legs := map[string]webclient.LegInfo{}
	for _, l := range rooms[0].Legs {
		legs[l.Name] = l
	}
	if legs["alice"].Codec != "PCMU" || legs["bob"].Codec != "opus" || legs["alice"].Packets < 100 || !legs["bob"].Talking {
		t.Fatalf("legs: %+v", legs)
	}
	var calls []webclient.CallInfo
	g.api(t, "GET", "/api/calls", "", &calls)
	if len(calls) != 2 || calls[0].Action != "room" || calls[0].Room != "002" || calls[0].Origin != "user" {
		t.Fatalf("calls: %+v", calls)
	}
	var regs []webclient.Registration
	g.api(t, "GET", "/api/registrations", "", &regs)
	if len(regs) != 1 || regs[0].User != "alice" || !strings.Contains(regs[0].UserAgent, "baresip") {
		t.Fatalf("registrations: %+v", regs)
	}
	during := g.metrics(t)
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"voxgate_room_legs", nil, 2}, {"voxgate_rooms", nil, 1}, {"voxgate_calls", []string{"origin", "user"}, 2},
		{"voxgate_sip_registrations", nil, 1}, {"voxgate_calls_total", []string{"origin", "user", "action", "room"}, 2},
		{"voxgate_sip_requests_total", []string{"method", "REGISTER"}, 1}, {"voxgate_rtp_packets_received_total", nil, 200},
		{"voxgate_media_legs", nil, 2}, {"voxgate_build_info", nil, 1}, {"go_goroutines", nil, 1}, {"process_start_time_seconds", nil, 1},
	} {
		if v := metricValue(during, c.name, c.labels...); v < c.min {
			t.Errorf("/metrics: %s%v = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}

	var leg webclient.LegInfo
	if code := g.api(t, "PATCH", "/api/rooms/002/legs/"+url.PathEscape(legs["bob"].ID), `{"muted":true,"deaf":true}`, &leg); code != 200 || !leg.Muted || !leg.Deaf {
		t.Fatalf("mute and deafen bob: %d %+v", code, leg)
	}
	if code := g.api(t, "PATCH", "/api/rooms/002/legs/nobody", `{"muted":true}`, nil); code != 404 {
		t.Fatalf("an unknown leg: %d, want 404", code)
	}
	time.Sleep(3 * time.Second)
	if code := g.api(t, "DELETE", "/api/rooms/002/legs/"+url.PathEscape(legs["alice"].ID), "", nil); code != 200 {
		t.Fatalf("kick alice: %d", code)
	}
	bob.Command("hangup", "")
	if !alice.WaitEnded(5 * time.Second) {
		t.Fatalf("alice's phone was not hung up after the kick:\n%s", alice.Output())
	}
	bob.WaitEnded(5 * time.Second)
	alice.Stop()
	bob.Stop()
	// The room emptied and was forgotten.
	deadline := time.Now().Add(3 * time.Second)
	for len(rooms) > 0 && time.Now().Before(deadline) {
		g.api(t, "GET", "/api/rooms", "", &rooms)
		time.Sleep(50 * time.Millisecond)
	}
	if len(rooms) != 0 || g.api(t, "GET", "/api/rooms/002", "", nil) != 404 {
		t.Errorf("the empty room is still there: %+v", rooms)
	}
	// After the calls: counters only grew though both legs left, and the
	// histograms have the calls' set-up and duration, the room's ticks and
	// the jitter buffers' delay.
	after := g.metrics(t)
	for end := time.Now().Add(3 * time.Second); metricValue(after, "voxgate_call_duration_seconds_count", "action", "room") < 2 && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond) // a call's duration is counted as its handling returns, just after it left the room
		after = g.metrics(t)
	}
	for _, name := range []string{"voxgate_rtp_packets_received_total", "voxgate_rtp_packets_lost_total", "voxgate_frames_concealed_total"} {
		if a, d := metricValue(after, name), metricValue(during, name); a < d {
			t.Errorf("/metrics: %s went down from %v to %v when the legs left", name, d, a)
		}
	}
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"voxgate_call_setup_seconds_count", []string{"action", "room"}, 2}, {"voxgate_call_duration_seconds_count", []string{"action", "room"}, 2},
		{"voxgate_room_tick_seconds_count", nil, 100}, {"voxgate_jitter_buffer_delay_seconds_count", nil, 4},
	} {
		if v := metricValue(after, c.name, c.labels...); v < c.min {
			t.Errorf("/metrics: %s%v = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}
	if v := metricValue(after, "voxgate_media_legs"); v != 0 {
		t.Errorf("/metrics: voxgate_media_legs = %v after the calls", v)
	}

	// Each phone's recording ends about when alice was kicked: its last
	// 2.5 s are after the mute, the 2.5 s before the last 3.8 s before it.
	for _, c := range []struct {
		name string
		b    *peertest.Baresip
		hear float64
	}{{"alice", alice, bobHz}, {"bob", bob, aliceHz}} {
		w := c.b.Received()
		n, r := len(w.Samples), w.Rate
		if n < 65*r/10 {
			t.Fatalf("%s recorded %d samples", c.name, n)
		}
		before := audio.Goertzel(w.Samples[n-63*r/10:n-38*r/10], r, c.hear)
		after := audio.Goertzel(w.Samples[n-25*r/10:n-3*r/10], r, c.hear)
		t.Logf("%s: the other's tone %.2g before the mute, %.2g after", c.name, before, after)
		if before < 0.002 || after > before/100 {
			t.Errorf("%s: the other's tone %.2g before, %.2g after muting and deafening bob", c.name, before, after)
		}
	}
	// The changes are logged: mute/deafen, the 404, the kick.
	if n := strings.Count(g.log.String(), "REST API: "); n != 3 {
		t.Errorf("REST API changes logged %d times, want 3", n)
	}
}

// The REST API dials a registered desk phone into a room (as LiveKit's
// CreateSIPParticipant does): bob's baresip rings, answers by itself and
// talks with alice, who is in the room already; the call shows in
// /api/calls. Dialling an unregistered user or an unknown trunk is refused.
func TestRESTAPIDialsAPhoneIntoARoom(t *testing.T) {
	peertest.Need(t, "baresip")
	g := startGateway(t, noTones)
	const aliceHz, bobHz = 520.0, 830.0
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcma", Tone: bobHz, Register: true})
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Dial: "8003"})
	for _, c := range []struct {
		body string
		code int
	}{{`{"user":"carol"}`, 409}, {`{"trunk":"nowhere","number":"123"}`, 404}, {`{"user":"bob","caller_id":"a b"}`, 400}} {
		if code := g.api(t, "POST", "/api/rooms/003/dial", c.body, nil); code != c.code {
			t.Fatalf("dial %s: %d, want %d", c.body, code, c.code)
		}
	}
	var out map[string]string
	if code := g.api(t, "POST", "/api/rooms/003/dial", `{"user":"bob"}`, &out); code != 202 {
		t.Fatalf("dial bob: %d", code)
	}
	if !bob.WaitFor("Call established", 10*time.Second) {
		t.Fatalf("bob's phone was not called into the room:\n%s", bob.Output())
	}
	var room webclient.RoomInfo
	deadline := time.Now().Add(5 * time.Second)
	for len(room.Legs) < 2 && time.Now().Before(deadline) {
		g.api(t, "GET", "/api/rooms/003", "", &room)
		time.Sleep(100 * time.Millisecond)
	}
	var calls []webclient.CallInfo
	g.api(t, "GET", "/api/calls", "", &calls)
	origins := map[string]bool{}
	for _, c := range calls {
		origins[c.Origin] = c.Room == "003"
	}
	if len(room.Legs) != 2 || !origins["api"] || !origins["user"] {
		t.Fatalf("room %+v, calls %+v", room.Legs, calls)
	}
	time.Sleep(3 * time.Second)
	alice.Command("hangup", "")
	bob.Command("hangup", "")
	alice.WaitEnded(5 * time.Second)
	bob.WaitEnded(5 * time.Second)
	alice.Stop()
	bob.Stop()
	for _, c := range []struct {
		name string
		b    *peertest.Baresip
		hear float64
	}{{"alice", alice, bobHz}, {"bob", bob, aliceHz}} {
		secs := c.b.HeardSeconds(c.hear, 0)
		t.Logf("%s heard the other for %.1f s", c.name, secs)
		if secs < 2 {
			t.Errorf("%s heard the other for %.1f s", c.name, secs)
		}
	}
}

// The REST API plays a prompt from rooms.prompt_dir into a room: the desk
// phone in it hears the prompt's tone. Names outside the directory, or not
// there, are refused.
func TestRESTAPIPlaysAPrompt(t *testing.T) {
	peertest.Need(t, "baresip")
	prompts := t.TempDir()
	peertest.ToneWAV(t, prompts+"/welcome.wav", 16000, 1500, 2)
	g := startGateway(t, func(cfg *Config) {
		noTones(cfg)
		cfg.Rooms.PromptDir = prompts
	})
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Dial: "8004"})
	time.Sleep(500 * time.Millisecond)
	for _, c := range []struct {
		body string
		code int
	}{{`{"file":"../etc/passwd.wav"}`, 400}, {`{"file":"welcome.txt"}`, 400}, {`{"file":"missing.wav"}`, 404}, {`{"file":"welcome.wav","leg":"nobody"}`, 404}} {
		if code := g.api(t, "POST", "/api/rooms/004/play", c.body, nil); code != c.code {
			t.Fatalf("play %s: %d, want %d", c.body, code, c.code)
		}
	}
	if code := g.api(t, "POST", "/api/rooms/004/play", `{"file":"welcome.wav"}`, nil); code != 200 {
		t.Fatalf("play: %d", code)
	}
	time.Sleep(3 * time.Second)
	alice.Command("hangup", "")
	alice.WaitEnded(5 * time.Second)
	alice.Stop()
	secs := alice.HeardSeconds(1500, 0)
	t.Logf("alice heard the prompt for %.1f s", secs)
	if secs < 1.5 {
		t.Fatalf("alice heard the 2 s prompt for %.1f s", secs)
	}
}
