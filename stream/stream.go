// Package stream sends a call's or a room's audio to a bot over a WebSocket
// and plays what the bot sends back: media streams in the framing of Twilio
// Media Streams (JSON text frames, base64 mu-law 8 kHz), Asterisk
// AudioSocket (binary frames, signed linear 8 kHz) or raw L16 as FreeSWITCH
// mod_audio_fork and jambonz listen send it (a JSON text frame first, then
// binary little-endian PCM at 8 to 48 kHz, mono or stereo). A Stream is the
// bot's side of a bridge.Pipe: Put and Take run on the media clock and
// never block; a writer and a reader goroutine talk to the bot.
package stream

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// Framings.
const (
	Twilio      = "twilio"      // Twilio Media Streams: JSON text messages, base64 mu-law 8 kHz
	AudioSocket = "audiosocket" // Asterisk AudioSocket: binary frames, signed linear 8 kHz
	Raw         = "raw"         // mod_audio_fork / jambonz listen: JSON text first, then binary L16
)

// Framings are the framings a stream can use.
var Framings = []string{Twilio, AudioSocket, Raw}

// Tracks: which audio goes to the bot.
const (
	Inbound  = "inbound"  // what the caller (or the room) says (the default)
	Outbound = "outbound" // what the caller hears
	Both     = "both"     // both: two channels (twilio: two tracks; raw: stereo, inbound left)
)

// Rates are the sample rates of the raw framing (twilio and audiosocket
// are 8 kHz).
var Rates = []int{8000, 16000, 24000, 48000}

// Limits.
const (
	// FrameSamples is one 20 ms frame at 8 kHz.
	FrameSamples = 160
	// MaxMessage is the largest message a bot may send; a larger one ends
	// the stream (a bot sends its audio in chunks).
	MaxMessage = 512 << 10
	// sendDepth is how many frames of the caller's audio may wait for a
	// slow bot before the oldest is dropped (320 ms).
	sendDepth = 16
	// ctlDepth bounds the DTMF and mark events waiting to go out.
	ctlDepth = 64
	// DefaultQueue is how much of the bot's audio may wait to be played.
	DefaultQueue = 60 * time.Second
	writeWait    = 5 * time.Second
)

// Config says where a stream goes and what it tells the bot.
type Config struct {
	URL        string            // ws:// or wss:// (audiosocket: also tcp://)
	Framing    string            // "twilio" (the default), "audiosocket" or "raw"
	Rate       int               // raw: 8000 (the default), 16000, 24000 or 48000; others 8000
	Tracks     string            // "inbound" (the default), "outbound" or "both"
	Headers    map[string]string // sent with the WebSocket handshake (an Authorization token, say)
	Parameters map[string]string // the start message's customParameters
	CallID     string            // the call, for the bot (callSid) and logs
	From, To   string            // the caller and the dialled number
	Queue      time.Duration     // the bot's audio that may wait to be played (0: DefaultQueue)
	// BargeIn: when the caller starts talking (voice activity) while the
	// bot's audio is queued, the queue is dropped as by a clear.
	BargeIn bool
	Logger  *slog.Logger
}

// Validate checks a config's URL, framing, rate and tracks.
func (c *Config) Validate() error {
	if c.Framing != "" && !slices.Contains(Framings, c.Framing) {
		return fmt.Errorf("framing %q: want %s", c.Framing, strings.Join(Framings, ", "))
	}
	switch {
	case c.Rate != 0 && c.Framing == Raw && !slices.Contains(Rates, c.Rate):
		return fmt.Errorf("rate %d: want 8000, 16000, 24000 or 48000", c.Rate)
	case c.Rate != 0 && c.Rate != 8000 && c.Framing != Raw:
		return fmt.Errorf("rate %d: the %s framing is 8000 Hz only", c.Rate, cmp.Or(c.Framing, Twilio))
	case c.Tracks != "" && c.Tracks != Inbound && c.Tracks != Outbound && c.Tracks != Both:
		return fmt.Errorf("tracks %q: want inbound, outbound or both", c.Tracks)
	case c.Tracks == Both && c.Framing == AudioSocket:
		return errors.New("tracks both: AudioSocket is mono (use twilio or raw for two channels)")
	}
	ws := strings.HasPrefix(c.URL, "ws://") || strings.HasPrefix(c.URL, "wss://")
	if c.Framing == AudioSocket && (ws || strings.HasPrefix(c.URL, "tcp://")) {
		return nil
	}
	if !ws {
		if c.Framing == AudioSocket {
			return fmt.Errorf("url %q: want tcp://host:port, ws:// or wss://", c.URL)
		}
		return fmt.Errorf("url %q: want ws:// or wss://", c.URL)
	}
	return nil
}

