package switchboard

import (
	"context"
	"log/slog"

	"github.com/voxgate/voxgate/bridge"
)

// echo answers and plays the caller's audio back through the media path
// (jitter buffer, decoder, encoder): the echo test.
func (s *Switchboard) echo(ctx context.Context, c Leg, log *slog.Logger) {
	if err := s.answer(ctx, c); err != nil {
		return
	}
	if err := bridge.EchoMetered(ctx, c, s.meter); err != nil && ctx.Err() == nil {
		log.Warn("echo ended", "error", err)
	}
}
