package webclient

import (
	"context"
	"errors"
	"github.com/pion/rtcp"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/audio"
)

// Errors of calls.
var (
	// ErrCallEnded is returned by a call's methods after it ended.
	ErrCallEnded = errors.New("call ended")
	// ErrBadDigits: DTMF other than 1 to 32 of 0-9 * # A-D.
	ErrBadDigits = errors.New("DTMF digits are 1 to 32 of 0-9 * # A-D")
)

// Call is one browser call: a pion PeerConnection whose received Opus is
// pushed packet by packet to a handler and whose sent Opus comes from
// WritePayload.
// It is a media leg for the bridge.
type Call struct {
	id     string
	user   string
	dialed string
	// guestRoom is the room a guest link's call joins ("" for a user's).
	guestRoom string
	log       *slog.Logger
	pc        *webrtc.PeerConnection
	out       *rtpSender // the Opus track to the browser
	send      func(Message)
	cands     *CandidateGate // ICE candidates wait for their answer

	trackOnce sync.Once
	packets   audio.PacketDelivery // the browser's media, pushed to the leg's handler

	done    chan struct{}
	endOnce sync.Once
	mu      sync.Mutex
	reason  string
	muted   bool
	onDTMF  func(digit rune)
	// onSelfMute is told of the page's own mute (OnSelfMute).
	onSelfMute func(on bool)

	recvMu sync.Mutex
	recv   audio.ReceiveStats // the browser's stream, counted at arrival (RFC 3550)
	// remoteLoss is the fraction of our stream the browser reports lost.
	remoteLoss float64
	// rtt is the round-trip time from the browser's last report block that
	// echoed one of our sender reports (0: none yet).
	rtt time.Duration
}

// newLeg makes the Call of a PeerConnection: its track to the browser, and
// the browser's track read once it arrives.
func newLeg(pc *webrtc.PeerConnection, id string, log *slog.Logger) (*Call, error) {
	local, err := webrtc.NewTrackLocalStaticRTP(opusCapability(), "audio", "voxgate")
	if err != nil {
		return nil, err
	}
	sender, err := pc.AddTrack(local)
	if err != nil {
		return nil, err
	}
	c := &Call{id: id, log: log, pc: pc, out: newRTPSender(local), done: make(chan struct{})}
	go func() { // read RTCP so the interceptors work, and keep the browser's loss reports
		buf := make([]byte, 1500)
		for {
			n, _, err := sender.Read(buf)
			if err != nil {
				return
			}
			c.readReports(buf[:n])
		}
	}()
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { c.onTrack(t) })
	return c, nil
}

// OnDTMF sets the function called for each digit the page sends (its
// keypad); without one the page is told this call takes no DTMF.
func (c *Call) OnDTMF(f func(digit rune)) {
	c.mu.Lock()
	c.onDTMF = f
	c.mu.Unlock()
}

// SendDTMF shows digits the far end sent on the page (a "dtmf" message).
func (c *Call) SendDTMF(digits string) error {
	if !validDigits(digits) {
		return ErrBadDigits
	}
	select {
	case <-c.done:
		return ErrCallEnded
	default:
	}
	c.send(Message{Type: "dtmf", ID: c.id, Digits: digits})
	return nil
}

// validDigits reports whether s is 1 to 32 DTMF digits (0-9 * # A-D).
func validDigits(s string) bool {
	return s != "" && len(s) <= 32 && strings.Trim(s, dtmfDigits) == ""
}

// ID identifies the call: the user and the page's call id.
func (c *Call) ID() string { return c.id }

// User is the signed-in user who placed the call.
func (c *Call) User() string { return c.user }

// Caller is how the caller is shown and matched: the signed-in user (a
// guest's display name).
func (c *Call) Caller() string { return c.user }

// GuestRoom is the room of a guest link's call: it joins that room
// directly, without the dialplan or a PIN. "" for a signed-in user's call.
func (c *Call) GuestRoom() string { return c.guestRoom }

// Dialed is the number the browser dialled.
func (c *Call) Dialed() string { return c.dialed }

// Codec is Opus at 48 kHz, the browser's codec.
func (c *Call) Codec() audio.Codec { return browserCodec }

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.done }

// EndReason says why the call ended.
func (c *Call) EndReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

func (c *Call) onTrack(t *webrtc.TrackRemote) {
	if t.Kind() != webrtc.RTPCodecTypeAudio {
		return
	}
	c.trackOnce.Do(func() { go c.readTrack(t) })
}

// SetPacketHandler makes the call hand each RTP packet from the browser to
// h, on the goroutine that reads the track (nil: drop them).
func (c *Call) SetPacketHandler(h audio.PacketHandler) { c.packets.Set(h) }

