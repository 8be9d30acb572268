package switchboard

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/voxgate/voxgate/dialplan"
)

// pinAction answers, asks for the PIN and joins the room.
func (s *Switchboard) pinAction(ctx context.Context, c Leg, pa dialplan.PINAction, log *slog.Logger) {
	if err := s.answer(ctx, c); err != nil {
		return
	}
	if ok, moderator := s.askPIN(ctx, c, pa, log); ok {
		s.joinRoom(ctx, c, pa.Room, moderator, log)
	}
}

// digits delivers the DTMF a call sends (RFC 4733, SIP INFO, or a page's
// keypad) until the returned func is called.
func digits(c Leg) (<-chan rune, func()) {
	ch := make(chan rune, 32)
	c.OnDTMF(func(d rune) {
		select {
		case ch <- d:
		default:
		}
	})
	return ch, func() { c.OnDTMF(nil) }
}

// askPIN plays the prompt and collects a PIN ending with # (or complete
// once it can only be one of the PINs), up to the given tries; a wrong PIN
// each time hangs up with a message (a low tone). It reports whether the
// caller keyed the moderator PIN.
func (s *Switchboard) askPIN(ctx context.Context, c Leg, pa dialplan.PINAction, log *slog.Logger) (ok, moderator bool) {
	prompt, err := promptWAV(pa.Prompt, 660, 0.5)
	if err != nil {
		log.Error("PIN prompt unreadable", "file", pa.Prompt, "error", err)
		c.Hangup(ctx)
		return false, false
	}
	solo, err := s.soloRoom("pin", c)
	if err != nil {
		log.Error("PIN prompt failed", "error", err)
		c.Hangup(ctx)
		return false, false
	}
	defer solo.Close()
	keys, stop := digits(c)
	defer stop()
	admit := s.enterPIN(pa.Room.Name, c)
	defer s.leavePIN(pa.Room.Name, c)
	pins := []string{pa.Room.PIN}
	if pa.Room.ModeratorPIN != "" {
		pins = append(pins, pa.Room.ModeratorPIN)
	}
	tries := max(pa.Tries, 1)
	for try := 1; try <= tries; try++ {
		_ = solo.PlayToLeg(c.ID(), prompt)
		keyed, ended, admitted := s.collect(ctx, c, keys, pins, admit)
		if ended {
			return false, false
		}
		if admitted {
			log.Info("let in at the PIN by an operator", "room", pa.Room.Name, "try", try)
			_ = solo.Leave(c.ID())
			return true, false
		}
		if keyed == pa.Room.PIN || (pa.Room.ModeratorPIN != "" && keyed == pa.Room.ModeratorPIN) {
			moderator = keyed == pa.Room.ModeratorPIN
			log.Info("PIN accepted", "room", pa.Room.Name, "try", try, "moderator", moderator)
			_ = solo.Leave(c.ID())
			return true, moderator
		}
		log.Info("wrong PIN", "room", pa.Room.Name, "try", try, "digits", len(keyed)) // a count, never the digits
	}
	bye, _ := promptWAV("", 220, 0.8)
	_ = solo.PlayToLeg(c.ID(), bye)
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.Done():
	case <-ctx.Done():
	}
	s.setCause(c, "system", 0, "wrong PIN")
	c.Hangup(ctx)
	return false, false
}

// collect gathers keyed digits until #, a complete PIN, or no digit for the
// digit timeout; ended reports that the call or ctx ended meanwhile, and
// admitted that an operator let the caller in (Admit).
func (s *Switchboard) collect(ctx context.Context, c Leg, keys <-chan rune, pins []string, admit <-chan struct{}) (keyed string, ended, admitted bool) {
	var got strings.Builder
	timeout := time.NewTimer(s.set.DigitTimeout)
	defer timeout.Stop()
	for {
		select {
		case d := <-keys:
			if d == '#' {
				return got.String(), false, false
			}
			got.WriteRune(d)
			if complete(got.String(), pins) {
				return got.String(), false, false
			}
			timeout.Reset(s.set.DigitTimeout)
		case <-timeout.C:
			return got.String(), false, false
		case <-admit:
			return "", false, true
		case <-c.Done():
			return "", true, false
		case <-ctx.Done():
			return "", true, false
		}
	}
}

// complete reports whether keyed is one of pins and no longer one starts
// with it (so 1234 waits for # when 12345 is a PIN too).
func complete(keyed string, pins []string) bool {
	match := false
	for _, p := range pins {
		if p == keyed {
			match = true
		} else if strings.HasPrefix(p, keyed) {
			return false
		}
	}
	return match
}
