package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/emiago/sipgo/sip"
)

// WebRTC media on SIP legs: a browser softphone (JsSIP, SIP.js) over SIP
// over WebSocket offers and answers WebRTC media: ICE, DTLS-SRTP
// (UDP/TLS/RTP/SAVPF), rtcp-mux, Opus. voxgate terminates that with a
// WebRTC implementation it is given (cmd/voxgate wires webclient's pion
// one) and relays the browser's Opus as plain RTP to and from the call's own
// RTP socket, over a socket pair of the RTP port range on the media
// address. The call's RTP side is then exactly that of any other SIP call
// (jitter buffer, RTCP, stats), and the switchboard sees a normal leg.

// WebRTC makes the WebRTC end of calls with browsers over SIP.
type WebRTC interface {
	// NewMedia starts one call's WebRTC media. ctx bounds ICE gathering.
	NewMedia(ctx context.Context, log *slog.Logger) (WebRTCMedia, error)
}

// WebRTCMedia is one call's WebRTC media: a peer connection with one
// Opus audio stream each way.
type WebRTCMedia interface {
	// Answer takes the browser's SDP offer and returns the answer, with
	// the ICE candidates gathered in it (SIP has no trickle ICE).
	Answer(offer []byte) ([]byte, error)
	// Offer returns an offer for a call to a browser, candidates included.
	Offer() ([]byte, error)
	// Accept applies the browser's answer to Offer.
	Accept(answer []byte) error
	// OpusPT is the payload type of Opus agreed with the browser (after
	// Answer or Accept).
	OpusPT() uint8
	// EventPT is the payload type of RFC 4733 telephone-event at 48000
	// agreed with the browser; 0: none (digits then come as SIP INFO).
	EventPT() uint8
	// Relay starts relaying: each RTP packet from the browser is written
	// on conn to call; each read on conn goes to the browser. It returns at
	// once; Close stops it.
	Relay(conn net.PacketConn, call netip.AddrPort)
	// Close ends the media. Idempotent.
	Close() error
}

// WithWebRTC sets the WebRTC implementation for browsers' calls over SIP
// (default: none; a WebRTC offer then gets 488).
func WithWebRTC(w WebRTC) Option {
	return func(s *Server) error { s.webrtc = w; return nil }
}

// ErrNoWebRTC refuses a WebRTC offer when no implementation was wired.
var ErrNoWebRTC = errors.New("WebRTC media (UDP/TLS/RTP/SAVPF) is not available")

// webrtcLeg is a call's WebRTC media and the socket pair that relays it.
type webrtcLeg struct {
	media     WebRTCMedia
	rtp, rtcp *net.UDPConn
	addr      netip.AddrPort // the relay's RTP socket, the call's peer
	pool      *portPool
	port      int
	sdp       []byte // what went to the browser: our answer or offer
}

// isWebRTCSDP reports whether an SDP body offers WebRTC media (DTLS-SRTP
// with feedback, as browsers do; RFC 5764, RFC 8827).
func isWebRTCSDP(body []byte) bool {
	return bytes.Contains(body, []byte("UDP/TLS/RTP/SAVPF"))
}

func (s *Server) newWebRTCLeg(ctx context.Context, log *slog.Logger) (*webrtcLeg, error) {
	if s.webrtc == nil {
		return nil, ErrNoWebRTC
	}
	rtpc, rtcpc, port, err := s.ports.listenConns(s.mediaIP)
	if err != nil {
		return nil, err
	}
	m, err := s.webrtc.NewMedia(ctx, log)
	if err != nil {
		rtpc.Close()
		rtcpc.Close()
		s.ports.release(port)
		return nil, err
	}
	return &webrtcLeg{media: m, rtp: rtpc, rtcp: rtcpc, pool: s.ports, port: port,
		addr: netip.AddrPortFrom(s.mediaIP, uint16(port))}, nil
}

