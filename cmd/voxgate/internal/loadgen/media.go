package loadgen

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/audio"
	"github.com/voxgate/voxgate/audio/opus"
)

// frame is 20 ms: every stream sends (at most) one packet per frame.
const frame = 20 * time.Millisecond

// source is a loop of pre-encoded 20 ms frames. A nil frame is one a real
// client would not send (Opus DTX): the stream's timestamp moves on, and
// nothing goes out. Encoding once up front keeps the generator cheap, so
// that on a shared machine it takes as little as possible from voxgate.
type source struct {
	frames  [][]byte
	pt      uint8
	samples uint32 // RTP timestamp units per frame
	// maxGap is the longest gap in what voxgate sends back that counts as
	// heard, in frames (0: maxGapFrames).
	maxGap uint32
}

// sources holds the encoded inputs a job needs, each made once.
type sources struct {
	pcm16k []int16
	mu     sync.Mutex
	made   map[string]*source
}

func loadSources(path string, seconds float64) (*sources, error) {
	w, err := audio.ReadWAVFile(path)
	if err != nil {
		return nil, err
	}
	if w.Rate != 16000 {
		return nil, fmt.Errorf("loadgen: %s is %d Hz, want 16000", path, w.Rate)
	}
	pcm := w.Samples
	if n := int(seconds * 16000); seconds > 0 && n < len(pcm) {
		pcm = pcm[:n]
	}
	pcm = pcm[:len(pcm)/320*320] // whole frames only
	if len(pcm) == 0 {
		return nil, fmt.Errorf("loadgen: %s holds no audio", path)
	}
	return &sources{pcm16k: pcm, made: map[string]*source{}}, nil
}

// cnPT is comfort noise's payload type (RFC 3389).
const cnPT = 13

// get returns the loop for codec ("pcmu", "pcmu-cn" or "opus"), speech or
// silence.
func (s *sources) get(codec string, talk bool) (*source, error) {
	key := fmt.Sprint(codec, talk)
	s.mu.Lock()
	defer s.mu.Unlock()
	if src := s.made[key]; src != nil {
		return src, nil
	}
	var src *source
	var err error
	switch {
	case codec == "pcmu" && talk:
		src, err = pcmuSpeech(s.pcm16k)
	case codec == "pcmu-cn" && talk:
		if src, err = pcmuSpeech(s.pcm16k); err == nil {
			src.maxGap = cnMaxGapFrames
		}
	case codec == "pcmu-cn":
		// A desk phone with VAD and comfort noise (RFC 3389): a SID packet
		// (payload type 13, the noise level) every 400 ms, nothing between.
		src = &source{frames: make([][]byte, 20), pt: cnPT, samples: 160, maxGap: cnMaxGapFrames}
		src.frames[0] = []byte{90}
	case codec == "pcmu":
		// A desk phone without VAD sends digital silence all the time.
		src = &source{frames: [][]byte{audio.EncodeUlaw(nil, make([]int16, 160))}, pt: 0, samples: 160}
	case codec == "opus" && talk:
		src, err = opusFrames(s.pcm16k, opus.EncoderOptions{})
	case codec == "opus":
		src, err = opusSilence()
	default:
		err = fmt.Errorf("loadgen: unknown codec %q", codec)
	}
	if err != nil {
		return nil, err
	}
	s.made[key] = src
	return src, nil
}

func pcmuSpeech(pcm16k []int16) (*source, error) {
	r, err := audio.NewResampler(16000, 8000, 320)
	if err != nil {
		return nil, err
	}
	src := &source{pt: 0, samples: 160}
	var pcm8k []int16
	for i := 0; i+320 <= len(pcm16k); i += 320 {
		pcm8k = r.Process(pcm8k[:0], pcm16k[i:i+320])
		src.frames = append(src.frames, audio.EncodeUlaw(nil, pcm8k))
	}
	return src, nil
}

// opusFrames encodes 16 kHz PCM as a browser would send it (Opus, RTP clock
// 48 kHz, payload type 111); frames of two bytes or less are what libopus
// makes in DTX, which real clients do not send.
func opusFrames(pcm16k []int16, o opus.EncoderOptions) (*source, error) {
	enc, err := opus.NewEncoder(16000, o)
	if err != nil {
		return nil, err
	}
	src := &source{pt: 111, samples: 960}
	for i := 0; i+320 <= len(pcm16k); i += 320 {
		p, err := enc.Encode(nil, pcm16k[i:i+320])
		if err != nil {
			return nil, err
		}
		if len(p) <= 2 {
			p = nil
		}
		src.frames = append(src.frames, p)
	}
	return src, nil
}

