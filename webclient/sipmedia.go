package webclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// SIPMedia makes the WebRTC media of SIP calls with browser softphones
// (JsSIP, SIP.js over SIP over WebSocket): one pion PeerConnection per
// call, with the web side's ICE settings (addresses, UDP ports, no mDNS,
// ICE servers) and Opus. Package sip relays each call's Opus to its own
// RTP socket through SIPPeer.Relay; cmd/voxgate wires it as sip.WebRTC.
type SIPMedia struct {
	s *Server
}

// SIPMedia returns the server's WebRTC media maker for SIP calls.
func (s *Server) SIPMedia() *SIPMedia { return &SIPMedia{s: s} }

// gatherTimeout bounds ICE gathering: SIP carries no trickle ICE, so the
// SDP waits for every candidate.
const gatherTimeout = 10 * time.Second

// SIPPeer is one SIP call's WebRTC media.
type SIPPeer struct {
	pc     *webrtc.PeerConnection
	track  *sipTrack
	sender *webrtc.RTPSender
	log    *slog.Logger
	ctx    context.Context

	opusPT, eventPT atomic.Uint32 // agreed with the browser (eventPT 0: none)

	call      atomic.Pointer[net.UDPAddr] // where the browser's RTP goes
	conn      atomic.Pointer[net.PacketConn]
	done      chan struct{}
	trackOnce sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// NewMedia makes a PeerConnection for one call; ctx bounds ICE gathering.
func (m *SIPMedia) NewMedia(ctx context.Context, log *slog.Logger) (*SIPPeer, error) {
	var cfg webrtc.Configuration
	for _, s := range m.s.cfg.ICEServers {
		cfg.ICEServers = append(cfg.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	cfg.BundlePolicy = webrtc.BundlePolicyMaxBundle
	cfg.RTCPMuxPolicy = webrtc.RTCPMuxPolicyRequire
	pc, err := m.s.sipAPI.NewPeerConnection(cfg)
	if err != nil {
		return nil, err
	}
	p := &SIPPeer{pc: pc, log: log, ctx: ctx, done: make(chan struct{})}
	static, err := webrtc.NewTrackLocalStaticRTP(opusCapability(), "audio", "voxgate")
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	p.track = &sipTrack{TrackLocalStaticRTP: static}
	if p.sender, err = pc.AddTrack(p.track); err != nil {
		_ = pc.Close()
		return nil, err
	}
	p.wg.Add(1)
	go func() { // read RTCP so the interceptors work
		defer p.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := p.sender.Read(buf); err != nil {
				return
			}
		}
	}()
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if t.Kind() != webrtc.RTPCodecTypeAudio {
			return
		}
		p.trackOnce.Do(func() {
			p.wg.Add(1)
			go p.readTrack(t)
		})
	})
	pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
		log.Debug("SIP WebRTC: ICE state", "state", st.String())
	})
	return p, nil
}

// Answer applies the browser's offer and returns the answer with every
// candidate.
func (p *SIPPeer) Answer(offer []byte) ([]byte, error) {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		return nil, err
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return nil, err
	}
	sdp, err := p.gathered(answer)
	if err == nil {
		p.agreed()
	}
	return sdp, err
}

// Offer returns an offer with every candidate.
func (p *SIPPeer) Offer() ([]byte, error) {
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	return p.gathered(offer)
}

func (p *SIPPeer) gathered(d webrtc.SessionDescription) ([]byte, error) {
	done := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(d); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(p.ctx, gatherTimeout)
	defer cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("ICE gathering: %w", ctx.Err())
	}
	return []byte(p.pc.LocalDescription().SDP), nil
}

// Accept applies the browser's answer.
func (p *SIPPeer) Accept(answer []byte) error {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		return err
	}
	p.agreed()
	return nil
}

// agreed notes the payload types of Opus and telephone-event agreed with
// the browser, once both descriptions are set.
func (p *SIPPeer) agreed() {
	opusPT, eventPT := uint32(opusParameters().PayloadType), uint32(0)
	for _, c := range p.sender.GetParameters().Codecs {
		switch {
		case c.MimeType == webrtc.MimeTypeOpus:
			opusPT = uint32(c.PayloadType)
		case strings.EqualFold(c.MimeType, telephoneEventMime) && c.ClockRate == uint32(opusParameters().ClockRate):
			eventPT = uint32(c.PayloadType)
		}
	}
	p.opusPT.Store(opusPT)
	p.eventPT.Store(eventPT)
}

