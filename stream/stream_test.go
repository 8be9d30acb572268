package stream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voxgate/voxgate/audio"
)

// bot is a test bot: a WebSocket server on loopback that records what it
// gets and lets the test send.
type bot struct {
	srv    *httptest.Server
	header http.Header
	conns  chan *websocket.Conn
	mu     sync.Mutex
	msgs   []map[string]any
	pcm    []int16
	got    chan struct{}
}

func newBot(t *testing.T) *bot {
	b := &bot{conns: make(chan *websocket.Conn, 1), got: make(chan struct{}, 1)}
	up := websocket.Upgrader{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.header = r.Header.Clone()
		b.mu.Unlock()
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		b.conns <- c
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(data, &m) != nil {
				continue
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, m)
			if m["event"] == "media" {
				p, _ := base64.StdEncoding.DecodeString(m["media"].(map[string]any)["payload"].(string))
				b.pcm = audio.DecodeUlaw(b.pcm, p)
			}
			b.mu.Unlock()
			select {
			case b.got <- struct{}{}:
			default:
			}
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *bot) url() string { return "ws" + strings.TrimPrefix(b.srv.URL, "http") }

// wait waits until f holds over what the bot got.
func (b *bot) wait(t *testing.T, what string, f func(msgs []map[string]any, pcm []int16) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		b.mu.Lock()
		ok := f(b.msgs, b.pcm)
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-b.got:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the bot never got %s", what)
		}
	}
}

func events(msgs []map[string]any, ev string) []map[string]any {
	var out []map[string]any
	for _, m := range msgs {
		if m["event"] == ev {
			out = append(out, m)
		}
	}
	return out
}

func botMedia(pcm []int16) []byte {
	js, _ := json.Marshal(map[string]any{"event": "media", "streamSid": "x", "media": map[string]any{"payload": base64.StdEncoding.EncodeToString(audio.EncodeUlaw(nil, pcm))}})
	return js
}

func tone(freq float64, n int) []int16 {
	p := make([]int16, n)
	(&audio.Tone{Rate: 8000, Freq: freq, Level: 0.3}).Fill(p)
	return p
}

