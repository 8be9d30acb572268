package sip

// Session timers (RFC 4028), UPDATE (RFC 3311) and the in-dialog offer/answer
// cases of RFC 3261 14.2 (a re-INVITE without SDP gets an offer in the 200,
// the ACK answers) and 488 with a Warning when an offer has no codec in
// common. The hooks into call.go, server.go and dial.go are small; the logic
// is here.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/voxgate/voxgate/internal/config"
)

// SessionTimerConfig configures RFC 4028 session timers: a call whose peer
// stops refreshing it is hung up, so a dead call never holds a room or a
// trunk channel.
type SessionTimerConfig struct {
	// Mode is "on" (default: voxgate offers and honours session timers) or
	// "off" (Session-Expires is ignored; a request that requires timers gets
	// 420).
	Mode string `yaml:"mode"`
	// Expires is the session interval voxgate asks for and the most it
	// accepts without shortening (default 1800s).
	Expires time.Duration `yaml:"expires"`
	// MinSE is the shortest interval voxgate accepts (default and least 90s,
	// RFC 4028's floor); a shorter Session-Expires gets 422 with Min-SE.
	MinSE time.Duration `yaml:"min_se"`
}

func (t *SessionTimerConfig) validate() error {
	t.Mode = strings.ToLower(t.Mode)
	switch t.Mode {
	case "":
		t.Mode = "on"
	case "on", "off":
	default:
		return config.Fieldf("mode", "unknown mode %q (want on or off)", t.Mode)
	}
	if t.MinSE == 0 {
		t.MinSE = 90 * time.Second
	}
	if t.Expires == 0 {
		t.Expires = max(1800*time.Second, t.MinSE)
	}
	if t.MinSE < 90*time.Second || t.MinSE%time.Second != 0 {
		return config.Fieldf("min_se", "must be whole seconds, at least 90s (RFC 4028), not %s", t.MinSE)
	}
	if t.Expires%time.Second != 0 || t.Expires < t.MinSE {
		return config.Fieldf("expires", "must be whole seconds, at least min_se (%s), not %s", t.MinSE, t.Expires)
	}
	if t.Expires > 24*time.Hour {
		return config.Fieldf("expires", "must be at most 24h, not %s", t.Expires)
	}
	return nil
}

// TimerSettings are knobs for tests: they override the configured session
// interval and minimum below RFC 4028's 90 s floor. Zero values keep the
// configuration's.
type TimerSettings struct {
	Expires, MinSE time.Duration
}

// WithTimerSettings overrides the session timer intervals (tests only).
func WithTimerSettings(ts TimerSettings) Option {
	return func(s *Server) error { s.timerSet = ts; return nil }
}

// timerConf is the server's session timer settings in seconds.
type timerConf struct {
	on             bool
	expires, minSE int
}

func (s *Server) timers() timerConf {
	tc := timerConf{on: s.cfg.SessionTimers.Mode != "off",
		expires: int(s.cfg.SessionTimers.Expires / time.Second), minSE: int(s.cfg.SessionTimers.MinSE / time.Second)}
	if s.timerSet.MinSE > 0 {
		tc.minSE = max(1, int(s.timerSet.MinSE/time.Second))
	}
	if s.timerSet.Expires > 0 {
		tc.expires = max(1, int(s.timerSet.Expires/time.Second))
	}
	tc.expires = max(tc.expires, tc.minSE)
	return tc
}

func init() { supportedExtensions["timer"] = true }

// t1 and t2 are RFC 3261's timers for the 200 to a re-INVITE, read once:
// the fuzz tests shorten sipgo's globals while goroutines of earlier tests
// may still read them.
var t1, t2 = sip.T1, sip.T2

// maxSessionInterval bounds the delta-seconds accepted from the wire.
const maxSessionInterval = 1 << 31

// ErrBadTimerHeader is a malformed Session-Expires or Min-SE header.
var ErrBadTimerHeader = errors.New("malformed session timer header")

// SessionExpires is a parsed Session-Expires header (RFC 4028 section 4).
type SessionExpires struct {
	Seconds   int
	Refresher string // "uac", "uas" or "" (not given)
}

