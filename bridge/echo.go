package bridge

import (
	"context"
	"sync"
	"time"
)

// Echo plays a leg's audio back to it until the leg or ctx ends: the echo
// test. The audio goes through the same path as in a room (jitter buffer,
// decoder with loss concealment, encoder) on the shared clock, so the test
// exercises the media path, not a packet reflector.
func Echo(ctx context.Context, leg Leg) error { return EchoMetered(ctx, leg, nil) }

// EchoMetered is Echo with the leg's media counted by mt (nil: not counted).
func EchoMetered(ctx context.Context, leg Leg, mt *Meter) error {
	c := leg.Codec()
	dec, err := newDecoder(c, 8000)
	if err != nil {
		return err
	}
	rate := dec.rate()
	in, err := newIngress(leg, rate, time.Now)
	if err != nil {
		return err
	}
	enc, err := newEncoder(c, rate)
	if err != nil {
		return err
	}
	e := &echo{leg: leg, in: in, enc: enc, samples: uint32(c.Rate / 50), payload: make([]byte, 0, 1500), running: true, failed: make(chan struct{})}
	if e.silent, err = enc.encode(nil, make([]int16, rate/50)); err != nil {
		return err
	}
	info, _ := lookupCodec(c)
	e.dtx = info.DTX && acceptsDTX(leg)
	t := mt.attach(leg, in, nil)
	defer mt.detach(t)
	leg.SetPacketHandler(in)
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
