package stream

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/voxgate/voxgate/audio"
)

// The raw framing is what FreeSWITCH mod_audio_fork and jambonz's listen
// verb send: one JSON text frame of metadata first, then binary frames of
// signed 16-bit little-endian PCM (two channels interleaved for stereo).
// From the bot: binary frames of PCM at the stream's rate to play, and
// JSON text commands with a "type": killAudio, mark, clearMarks,
// disconnect, playAudio, and voxgate's transfer.

// rawIn is the shape of a raw-framing command from a bot.
type rawIn struct {
	Type string `json:"type"`
	Data struct {
		Name             string `json:"name"`             // mark
		To               string `json:"to"`               // transfer
		AudioContentType string `json:"audioContentType"` // playAudio: "raw" or "wav"
		SampleRate       int    `json:"sampleRate"`       // playAudio, raw: the content's rate
		AudioContent     string `json:"audioContent"`     // playAudio: base64
	} `json:"data"`
}

// ParseRaw parses a raw-framing text command from a bot, for a stream at
// rate. playAudio's content is decoded (base64 L16, or a WAV file) and
// resampled to rate into PCM appended to pcm[:0].
func ParseRaw(data []byte, rate int, pcm []int16) (BotMessage, error) {
	var m rawIn
	if err := json.Unmarshal(data, &m); err != nil {
		return BotMessage{}, fmt.Errorf("%w: %v", ErrGarbage, err)
	}
	switch m.Type {
	case "killAudio":
		return BotMessage{Kind: BotClear}, nil
	case "mark":
		if m.Data.Name == "" {
			return BotMessage{}, fmt.Errorf("%w: a mark without a name", ErrGarbage)
		}
		return BotMessage{Kind: BotMark, Mark: m.Data.Name}, nil
	case "clearMarks":
		return BotMessage{Kind: BotClearMarks}, nil
	case "disconnect":
		return BotMessage{Kind: BotDisconnect}, nil
	case "transfer":
		if err := checkNumber(m.Data.To); err != nil {
			return BotMessage{}, err
		}
		return BotMessage{Kind: BotTransfer, To: m.Data.To}, nil
	case "playAudio":
		return playAudio(&m, rate, pcm)
	case "":
		return BotMessage{}, fmt.Errorf("%w: no type", ErrGarbage)
	}
	return BotMessage{}, fmt.Errorf("%w %q", ErrUnknownEvent, m.Type)
}

// playAudio decodes a playAudio command's content.
func playAudio(m *rawIn, rate int, pcm []int16) (BotMessage, error) {
	content, err := base64.StdEncoding.DecodeString(m.Data.AudioContent)
	if err != nil {
		return BotMessage{}, fmt.Errorf("%w: playAudio content: %v", ErrGarbage, err)
	}
	from := m.Data.SampleRate
	var samples []int16
	switch strings.ToLower(m.Data.AudioContentType) {
	case "raw", "":
		if len(content)%2 != 0 {
			return BotMessage{}, fmt.Errorf("%w: playAudio raw content of an odd length", ErrGarbage)
		}
		samples = DecodeL16(make([]int16, 0, len(content)/2), content)
		if from == 0 {
			from = rate
		}
	case "wav", "wave":
		w, err := audio.ReadWAV(bytes.NewReader(content))
		if err != nil {
			return BotMessage{}, fmt.Errorf("%w: playAudio WAV: %v", ErrGarbage, err)
		}
		samples, from = w.Samples, w.Rate
	default:
		return BotMessage{}, fmt.Errorf("%w: playAudio content type %q (want raw or wav)", ErrGarbage, m.Data.AudioContentType)
	}
	out, err := resample(pcm[:0], samples, from, rate)
	if err != nil {
		return BotMessage{}, fmt.Errorf("%w: playAudio: %v", ErrGarbage, err)
	}
	return BotMessage{Kind: BotMedia, PCM: out}, nil
}

