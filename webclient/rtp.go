package webclient

import (
	"math/rand/v2"
	"sync"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Per-packet work on a browser leg allocates nothing on voxgate's side, in
// either direction (TestLegPacketAllocs):
//
//   - egress: WritePayload numbers the frame itself (rtpSender) and hands
//     pion one reused packet; pion's TrackLocalStaticSample would packetize
//     each frame into fresh packets and a copy of the payload.
//   - ingress: the interceptors that read every received packet (RTCP
//     reports, TWCC) get its header parsed once into a header reused per
//     stream (headerCache); pion starts each packet with no attributes, so
//     each of them would make a map and a header for every packet.

// rtpSender numbers voxgate's Opus to one browser: sequence numbers and
// timestamps from random starts, the marker bit on the first packet and on
// the first after a gap in what was sent.
type rtpSender struct {
	mu    sync.Mutex
	track *webrtc.TrackLocalStaticRTP
	pkt   rtp.Packet // the next packet's header; pion sets SSRC and payload type
}

func newRTPSender(track *webrtc.TrackLocalStaticRTP) *rtpSender {
	return &rtpSender{track: track, pkt: rtp.Packet{Header: rtp.Header{Version: 2, Marker: true,
		SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32()}}}
}

// write sends one frame covering samples clock units. An empty frame sends
// nothing but advances the clock (a gap: the next packet has the marker).
// The clock advances by samples whether or not the packet went out.
func (s *rtpSender) write(payload []byte, samples uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(payload) == 0 {
		s.pkt.Timestamp += samples
		s.pkt.Marker = true
		return nil
	}
	s.pkt.Payload = payload
	err := s.track.WriteRTP(&s.pkt) // copies the header; the payload is encrypted before it returns
	s.pkt.Payload = nil
	s.pkt.SequenceNumber++
	s.pkt.Timestamp += samples
	s.pkt.Marker = false
	return err
}

// registerInterceptors registers what a browser leg needs on m and r: the
// RTCP sender and receiver reports (loss, jitter, round-trip time), and TWCC
// feedback on the browser's audio (its send-side bandwidth estimate), with
// headerCache under them. Not pion's other defaults: NACK and the simulcast
// header extensions are for video, and the stats interceptor only feeds
// PeerConnection.GetStats (voxgate never calls it) while cloning every
// received header, extensions and all.
func registerInterceptors(m *webrtc.MediaEngine, r *interceptor.Registry) error {
	r.Add(&headerCache{}) // first added: nearest the SRTP stream, so the others see its header
	recv, err := report.NewReceiverInterceptor()
	if err != nil {
		return err
	}
	send, err := report.NewSenderInterceptor()
	if err != nil {
		return err
	}
	r.Add(recv)
	r.Add(send)
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, webrtc.RTPCodecTypeAudio)
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return err
	}
	fb, err := twcc.NewSenderInterceptor()
	if err != nil {
		return err
	}
	r.Add(fb)
	return nil
}

// rtpHeaderKey is the key under which pion's interceptors keep a packet's
// parsed header in its attributes. pion does not export it: it is taken from
// a map GetRTPHeader filled (nil if that ever stops working: then headerCache
// does nothing and the allocation test fails).
var rtpHeaderKey = func() any {
	a := interceptor.Attributes{}
	if _, err := a.GetRTPHeader([]byte{0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		return nil
	}
	for k := range a {
		return k
	}
	return nil
}()

// headerCache is an interceptor that parses each received RTP packet's
// header into one header per stream and returns it in one attributes map per
// stream, so that the interceptors above it find the header there instead of
// each making a map and parsing a new header. Both are valid until the
// stream's next read: a stream is read by one goroutine (Call.readTrack),
// and the interceptors use the header before the read returns.
type headerCache struct{ interceptor.NoOp }

// NewInterceptor makes headerCache its own factory (it has no state but its
// streams').
func (h *headerCache) NewInterceptor(string) (interceptor.Interceptor, error) { return h, nil }

func (*headerCache) BindRemoteStream(_ *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	if rtpHeaderKey == nil {
		return reader
	}
	attr := interceptor.Attributes{}
	hdr := &rtp.Header{}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := reader.Read(b, a)
		if err != nil || a != nil {
			return n, a, err
		}
		if _, err := hdr.Unmarshal(b[:n]); err != nil {
			return n, nil, nil // the interceptors above report it
		}
		attr[rtpHeaderKey] = hdr
		return n, attr, nil
	})
}