// Counters are the totals of every stream in the process (for /metrics).
type Counters struct {
	Started, Refused, Ended, Failed uint64 // streams
	Active                          int64
	Garbage                         uint64 // bot messages not understood (ignored)
	Oversized                       uint64 // bot messages over MaxMessage (the stream ends)
	SentDropped                     uint64 // caller frames dropped for a slow bot
	PlayDropped                     uint64 // bot samples dropped for a full play queue
	Cleared                         uint64 // bot samples dropped by clear
	Marks                           uint64 // marks echoed
	BargeIns                        uint64 // queues dropped because the caller started talking
	Transfers                       uint64 // transfers the bots asked for
}

var totals struct {
	started, refused, ended, failed, garbage, oversized, sentDropped, playDropped, cleared, marks, bargeIns, transfers atomic.Uint64
	active                                                                                                             atomic.Int64
}

// Totals returns the counters of every stream so far.
func Totals() Counters {
	return Counters{Started: totals.started.Load(), Refused: totals.refused.Load(), Ended: totals.ended.Load(), Failed: totals.failed.Load(),
		Active: totals.active.Load(), Garbage: totals.garbage.Load(), Oversized: totals.oversized.Load(), SentDropped: totals.sentDropped.Load(),
		PlayDropped: totals.playDropped.Load(), Cleared: totals.cleared.Load(), Marks: totals.marks.Load(), BargeIns: totals.bargeIns.Load(),
		Transfers: totals.transfers.Load()}
}

// ErrRefused: the bot could not be reached or refused the handshake.
var ErrRefused = errors.New("the bot refused the stream")

// Stream is one media stream to a bot.
type Stream struct {
	cfg  Config
	log  *slog.Logger
	conn transport
	out  encoder

	rate              int  // samples per second of every frame, both ways
	frame             int  // samples per 20 ms frame (one channel)
	inTrack, outTrack bool // which tracks go to the bot

	mu sync.Mutex
	// the caller's frames waiting for the writer (drop-oldest ring): slot
	// i holds inbound at [2i*frame:] and outbound at [(2i+1)*frame:]
	send       []int16
	sendHead   int
	sendN      int
	ctl        []ctlMsg // DTMF and marks waiting for the writer
	play       []int16  // ring of the bot's audio waiting to be played (grown up to playMax)
	playMax    int      // samples the play queue may hold (Config.Queue)
	playHead   int
	playN      int
	played     uint64     // samples taken from or cleared off the play queue, ever
	queued     uint64     // samples put on the play queue, ever
	marks      []mark     // pending marks, in order
	transfer   string     // the number the bot asked the call to go to
	vad        *audio.VAD // the caller's voice activity, for barge-in; nil: off
	closing    bool
	err        error
	wake       chan struct{}
	done       chan struct{}
	closeOnce  sync.Once
	writerDone chan struct{}
}

type ctlMsg struct {
	digit   rune   // a DTMF event, or
	mark    string // a mark to echo
	cleared bool   // the mark's audio was cleared, not played
}

type mark struct {
	at   uint64 // played when s.played reaches it
	name string
}

// Dial connects to the bot and sends the start of the stream. It fails
// with ErrRefused (wrapped, with the reason) when the bot cannot be reached
// or refuses the handshake.
func Dial(ctx context.Context, cfg Config) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	cfg.Framing = cmp.Or(cfg.Framing, Twilio)
	cfg.Rate = cmp.Or(cfg.Rate, 8000)
	cfg.Tracks = cmp.Or(cfg.Tracks, Inbound)
	conn, err := dialTransport(ctx, &cfg)
	if err != nil {
		totals.refused.Add(1)
		return nil, err
	}
	frame := cfg.Rate / 50
	s := &Stream{cfg: cfg, conn: conn, rate: cfg.Rate, frame: frame, inTrack: cfg.Tracks != Outbound, outTrack: cfg.Tracks != Inbound,
		send: make([]int16, 2*sendDepth*frame),
		ctl:  make([]ctlMsg, 0, ctlDepth), playMax: int(cfg.Queue.Seconds()*float64(cfg.Rate)) + frame,
		wake: make(chan struct{}, 1), done: make(chan struct{}), writerDone: make(chan struct{})}
	if cfg.BargeIn {
		s.vad = audio.NewVAD(audio.VADConfig{})
	}
	sid := make([]byte, 16)
	_, _ = rand.Read(sid)
	switch cfg.Framing {
	case AudioSocket:
		s.out = newAudioSocketOut(cfg.Tracks == Outbound)
	case Raw:
		s.out = &rawOut{sid: "MZ" + hex.EncodeToString(sid), in: s.inTrack, out: s.outTrack}
	default:
		t := &twilioOut{sid: "MZ" + hex.EncodeToString(sid), callSid: cfg.CallID, in: s.inTrack, out: s.outTrack, ulaw: make([]byte, 0, FrameSamples)}
		t.sidJSON = appendJSON(nil, t.sid)
		s.out = t
	}
	s.log = cfg.Logger.With("stream_url", cfg.URL, "call_id", cfg.CallID, "stream_sid", s.out.sidString())
	for _, m := range s.out.open(nil, &s.cfg) {
		if err = conn.send(m, s.out.ctlText()); err != nil {
			break
		}
	}
	if err != nil {
		conn.close()
		totals.refused.Add(1)
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	totals.started.Add(1)
	totals.active.Add(1)
	s.log.Info("media stream started", "framing", cfg.Framing, "rate", cfg.Rate, "tracks", cfg.Tracks)
	go s.writer()
	go s.reader()
	return s, nil
}

