package sip

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Errors of Refer-To and Replaces parsing: a REFER that carries one gets 400.
var (
	// ErrBadReferTo: the Refer-To header is missing, empty or not a SIP URI
	// with a user part.
	ErrBadReferTo = errors.New("malformed Refer-To")
	// ErrBadReplaces: the Replaces header (RFC 3891) lacks a Call-ID or a tag.
	ErrBadReplaces = errors.New("malformed Replaces")
)

// Replaces names a dialog by its Call-ID and tags (RFC 3891). ToTag and
// FromTag are as the sender sees its dialog.
type Replaces struct {
	CallID, ToTag, FromTag string
	// EarlyOnly: replace the dialog only while it is not yet answered.
	EarlyOnly bool
}

// ReferTarget is what a Refer-To header names (RFC 3515 section 2.1).
type ReferTarget struct {
	// URI is the target without its header part (sip:1002@example.com).
	URI string
	// User is the URI's user part, unescaped: the number, user or room the
	// transferee is sent to, as the transferor's dialplan context routes it.
	User string
	// Replaces is set for an attended transfer (the URI's Replaces header).
	Replaces *Replaces
}

// maxUser bounds a target's user part (a number, a user or a room name).
const maxUser = 64

// ParseReferTo parses a Refer-To header value: a name-addr
// ("Bob" <sip:1002@host;transport=udp?Replaces=...>) or a bare SIP URI.
func ParseReferTo(v string) (ReferTarget, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return ReferTarget{}, fmt.Errorf("%w: empty", ErrBadReferTo)
	}
	uri := v
	if i := strings.IndexByte(v, '<'); i >= 0 {
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return ReferTarget{}, fmt.Errorf("%w: no closing '>'", ErrBadReferTo)
		}
		uri = v[i+1 : i+j]
	} else if i := strings.IndexByte(v, ';'); i >= 0 { // header parameters follow a bare URI
		uri = v[:i]
	}
	uri = strings.TrimSpace(uri)
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || (!strings.EqualFold(scheme, "sip") && !strings.EqualFold(scheme, "sips") && !strings.EqualFold(scheme, "tel")) {
		return ReferTarget{}, fmt.Errorf("%w: not a sip:, sips: or tel: URI", ErrBadReferTo)
	}
	var t ReferTarget
	base, headers, _ := strings.Cut(rest, "?")
	t.URI = scheme + ":" + base
	user := base
	if !strings.EqualFold(scheme, "tel") {
		u, _, found := strings.Cut(base, "@")
		if !found {
			return ReferTarget{}, fmt.Errorf("%w: the URI names no user (a number, user or room)", ErrBadReferTo)
		}
		user = u
	}
	user, _, _ = strings.Cut(user, ";") // user parameters (phone-context) and tel: parameters
	user, _, _ = strings.Cut(user, ":") // a password, never used
	user, err := url.PathUnescape(user)
	if err != nil {
		return ReferTarget{}, fmt.Errorf("%w: bad escape in the user part", ErrBadReferTo)
	}
	if user == "" || len(user) > maxUser || !validUser(user) {
		return ReferTarget{}, fmt.Errorf("%w: the user part is not a number, user or room name", ErrBadReferTo)
	}
	t.User = user
	for _, h := range strings.Split(headers, "&") {
		if h == "" {
			continue
		}
		name, value, _ := strings.Cut(h, "=")
		if !strings.EqualFold(name, "Replaces") {
			continue // Accept-Contact and the like: nothing voxgate uses
		}
		value, err := url.PathUnescape(value)
		if err != nil {
			return ReferTarget{}, fmt.Errorf("%w: bad escape in Replaces", ErrBadReferTo)
		}
		r, err := ParseReplaces(value)
		if err != nil {
			return ReferTarget{}, err
		}
		t.Replaces = &r
	}
	return t, nil
}

