package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/cmd/voxgate/internal/peertest"
)

// twilioBot is a voice bot as a test peer: a WebSocket server on loopback
// speaking Twilio Media Streams. It records what the caller says and the
// events it gets, and says its own tone (botFreq) for speakFor, starting
// speakAfter into the stream, followed by a mark.
type twilioBot struct {
	srv                  *httptest.Server
	speakAfter, speakFor time.Duration

	mu        sync.Mutex
	auth      string
	start     map[string]any
	pcm       []int16
	firstHear time.Time // the first frame of the caller's tone
	digits    string
	spoke     time.Time // the first frame of the bot's tone was sent
	spokeEnd  time.Time // the last one was
	markBack  time.Time // its mark came back
	hangUp    chan struct{}
}

const botFreq, callerFreq = 1200, 600

func newTwilioBot(t *testing.T) *twilioBot {
	b := &twilioBot{speakAfter: 1500 * time.Millisecond, speakFor: 3 * time.Second, hangUp: make(chan struct{})}
	up := websocket.Upgrader{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		b.mu.Lock()
		b.auth = r.Header.Get("Authorization")
		b.mu.Unlock()
		var wmu sync.Mutex
		send := func(m any) {
			js, _ := json.Marshal(m)
			wmu.Lock()
			_ = c.WriteMessage(websocket.TextMessage, js)
			wmu.Unlock()
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() { // speak
			select {
			case <-time.After(b.speakAfter):
			case <-stop:
				return
			}
			tone := make([]int16, 160)
			gen := &audio.Tone{Rate: 8000, Freq: botFreq, Level: 0.3}
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			// A count of frames, not a time: a ticker drops ticks when the
			// bot's goroutine runs late (a loaded machine), and the bot
			// would then say less than speakFor.
			for range int(b.speakFor / (20 * time.Millisecond)) {
				gen.Fill(tone)
				send(map[string]any{"event": "media", "streamSid": "x", "media": map[string]any{"payload": base64.StdEncoding.EncodeToString(audio.EncodeUlaw(nil, tone))}})
				b.mu.Lock()
				if b.spoke.IsZero() {
					b.spoke = time.Now()
				}
				b.spokeEnd = time.Now()
				b.mu.Unlock()
				select {
				case <-tick.C:
				case <-stop:
					return
				}
			}
			send(map[string]any{"event": "mark", "streamSid": "x", "mark": map[string]any{"name": "spoken"}})
		}()
		go func() { // hang up when told
			select {
			case <-b.hangUp:
				wmu.Lock()
				_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "goodbye"))
				wmu.Unlock()
			case <-stop:
			}
		}()
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			var m struct {
				Event string         `json:"event"`
				Start map[string]any `json:"start"`
				Media struct {
					Payload string `json:"payload"`
				} `json:"media"`
				DTMF struct {
					Digit string `json:"digit"`
				} `json:"dtmf"`
				Mark struct {
					Name string `json:"name"`
				} `json:"mark"`
			}
			if json.Unmarshal(data, &m) != nil {
				continue
			}
			now := time.Now()
			b.mu.Lock()
			switch m.Event {
			case "start":
				b.start = m.Start
			case "media":
				p, _ := base64.StdEncoding.DecodeString(m.Media.Payload)
				n := len(b.pcm)
				b.pcm = audio.DecodeUlaw(b.pcm, p)
				if b.firstHear.IsZero() && len(b.pcm)-n == 160 && audio.ToneSeconds(b.pcm[n:], 8000, callerFreq, 0.2) > 0 {
					b.firstHear = now
				}
			case "dtmf":
				b.digits += m.DTMF.Digit
			case "mark":
				if m.Mark.Name == "spoken" {
					b.markBack = now
				}
			}
			b.mu.Unlock()
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *twilioBot) url() string { return "ws" + strings.TrimPrefix(b.srv.URL, "http") + "/media" }

