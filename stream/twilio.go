package stream

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/voxgate/voxgate/audio"
)

// Errors of a bot's messages.
var (
	// ErrGarbage: a message that is not one of the framing's.
	ErrGarbage = errors.New("not a message of the framing")
	// ErrUnknownEvent: a well-formed message of an event voxgate does not
	// act on (ignored, as Twilio does).
	ErrUnknownEvent = errors.New("unknown event")
)

// Bot message kinds.
const (
	BotMedia      = "media"      // audio to play
	BotMark       = "mark"       // echo the name back once the audio before it has played
	BotClear      = "clear"      // drop the queued audio now
	BotClearMarks = "clearMarks" // forget the pending marks (raw)
	BotDisconnect = "disconnect" // end the stream cleanly (raw)
	BotTransfer   = "transfer"   // the call goes to To (voxgate's extension), the stream ends
)

// BotMessage is one message from a bot.
type BotMessage struct {
	Kind string
	Mark string  // BotMark: its name
	To   string  // BotTransfer: the number, routed in the stream rule's context
	PCM  []int16 // BotMedia: linear PCM at the stream's rate
}

// maxNumber bounds a transfer's number.
const maxNumber = 64

// twilioIn is the shape of a Twilio Media Streams message from a bot.
type twilioIn struct {
	Event string `json:"event"`
	Media struct {
		Payload string `json:"payload"`
	} `json:"media"`
	Mark struct {
		Name string `json:"name"`
	} `json:"mark"`
	Transfer struct {
		To string `json:"to"`
	} `json:"transfer"`
}

