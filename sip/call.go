package sip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/voxgate/voxgate/audio"
)

type callState int

const (
	stateNew callState = iota
	stateRinging
	stateAnswered
	stateEnded
)

// Call is one SIP call with its audio stream: a media leg. Received RTP is
// pushed packet by packet to a handler (SetPacketHandler); encoded frames
// written are packetized and sent (WritePayload).
type Call struct {
	srv      *Server
	log      *slog.Logger
	callID   string
	dialogID string
	dialed   string
	caller   string
	origin   Origin
	cascade  Cascade                    // a cascade leg's room and flags (cascade.go)
	dlg      *sipgo.DialogServerSession // incoming calls
	out      *sipgo.DialogClientSession // outgoing calls
	sess     *rtpSession
	wrtc     *webrtcLeg // a browser's WebRTC media, relayed to sess (webrtc.go); nil for others

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	endOnce sync.Once

	mu        sync.Mutex
	st        callState
	offer     mediaOffer
	acks      map[uint32]chan struct{} // re-INVITEs whose 200 awaits its ACK, by CSeq
	lateOffer bool                     // the INVITE had no SDP: our 200 offers, the ACK answers
	early     bool                     // a 183 with our SDP went out: the media runs (early.go)
	peerBye   bool                     // the far end sent BYE
	ackSDP    []byte
	local     localMedia
	endReason string
	localBye  bool // Hangup is sending BYE
	onDTMF    func(rune)
	finishOne sync.Once
	txBuf     []byte             // WriteFrame's buffer
	txEnc     audio.CodecEncoder // WriteFrame's encoder, for txCodec
	txCodec   audio.Codec
	timer     callTimer // session timer, pending re-offer (timers.go)
	// srtpPolicy is the call's media encryption policy (srtp.go).
	srtpPolicy SRTPPolicy
	// replaces is the ID of the call this one takes the place of (an
	// INVITE with Replaces, refer.go).
	replaces string
}

func newInboundCall(s *Server, req *sip.Request, dlg *sipgo.DialogServerSession, sess *rtpSession, mo *mediaOffer, origin Origin) *Call {
	var b [8]byte
	_, _ = rand.Read(b[:])
	c := &Call{
		srv:      s,
		callID:   req.CallID().Value(),
		dialogID: dlg.ID,
		dialed:   req.Recipient.User,
		caller:   req.From().Address.User,
		origin:   origin,
		dlg:      dlg,
		sess:     sess,
		done:     make(chan struct{}),
		offer:    *mo,
	}
	if c.dialed == "" {
		c.dialed = req.To().Address.User
	}
	c.log = s.log.With("call_id", c.callID)
	sess.log = c.log
	sess.onDTMF = c.gotDTMF
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	c.local = localMedia{
		IP: s.sdpIP, Port: sess.port, SessID: binary.BigEndian.Uint64(b[:]) >> 2, Version: 1,
		Codecs: []codecInfo{mo.Codec}, PTs: []uint8{mo.PT}, DTMFPT: mo.DTMFPT, DTMFRate: mo.DTMFRate, CNPT: mo.CNPT, Ptime: mo.Ptime,
		Direction: mo.Direction.reverse(),
	}
	go func() { // a CANCEL, a dead INVITE transaction or a finished BYE ends the dialog
		select {
		case <-dlg.Context().Done():
			c.mu.Lock()
			reason := "canceled"
			switch {
			case c.localBye:
				reason = "local hangup"
			case c.peerBye:
				reason = "remote hangup"
			case c.st == stateAnswered:
				reason = "dialog ended"
			}
			c.mu.Unlock()
			c.end(reason)
		case <-c.done:
		}
	}()
	return c
}

func newOutboundCall(s *Server, req *sip.Request, dlg *sipgo.DialogClientSession, sess *rtpSession, mo *mediaOffer, local localMedia, dialed string, origin Origin) *Call {
	c := &Call{
		srv:      s,
		callID:   req.CallID().Value(),
		dialogID: dlg.ID,
		dialed:   dialed,
		caller:   req.From().Address.User,
		origin:   origin,
		out:      dlg,
		sess:     sess,
		done:     make(chan struct{}),
		offer:    *mo,
		local:    local,
		st:       stateAnswered,
	}
	c.local.Codecs, c.local.PTs, c.local.DTMFPT, c.local.DTMFRate, c.local.CNPT = []codecInfo{mo.Codec}, []uint8{mo.PT}, mo.DTMFPT, mo.DTMFRate, mo.CNPT
	c.log = s.log.With("call_id", c.callID)
	sess.log = c.log
	sess.onDTMF = c.gotDTMF
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	// Our direction toward the peer is what we offered (sendrecv) unless the
	// answer limits it.
	sess.configure(mo, mo.Direction.reverse())
	sess.start(c.ctx)
	go func() { // the media and the call object live until the call ends
		<-c.done
		c.finish()
	}()
	return c
}

