package sip

import (
	"context"
	"sync"

	"github.com/voxgate/voxgate/audio"
)

// packetQueue is the tests' packet handler: a bounded, drop-oldest queue of
// received packets that a test reads at its own pace (the bridge pushes
// packets straight into its jitter buffers instead).
type packetQueue struct {
	mu      sync.Mutex
	pkts    [16]audio.Packet
	head, n int
	dropped uint64
	ready   chan struct{}
}

func newPacketQueue() *packetQueue {
	q := &packetQueue{ready: make(chan struct{}, 1)}
	for i := range q.pkts {
		q.pkts[i].Payload = make([]byte, 0, 512)
	}
	return q
}

// HandlePacket queues a copy of p, dropping the oldest when full.
func (q *packetQueue) HandlePacket(p *audio.Packet) {
	q.mu.Lock()
	if q.n == len(q.pkts) {
		q.head = (q.head + 1) % len(q.pkts)
		q.n--
		q.dropped++
	}
	slot := &q.pkts[(q.head+q.n)%len(q.pkts)]
	slot.Seq, slot.Timestamp, slot.SSRC = p.Seq, p.Timestamp, p.SSRC
	slot.Payload = append(slot.Payload[:0], p.Payload...)
	q.n++
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop copies the oldest packet into dst, reporting false when empty.
func (q *packetQueue) pop(dst *audio.Packet) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return false
	}
	src := &q.pkts[q.head]
	dst.Seq, dst.Timestamp, dst.SSRC = src.Seq, src.Timestamp, src.SSRC
	dst.Payload = append(dst.Payload[:0], src.Payload...)
	q.head = (q.head + 1) % len(q.pkts)
	q.n--
	return true
}

func (q *packetQueue) droppedCount() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// read blocks until a packet is queued, ctx ends or done closes.
func (q *packetQueue) read(ctx context.Context, done <-chan struct{}, p *audio.Packet) error {
	for {
		if q.pop(p) {
			return nil
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return ErrCallEnded
		}
	}
}

// frameReader decodes a call's received packets to PCM frames with the
// codec registry's decoder (8 kHz where the codec can run at it).
type frameReader struct {
	c   *Call
	q   *packetQueue
	pkt audio.Packet
	dec audio.CodecDecoder
}

func newFrameReader(c *Call) *frameReader {
	r := &frameReader{c: c, q: newPacketQueue()}
	c.SetPacketHandler(r.q)
	return r
}

// read waits for the next packet and decodes it into f.
func (r *frameReader) read(ctx context.Context, f *audio.Frame) error {
	if r.dec == nil {
		info, ok := audio.LookupCodec(r.c.Codec().Name)
		if !ok {
			return ErrFrameRate
		}
		dec, err := info.NewDecoder(8000)
		if err != nil {
			return err
		}
		r.dec = dec
	}
	if err := r.q.read(ctx, r.c.Done(), &r.pkt); err != nil {
		return err
	}
	var err error
	f.Rate = r.dec.Rate()
	f.Samples, err = r.dec.Decode(f.Samples[:0], r.pkt.Payload)
	return err
}
