package switchboard

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// BotStream is a media stream to a bot, the other party of a call that the
// stream action handed to it (package stream gives one).
type BotStream interface {
	bridge.PipePeer
	// DTMF sends a digit the caller keyed to the bot.
	DTMF(digit rune)
	// Err says why the stream ended: nil when the bot closed it cleanly.
	Err() error
	// Close ends the stream (telling the bot); it is idempotent.
	Close() error
	// TransferTo is the number the bot asked the call to go to ("" none):
	// routed in the stream rule's context once the stream has ended.
	TransferTo() string
}

// StreamDialer opens a media stream to the bot of a stream action for the
// call callID from caller to dialed.
type StreamDialer func(ctx context.Context, a dialplan.StreamAction, callID, caller, dialed string) (BotStream, error)

// streamAction hands the call to a bot: the bot is reached first (a call
// it refuses is refused with 503, or goes to on_error), then the call is
// answered and its audio goes both ways until the call ends or the bot
// closes the stream (the call then goes to then, else it is hung up).
func (s *Switchboard) streamAction(ctx context.Context, c Leg, a dialplan.Action, log *slog.Logger) {
	sa := a.Stream
	log = log.With("stream_url", sa.URL)
	var (
		bot BotStream
		err = errors.New("media streams are not set up")
	)
	if s.streams != nil {
		bot, err = s.streams(ctx, sa, c.ID(), c.Caller(), c.Dialed())
	}
	if err != nil {
		log.Warn("media stream: the bot cannot be reached", "error", err, "on_error", sa.OnError)
		if sa.OnError == "" {
			s.setCause(c, "system", 503, "the bot cannot be reached")
			s.reject(c, 503, "Service Unavailable")
			return
		}
		if s.answer(ctx, c) == nil {
			s.streamNext(ctx, c, a, sa.OnError, log)
		}
		return
	}
	defer bot.Close()
	info := api.StreamInfo{Kind: "call", Call: c.ID(), URL: sa.URL, Framing: sa.Framing, Rate: max(sa.Rate, 8000),
		Tracks: cmpOr(sa.Tracks, "inbound"), Origin: "dialplan", Started: time.Now().UTC(), Connected: true}
	if err := s.answer(ctx, c); err != nil {
		return
	}
	s.streamEvent(false, info, nil, "")
	c.OnDTMF(bot.DTMF)
	err = bridge.Pipe(ctx, c, bot, s.meter)
	c.OnDTMF(nil)
	_ = bot.Close()
	info.Connected = false
	s.streamEvent(true, info, bot.Err(), bot.TransferTo())
	next := ""
	switch {
	case errors.Is(err, bridge.ErrPeerGone) && bot.Err() == nil && bot.TransferTo() != "":
		next = bot.TransferTo()
		log.Info("media stream: the bot transfers the call", "to", next)
	case errors.Is(err, bridge.ErrPeerGone) && bot.Err() == nil:
		log.Info("media stream: the bot ended the stream", "then", sa.Then)
		next = sa.Then
	case errors.Is(err, bridge.ErrPeerGone):
		log.Warn("media stream failed", "error", bot.Err(), "on_error", sa.OnError)
		next = sa.OnError
	case err != nil && ctx.Err() == nil:
		log.Warn("media stream: the call's media failed", "error", err)
		hangup(c)
		return
	default: // the call ended, or the switchboard stops
		return
	}
	if next == "" {
		s.setCause(c, "system", 0, "the bot ended the stream")
		hangup(c)
		return
	}
	s.streamNext(ctx, c, a, next, log)
}

// streamNext takes an answered call from a stream to number, routed in the
// stream rule's context (so a bot reaches only what the caller may): any
// action, a room, a user, a number through a trunk, the echo, a prompt,
// another stream, a refusal. When the action is over the call is hung up.
func (s *Switchboard) streamNext(ctx context.Context, c Leg, a dialplan.Action, number string, log *slog.Logger) {
	na, err := s.plan.Load().Route(dialplan.Call{Context: a.Context, Number: number, Caller: c.Caller()})
	if err != nil {
		log.Warn("media stream: the call cannot go on: hanging up", "to", number, "error", err)
		s.setCause(c, "system", 0, "no route after the stream")
		hangup(c)
		return
	}
	nlog := s.log.With("call_id", c.ID(), "context", na.Context, "rule_line", na.Line, "action", na.Kind)
	nlog.Info("media stream over: the call goes on", "to", number)
	switch na.Kind {
	case dialplan.Room:
		s.movedTo(c, na.Room.Name)
	case dialplan.PIN:
		s.movedTo(c, na.PIN.Room.Name)
	case dialplan.Reject: // an answered call cannot be refused: it is hung up, with the rule's status as its cause
		nlog.Info("rejected by the dialplan after the stream: hanging up", "status", na.Reject.Status)
		s.setCause(c, "dialplan", na.Reject.Status, na.Reject.Reason)
		hangup(c)
		return
	}
	s.runAction(ctx, c, na, nlog)
	if !isDone(c) && ctx.Err() == nil { // a refusal or a failed dial cannot refuse an answered call
		hangup(c)
	}
}
