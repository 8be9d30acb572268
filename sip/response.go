package sip

import (
	"crypto/rand"
	"encoding/hex"
	"net"

	"github.com/emiago/sipgo/sip"
)

// newResponse answers a request the server handles outside a dialog (a
// REGISTER, an OPTIONS, a refusal) as sipgo's NewResponseFromRequest does
// (RFC 3261 8.2.6; rport per RFC 3581), with half its allocations: the
// headers a response repeats unchanged (From, Call-ID, CSeq, the Vias but
// the top one, Record-Route) are the request's own, shared, not copies.
// Nothing changes a received request's headers after it is parsed, nor a
// response's after it is sent (a retransmission writes it again as it is).
// The top Via is copied where rport needs its value, and the To to get the
// server's tag. Content-Length is 0: a response with a body is built with
// sipgo's constructor.
func newResponse(req *sip.Request, code int, reason string) *sip.Response {
	res := sip.NewResponse(code, reason)
	res.SipVersion = req.SipVersion
	// RFC 3261 section 20, Table 3; 12.1.1 for early dialogs.
	allowedMethod := req.Method != sip.REGISTER && !req.IsAck()
	allowedStatus := (code >= 180 && code < 190) || (code >= 200 && code < 300)
	earlyInvite := req.IsInvite() && code > 100 && code < 200
	if allowedMethod && (allowedStatus || earlyInvite) {
		for _, h := range req.GetHeaders("Record-Route") {
			res.AppendHeader(h)
		}
	}
	for i, h := range req.GetHeaders("Via") {
		if v, ok := h.(*sip.ViaHeader); ok && i == 0 {
			h = viaWithRport(v, req.Source())
		}
		res.AppendHeader(h)
	}
	if h := req.From(); h != nil {
		res.AppendHeader(h)
	}
	if h := req.To(); h != nil {
		if code != 100 && !h.Params.Has("tag") {
			to := *h
			to.Params = make(sip.HeaderParams, len(h.Params), len(h.Params)+1)
			copy(to.Params, h.Params)
			to.Params.Add("tag", newTag())
			h = &to
		}
		res.AppendHeader(h)
	}
	if h := req.CallID(); h != nil {
		res.AppendHeader(h)
	}
	if h := req.CSeq(); h != nil {
		res.AppendHeader(h)
	}
	if code == 100 {
		for _, h := range req.GetHeaders("Timestamp") {
			res.AppendHeader(h)
		}
	}
	res.AppendHeader(&zeroLength)
	res.SetTransport(req.Transport())
	res.SetDestination(req.Source())
	return res
}

// zeroLength is the Content-Length of every response newResponse builds:
// shared, never written.
var zeroLength sip.ContentLengthHeader

// viaWithRport returns v, or where it asks for rport with no value, a copy
// of it with the source's port and address filled in (RFC 3581 section 4).
func viaWithRport(v *sip.ViaHeader, source string) *sip.ViaHeader {
	if val, ok := v.Params.Get("rport"); !ok || val != "" {
		return v
	}
	host, port, _ := net.SplitHostPort(source)
	c := *v
	c.Params = make(sip.HeaderParams, len(v.Params), len(v.Params)+1)
	copy(c.Params, v.Params)
	c.Params.Add("rport", port)
	c.Params.Add("received", host)
	return &c
}

// newTag is a fresh To tag: 64 random bits in hex (RFC 3261 19.3 asks for
// at least 32).
func newTag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