func dial(t *testing.T, b *bot) (*Stream, *websocket.Conn) {
	t.Helper()
	s, err := Dial(context.Background(), Config{URL: b.url(), Headers: map[string]string{"Authorization": "Bearer t0k"},
		Parameters: map[string]string{"lang": "en"}, CallID: "call-1", From: "alice", To: "600"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	select {
	case c := <-b.conns:
		return s, c
	case <-time.After(10 * time.Second):
		t.Fatal("the bot got no connection")
	}
	return nil, nil
}

func TestTwilioBothWays(t *testing.T) {
	b := newBot(t)
	s, c := dial(t, b)
	b.mu.Lock()
	auth := b.header.Get("Authorization")
	b.mu.Unlock()
	if auth != "Bearer t0k" {
		t.Fatalf("Authorization header %q", auth)
	}
	b.wait(t, "connected and start", func(m []map[string]any, _ []int16) bool {
		return len(events(m, "start")) == 1 && len(events(m, "connected")) == 1
	})
	b.mu.Lock()
	start := events(b.msgs, "start")[0]["start"].(map[string]any)
	b.mu.Unlock()
	if start["callSid"] != "call-1" || start["customParameters"].(map[string]any)["lang"] != "en" || start["mediaFormat"].(map[string]any)["encoding"] != "audio/x-mulaw" {
		t.Fatalf("start %v", start)
	}
	// The caller's 1 kHz tone reaches the bot.
	in := tone(1000, 8000)
	for i := 0; i < len(in); i += FrameSamples {
		s.Put(in[i:i+FrameSamples], nil)
		time.Sleep(time.Millisecond) // a slow bot would drop frames otherwise; the drop is tested below
	}
	s.DTMF('5')
	b.wait(t, "the caller's tone and the digit", func(m []map[string]any, pcm []int16) bool {
		d := events(m, "dtmf")
		return len(pcm) >= 4000 && len(d) == 1 && d[0]["dtmf"].(map[string]any)["digit"] == "5"
	})
	b.mu.Lock()
	got := b.pcm[len(b.pcm)-4000:]
	b.mu.Unlock()
	if audio.Goertzel(got, 8000, 1000) < 100*audio.Goertzel(got, 8000, 1500) {
		t.Fatal("the bot did not hear the 1 kHz tone")
	}
	// The bot's 600 Hz tone plays, then its mark comes back.
	if err := c.WriteMessage(websocket.TextMessage, botMedia(tone(600, 1600))); err != nil {
		t.Fatal(err)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"event":"mark","streamSid":"x","mark":{"name":"said-it"}}`))
	waitFor(t, "the mark queued", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.marks) == 1 })
	out := make([]int16, 0, 1600)
	f := make([]int16, FrameSamples)
	for i := 0; i < 10; i++ {
		if !s.Take(f) {
			t.Fatalf("frame %d: nothing to play", i)
		}
		out = append(out, f...)
		b.mu.Lock()
		early := len(events(b.msgs, "mark"))
		b.mu.Unlock()
		if i < 9 && early > 0 {
			t.Fatalf("the mark came back after %d of 10 frames", i+1)
		}
	}
	if audio.Goertzel(out, 8000, 600) < 100*audio.Goertzel(out, 8000, 1000) {
		t.Fatal("the bot's tone did not play")
	}
	if s.Take(f) {
		t.Fatal("more audio than the bot sent")
	}
	b.wait(t, "its mark back", func(m []map[string]any, _ []int16) bool {
		k := events(m, "mark")
		return len(k) == 1 && k[0]["mark"].(map[string]any)["name"] == "said-it"
	})
	// Close says stop.
	s.Close()
	b.wait(t, "stop", func(m []map[string]any, _ []int16) bool { return len(events(m, "stop")) == 1 })
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClear: clear drops everything queued at once: the very next frame
// is silence, and the pending marks come back.
func TestClear(t *testing.T) {
	b := newBot(t)
	s, c := dial(t, b)
	_ = c.WriteMessage(websocket.TextMessage, botMedia(tone(600, 8000*5)))
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"event":"mark","mark":{"name":"m1"}}`))
	waitFor(t, "the audio queued", func() bool { return s.Queued() == 8000*5 })
	f := make([]int16, FrameSamples)
	if !s.Take(f) {
		t.Fatal("nothing to play")
	}
	cleared := Totals().Cleared
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"event":"clear","streamSid":"x"}`))
	waitFor(t, "the clear", func() bool { return Totals().Cleared > cleared })
	if s.Take(f) {
		t.Fatal("audio played after clear")
	}
	b.wait(t, "the cleared mark", func(m []map[string]any, _ []int16) bool { return len(events(m, "mark")) == 1 })
}

func TestSlowBotDropsOldest(t *testing.T) {
	s := &Stream{frame: FrameSamples, rate: 8000, inTrack: true, send: make([]int16, 2*sendDepth*FrameSamples), wake: make(chan struct{}, 1)}
	before := Totals().SentDropped
	f := make([]int16, FrameSamples)
	for i := range sendDepth + 5 {
		f[0] = int16(i)
		s.Put(f, nil)
	}
	if s.sendN != sendDepth || s.send[2*s.sendHead*s.frame] != 5 || Totals().SentDropped-before != 5 {
		t.Fatalf("queued %d, oldest %d, dropped %d", s.sendN, s.send[2*s.sendHead*s.frame], Totals().SentDropped-before)
	}
	// The play queue keeps the newest audio too.
	s.play, s.playMax = make([]int16, 400), 400
	s.enqueue(make([]int16, 300))
	p := make([]int16, 300)
	p[299] = 7
	s.enqueue(p)
	if s.playN != 400 || s.play[(s.playHead+399)%400] != 7 {
		t.Fatalf("play queue %d", s.playN)
	}
}

func TestRefused(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	_, err := Dial(context.Background(), Config{URL: "ws://" + addr + "/bot"})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("closed port: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) }))
	defer srv.Close()
	_, err = Dial(context.Background(), Config{URL: "ws" + strings.TrimPrefix(srv.URL, "http")})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("403: %v", err)
	}
	if err := (&Config{URL: "http://x"}).Validate(); err == nil {
		t.Fatal("http:// accepted")
	}
}

func TestBotGoesAway(t *testing.T) {
	t.Run("clean close", func(t *testing.T) {
		b := newBot(t)
		s, c := dial(t, b)
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
		<-s.Done()
		if s.Err() != nil {
			t.Fatal(s.Err())
		}
	})
	t.Run("dropped", func(t *testing.T) {
		b := newBot(t)
		s, c := dial(t, b)
		c.UnderlyingConn().Close()
		<-s.Done()
		if s.Err() == nil {
			t.Fatal("no error")
		}
	})
	t.Run("garbage then oversized", func(t *testing.T) {
		b := newBot(t)
		s, c := dial(t, b)
		g := Totals().Garbage
		_ = c.WriteMessage(websocket.TextMessage, []byte("hello?"))
		_ = c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
		waitFor(t, "garbage counted", func() bool { return Totals().Garbage >= g+2 })
		select {
		case <-s.Done():
			t.Fatal("garbage ended the stream")
		default:
		}
		_ = c.WriteMessage(websocket.TextMessage, make([]byte, MaxMessage+1))
		<-s.Done()
		if s.Err() == nil || !strings.Contains(s.Err().Error(), "over") {
			t.Fatal(s.Err())
		}
	})
}

func FuzzParseTwilio(f *testing.F) {
	f.Add([]byte(`{"event":"media","media":{"payload":"//8A"}}`))
	f.Add([]byte(`{"event":"mark","mark":{"name":"x"}}`))
	f.Add([]byte(`{"event":"clear"}`))
	f.Add([]byte(`{"event":"media","media":{"payload":"!!"}}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"event":"transfer","transfer":{"to":"2000"}}`))
	f.Add([]byte(`{"event":"media","media":{"track":"outbound","chunk":"2","timestamp":"5","payload":"//8A//8A"},"streamSid":"MZ1","x":[1,{"a":"\\"}]}`))
	f.Add([]byte(`{"event":"media","media":{"payload":"AAAA"},"media":{}}`))
	f.Add([]byte(`{"Event":"media","media":{"payload":"AAAA"}}`))
	f.Add([]byte(`{"event":"media","media":{"payload":"AA=="},"media":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseTwilio(data, nil)
		// The fast way for media must say what encoding/json says.
		if fast, ok := parseTwilioMedia(data, nil); ok {
			slow, serr := parseTwilioSlow(data, nil)
			if serr != nil || slow.Kind != BotMedia || !slices.Equal(fast, slow.PCM) {
				t.Fatalf("fast media %v, general %+v %v", fast, slow, serr)
			}
		}
		if err != nil {
			if m.Kind != "" {
				t.Fatal("a kind with an error")
			}
			return
		}
		switch m.Kind {
		case BotMedia, BotClear:
		case BotTransfer:
			if checkNumber(m.To) != nil {
				t.Fatalf("a bad number %q", m.To)
			}
		case BotMark:
			if m.Mark == "" {
				t.Fatal("a mark without a name")
			}
		default:
			t.Fatalf("kind %q", m.Kind)
		}
	})
}