// ID identifies the call (its SIP Call-ID).
func (c *Call) ID() string { return c.callID }

// Dialed is the number or user the caller dialled (the Request-URI user).
func (c *Call) Dialed() string { return c.dialed }

// Caller is the user part of From.
func (c *Call) Caller() string { return c.caller }

// Origin tells who the caller is: an authenticated user, a trunk or a guest.
func (c *Call) Origin() Origin { return c.origin }

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.done }

// EndReason says why the call ended ("remote hangup", "canceled", ...).
func (c *Call) EndReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endReason
}

// Held reports whether the peer has put the call on hold (it no longer sends).
func (c *Call) Held() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.offer.Direction.Sends()
}

func (c *Call) state() callState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Ringing sends 180 Ringing.
func (c *Call) Ringing() error {
	c.mu.Lock()
	if c.st != stateNew {
		c.mu.Unlock()
		return nil
	}
	c.st = stateRinging
	c.mu.Unlock()
	c.srv.counters.response(180)
	return c.dlg.Respond(180, "Ringing", nil)
}

// Answer sends 200 OK with our SDP answer, starts the media and waits for
// the ACK. For an outgoing call (already answered by the far end) it does
// nothing.
func (c *Call) Answer(ctx context.Context) error {
	if c.out != nil {
		return nil
	}
	c.mu.Lock()
	if c.st == stateEnded {
		c.mu.Unlock()
		return ErrCallEnded
	}
	c.st = stateAnswered
	late := c.lateOffer
	var body []byte
	if late {
		body = c.local.marshal(nil) // our offer; the answer comes in the ACK
	} else {
		body = c.local.marshal(&c.offer)
		if c.wrtc != nil {
			body = c.wrtc.sdp // the browser gets pion's answer
		}
		c.sess.configure(&c.offer, c.local.Direction)
	}
	c.mu.Unlock()
	if !late {
		c.sess.start(c.ctx)
	}
	res := sip.NewSDPResponseFromRequest(c.dlg.InviteRequest, body)
	res.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	for _, h := range c.srv.timerHeaders(c.timer.neg) {
		res.AppendHeader(h)
	}
	c.srv.tlsContact(res, c.dlg.InviteRequest)
	// A CANCEL that came while the answer was being made has ended the
	// dialog (and sent 487): a 200 now would follow the 487 (sipgo v1.7.2
	// would even send it in place of the 487's retransmissions).
	if c.dlg.Context().Err() != nil {
		c.end("canceled")
		return ErrCallEnded
	}
	c.srv.counters.response(res.StatusCode)
	if err := c.dlg.WriteResponse(res); err != nil {
		c.log.Warn("answer failed", "error", err)
		c.end("no ACK")
		return err
	}
	if late {
		if err := c.takeAckAnswer(); err != nil {
			c.log.Warn("late offer: no usable answer in the ACK", "error", err)
			c.Hangup(ctx)
			return err
		}
	}
	c.arm(c.timer.neg, true)
	c.log.Info("call answered", "codec", c.Codec().Name, "remote_rtp", c.remote(), "srtp", c.SRTP())
	return nil
}

// takeAckAnswer applies the SDP answer an ACK carried to our late offer.
func (c *Call) takeAckAnswer() error {
	c.mu.Lock()
	body := c.ackSDP
	offered := c.local.Codecs
	c.mu.Unlock()
	if len(body) == 0 {
		return fmt.Errorf("%w: the ACK has no SDP", ErrBadSDP)
	}
	mo, err := c.srv.negotiate(body, offered)
	if err != nil {
		return err
	}
	c.mu.Lock()
	sl, sr, err := takeAnswerSRTP(c.srtpPolicy, c.local.Crypto, &mo)
	if err == nil {
		if sl == nil {
			c.local.Proto, c.local.Crypto = "", nil
		} else {
			c.local.Crypto = []cryptoAttr{*sl}
		}
		err = c.sess.setSRTP(sl, sr)
	}
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.offer = mo
	c.lateOffer = false
	c.local.Codecs, c.local.PTs, c.local.DTMFPT, c.local.DTMFRate, c.local.CNPT = []codecInfo{mo.Codec}, []uint8{mo.PT}, mo.DTMFPT, mo.DTMFRate, mo.CNPT
	c.local.Direction = mo.Direction.reverse()
	c.sess.configure(&mo, c.local.Direction)
	c.mu.Unlock()
	c.sess.start(c.ctx)
	return nil
}