// OpusPT is the payload type of Opus agreed with the browser.
func (p *SIPPeer) OpusPT() uint8 {
	if pt := p.opusPT.Load(); pt != 0 {
		return uint8(pt)
	}
	return uint8(opusParameters().PayloadType)
}

// EventPT is the payload type of RFC 4733 telephone-event (at Opus's
// clock, 48000) agreed with the browser; 0 when it offered or took none.
func (p *SIPPeer) EventPT() uint8 { return uint8(p.eventPT.Load()) }

// Relay sends the browser's RTP on conn to call, and what arrives on conn
// from call to the browser.
func (p *SIPPeer) Relay(conn net.PacketConn, call netip.AddrPort) {
	p.call.Store(net.UDPAddrFromAddrPort(call))
	p.conn.Store(&conn)
	p.wg.Add(1)
	go p.egress(conn, call)
}

// readTrack relays the browser's packets as they are (sequence numbers and
// timestamps kept, so the call's RTP side counts loss and jitter of the
// browser's stream).
func (p *SIPPeer) readTrack(t *webrtc.TrackRemote) {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		call, conn := p.call.Load(), p.conn.Load()
		if call == nil || conn == nil {
			continue // not relaying yet
		}
		if _, err := (*conn).WriteTo(buf[:n], call); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// egress hands the call's RTP to the browser's track (pion sets the SSRC
// and payload type it negotiated and encrypts it).
func (p *SIPPeer) egress(conn net.PacketConn, call netip.AddrPort) {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	udp, _ := conn.(*net.UDPConn)
	for {
		n, src, err := readFrom(conn, udp, buf)
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if src.Port() != call.Port() {
			continue // only the call's own socket
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		write := p.track.WriteRTP
		if ept := p.eventPT.Load(); ept != 0 && uint32(pkt.PayloadType) == ept {
			write = p.track.writeEvent // an RFC 4733 digit: its own payload type
		}
		if err := write(&pkt); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// readFrom reads a datagram and its source; from a UDP socket without
// allocating the address (the media path allocates nothing per packet).
func readFrom(conn net.PacketConn, udp *net.UDPConn, buf []byte) (int, netip.AddrPort, error) {
	if udp != nil {
		return udp.ReadFromUDPAddrPort(buf)
	}
	n, a, err := conn.ReadFrom(buf)
	if ua, ok := a.(*net.UDPAddr); ok {
		return n, ua.AddrPort(), err
	}
	return n, netip.AddrPort{}, err
}

// Close ends the PeerConnection and waits for its goroutines; the caller
// closes the relay's socket. Idempotent.
func (p *SIPPeer) Close() error {
	var err error
	p.closeOnce.Do(func() {
		close(p.done)
		err = p.pc.Close()
		if c := p.conn.Load(); c != nil {
			_ = (*c).SetReadDeadline(time.Now()) // egress ends; the socket is the caller's
		}
		p.wg.Wait()
	})
	return err
}

// sipTrack is a SIP call's audio to the browser: pion's static RTP track,
// which stamps Opus's payload type on every packet it writes, and RFC 4733
// telephone-events written on the same stream (SSRC and sequence numbers)
// with their own payload type, as a phone sends them.
type sipTrack struct {
	*webrtc.TrackLocalStaticRTP
	mu     sync.RWMutex
	ssrc   uint32
	stream webrtc.TrackLocalWriter // nil until pion binds the track
}

// Bind is pion's: it notes the stream events are written to.
func (t *sipTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, err := t.TrackLocalStaticRTP.Bind(ctx)
	if err == nil {
		t.mu.Lock()
		t.ssrc, t.stream = uint32(ctx.SSRC()), ctx.WriteStream()
		t.mu.Unlock()
	}
	return c, err
}

// Unbind is pion's.
func (t *sipTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	t.stream = nil
	t.mu.Unlock()
	return t.TrackLocalStaticRTP.Unbind(ctx)
}

// writeEvent sends an RFC 4733 packet as it is but for the SSRC.
func (t *sipTrack) writeEvent(pkt *rtp.Packet) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.stream == nil {
		return nil // not bound yet (or any more): the digit is lost, as audio would be
	}
	pkt.SSRC = t.ssrc
	_, err := t.stream.WriteRTP(&pkt.Header, pkt.Payload)
	return err
}