// opusSilence is a muted microphone with DTX on: after the encoder has
// settled, a comfort-noise frame every 400 ms or so and nothing between.
func opusSilence() (*source, error) {
	src, err := opusFrames(make([]int16, 320*400), opus.EncoderOptions{DTX: true})
	if err != nil {
		return nil, err
	}
	src.frames = src.frames[200:] // the steady state only: it loops
	sent := 0
	for _, f := range src.frames {
		if f != nil {
			sent++
		}
	}
	if sent == len(src.frames) {
		return nil, fmt.Errorf("loadgen: the Opus encoder did not go into DTX")
	}
	return src, nil
}

// stream is one leg's media: its next packet and its counters.
type stream struct {
	src   *source
	pos   int
	seq   uint16
	ts    uint32
	ssrc  uint32
	pt    uint8
	gap   bool // the last frame was not sent: the next packet starts a talkspurt
	write func(pkt []byte) error
	buf   []byte
	sent  atomic.Uint64
	recv  atomic.Uint64
	// heard counts the 20 ms frames of media time the received packets
	// cover: one per packet, plus a DTX gap's frames (the RTP timestamp
	// jumps), up to maxGapFrames. lastTS is the newest timestamp heard;
	// one reader per stream updates both.
	heard  atomic.Uint64
	lastTS uint32
	tsSeen bool
	closed atomic.Bool
}

// maxGapFrames is the longest gap that counts as heard: a DTX sender sends
// a packet at least every 400 ms (RFC 7587 3.1.3); a longer gap is media
// lost, not silence.
const maxGapFrames = 20

// cnMaxGapFrames is that for a phone that took comfort noise: voxgate
// repeats an unchanged SID every 5 s.
const cnMaxGapFrames = 250

// received counts an RTP packet from voxgate (pkt: the whole packet).
func (s *stream) received(pkt []byte) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return
	}
	s.recv.Add(1)
	ts := binary.BigEndian.Uint32(pkt[4:8])
	if !s.tsSeen {
		s.tsSeen, s.lastTS = true, ts
		s.heard.Add(1)
		return
	}
	d := int32(ts - s.lastTS)
	if d <= 0 { // a duplicate or a late packet: its time is counted already
		return
	}
	s.lastTS = ts
	frames := (uint32(d) + s.src.samples/2) / s.src.samples
	s.heard.Add(uint64(min(max(frames, 1), cmp.Or(s.src.maxGap, maxGapFrames))))
}

// newStream starts at frame offset of src (each leg talks from its own
// place in the speech).
func newStream(src *source, offset int, write func([]byte) error) *stream {
	return &stream{src: src, pos: offset % len(src.frames), seq: uint16(rand.Uint32()), ts: rand.Uint32(),
		ssrc: rand.Uint32(), pt: src.pt, write: write, buf: make([]byte, 0, 1500)}
}

// tick sends the stream's next frame, if it has one.
func (s *stream) tick() {
	if s.closed.Load() {
		return
	}
	p := s.src.frames[s.pos]
	s.pos = (s.pos + 1) % len(s.src.frames)
	if p == nil {
		s.gap = true
		s.ts += s.src.samples
		return
	}
	b := s.buf[:12]
	b[0] = 0x80
	b[1] = s.pt
	if s.gap {
		b[1] |= 0x80 // marker
	}
	binary.BigEndian.PutUint16(b[2:], s.seq)
	binary.BigEndian.PutUint32(b[4:], s.ts)
	binary.BigEndian.PutUint32(b[8:], s.ssrc)
	b = append(b, p...)
	s.gap = false
	s.seq++
	s.ts += s.src.samples
	if s.write(b) == nil {
		s.sent.Add(1)
	}
}

// pump ticks every stream every 20 ms. Streams are spread over shards with
// their own phase within the 20 ms, as real phones' clocks are, so voxgate
// sees a steady trickle instead of one burst per frame.
type pump struct {
	shards []*shard
	next   atomic.Uint64
}

type shard struct {
	mu      sync.Mutex
	streams []*stream
}

// shardSize is how many streams one goroutine sends for.
const shardSize = 50

func startPump(ctx context.Context, streams int) *pump {
	n := max(1, (streams+shardSize-1)/shardSize)
	p := &pump{}
	for i := 0; i < n; i++ {
		sh := &shard{}
		p.shards = append(p.shards, sh)
		go sh.run(ctx, time.Duration(i)*frame/time.Duration(n))
	}
	return p
}

// add starts sending s from the next tick of its shard.
func (p *pump) add(s *stream) {
	sh := p.shards[p.next.Add(1)%uint64(len(p.shards))]
	sh.mu.Lock()
	sh.streams = append(sh.streams, s)
	sh.mu.Unlock()
}

func (sh *shard) run(ctx context.Context, phase time.Duration) {
	select {
	case <-time.After(phase):
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(frame)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sh.mu.Lock()
		for _, s := range sh.streams {
			s.tick()
		}
		sh.mu.Unlock()
	}
}