// String formats the header's value.
func (se SessionExpires) String() string {
	if se.Refresher == "" {
		return strconv.Itoa(se.Seconds)
	}
	return strconv.Itoa(se.Seconds) + ";refresher=" + se.Refresher
}

// ParseSessionExpires parses a Session-Expires value:
// delta-seconds *(SEMI (refresher-param / generic-param)).
func ParseSessionExpires(v string) (SessionExpires, error) {
	parts := strings.Split(v, ";")
	n, err := parseDeltaSeconds(parts[0])
	if err != nil {
		return SessionExpires{}, fmt.Errorf("%w: Session-Expires %q: %v", ErrBadTimerHeader, v, err)
	}
	se := SessionExpires{Seconds: n}
	for _, p := range parts[1:] {
		k, val, hasVal := strings.Cut(strings.TrimSpace(p), "=")
		k = strings.TrimSpace(k)
		if k == "" || !isToken(k) {
			return SessionExpires{}, fmt.Errorf("%w: Session-Expires %q: bad parameter", ErrBadTimerHeader, v)
		}
		if !strings.EqualFold(k, "refresher") {
			continue // generic-param
		}
		val = strings.ToLower(strings.TrimSpace(val))
		if !hasVal || (val != "uac" && val != "uas") {
			return SessionExpires{}, fmt.Errorf("%w: Session-Expires %q: refresher must be uac or uas", ErrBadTimerHeader, v)
		}
		se.Refresher = val
	}
	return se, nil
}

// ParseMinSE parses a Min-SE value: delta-seconds *(SEMI generic-param).
func ParseMinSE(v string) (int, error) {
	parts := strings.Split(v, ";")
	n, err := parseDeltaSeconds(parts[0])
	if err != nil {
		return 0, fmt.Errorf("%w: Min-SE %q: %v", ErrBadTimerHeader, v, err)
	}
	for _, p := range parts[1:] {
		if k, _, _ := strings.Cut(strings.TrimSpace(p), "="); !isToken(strings.TrimSpace(k)) {
			return 0, fmt.Errorf("%w: Min-SE %q: bad parameter", ErrBadTimerHeader, v)
		}
	}
	return n, nil
}

func parseDeltaSeconds(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 10 {
		return 0, errors.New("not delta-seconds")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, errors.New("not delta-seconds")
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n >= maxSessionInterval {
		return 0, errors.New("out of range")
	}
	return n, nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return false
		}
	}
	return true
}

// firstHeader returns the first header of name or its compact form.
func firstHeader(m sip.Message, name, compact string) sip.Header {
	for _, n := range []string{name, compact} {
		if n == "" {
			continue
		}
		if hs := m.GetHeaders(n); len(hs) > 0 {
			return hs[0]
		}
	}
	return nil
}

// listsTag reports whether a header (Supported, Require, Allow) of m lists tag.
func listsTag(m sip.Message, name, compact, tag string) bool {
	for _, n := range []string{name, compact} {
		if n == "" {
			continue
		}
		for _, h := range m.GetHeaders(n) {
			for _, t := range strings.Split(h.Value(), ",") {
				if strings.EqualFold(strings.TrimSpace(t), tag) {
					return true
				}
			}
		}
	}
	return false
}

// timerNeg is the outcome of one session timer negotiation: the interval
// and who refreshes, from the point of view of that transaction.
type timerNeg struct {
	interval  int    // seconds; 0: no session timer
	refresher string // "uac" or "uas"
}

// weRefresh says whether voxgate refreshes, given it was the UAS of the
// transaction that negotiated.
func (n timerNeg) weRefresh(uas bool) bool {
	return (n.refresher == "uas") == uas
}