func (b *twilioBot) wait(t *testing.T, what string, f func() bool) {
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

// A desk phone calls a number routed to a bot over a Twilio media stream:
// the bot hears the phone's tone and its digit, the phone hears the bot's
// tone (and not its own), the bot's mark comes back once its audio played,
// and when the bot hangs up the call ends. The added delay each way is
// measured on the wire and logged.
func TestBaresipTalksToBot(t *testing.T) {
	peertest.Need(t, "baresip")
	bot := newTwilioBot(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := l.Addr().String()
	l.Close()
	plan := fmt.Sprintf(`
contexts:
  internal:
    rules:
      - number: "6000"
        stream:
          url: %s
          headers: {Authorization: "Bearer bot-token"}
          parameters: {caller: $caller}
      - number: "6001"
        stream: {url: "ws://%s/nobody"}
      - number: "6002"
        stream: {url: "tcp://%s", framing: audiosocket}
origins:
  user: internal
`, bot.url(), refused, shiftBot(t))
	var rtpPorts string
	g := startGateway(t, func(cfg *Config) { cfg.Dialplan = writePlan(t, plan); rtpPorts = cfg.SIP.RTPPorts })
	var lo, hi int
	fmt.Sscanf(rtpPorts, "%d-%d", &lo, &hi)
	toVoxgate := peertest.CaptureRTP(t, lo, hi)
	t0 := time.Now()
	phone := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcmu", Tone: callerFreq, Dial: "6000"})
	toPhone := peertest.CaptureRTP(t, phone.RTPMin, phone.RTPMax)
	bot.wait(t, "the caller's tone at the bot", func() bool { return !bot.firstHear.IsZero() })
	phone.Command("sndcode", "7")
	bot.wait(t, "the digit at the bot", func() bool { return bot.digits == "7" })
	bot.wait(t, "the bot's mark back", func() bool { return !bot.markBack.IsZero() })
	bot.mu.Lock()
	auth, start, spoke, spokeEnd, markBack, firstHear := bot.auth, bot.start, bot.spoke, bot.spokeEnd, bot.markBack, bot.firstHear
	heard := audio.ToneSeconds(bot.pcm, 8000, callerFreq, 0.2)
	bot.mu.Unlock()
	close(bot.hangUp)
	if !phone.WaitEnded(10 * time.Second) {
		t.Fatalf("the call did not end when the bot hung up:\n%s", phone.Output())
	}
	phone.Stop()
	if !strings.Contains(g.log.String(), "the bot ended the stream") {
		t.Error("no log line for the bot's hang-up")
	}
	if params, _ := start["customParameters"].(map[string]any); auth != "Bearer bot-token" || params["caller"] != "alice" {
		t.Errorf("the bot got Authorization %q, start %v", auth, start)
	}
	if heard < 2 {
		t.Errorf("the bot heard the caller's tone for %.1fs", heard)
	}
	// The phone's own recording: the bot's tone, not its own.
	w := phone.Received()
	botTone, own := audio.ToneSeconds(w.Samples, w.Rate, botFreq, 0.2), audio.ToneSeconds(w.Samples, w.Rate, callerFreq, 0.2)
	if botTone < 2.5 || own > 0.2 {
		t.Errorf("the phone heard the bot's tone for %.1fs (of 3s), its own for %.1fs", botTone, own)
	}
	if markBack.Before(spokeEnd) {
		t.Errorf("the mark came back %v before the bot's last audio was sent", spokeEnd.Sub(markBack))
	}
	// Delays on the wire: the phone's first tone packet to the bot's first
	// tone frame; the bot's first tone frame to its first packet to the phone.
	in, ok1 := toVoxgate.FirstTone(callerFreq, t0)
	out, ok2 := toPhone.FirstTone(botFreq, spoke.Add(-20*time.Millisecond))
	if !ok1 || !ok2 {
		t.Fatalf("tones on the wire: to voxgate %v, to the phone %v", ok1, ok2)
	}
	t.Logf("added delay: phone -> bot %v, bot -> phone %v; mark back %v after the bot's last frame",
		firstHear.Sub(in).Round(time.Millisecond), out.Sub(spoke).Round(time.Millisecond), markBack.Sub(spokeEnd).Round(time.Millisecond))

	t.Run("audiosocket: the bot shifts the tone", func(t *testing.T) {
		const shifted = 900
		b := peertest.StartPhone(t, g.addr, peertest.Phone{User: "alice", Password: "alice-secret", Codec: "pcma", Tone: callerFreq, Dial: "6002"})
		deadline := time.Now().Add(15 * time.Second)
		for b.HeardSeconds(shifted, 0) < 2 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
		}
		b.Command("hangup", "")
		b.WaitEnded(5 * time.Second)
		b.Stop()
		heard, own := b.HeardSeconds(shifted, 0), b.HeardSeconds(callerFreq, 0)
		t.Logf("the phone heard the shifted tone for %.1fs, its own for %.1fs", heard, own)
		if heard < 2 || own > 0.2 {
			t.Errorf("the phone heard the shifted tone for %.1fs, its own for %.1fs", heard, own)
		}
	})
	t.Run("the bot refuses", func(t *testing.T) {
		b := peertest.StartBaresip(t, peertest.BaresipOptions{Account: peertest.Phone{User: "alice", Password: "alice-secret"}.Account(g.addr),
			Dial: "sip:6001@" + g.addr})
		if !b.WaitFor("503 Service Unavailable", 10*time.Second) { // not "503": a port or a time in baresip's output may hold it
			t.Fatalf("no 503:\n%s", b.Output())
		}
		if !strings.Contains(g.log.String(), "the bot cannot be reached") {
			t.Error("no log line for the refused stream")
		}
	})
}

// shiftBot is an AudioSocket application (a TCP server on loopback, as
// Asterisk dials one) that answers each 20 ms of the caller's tone with
// 20 ms of a 900 Hz tone, silence otherwise. It returns its address.
func shiftBot(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				gen := &audio.Tone{Rate: 8000, Freq: 900, Level: 0.3}
				in, out := make([]int16, 0, 160), make([]int16, 160)
				h := make([]byte, 3)
				for {
					if _, err := io.ReadFull(c, h); err != nil {
						return
					}
					p := make([]byte, int(h[1])<<8|int(h[2]))
					if _, err := io.ReadFull(c, p); err != nil || h[0] == 0x00 {
						return
					}
					if h[0] != 0x10 {
						continue
					}
					in = in[:0]
					for i := 0; i+1 < len(p); i += 2 {
						in = append(in, int16(binary.LittleEndian.Uint16(p[i:])))
					}
					clear(out)
					if audio.ToneSeconds(in, 8000, callerFreq, 0.2) > 0 {
						gen.Fill(out)
					}
					f := []byte{0x10, byte(len(out) * 2 >> 8), byte(len(out) * 2)}
					for _, v := range out {
						f = binary.LittleEndian.AppendUint16(f, uint16(v))
					}
					if _, err := c.Write(f); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// Headless Chromium (WebRTC, Opus at 48 kHz) calls a number routed to the
// Twilio-framing bot: the page hears the bot's tone, the bot the page's.
func TestChromiumTalksToBot(t *testing.T) {
	peertest.Need(t, "chromium", "ip")
	bot := newTwilioBot(t)
	ns := peertest.NewNetns(t)
	plan := fmt.Sprintf("contexts:\n  internal:\n    rules:\n      - number: \"6000\"\n        stream: {url: %q}\norigins:\n  web: internal\n", bot.url())
	base, uploads, _ := browserGatewayWithSIP(t, ns, false, func(cfg *Config) { cfg.Dialplan = writePlan(t, plan) })
	wav := filepath.Join(t.TempDir(), "mic.wav")
	const mic = 440
	peertest.ToneWAV(t, wav, 48000, mic, 30)
	chromium(t, ns, base, fmt.Sprintf("%s/test/call.html?user=alice&password=alice-secret&dial=6000&secs=6", base), wav)
	_, w := recording(t, uploads)
	heard := audio.ToneSeconds(w.Samples, w.Rate, botFreq, 0.2)
	bot.mu.Lock()
	botHeard := audio.ToneSeconds(bot.pcm, 8000, mic, 0.2)
	bot.mu.Unlock()
	t.Logf("the page heard the bot's tone for %.1fs, the bot the page's for %.1fs", heard, botHeard)
	if heard < 2 || botHeard < 2 {
		t.Fatalf("the page heard the bot's tone for %.1fs (of 3), the bot the page's for %.1fs", heard, botHeard)
	}
}
