package bridge

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// ingress is a leg's receive path: RTP packets -> jitter buffer (pushed by
// the leg's socket reader) -> decode or conceal -> resample to the room rate,
// pulled one frame per room tick.
type ingress struct {
	leg   Leg
	codec audio.Codec
	dec   decoder
	conv  *retimer // decoder rate -> room rate
	now   func() time.Time

	mu  sync.Mutex
	jb  *audio.JitterBuffer
	shr *audio.Shrinker // sheds the buffer's excess delay by time-scale compression

	fifo     []int16 // decoded PCM at the decoder's rate, not consumed yet
	voice    int     // fifo[:voice] may carry sound; the rest is skipped silence
	tick     []int16 // one tick at the decoder's rate
	frame    []int16 // one tick at the room's rate
	pktDur   int     // samples per packet at the decoder's rate
	received uint64

	// silent tells a payload that carries silence (DTX, comfort noise,
	// digital silence): it is not decoded, and the leg counts as not
	// talking. nil: every payload is decoded.
	silent   func([]byte) bool
	inactive func([]byte) bool // the encoder's own no-voice flag: does not wake a dozing room
	resume   bool              // the decoder keeps state across packets (Opus): conceal once when speech resumes
	skipped  bool              // the last payload was silence, not decoded
	hushed   bool              // pull's last nil was a tick of silence, not a pause
	decoded  uint64            // payloads decoded
	skips    uint64            // payloads skipped as silence
	fecs     uint64            // lost packets rebuilt from the next one's FEC
	shed     uint64            // samples removed by time-scale compression

	// dozing and stir belong to the room: while it dozes (every leg
	// silent), a packet that is not silence flushes what piled up and
	// wakes it. nil for an echo.
	dozing, stir *atomic.Bool
	wake         func() // tells the room's clock worker it was stirred
	noFEC        bool   // tests: conceal instead, to measure what FEC brings
}

func newIngress(leg Leg, roomRate int, now func() time.Time) (*ingress, error) {
	c := leg.Codec()
	dec, err := newDecoder(c, roomRate)
	if err != nil {
		return nil, err
	}
	info, _ := audio.LookupCodec(c.Name)
	in := &ingress{leg: leg, codec: c, dec: dec, now: now, silent: info.Silent, inactive: info.Inactive, resume: info.DTX}
	// The buffer never drops a packet to shrink: it reports its excess,
	// which pull sheds by compressing time (pitch periods in speech, more
	// in silence), so a backlog after a stall is gone within about a second.
	in.jb = audio.NewJitterBuffer(audio.JitterConfig{Rate: c.Rate, Silent: in.silent, Shrinks: true})
	per := dec.rate() / 50
	in.shr = audio.NewShrinker(dec.rate(), per*3) // packets up to 60 ms
	in.pktDur = per
	in.fifo = make([]int16, 0, dec.rate()/10*2) // 200 ms
	in.tick = make([]int16, per)
	in.frame = make([]int16, roomRate/50)
	if in.conv, err = newRetimer(dec.rate(), roomRate, per); err != nil {
		return nil, err
	}
	return in, nil
}

// HandlePacket puts a received packet into the jitter buffer. The leg calls
// it from the goroutine that read the packet (push-style: no queue, no
// goroutine of the room's in between); the buffer copies the payload.
func (in *ingress) HandlePacket(p *audio.Packet) {
	now := in.now()
	in.mu.Lock()
	if in.dozing != nil && in.dozing.Load() && !in.quiet(p.Payload) {
		// A voice: the room wakes at its next tick (its worker, which
		// skips a dozing room's ticks, is told once).
		if !in.stir.Swap(true) && in.wake != nil {
			in.wake()
		}
	}
	in.jb.Push(p.Seq, p.Timestamp, p.SSRC, p.Payload, now)
	in.received++
	in.mu.Unlock()
}

// quiet reports whether a payload must not wake a dozing room: silence,
// or a small packet its encoder flagged as without voice (an Opus DTX
// refresh frame at 48 kHz is some 60 bytes). A bigger one wakes it even
// when flagged: SILK's VAD can take steady music or a tone for noise.
func (in *ingress) quiet(p []byte) bool {
	return (in.silent != nil && in.silent(p)) || (in.inactive != nil && len(p) <= inactiveMax && in.inactive(p))
}