// setAckSDP keeps the body of the ACK to a late offer.
func (c *Call) setAckSDP(b []byte) {
	c.mu.Lock()
	if c.lateOffer && c.ackSDP == nil {
		c.ackSDP = append([]byte(nil), b...)
	}
	c.mu.Unlock()
}

func (c *Call) remote() netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offer.Addr
}

// Reject refuses an unanswered call with a final status and its reason.
func (c *Call) Reject(status int, reason string) {
	c.mu.Lock()
	if c.st == stateAnswered || c.st == stateEnded {
		c.mu.Unlock()
		return
	}
	c.st = stateEnded
	c.mu.Unlock()
	res := sip.NewResponseFromRequest(c.dlg.InviteRequest, status, reason, nil)
	res.AppendHeader(sip.NewHeader("Server", "voxgate"))
	c.srv.counters.response(res.StatusCode)
	_ = c.dlg.WriteResponse(res)
	c.log.Info("call rejected", "status", status, "reason", reason)
	c.end("rejected")
}

// Hangup ends the call: BYE when answered, 480 when not.
func (c *Call) Hangup(ctx context.Context) {
	switch c.state() {
	case stateEnded:
		return
	case stateAnswered:
		c.mu.Lock()
		c.localBye = true
		c.mu.Unlock()
		if err := c.bye(ctx); err != nil {
			c.log.Warn("BYE failed", "error", err)
		}
		c.end("local hangup")
		if c.out != nil {
			c.finish() // an outgoing call has no INVITE handler to release it
		}
	default:
		c.Reject(RejectUnavailable.Status, RejectUnavailable.Reason)
	}
}

func (c *Call) remoteBye(req *sip.Request, tx sip.ServerTransaction) {
	// ReadBye ends the dialog's context, which the watcher in
	// newInboundCall may see first: tell it why.
	c.mu.Lock()
	c.peerBye = true
	c.mu.Unlock()
	var err error
	if c.out != nil {
		err = c.out.ReadBye(req, tx)
	} else {
		err = c.dlg.ReadBye(req, tx)
	}
	if err != nil {
		c.mu.Lock()
		c.peerBye = false
		c.mu.Unlock()
		c.srv.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	c.end("remote hangup")
}

func (c *Call) end(reason string) {
	c.endOnce.Do(func() {
		if r := c.timerEndReason(); r != "" {
			reason = r // voxgate hung up on the session timer
		}
		c.mu.Lock()
		c.st = stateEnded
		c.endReason = reason
		c.mu.Unlock()
		// Done first: whoever sees the call's context end then finds the
		// call over, and does not take it for voxgate stopping (the call
		// record's cause).
		close(c.done)
		c.cancel()
		st := c.sess.snapshot()
		c.log.Info("call ended", "reason", reason, "rx_packets", st.PacketsReceived, "tx_packets", st.PacketsSent,
			"lost", st.Lost, "jitter", st.Jitter, "dtmf_digits", len(st.DTMFReceived), "dtmf_sent_digits", len(st.DTMFSent)) // counts: digits may be PINs
	})
}

// finish runs when the INVITE handler returns: the call is hung up if still
// up, and its media resources are released.
func (c *Call) finish() {
	c.finishOne.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Hangup(ctx)
		c.end("handler done")
		c.sess.close()
		c.wrtc.close()
		if c.out != nil {
			_ = c.out.Close()
		} else {
			_ = c.dlg.Close()
		}
		c.srv.untrack(c)
	})
}

