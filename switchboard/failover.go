package switchboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/voxgate/voxgate/dialplan"
)

// TrunkHealth is a Dialer that knows whether a trunk answers (the SIP
// side's OPTIONS qualify). A trunk it reports down is skipped by a dial
// through several trunks while another is up.
type TrunkHealth interface {
	TrunkUp(trunk string) bool
}

// TrunkNoter is CallRecords that can note which trunk carried a call
// (the record's trunk is the first listed until a later one answers).
type TrunkNoter interface {
	CallTrunk(ctx context.Context, id, trunk string) error
}

// errTryTimeout: a try got no final answer within try_timeout.
var errTryTimeout = errors.New("no final answer within try_timeout")

// failoverReason says why a try's error lets the next trunk have the call
// ("" when it is the callee's answer, to be given to the caller: a 4xx or
// 6xx such as 404 or 486).
func failoverReason(err error) string {
	var st sipStatus
	if errors.As(err, &st) {
		code, reason := st.SIPStatus()
		switch {
		case code == 408, code >= 500 && code < 600:
			return fmt.Sprintf("%d %s", code, reason)
		default:
			return ""
		}
	}
	if errors.Is(err, errTryTimeout) {
		return "timeout"
	}
	return "unreachable: " + err.Error() // transport error, unknown trunk
}

// dialTrunks calls d.Number through d's trunks in order, each until its
// final answer (or try_timeout): the first to answer carries the call; a
// try that fails with a timeout, 408, 5xx or a transport error gives way to
// the next trunk; a 4xx or 6xx is the answer and ends the dial. Trunks that
// qualify marked down are skipped while another is up (when all are down
// they are tried anyway: qualify may be wrong, the call may not be).
// It returns the answered leg and the trunk that carried it; on failure,
// the trunk whose answer (or failure) is the one returned.
func (s *Switchboard) dialTrunks(ctx context.Context, d dialplan.DialAction, log *slog.Logger) (Leg, string, error) {
	order := d.TrunkOrder()
	type try struct {
		trunk string
		dl    Dialer
	}
	var up, down []try
	for _, t := range order {
		i := slices.IndexFunc(s.dialers, func(dl Dialer) bool { return slices.Contains(dl.Trunks(), t) })
		if i < 0 {
			log.Warn("dial: trunk failed, trying the next", "trunk", t, "reason", "unknown trunk")
			continue
		}
		dl := s.dialers[i]
		if h, ok := dl.(TrunkHealth); ok && !h.TrunkUp(t) {
			down = append(down, try{t, dl})
			continue
		}
		up = append(up, try{t, dl})
	}
	tries := up
	switch {
	case len(up) == 0 && len(down) == 0:
		return nil, "", ErrUnknownTrunk
	case len(up) == 0:
		log.Warn("dial: every trunk is marked down by qualify; trying them anyway", "trunks", order)
		tries = down
	case len(down) > 0:
		for _, t := range down {
			log.Warn("dial: trunk skipped", "trunk", t.trunk, "reason", "marked down by qualify")
		}
	}
	var lastErr error
	lastTrunk := ""
	for i, t := range tries {
		if ctx.Err() != nil {
			break
		}
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if d.TryTimeout > 0 {
			tctx, cancel = context.WithTimeoutCause(ctx, time.Duration(d.TryTimeout)*time.Second, errTryTimeout)
		}
		start := time.Now()
		leg, err := t.dl.DialTrunk(tctx, t.trunk, d.Number, d.CallerID)
		tryOver := tctx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			if i > 0 || len(down) > 0 {
				log.Info("dial: call carried by a later trunk", "trunk", t.trunk, "try", i+1)
			}
			return leg, t.trunk, nil
		}
		if ctx.Err() != nil { // the caller hung up or the dial's timeout ran out
			return nil, t.trunk, err
		}
		if tryOver {
			err = fmt.Errorf("%w (%ds): %v", errTryTimeout, d.TryTimeout, err)
		}
		reason := failoverReason(err)
		if reason == "" { // busy, not found...: the answer
			log.Info("dial: trunk answered; no failover", "trunk", t.trunk, "error", err)
			return nil, t.trunk, err
		}
		lastErr, lastTrunk = err, t.trunk
		if i < len(tries)-1 {
			log.Warn("dial: trunk failed, trying the next", "trunk", t.trunk, "reason", reason, "after", time.Since(start).Round(time.Millisecond), "next", tries[i+1].trunk)
		} else {
			log.Warn("dial: trunk failed, no trunk left", "trunk", t.trunk, "reason", reason, "after", time.Since(start).Round(time.Millisecond))
		}
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, lastTrunk, lastErr
}

// noteTrunk writes the trunk that carried c's call into its record.
func (s *Switchboard) noteTrunk(c Leg, trunk string) {
	cl := s.logOf(c)
	n, ok := s.records.(TrunkNoter)
	if cl == nil || !ok || s.journal == nil {
		return
	}
	id := cl.id
	s.journal.do(func(ctx context.Context) error { return n.CallTrunk(ctx, id, trunk) })
}
