package bridge

import (
	"context"
	"sync"
)

// egressDepth is how many encoded frames may wait for a slow leg; beyond
// that the oldest is dropped, so a stalled leg never delays the room.
const egressDepth = 4

// egress is a leg's send queue: a bounded, drop-oldest ring of encoded
// frames, written to the leg by its own goroutine.
type egress struct {
	leg Leg

	mu      sync.Mutex
	buf     [egressDepth][]byte
	samples [egressDepth]uint32
	head, n int
	dropped uint64
	gap     uint32 // RTP clock units of dropped frames, written before the next one
	sent    uint64
	ready   chan struct{}
}

func newEgress(leg Leg) *egress {
	e := &egress{leg: leg, ready: make(chan struct{}, 1)}
	for i := range e.buf {
		e.buf[i] = make([]byte, 0, 1500)
	}
	return e
}

// push queues a copy of payload.
func (e *egress) push(payload []byte, samples uint32) {
	e.mu.Lock()
	if e.n == egressDepth {
		// The oldest frame is dropped, not its time: the leg's RTP clock
		// still advances by it (a gap) before the next frame goes out.
		e.gap += e.samples[e.head]
		e.head = (e.head + 1) % egressDepth
		e.n--
		e.dropped++
	}
	i := (e.head + e.n) % egressDepth
	e.buf[i] = append(e.buf[i][:0], payload...)
	e.samples[i] = samples
	e.n++
	e.mu.Unlock()
	select {
	case e.ready <- struct{}{}:
	default:
	}
}

// run writes queued frames to the leg until ctx ends.
func (e *egress) run(ctx context.Context) {
	out := make([]byte, 0, 1500)
	for {
		e.mu.Lock()
		if e.n == 0 {
			e.mu.Unlock()
			select {
			case <-e.ready:
				continue
			case <-ctx.Done():
				return
			}
		}
		out = append(out[:0], e.buf[e.head]...)
		samples, gap := e.samples[e.head], e.gap
		e.gap = 0
		e.head = (e.head + 1) % egressDepth
		e.n--
		e.sent++
		e.mu.Unlock()
		if gap > 0 {
			_ = e.leg.WritePayload(nil, gap)
		}
		_ = e.leg.WritePayload(out, samples)
	}
}

func (e *egress) counts() (sent, dropped uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sent, e.dropped
}
