// Package bridge is the switch: it runs the actions that decide where a call
// goes and connects media legs, to a room or to each other. It knows legs only
// through the Leg interface, which sip.Call (and later the browser peers)
// satisfy without importing this package.
package bridge

import (
	"context"

	"github.com/voxgate/voxgate/audio"
)

// Leg is one party's audio: what it receives arrives as PCM frames, and
// frames written to it are encoded and sent to the party.
type Leg interface {
	// ID identifies the leg in logs and events.
	ID() string
	// Rate is the sample rate of the frames the leg reads and writes.
	Rate() int
	// ReadFrame blocks until the next received frame and copies it into f,
	// reusing f.Samples.
	ReadFrame(ctx context.Context, f *audio.Frame) error
	// WriteFrame sends one frame to the party. It must not block.
	WriteFrame(f *audio.Frame) error
	// Done is closed when the leg has ended.
	Done() <-chan struct{}
}

// Echo sends every frame a leg receives back to it until the leg or ctx ends:
// the echo test extension. The audio is decoded and re-encoded by the leg, so
// the test exercises the whole media path, not a packet reflector.
func Echo(ctx context.Context, leg Leg) error {
	f := audio.Frame{Samples: make([]int16, 0, 960)}
	for {
		if err := leg.ReadFrame(ctx, &f); err != nil {
			return err
		}
		if err := leg.WriteFrame(&f); err != nil {
			return err
		}
	}
}
