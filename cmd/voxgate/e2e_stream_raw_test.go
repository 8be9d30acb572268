package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
	"github.com/voxgate/voxgate/events"
)

// rawTestBot is a bot of the raw framing (as written for mod_audio_fork or
// jambonz listen): a WebSocket server on loopback that keeps the metadata
// frame and the audio of each connection (left and right channel), and
// says a tone (speak, 0: nothing) at the stream's rate every 20 ms.
type rawTestBot struct {
	srv   *httptest.Server
	speak float64
	// dropAfter: each connection is cut (no close handshake) this long
	// after it opened (0: never).
	dropAfter time.Duration
	// transferTo: once the caller's tone (hearFreq) was heard for a
	// second, the bot sends a transfer message to this number.
	transferTo string
	hearFreq   float64

	mu    sync.Mutex
	conns []*rawConn
}

// rawConn is what one connection of the bot got.
type rawConn struct {
	meta        map[string]any
	rate        int
	left, right []int16
	opened      time.Time
	closed      time.Time
}

func newRawTestBot(t *testing.T, speak float64) *rawTestBot {
	b := &rawTestBot{speak: speak}
	up := websocket.Upgrader{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		rc := &rawConn{opened: time.Now()}
		b.mu.Lock()
		b.conns = append(b.conns, rc)
		b.mu.Unlock()
		defer func() { b.mu.Lock(); rc.closed = time.Now(); b.mu.Unlock() }()
		typ, data, err := c.ReadMessage()
		if err != nil || typ != websocket.TextMessage || json.Unmarshal(data, &rc.meta) != nil {
			return
		}
		rate, _ := rc.meta["sampleRate"].(float64)
		stereo := rc.meta["channels"] == 2.0
		b.mu.Lock()
		rc.rate = int(rate)
		b.mu.Unlock()
		var wmu sync.Mutex
		stop := make(chan struct{})
		defer close(stop)
		if b.speak > 0 {
			go func() {
				gen := &audio.Tone{Rate: int(rate), Freq: b.speak, Level: 0.3}
				pcm := make([]int16, int(rate)/50)
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-tick.C:
					case <-stop:
						return
					}
					gen.Fill(pcm)
					out := make([]byte, 0, 2*len(pcm))
					for _, v := range pcm {
						out = binary.LittleEndian.AppendUint16(out, uint16(v))
					}
					wmu.Lock()
					err := c.WriteMessage(websocket.BinaryMessage, out)
					wmu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
		if b.dropAfter > 0 {
			go func() {
				select {
				case <-time.After(b.dropAfter):
					c.UnderlyingConn().Close() // gone without a close: a crash
				case <-stop:
				}
			}()
		}
		transferred := false
		for {
			typ, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			if typ != websocket.BinaryMessage {
				continue
			}
			b.mu.Lock()
			for i := 0; i+1 < len(data); i += 2 {
				v := int16(binary.LittleEndian.Uint16(data[i:]))
				if stereo && (i/2)%2 == 1 {
					rc.right = append(rc.right, v)
				} else {
					rc.left = append(rc.left, v)
				}
			}
			heard := b.hearFreq > 0 && audio.ToneSeconds(rc.left, rc.rate, b.hearFreq, 0.2) >= 1
			b.mu.Unlock()
			if heard && b.transferTo != "" && !transferred {
				transferred = true
				js, _ := json.Marshal(map[string]any{"type": "transfer", "data": map[string]string{"to": b.transferTo}})
				wmu.Lock()
				_ = c.WriteMessage(websocket.TextMessage, js)
				wmu.Unlock()
			}
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *rawTestBot) url() string { return "ws" + strings.TrimPrefix(b.srv.URL, "http") + "/media" }

// conn returns connection i once it exists (waiting up to 15 s).
func (b *rawTestBot) conn(t *testing.T, i int) *rawConn {
	t.Helper()
	var c *rawConn
	b.wait(t, fmt.Sprintf("connection %d", i+1), func() bool {
		if len(b.conns) > i {
			c = b.conns[i]
		}
		return c != nil && c.rate > 0
	})
	return c
}

// wait waits up to 15 s for f, which runs with the bot's lock held.
func (b *rawTestBot) wait(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b.mu.Lock()
		ok := f()
		b.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seconds is how long channel (left or right) of connection c carried freq.
func (b *rawTestBot) seconds(c *rawConn, right bool, freq float64) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	pcm := c.left
	if right {
		pcm = c.right
	}
	return audio.ToneSeconds(pcm, c.rate, freq, 0.2)
}

// A G.722 desk phone (16 kHz) calls a raw 16 kHz stream: the bot gets the
// phone's 6 kHz tone (above what 8 kHz carries) in the metadata's format,
// and the phone hears the bot's 5 kHz tone.
func TestRawStreamWideband(t *testing.T) {
	peertest.Need(t, "baresip")
	const phoneFreq, botFreq = 6000, 5000
	bot := newRawTestBot(t, botFreq)
	plan := fmt.Sprintf(`
contexts:
  internal:
    rules:
      - number: "6100"
        stream: {url: %q, framing: raw, rate: 16000, parameters: {who: $caller}}
origins:
  user: internal
`, bot.url())
	g := startGateway(t, func(cfg *Config) { cfg.Dialplan = writePlan(t, plan) })
	phone := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "G722/16000/1", Tone: phoneFreq, Wideband: true, Dial: "6100"})
	c := bot.conn(t, 0)
	bot.wait(t, "2 s of the phone's 6 kHz tone at the bot", func() bool {
		return audio.ToneSeconds(c.left, c.rate, phoneFreq, 0.2) >= 2
	})
	deadline := time.Now().Add(10 * time.Second)
	for phone.HeardSeconds(botFreq, 0) < 2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	phone.Command("hangup", "")
	phone.WaitEnded(5 * time.Second)
	phone.Stop()
	bot.mu.Lock()
	meta := c.meta
	bot.mu.Unlock()
	if meta["sampleRate"] != 16000.0 || meta["mixType"] != "mono" || meta["who"] != "alice" || meta["from"] != "alice" {
		t.Errorf("metadata %v", meta)
	}
	if heard := phone.HeardSeconds(botFreq, 0); heard < 2 {
		t.Errorf("the phone heard the bot's 5 kHz tone for %.1fs", heard)
	}
}

// Two desk phones in a room whose dialplan names a bot (a raw 16 kHz
// stream): the bot joins with the first phone, hears both phones' tones
// in the mix, and both phones hear the bot's tone and not their own. When
// the room empties the bot's stream ends. A second room's bot drops its
// connection after 2 s (no close): it is called again after 0.5 s, the
// room going on meanwhile, and /metrics counts the reconnect.
func TestRoomStream(t *testing.T) {
	peertest.Need(t, "baresip")
	const aliceHz, bobHz, botHz = 520.0, 830.0, 1200.0
	bot := newRawTestBot(t, botHz)
	flaky := newRawTestBot(t, 0)
	flaky.dropAfter = 2 * time.Second
	plan := fmt.Sprintf(`
contexts:
  internal:
    rules:
      - number: "7000"
        room: {name: withbot, stream: {url: %q, framing: raw, rate: 16000}}
      - number: "7001"
        room: {name: flaky, stream: {url: %q, framing: raw}}
origins:
  user: internal
`, bot.url(), flaky.url())
	g := startGateway(t, func(cfg *Config) { noTones(cfg); cfg.Dialplan = writePlan(t, plan) })
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Dial: "7000"})
	c := bot.conn(t, 0)
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcma", Tone: bobHz, Dial: "7000"})
	bot.wait(t, "both phones' tones at the bot", func() bool {
		return audio.ToneSeconds(c.left, c.rate, aliceHz, 0.1) >= 2 && audio.ToneSeconds(c.left, c.rate, bobHz, 0.1) >= 2
	})
	// In a mix of tones, one tone holds a share of the frame's energy:
	// the phones' tones are at 0.5, the bot's at 0.3 (a share of 0.05 is
	// well above what a phone gets of a tone nobody sends).
	heard := func(p *peertest.Baresip, f float64) float64 {
		w := p.Received()
		return audio.ToneSeconds(w.Samples, w.Rate, f, 0.05)
	}
	deadline := time.Now().Add(10 * time.Second)
	for (heard(alice, botHz) < 2 || heard(bob, botHz) < 2) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if own := bot.seconds(c, false, botHz); own > 0.1 {
		t.Errorf("the bot heard itself for %.1fs", own)
	}
	var streams []map[string]any
	if code := g.api(t, "GET", "/api/v1/streams", "", &streams); code != 200 || len(streams) != 1 || streams[0]["room"] != "withbot" ||
		streams[0]["origin"] != "dialplan" || streams[0]["connected"] != true {
		t.Errorf("GET /api/v1/streams: %d %v", code, streams)
	}
	for _, p := range []*peertest.Baresip{alice, bob} {
		p.Command("hangup", "")
		p.WaitEnded(5 * time.Second)
		p.Stop()
	}
	for name, p := range map[string]*peertest.Baresip{"alice": alice, "bob": bob} {
		b, own := heard(p, botHz), heard(p, map[string]float64{"alice": aliceHz, "bob": bobHz}[name])
		other := heard(p, map[string]float64{"alice": bobHz, "bob": aliceHz}[name])
		t.Logf("%s heard the bot for %.1fs, the other phone for %.1fs, itself for %.1fs", name, b, other, own)
		if b < 2 || other < 1 || own > 0.2 {
			t.Errorf("%s heard the bot for %.1fs, the other phone for %.1fs, itself for %.1fs", name, b, other, own)
		}
	}
	bot.wait(t, "the bot's stream ended with the room", func() bool { return !c.closed.IsZero() })

	t.Run("reconnect", func(t *testing.T) {
		p := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Dial: "7001"})
		first := flaky.conn(t, 0)
		second := flaky.conn(t, 1)
		flaky.mu.Lock()
		gap := second.opened.Sub(first.closed)
		flaky.mu.Unlock()
		flaky.wait(t, "the phone's tone at the reconnected bot", func() bool {
			return audio.ToneSeconds(second.left, second.rate, aliceHz, 0.1) >= 1
		})
		if gap < 400*time.Millisecond || gap > 2*time.Second {
			t.Errorf("reconnected %v after the drop, want about 0.5 s", gap)
		}
		if !strings.Contains(g.log.String(), "room stream: the bot went away: reconnecting") {
			t.Error("no log line for the reconnect")
		}
		if n := metricValue(g.metrics(t), "voxgate_room_stream_reconnects_total"); n < 1 {
			t.Errorf("voxgate_room_stream_reconnects_total %v", n)
		}
		p.Command("hangup", "")
		p.WaitEnded(5 * time.Second)
		p.Stop()
	})
}