// SID is the stream's streamSid (twilio, raw) or UUID (audiosocket).
func (s *Stream) SID() string { return s.out.sidString() }

// Rate is the sample rate of the frames Put and Take exchange.
func (s *Stream) Rate() int { return s.rate }

// TransferTo is the number the bot asked the call to go to (a transfer
// message, which also ends the stream cleanly); "" when it asked none.
func (s *Stream) TransferTo() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transfer
}

// Done is closed when the stream has ended (the bot closed it, it failed,
// or Close).
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err says why the stream ended: nil when the bot closed it cleanly or
// Close ended it.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// end ends the stream once, with err (nil: a clean end).
func (s *Stream) end(err error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		s.closing = true
		s.mu.Unlock()
		close(s.done)
		totals.active.Add(-1)
		if err != nil {
			totals.failed.Add(1)
		} else {
			totals.ended.Add(1)
		}
		s.poke()
	})
}

// Close sends the stop message and closes the connection; it is idempotent.
func (s *Stream) Close() error {
	s.end(nil)
	<-s.writerDone
	return nil
}

func (s *Stream) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Put queues 20 ms of audio at Rate for the bot: what the caller says
// (inbound) and what it hears (outbound); nil is silence. When the bot is
// slow the oldest waiting frame is dropped. It never blocks.
func (s *Stream) Put(said, heard []int16) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	if s.sendN == sendDepth {
		s.sendHead = (s.sendHead + 1) % sendDepth
		s.sendN--
		totals.sentDropped.Add(1)
	}
	slot := (s.sendHead + s.sendN) % sendDepth
	in := s.send[2*slot*s.frame : (2*slot+1)*s.frame]
	out := s.send[(2*slot+1)*s.frame : (2*slot+2)*s.frame]
	clear(in[copy(in, said):])
	clear(out[copy(out, heard):])
	s.sendN++
	if s.vad != nil {
		if talking, changed := s.vad.Update(in); talking && changed && s.playN > 0 {
			totals.bargeIns.Add(1)
			s.clearLocked()
		}
	}
	s.mu.Unlock()
	s.poke()
}

// DTMF sends a digit the caller keyed to the bot.
func (s *Stream) DTMF(digit rune) {
	s.mu.Lock()
	if !s.closing && len(s.ctl) < ctlDepth {
		s.ctl = append(s.ctl, ctlMsg{digit: digit})
	}
	s.mu.Unlock()
	s.poke()
}

// Take fills dst (20 ms at Rate) with the next of the bot's audio; false
// when none is queued. Marks whose audio has now played are echoed to the bot.
func (s *Stream) Take(dst []int16) bool {
	s.mu.Lock()
	got := s.playN > 0
	n := min(len(dst), s.playN)
	for i := 0; i < n; {
		c := copy(dst[i:n], s.play[s.playHead:])
		i += c
		s.playHead = (s.playHead + c) % len(s.play)
	}
	clear(dst[n:])
	s.playN -= n
	s.played += uint64(n)
	fired := s.fireLocked(false)
	s.mu.Unlock()
	if fired {
		s.poke()
	}
	return got
}

// fireLocked moves the marks whose audio has played (or was cleared) to
// the send queue.
func (s *Stream) fireLocked(cleared bool) bool {
	fired := 0
	for _, m := range s.marks {
		if m.at > s.played || len(s.ctl) == ctlDepth {
			break
		}
		s.ctl = append(s.ctl, ctlMsg{mark: m.name, cleared: cleared})
		fired++
	}
	if fired > 0 {
		s.marks = append(s.marks[:0], s.marks[fired:]...)
	}
	return fired > 0
}

