package sip

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/voxgate/voxgate/audio"
)

// ErrNoEarlyMedia: the call cannot carry media before its answer (its
// INVITE had no SDP offer, so a 183 would have to offer, which needs
// reliable provisional responses, RFC 3262, not implemented).
var ErrNoEarlyMedia = errors.New("no early media on a call without an SDP offer")

// EarlyMedia is the far end's media on an outgoing call before it answers
// (RFC 3960: a 183 Session Progress with SDP, an announcement or the
// carrier's own ringback). It is a media leg: what it receives is the far
// end's early audio; what is written to it is sent there. It ends (Done)
// when the call fails, or with the call once answered: the answered call
// goes on on the same RTP session.
type EarlyMedia struct {
	id    string
	sess  *rtpSession
	codec audio.Codec
	done  chan struct{}
	once  sync.Once
	body  []byte // the SDP of the 18x
	mo    mediaOffer
}

// ID identifies the early media (the call's Call-ID and "early").
func (e *EarlyMedia) ID() string { return e.id }

// Codec is the codec the far end chose in its 183.
func (e *EarlyMedia) Codec() audio.Codec { return e.codec }

// SetPacketHandler hands each RTP packet received to h (nil: drop them).
func (e *EarlyMedia) SetPacketHandler(h audio.PacketHandler) { e.sess.setHandler(h) }

// WritePayload sends one encoded frame toward the far end.
func (e *EarlyMedia) WritePayload(payload []byte, samples uint32) error {
	select {
	case <-e.done:
		return ErrCallEnded
	default:
	}
	return e.sess.writePayload(payload, samples)
}

// Done is closed when the call failed, or ended after its answer.
func (e *EarlyMedia) Done() <-chan struct{} { return e.done }

func (e *EarlyMedia) end() { e.once.Do(func() { close(e.done) }) }

// earlyAnswer handles a provisional response with SDP to an INVITE voxgate
// sent: the first one starts the early media and tells o.OnEarlyMedia.
// Later ones (another fork of the call, a repeat) are not heard: one
// early media stream per call.
func (s *Server) earlyAnswer(res *sip.Response, d *dialing) {
	if d.o.OnEarlyMedia == nil || d.early != nil || len(res.Body()) == 0 {
		return
	}
	if ct := res.ContentType(); ct == nil || !bytes.HasPrefix(bytes.ToLower([]byte(ct.Value())), []byte("application/sdp")) {
		return
	}
	mo, err := s.negotiate(res.Body(), d.accept)
	var sl, sr *cryptoAttr
	if err == nil {
		sl, sr, err = takeAnswerSRTP(d.policy, d.local.Crypto, &mo)
	}
	if err == nil {
		err = d.sess.setSRTP(sl, sr)
		d.sess.srtpFailures = &s.counters.srtpFailures
	}
	if err != nil {
		s.log.Info("early media refused: unusable SDP in the provisional answer", "call_id", d.callID, "status", res.StatusCode, "error", err)
		return
	}
	d.sess.configure(&mo, mo.Direction.reverse())
	d.sess.start(s.ctx)
	d.early = &EarlyMedia{id: d.callID + "-early", sess: d.sess, codec: audio.Codec{Name: mo.Codec.Name, Rate: mo.Codec.Rate}, done: make(chan struct{}),
		body: append([]byte(nil), res.Body()...), mo: mo}
	s.log.Info("early media", "call_id", d.callID, "status", res.StatusCode, "codec", mo.Codec.Name, "remote_rtp", mo.Addr)
	d.o.OnEarlyMedia(d.early)
}

// dialing is an outgoing INVITE until its final answer.
type dialing struct {
	callID string
	o      DialOptions
	sess   *rtpSession
	accept []codecInfo
	policy SRTPPolicy
	local  localMedia
	early  *EarlyMedia // the early media, once a 183 with SDP came
}

// Progress lets the caller hear audio before the answer: a 183 Session
// Progress with voxgate's SDP answer, and the media starts (RFC 3960
// gateway model). The 200 that answers later carries the same SDP. It is
// idempotent; after the answer or the end it does nothing.
func (c *Call) Progress(ctx context.Context) error {
	if c.out != nil {
		return nil
	}
	c.mu.Lock()
	switch {
	case c.st == stateEnded:
		c.mu.Unlock()
		return ErrCallEnded
	case c.st == stateAnswered || c.early:
		c.mu.Unlock()
		return nil
	case c.lateOffer:
		c.mu.Unlock()
		return ErrNoEarlyMedia
	}
	c.early = true
	if c.st == stateNew {
		c.st = stateRinging
	}
	body := c.local.marshal(&c.offer)
	c.sess.configure(&c.offer, c.local.Direction)
	c.mu.Unlock()
	c.sess.start(c.ctx)
	res := sip.NewResponseFromRequest(c.dlg.InviteRequest, 183, "Session Progress", body)
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	c.srv.tlsContact(res, c.dlg.InviteRequest)
	c.srv.counters.response(183)
	c.log.Info("early media to the caller (183 Session Progress)")
	return c.dlg.WriteResponse(res)
}

// PlaysOwnRingback is true: a phone plays its own ringback tone on 180.
func (c *Call) PlaysOwnRingback() bool { return true }
