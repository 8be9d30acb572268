package bridge

import (
	"io"
	"log/slog"
	"math/rand"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voxgate/voxgate/audio"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// memLeg is an in-process leg: the test pushes packets to it (as a socket
// reader would, on the test's goroutine) and reads what the room sent.
type memLeg struct {
	id       string
	codec    audio.Codec
	consumed atomic.Int64
	done     chan struct{}
	closeMu  sync.Once

	packets audio.PacketDelivery

	mu       sync.Mutex
	payloads [][]byte
}

func newMemLeg(id string, c audio.Codec) *memLeg {
	return &memLeg{id: id, codec: c, done: make(chan struct{})}
}

func (l *memLeg) ID() string         { return l.id }
func (l *memLeg) Codec() audio.Codec { return l.codec }
func (l *memLeg) Done() <-chan struct{} {
	return l.done
}
func (l *memLeg) hangup() { l.closeMu.Do(func() { close(l.done) }) }

func (l *memLeg) SetPacketHandler(h audio.PacketHandler) { l.packets.Set(h) }

// push hands a received packet to the leg's handler, as its socket reader would.
func (l *memLeg) push(p audio.Packet) {
	l.packets.Deliver(p.Seq, p.Timestamp, p.SSRC, p.Payload)
	l.consumed.Add(1)
}

// WritePayload keeps each payload; a DTX gap is kept as one empty payload
// per 20 ms it covers.
func (l *memLeg) WritePayload(payload []byte, samples uint32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(payload) == 0 {
		for range max(1, int(samples)/(l.codec.Rate/50)) {
			l.payloads = append(l.payloads, nil)
		}
		return nil
	}
	l.payloads = append(l.payloads, append([]byte(nil), payload...))
	return nil
}

func (l *memLeg) received() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.payloads...)
}

// sender makes a leg's outgoing stream: a tone (or silence), encoded with
// the leg's codec, one packet per 20 ms of the sender's clock.
type sender struct {
	leg     *memLeg
	tone    audio.Tone
	on      bool
	seq     uint16
	ts      uint32
	enc     audio.Encoder
	pcm     []int16
	drift   float64 // the sender's clock runs fast by this fraction
	next    time.Duration
	loss    float64
	jitter  time.Duration
	base    time.Duration
	rng     *rand.Rand
	pending []timedPacket
	sent    int64
	speech  []int16 // when set, played (looped) instead of the tone, at the encoder's rate
	pos     int
	sentLog [][]byte // every payload produced, when logging
	logSent bool
}

type timedPacket struct {
	at time.Duration
	p  audio.Packet
}

var (
	pcmu = audio.Codec{Name: "PCMU", Rate: 8000}
	pcma = audio.Codec{Name: "PCMA", Rate: 8000}
	opc  = audio.Codec{Name: "opus", Rate: 48000}
)

func newSender(t testing.TB, leg *memLeg, freq float64, seed int64) *sender {
	t.Helper()
	s := &sender{leg: leg, on: true, rng: rand.New(rand.NewSource(seed)), base: 10 * time.Millisecond}
	s.enc = testEncoder(t, leg.codec)
	rate := s.enc.Rate()
	s.tone = audio.Tone{Rate: rate, Freq: freq, Level: 0.08}
	s.pcm = make([]int16, rate/50)
	return s
}

// produce generates the packets the sender emits up to simulated time now.
func (s *sender) produce(now time.Duration) {
	period := time.Duration(float64(20*time.Millisecond) / (1 + s.drift))
	for s.next <= now {
		switch {
		case s.on && s.speech != nil:
			for i := range s.pcm {
				s.pcm[i] = s.speech[s.pos]
				s.pos = (s.pos + 1) % len(s.speech)
			}
		case s.on:
			s.tone.Fill(s.pcm)
		default:
			clear(s.pcm)
		}
		payload, _ := s.enc.Encode(nil, s.pcm)
		if s.logSent {
			s.sentLog = append(s.sentLog, payload)
		}
		p := audio.Packet{Seq: s.seq, Timestamp: s.ts, SSRC: 42, Payload: payload}
		s.seq++
		s.ts += uint32(s.leg.codec.Rate / 50)
		if s.rng.Float64() >= s.loss {
			d := s.base + time.Duration((s.rng.Float64()*2-1)*float64(s.jitter))
			s.pending = append(s.pending, timedPacket{at: s.next + d, p: p})
		}
		s.next += period
	}
}