// plainSDP describes the relay as the call's peer: Opus over plain RTP at
// the relay's address, with the payload type the browser uses, and RFC 4733
// telephone-event at 48000 when the browser agreed to it (its RTCRtpSender
// dtmf digits and the ones voxgate sends it then pass the relay as RTP).
func (w *webrtcLeg) plainSDP() []byte {
	pt, ept := w.media.OpusPT(), w.media.EventPT()
	ip := w.addr.Addr().String()
	fmts, events := fmt.Sprint(pt), ""
	if ept != 0 && ept != pt {
		fmts += fmt.Sprintf(" %d", ept)
		events = fmt.Sprintf("a=rtpmap:%d telephone-event/48000\r\na=fmtp:%d 0-16\r\n", ept, ept)
	}
	return fmt.Appendf(nil, "v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP %s\r\na=rtpmap:%d opus/48000/2\r\na=fmtp:%d useinbandfec=1\r\n%sa=ptime:20\r\na=sendrecv\r\n",
		ip, ip, w.addr.Port(), fmts, pt, pt, events)
}

// connect starts the relay toward the call's RTP socket.
func (w *webrtcLeg) connect(call netip.AddrPort) { w.media.Relay(w.rtp, call) }

func (w *webrtcLeg) close() {
	if w == nil {
		return
	}
	_ = w.media.Close()
	w.rtp.Close()
	w.rtcp.Close()
	w.pool.release(w.port)
}

// webrtcAnswer answers a WebRTC offer in an INVITE (a browser's): it
// returns the leg and the plain offer that stands for it on the call's RTP
// side. For any other offer it returns nil and the body as it is.
func (s *Server) webrtcAnswer(ctx context.Context, req *sip.Request) (*webrtcLeg, []byte, error) {
	body := req.Body()
	if !isWebRTCSDP(body) {
		return nil, body, nil
	}
	w, err := s.newWebRTCLeg(ctx, s.log.With("call_id", req.CallID().Value()))
	if err != nil {
		return nil, nil, err
	}
	if w.sdp, err = w.media.Answer(body); err != nil {
		w.close()
		return nil, nil, fmt.Errorf("%w: %v", ErrNoCommonCodec, err)
	}
	return w, w.plainSDP(), nil
}

// webrtcOffer replaces the plain offer of an INVITE to a browser (over
// its WebSocket) by a WebRTC one. For any other INVITE it does nothing.
func (s *Server) webrtcOffer(ctx context.Context, req *sip.Request) (*webrtcLeg, error) {
	if !isWS(req.Transport()) || s.webrtc == nil {
		return nil, nil
	}
	w, err := s.newWebRTCLeg(ctx, s.log.With("to", req.Recipient.String())) // sipgo adds the Call-ID when it sends
	if err != nil {
		return nil, err
	}
	if w.sdp, err = w.media.Offer(); err != nil {
		w.close()
		return nil, err
	}
	req.SetBody(w.sdp)
	return w, nil
}

// accept takes the browser's answer and returns the plain answer that
// stands for it.
func (w *webrtcLeg) accept(answer []byte) ([]byte, error) {
	if err := w.media.Accept(answer); err != nil {
		return nil, err
	}
	return w.plainSDP(), nil
}

// reinviteWebRTC answers a browser's re-INVITE (hold, resume, an ICE
// restart, a session refresh) with pion's answer; the relay goes on.
func (c *Call) reinviteWebRTC(req *sip.Request, tx sip.ServerTransaction, timer timerNeg) {
	answer, err := c.wrtc.media.Answer(req.Body())
	if err != nil {
		c.srv.respond(tx, req, 488, reasonFor(488, err), sdpWarning(ErrNoCommonCodec))
		return
	}
	c.mu.Lock()
	c.wrtc.sdp = answer
	c.mu.Unlock()
	c.log.Info("re-INVITE from a browser", "hold", bytes.Contains(req.Body(), []byte("a=sendonly")) || bytes.Contains(req.Body(), []byte("a=inactive")))
	c.answerReinvite(req, tx, answer, timer)
}