// timerRequest reads the session timer headers of an INVITE or UPDATE that
// voxgate answers. When the request cannot be taken it responds (422, 420 or
// 400) and returns false.
func (s *Server) timerRequest(req *sip.Request, tx sip.ServerTransaction) (timerNeg, bool) {
	tc := s.timers()
	if !tc.on {
		if listsTag(req, "Require", "", "timer") {
			s.respond(tx, req, 420, "Bad Extension", sip.NewHeader("Unsupported", "timer"))
			return timerNeg{}, false
		}
		return timerNeg{}, true
	}
	minSE := tc.minSE
	if h := req.GetHeader("Min-SE"); h != nil {
		n, err := ParseMinSE(h.Value())
		if err != nil {
			s.respond(tx, req, 400, "Bad Request (malformed Min-SE)")
			return timerNeg{}, false
		}
		minSE = max(minSE, n)
	}
	neg := timerNeg{interval: max(tc.expires, minSE)}
	if h := firstHeader(req, "Session-Expires", "x"); h != nil {
		se, err := ParseSessionExpires(h.Value())
		if err != nil {
			s.respond(tx, req, 400, "Bad Request (malformed Session-Expires)")
			return timerNeg{}, false
		}
		if se.Seconds < tc.minSE {
			if listsTag(req, "Supported", "k", "timer") {
				s.respond(tx, req, 422, "Session Interval Too Small", sip.NewHeader("Min-SE", strconv.Itoa(tc.minSE)))
				return timerNeg{}, false
			}
			// A caller without timers would not understand a 422: a proxy
			// put the header there. Raise the interval instead (RFC 4028 8.1).
			se.Seconds = tc.minSE
		}
		// RFC 4028 9: the UAS may shorten the interval, never below the
		// request's Min-SE.
		neg.interval = min(se.Seconds, neg.interval)
		neg.refresher = se.Refresher
	}
	if neg.refresher == "" {
		// Let a UAC that supports timers refresh; otherwise voxgate does.
		neg.refresher = "uas"
		if listsTag(req, "Supported", "k", "timer") {
			neg.refresher = "uac"
		}
	}
	return neg, true
}

// timerHeaders are what a 2xx to an INVITE or UPDATE carries.
func (s *Server) timerHeaders(neg timerNeg) []sip.Header {
	if !s.timers().on {
		return nil
	}
	hs := []sip.Header{sip.NewHeader("Supported", "timer")}
	if neg.interval > 0 {
		hs = append(hs, sip.NewHeader("Session-Expires", SessionExpires{Seconds: neg.interval, Refresher: neg.refresher}.String()))
		if neg.refresher == "uac" {
			hs = append(hs, sip.NewHeader("Require", "timer"))
		}
	}
	return hs
}

// timerRequestHeaders are what voxgate's INVITE, re-INVITE and UPDATE carry;
// seconds 0 asks for the configured interval.
func (s *Server) timerRequestHeaders(seconds int, refresher string) []sip.Header {
	tc := s.timers()
	if !tc.on {
		return nil
	}
	if seconds == 0 {
		seconds = tc.expires
	}
	return []sip.Header{
		sip.NewHeader("Supported", "timer"),
		sip.NewHeader("Session-Expires", SessionExpires{Seconds: seconds, Refresher: refresher}.String()),
		sip.NewHeader("Min-SE", strconv.Itoa(tc.minSE)),
	}
}

// timerResponse reads the outcome from the 2xx to a request voxgate sent.
// Without Session-Expires in it the peer does not do timers; voxgate then
// still refreshes itself at the interval it asked for, which finds a dead
// peer (a refresh that gets no answer, 408 or 481 ends the call).
func (s *Server) timerResponse(res *sip.Response, asked int) timerNeg {
	tc := s.timers()
	if !tc.on {
		return timerNeg{}
	}
	if asked == 0 {
		asked = tc.expires
	}
	neg := timerNeg{interval: asked, refresher: "uac"}
	if h := firstHeader(res, "Session-Expires", "x"); h != nil {
		if se, err := ParseSessionExpires(h.Value()); err == nil {
			neg.interval = se.Seconds
			if se.Refresher != "" {
				neg.refresher = se.Refresher
			}
		}
	}
	return neg
}