// A bot takes the call onward with its transfer message (voxgate's
// extension of the raw and twilio framings): once it heard the caller's
// tone for a second it asks for a number, routed in the stream rule's
// context: the echo (the phone then hears its own tone), or another phone
// (bob, registered: each phone then hears the other's tone). The stream's
// webhooks say it started and ended with the transfer.
func TestBotTransfersTheCall(t *testing.T) {
	peertest.Need(t, "baresip")
	const aliceHz, bobHz = 700.0, 1100.0
	toEcho, toBob := newRawTestBot(t, 0), newRawTestBot(t, 0)
	toEcho.transferTo, toEcho.hearFreq = "9196", aliceHz
	toBob.transferTo, toBob.hearFreq = "2000", aliceHz
	plan := fmt.Sprintf(`
contexts:
  internal:
    rules:
      - number: "6300"
        stream: {url: %q, framing: raw}
      - number: "6301"
        stream: {url: %q, framing: raw}
      - number: "9196"
        echo: {}
      - number: "2000"
        dial: {user: bob}
origins:
  user: internal
`, toEcho.url(), toBob.url())
	type hook struct {
		Type string            `json:"type"`
		Data events.StreamData `json:"data"`
	}
	hooks := make(chan hook, 10)
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var h hook
		if json.NewDecoder(r.Body).Decode(&h) == nil {
			hooks <- h
		}
	}))
	defer hookSrv.Close()
	g := startGateway(t, func(cfg *Config) {
		cfg.Dialplan = writePlan(t, plan)
		cfg.Webhooks = []events.Endpoint{{Name: "bots", URL: hookSrv.URL, Secret: "stream-hook-secret", Events: []string{"stream.*"}}}
	})
	nextHook := func() hook {
		t.Helper()
		select {
		case h := <-hooks:
			return h
		case <-time.After(10 * time.Second):
			t.Fatal("no stream webhook")
			return hook{}
		}
	}
	wait := func(p *peertest.Baresip, f float64) float64 {
		deadline := time.Now().Add(12 * time.Second)
		for p.HeardSeconds(f, 0) < 2 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		return p.HeardSeconds(f, 0)
	}
	t.Run("to the echo", func(t *testing.T) {
		alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Dial: "6300"})
		own := wait(alice, aliceHz)
		alice.Command("hangup", "")
		alice.WaitEnded(5 * time.Second)
		alice.Stop()
		if own < 2 {
			t.Errorf("after the transfer to the echo the phone heard its own tone for %.1fs", own)
		}
		if !strings.Contains(g.log.String(), "media stream: the bot transfers the call") {
			t.Error("no log line for the bot's transfer")
		}
		if h := nextHook(); h.Type != "stream.started" || h.Data.Kind != "call" || h.Data.Framing != "raw" || h.Data.Origin != "dialplan" {
			t.Errorf("first webhook %+v", h)
		}
		if h := nextHook(); h.Type != "stream.ended" || h.Data.TransferTo != "9196" || h.Data.Error != "" {
			t.Errorf("second webhook %+v", h)
		}
	})
	t.Run("to another phone", func(t *testing.T) {
		bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcma", Tone: bobHz, Register: true})
		alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Dial: "6301"})
		heardBob := wait(alice, bobHz)
		heardAlice := wait(bob, aliceHz)
		alice.Command("hangup", "")
		alice.WaitEnded(5 * time.Second)
		alice.Stop()
		bob.Stop()
		if heardBob < 2 || heardAlice < 2 {
			t.Errorf("after the transfer alice heard bob for %.1fs, bob alice for %.1fs", heardBob, heardAlice)
		}
	})
}