// enqueue puts the bot's audio on the play queue, dropping the oldest
// audio when it is full.
func (s *Stream) enqueue(pcm []int16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.growPlay(s.playN + len(pcm))
	if over := s.playN + len(pcm) - len(s.play); over > 0 {
		drop := min(over, s.playN)
		s.playHead = (s.playHead + drop) % len(s.play)
		s.playN -= drop
		s.played += uint64(drop)
		totals.playDropped.Add(uint64(drop))
		if len(pcm) > len(s.play) {
			totals.playDropped.Add(uint64(len(pcm) - len(s.play)))
			pcm = pcm[len(pcm)-len(s.play):]
		}
	}
	for len(pcm) > 0 {
		tail := (s.playHead + s.playN) % len(s.play)
		c := copy(s.play[tail:], pcm)
		if tail < s.playHead {
			c = min(c, s.playHead-tail)
		}
		pcm = pcm[c:]
		s.playN += c
		s.queued += uint64(c)
	}
}

// growPlay makes room for want samples on the play queue, up to playMax:
// it starts small (a bot that talks in real time needs a few frames) and
// doubles when a bot sends ahead (speech synthesis in bursts).
func (s *Stream) growPlay(want int) {
	if want <= len(s.play) || len(s.play) >= s.playMax {
		return
	}
	n := max(len(s.play), s.playMax/32, 2048)
	for n < want {
		n *= 2
	}
	n = min(n, s.playMax)
	ring := make([]int16, n)
	k := copy(ring, s.play[s.playHead:min(len(s.play), s.playHead+s.playN)])
	if k < s.playN {
		copy(ring[k:], s.play[:s.playN-k])
	}
	s.play, s.playHead = ring, 0
}

// clearQueue drops every queued sample at once and echoes the marks
// waiting on them, as Twilio does.
func (s *Stream) clearQueue() {
	s.mu.Lock()
	s.clearLocked()
	s.mu.Unlock()
	s.poke()
}

func (s *Stream) clearLocked() {
	totals.cleared.Add(uint64(s.playN))
	s.played += uint64(s.playN)
	s.playHead, s.playN = 0, 0
	s.fireLocked(true)
}

// addMark echoes name once what is queued now has played.
func (s *Stream) addMark(name string) {
	s.mu.Lock()
	s.marks = append(s.marks, mark{at: s.queued, name: name})
	s.fireLocked(false)
	s.mu.Unlock()
	s.poke()
}

// clearMarks forgets the pending marks without echoing them (jambonz's
// clearMarks).
func (s *Stream) clearMarks() {
	s.mu.Lock()
	s.marks = s.marks[:0]
	s.mu.Unlock()
}

// transferTo notes where the bot asked the call to go and ends the stream.
func (s *Stream) transferTo(number string) {
	totals.transfers.Add(1)
	s.mu.Lock()
	s.transfer = number
	s.mu.Unlock()
	s.log.Info("media stream: the bot transfers the call", "to", number)
	s.end(nil)
}

// Queued is how many samples of the bot's audio wait to be played.
func (s *Stream) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.playN
}

// writer sends the caller's audio and events to the bot.
func (s *Stream) writer() {
	defer close(s.writerDone)
	var (
		in   = make([]int16, s.frame)
		out  = make([]int16, s.frame)
		buf  = make([]byte, 0, 1024)
		bufs = [2][]byte{make([]byte, 0, 4*s.frame+512), make([]byte, 0, 4*s.frame+512)}
		ctl  = make([]ctlMsg, 0, ctlDepth)
	)
	botClosed := false // the bot closed: nothing more is written, the reader ends the stream
	write := func(b []byte, text bool) bool {
		if botClosed {
			return false
		}
		if err := s.conn.send(b, text); err != nil {
			if errors.Is(err, errClosing) {
				botClosed = true
				return false
			}
			s.log.Warn("media stream: cannot write to the bot", "error", err)
			s.end(fmt.Errorf("writing to the bot: %w", err))
			return false
		}
		return true
	}
	for {
		<-s.wake
		for {
			s.mu.Lock()
			closing := s.closing
			ctl = append(ctl[:0], s.ctl...)
			s.ctl = s.ctl[:0]
			has := s.sendN > 0
			if has {
				h := s.sendHead
				copy(in, s.send[2*h*s.frame:])
				copy(out, s.send[(2*h+1)*s.frame:])
				s.sendHead = (s.sendHead + 1) % sendDepth
				s.sendN--
			}
			s.mu.Unlock()
			if closing {
				if s.Err() == nil { // a clean end: say stop, then close
					s.conn.bye(s.out.stop(buf[:0]), s.out.ctlText())
				}
				s.conn.close()
				return
			}
			ok := true
			for _, c := range ctl {
				if c.mark != "" {
					if buf = s.out.mark(buf[:0], c.mark, c.cleared); buf == nil {
						continue
					}
					totals.marks.Add(1)
				} else {
					buf = s.out.dtmf(buf[:0], c.digit)
				}
				if ok = write(buf, s.out.ctlText()); !ok {
					break
				}
			}
			if !ok || !has {
				break
			}
			n := s.out.media(&bufs, in, out)
			for i := range n {
				if ok = write(bufs[i], s.out.mediaText()); !ok {
					break
				}
			}
			if !ok {
				break
			}
		}
	}
}

