package bridge

import (
	"slices"
	"sync"
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
	rs    *audio.Resampler // decoder rate -> room rate; nil when equal
	now   func() time.Time

	mu sync.Mutex
	jb *audio.JitterBuffer

	fifo     []int16 // decoded PCM at the decoder's rate, not consumed yet
	tick     []int16 // one tick at the decoder's rate
	frame    []int16 // one tick at the room's rate
	pktDur   int     // samples per packet at the decoder's rate
	received uint64
}

func newIngress(leg Leg, roomRate int, now func() time.Time) (*ingress, error) {
	c := leg.Codec()
	dec, err := newDecoder(c, roomRate)
	if err != nil {
		return nil, err
	}
	in := &ingress{leg: leg, codec: c, dec: dec, now: now}
	in.jb = audio.NewJitterBuffer(audio.JitterConfig{Rate: c.Rate, Silent: silentPayload(c.Name)})
	per := dec.rate() / 50
	in.pktDur = per
	in.fifo = make([]int16, 0, dec.rate()/10*2) // 200 ms
	in.tick = make([]int16, per)
	in.frame = make([]int16, roomRate/50)
	if dec.rate() != roomRate {
		if in.rs, err = audio.NewResampler(dec.rate(), roomRate, per); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// HandlePacket puts a received packet into the jitter buffer. The leg calls
// it from the goroutine that read the packet (push-style: no queue, no
// goroutine of the room's in between); the buffer copies the payload.
func (in *ingress) HandlePacket(p *audio.Packet) {
	now := in.now()
	in.mu.Lock()
	in.jb.Push(p.Seq, p.Timestamp, p.SSRC, p.Payload, now)
	in.received++
	in.mu.Unlock()
}

// pull returns the next tick of audio at the room rate, or nil when the leg
// has nothing to play (not started, or its sender paused).
func (in *ingress) pull(now time.Time) []int16 {
	need := len(in.tick)
	in.mu.Lock()
	for len(in.fifo) < need {
		payload, st := in.jb.Pop(now)
		if st == audio.JitterEmpty {
			break
		}
		if st == audio.JitterPacket {
			n := len(in.fifo)
			var err error
			in.fifo, err = in.dec.decode(in.fifo, payload)
			if err != nil {
				in.fifo = in.fifo[:n]
				in.fifo = in.dec.conceal(in.fifo, in.pktDur)
			} else if d := len(in.fifo) - n; d > 0 {
				in.pktDur = d
			}
			continue
		}
		in.fifo = in.dec.conceal(in.fifo, in.pktDur)
	}
	in.mu.Unlock()
	if len(in.fifo) == 0 {
		return nil
	}
	n := copy(in.tick, in.fifo)
	clear(in.tick[n:])
	in.fifo = in.fifo[:copy(in.fifo, in.fifo[n:])]
	if in.rs == nil {
		copy(in.frame, in.tick)
		return in.frame
	}
	out := in.rs.Process(in.frame[:0], in.tick)
	return out[:len(in.frame)]
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