// minSEOf reads the Min-SE of a 422 (0 when missing or malformed).
func minSEOf(res *sip.Response) int {
	if h := res.GetHeader("Min-SE"); h != nil {
		if n, err := ParseMinSE(h.Value()); err == nil {
			return n
		}
	}
	return 0
}

// sdpWarning is the Warning header for an offer voxgate cannot take
// (RFC 3261 20.43: 304 media type not available, 305 incompatible media
// format, 399 anything else).
func sdpWarning(err error) sip.Header {
	code, text := 399, shortErr(err)
	switch {
	case errors.Is(err, ErrNoAudio):
		code, text = 304, "Media type not available"
	case errors.Is(err, ErrNoCommonCodec):
		code, text = 305, "Incompatible media format"
	}
	text = strings.ReplaceAll(text, `"`, "'")
	return sip.NewHeader("Warning", strconv.Itoa(code)+` voxgate "`+text+`"`)
}

// callTimer is a call's session timer and its pending in-dialog offer.
type callTimer struct {
	mu        sync.Mutex
	t         *time.Timer
	neg       timerNeg // of the INVITE that set the call up
	interval  int      // seconds; 0: off
	weRefresh bool
	watching  bool
	gen       int       // bumps on every re-arm: an old timer's callback does nothing
	reoffer   uint32    // CSeq of a re-INVITE without SDP whose ACK brings the answer
	refreshes int       // refreshes voxgate sent that were answered 2xx
	expiresAt time.Time // when the session ends without a refresh
	inviting  bool      // voxgate's refresh re-INVITE is out (glare: 491)
	byeReason string    // the Reason header of a BYE voxgate sends, when set
	endReason string    // why the call ended, when voxgate ended it
}

// arm (re)starts the session timer: when voxgate refreshes, a refresh goes
// at half the interval; when the peer does, the call is hung up at the
// interval minus min(32 s, interval/3) without one (RFC 4028 10).
func (c *Call) arm(neg timerNeg, uas bool) {
	ct := &c.timer
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.t != nil {
		ct.t.Stop()
		ct.t = nil
	}
	ct.gen++
	ct.interval, ct.weRefresh = neg.interval, neg.interval > 0 && neg.weRefresh(uas)
	if neg.interval == 0 {
		return
	}
	if !ct.watching {
		ct.watching = true
		go func() { // stops the timer with the call
			<-c.done
			ct.mu.Lock()
			if ct.t != nil {
				ct.t.Stop()
			}
			ct.gen++
			ct.mu.Unlock()
		}()
	}
	iv := time.Duration(neg.interval) * time.Second
	ct.expiresAt = time.Now().Add(iv)
	gen := ct.gen
	if ct.weRefresh {
		ct.t = time.AfterFunc(iv/2, func() { c.refresh(gen, neg.interval) })
		c.log.Debug("session timer: voxgate refreshes", "interval", neg.interval)
		return
	}
	ct.t = time.AfterFunc(iv-min(32*time.Second, iv/3), func() { c.expire(gen) })
	c.log.Debug("session timer: the peer refreshes", "interval", neg.interval)
}

func (c *Call) current(gen int) bool {
	c.timer.mu.Lock()
	same := c.timer.gen == gen
	c.timer.mu.Unlock() // never held while taking c.mu (reoffer takes c.mu, then timer.mu)
	return same && c.state() == stateAnswered
}

// target is where in-dialog requests go: the peer's Contact.
func (c *Call) target() sip.Uri {
	if c.out != nil {
		if h := c.out.InviteResponse.Contact(); h != nil {
			return h.Address
		}
		return c.out.InviteRequest.Recipient
	}
	return c.dlg.InviteRequest.Contact().Address // handleInvite requires a Contact
}

// expire ends a call whose peer did not refresh it in time.
func (c *Call) expire(gen int) {
	if !c.current(gen) {
		return
	}
	c.log.Warn("session timer expired: no refresh from the peer; hanging up")
	c.endWith(`SIP ;cause=408 ;text="Session timer expired"`, "session expired")
}

// endWith hangs up with a Reason header on the BYE.
func (c *Call) endWith(reason, endReason string) {
	c.timer.mu.Lock()
	c.timer.byeReason, c.timer.endReason = reason, endReason
	c.timer.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	c.Hangup(ctx)
}

