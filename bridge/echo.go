package bridge

import (
	"context"
	"time"
)

// Echo plays a leg's audio back to it until the leg or ctx ends: the echo
// test. The audio goes through the same path as in a room (jitter buffer,
// decoder with loss concealment, encoder), so the test exercises the media
// path, not a packet reflector.
func Echo(ctx context.Context, leg Leg) error {
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
	leg.SetPacketHandler(in)
	defer leg.SetPacketHandler(nil)
	samples := uint32(c.Rate / 50)
	payload := make([]byte, 0, 1500)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-leg.Done():
			return nil
		case now := <-t.C:
			f := in.pull(now)
			if f == nil {
				continue
			}
			if payload, err = enc.encode(payload[:0], f); err != nil {
				return err
			}
			if err := leg.WritePayload(payload, samples); err != nil {
				return err
			}
		}
	}
}
