package audio

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