// bye sends the BYE of an answered call, with the Reason set by endWith.
func (c *Call) bye(ctx context.Context) error {
	c.timer.mu.Lock()
	reason := c.timer.byeReason
	c.timer.mu.Unlock()
	if c.out == nil { // down the caller's TLS connection when it came over one (tls.go)
		return byeInbound(ctx, c.dlg, c.target(), reason)
	}
	if reason == "" {
		return c.out.Bye(ctx)
	}
	bye := sip.NewRequest(sip.BYE, c.target())
	bye.AppendHeader(sip.NewHeader("Reason", reason))
	return c.out.WriteBye(ctx, bye)
}

// EndedItself tells why voxgate ended the call on its own (a session timer
// that expired, a refresh that failed), for the call record; ok false when
// it did not.
func (c *Call) EndedItself() (reason string, ok bool) {
	c.timer.mu.Lock()
	defer c.timer.mu.Unlock()
	switch {
	case c.timer.endReason == "":
		return "", false
	case c.timer.endReason == "session expired":
		return "session timer expired: no refresh from the peer", true
	}
	return c.timer.endReason, true
}

// timerEndReason is the end reason endWith set ("" when none).
func (c *Call) timerEndReason() string {
	c.timer.mu.Lock()
	defer c.timer.mu.Unlock()
	return c.timer.endReason
}

// peerAllowsUpdate reports whether the peer listed UPDATE in Allow.
func (c *Call) peerAllowsUpdate() bool {
	if c.out != nil {
		return c.out.InviteResponse != nil && listsTag(c.out.InviteResponse, "Allow", "", "UPDATE")
	}
	return listsTag(c.dlg.InviteRequest, "Allow", "", "UPDATE")
}

// refresh sends a session refresh: UPDATE when the peer allows it, else a
// re-INVITE with the current SDP.
func (c *Call) refresh(gen, seconds int) {
	if !c.current(gen) {
		return
	}
	useUpdate := c.peerAllowsUpdate() || c.wrtc != nil // a browser: UPDATE first (webrtc.go)
	for attempt := 0; attempt < 5; attempt++ {
		res, err := c.sendRefresh(useUpdate, seconds)
		if err == nil && res.IsSuccess() {
			c.timer.mu.Lock()
			c.timer.refreshes++
			c.timer.mu.Unlock()
		}
		if !c.current(gen) {
			return
		}
		switch {
		case err != nil || res.StatusCode == 408 || res.StatusCode == 481:
			why := "no answer"
			if err == nil {
				why = strconv.Itoa(res.StatusCode)
			}
			c.log.Warn("session refresh failed; hanging up", "why", why)
			c.endWith(`SIP ;cause=408 ;text="Session refresh failed"`, "session refresh failed")
			return
		case res.IsSuccess():
			c.arm(c.srv.timerResponse(res, seconds), false)
			return
		case res.StatusCode == 422 && minSEOf(res) > seconds:
			seconds = minSEOf(res)
		case useUpdate && (res.StatusCode == 405 || res.StatusCode == 501):
			useUpdate = false
		case res.StatusCode == 491:
			// Glare (RFC 3261 14.1): try again after 2.1 to 4 s.
			select {
			case <-time.After(2100*time.Millisecond + time.Duration(rand.Int64N(int64(1900*time.Millisecond)))):
			case <-c.done:
				return
			}
		default:
			// 5xx and the like: the call goes on; try again a few times
			// before the session would end.
			c.log.Info("session refresh refused; retrying", "status", res.StatusCode)
			c.retryRefresh(min(time.Duration(seconds)*time.Second/6, 30*time.Second), seconds)
			return
		}
	}
	c.retryRefresh(min(time.Duration(seconds)*time.Second/6, 30*time.Second), seconds)
}

