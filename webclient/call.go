package webclient

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/voxgate/voxgate/audio"
)

// ErrCallEnded is returned by a call's media methods after it ended.
var ErrCallEnded = errors.New("call ended")

// Call is one browser call: a pion PeerConnection whose received Opus is
// handed over packet by packet and whose sent Opus comes from WritePayload.
// It is a media leg for the bridge.
type Call struct {
	id     string
	user   string
	dialed string
	log    *slog.Logger
	pc     *webrtc.PeerConnection
	local  *webrtc.TrackLocalStaticSample
	send   func(Message)
	cands  *candidateGate // ICE candidates wait for their answer

	trackOnce sync.Once
	trackCh   chan *webrtc.TrackRemote
	track     *webrtc.TrackRemote
	rtpBuf    []byte
	pkt       rtp.Packet

	done    chan struct{}
	endOnce sync.Once
	mu      sync.Mutex
	reason  string
	muted   bool
	onDTMF  func(digits string) error
}

// OnDTMF sets where digits the page sends go (RFC 4733 toward a phone);
// without it the page is told DTMF is not supported for this call.
func (c *Call) OnDTMF(f func(digits string) error) {
	c.mu.Lock()
	c.onDTMF = f
	c.mu.Unlock()
}

// ID identifies the call: the user and the page's call id.
func (c *Call) ID() string { return c.id }

// User is the signed-in user who placed the call.
func (c *Call) User() string { return c.user }

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
	c.trackOnce.Do(func() { c.trackCh <- t })
}

// ReadPacket blocks until the next RTP packet from the browser.
func (c *Call) ReadPacket(ctx context.Context, p *audio.Packet) error {
	if c.track == nil {
		select {
		case c.track = <-c.trackCh:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return ErrCallEnded
		}
	}
	for {
		_ = c.track.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _, err := c.track.Read(c.rtpBuf)
		if err != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-c.done:
				return ErrCallEnded
			default:
			}
			if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				continue
			}
			return err
		}
		if err := c.pkt.Unmarshal(c.rtpBuf[:n]); err != nil {
			continue
		}
		p.Seq, p.Timestamp, p.SSRC = c.pkt.SequenceNumber, c.pkt.Timestamp, c.pkt.SSRC
		p.Payload = append(p.Payload[:0], c.pkt.Payload...)
		return nil
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// WritePayload sends one Opus frame of samples (48 kHz units) to the browser.
func (c *Call) WritePayload(payload []byte, samples uint32) error {
	select {
	case <-c.done:
		return ErrCallEnded
	default:
	}
	return c.local.WriteSample(media.Sample{Data: payload, Duration: time.Duration(samples) * time.Second / 48000})
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

// Notify sends a room event to the page: "joined", "left", "talking" or
// "stopped-talking", about the participant called name.
func (c *Call) Notify(typ, room, name string) {
	c.send(Message{Type: typ, ID: c.id, Room: room, Name: name})
}

// Participants sends the page who is in its room.
func (c *Call) Participants(room string, names []string) {
	c.send(Message{Type: "participants", ID: c.id, Room: room, Names: names})
}

// Ringing tells the page the far end rings.
func (c *Call) Ringing() { c.send(Message{Type: "ringing", ID: c.id}) }

// Reject ends an unanswered call with a reason shown on the page.
func (c *Call) Reject(status int, reason string) {
	c.end(reason)
}

// Hangup ends the call.
func (c *Call) Hangup(context.Context) { c.end("hung up by voxgate") }

func (c *Call) end(reason string) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.reason = reason
		c.mu.Unlock()
		close(c.done)
		_ = c.pc.Close()
		c.send(Message{Type: "ended", ID: c.id, Reason: reason})
		c.log.Info("browser call ended", "reason", reason)
	})
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