// reader takes the bot's messages until it closes the stream.
func (s *Stream) reader() {
	pcm := make([]int16, 0, s.rate)
	for {
		data, text, err := s.conn.recv()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			switch {
			case closing:
			case errors.Is(err, errOversized):
				totals.oversized.Add(1)
				s.log.Warn("media stream: the bot sent a message over the limit: stream ended", "limit_bytes", MaxMessage)
				s.end(err)
			case errors.Is(err, errClosed):
				s.log.Info("media stream: the bot closed the stream")
				s.end(nil)
			default:
				s.log.Warn("media stream: the bot went away", "error", err)
				s.end(fmt.Errorf("the bot went away: %w", err))
			}
			return
		}
		if s.cfg.Framing == AudioSocket {
			if text {
				s.garbage(errors.New("a text message in the audiosocket framing"))
				continue
			}
			if pcm = s.audioSocket(data, pcm); pcm == nil {
				return
			}
			continue
		}
		var m BotMessage
		switch {
		case s.cfg.Framing == Raw && !text:
			if len(data)%2 != 0 {
				s.garbage(errors.New("a binary message of an odd length"))
				continue
			}
			pcm = DecodeL16(pcm[:0], data)
			s.enqueue(pcm)
			continue
		case s.cfg.Framing == Raw:
			m, err = ParseRaw(data, s.rate, pcm)
		case !text:
			s.garbage(errors.New("a binary message in the twilio framing"))
			continue
		default:
			m, err = ParseTwilio(data, pcm)
		}
		switch {
		case errors.Is(err, ErrUnknownEvent):
			s.log.Debug("media stream: ignoring an event", "error", err)
			continue
		case err != nil:
			s.garbage(err)
			continue
		}
		switch m.Kind {
		case BotMedia:
			s.enqueue(m.PCM)
			pcm = m.PCM[:0]
		case BotMark:
			s.addMark(m.Mark)
		case BotClear:
			s.clearQueue()
		case BotClearMarks:
			s.clearMarks()
		case BotDisconnect:
			s.log.Info("media stream: the bot ended the stream (disconnect)")
			s.end(nil)
			return
		case BotTransfer:
			s.transferTo(m.To)
			return
		}
	}
}

// audioSocket acts on the AudioSocket frames in data; pcm is scratch. It
// returns nil when the bot ended the stream.
func (s *Stream) audioSocket(data []byte, pcm []int16) []int16 {
	for len(data) > 0 {
		kind, payload, rest, err := ParseAudioSocket(data)
		if err != nil {
			s.garbage(err)
			return pcm
		}
		data = rest
		switch kind {
		case ASAudio:
			pcm = pcm[:0]
			for i := 0; i+1 < len(payload); i += 2 {
				pcm = append(pcm, int16(uint16(payload[i])|uint16(payload[i+1])<<8))
			}
			s.enqueue(pcm)
		case ASHangup:
			s.log.Info("media stream: the bot hung up")
			s.end(nil)
			return nil
		case ASError:
			s.log.Warn("media stream: the bot sent an error", "code", payload)
			s.end(fmt.Errorf("the bot sent an error %x", payload))
			return nil
		case ASUUID, ASDTMF:
		default:
			s.garbage(fmt.Errorf("unknown audiosocket kind %#x", kind))
		}
	}
	return pcm
}

// garbage counts a message not understood; the first and every 100th are
// logged.
func (s *Stream) garbage(err error) {
	if n := totals.garbage.Add(1); n == 1 || n%100 == 0 {
		s.log.Warn("media stream: ignoring a message the bot sent", "error", err, "garbage_total", n)
	}
}
