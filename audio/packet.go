package audio

import "sync"

// Codec names an RTP audio codec and its clock rate, as negotiated.
type Codec struct {
	Name string // "PCMU", "PCMA", "opus"
	Rate int    // RTP clock rate: 8000 for G.711, 48000 for Opus
}

// Packet is one received RTP packet's media: what legs hand to the bridge.
// Payload belongs to the leg and is reused for its next packet.
type Packet struct {
	Seq       uint16
	Timestamp uint32
	SSRC      uint32
	Payload   []byte
}

// PacketHandler takes a leg's received RTP packets (push-style ingress): the
// goroutine that read a packet from the socket calls HandlePacket directly,
// with no queue in between. It must not block, and must not keep p or its
// payload after it returns (copy what it needs).
type PacketHandler interface {
	HandlePacket(p *Packet)
}

// PacketHandlerFunc adapts a function to a PacketHandler.
type PacketHandlerFunc func(p *Packet)

// HandlePacket calls f(p).
func (f PacketHandlerFunc) HandlePacket(p *Packet) { f(p) }

// PacketDelivery is a leg's end of push-style ingress: it holds the current
// PacketHandler and hands it each received packet. Set and Deliver are
// serialized, so once Set returns the previous handler gets nothing more.
// The zero value drops packets.
type PacketDelivery struct {
	mu sync.Mutex
	h  PacketHandler
	p  Packet
}

// Set makes h the handler (nil: drop packets).
func (d *PacketDelivery) Set(h PacketHandler) {
	d.mu.Lock()
	d.h = h
	d.mu.Unlock()
}

// Deliver hands one packet to the handler, on the caller's goroutine; the
// handler sees payload only for the call.
func (d *PacketDelivery) Deliver(seq uint16, ts, ssrc uint32, payload []byte) {
	d.mu.Lock()
	if d.h != nil {
		d.p.Seq, d.p.Timestamp, d.p.SSRC, d.p.Payload = seq, ts, ssrc, payload
		d.h.HandlePacket(&d.p)
		d.p.Payload = nil
	}
	d.mu.Unlock()
}
