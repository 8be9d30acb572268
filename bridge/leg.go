// Package bridge owns rooms and the media loop: it connects media legs to a
// room or to each other. It knows legs only through the Leg interface, which
// sip.Call and webclient.Call satisfy without importing this package. Per
// leg it runs a jitter buffer, a decoder with loss concealment and a
// resampler to the room rate; per room one 20 ms clock mixes (mix-minus) and
// encodes, once per codec for everyone who hears the same mix. It knows
// nothing of SIP, browsers or the dialplan.
package bridge

import "github.com/voxgate/voxgate/audio"

// Leg is one party's audio as RTP media.
type Leg interface {
	// ID identifies the leg in logs and events.
	ID() string
	// Codec is the negotiated codec and RTP clock rate.
	Codec() audio.Codec
	// SetPacketHandler makes the leg hand every received RTP packet to h,
	// from the goroutine that read it (nil: received packets are dropped).
	// Once it returns, the previous handler is no longer called.
	SetPacketHandler(h audio.PacketHandler)
	// WritePayload sends one encoded frame covering samples RTP clock
	// units. The room calls it from its clock, so it must not block (a UDP
	// send); a leg whose writes may wait (a TCP or TURN path, a peer's
	// lock) says so with QueuedWriter. payload is only valid during the call.
	// An empty payload sends nothing but advances the RTP clock: a gap in
	// silence (DTX); the next packet then starts a talkspurt (marker bit).
	WritePayload(payload []byte, samples uint32) error
	// Done is closed when the leg has ended.
	Done() <-chan struct{}
}

// QueuedWriter is implemented by legs whose writes may block: the room then
// writes to them from a goroutine of their own through a bounded,
// drop-oldest queue, so a stuck peer never delays the room's clock.
type QueuedWriter interface {
	QueueWrites() bool
}

// ReceiveReporter is implemented by legs that count the RTP they receive
// (RFC 3550, at the socket, telephone events included). A room shows their
// loss and jitter, so the numbers match the leg's RTCP reports and logs.
type ReceiveReporter interface {
	ReceiveReport() audio.ReceiveReport
}

// RemoteLossReporter is implemented by legs that read the far end's RTCP
// receiver reports: the fraction (0 to 1) of our packets it lost lately. A
// room tunes the in-band FEC of the leg's encoder to it.
type RemoteLossReporter interface {
	RemoteLoss() float64
}

// DTXReceiver is implemented by legs that say whether their far end takes
// gaps in the stream while nobody talks (RFC 7587 usedtx=1). Legs without
// it are sent gaps when their codec allows DTX.
type DTXReceiver interface {
	AcceptsDTX() bool
}

// DTMFSender is implemented by legs that send digits in their media stream
// (RFC 4733): while one is going out, the room writes to the leg every
// tick, gaps too, so the digit's packets keep their 20 ms pace.
type DTMFSender interface {
	SendingDTMF() bool
}

// ComfortNoiseReceiver is implemented by legs whose far end took comfort
// noise (RFC 3389) with a codec that has no DTX of its own (G.711): a room
// sends them gaps while they hear silence, with the codec's silent frame
// every 400 ms, which the leg sends as a comfort noise packet. A room whose
// legs all take gaps dozes.
type ComfortNoiseReceiver interface {
	ComfortNoise() bool
}

func takesCN(l Leg) bool {
	c, ok := l.(ComfortNoiseReceiver)
	return ok && c.ComfortNoise()
}

func acceptsDTX(l Leg) bool {
	d, ok := l.(DTXReceiver)
	return !ok || d.AcceptsDTX()
}

func queueWrites(l Leg) bool {
	q, ok := l.(QueuedWriter)
	return ok && q.QueueWrites()
}