// Streams started and stopped through the REST API: a fork of a live
// two-party call in stereo (alice's tone left, bob's right: what the
// caller says and what she hears), a bot added to a room (the phone in
// it hears the bot), both listed and stopped; bad requests get 4xx.
func TestRESTStreams(t *testing.T) {
	peertest.Need(t, "baresip")
	const aliceHz, bobHz, botHz = 700.0, 1100.0, 1500.0
	fork, roomBot := newRawTestBot(t, 0), newRawTestBot(t, botHz)
	plan := `
contexts:
  internal:
    rules:
      - number: "2000"
        dial: {user: bob}
      - number: "7100"
        room: {name: apiroom}
origins:
  user: internal
`
	g := startGateway(t, func(cfg *Config) { noTones(cfg); cfg.Dialplan = writePlan(t, plan) })
	bob := peertest.StartPhone(t, g.addr, peertest.Phone{User: "bob", Password: "bob-secret", Codec: "pcma", Tone: bobHz, Register: true})
	alice := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Dial: "2000"})
	var calls []map[string]any
	g.api(t, "GET", "/api/v1/calls/active", "", &calls)
	if len(calls) != 1 {
		t.Fatalf("calls %v", calls)
	}
	id := calls[0]["id"].(string)
	post := func(path, body string) (int, map[string]any) {
		var out map[string]any
		return g.api(t, "POST", path, body, &out), out
	}
	for _, c := range []struct {
		path, body string
		want       int
	}{
		{"/api/v1/calls/" + id + "/streams", `{"url":"tcp://127.0.0.1:9","framing":"audiosocket","tracks":"both"}`, 400},
		{"/api/v1/calls/" + id + "/streams", `{"url":"http://bot"}`, 400},
		{"/api/v1/calls/" + id + "/streams", `{"url":"ws://bot","rate":11025,"framing":"raw"}`, 400},
		{"/api/v1/calls/" + id + "/streams", `{"url":"ws://127.0.0.1:9/nobody"}`, 502},
		{"/api/v1/calls/nope/streams", `{"url":"` + fork.url() + `"}`, 404},
		{"/api/v1/rooms/nobody-here/streams", `{"url":"` + roomBot.url() + `"}`, 404},
	} {
		if code, out := post(c.path, c.body); code != c.want {
			t.Errorf("POST %s %s: %d %v, want %d", c.path, c.body, code, out, c.want)
		}
	}
	code, st := post("/api/v1/calls/"+id+"/streams", `{"url":"`+fork.url()+`","framing":"raw","tracks":"both"}`)
	if code != 201 || st["kind"] != "call" || st["tracks"] != "both" {
		t.Fatalf("fork: %d %v", code, st)
	}
	c := fork.conn(t, 0)
	fork.wait(t, "alice on the left, bob on the right", func() bool {
		return audio.ToneSeconds(c.left, c.rate, aliceHz, 0.2) >= 2 && audio.ToneSeconds(c.right, c.rate, bobHz, 0.2) >= 2
	})
	if l, r := fork.seconds(c, false, bobHz), fork.seconds(c, true, aliceHz); l > 0.1 || r > 0.1 {
		t.Errorf("the channels are mixed: bob on the left %.1fs, alice on the right %.1fs", l, r)
	}
	if fork.conns[0].meta["channels"] != 2.0 {
		t.Errorf("metadata %v", fork.conns[0].meta)
	}
	if code, _ := post("/api/v1/calls/"+id+"/streams", `{"url":"`+fork.url()+`"}`); code != 409 {
		t.Errorf("a second fork: %d, want 409", code)
	}
	var stopped map[string]any
	if code := g.api(t, "DELETE", "/api/v1/streams/"+st["id"].(string), "", &stopped); code != 200 || stopped["id"] != st["id"] {
		t.Errorf("DELETE: %d %v", code, stopped)
	}
	fork.wait(t, "the fork's connection closed", func() bool { return !c.closed.IsZero() })
	if code := g.api(t, "DELETE", "/api/v1/streams/"+st["id"].(string), "", nil); code != 404 {
		t.Errorf("DELETE again: %d, want 404", code)
	}
	alice.Command("hangup", "")
	alice.WaitEnded(5 * time.Second)
	alice.Stop()
	bob.Stop()

	carol := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: aliceHz, Dial: "7100"})
	code, rs := post("/api/v1/rooms/apiroom/streams", `{"url":"`+roomBot.url()+`","framing":"raw","rate":16000}`)
	if code != 201 || rs["kind"] != "room" || rs["origin"] != "api" {
		t.Fatalf("room stream: %d %v", code, rs)
	}
	rc := roomBot.conn(t, 0)
	roomBot.wait(t, "the phone at the room's bot", func() bool { return audio.ToneSeconds(rc.left, rc.rate, aliceHz, 0.2) >= 1 })
	deadline := time.Now().Add(10 * time.Second)
	for carol.HeardSeconds(botHz, 0) < 1 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	var list []map[string]any
	if g.api(t, "GET", "/api/v1/streams", "", &list); len(list) != 1 || list[0]["id"] != rs["id"] {
		t.Errorf("list %v", list)
	}
	if code := g.api(t, "DELETE", "/api/v1/streams/"+rs["id"].(string), "", nil); code != 200 {
		t.Errorf("DELETE the room stream: %d", code)
	}
	roomBot.wait(t, "the room bot's connection closed", func() bool { return !rc.closed.IsZero() })
	carol.Command("hangup", "")
	carol.WaitEnded(5 * time.Second)
	carol.Stop()
	if heard := carol.HeardSeconds(botHz, 0); heard < 1 {
		t.Errorf("the phone in the room heard the bot for %.1fs", heard)
	}
}
