package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// Echo plays a leg's audio back to it until the leg or ctx ends: the echo
// test. The audio is decoded and encoded again as in a room, so the test
// exercises the media path, not a packet reflector. While the caller's
// packets come in step (each the next in sequence and in time) each is
// answered at once, from the goroutine that read it: no tick, no buffer,
// no second wake-up per packet. A packet out of step (lost, late,
// reordered, a pause) sends the stream through the jitter buffer and
// concealment on the shared clock, until directAfter packets in a row are
// in step again.
func Echo(ctx context.Context, leg Leg) error { return EchoMetered(ctx, leg, nil) }

// EchoMetered is Echo with the leg's media counted by mt (nil: not counted).
func EchoMetered(ctx context.Context, leg Leg, mt *Meter) error {
	e, err := newEcho(leg, time.Now)
	if err != nil {
		return err
	}
	t := mt.attach(leg, e.in, nil)
	defer mt.detach(t)
	leg.SetPacketHandler(e)
	defer leg.SetPacketHandler(nil)
	w := DefaultClock().add(e)
	defer e.stop(w)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-leg.Done():
		return nil
	case <-e.failed:
		return e.err
	}
}

// newEcho makes the echo of leg; now is the ingress's clock.
func newEcho(leg Leg, now func() time.Time) (*echo, error) {
	c := leg.Codec()
	dec, err := newDecoder(c, 8000)
	if err != nil {
		return nil, err
	}
	rate := dec.rate()
	in, err := newIngress(leg, rate, now)
	if err != nil {
		return nil, err
	}
	enc, err := newEncoder(c, rate)
	if err != nil {
		return nil, err
	}
	e := &echo{leg: leg, in: in, enc: enc, samples: uint32(c.Rate / 50), payload: make([]byte, 0, 1500), running: true, failed: make(chan struct{}),
		pcm: make([]int16, 0, rate/50*3)}
	if e.silent, err = enc.encode(nil, make([]int16, rate/50)); err != nil {
		return nil, err
	}
	info, _ := lookupCodec(c)
	e.dtx = info.DTX && acceptsDTX(leg)
	return e, nil
}

// echo is one echo test on the clock.
type echo struct {
	leg     Leg
	in      *ingress
	enc     encoder
	samples uint32
	silent  []byte // encoded silence
	dtx     bool
	quiet   int // ticks of silence in a row

	mu      sync.Mutex
	running bool
	payload []byte
	err     error
	failed  chan struct{}

	// The direct path: steady counts the packets in a row that came in
	// step with the one before (seq, ts, ssrc); from directAfter on they
	// are answered at once (direct).
	direct   bool
	steady   int
	seq      uint16
	ts, ssrc uint32
	pcm      []int16
	noDirect bool // tests: always through the buffer
}

// directAfter is how many packets in step bring the echo back to answering
// at once (one second: a lossy path does not flap between the two).
const directAfter = 50

// HandlePacket is the leg's packet handler: in step, the packet is
// answered at once; else it goes to the jitter buffer, played on the clock.
func (e *echo) HandlePacket(p *audio.Packet) {
	e.mu.Lock()
	defer e.mu.Unlock()
	inStep := e.steady > 0 && p.SSRC == e.ssrc && p.Seq == e.seq+1 && p.Timestamp == e.ts+e.samples
	e.seq, e.ts, e.ssrc = p.Seq, p.Timestamp, p.SSRC
	switch {
	case e.steady == 0 && !e.noDirect: // the first packet: nothing is buffered yet
		e.steady = directAfter
	case !inStep:
		e.steady, e.direct = 1, false
	case e.steady < directAfter:
		e.steady++
	}
	if !e.direct && e.steady >= directAfter && !e.noDirect && e.running {
		// Back in step: what the buffer still holds (its delay, a packet
		// or two) is dropped, once, and the echo answers at once again.
		e.in.mu.Lock()
		e.in.jb.Flush()
		e.in.fifo, e.in.voice = e.in.fifo[:0], 0
		e.in.mu.Unlock()
		e.direct = true
	}
	if e.direct && e.answer(p) {
		return
	}
	if e.direct { // not one 20 ms frame: through the buffer from now on
		e.direct, e.steady = false, 1
	}
	e.in.HandlePacket(p)
}

// answer decodes a packet and sends it back encoded again; false when it
// is not one 20 ms frame (it then goes through the buffer).
func (e *echo) answer(p *audio.Packet) bool {
	in := e.in
	if in.silent != nil && in.silent(p.Payload) {
		e.count(false)
		e.quiet++
		e.write(e.silent)
		return true
	}
	var err error
	e.pcm, err = in.dec.decode(e.pcm[:0], p.Payload)
	if err != nil || len(e.pcm) != in.dec.rate()/50 {
		return false
	}
	e.count(true)
	e.quiet = 0
	if e.payload, err = e.enc.encode(e.payload[:0], e.pcm); err != nil {
		return false
	}
	e.write(e.payload)
	return true
}

// count adds a packet answered at once to the ingress's counters.
func (e *echo) count(decoded bool) {
	e.in.mu.Lock()
	e.in.received++
	if decoded {
		e.in.decoded++
	} else {
		e.in.skips++
	}
	e.in.mu.Unlock()
}

func (e *echo) write(p []byte) {
	if err := e.leg.WritePayload(p, e.samples); err != nil && e.err == nil {
		e.err = err
		close(e.failed)
	}
}

func (e *echo) tick(at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.running {
		return
	}
	f := e.in.pull(at)
	var err error
	switch {
	case f == nil && !e.in.hushed: // nothing came: say nothing
		return
	case f == nil: // silence came: send it back without coding it
		p := e.silent
		if e.dtx && e.quiet%dtxEvery != 0 {
			p = nil
		}
		e.quiet++
		err = e.leg.WritePayload(p, e.samples)
	default:
		e.quiet = 0
		if e.payload, err = e.enc.encode(e.payload[:0], f); err == nil {
			err = e.leg.WritePayload(e.payload, e.samples)
		}
	}
	if err != nil && e.err == nil {
		e.err = err
		close(e.failed)
	}
}

func (e *echo) stop(w *worker) {
	w.remove(e)
	e.mu.Lock()
	e.running = false
	e.mu.Unlock()
}