// retryRefresh schedules another refresh attempt, or hangs up when the
// session would end before it.
func (c *Call) retryRefresh(after time.Duration, seconds int) {
	ct := &c.timer
	ct.mu.Lock()
	if time.Now().Add(after).After(ct.expiresAt) {
		ct.mu.Unlock()
		c.log.Warn("session refresh failed until the session ended; hanging up")
		c.endWith(`SIP ;cause=408 ;text="Session refresh failed"`, "session refresh failed")
		return
	}
	if ct.t != nil {
		ct.t.Stop()
	}
	ct.gen++
	gen := ct.gen
	ct.t = time.AfterFunc(after, func() { c.refresh(gen, seconds) })
	ct.mu.Unlock()
}

// reinviteTimers runs the session timer checks of a re-INVITE voxgate
// answers: 491 while voxgate's own refresh re-INVITE is out (glare), then
// timerRequest. It responds itself when it returns false.
func (c *Call) reinviteTimers(req *sip.Request, tx sip.ServerTransaction) (timerNeg, bool) {
	c.timer.mu.Lock()
	glare := c.timer.inviting
	c.timer.mu.Unlock()
	if glare {
		c.srv.respond(tx, req, 491, "Request Pending")
		return timerNeg{}, false
	}
	return c.srv.timerRequest(req, tx)
}

// sendRefresh sends one refresh request and waits for its final response
// (and ACKs a 2xx to a re-INVITE).
func (c *Call) sendRefresh(update bool, seconds int) (*sip.Response, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 32*time.Second)
	defer cancel()
	method := sip.INVITE
	if update {
		method = sip.UPDATE
	}
	target := c.target()
	req := sip.NewRequest(method, target)
	for _, h := range c.srv.timerRequestHeaders(seconds, "uac") {
		req.AppendHeader(h)
	}
	req.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	req.AppendHeader(sip.NewHeader("User-Agent", "voxgate"))
	if !update {
		c.timer.mu.Lock()
		c.timer.inviting = true
		c.timer.mu.Unlock()
		defer func() {
			c.timer.mu.Lock()
			c.timer.inviting = false
			c.timer.mu.Unlock()
		}()
		c.mu.Lock()
		body := c.local.marshal(nil) // unchanged SDP, same version (RFC 4028 7.4)
		if c.wrtc != nil {
			body = c.wrtc.sdp // a browser's: what it last got from pion
		}
		c.mu.Unlock()
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(body)
	}
	var res *sip.Response
	var err error
	if c.out != nil {
		res, err = c.out.Do(ctx, req)
	} else {
		routeInDialog(req, c.dlg.InviteRequest) // down a TLS caller's connection (tls.go)
		res, err = c.dlg.Do(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	c.log.Debug("session refreshed", "method", method, "status", res.StatusCode)
	if !update && res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, target)
		if res.Contact() != nil {
			ack.Recipient = res.Contact().Address
		}
		cseq := *req.CSeq()
		cseq.MethodName = sip.ACK
		ack.AppendHeader(&cseq)
		ack.AppendHeader(sip.NewHeader("Content-Length", "0"))
		switch {
		case c.out != nil:
			err = c.out.WriteRequest(ack)
		case overCallersConn(c.dlg.InviteRequest):
			err = c.srv.ackOverCallersConn(ack, req, c.dlg.InviteRequest)
		default:
			routeInDialog(ack, c.dlg.InviteRequest)
			err = c.dlg.WriteRequest(ack)
		}
		if err != nil {
			c.log.Debug("ACK of a refresh failed", "error", err)
		}
	}
	return res, nil
}

// reoffer makes the offer of a 200 to a re-INVITE without SDP: every codec
// voxgate accepts; the ACK brings the answer (RFC 3261 14.2).
func (c *Call) reoffer(seq uint32) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st != stateAnswered {
		return nil, false
	}
	offer := c.local
	offer.Version++
	offer.Codecs, offer.PTs = c.srv.acceptedCodecs(), nil
	for _, k := range offer.Codecs {
		offer.PTs = append(offer.PTs, k.PT)
	}
	offer.DTMFPT, offer.DTMFRate, offer.CNPT = 101, 8000, c.srv.offerCN(offer.Codecs)
	if offer.Direction == Inactive || offer.Direction == RecvOnly {
		offer.Direction = SendRecv
	}
	c.local.Version = offer.Version
	c.timer.mu.Lock()
	c.timer.reoffer = seq
	c.timer.mu.Unlock()
	return offer.marshal(nil), true
}