// reinvite handles a re-INVITE: hold (sendonly, inactive, 0.0.0.0), resume, or
// a new address or codec.
func (c *Call) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	timer, ok := c.reinviteTimers(req, tx) // a 422 or 491 leaves the call as it was
	if !ok {
		return
	}
	if c.wrtc != nil && len(req.Body()) > 0 {
		c.reinviteWebRTC(req, tx, timer) // a browser's new offer goes to pion (webrtc.go)
		return
	}
	if len(req.Body()) == 0 { // RFC 3261 14.2: our 200 offers, the ACK answers
		body, ok := c.reoffer(req.CSeq().SeqNo)
		if !ok {
			c.srv.respond(tx, req, 491, "Request Pending")
			return
		}
		c.log.Info("re-INVITE without SDP: offering in the 200")
		c.answerReinvite(req, tx, body, timer)
		return
	}
	mo, err := c.srv.negotiate(req.Body(), c.srv.acceptedCodecs())
	if err != nil {
		code := 488
		if errors.Is(err, ErrBadSDP) {
			code = 400
		}
		c.srv.respond(tx, req, code, reasonFor(code, err), sdpWarning(err))
		return
	}
	sl, sr, err := c.answerReinviteSRTP(&mo)
	if err != nil {
		c.srv.respond(tx, req, 488, reasonFor(488, err))
		return
	}
	c.mu.Lock()
	if c.st != stateAnswered {
		c.mu.Unlock()
		c.srv.respond(tx, req, 491, "Request Pending")
		return
	}
	c.offer = mo
	c.local.Version++
	c.local.Codecs, c.local.PTs, c.local.DTMFPT, c.local.DTMFRate, c.local.CNPT, c.local.Ptime = []codecInfo{mo.Codec}, []uint8{mo.PT}, mo.DTMFPT, mo.DTMFRate, mo.CNPT, mo.Ptime
	c.local.Direction = mo.Direction.reverse()
	c.setLocalCryptoLocked(&mo, sl)
	if err := c.sess.setSRTP(sl, sr); err != nil {
		c.mu.Unlock()
		c.srv.respond(tx, req, 488, reasonFor(488, err))
		return
	}
	body := c.local.marshal(&mo)
	c.sess.configure(&mo, c.local.Direction)
	c.mu.Unlock()
	c.log.Info("re-INVITE", "remote_direction", mo.Direction, "remote_rtp", mo.Addr, "codec", mo.Codec.Name)
	c.answerReinvite(req, tx, body, timer)
}

// answerReinvite sends the 200 to a re-INVITE, again over UDP until its ACK.
func (c *Call) answerReinvite(req *sip.Request, tx sip.ServerTransaction, body []byte, timer timerNeg) {
	res := sip.NewSDPResponseFromRequest(req, body)
	res.AppendHeader(&c.srv.contact)
	for _, h := range c.srv.timerHeaders(timer) {
		res.AppendHeader(h)
	}
	acked := c.awaitAck(req.CSeq().SeqNo)
	c.srv.send(tx, res)
	c.arm(timer, true)
	if !strings.EqualFold(req.Transport(), "UDP") {
		return // a reliable transport delivers the 200 once
	}
	// RFC 3261 13.3.1.4: the 2xx goes again at T1, 2T1, ... up to T2 until
	// its ACK arrives; after 64*T1 without one, give up.
	go func() { // ends with the ACK, the call, or 64*T1
		wait := t1
		timer := time.NewTimer(wait)
		defer timer.Stop()
		giveUp := time.After(64 * t1)
		for {
			select {
			case <-acked:
				return
			case <-c.done:
				return
			case <-giveUp:
				c.log.Warn("no ACK for the 200 to a re-INVITE", "cseq", req.CSeq().SeqNo)
				return
			case <-timer.C:
				c.srv.counters.response(res.StatusCode)
				if err := tx.Respond(res); err != nil {
					c.log.Debug("re-INVITE 200 retransmission failed", "error", err)
					return
				}
				wait = min(2*wait, t2)
				timer.Reset(wait)
			}
		}
	}()
}

// awaitAck returns a channel closed when the ACK for the INVITE with CSeq
// number seq arrives.
func (c *Call) awaitAck(seq uint32) <-chan struct{} {
	ch := make(chan struct{})
	c.mu.Lock()
	if c.acks == nil {
		c.acks = map[uint32]chan struct{}{}
	}
	c.acks[seq] = ch
	c.mu.Unlock()
	return ch
}

// gotAck is told of every ACK in the dialog.
func (c *Call) gotAck(seq uint32) {
	c.mu.Lock()
	ch := c.acks[seq]
	delete(c.acks, seq)
	c.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// Codec is the negotiated codec with its RTP clock rate.
func (c *Call) Codec() audio.Codec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return audio.Codec{Name: c.offer.Codec.Name, Rate: c.offer.Codec.Rate}
}