// TestMediaPathAllocs: what runs on the media clock (Put, Take) and the
// encoding of each frame for the bot allocate nothing.
func TestMediaPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := &Stream{frame: FrameSamples, rate: 8000, inTrack: true, send: make([]int16, 2*sendDepth*FrameSamples), wake: make(chan struct{}, 1), play: make([]int16, 8000), ctl: make([]ctlMsg, 0, ctlDepth), vad: audio.NewVAD(audio.VADConfig{})}
	f := make([]int16, FrameSamples)
	pcm := make([]int16, 800)
	if n := testing.AllocsPerRun(200, func() {
		s.Put(f, nil)
		s.enqueue(pcm[:FrameSamples])
		s.Take(f)
	}); n != 0 {
		t.Errorf("Put/Take: %.1f allocations per frame", n)
	}
	tw := &twilioOut{sid: "MZ1", sidJSON: []byte(`"MZ1"`), in: true, out: true, ulaw: make([]byte, 0, FrameSamples)}
	as := newAudioSocketOut(false)
	raw := &rawOut{in: true, out: true}
	bufs := [2][]byte{make([]byte, 0, 4096), make([]byte, 0, 4096)}
	wide := make([]int16, 960)
	if n := testing.AllocsPerRun(200, func() {
		tw.media(&bufs, f, f)
		as.media(&bufs, f, f)
		raw.media(&bufs, wide, wide)
	}); n != 0 {
		t.Errorf("encoding a frame: %.1f allocations", n)
	}
}