// validUser reports whether s is made of the characters SIP users, numbers
// and room names use.
func validUser(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case strings.IndexByte("+*#_.!~'()-", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// ParseReplaces parses a Replaces value: callid;to-tag=..;from-tag=..[;early-only].
func ParseReplaces(v string) (Replaces, error) {
	parts := strings.Split(strings.TrimSpace(v), ";")
	r := Replaces{CallID: strings.TrimSpace(parts[0])}
	for _, p := range parts[1:] {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "to-tag":
			r.ToTag = strings.TrimSpace(value)
		case "from-tag":
			r.FromTag = strings.TrimSpace(value)
		case "early-only":
			r.EarlyOnly = true
		}
	}
	switch {
	case r.CallID == "":
		return Replaces{}, fmt.Errorf("%w: no Call-ID", ErrBadReplaces)
	case r.ToTag == "" || r.FromTag == "":
		return Replaces{}, fmt.Errorf("%w: to-tag and from-tag are both required", ErrBadReplaces)
	case strings.ContainsAny(r.CallID+r.ToTag+r.FromTag, " \t\r\n<>\""):
		return Replaces{}, fmt.Errorf("%w: a space or quote in an id", ErrBadReplaces)
	}
	return r, nil
}

// Refer is a transfer a peer asks for with REFER inside call c.
type Refer struct {
	// Target is where the transferee goes.
	Target ReferTarget
	// ReplacesCall, for an attended transfer, is the ID of the call voxgate
	// holds that Target.Replaces names (another call of the transferor).
	ReplacesCall string
	// ReferredBy is the Referred-By header's value ("" when absent).
	ReferredBy string
}

// Referrer carries out transfers. Refer runs in the REFER's goroutine and
// must return quickly: an error refuses the REFER (one with a
// SIPStatus() (int, string) method says which final status; else 403).
// When it returns nil the REFER gets 202 and done must be called once,
// from any goroutine, with the outcome: nil for success, else an error
// (with SIPStatus when it has one) the NOTIFY's sipfrag reports. done
// returns once the final NOTIFY has gone out (or failed), so that the
// transferor's BYE follows it.
type Referrer interface {
	Refer(c *Call, r Refer, done func(error)) error
}

// WithReferrer sets who carries out transfers (default: REFER gets 403).
func WithReferrer(r Referrer) Option {
	return func(s *Server) error { s.referrer = r; return nil }
}

// errStatus returns the SIP status an error carries, or def.
func errStatus(err error, def int, defReason string) (int, string) {
	var st interface {
		SIPStatus() (int, string)
	}
	if errors.As(err, &st) {
		return st.SIPStatus()
	}
	return def, defReason
}

// notifyTimeout bounds each NOTIFY of a transfer's progress.
const notifyTimeout = 10 * time.Second

func (s *Server) handleRefer(req *sip.Request, tx sip.ServerTransaction) {
	if !req.To().Params.Has("tag") {
		// RFC 3515 2.4.2 lets a REFER start a dialog; voxgate transfers
		// only calls it holds.
		s.respond(tx, req, 405, "Method Not Allowed (REFER only within a call)", sip.NewHeader("Allow", allowedMethods))
		return
	}
	c := s.callFor(req)
	if c == nil || c.state() != stateAnswered {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	hs := append(req.GetHeaders("Refer-To"), req.GetHeaders("r")...) // "r": the compact form
	if len(hs) != 1 {
		s.respond(tx, req, 400, "Bad Request (exactly one Refer-To is required)")
		return
	}
	target, err := ParseReferTo(hs[0].Value())
	if err != nil {
		s.respond(tx, req, 400, "Bad Request ("+err.Error()+")")
		return
	}
	noSub := false
	if h := req.GetHeader("Refer-Sub"); h != nil && strings.EqualFold(strings.TrimSpace(strings.Split(h.Value(), ";")[0]), "false") {
		noSub = true // RFC 4488: no implicit subscription, no NOTIFY
	}
	r := Refer{Target: target}
	if h := req.GetHeader("Referred-By"); h != nil {
		r.ReferredBy = h.Value()
	}
	if target.Replaces != nil {
		o := s.callByReplaces(target.Replaces)
		if o == nil || o == c {
			s.respond(tx, req, 403, "Forbidden (Replaces names no other call voxgate holds)")
			return
		}
		if target.Replaces.EarlyOnly && o.state() == stateAnswered {
			s.respond(tx, req, 403, "Forbidden (Replaces early-only names an answered call)")
			return
		}
		r.ReplacesCall = o.ID()
	}
	if s.referrer == nil {
		s.respond(tx, req, 403, "Forbidden (transfers are not enabled)")
		return
	}
	outcome := make(chan error, 1)
	sent := make(chan struct{})
	done := func(err error) {
		select {
		case outcome <- err:
		default: // called twice: the first outcome stands
			return
		}
		select {
		case <-sent:
		case <-time.After(notifyTimeout):
		}
	}
	log := c.log.With("refer_to", target.URI, "attended", target.Replaces != nil)
	if err := s.referrer.Refer(c, r, done); err != nil {
		code, reason := errStatus(err, 403, "Forbidden")
		log.Info("transfer refused", "status", code, "reason", reason)
		s.respond(tx, req, code, reason)
		return
	}
	hdrs := []sip.Header{s.contact.Clone()}
	if noSub {
		hdrs = append(hdrs, sip.NewHeader("Refer-Sub", "false"))
	}
	s.respond(tx, req, 202, "Accepted", hdrs...)
	log.Info("transfer accepted", "referred_by", r.ReferredBy, "notify", !noSub)
	defer close(sent)
	if !noSub {
		c.notifyRefer("SIP/2.0 100 Trying", false)
	}
	var result error
	select {
	case result = <-outcome:
	case <-s.ctx.Done():
		result = errors.New("voxgate is stopping")
	}
	frag := "SIP/2.0 200 OK"
	if result != nil {
		code, reason := errStatus(result, 503, "Service Unavailable")
		frag = fmt.Sprintf("SIP/2.0 %d %s", code, reason)
		log.Info("transfer failed", "status", code, "reason", reason)
	} else {
		log.Info("transfer done")
	}
	if !noSub {
		c.notifyRefer(frag, true)
	}
}

// callByReplaces finds the call a Replaces names, whichever side's tags
// it quotes first.
func (s *Server) callByReplaces(r *Replaces) *Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.calls[sip.DialogIDMake(r.CallID, r.ToTag, r.FromTag)]; c != nil {
		return c
	}
	return s.calls[sip.DialogIDMake(r.CallID, r.FromTag, r.ToTag)]
}

// notifyRefer sends a NOTIFY of the refer event package with a sipfrag of
// the transfer's progress (RFC 3515 section 2.4.4); final ends the
// subscription.
func (c *Call) notifyRefer(frag string, final bool) {
	select {
	case <-c.done:
		return // the dialog is gone (the transferor hung up first)
	default:
	}
	req := sip.NewRequest(sip.NOTIFY, c.target())
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	state := "active;expires=60"
	if final {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(c.srv.contact.Clone())
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.AppendHeader(sip.NewHeader("User-Agent", "voxgate"))
	req.SetBody([]byte(frag + "\r\n"))
	ctx, cancel := context.WithTimeout(c.ctx, notifyTimeout)
	defer cancel()
	var res *sip.Response
	var err error
	if c.out != nil {
		res, err = c.out.Do(ctx, req)
	} else {
		routeInDialog(req, c.dlg.InviteRequest)
		res, err = c.dlg.Do(ctx, req)
	}
	if err != nil {
		c.log.Debug("NOTIFY of the transfer failed", "error", err)
		return
	}
	c.log.Debug("NOTIFY of the transfer", "sipfrag", frag, "status", res.StatusCode)
}

// replacesFor checks an INVITE's Replaces header (RFC 3891): it returns
// the ID of the call voxgate holds that the new call takes the place of
// ("" without the header). When it returns false it has answered: 400 for
// a malformed header, 481 when voxgate holds no such call, 486 for an
// early-only Replaces of an answered call.
func (s *Server) replacesFor(req *sip.Request, tx sip.ServerTransaction) (string, bool) {
	hs := req.GetHeaders("Replaces")
	if len(hs) == 0 {
		return "", true
	}
	if len(hs) > 1 {
		s.respond(tx, req, 400, "Bad Request (more than one Replaces)")
		return "", false
	}
	r, err := ParseReplaces(hs[0].Value())
	if err != nil {
		s.respond(tx, req, 400, "Bad Request ("+err.Error()+")")
		return "", false
	}
	o := s.callByReplaces(&r)
	if o == nil || o.state() == stateEnded {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist (Replaces names no call)")
		return "", false
	}
	if r.EarlyOnly && o.state() == stateAnswered {
		s.respond(tx, req, 486, "Busy Here (Replaces early-only names an answered call)")
		return "", false
	}
	return o.ID(), true
}

// Replaces is the ID of the call this incoming call takes the place of
// (its INVITE's Replaces header, RFC 3891); "" for an ordinary call.
func (c *Call) Replaces() string { return c.replaces }

func init() { supportedExtensions["replaces"] = true }
