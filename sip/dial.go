package sip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Errors of outgoing calls.
var (
	ErrNotRegistered = errors.New("user has no registered contact")
	ErrBadAnswer     = errors.New("unusable SDP answer")
)

// mtuLimit is the size above which a request must not go over UDP
// (RFC 3261 section 18.1.1: 200 bytes below a 1500-byte path MTU).
const mtuLimit = 1300

// fitTransport moves a request that would exceed the MTU from UDP to TCP.
func fitTransport(req *sip.Request) {
	if req.Transport() == "UDP" && len(req.String()) > mtuLimit {
		req.SetTransport("TCP")
		if req.Recipient.UriParams == nil {
			req.Recipient.UriParams = sip.NewParams()
		}
		req.Recipient.UriParams.Add("transport", "tcp")
	}
}

// DialOptions describe an outgoing call.
type DialOptions struct {
	// CallerID is the user part of From (default: the trunk's username).
	CallerID string
	// Username and Password answer the far end's digest challenge.
	Username, Password string
	// Destination overrides where the INVITE is sent (host:port), e.g. the
	// address a phone registered from.
	Destination string
	// OnRinging is called on 180/183.
	OnRinging func()
	// OnEarlyMedia is called once, on the first 18x with SDP, with the far
	// end's early media (an announcement, its ringback); nil: early media
	// is not taken. It runs on the SIP stack's goroutine: it must not block.
	OnEarlyMedia func(*EarlyMedia)

	transport      string       // the transport to Destination, over the Request-URI's (sourceTransport)
	sessionExpires int          // the interval asked for after a 422 (timers.go)
	display        string       // From's display name
	headers        []sip.Header // more headers of the INVITE (P-Asserted-Identity, Privacy)
}

// DialTrunk calls number through the named trunk and returns once the call
// is answered. A 401/407 from the carrier is answered with the trunk's
// credentials. Cancelling ctx before the answer sends CANCEL.
func (s *Server) DialTrunk(ctx context.Context, trunk, number string, o DialOptions) (*Call, error) {
	var tc *TrunkConfig
	for i := range s.cfg.Trunks {
		if s.cfg.Trunks[i].Name == trunk {
			tc = &s.cfg.Trunks[i]
		}
	}
	if tc == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownTrunk, trunk)
	}
	host, port, _ := net.SplitHostPort(tc.host)
	p, _ := strconv.Atoi(port)
	uri := sip.Uri{Scheme: "sip", User: number, Host: host, Port: p}
	if tc.Transport != "udp" {
		uri.UriParams = sip.NewParams()
		uri.UriParams.Add("transport", tc.Transport)
	}
	if o.Username == "" {
		o.Username, o.Password = tc.Username, tc.Password
	}
	id := tc.CallerID.outbound(o.CallerID, tc.Username) // the trunk's caller-ID rules
	from := sip.Uri{Scheme: "sip", User: id.From, Host: host}
	if id.Withheld {
		from.Host = "anonymous.invalid" // RFC 3323 4.1.1.3
	}
	o.CallerID, o.display, o.headers = id.From, id.Display, id.headers(host)
	return s.dial(ctx, uri, from, number, Origin{Kind: "trunk", Name: trunk}, o)
}

// DialUser calls the most recently registered contact of a local user.
func (s *Server) DialUser(ctx context.Context, user, callerID string) (*Call, error) {
	bs := s.location.lookup(user)
	if len(bs) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotRegistered, user)
	}
	return s.DialBinding(ctx, bs[len(bs)-1], callerID)
}

// sourceTransport is the transport that reaches binding b at its source
// (the address its REGISTER came from) when that is UDP or TCP: the one
// the REGISTER came over, whatever its Contact's transport parameter says.
// A phone registered through a proxy (Kamailio in front of a cluster,
// talking UDP to the nodes) has a Contact naming its own leg to the proxy
// (;transport=tls): the node must send to the proxy over UDP, and the
// proxy takes it on over TLS. A binding over TLS or a WebSocket keeps its
// connection (overConnection); "" there.
func sourceTransport(b Binding) string {
	switch t := strings.ToUpper(b.Transport); t {
	case "UDP", "TCP":
		return t
	}
	return ""
}

// DialBinding calls one registered contact (to ring every phone of a user
// at once, call each of Bindings(user)), at the address it registered from.
// Of opts (at most one), OnRinging and OnEarlyMedia are used.
func (s *Server) DialBinding(ctx context.Context, b Binding, callerID string, opts ...DialOptions) (*Call, error) {
	user := b.AOR
	var uri sip.Uri
	if err := sip.ParseUri(b.Contact, &uri); err != nil {
		return nil, fmt.Errorf("contact of %s: %w", user, err)
	}
	from := sip.Uri{Scheme: "sip", User: callerID, Host: s.cfg.Domain}
	overConnection(&uri, b)
	o := DialOptions{Destination: b.Source, transport: sourceTransport(b)}
	if len(opts) > 0 {
		o.OnRinging, o.OnEarlyMedia = opts[0].OnRinging, opts[0].OnEarlyMedia
	}
	return s.dial(ctx, uri, from, user, Origin{Kind: "user", Name: user}, o)
}

