package switchboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// Room streams reconnect after a fault with this backoff, while the room
// lives: 0.5 s, doubling, at most 30 s; a connection that lasted
// backoffReset starts the backoff again from its first step.
const (
	backoffFirst = 500 * time.Millisecond
	backoffMax   = 30 * time.Second
	backoffReset = 30 * time.Second
)

// botStream is a media stream started on a room (the bot is a participant)
// or on a call (a fork: the bot hears it), listed by the API.
type botStream struct {
	info   api.StreamInfo // ID, Kind, Room or Call, URL... (Connected, Reconnects under mu)
	a      dialplan.StreamAction
	cancel context.CancelFunc
	done   chan struct{} // closed when its goroutine is over

	mu         sync.Mutex
	connected  bool
	reconnects int
}

func (b *botStream) snapshot() api.StreamInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.info
	i.Connected, i.Reconnects = b.connected, b.reconnects
	return i
}

func (b *botStream) setConnected(on bool) {
	b.mu.Lock()
	b.connected = on
	b.mu.Unlock()
}

// stop ends the stream and waits for its goroutine.
func (b *botStream) stop() {
	b.cancel()
	<-b.done
}

// StreamEvent is a media stream to a bot connecting (Ended false) or
// ending: a call a stream rule handed to a bot, a fork, a room's bot.
type StreamEvent struct {
	Ended bool
	// Info is the stream: ID is "" for a call a stream rule handed to a
	// bot (Kind "call", Origin "dialplan").
	Info api.StreamInfo
	// Err says why it ended when the bot failed; TransferTo is where the
	// bot sent the call.
	Err        error
	TransferTo string
	At         time.Time
}

// streamEvent tells Config.StreamEvents.
func (s *Switchboard) streamEvent(ended bool, info api.StreamInfo, err error, to string) {
	if s.streamEvents != nil {
		s.streamEvents(StreamEvent{Ended: ended, Info: info, Err: err, TransferTo: to, At: time.Now().UTC()})
	}
}

// streamCounters are the room streams' counts for /metrics.
type streamCounters struct {
	reconnects atomic.Uint64
}