// SetPacketHandler makes the call hand each received RTP packet of its
// codec to h, on the goroutine that read it from the socket (nil: drop them).
func (c *Call) SetPacketHandler(h audio.PacketHandler) { c.sess.setHandler(h) }

// WritePayload sends one encoded frame covering samples RTP clock units.
// It does not block. Frames written while the call is on hold are dropped;
// an empty payload sends nothing and advances the RTP clock (DTX).
func (c *Call) WritePayload(payload []byte, samples uint32) error {
	select {
	case <-c.done:
		return ErrCallEnded
	default:
	}
	return c.sess.writePayload(payload, samples)
}

// ErrFrameRate is returned by WriteFrame for PCM at a rate the call's
// encoder does not take.
var ErrFrameRate = errors.New("the frame's rate is not the codec encoder's")

// WriteFrame encodes a frame of PCM with the call's codec (from the codec
// registry) and sends it. The frame's rate must be one the encoder takes:
// 8 kHz for G.711, 16 kHz for G.722, 8 to 48 kHz for Opus.
func (c *Call) WriteFrame(f *audio.Frame) error {
	codec := c.Codec()
	if c.txEnc == nil || c.txCodec != codec || c.txEnc.Rate() != f.Rate {
		info, ok := audio.LookupCodec(codec.Name)
		if !ok {
			return fmt.Errorf("codec %s: %w", codec.Name, ErrFrameRate)
		}
		enc, err := info.NewEncoder(f.Rate)
		if err != nil {
			return err
		}
		if enc.Rate() != f.Rate {
			return fmt.Errorf("%s takes %d Hz, not %d: %w", codec.Name, enc.Rate(), f.Rate, ErrFrameRate)
		}
		c.txEnc, c.txCodec = enc, codec
	}
	var err error
	if c.txBuf, err = c.txEnc.Encode(c.txBuf[:0], f.Samples); err != nil {
		return err
	}
	return c.WritePayload(c.txBuf, uint32(len(f.Samples)*codec.Rate/f.Rate))
}

// SendDTMF queues digits to send as RFC 4733 events, paced by WriteFrame.
func (c *Call) SendDTMF(digits string) error { return c.sess.sendDTMF(digits) }

// OnDTMF sets the function called for each digit received (RFC 4733 or SIP
// INFO), on the goroutine that received it: f must not block.
func (c *Call) OnDTMF(f func(rune)) {
	c.mu.Lock()
	c.onDTMF = f
	c.mu.Unlock()
}

func (c *Call) gotDTMF(d rune) {
	c.mu.Lock()
	f := c.onDTMF
	c.mu.Unlock()
	c.log.Debug("dtmf received") // never the digit: it may be part of a PIN
	if f != nil {
		f(d)
	}
}

// Stats returns the call's media counters.
func (c *Call) Stats() Stats { return c.sess.snapshot() }

// SendingDTMF reports whether digits are queued or being sent as RFC 4733
// events: they replace audio packets every 20 ms, so a room writes to the
// call every tick meanwhile, DTX gaps included.
func (c *Call) SendingDTMF() bool {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return c.sess.dtmfActive != nil || len(c.sess.dtmfQueue) > 0
}

// AcceptsDTX reports whether the peer asked for DTX (usedtx=1 in its SDP):
// then a room sends it gaps, not silence, while nobody talks.
func (c *Call) AcceptsDTX() bool {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return c.sess.dtx
}

// ComfortNoise reports whether the peer took comfort noise (RFC 3389) with
// G.711: silence goes to it as a comfort noise packet every 400 ms.
func (c *Call) ComfortNoise() bool {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return c.sess.cnPT != 0
}

// RemoteLoss is the fraction of our packets the peer reported lost in its
// last RTCP receiver report.
func (c *Call) RemoteLoss() float64 {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return c.sess.stats.RemoteFractionLost
}

// RTT is the round-trip time to the peer from RTCP (0: not measured yet:
// the peer has not yet echoed one of our sender reports).
func (c *Call) RTT() time.Duration {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return c.sess.stats.RTT
}

// ReceiveReport is what arrived from the peer: packets, loss and jitter as
// RFC 3550 counts them, the numbers of the call's RTCP reports.
func (c *Call) ReceiveReport() audio.ReceiveReport {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return c.sess.recv.Report()
}
