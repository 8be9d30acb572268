// Package bridge is the switch and the rooms: it runs the actions that
// decide where a call goes and connects media legs to a room or to each
// other. It knows legs only through the Leg interface, which sip.Call (and
// the browser peers) satisfy without importing this package. Per leg it runs
// a jitter buffer, a decoder with loss concealment and a resampler to the
// room rate; per room one 20 ms clock mixes (mix-minus) and encodes, once per
// codec for everyone who hears the same mix.
package bridge

import (
	"context"

	"github.com/voxgate/voxgate/audio"
)

// Leg is one party's audio as RTP media.
type Leg interface {
	// ID identifies the leg in logs and events.
	ID() string
	// Codec is the negotiated codec and RTP clock rate.
	Codec() audio.Codec
	// ReadPacket blocks until the next received RTP packet and copies it
	// into p (reusing p.Payload).
	ReadPacket(ctx context.Context, p *audio.Packet) error
	// WritePayload sends one encoded frame covering samples RTP clock
	// units. It must not block for long.
	WritePayload(payload []byte, samples uint32) error
	// Done is closed when the leg has ended.
	Done() <-chan struct{}
}
