package audio

// Codec names an RTP audio codec and its clock rate, as negotiated.
type Codec struct {
	Name string // "PCMU", "PCMA", "opus"
	Rate int    // RTP clock rate: 8000 for G.711, 48000 for Opus
}

// Packet is one received RTP packet's media: what legs hand to the bridge.
// Payload is owned by the receiver of ReadPacket and reused on the next call.
type Packet struct {
	Seq       uint16
	Timestamp uint32
	SSRC      uint32
	Payload   []byte
}
