package bridge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/voxgate/voxgate/audio"
)

// PipeRate is the sample rate of telephony bots: 8 kHz, 20 ms (160
// samples). A peer may ask for another (PipePeer.Rate).
const PipeRate = 8000

// PipePeer is the other party of a leg in a Pipe, such as a bot behind a
// media stream. The pipe calls Put and Take from the shared clock, once per
// 20 ms tick: neither may block or keep the slices it is given.
type PipePeer interface {
	// Rate is the sample rate of the frames exchanged (one of
	// audio.MixRates): a wideband leg's audio reaches a 16 kHz peer as
	// it came, not through 8 kHz.
	Rate() int
	// Put hands over 20 ms at Rate: what the leg said (nil: nothing came,
	// it is silent) and what it heard (the peer's own audio, as played;
	// nil: silence).
	Put(said, heard []int16)
	// Take fills dst (20 ms at Rate) with what the peer says; false: it
	// says nothing now (the leg is sent silence).
	Take(dst []int16) bool
	// Done is closed when the peer has gone.
	Done() <-chan struct{}
}

// ErrPeerGone: the pipe's peer went away.
var ErrPeerGone = errors.New("the peer went away")

// Pipe connects a leg with peer until the leg, the peer or ctx ends: the
// leg's audio goes through the same jitter buffer, decoder and concealment
// as in a room, is resampled to the peer's rate and handed to it; what the
// peer says is encoded and sent to the leg on the same 20 ms clock. It
// returns nil when the leg ended, ErrPeerGone when the peer did.
func Pipe(ctx context.Context, leg Leg, peer PipePeer, mt *Meter) error {
	p, err := newPipe(leg, peer)
	if err != nil {
		return err
	}
	in := p.in
	if queueWrites(leg) { // a leg whose writes may wait gets them from a goroutine of its own
		p.out = newEgress(leg)
		ectx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); p.out.run(ectx) }()
		defer func() { cancel(); <-done }()
	}
	t := mt.attach(leg, in, nil)
	defer mt.detach(t)
	leg.SetPacketHandler(in)
	defer leg.SetPacketHandler(nil)
	w := DefaultClock().add(p)
	defer p.stop(w)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-leg.Done():
		return nil
	case <-peer.Done():
		return ErrPeerGone
	case <-p.failed:
		return p.err
	}
}

func newPipe(leg Leg, peer PipePeer) (*pipe, error) {
	c := leg.Codec()
	rate := peer.Rate()
	if err := audio.CheckMixRate(rate); err != nil {
		return nil, err
	}
	in, err := newIngress(leg, rate, time.Now)
	if err != nil {
		return nil, err
	}
	enc, err := newEncoder(c, rate)
	if err != nil {
		return nil, err
	}
	p := &pipe{leg: leg, peer: peer, in: in, enc: enc, samples: uint32(c.Rate / 50), running: true, failed: make(chan struct{}),
		payload: make([]byte, 0, 1500), frame: make([]int16, rate/50)}
	if r := enc.rate(); r != rate {
		if p.rs, err = audio.NewResampler(rate, r, rate/50); err != nil {
			return nil, err
		}
		p.up = make([]int16, 0, r/50)
	}
	return p, nil
}

// pipe is one leg-to-peer connection on the clock.
type pipe struct {
	leg     Leg
	peer    PipePeer
	in      *ingress
	enc     encoder
	out     *egress          // a queue and a goroutine for a QueuedWriter; nil: written from the tick
	rs      *audio.Resampler // the peer's rate -> the encoder's rate; nil when equal
	up      []int16
	samples uint32

	mu      sync.Mutex
	running bool
	frame   []int16
	payload []byte
	err     error
	failed  chan struct{}
}

func (p *pipe) tick(at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return
	}
	heard := p.frame
	if !p.peer.Take(p.frame) {
		clear(p.frame)
		heard = nil
	}
	p.peer.Put(p.in.pull(at), heard)
	pcm := p.frame
	if p.rs != nil {
		p.up = p.rs.Process(p.up[:0], p.frame)
		pcm = p.up
	}
	var err error
	if p.payload, err = p.enc.encode(p.payload[:0], pcm); err == nil {
		if p.out != nil {
			p.out.push(p.payload, p.samples)
		} else {
			err = p.leg.WritePayload(p.payload, p.samples)
		}
	}
	if err != nil && p.err == nil {
		p.err = err
		close(p.failed)
	}
}

func (p *pipe) stop(w *worker) {
	w.remove(p)
	p.mu.Lock()
	p.running = false
	p.mu.Unlock()
}
