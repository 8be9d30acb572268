package switchboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/dialplan"
)

// Transfer is what a transfer asks for: the transferor's call partner (or,
// for a leg in a room, the room) goes to To, or, attended, is connected
// with the partner of the transferor's other call (Replaces).
type Transfer struct {
	// To is the number, user or room the transferee goes to, routed through
	// the transferor's dialplan context (or Context).
	To string
	// Replaces, for an attended transfer, is the ID of the transferor's
	// other leg: its partner is connected with the transferee, and both of
	// the transferor's legs end.
	Replaces string
	// By says who asked (a REFER's Referred-By, "api"), for the log.
	By string
	// Context routes To instead of the transferor's own context (the REST
	// API's operators).
	Context string
}

// TransferError is why a transfer was refused or failed, as the SIP status
// a REFER's answer or its NOTIFY carries.
type TransferError struct {
	Status int
	Reason string
}

func (e *TransferError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Reason) }

// SIPStatus implements the sip package's status errors.
func (e *TransferError) SIPStatus() (int, string) { return e.Status, e.Reason }

// Unwrap makes a refusal an api.ErrForbidden and a transfer refused while
// voxgate stops an api.ErrConflict, for the REST API.
func (e *TransferError) Unwrap() error {
	switch e.Status {
	case 403:
		return api.ErrForbidden
	case 503:
		return api.ErrConflict
	}
	return nil
}

func forbidden(why string) *TransferError {
	return &TransferError{Status: 403, Reason: "Forbidden (" + why + ")"}
}

// pair is a two-party call in progress: a dial's caller and callee, or the
// legs a transfer connected. A transfer swaps a leg of it; its watcher ends
// it when a leg ends.
type pair struct {
	legs    [2]Leg
	origins [2]string // the legs' origins, for the context a transfer routes by
	room    *bridge.Room
	changed chan struct{} // closed (and replaced) on every swap
	ended   bool
	// pending counts the blind transfers in progress by each transferor:
	// a transferor that hangs up meanwhile (phones that send BYE right
	// after the 202) does not end the call; the transferee waits for the
	// target, and is hung up only if the transfer fails.
	pending map[string]int
	log     *slog.Logger
	// finished is closed once whoever ended the pair has hung up its legs
	// (or handed them on).
	finished   chan struct{}
	finishOnce sync.Once
}

func (p *pair) finish() { p.finishOnce.Do(func() { close(p.finished) }) }

// transfers are the pairs, by the IDs of their legs.
type transfers struct {
	mu    sync.Mutex
	pairs map[string]*pair
}

func (p *pair) index(id string) int {
	for i, l := range p.legs {
		if l.ID() == id {
			return i
		}
	}
	return -1
}

// relayDTMF sends the digits keyed on either leg to the other.
func relayDTMF(a, b Leg) {
	a.OnDTMF(func(d rune) { _ = b.SendDTMF(string(d)) })
	b.OnDTMF(func(d rune) { _ = a.SendDTMF(string(d)) })
}

// newPair registers a bridged two-party call and watches it; it returns
// false when the switchboard is closing (the caller ends the call itself).
func (s *Switchboard) newPair(a, b Leg, originA, originB string, room *bridge.Room, log *slog.Logger) bool {
	p := &pair{legs: [2]Leg{a, b}, origins: [2]string{originA, originB}, room: room, changed: make(chan struct{}), log: log,
		finished: make(chan struct{})}
	relayDTMF(a, b)
	s.xfer.mu.Lock()
	if s.xfer.pairs == nil {
		s.xfer.pairs = map[string]*pair{}
	}
	s.xfer.pairs[a.ID()], s.xfer.pairs[b.ID()] = p, p
	s.xfer.mu.Unlock()
	if !s.goOwned(func() { s.watchPair(p) }) {
		s.endPair(p)
		p.finish()
		return false
	}
	return true
}

// endPair unregisters p; it returns its legs and room when it was still
// going (the caller hangs up and closes them, then calls p.finish), nil
// when it had ended.
func (s *Switchboard) endPair(p *pair) ([2]Leg, *bridge.Room, bool) {
	s.xfer.mu.Lock()
	defer s.xfer.mu.Unlock()
	return s.endPairLocked(p)
}