func (s *Server) dial(ctx context.Context, uri, from sip.Uri, dialed string, origin Origin, o DialOptions) (*Call, error) {
	sess, err := newRTPSession(s.log, s.ports, s.mediaIP)
	if err != nil {
		return nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	accept := s.acceptedCodecs()
	local := localMedia{IP: s.sdpIP, Port: sess.port, SessID: binary.BigEndian.Uint64(b[:]) >> 2, Version: 1,
		Codecs: accept, DTMFPT: 101, CNPT: s.offerCN(accept), Ptime: 20, Direction: SendRecv}
	for _, c := range accept {
		local.PTs = append(local.PTs, c.PT)
	}
	policy := s.srtpPolicyFor(origin)
	local.Proto, local.Crypto = offerSRTP(policy, s.cfg.SRTPSuites)
	req := sip.NewRequest(sip.INVITE, uri)
	fromH := &sip.FromHeader{DisplayName: o.display, Address: from, Params: sip.NewParams()}
	fromH.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(fromH)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: uri.User, Host: uri.Host, Port: uri.Port}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	req.AppendHeader(sip.NewHeader("User-Agent", "voxgate"))
	for _, h := range o.headers {
		req.AppendHeader(h)
	}
	for _, h := range s.timerRequestHeaders(o.sessionExpires, "") {
		req.AppendHeader(h)
	}
	req.SetBody(local.marshal(nil))
	if uri.UriParams != nil {
		if tp, ok := uri.UriParams.Get("transport"); ok {
			req.SetTransport(strings.ToUpper(tp))
		}
	}
	if o.transport != "" {
		req.SetTransport(o.transport)
	}
	if o.Destination != "" {
		req.SetDestination(o.Destination)
	}
	fitTransport(req)
	wl, err := s.webrtcOffer(ctx, req) // a browser over its WebSocket gets a WebRTC offer (webrtc.go)
	if err != nil {
		sess.close()
		return nil, err
	}
	kept := false
	defer func() {
		if !kept {
			wl.close()
		}
	}()
	if wl != nil {
		policy = SRTPOff // the browser's leg is DTLS-SRTP; the relay is local
		local.Proto, local.Crypto = "", nil
	}
	ua := sipgo.DialogUA{Client: s.client, ContactHDR: s.contact}
	if strings.EqualFold(req.Transport(), "tls") {
		ua = s.tlsDialogUA()
	} else if isWS(req.Transport()) {
		ua = s.wsDialogUA() // a browser over its WebSocket (ws.go)
	}
	dlg, err := ua.WriteInvite(ctx, req)
	if err != nil {
		sess.close()
		return nil, err
	}
	d := &dialing{callID: req.CallID().Value(), o: o, sess: sess, accept: accept, policy: policy, local: local}
	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{
		Username: o.Username, Password: o.Password,
		OnResponse: func(res *sip.Response) error {
			if (res.StatusCode == 180 || res.StatusCode == 183) && o.OnRinging != nil {
				o.OnRinging()
			}
			if res.StatusCode > 100 && res.StatusCode < 200 {
				s.earlyAnswer(res, d)
			}
			return nil
		},
	})
	answered := false
	defer func() {
		if d.early != nil && !answered { // else it ends with the call
			d.early.end()
		}
	}()
	if err != nil {
		sess.close()
		_ = dlg.Close()
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) && de.Res.StatusCode == 422 && o.sessionExpires == 0 && minSEOf(de.Res) > 0 {
			// Session Interval Too Small: ask again with the peer's Min-SE (RFC 4028 7.4).
			o.sessionExpires = max(minSEOf(de.Res), s.timers().expires)
			return s.dial(ctx, uri, from, dialed, origin, o)
		}
		if errors.As(err, &de) {
			return nil, &Rejection{Status: de.Res.StatusCode, Reason: de.Res.Reason}
		}
		return nil, err
	}
	answer := dlg.InviteResponse.Body()
	if wl != nil {
		answer, err = wl.accept(answer)
	}
	var mo mediaOffer
	if err == nil {
		mo, err = s.negotiate(answer, accept)
	}
	var srtpLocal, srtpRemote *cryptoAttr
	if err == nil {
		srtpLocal, srtpRemote, err = takeAnswerSRTP(policy, local.Crypto, &mo)
	}
	if err == nil {
		err = sess.setSRTP(srtpLocal, srtpRemote)
		sess.srtpFailures = &s.counters.srtpFailures
	}
	if err != nil {
		_ = dlg.Ack(ctx)
		_ = dlg.Bye(ctx)
		sess.close()
		_ = dlg.Close()
		return nil, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	if err := dlg.Ack(ctx); err != nil {
		sess.close()
		_ = dlg.Close()
		return nil, err
	}
	local.Crypto = nil
	if srtpLocal != nil {
		local.Crypto = []cryptoAttr{*srtpLocal}
	} else {
		local.Proto = ""
	}
	if wl != nil {
		wl.connect(netip.AddrPortFrom(s.mediaIP, uint16(sess.port)))
	}
	c := newOutboundCall(s, req, dlg, sess, &mo, local, dialed, origin)
	c.wrtc, kept = wl, wl != nil
	if em := d.early; em != nil {
		answered = true
		go func() { <-c.done; em.end() }()
	}
	c.srtpPolicy = policy
	c.timer.neg = s.timerResponse(dlg.InviteResponse, o.sessionExpires)
	c.arm(c.timer.neg, false)
	s.track(c)
	c.log.Info("outgoing call answered", "to", uri.String(), "codec", mo.Codec.Name, "remote_rtp", mo.Addr, "srtp", c.SRTP())
	return c, nil
}

// sipgo drops any UDP message over its MTU setting, responses included,
// silently. voxgate's own requests over mtuLimit move to TCP (fitTransport);
// a response must go back the way its request came, so a large one (a 200
// to REGISTER listing many contacts, an answer with many Vias) is sent as
// one datagram and left to IP fragmentation, as RFC 3261 servers do.
func init() { sip.UDPMTUSize = 65535 }