// checkNumber vets the number of a bot's transfer.
func checkNumber(to string) error {
	switch {
	case to == "":
		return fmt.Errorf("%w: a transfer without a number (to)", ErrGarbage)
	case len(to) > maxNumber:
		return fmt.Errorf("%w: a transfer number over %d bytes", ErrGarbage, maxNumber)
	case strings.ContainsFunc(to, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return fmt.Errorf("%w: a transfer number with control characters", ErrGarbage)
	}
	return nil
}

// ParseTwilio parses a Twilio Media Streams message from a bot. Media is
// decoded (base64 mu-law 8 kHz) into PCM appended to pcm[:0] (pass a buffer
// to reuse it).
func ParseTwilio(data []byte, pcm []int16) (BotMessage, error) {
	if pcm, ok := parseTwilioMedia(data, pcm); ok {
		return BotMessage{Kind: BotMedia, PCM: pcm}, nil
	}
	return parseTwilioSlow(data, pcm)
}

// parseTwilioSlow is ParseTwilio for every message, with encoding/json.
func parseTwilioSlow(data []byte, pcm []int16) (BotMessage, error) {
	var m twilioIn
	if err := json.Unmarshal(data, &m); err != nil {
		return BotMessage{}, fmt.Errorf("%w: %v", ErrGarbage, err)
	}
	switch m.Event {
	case BotMedia:
		n := base64.StdEncoding.DecodedLen(len(m.Media.Payload))
		ulaw := make([]byte, n)
		n, err := base64.StdEncoding.Decode(ulaw, []byte(m.Media.Payload))
		if err != nil {
			return BotMessage{}, fmt.Errorf("%w: media payload: %v", ErrGarbage, err)
		}
		return BotMessage{Kind: BotMedia, PCM: audio.DecodeUlaw(pcm[:0], ulaw[:n])}, nil
	case BotMark:
		if m.Mark.Name == "" {
			return BotMessage{}, fmt.Errorf("%w: a mark without a name", ErrGarbage)
		}
		return BotMessage{Kind: BotMark, Mark: m.Mark.Name}, nil
	case BotClear:
		return BotMessage{Kind: BotClear}, nil
	case BotTransfer:
		if err := checkNumber(m.Transfer.To); err != nil {
			return BotMessage{}, err
		}
		return BotMessage{Kind: BotTransfer, To: m.Transfer.To}, nil
	case "":
		return BotMessage{}, fmt.Errorf("%w: no event", ErrGarbage)
	}
	return BotMessage{}, fmt.Errorf("%w %q", ErrUnknownEvent, m.Event)
}

// twilioOut writes voxgate's side of Twilio Media Streams.
type twilioOut struct {
	sid     string // streamSid
	sidJSON []byte // sid as a JSON string
	callSid string
	seq     int64
	chunk   int64
	in, out bool   // the tracks sent
	ulaw    []byte // scratch
}

func (t *twilioOut) head(b []byte, event string) []byte {
	t.seq++
	b = append(b, `{"event":"`...)
	b = append(b, event...)
	b = append(b, `","sequenceNumber":"`...)
	b = strconv.AppendInt(b, t.seq, 10)
	b = append(b, `","streamSid":`...)
	return append(b, t.sidJSON...)
}

// appendJSON appends s as a JSON string.
func appendJSON(b []byte, s string) []byte {
	js, _ := json.Marshal(s)
	return append(b, js...)
}

func (t *twilioOut) connected(b []byte) []byte {
	return append(b, `{"event":"connected","protocol":"Call","version":"1.0.0"}`...)
}

func (t *twilioOut) start(b []byte, cfg *Config) []byte {
	b = t.head(b, "start")
	type mediaFormat struct {
		Encoding   string `json:"encoding"`
		SampleRate int    `json:"sampleRate"`
		Channels   int    `json:"channels"`
	}
	start := struct {
		AccountSid       string            `json:"accountSid"`
		StreamSid        string            `json:"streamSid"`
		CallSid          string            `json:"callSid"`
		From             string            `json:"from,omitempty"`
		To               string            `json:"to,omitempty"`
		Tracks           []string          `json:"tracks"`
		CustomParameters map[string]string `json:"customParameters"`
		MediaFormat      mediaFormat       `json:"mediaFormat"`
	}{"", t.sid, t.callSid, cfg.From, cfg.To, trackNames(t.in, t.out), cfg.Parameters, mediaFormat{"audio/x-mulaw", 8000, 1}}
	if start.CustomParameters == nil {
		start.CustomParameters = map[string]string{}
	}
	js, _ := json.Marshal(start)
	b = append(b, `,"start":`...)
	b = append(b, js...)
	return append(b, '}')
}

// trackNames are the start message's tracks.
func trackNames(in, out bool) []string {
	switch {
	case in && out:
		return []string{"inbound", "outbound"}
	case out:
		return []string{"outbound"}
	}
	return []string{"inbound"}
}

// media writes 20 ms (8 kHz PCM) of each track sent as a media message of
// its own (base64 mu-law), as Twilio does with both_tracks.
func (t *twilioOut) media(bufs *[2][]byte, in, out []int16) int {
	t.chunk++
	n := 0
	if t.in {
		bufs[n] = t.track(bufs[n][:0], "inbound", in)
		n++
	}
	if t.out {
		bufs[n] = t.track(bufs[n][:0], "outbound", out)
		n++
	}
	return n
}

func (t *twilioOut) track(b []byte, name string, pcm []int16) []byte {
	b = t.head(b, "media")
	b = append(b, `,"media":{"track":"`...)
	b = append(b, name...)
	b = append(b, `","chunk":"`...)
	b = strconv.AppendInt(b, t.chunk, 10)
	b = append(b, `","timestamp":"`...)
	b = strconv.AppendInt(b, (t.chunk-1)*20, 10)
	b = append(b, `","payload":"`...)
	t.ulaw = audio.EncodeUlaw(t.ulaw[:0], pcm)
	b = base64.StdEncoding.AppendEncode(b, t.ulaw)
	return append(b, `"}}`...)
}

func (t *twilioOut) dtmf(b []byte, digit rune) []byte {
	b = t.head(b, "dtmf")
	b = append(b, `,"dtmf":{"track":"inbound_track","digit":"`...)
	b = append(b, string(digit)...)
	return append(b, `"}}`...)
}

func (t *twilioOut) mark(b []byte, name string, _ bool) []byte {
	b = t.head(b, "mark")
	b = append(b, `,"mark":{"name":`...)
	b = appendJSON(b, name)
	return append(b, `}}`...)
}

func (t *twilioOut) stop(b []byte) []byte {
	b = t.head(b, "stop")
	b = append(b, `,"stop":{"accountSid":"","callSid":`...)
	b = appendJSON(b, t.callSid)
	return append(b, `}}`...)
}

func (t *twilioOut) sidString() string { return t.sid }
func (t *twilioOut) ctlText() bool     { return true }
func (t *twilioOut) mediaText() bool   { return true }

func (t *twilioOut) open(b []byte, cfg *Config) [][]byte {
	c := t.connected(b)
	return [][]byte{c, t.start(make([]byte, 0, 512), cfg)}
}
