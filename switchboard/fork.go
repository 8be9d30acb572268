package switchboard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
)

// StartCallStream forks a live call's audio to a bot (the API's POST
// /calls/{id}/streams): the bot hears what the leg says (inbound) and what
// it hears (outbound), taken from the leg's room or two-party call on its
// clock. A fork listens only: what the bot sends is not played (to talk
// into a call, route it to a stream rule, or use a room stream); a transfer
// message from it transfers the leg as POST /calls/{id}/transfer does.
func (s *Switchboard) StartCallStream(id string, r api.StreamRequest) (api.StreamInfo, error) {
	a, err := streamOptions(r)
	if err != nil {
		return api.StreamInfo{}, err
	}
	leg, room, err := s.legRoom(id)
	if err != nil {
		return api.StreamInfo{}, err
	}
	if s.streams == nil {
		return api.StreamInfo{}, fmt.Errorf("media streams are not set up: %w", api.ErrConflict)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	bot, err := s.streams(ctx, a, id, leg.Caller(), leg.Dialed())
	if err != nil {
		cancel()
		return api.StreamInfo{}, fmt.Errorf("%w: %v", api.ErrUnreachable, err)
	}
	if err := room.Tap(leg.ID(), bot); err != nil {
		cancel()
		_ = bot.Close()
		if errors.Is(err, bridge.ErrTapped) {
			return api.StreamInfo{}, fmt.Errorf("call %q has a fork already: %w", id, api.ErrConflict)
		}
		return api.StreamInfo{}, fmt.Errorf("call %q is not in a room or call now: %w", id, api.ErrConflict)
	}
	b := &botStream{a: a, cancel: cancel, done: make(chan struct{}), connected: true,
		info: api.StreamInfo{ID: newID("st_"), Kind: "call", Call: id, URL: a.URL, Framing: a.Framing, Rate: max(a.Rate, 8000),
			Tracks: cmpOr(a.Tracks, "inbound"), Origin: "api", Started: time.Now().UTC()}}
	s.mu.Lock()
	s.bots[b.info.ID] = b
	s.mu.Unlock()
	run := func() {
		defer close(b.done)
		defer s.forgetStream(b)
		log := s.log.With("call_id", id, "stream_id", b.info.ID, "stream_url", a.URL)
		log.Info("call stream (fork) started")
		s.streamEvent(false, b.snapshot(), nil, "")
		select {
		case <-leg.Done():
		case <-bot.Done():
		case <-ctx.Done():
		}
		room.Untap(leg.ID())
		_ = bot.Close()
		b.setConnected(false)
		log.Info("call stream (fork) stopped", "error", bot.Err())
		s.streamEvent(true, b.snapshot(), bot.Err(), bot.TransferTo())
		if to := bot.TransferTo(); to != "" && ctx.Err() == nil && !isDone(leg) {
			if err := s.TransferLeg(id, api.TransferRequest{To: to}); err != nil {
				log.Warn("call stream: the bot's transfer failed", "to", to, "error", err)
			}
		}
	}
	if !s.goOwned(run) {
		room.Untap(leg.ID())
		cancel()
		_ = bot.Close()
		s.forgetStream(b)
		return api.StreamInfo{}, fmt.Errorf("voxgate is stopping: %w", api.ErrConflict)
	}
	return b.snapshot(), nil
}

// legRoom finds a live leg and the room its audio goes through: its
// two-party call's, or the conference it is in.
func (s *Switchboard) legRoom(id string) (Leg, *bridge.Room, error) {
	if p := s.pairOf(id); p != nil {
		s.xfer.mu.Lock()
		defer s.xfer.mu.Unlock()
		if i := p.index(id); i >= 0 && !p.ended && p.room != nil {
			return p.legs[i], p.room, nil
		}
	}
	s.mu.Lock()
	ac := s.calls[id]
	s.mu.Unlock()
	if ac == nil {
		return nil, nil, fmt.Errorf("call %q: %w", id, api.ErrNotFound)
	}
	room, ok := s.rooms.Lookup(ac.info.Room)
	if ac.info.Room == "" || !ok || !stillIn(room, id) {
		return nil, nil, fmt.Errorf("call %q is neither in a two-party call nor in a room (an echo, a stream, a prompt): %w", id, api.ErrConflict)
	}
	return ac.leg, room, nil
}
