package main

import (
	"context"
	"log/slog"

	"github.com/voxgate/voxgate/dialplan"
	"github.com/voxgate/voxgate/stream"
	"github.com/voxgate/voxgate/switchboard"
)

var _ switchboard.BotStream = (*stream.Stream)(nil)

// botStreams opens the stream action's media streams with package stream.
func botStreams(log *slog.Logger) switchboard.StreamDialer {
	return func(ctx context.Context, a dialplan.StreamAction, callID, caller, dialed string) (switchboard.BotStream, error) {
		return stream.Dial(ctx, stream.Config{URL: a.URL, Framing: a.Framing, Rate: a.Rate, Tracks: a.Tracks, Headers: a.Headers, Parameters: a.Parameters,
			CallID: callID, From: caller, To: dialed, BargeIn: a.BargeIn, Logger: log})
	}
}
