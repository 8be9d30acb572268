package bridge

import (
	"encoding/binary"
	"errors"
	"sync"

	"github.com/voxgate/voxgate/audio"
)

// peerCodec is the bridge's own codec of a peer in a room: signed 16-bit
// little-endian PCM at the codec's rate. It never goes on a wire, so it is
// not in the audio registry (SDP never offers it).
const peerCodec = "x-voxgate-pcm"

// peerCodecInfo describes peerCodec at rate: its encoder and decoder run
// at that rate whatever the room mixes at, so the room resamples to and
// from the peer's rate as for any leg.
func peerCodecInfo(rate int) audio.CodecInfo {
	return audio.CodecInfo{Name: peerCodec, PayloadType: 127, Rate: rate, Channels: 1, PCMRate: rate,
		NewEncoder: func(int) (audio.CodecEncoder, error) { return pcmCodec{rate}, nil },
		NewDecoder: func(int) (audio.CodecDecoder, error) { return pcmCodec{rate}, nil },
	}
}

// pcmCodec encodes and decodes peerCodec.
type pcmCodec struct{ r int }

func (c pcmCodec) Encode(dst []byte, pcm []int16) ([]byte, error) {
	for _, v := range pcm {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(v))
	}
	return dst, nil
}

func (c pcmCodec) Decode(dst []int16, p []byte) ([]int16, error) {
	for i := 0; i+1 < len(p); i += 2 {
		dst = append(dst, int16(binary.LittleEndian.Uint16(p[i:])))
	}
	return dst, nil
}

var errNoConceal = errors.New("PCM has no concealment")

func (c pcmCodec) Conceal(dst []int16, _ int) ([]int16, error) { return dst, errNoConceal }
func (c pcmCodec) Rate() int                                   { return c.r }
func (c pcmCodec) String() string                              { return "pcm" }

// JoinPeer adds peer (a bot behind a media stream) to the room as a
// participant called id: every tick it is handed what it hears, the room's
// mix without itself (mix-minus), at its rate, and one frame of what it
// says is taken and mixed into the room. Its audio is paced by the room's
// clock; what waits to be played is the peer's to bound. It leaves when
// the peer is done, or by Leave(id).
func (r *Room) JoinPeer(id string, peer PipePeer, o JoinOptions) error {
	rate := peer.Rate()
	if err := audio.CheckMixRate(rate); err != nil {
		return err
	}
	l := &peerLeg{id: id, peer: peer, rate: rate, said: make([]int16, rate/50), mix: make([]int16, 0, rate/50),
		payload: make([]byte, 0, rate/25)}
	l.pkt.SSRC = 1
	return r.Join(l, o)
}

// Peers is how many of the room's participants are peers (JoinPeer):
// a room whose every participant is a peer has nobody in it.
func (r *Room) Peers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.members {
		if _, ok := m.leg.(*peerLeg); ok {
			n++
		}
	}
	return n
}

// peerLeg is a peer as a room leg: the room's writes (what it hears) go to
// the peer, and each write takes the peer's next frame, which goes back in
// as a packet on the same tick.
type peerLeg struct {
	id   string
	peer PipePeer
	rate int

	mu      sync.Mutex
	h       audio.PacketHandler
	mix     []int16 // what the peer hears this tick: the room without it
	said    []int16 // what it says
	payload []byte
	pkt     audio.Packet
}

func (l *peerLeg) ID() string            { return l.id }
func (l *peerLeg) Codec() audio.Codec    { return audio.Codec{Name: peerCodec, Rate: l.rate} }
func (l *peerLeg) Done() <-chan struct{} { return l.peer.Done() }
func (l *peerLeg) String() string        { return "peer " + l.id }
func (l *peerLeg) SetPacketHandler(h audio.PacketHandler) {
	l.mu.Lock()
	l.h = h
	l.mu.Unlock()
}

// WritePayload is the room's write, once per tick from its clock.
func (l *peerLeg) WritePayload(payload []byte, samples uint32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mix, _ = pcmCodec{}.Decode(l.mix[:0], payload)
	var said []int16
	if l.peer.Take(l.said) {
		said = l.said
	} else {
		clear(l.said)
	}
	// The room is what "says" to the peer (inbound); the peer's own audio,
	// as the room hears it, is outbound.
	l.peer.Put(l.mix, said)
	// Silence too: the jitter buffer sees one packet per tick, steadily.
	l.payload, _ = pcmCodec{}.Encode(l.payload[:0], l.said)
	l.pkt.Seq++
	l.pkt.Timestamp += uint32(l.rate / 50)
	l.pkt.Payload = l.payload
	if l.h != nil {
		l.h.HandlePacket(&l.pkt)
	}
	return nil
}