func (s *Switchboard) endPairLocked(p *pair) ([2]Leg, *bridge.Room, bool) {
	if p.ended {
		return [2]Leg{}, nil, false
	}
	p.ended = true
	for _, l := range p.legs {
		if s.xfer.pairs[l.ID()] == p {
			delete(s.xfer.pairs, l.ID())
		}
	}
	close(p.changed)
	return p.legs, p.room, true
}

// endPairOf ends p if leg id is still in it (ended); in reports whether
// it was in p, ended by this call or before.
func (s *Switchboard) endPairOf(p *pair, id string) (legs [2]Leg, room *bridge.Room, ended, in bool) {
	s.xfer.mu.Lock()
	defer s.xfer.mu.Unlock()
	if p.index(id) < 0 || p.pending[id] > 0 { // out, or on its way out: the transfer decides
		return legs, nil, false, false
	}
	legs, room, ended = s.endPairLocked(p)
	return legs, room, ended, true
}

// watchPair ends a pair when one of its legs ends (or voxgate stops): the
// other leg is hung up.
func (s *Switchboard) watchPair(p *pair) {
	for {
		s.xfer.mu.Lock()
		if p.ended {
			s.xfer.mu.Unlock()
			return
		}
		a, b, changed := p.legs[0], p.legs[1], p.changed
		aDone, bDone := p.watch(a), p.watch(b)
		s.xfer.mu.Unlock()
		var gone Leg
		select {
		case <-aDone:
			gone = a
		case <-bDone:
			gone = b
		case <-changed:
			continue
		case <-s.ctx.Done():
		}
		s.xfer.mu.Lock()
		if gone != nil && (p.legs[0] != a || p.legs[1] != b || p.pending[gone.ID()] > 0) {
			s.xfer.mu.Unlock()
			continue // swapped, or a transfer started: look again
		}
		legs, room, ok := s.endPairLocked(p)
		s.xfer.mu.Unlock()
		if !ok {
			return
		}
		for _, l := range legs {
			l.OnDTMF(nil)
			switch {
			case gone == nil:
			case l == gone:
				s.setCause(l, "caller", 0, "")
			default:
				s.setCause(l, "callee", 0, "")
			}
		}
		room.Close()
		for _, l := range legs {
			if l != gone {
				hangup(l)
			}
		}
		p.finish()
		return
	}
}

// watch returns what ends the pair on l's side: its Done channel, or nil
// while l, already gone, has a transfer in progress.
func (p *pair) watch(l Leg) <-chan struct{} {
	if p.pending[l.ID()] > 0 && isDone(l) {
		return nil
	}
	return l.Done()
}