// resample converts pcm at from to rate, appending to dst.
func resample(dst, pcm []int16, from, rate int) ([]int16, error) {
	if from == rate {
		return append(dst, pcm...), nil
	}
	frame := from / 50
	if from <= 0 || from%50 != 0 || from > 192000 {
		return nil, fmt.Errorf("sample rate %d", from)
	}
	rs, err := audio.NewResampler(from, rate, frame)
	if err != nil {
		return nil, err
	}
	chunk := make([]int16, frame)
	for off := 0; off < len(pcm); off += frame {
		n := copy(chunk, pcm[off:])
		clear(chunk[n:])
		dst = rs.Process(dst, chunk)
	}
	return dst, nil
}

// DecodeL16 appends the little-endian 16-bit samples of b to dst.
func DecodeL16(dst []int16, b []byte) []int16 {
	for i := 0; i+1 < len(b); i += 2 {
		dst = append(dst, int16(binary.LittleEndian.Uint16(b[i:])))
	}
	return dst
}

// AppendL16 appends pcm as little-endian 16-bit samples.
func AppendL16(b []byte, pcm []int16) []byte {
	for _, v := range pcm {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

// rawOut writes voxgate's side of the raw framing.
type rawOut struct {
	sid     string
	in, out bool // the tracks sent: both is stereo, inbound left
}

// open is the metadata frame: jambonz's fields (callSid, from, to,
// sampleRate, mixType), the parameters (as jambonz merges its metadata,
// and again under customParameters), and voxgate's own.
func (o *rawOut) open(_ []byte, cfg *Config) [][]byte {
	meta := map[string]any{}
	for k, v := range cfg.Parameters {
		meta[k] = v
	}
	params := cfg.Parameters
	if params == nil {
		params = map[string]string{}
	}
	mix, channels := "mono", 1
	if o.in && o.out {
		mix, channels = "stereo", 2
	}
	for k, v := range map[string]any{
		"event": "start", "streamSid": o.sid, "callSid": cfg.CallID, "from": cfg.From, "to": cfg.To,
		"sampleRate": cfg.Rate, "mixType": mix, "channels": channels, "tracks": trackNames(o.in, o.out),
		"encoding": "L16", "byteOrder": "little-endian", "customParameters": params,
	} {
		meta[k] = v
	}
	js, _ := json.Marshal(meta)
	return [][]byte{js}
}

func (o *rawOut) media(bufs *[2][]byte, in, out []int16) int {
	b := bufs[0][:0]
	switch {
	case o.in && o.out:
		for i := range in {
			b = binary.LittleEndian.AppendUint16(b, uint16(in[i]))
			b = binary.LittleEndian.AppendUint16(b, uint16(out[i]))
		}
	case o.out:
		b = AppendL16(b, out)
	default:
		b = AppendL16(b, in)
	}
	bufs[0] = b
	return 1
}

// dtmf is jambonz's digit event.
func (o *rawOut) dtmf(b []byte, d rune) []byte {
	b = append(b, `{"event":"dtmf","dtmf":"`...)
	b = append(b, string(d)...)
	return append(b, `","duration":"100"}`...)
}

// mark is jambonz's mark event: playout once the audio before it played,
// cleared when a killAudio dropped it.
func (o *rawOut) mark(b []byte, name string, cleared bool) []byte {
	b = append(b, `{"type":"mark","data":{"name":`...)
	b = appendJSON(b, name)
	ev := "playout"
	if cleared {
		ev = "cleared"
	}
	b = append(b, `,"event":`...)
	b = strconv.AppendQuote(b, ev)
	return append(b, `}}`...)
}

func (o *rawOut) stop([]byte) []byte { return nil } // the WebSocket close ends it, as with jambonz

func (o *rawOut) sidString() string { return o.sid }
func (o *rawOut) ctlText() bool     { return true }
func (o *rawOut) mediaText() bool   { return false }
