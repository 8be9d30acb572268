package main

import (
	"encoding/base64"
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
)

// utteranceBot is a bot that, as soon as its stream starts, queues one
// long utterance (seconds of its tone, sent at once as a text-to-speech
// bot sends a prompt) and a mark "end" after it, in the Twilio or the raw
// framing. It notes when the mark comes back and how (raw: its event).
type utteranceBot struct {
	srv *httptest.Server

	mu       sync.Mutex
	markBack time.Time
	markHow  string // raw: "playout" or "cleared"; twilio: "" (Twilio's mark says neither)
}

func newUtteranceBot(t *testing.T, framing string, seconds int) *utteranceBot {
	b := &utteranceBot{}
	up := websocket.Upgrader{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		gen := &audio.Tone{Rate: 8000, Freq: botFreq, Level: 0.3}
		second := make([]int16, 8000)
		spoken := false
		speak := func() { // a second per message, all at once
			spoken = true
			for range seconds {
				gen.Fill(second)
				if framing == "raw" {
					out := make([]byte, 0, 2*len(second))
					for _, v := range second {
						out = binary.LittleEndian.AppendUint16(out, uint16(v))
					}
					_ = c.WriteMessage(websocket.BinaryMessage, out)
					continue
				}
				js, _ := json.Marshal(map[string]any{"event": "media", "streamSid": "x", "media": map[string]any{"payload": base64.StdEncoding.EncodeToString(audio.EncodeUlaw(nil, second))}})
				_ = c.WriteMessage(websocket.TextMessage, js)
			}
			mark := map[string]any{"event": "mark", "streamSid": "x", "mark": map[string]any{"name": "end"}}
			if framing == "raw" {
				mark = map[string]any{"type": "mark", "data": map[string]any{"name": "end"}}
			}
			js, _ := json.Marshal(mark)
			_ = c.WriteMessage(websocket.TextMessage, js)
		}
		for {
			typ, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			if typ != websocket.TextMessage {
				continue
			}
			var m struct {
				Event string `json:"event"`
				Type  string `json:"type"`
				Mark  struct {
					Name string `json:"name"`
				} `json:"mark"`
				Data struct {
					Name  string `json:"name"`
					Event string `json:"event"`
				} `json:"data"`
			}
			if json.Unmarshal(data, &m) != nil {
				continue
			}
			now := time.Now()
			switch {
			case !spoken && m.Event == "start": // twilio's start, or raw's metadata frame
				speak()
			case m.Event == "mark" && m.Mark.Name == "end":
				b.mu.Lock()
				b.markBack = now
				b.mu.Unlock()
			case m.Type == "mark" && m.Data.Name == "end":
				b.mu.Lock()
				b.markBack, b.markHow = now, m.Data.Event
				b.mu.Unlock()
			}
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *utteranceBot) url() string { return "ws" + strings.TrimPrefix(b.srv.URL, "http") + "/media" }

// A desk phone calls a bot with barge-in on; the bot queues 10 s of its
// tone at once. The phone listens (silence) for 3 s, hearing the bot, then
// talks: within a bound of its first tone packet on the wire the bot's
// tone stops reaching the phone, the bot's mark comes back (raw:
// "cleared") long before its utterance would have ended, and /metrics
// counts the barge-in. In both JSON framings.
func TestBaresipBargesIn(t *testing.T) {
	peertest.Need(t, "baresip")
	const (
		utterance = 10 // seconds the bot queues
		listen    = 3 * time.Second
		// bound on the caller's talk onset (its first tone packet to
		// voxgate) to the bot's last tone packet to the phone. Measured
		// 38-82 ms under -race (the jitter buffer, the detector's 40 ms,
		// a tick); the rest is room for a loaded 2-core machine, far
		// short of the 7 s of the utterance left at the onset.
		bound = 250 * time.Millisecond
	)
	twilio, raw := newUtteranceBot(t, "twilio", utterance), newUtteranceBot(t, "raw", utterance)
	plan := fmt.Sprintf(`
contexts:
  internal:
    rules:
      - number: "6000"
        stream: {url: %q, barge_in: true}
      - number: "6001"
        stream: {url: %q, framing: raw, barge_in: true}
origins:
  user: internal
`, twilio.url(), raw.url())
	var rtpPorts string
	g := startGateway(t, func(cfg *Config) { cfg.Dialplan = writePlan(t, plan); rtpPorts = cfg.SIP.RTPPorts })
	var lo, hi int
	fmt.Sscanf(rtpPorts, "%d-%d", &lo, &hi)
	for _, tc := range []struct {
		framing, number string
		bot             *utteranceBot
	}{{"twilio", "6000", twilio}, {"raw", "6001", raw}} {
		t.Run(tc.framing, func(t *testing.T) {
			before := metricValue(g.metrics(t), "voxgate_bot_stream_barge_ins_total")
			toVoxgate := peertest.CaptureRTP(t, lo, hi)
			t0 := time.Now()
			phone := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu",
				Tone: callerFreq, ToneAfter: listen, Dial: tc.number})
			toPhone := peertest.CaptureRTP(t, phone.RTPMin, phone.RTPMax)
			bot := tc.bot
			var markBack time.Time
			var markHow string
			waitFor(t, "the bot's mark back", 15*time.Second, func() bool {
				bot.mu.Lock()
				defer bot.mu.Unlock()
				markBack, markHow = bot.markBack, bot.markHow
				return !markBack.IsZero()
			})
			// A second of what the phone gets after the clear, then hang up.
			waitFor(t, "a second of packets to the phone after the mark", 10*time.Second, func() bool {
				return toPhone.PacketsBetween(markBack, time.Now().Add(time.Hour)) >= 50
			})
			phone.Command("hangup", "")
			phone.WaitEnded(5 * time.Second)
			phone.Stop()
			toVoxgate.Stop()
			toPhone.Stop()

			onset, ok1 := toVoxgate.FirstTone(callerFreq, t0)
			first, ok2 := toPhone.FirstTone(botFreq, t0)
			last, ok3 := toPhone.LastTone(botFreq, t0)
			if !ok1 || !ok2 || !ok3 {
				t.Fatalf("tones on the wire: the caller's to voxgate %v, the bot's to the phone %v", ok1, ok2)
			}
			stop, mark := last.Sub(onset), markBack.Sub(onset)
			t.Logf("barge-in: the bot's tone reached the phone for %v; its last packet %v after the caller's first tone packet; the mark back %v after it (%q)",
				last.Sub(first).Round(time.Millisecond), stop.Round(time.Millisecond), mark.Round(time.Millisecond), markHow)
			if first.After(onset) || onset.Sub(first) < listen-time.Second {
				t.Errorf("the phone heard the bot for %v before talking: its silence barged in, or the bot was not heard", onset.Sub(first))
			}
			if stop > bound {
				t.Errorf("the bot's tone reached the phone %v after the caller started talking (bound %v)", stop, bound)
			}
			if mark < 0 || mark > bound+200*time.Millisecond {
				t.Errorf("the mark came back %v after the caller started talking: not at the barge-in", mark)
			}
			if tc.framing == "raw" && markHow != "cleared" {
				t.Errorf("the raw mark came back %q, want cleared", markHow)
			}
			// The phone's own recording: the bot's tone while it listened
			// (as long as the wire says it listened: on a loaded machine
			// baresip's silence may run past its 3 s), none in its last
			// 0.8 s (after the clear).
			w := phone.Received()
			heard := audio.ToneSeconds(w.Samples, w.Rate, botFreq, 0.2)
			tail := audio.ToneSeconds(w.Samples[max(0, len(w.Samples)-w.Rate*4/5):], w.Rate, botFreq, 0.2)
			listened := onset.Sub(first)
			if heard < (listen-time.Second).Seconds() || heard > (listened+500*time.Millisecond).Seconds() || tail > 0 {
				t.Errorf("the phone recorded the bot's tone for %.2fs (it listened %v on the wire), %.2fs of it in its last 0.8 s", heard, listened.Round(time.Millisecond), tail)
			}
			if after := metricValue(g.metrics(t), "voxgate_bot_stream_barge_ins_total"); after < before+1 {
				t.Errorf("voxgate_bot_stream_barge_ins_total %v -> %v", before, after)
			}
		})
	}
}