// Streams lists the media streams started on rooms and calls, oldest first.
func (s *Switchboard) Streams() []api.StreamInfo {
	s.mu.Lock()
	out := make([]api.StreamInfo, 0, len(s.bots))
	for _, b := range s.bots {
		out = append(out, b.snapshot())
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// StopStream ends a stream started on a room or a call; it returns the
// stream as it was.
func (s *Switchboard) StopStream(id string) (api.StreamInfo, error) {
	s.mu.Lock()
	b := s.bots[id]
	s.mu.Unlock()
	if b == nil {
		return api.StreamInfo{}, fmt.Errorf("stream %q: %w", id, api.ErrNotFound)
	}
	info := b.snapshot()
	b.stop()
	info.Connected = false
	return info, nil
}

// streamAction turns an API request into the dialplan's stream options,
// checked as the dialplan checks them.
func streamOptions(r api.StreamRequest) (dialplan.StreamAction, error) {
	a := dialplan.StreamAction{URL: r.URL, Framing: r.Framing, Rate: r.Rate, Tracks: r.Tracks, Headers: r.Headers, Parameters: r.Parameters}
	if err := a.Check(); err != nil {
		return a, err
	}
	if a.Framing == "" {
		a.Framing = "twilio"
	}
	return a, nil
}

// StartRoomStream starts a bot on a room somebody is in (the API's POST
// /rooms/{room}/streams).
func (s *Switchboard) StartRoomStream(name string, r api.StreamRequest) (api.StreamInfo, error) {
	a, err := streamOptions(r)
	if err != nil {
		return api.StreamInfo{}, err
	}
	room, ok := s.rooms.Lookup(name)
	if !ok || room.Len()-room.Peers() == 0 {
		return api.StreamInfo{}, fmt.Errorf("room %q has nobody in it: %w", name, api.ErrNotFound)
	}
	b, err := s.startRoomStream(name, a, "api")
	if err != nil {
		return api.StreamInfo{}, err
	}
	return b.snapshot(), nil
}

// roomEntered starts the room's own bot (its dialplan stream option) if it
// has none running.
func (s *Switchboard) roomEntered(room *bridge.Room, ra dialplan.RoomAction, log *slog.Logger) {
	if ra.Stream == nil {
		return
	}
	if _, err := s.startRoomStream(room.Name(), *ra.Stream, "dialplan"); err != nil {
		log.Warn("room stream: cannot start", "room", room.Name(), "error", err)
	}
}

// roomLeft stops the room's bots once nobody but bots is in it.
func (s *Switchboard) roomLeft(room *bridge.Room) {
	if room.Len()-room.Peers() > 0 {
		return
	}
	s.mu.Lock()
	var stop []*botStream
	for _, b := range s.bots {
		if b.info.Kind == "room" && b.info.Room == room.Name() {
			stop = append(stop, b)
		}
	}
	s.mu.Unlock()
	for _, b := range stop {
		b.stop()
	}
}

// startRoomStream runs a bot in room until stopped or the switchboard
// closes: it connects, joins the room as a participant, and after a fault
// (the bot unreachable, gone, refusing) reconnects with backoff. A bot
// that ends the stream cleanly (a close, disconnect) is not called again.
// A room has one dialplan bot at most: when it has one already, nothing
// is started (nil, nil).
func (s *Switchboard) startRoomStream(room string, a dialplan.StreamAction, origin string) (*botStream, error) {
	if s.streams == nil {
		return nil, fmt.Errorf("media streams are not set up: %w", api.ErrConflict)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	b := &botStream{a: a, cancel: cancel, done: make(chan struct{}),
		info: api.StreamInfo{ID: newID("st_"), Kind: "room", Room: room, URL: a.URL, Framing: a.Framing, Rate: max(a.Rate, 8000),
			Tracks: cmpOr(a.Tracks, "inbound"), Origin: origin, Started: time.Now().UTC()}}
	s.mu.Lock()
	for _, o := range s.bots { // checked and added under one lock: two callers entering at once start one bot
		if origin == "dialplan" && o.info.Kind == "room" && o.info.Room == room && o.info.Origin == "dialplan" {
			s.mu.Unlock()
			cancel()
			return nil, nil
		}
	}
	s.bots[b.info.ID] = b
	s.mu.Unlock()
	if !s.goOwned(func() { s.runRoomStream(ctx, b) }) {
		cancel()
		s.forgetStream(b)
		close(b.done)
		return nil, fmt.Errorf("voxgate is stopping: %w", api.ErrConflict)
	}
	return b, nil
}

func cmpOr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (s *Switchboard) forgetStream(b *botStream) {
	s.mu.Lock()
	if s.bots[b.info.ID] == b {
		delete(s.bots, b.info.ID)
	}
	s.mu.Unlock()
}

func (s *Switchboard) runRoomStream(ctx context.Context, b *botStream) {
	defer close(b.done)
	defer s.forgetStream(b)
	room := b.info.Room
	log := s.log.With("room", room, "stream_id", b.info.ID, "stream_url", b.a.URL)
	log.Info("room stream started", "origin", b.info.Origin)
	defer log.Info("room stream stopped")
	legID := "bot-" + b.info.ID
	delay := backoffFirst
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			delay = min(2*delay, backoffMax)
			b.mu.Lock()
			b.reconnects++
			b.mu.Unlock()
			s.streamStats.reconnects.Add(1)
		}
		bot, err := s.streams(ctx, b.a, b.info.ID, "", room)
		if ctx.Err() != nil {
			if err == nil {
				_ = bot.Close()
			}
			return
		}
		if err != nil {
			log.Warn("room stream: the bot cannot be reached: trying again", "error", err, "in_ms", delay.Milliseconds())
			continue
		}
		r, ok := s.rooms.Lookup(room)
		if !ok {
			_ = bot.Close()
			return
		}
		if err := r.JoinPeer(legID, bot, bridge.JoinOptions{}); err != nil {
			_ = bot.Close()
			if errors.Is(err, bridge.ErrClosed) {
				return // the room emptied and was released
			}
			log.Warn("room stream: the room refused the bot: trying again", "error", err, "in_ms", delay.Milliseconds())
			continue
		}
		b.setConnected(true)
		s.streamEvent(false, b.snapshot(), nil, "")
		since := time.Now()
		select {
		case <-bot.Done():
		case <-ctx.Done():
		}
		_ = r.Leave(legID)
		_ = bot.Close()
		b.setConnected(false)
		s.streamEvent(true, b.snapshot(), bot.Err(), "")
		if ctx.Err() != nil {
			return
		}
		if bot.Err() == nil {
			log.Info("room stream: the bot ended the stream")
			return
		}
		if time.Since(since) >= backoffReset {
			delay = backoffFirst
		}
		log.Warn("room stream: the bot went away: reconnecting", "error", bot.Err(), "in_ms", delay.Milliseconds())
	}
}