// With barge-in, the caller starting to talk drops the bot's queued audio
// within the voice detector's onset (40 ms), and the pending marks come back.
func TestBargeIn(t *testing.T) {
	s := &Stream{frame: FrameSamples, rate: 8000, inTrack: true, send: make([]int16, 2*sendDepth*FrameSamples), wake: make(chan struct{}, 1), play: make([]int16, 8000*10), ctl: make([]ctlMsg, 0, ctlDepth), vad: audio.NewVAD(audio.VADConfig{})}
	s.enqueue(tone(600, 8000*5))
	s.addMark("m")
	quiet := make([]int16, FrameSamples)
	for range 25 { // the caller is silent: the bot's audio stays
		s.Put(quiet, nil)
	}
	if s.Queued() != 8000*5 {
		t.Fatalf("silence dropped the queue: %d left", s.Queued())
	}
	speech := tone(300, FrameSamples*3)
	for i := 0; i < 3 && s.Queued() > 0; i++ {
		s.Put(speech[i*FrameSamples:(i+1)*FrameSamples], nil)
	}
	if s.Queued() != 0 {
		t.Fatal("the caller's speech did not clear the bot's audio within 60 ms")
	}
	if len(s.ctl) != 1 || s.ctl[0].mark != "m" {
		t.Fatalf("pending marks: %+v", s.ctl)
	}
}

// A bot's media message, as Twilio's own libraries send it, is read with
// no allocation.
func TestParseTwilioMediaAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are counted without -race (make test runs the Allocs tests so)")
	}
	msg := twilioMediaMessage()
	pcm := make([]int16, 0, 320)
	if n := testing.AllocsPerRun(200, func() {
		m, err := ParseTwilio(msg, pcm)
		if err != nil || len(m.PCM) != FrameSamples {
			t.Fatal(err, len(m.PCM))
		}
	}); n != 0 {
		t.Fatalf("%v allocations per media message, want 0", n)
	}
}

func twilioMediaMessage() []byte {
	ulaw := make([]byte, FrameSamples)
	for i := range ulaw {
		ulaw[i] = byte(i * 7)
	}
	return []byte(`{"event":"media","streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0","media":{"payload":"` + base64.StdEncoding.EncodeToString(ulaw) + `"}}`)
}

// BenchmarkParseTwilioMedia is a micro-benchmark of reading one media
// message from a bot: the fast way, and encoding/json's.
func BenchmarkParseTwilioMedia(b *testing.B) {
	msg := twilioMediaMessage()
	pcm := make([]int16, 0, 320)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ParseTwilio(msg, pcm)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = parseTwilioSlow(msg, pcm)
		}
	})
}

// The play queue starts small and grows, in order, when a bot sends ahead.
func TestPlayQueueGrows(t *testing.T) {
	s := &Stream{playMax: 10000}
	var next int16
	put := func(n int) {
		p := make([]int16, n)
		for i := range p {
			next++
			p[i] = next
		}
		s.enqueue(p)
	}
	put(160)
	if len(s.play) != 2048 {
		t.Fatalf("ring %d, want 2048 to start", len(s.play))
	}
	got := make([]int16, 100)
	s.Take(got) // the head moves: the ring wraps when it grows
	put(1900)   // wraps
	put(3000)   // grows to 8192
	put(5100)   // grows to the most, 10000, and drops the oldest 60
	if len(s.play) != 10000 || s.playN != 10000 {
		t.Fatalf("ring %d holding %d, want 10000 full", len(s.play), s.playN)
	}
	want := next - 10000 + 1
	for s.playN > 0 {
		s.Take(got)
		for _, v := range got {
			if v != want {
				t.Fatalf("sample %d, want %d", v, want)
			}
			want++
		}
	}
}