// readTrack pushes the browser's packets to the handler until the track
// ends (the PeerConnection closes when the call ends).
func (c *Call) readTrack(t *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.log.Debug("browser track ended", "error", err)
			}
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		c.recvMu.Lock()
		c.recv.Update(pkt.SequenceNumber, pkt.Timestamp, pkt.SSRC, time.Now(), 48000)
		c.recvMu.Unlock()
		c.packets.Deliver(pkt.SequenceNumber, pkt.Timestamp, pkt.SSRC, pkt.Payload)
	}
}

// WritePayload sends one Opus frame of samples (48 kHz units) to the browser.
// The RTP timestamp advances by samples, so frames the bridge skipped leave
// their gap in the clock. It does not allocate.
func (c *Call) WritePayload(payload []byte, samples uint32) error {
	select {
	case <-c.done:
		return ErrCallEnded
	default:
	}
	return c.out.write(payload, samples)
}

// Answer tells the page the call is answered (media already flows).
func (c *Call) Answer(context.Context) error {
	select {
	case <-c.done:
		return ErrCallEnded
	default:
	}
	c.send(Message{Type: "answered", ID: c.id})
	return nil
}

// Notify sends a room event to the page ("joined", "left", "kicked",
// "talking", "stopped-talking", "muted", "unmuted") about one participant.
// The muted state goes with the events that set it (joined, muted,
// unmuted).
func (c *Call) Notify(typ, room string, p api.Participant) {
	m := Message{Type: typ, ID: c.id, Room: room, Name: p.Name, Leg: p.Leg, Kind: p.Kind, Moderator: p.Moderator}
	if typ == "joined" || typ == "muted" || typ == "unmuted" {
		muted := p.Muted
		m.Muted = &muted
	}
	c.send(m)
}

// Participants sends the page who is in its room.
func (c *Call) Participants(room string, people []api.Participant) {
	names := make([]string, len(people))
	for i, p := range people {
		names[i] = p.Name
	}
	c.send(Message{Type: "participants", ID: c.id, Room: room, Names: names, People: people})
}

// Ringing tells the page the far end rings.
func (c *Call) Ringing() error {
	c.send(Message{Type: "ringing", ID: c.id})
	return nil
}

// Reject ends an unanswered call with a reason shown on the page.
func (c *Call) Reject(status int, reason string) {
	c.endWith(reason, status)
}

// Hangup ends the call: the far end hung up, or voxgate ended the call
// (a kick, the end of a prompt or of the conference).
func (c *Call) Hangup(context.Context) { c.end("the other side hung up") }

// HangupBecause ends the call with a reason the page shows (voxgate
// ended it: "removed by a moderator").
func (c *Call) HangupBecause(_ context.Context, reason string) { c.end(reason) }

func (c *Call) end(reason string) { c.endWith(reason, 0) }

// endWith ends the call; code is the SIP status of a refused call (0: none).
func (c *Call) endWith(reason string, code int) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.reason = reason
		c.mu.Unlock()
		close(c.done)
		_ = c.pc.Close()
		c.send(Message{Type: "ended", ID: c.id, Reason: reason, Code: code})
		r := c.ReceiveReport()
		c.log.Info("browser call ended", "reason", reason, "received", r.Received, "lost", r.Lost, "jitter", r.Jitter)
	})
}

// readReports keeps the fraction lost of the browser's receiver reports
// about our stream (about one RTCP compound packet per second).
func (c *Call) readReports(b []byte) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	for _, p := range pkts {
		var blocks []rtcp.ReceptionReport
		switch r := p.(type) {
		case *rtcp.ReceiverReport:
			blocks = r.Reports
		case *rtcp.SenderReport:
			blocks = r.Reports
		}
		for _, b := range blocks {
			c.recvMu.Lock()
			c.remoteLoss = float64(b.FractionLost) / 256
			if rtt, ok := audio.RTTFromReport(time.Now(), b.LastSenderReport, b.Delay); ok {
				c.rtt = rtt // pion's sender interceptor sends the SRs it echoes
			}
			c.recvMu.Unlock()
		}
	}
}

// RTT is the round-trip time to the browser from RTCP (0: not measured
// yet).
func (c *Call) RTT() time.Duration {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	return c.rtt
}

// RemoteLoss is the fraction of our packets the browser reported lost in
// its last RTCP receiver report.
func (c *Call) RemoteLoss() float64 {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	return c.remoteLoss
}

// ReceiveReport is what arrived from the browser: packets, loss and
// jitter as RFC 3550 counts them.
func (c *Call) ReceiveReport() audio.ReceiveReport {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	return c.recv.Report()
}

// renegotiate applies a new offer from the page (an ICE restart, or a change
// of its tracks) and prepares the answer.
func (c *Call) renegotiate(offer string) error {
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return err
	}
	answer, err := c.pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	return c.pc.SetLocalDescription(answer)
}