// transferring notes (n = 1) or ends (n = -1) a transfer in progress by
// leg x of p; the watcher looks again.
func (s *Switchboard) transferring(p *pair, x Leg, n int) {
	s.xfer.mu.Lock()
	defer s.xfer.mu.Unlock()
	if p.pending == nil {
		p.pending = map[string]int{}
	}
	if p.pending[x.ID()] += n; p.pending[x.ID()] <= 0 {
		delete(p.pending, x.ID())
	}
	if !p.ended {
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// pairOf returns the pair leg id is in.
func (s *Switchboard) pairOf(id string) *pair {
	s.xfer.mu.Lock()
	defer s.xfer.mu.Unlock()
	return s.xfer.pairs[id]
}

// StartTransfer transfers on behalf of leg id (the transferor). When it
// refuses (a target the transferor's context may not reach, a leg that is
// connected to nobody) it returns a *TransferError (403) or an error
// wrapping api.ErrNotFound (no such leg). Else done is called once, from
// another goroutine, with nil when the transferee is with the target (the
// transferor is then hung up, after done returns), or with the failure (a
// *TransferError: the callee's status, 480): the call then goes on.
//
// The transferee is the transferor's partner in a two-party call. A leg in
// a room hands its place to the target instead: the target is dialled into
// the room (a user or a number only).
func (s *Switchboard) StartTransfer(id string, t Transfer, done func(error)) error {
	report := s.transferReport(id, t)
	err := s.startTransfer(id, t, func(err error) { report(err); done(err) })
	if err != nil {
		report(err)
	}
	return err
}

// TransferOutcome is how a transfer ended, for Config.Transfers: done
// (Status 200), refused at once (403, 404, ...) or failed after it was
// accepted (the target's status: 486, 480, 487, ...).
type TransferOutcome struct {
	// CallID is the transferor: the leg that sent the REFER, or whose
	// partner the REST API moved.
	CallID string
	// To is the target asked for ("" for an attended transfer).
	To string
	// Attended: the transfer connected the transferor's two partners.
	Attended bool
	// By is who asked: a REFER's Referred-By, or "api".
	By string
	// Status and Reason: 200 OK when done, else why not, as a SIP status.
	Status int
	Reason string
	// At is when it ended.
	At time.Time
}

// transferReport returns the function that tells Config.Transfers how the
// transfer t of leg id ended: the first call counts.
func (s *Switchboard) transferReport(id string, t Transfer) func(error) {
	var once sync.Once
	return func(err error) {
		once.Do(func() {
			if s.transfers == nil {
				return
			}
			o := TransferOutcome{CallID: id, To: t.To, Attended: t.Replaces != "", By: t.By, Status: 200, Reason: "OK", At: time.Now()}
			if err != nil {
				o.Status, o.Reason = 500, err.Error()
				var st sipStatus
				if errors.As(err, &st) {
					o.Status, o.Reason = st.SIPStatus()
				} else if errors.Is(err, api.ErrNotFound) {
					o.Status = 404
				}
			}
			if o.Attended {
				o.To = ""
			}
			s.transfers(o)
		})
	}
}

func (s *Switchboard) startTransfer(id string, t Transfer, done func(error)) error {
	p := s.pairOf(id)
	s.mu.Lock()
	ac := s.calls[id]
	s.mu.Unlock()
	if p == nil && ac == nil {
		return fmt.Errorf("leg %q: %w", id, api.ErrNotFound)
	}
	var x, y Leg // the transferor and the transferee (nil: the room)
	origin, yOrigin := "", ""
	if p != nil {
		s.xfer.mu.Lock()
		i := p.index(id)
		if i < 0 || p.ended {
			s.xfer.mu.Unlock()
			return forbidden("the call is connected to nobody")
		}
		x, y, origin, yOrigin = p.legs[i], p.legs[1-i], p.origins[i], p.origins[1-i]
		s.xfer.mu.Unlock()
	} else {
		x, origin = ac.leg, ac.info.Origin
	}
	log := s.log.With("call_id", id, "transfer_to", t.To, "referred_by", t.By)
	if t.Replaces != "" {
		return s.attended(x, y, yOrigin, t.Replaces, done, log)
	}
	room := ""
	if p == nil {
		room = ac.info.Room
		r, ok := s.rooms.Lookup(room)
		if room == "" || !ok || !stillIn(r, id) {
			return forbidden("the call is connected to nobody")
		}
	}
	plan := s.plan.Load()
	cctx := t.Context
	if cctx == "" {
		cctx = plan.ContextFor(origin)
	}
	if cctx == "" {
		return forbidden("no dialplan context for the transferor")
	}
	a, err := plan.Route(dialplan.Call{Context: cctx, Number: t.To, Caller: x.Caller()})
	if err != nil {
		log.Info("transfer refused: no route", "context", cctx, "error", err)
		return forbidden(fmt.Sprintf("context %s may not reach %s", cctx, t.To))
	}
	log = log.With("context", a.Context, "rule_line", a.Line, "action", a.Kind)
	switch {
	case a.Kind == dialplan.Reject:
		return forbidden(fmt.Sprintf("the dialplan refuses %s: %d %s", t.To, a.Reject.Status, a.Reject.Reason))
	case a.Kind == dialplan.Dial:
	case room != "":
		return forbidden("a participant of a room can transfer only to a user or a number")
	case a.Kind != dialplan.Room && a.Kind != dialplan.PIN:
		return forbidden("a transfer goes to a user, a number or a room, not to " + a.Kind)
	}
	log.Info("transfer accepted")
	if a.Kind != dialplan.Dial { // the transferee goes into a room
		ok := s.goOwned(func() {
			if !s.takeFromPair(p, x) {
				done(&TransferError{Status: 487, Reason: "Request Terminated (the call ended)"})
				return
			}
			s.setCause(x, "transfer", 0, "transferred to "+t.To)
			s.keepListed(x, y, yOrigin, a)
			done(nil)
			s.goOwned(func() { hangup(x) })
			ra := a.Room
			if a.Kind == dialplan.PIN {
				ra = a.PIN.Room
			}
			s.movedTo(y, ra.Name)
			s.enterRoom(y, a, log)
			hangup(y)
		})
		if !ok {
			return &TransferError{Status: 503, Reason: "Service Unavailable (voxgate is stopping)"}
		}
		return nil
	}
	from := "room-" + room
	if y != nil {
		from = y.Caller()
	}
	targetOrigin := "user"
	if len(a.Dial.Trunks) > 0 {
		targetOrigin = "trunk:" + a.Dial.Trunks[0]
	}
	if p != nil {
		s.transferring(p, x, 1)
	}
	ok := s.goOwned(func() {
		if p != nil {
			defer s.transferring(p, x, -1) // after the swap: x is out of p by then
		}
		// A blind transfer goes on when the transferor hangs up meanwhile
		// (many phones do after the 202): the transferee waits for the
		// target. The ringing stops when the transferee leaves.
		ctx, cancel := context.WithTimeout(s.ctx, time.Duration(a.Dial.Timeout)*time.Second)
		defer cancel()
		if y != nil {
			go func() {
				select {
				case <-y.Done():
					cancel()
				case <-ctx.Done():
				}
			}()
		}
		ringing := time.Now()
		target, trunk, err := s.ring(ctx, from, a.Dial, log)
		if err != nil {
			log.Info("transfer target did not answer", "error", err)
			var st sipStatus
			if errors.As(err, &st) {
				code, reason := st.SIPStatus()
				done(&TransferError{Status: code, Reason: reason})
			} else if y != nil && isDone(y) {
				done(&TransferError{Status: 487, Reason: "Request Terminated (the transferee hung up)"})
			} else {
				done(&TransferError{Status: 480, Reason: "Temporarily Unavailable"})
			}
			return
		}
		if trunk != "" {
			targetOrigin = "trunk:" + trunk
		}
		_ = target.Answer(s.ctx) // tells a page the call is up
		if y == nil {
			s.intoRoomFor(x, target, room, ringing, t.To, done, log)
			return
		}
		if err := s.swap(p, x, target, targetOrigin); err != nil {
			log.Info("transfer target answered too late", "error", err)
			hangup(target)
			done(&TransferError{Status: 487, Reason: "Request Terminated (the call ended)"})
			return
		}
		log.Info("transferred", "transferee", y.ID(), "target", target.ID())
		s.setCause(x, "transfer", 0, "transferred to "+t.To)
		s.keepListed(x, y, yOrigin, a)
		done(nil)
		hangup(x)
	})
	if !ok {
		if p != nil {
			s.transferring(p, x, -1)
		}
		return &TransferError{Status: 503, Reason: "Service Unavailable (voxgate is stopping)"}
	}
	return nil
}

// enterRoom puts a transferred leg (answered already) into the room of a
// room or pin action until its call ends: the PIN is asked when the room
// has one, as for a call that dials it.
func (s *Switchboard) enterRoom(c Leg, a dialplan.Action, log *slog.Logger) {
	pa := a.PIN
	if a.Kind == dialplan.Room {
		if a.Room.PIN == "" {
			s.joinRoom(s.ctx, c, a.Room, false, log)
			return
		}
		pa = dialplan.PINAction{Room: a.Room, Tries: 3}
	}
	if ok, moderator := s.askPIN(s.ctx, c, pa, log); ok {
		s.joinRoom(s.ctx, c, pa.Room, moderator, log)
	}
}

// movedTo shows a transferred call in its new room, or ("") in a
// two-party call, in the REST API's calls.
func (s *Switchboard) movedTo(c Leg, room string) {
	s.mu.Lock()
	if ac := s.calls[c.ID()]; ac != nil && ac.leg == c {
		ac.info.Room, ac.info.Action = room, dialplan.Room
		if room == "" { // out of its room, into a two-party call
			ac.info.Action = dialplan.Dial
		}
	}
	s.mu.Unlock()
}

// keepListed lists the transferee y as a call of its own (in the REST API's
// calls and the call history) when the transferor x was the listed call of
// their two-party call, so that the call that goes on stays visible.
func (s *Switchboard) keepListed(x, y Leg, origin string, a dialplan.Action) {
	s.mu.Lock()
	ax, ay := s.calls[x.ID()], s.calls[y.ID()]
	s.mu.Unlock()
	if ax == nil || ax.leg != x || ay != nil {
		return
	}
	s.goOwned(func() {
		defer s.track(y, origin, a)()
		s.answered(y, time.Time{})
		select {
		case <-y.Done():
		case <-s.ctx.Done():
		}
	})
}

// takeFromPair ends p without hanging up its legs: the transferor leaves,
// and the transferee goes elsewhere. It reports false when p had ended.
func (s *Switchboard) takeFromPair(p *pair, x Leg) bool {
	s.xfer.mu.Lock()
	if p.index(x.ID()) < 0 {
		s.xfer.mu.Unlock()
		return false
	}
	s.xfer.mu.Unlock()
	legs, room, ok := s.endPair(p)
	if !ok {
		return false
	}
	for _, l := range legs {
		l.OnDTMF(nil)
	}
	room.Close()
	p.finish()
	return true
}

// swap puts in in out's place in p, bridged with the remaining leg.
func (s *Switchboard) swap(p *pair, out, in Leg, inOrigin string) error {
	s.xfer.mu.Lock()
	defer s.xfer.mu.Unlock()
	i := p.index(out.ID())
	if p.ended || i < 0 {
		return errors.New("the call ended")
	}
	keep := p.legs[1-i]
	if isDone(keep) {
		return errors.New("the transferee hung up")
	}
	p.room.Close()
	out.OnDTMF(nil)
	room, err := bridge.Connect(keep, in, bridge.RoomConfig{Logger: p.log, Meter: s.meter})
	if err != nil {
		return err
	}
	p.room = room
	p.legs[i], p.origins[i] = in, inOrigin
	delete(s.xfer.pairs, out.ID())
	s.xfer.pairs[in.ID()] = p
	relayDTMF(keep, in)
	close(p.changed)
	p.changed = make(chan struct{})
	return nil
}

// intoRoomFor puts target into room in x's place, and hangs x up.
func (s *Switchboard) intoRoomFor(x, target Leg, room string, ringing time.Time, to string, done func(error), log *slog.Logger) {
	ra := dialplan.RoomAction{Name: room} // even when x hung up meanwhile: a blind transfer
	s.setCause(x, "transfer", 0, "transferred to "+to)
	joined := make(chan struct{})
	if !s.goOwned(func() {
		defer s.track(target, "transfer", dialplan.Action{Kind: dialplan.Room, Room: ra})()
		s.answered(target, ringing)
		close(joined)
		s.joinRoom(s.ctx, target, ra, false, log)
		hangup(target)
	}) {
		hangup(target)
		done(&TransferError{Status: 503, Reason: "Service Unavailable (voxgate is stopping)"})
		return
	}
	<-joined
	log.Info("transferred into the room", "room", room, "target", target.ID())
	done(nil)
	hangup(x)
}

// attended connects y (the transferor x's partner) with the partner of the
// transferor's other leg r, and ends both of the transferor's legs.
func (s *Switchboard) attended(x, y Leg, yOrigin, r string, done func(error), log *slog.Logger) error {
	if y == nil {
		return forbidden("an attended transfer needs a two-party call")
	}
	p1, p2 := s.pairOf(x.ID()), s.pairOf(r)
	if p2 == nil || p2 == p1 {
		return forbidden("the replaced call is connected to nobody")
	}
	s.xfer.mu.Lock()
	j := p2.index(r)
	if j < 0 || p2.ended {
		s.xfer.mu.Unlock()
		return forbidden("the replaced call is connected to nobody")
	}
	rLeg, c, cOrigin := p2.legs[j], p2.legs[1-j], p2.origins[1-j]
	s.xfer.mu.Unlock()
	if !s.takeFromPair(p2, rLeg) {
		return forbidden("the replaced call ended")
	}
	if err := s.swap(p1, x, c, cOrigin); err != nil {
		hangup(c)
		hangup(rLeg)
		return &TransferError{Status: 487, Reason: "Request Terminated (the call ended)"}
	}
	log.Info("attended transfer", "transferee", y.ID(), "target", c.ID(), "replaced", r)
	s.setCause(x, "transfer", 0, "attended transfer")
	s.setCause(rLeg, "transfer", 0, "attended transfer")
	s.keepListed(x, y, yOrigin, dialplan.Action{Kind: dialplan.Dial})
	if !s.goOwned(func() {
		done(nil)
		hangup(x)
		hangup(rLeg)
	}) {
		hangup(x)
		hangup(rLeg)
	}
	return nil
}

// TransferLeg moves a live leg (the REST API): in a two-party call, its
// partner is the transferor (hung up once the target answers, as if it had
// sent a REFER), and the target is routed through r.Context or the leg's
// own context; a leg in a room leaves the room for the target. It returns
// once the transfer has started; the outcome is logged.
func (s *Switchboard) TransferLeg(id string, r api.TransferRequest) error {
	if r.To == "" {
		return errors.New("to: give the number, user or room to transfer to")
	}
	plan := s.plan.Load()
	if r.Context != "" && plan.Contexts[r.Context] == nil {
		return fmt.Errorf("context: the dialplan has no context %q", r.Context)
	}
	log := s.log.With("call_id", id, "transfer_to", r.To, "referred_by", "api")
	done := func(err error) {
		if err != nil {
			log.Info("REST API transfer failed", "error", err)
		}
	}
	if p := s.pairOf(id); p != nil {
		s.xfer.mu.Lock()
		i := p.index(id)
		if i < 0 || p.ended {
			s.xfer.mu.Unlock()
			return fmt.Errorf("leg %q: %w", id, api.ErrNotFound)
		}
		partner, origin := p.legs[1-i], p.origins[i]
		s.xfer.mu.Unlock()
		cctx := r.Context
		if cctx == "" {
			cctx = plan.ContextFor(origin)
		}
		return s.StartTransfer(partner.ID(), Transfer{To: r.To, Context: cctx, By: "api"}, done)
	}
	s.mu.Lock()
	ac := s.calls[id]
	s.mu.Unlock()
	if ac == nil {
		return fmt.Errorf("leg %q: %w", id, api.ErrNotFound)
	}
	room, ok := s.rooms.Lookup(ac.info.Room)
	if ac.info.Room == "" || !ok || !stillIn(room, id) {
		return forbidden("the call is neither connected to anybody nor in a room")
	}
	cctx := r.Context
	if cctx == "" {
		cctx = plan.ContextFor(ac.info.Origin)
	}
	report := s.transferReport(id, Transfer{To: r.To, By: "api", Context: cctx})
	err := s.moveFromRoom(ac.leg, room, r.To, cctx, ac.info.Origin, func(err error) { report(err); done(err) }, log)
	if err != nil {
		report(err)
	}
	return err
}

// moveFromRoom takes leg c out of room to the target to: a user or number
// it is connected with once it answers, or another room.
func (s *Switchboard) moveFromRoom(c Leg, room *bridge.Room, to, cctx, origin string, done func(error), log *slog.Logger) error {
	if cctx == "" {
		return forbidden("no dialplan context for the leg")
	}
	a, err := s.plan.Load().Route(dialplan.Call{Context: cctx, Number: to, Caller: c.Caller()})
	if err != nil {
		return forbidden(fmt.Sprintf("context %s may not reach %s", cctx, to))
	}
	switch a.Kind {
	case dialplan.Reject:
		return forbidden(fmt.Sprintf("the dialplan refuses %s: %d %s", to, a.Reject.Status, a.Reject.Reason))
	case dialplan.Room, dialplan.PIN:
		ra := a.Room
		if a.Kind == dialplan.PIN {
			ra = a.PIN.Room
		}
		if ra.Name == room.Name() {
			return forbidden("the leg is in room " + ra.Name + " already")
		}
	case dialplan.Dial:
	default:
		return forbidden("a transfer goes to a user, a number or a room, not to " + a.Kind)
	}
	log = log.With("context", a.Context, "rule_line", a.Line, "action", a.Kind, "room", room.Name())
	ok := s.goOwned(func() {
		if a.Kind != dialplan.Dial {
			ra := a.Room
			if a.Kind == dialplan.PIN {
				ra = a.PIN.Room
			}
			_ = room.Leave(c.ID())
			s.movedTo(c, ra.Name)
			done(nil)
			log.Info("moved to another room", "to_room", ra.Name)
			s.enterRoom(c, a, log)
			hangup(c)
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, time.Duration(a.Dial.Timeout)*time.Second)
		defer cancel()
		target, trunk, err := s.ring(ctx, c.Caller(), a.Dial, log)
		if err != nil {
			done(err)
			return
		}
		targetOrigin := "user"
		if trunk != "" {
			targetOrigin = "trunk:" + trunk
		}
		_ = target.Answer(s.ctx)
		if isDone(c) || room.Leave(c.ID()) != nil {
			hangup(target)
			done(errors.New("the leg left the room meanwhile"))
			return
		}
		s.movedTo(c, "")
		br, err := bridge.Connect(c, target, bridge.RoomConfig{Logger: log, Meter: s.meter})
		if err != nil {
			hangup(target)
			hangup(c)
			done(err)
			return
		}
		if !s.newPair(c, target, origin, targetOrigin, br, log) {
			br.Close()
			hangup(target)
			return
		}
		log.Info("moved out of the room", "target", target.ID())
		done(nil)
	})
	if !ok {
		return &TransferError{Status: 503, Reason: "Service Unavailable (voxgate is stopping)"}
	}
	return nil
}

// Replace takes a new call c (an INVITE with Replaces, RFC 3891) from
// origin in the place of the call replaced: c is answered and connected
// with replaced's partner, or put in replaced's room, and replaced is hung
// up. A replaced call that is neither gets 481. It returns when c's
// handling is over.
func (s *Switchboard) Replace(ctx context.Context, c Leg, origin, replaced string) {
	s.owned(ctx, c, func(ctx context.Context) {
		log := s.log.With("call_id", c.ID(), "origin", origin, "replaces", replaced)
		if p := s.pairOf(replaced); p != nil {
			defer s.track(c, origin, dialplan.Action{Kind: dialplan.Dial})()
			if err := s.answer(ctx, c); err != nil {
				return
			}
			s.xfer.mu.Lock()
			i := p.index(replaced)
			var r Leg
			if i >= 0 && !p.ended {
				r = p.legs[i]
			}
			s.xfer.mu.Unlock()
			if r == nil || s.swap(p, r, c, origin) != nil {
				log.Info("the replaced call ended meanwhile")
				hangup(c)
				return
			}
			log.Info("call replaced", "partner", p.legs[0].ID())
			s.setCause(r, "transfer", 0, "replaced")
			hangup(r)
			s.holdPair(ctx, c)
			return
		}
		s.mu.Lock()
		ac := s.calls[replaced]
		s.mu.Unlock()
		if ac != nil && ac.info.Room != "" {
			if room, ok := s.rooms.Lookup(ac.info.Room); ok && stillIn(room, replaced) {
				ra := dialplan.RoomAction{Name: ac.info.Room}
				defer s.track(c, origin, dialplan.Action{Kind: dialplan.Room, Room: ra})()
				if err := s.answer(ctx, c); err != nil {
					return
				}
				log.Info("call replaced in its room", "room", ra.Name)
				s.setCause(ac.leg, "transfer", 0, "replaced")
				hangup(ac.leg)
				s.joinRoom(ctx, c, ra, false, log)
				return
			}
		}
		log.Info("INVITE with Replaces refused: the replaced call is connected to nobody")
		s.reject(c, 481, "Call/Transaction Does Not Exist (the replaced call is connected to nobody)")
	})
}