// deliver hands the leg every packet that has arrived by now, in arrival order.
func (s *sender) deliver(now time.Duration) {
	sort.SliceStable(s.pending, func(a, b int) bool { return s.pending[a].at < s.pending[b].at })
	n := 0
	for n < len(s.pending) && s.pending[n].at <= now {
		s.leg.push(s.pending[n].p)
		s.sent++
		n++
	}
	s.pending = s.pending[n:]
}

// sim drives a room with a manual clock: each tick, senders produce and
// deliver, the test waits for the legs' readers to take the packets, then
// the room ticks.
type sim struct {
	t       testing.TB
	room    *Room
	senders []*sender
	start   time.Time
	now     time.Duration
	ticks   int
}

func (s *sim) run(d time.Duration, each func(tick int)) {
	end := s.now + d
	for s.now < end {
		// Packets arrive at the simulated time of this tick.
		s.room.simNow.Store(s.start.Add(s.now).UnixNano())
		for _, sd := range s.senders {
			if sd == nil {
				continue
			}
			sd.produce(s.now)
			sd.deliver(s.now)
		}
		for _, sd := range s.senders {
			if sd == nil {
				continue
			}
			deadline := time.Now().Add(2 * time.Second)
			for sd.leg.consumed.Load() < sd.sent {
				if time.Now().After(deadline) {
					s.t.Fatalf("leg %s did not read its packets", sd.leg.id)
				}
				runtime.Gosched()
			}
		}
		s.room.Tick(s.start.Add(s.now)) // writes to the legs before it returns
		if each != nil {
			each(s.ticks)
		}
		s.ticks++
		s.now += 20 * time.Millisecond
	}
}

// waitSent waits until every leg got one payload per tick (egress is async).
// pendingGap is how many ticks of a DTX gap the room has not written to l
// yet (it writes a gap with the next packet).
func (s *sim) pendingGap(l *memLeg) int {
	s.room.mu.Lock()
	defer s.room.mu.Unlock()
	for _, m := range s.room.members {
		if m.leg.ID() == l.id { // l, or a wrapper of it
			n := int(m.gap) / (l.codec.Rate / 50)
			if s.room.dozing.Load() {
				n += int(s.room.doze % dtxEvery)
			}
			return n
		}
	}
	return 0
}

func (s *sim) waitSent(legs ...*memLeg) {
	deadline := time.Now().Add(3 * time.Second)
	for _, l := range legs {
		for len(l.received())+s.pendingGap(l) < s.ticks-1 {
			if time.Now().After(deadline) {
				s.t.Fatalf("leg %s got %d payloads for %d ticks", l.id, len(l.received()), s.ticks)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// heard decodes what a leg received, to PCM at its codec's rate.
func heard(t testing.TB, l *memLeg) ([]int16, int) {
	t.Helper()
	info, err := lookupCodec(l.codec)
	if err != nil {
		t.Fatal(err)
	}
	d, err := info.NewDecoder(info.PCMRate)
	if err != nil {
		t.Fatal(err)
	}
	var out []int16
	for _, p := range l.received() {
		if len(p) == 0 { // a DTX gap: the receiver conceals, near silence
			out, err = d.Conceal(out, d.Rate()/50)
		} else {
			out, err = d.Decode(out, p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return out, d.Rate()
}

func newTestRoom(t testing.TB, cfg RoomConfig) *Room {
	t.Helper()
	cfg.ManualClock = true
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	if cfg.JoinTone == nil {
		cfg.JoinTone = NoTone
	}
	if cfg.LeaveTone == nil {
		cfg.LeaveTone = NoTone
	}
	r, err := NewRoom(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// legFreq gives leg k its own tone below 3.4 kHz (G.711 legs hear it too),
// spaced so that intermodulation does not land on another tone.
func legFreq(k int) float64 { return 300 + 150*float64(k) + 7*float64(k*k) }

func codecFor(k int) audio.Codec {
	switch k % 3 {
	case 0:
		return pcmu
	case 1:
		return opc
	}
	return pcma
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