// inactiveMax is the largest flagged-inactive packet that leaves a dozing
// room asleep.
const inactiveMax = 64

// drain plays out, without decoding, what is due in the buffer: a dozing
// room's legs send only silence, and what is not yet due (the start of a
// talkspurt) stays for the room when it wakes.
func (in *ingress) drain(now time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for range 64 {
		if _, st := in.jb.Pop(now); st == audio.JitterEmpty {
			return
		}
	}
}

// pull returns the next tick of audio at the room rate, or nil when the leg
// has nothing to say: not started, its sender paused, or a tick of silence.
// Silent payloads (DTX, comfort noise) are not decoded: a room's silent
// legs cost a jitter buffer pop each. When the leg talks again its decoder
// first conceals one frame, which fades out what it held from before the
// silence, so speech resumes without a click.
func (in *ingress) pull(now time.Time) []int16 {
	need := len(in.tick)
	in.mu.Lock()
	for len(in.fifo) < need {
		lost := in.jb.Lost()
		payload, st := in.jb.Pop(now)
		if st == audio.JitterEmpty {
			break
		}
		m := len(in.fifo)
		switch {
		case st == audio.JitterPacket && in.silent != nil && in.silent(payload):
			in.fifo = grow(in.fifo, in.pktDur)
			in.skipped = true
			in.skips++
		case st == audio.JitterPacket:
			if in.skipped && in.resume {
				n := len(in.fifo)
				in.fifo = in.dec.conceal(in.fifo, in.pktDur)[:n]
			}
			in.skipped = false
			n := len(in.fifo)
			var err error
			in.fifo, err = in.dec.decode(in.fifo, payload)
			if err != nil {
				in.fifo = in.fifo[:n]
				in.fifo = in.dec.conceal(in.fifo, in.pktDur)
			} else if d := len(in.fifo) - n; d > 0 {
				in.pktDur = d
			}
			in.decoded++
			in.voice = len(in.fifo)
		case in.skipped: // a loss within silence: more silence
			in.fifo = grow(in.fifo, in.pktDur)
		default:
			// Lost: rebuild it from the next packet's FEC if that is
			// here, else conceal (also when the buffer stretches).
			ok := false
			if next, here := in.jb.Peek(); here && !in.noFEC && in.jb.Lost() > lost {
				in.fifo, ok = in.dec.fec(in.fifo, next, in.pktDur)
			}
			if ok {
				in.fecs++
			} else {
				in.fifo = in.dec.conceal(in.fifo, in.pktDur)
			}
			in.voice = len(in.fifo)
		}
		// Shed what the buffer holds above its target: the frame just
		// added is compressed in place. Every frame goes through, so the
		// compressor's pitch search sees what was played before.
		if len(in.fifo) > m {
			want := int(in.jb.Excess() * time.Duration(in.dec.rate()) / time.Second)
			var removed int
			in.fifo, removed = in.shr.Shrink(in.fifo[:m], in.fifo[m:], want)
			if in.voice > m {
				in.voice = max(m, in.voice-removed)
			}
			in.shed += uint64(removed)
		}
	}
	in.mu.Unlock()
	in.hushed = false
	if len(in.fifo) == 0 {
		in.conv.idle()
		return nil
	}
	n := copy(in.tick, in.fifo)
	clear(in.tick[n:])
	in.fifo = in.fifo[:copy(in.fifo, in.fifo[n:])]
	quiet := in.voice == 0
	in.voice = max(0, in.voice-n)
	if quiet {
		in.hushed = true
		in.conv.idle()
		return nil
	}
	out := in.conv.process(in.frame[:0], in.tick)
	return out[:in.conv.out/50]
}

func (in *ingress) stats() audio.JitterStats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.jb.Stats()
}

// grow returns dst extended by n zeroed samples without allocating when
// the capacity allows.
func grow(dst []int16, n int) []int16 {
	l := len(dst)
	dst = slices.Grow(dst, n)[:l+n]
	clear(dst[l:])
	return dst
}