// ackAnswer applies the answer an ACK carries to voxgate's offer in the 200
// to a re-INVITE without SDP. An ACK without a usable answer leaves the
// media as it was.
func (c *Call) ackAnswer(seq uint32, body []byte) {
	c.timer.mu.Lock()
	pending := c.timer.reoffer != 0 && c.timer.reoffer == seq
	if pending {
		c.timer.reoffer = 0
	}
	c.timer.mu.Unlock()
	if !pending {
		return
	}
	if len(body) == 0 {
		c.log.Warn("re-INVITE without SDP: the ACK has no answer; media unchanged")
		return
	}
	mo, err := c.srv.negotiate(body, c.srv.acceptedCodecs())
	if err != nil {
		c.log.Warn("re-INVITE without SDP: unusable answer in the ACK; media unchanged", "error", err)
		return
	}
	if _, err := c.applyOffer(mo); err != nil {
		c.log.Warn("re-INVITE without SDP: unusable answer in the ACK; media unchanged", "error", err)
		return
	}
	c.log.Info("re-INVITE without SDP answered in the ACK", "codec", mo.Codec.Name, "remote_rtp", mo.Addr)
}

// applyOffer takes the peer's new SDP (with its SRTP keys under the call's
// policy, srtp.go) and returns our answer; on error nothing changed.
func (c *Call) applyOffer(mo mediaOffer) ([]byte, error) {
	sl, sr, err := c.answerReinviteSRTP(&mo)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.sess.setSRTP(sl, sr); err != nil {
		return nil, err
	}
	c.setLocalCryptoLocked(&mo, sl)
	c.offer = mo
	c.local.Version++
	c.local.Codecs, c.local.PTs, c.local.DTMFPT, c.local.DTMFRate, c.local.CNPT, c.local.Ptime = []codecInfo{mo.Codec}, []uint8{mo.PT}, mo.DTMFPT, mo.DTMFRate, mo.CNPT, mo.Ptime
	c.local.Direction = mo.Direction.reverse()
	body := c.local.marshal(&mo)
	c.sess.configure(&mo, c.local.Direction)
	return body, nil
}

// handleUpdate answers an UPDATE in a dialog (RFC 3311): a session refresh
// without SDP, or a new offer answered in the 200.
func (s *Server) handleUpdate(req *sip.Request, tx sip.ServerTransaction) {
	c := s.callFor(req)
	if c == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	if c.state() != stateAnswered {
		// An UPDATE in an early dialog: voxgate answers calls at once, so
		// there is nothing to update before the 200.
		s.respond(tx, req, 491, "Request Pending", sip.NewHeader("Retry-After", "1"))
		return
	}
	neg, ok := s.timerRequest(req, tx)
	if !ok {
		return
	}
	var body []byte
	if len(req.Body()) > 0 {
		mo, err := s.negotiate(req.Body(), s.acceptedCodecs())
		if err != nil {
			code := 488
			if errors.Is(err, ErrBadSDP) {
				code = 400
			}
			s.respond(tx, req, code, reasonFor(code, err), sdpWarning(err))
			return
		}
		if body, err = c.applyOffer(mo); err != nil {
			s.respond(tx, req, 488, reasonFor(488, err), sdpWarning(err))
			return
		}
		c.log.Info("UPDATE", "remote_direction", mo.Direction, "remote_rtp", mo.Addr, "codec", mo.Codec.Name)
	}
	var res *sip.Response
	if body != nil {
		res = sip.NewSDPResponseFromRequest(req, body)
	} else {
		res = sip.NewResponseFromRequest(req, 200, "OK", nil)
	}
	res.AppendHeader(&s.contact)
	for _, h := range s.timerHeaders(neg) {
		res.AppendHeader(h)
	}
	s.send(tx, res)
	c.arm(neg, true)
}
