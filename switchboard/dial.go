package switchboard

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// ring calls out through trunks in order (failover.go), or rings every
// device of a user at once (open pages, registered phones): the first to
// answer wins and the others are cancelled (a late answer is hung up). It
// returns the trunk that carried a trunk call.
func (s *Switchboard) ring(ctx context.Context, from string, d dialplan.DialAction, log *slog.Logger) (Leg, string, error) {
	if d.Trunk != "" || len(d.Trunks) > 0 {
		return s.dialTrunks(ctx, d, log)
	}
	leg, err := s.ringUser(ctx, from, d, log)
	return leg, "", err
}

// ringUser rings every device of d.User at once.
func (s *Switchboard) ringUser(ctx context.Context, from string, d dialplan.DialAction, log *slog.Logger) (Leg, error) {
	var devices []Device
	here := ctx.Value(hereOnly{}) != nil // forwarded by another node (RingHere)
	for _, dl := range s.dialers {
		if hd, ok := dl.(HereDialer); ok && here {
			devices = append(devices, hd.DevicesHere(d.User)...)
			continue
		}
		devices = append(devices, dl.Devices(d.User)...)
	}
	if len(devices) == 0 {
		return nil, ErrNotReachable
	}
	type answer struct {
		leg Leg
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan answer, len(devices))
	var wg sync.WaitGroup
	for _, dev := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leg, err := dev(ctx, from)
			results <- answer{leg, err}
		}()
	}
	log.Info("ringing", "user", d.User, "devices", len(devices))
	var winner Leg
	var lastErr error
	for range devices {
		a := <-results
		switch {
		case a.err != nil:
			lastErr = a.err
		case winner == nil:
			winner = a.leg
			cancel() // stop ringing the others
		default: // answered too late
			hangup(a.leg)
		}
	}
	wg.Wait()
	if winner != nil {
		return winner, nil
	}
	return nil, lastErr
}

// dial rings a user or calls out through a trunk and bridges the caller to
// whoever answers, transcoding where the codecs differ.
func (s *Switchboard) dial(ctx context.Context, c Leg, d dialplan.DialAction, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(ctx, time.Duration(d.Timeout)*time.Second)
	defer cancel()
	_ = c.Ringing()                    // the caller hears or sees that it rings
	early := s.startEarly(ctx, c, log) // ringback, then the far end's early media
	callee, trunk, err := s.ring(withDialTrace(rctx, early.trace()), c.Caller(), d, log)
	early.stop() // the caller's media is free for the answer
	if trunk != "" && trunk != d.Trunk {
		s.noteTrunk(c, trunk) // a later trunk carried the call, or gave the last answer
		d.Trunk = trunk
	}
	if err != nil {
		log.Info("no answer", "user", d.User, "trunks", d.TrunkOrder(), "error", err)
		var st sipStatus
		switch {
		case errors.As(err, &st):
			code, reason := st.SIPStatus()
			s.setCause(c, "callee", code, reason)
			s.reject(c, code, reason)
		default: // not reachable, no answer in time, unknown trunk
			s.reject(c, 480, "Temporarily Unavailable")
		}
		return
	}
	if err := s.answer(ctx, c); err != nil {
		hangup(callee)
		return
	}
	s.setCallee(c, callee)
	relayDTMF(c, callee)                                                                   // digits keyed on either side go to the other (RFC 4733 toward a phone)
	_ = callee.Answer(ctx)                                                                 // tells a page the call is up
	room, err := bridge.Connect(c, callee, bridge.RoomConfig{Logger: log, Meter: s.meter}) // the call's lines carry its call_id
	if err != nil {
		log.Error("cannot bridge the call", "error", err)
		hangup(c)
		hangup(callee)
		return
	}
	log.Info("call bridged", "caller", c.Caller(), "user", d.User, "trunk", d.Trunk, "number", d.Number, "rate", room.Rate())
	calleeOrigin := "user"
	if d.Trunk != "" {
		calleeOrigin = "trunk:" + d.Trunk
	}
	// The pair's watcher (transfer.go) ends the call when either leg ends;
	// a transfer may put another leg in place of either.
	if !s.newPair(c, callee, s.originOf(c), calleeOrigin, room, log) {
		hangup(c)
		hangup(callee)
		room.Close()
		return
	}
	s.holdPair(ctx, c)
}

// holdPair waits until c ends (or ctx does: c is hung up), then ends the
// two-party call c is in now, unless a transfer took c out of it.
func (s *Switchboard) holdPair(ctx context.Context, c Leg) {
	p := s.pairOf(c.ID()) // c stays in this pair until a transfer takes it out
	select {
	case <-c.Done():
		s.setCause(c, "caller", 0, "") // unless the callee or a transfer ended it
	case <-ctx.Done():
		s.endedByContext(ctx, c)
	}
	if p != nil {
		legs, room, ended, in := s.endPairOf(p, c.ID())
		switch {
		case ended:
			room.Close()
			for _, l := range legs {
				l.OnDTMF(nil)
				hangup(l)
			}
			p.finish()
		case in:
			<-p.finished // whoever ended it hangs the partner up: let it
		}
	}
	hangup(c)
}

// originOf returns the origin of the routed call c ("" when not routed).
func (s *Switchboard) originOf(c Leg) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ac := s.calls[c.ID()]; ac != nil {
		return ac.info.Origin
	}
	return ""
}
