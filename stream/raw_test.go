package stream

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/voxgate/voxgate/audio"
)

// rawBot is a test bot of the raw framing (as for mod_audio_fork or
// jambonz listen): it keeps the text messages and the binary audio.
type rawBot struct {
	srv   *httptest.Server
	conns chan *websocket.Conn
	mu    sync.Mutex
	texts []map[string]any
	audio []byte
	first string // "text" or "binary": the first message's kind
	got   chan struct{}
}

func newRawBot(t *testing.T) *rawBot {
	b := &rawBot{conns: make(chan *websocket.Conn, 1), got: make(chan struct{}, 1)}
	up := websocket.Upgrader{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		b.conns <- c
		for {
			typ, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			b.mu.Lock()
			if b.first == "" {
				b.first = map[int]string{websocket.TextMessage: "text", websocket.BinaryMessage: "binary"}[typ]
			}
			if typ == websocket.BinaryMessage {
				b.audio = append(b.audio, data...)
			} else {
				var m map[string]any
				_ = json.Unmarshal(data, &m)
				b.texts = append(b.texts, m)
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

func (b *rawBot) wait(t *testing.T, what string, f func() bool) {
	t.Helper()
	waitFor(t, what, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return f() })
}

func rawDial(t *testing.T, b *rawBot, cfg Config) (*Stream, *websocket.Conn) {
	t.Helper()
	cfg.URL, cfg.Framing = "ws"+strings.TrimPrefix(b.srv.URL, "http"), Raw
	s, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, <-b.conns
}

func toneAt(rate int, freq float64, n int) []int16 {
	p := make([]int16, n)
	(&audio.Tone{Rate: rate, Freq: freq, Level: 0.3}).Fill(p)
	return p
}

// A raw stream at 16 kHz, stereo: the metadata frame comes first (with
// jambonz's fields), then binary L16 frames with the caller on the left
// and what it hears on the right; a digit is jambonz's dtmf event.
func TestRawStereoWideband(t *testing.T) {
	b := newRawBot(t)
	s, _ := rawDial(t, b, Config{Rate: 16000, Tracks: Both, CallID: "call-1", From: "alice", To: "600", Parameters: map[string]string{"lang": "en"}})
	if s.Rate() != 16000 {
		t.Fatalf("rate %d", s.Rate())
	}
	left, right := toneAt(16000, 6000, 16000), toneAt(16000, 1000, 16000)
	for i := 0; i < len(left); i += 320 { // in steps of 10 frames: the queue to a slow bot holds 16
		s.Put(left[i:i+320], right[i:i+320])
		if n := i/320 + 1; n%10 == 0 {
			b.wait(t, "the frames so far", func() bool { return len(b.audio) >= n*4*320 })
		}
	}
	s.DTMF('5')
	b.wait(t, "a second of audio and the digit", func() bool {
		return len(b.audio) >= 4*16000 && len(b.texts) >= 2
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	start := b.texts[0]
	if b.first != "text" || start["sampleRate"] != 16000.0 || start["mixType"] != "stereo" || start["callSid"] != "call-1" ||
		start["lang"] != "en" || start["from"] != "alice" || start["event"] != "start" {
		t.Fatalf("first %s, start %v", b.first, start)
	}
	if d := b.texts[1]; d["event"] != "dtmf" || d["dtmf"] != "5" {
		t.Fatalf("dtmf %v", d)
	}
	pcm := DecodeL16(nil, b.audio)
	l, r := make([]int16, 0, len(pcm)/2), make([]int16, 0, len(pcm)/2)
	for i := 0; i+1 < len(pcm); i += 2 {
		l, r = append(l, pcm[i]), append(r, pcm[i+1])
	}
	if audio.ToneSeconds(l, 16000, 6000, 0.2) < 0.9 || audio.ToneSeconds(l, 16000, 1000, 0.2) > 0 ||
		audio.ToneSeconds(r, 16000, 1000, 0.2) < 0.9 || audio.ToneSeconds(r, 16000, 6000, 0.2) > 0 {
		t.Fatal("the channels do not carry the caller left, what it hears right")
	}
}

// From the bot: binary L16 is played at the stream's rate; a mark comes
// back as playout once played, killAudio drops the queue and its marks
// come back as cleared; playAudio at another rate is resampled;
// disconnect ends the stream cleanly.
func TestRawFromTheBot(t *testing.T) {
	b := newRawBot(t)
	s, c := rawDial(t, b, Config{Rate: 16000})
	send := func(typ int, m []byte) {
		if err := c.WriteMessage(typ, m); err != nil {
			t.Fatal(err)
		}
	}
	send(websocket.BinaryMessage, AppendL16(nil, toneAt(16000, 5000, 3200)))
	send(websocket.TextMessage, []byte(`{"type":"mark","data":{"name":"one"}}`))
	waitFor(t, "the bot's audio queued", func() bool { return s.Queued() == 3200 })
	dst := make([]int16, 320)
	var played []int16
	for range 10 {
		s.Take(dst)
		played = append(played, dst...)
	}
	if audio.ToneSeconds(played, 16000, 5000, 0.2) < 0.19 {
		t.Fatal("the bot's 5 kHz tone did not play")
	}
	b.wait(t, "the mark played", func() bool {
		return len(b.texts) >= 2 && b.texts[1]["type"] == "mark" && b.texts[1]["data"].(map[string]any)["event"] == "playout"
	})
	send(websocket.BinaryMessage, AppendL16(nil, toneAt(16000, 5000, 3200)))
	send(websocket.TextMessage, []byte(`{"type":"mark","data":{"name":"two"}}`))
	send(websocket.TextMessage, []byte(`{"type":"killAudio"}`))
	b.wait(t, "the mark cleared", func() bool {
		return len(b.texts) >= 3 && b.texts[2]["data"].(map[string]any)["event"] == "cleared" && b.texts[2]["data"].(map[string]any)["name"] == "two"
	})
	if s.Queued() != 0 {
		t.Fatalf("killAudio left %d samples", s.Queued())
	}
	// 100 ms at 8 kHz in a playAudio: 1600 samples at 16 kHz.
	content := base64.StdEncoding.EncodeToString(AppendL16(nil, toneAt(8000, 700, 800)))
	send(websocket.TextMessage, []byte(`{"type":"playAudio","data":{"audioContentType":"raw","sampleRate":8000,"audioContent":"`+content+`"}}`))
	waitFor(t, "playAudio queued at 16 kHz", func() bool { return s.Queued() == 1600 })
	send(websocket.TextMessage, []byte(`{"type":"disconnect"}`))
	<-s.Done()
	if s.Err() != nil {
		t.Fatalf("disconnect ended the stream with %v", s.Err())
	}
}

// A transfer message (voxgate's extension, in raw and twilio framings)
// ends the stream cleanly with the number.
func TestTransferMessage(t *testing.T) {
	t.Run("raw", func(t *testing.T) {
		b := newRawBot(t)
		s, c := rawDial(t, b, Config{})
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"transfer","data":{"to":"2000"}}`))
		<-s.Done()
		if s.Err() != nil || s.TransferTo() != "2000" {
			t.Fatalf("err %v, transfer %q", s.Err(), s.TransferTo())
		}
	})
	t.Run("twilio", func(t *testing.T) {
		b := newBot(t)
		s, c := dial(t, b)
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"event":"transfer","streamSid":"x","transfer":{"to":"echo"}}`))
		<-s.Done()
		if s.Err() != nil || s.TransferTo() != "echo" {
			t.Fatalf("err %v, transfer %q", s.Err(), s.TransferTo())
		}
	})
}

// Twilio with both tracks: two media messages per 20 ms, inbound and
// outbound, and the start message lists both.
func TestTwilioBothTracks(t *testing.T) {
	b := newBot(t)
	s, err := Dial(context.Background(), Config{URL: b.url(), Tracks: Both})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, out := tone(600, 160), tone(1200, 160)
	for range 5 {
		s.Put(in, out)
	}
	b.wait(t, "ten media messages", func(msgs []map[string]any, _ []int16) bool { return len(events(msgs, "media")) >= 10 })
	b.mu.Lock()
	defer b.mu.Unlock()
	tracks := events(b.msgs, "start")[0]["start"].(map[string]any)["tracks"].([]any)
	if len(tracks) != 2 || tracks[0] != "inbound" || tracks[1] != "outbound" {
		t.Fatalf("tracks %v", tracks)
	}
	var ins, outs []int16
	for _, m := range events(b.msgs, "media") {
		md := m["media"].(map[string]any)
		p, _ := base64.StdEncoding.DecodeString(md["payload"].(string))
		if md["track"] == "inbound" {
			ins = audio.DecodeUlaw(ins, p)
		} else {
			outs = audio.DecodeUlaw(outs, p)
		}
	}
	if audio.Goertzel(ins, 8000, 600) < 10*audio.Goertzel(ins, 8000, 1200) || audio.Goertzel(outs, 8000, 1200) < 10*audio.Goertzel(outs, 8000, 600) {
		t.Fatal("the tracks are mixed up")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{URL: "ws://b", Framing: Raw, Rate: 44100},
		{URL: "ws://b", Rate: 16000},
		{URL: "tcp://b:1", Framing: AudioSocket, Tracks: Both},
		{URL: "ws://b", Tracks: "left"},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (&Config{URL: "ws://b", Framing: Raw, Rate: 48000, Tracks: Both}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseRaw(t *testing.T) {
	wav := &bytes.Buffer{}
	_ = audio.WriteWAV(wav, 8000, make([]int16, 160))
	for in, want := range map[string]BotMessage{
		`{"type":"killAudio"}`:                     {Kind: BotClear},
		`{"type":"mark","data":{"name":"m1"}}`:     {Kind: BotMark, Mark: "m1"},
		`{"type":"clearMarks"}`:                    {Kind: BotClearMarks},
		`{"type":"disconnect"}`:                    {Kind: BotDisconnect},
		`{"type":"transfer","data":{"to":"2000"}}`: {Kind: BotTransfer, To: "2000"},
		`{"type":"playAudio","data":{"audioContentType":"wav","audioContent":"` + base64.StdEncoding.EncodeToString(wav.Bytes()) + `"}}`: {Kind: BotMedia},
	} {
		m, err := ParseRaw([]byte(in), 16000, nil)
		if err != nil || m.Kind != want.Kind || m.Mark != want.Mark || m.To != want.To {
			t.Errorf("%s: %+v, %v", in, m, err)
		}
		if m.Kind == BotMedia && len(m.PCM) != 320 {
			t.Errorf("a 20 ms WAV at 8 kHz gave %d samples at 16 kHz", len(m.PCM))
		}
	}
	for _, in := range []string{`{`, `{"type":""}`, `{"type":"mark"}`, `{"type":"transfer","data":{}}`,
		`{"type":"playAudio","data":{"audioContent":"AAA"}}`, `{"type":"playAudio","data":{"audioContentType":"mp3","audioContent":""}}`,
		`{"type":"playAudio","data":{"sampleRate":7,"audioContent":"AAAA"}}`} {
		if _, err := ParseRaw([]byte(in), 8000, nil); !errors.Is(err, ErrGarbage) {
			t.Errorf("%s: %v", in, err)
		}
	}
	if _, err := ParseRaw([]byte(`{"type":"transcription","data":{}}`), 8000, nil); !errors.Is(err, ErrUnknownEvent) {
		t.Errorf("transcription: %v", err)
	}
}

func FuzzParseRaw(f *testing.F) {
	for _, s := range []string{`{"type":"killAudio"}`, `{"type":"mark","data":{"name":"m1"}}`, `{"type":"transfer","data":{"to":"2000"}}`,
		`{"type":"playAudio","data":{"audioContentType":"raw","sampleRate":16000,"audioContent":"AAAA"}}`,
		`{"type":"playAudio","data":{"audioContentType":"raw","sampleRate":48000,"audioContent":"AAAAAAAA"}}`, `{"type":"disconnect"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseRaw(data, 16000, nil)
		if err != nil {
			return
		}
		switch m.Kind {
		case BotMedia, BotClear, BotClearMarks, BotDisconnect:
		case BotMark:
			if m.Mark == "" {
				t.Fatal("a mark without a name")
			}
		case BotTransfer:
			if checkNumber(m.To) != nil {
				t.Fatalf("a bad number %q", m.To)
			}
		default:
			t.Fatalf("kind %q", m.Kind)
		}
	})
}

// A bot that closes while voxgate is writing ends the stream cleanly: a
// write that meets the close being answered is not a failure (a race the
// e2e test once lost).
func TestBotCloseWhileWriting(t *testing.T) {
	for range 20 {
		b := newBot(t)
		s, c := dial(t, b)
		stop := make(chan struct{})
		go func() {
			f := tone(600, FrameSamples)
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.Put(f, nil)
				time.Sleep(time.Millisecond)
			}
		}()
		time.Sleep(5 * time.Millisecond)
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
		<-s.Done()
		close(stop)
		if err := s.Err(); err != nil {
			t.Fatalf("the bot's close ended the stream with %v", err)
		}
	}
}
