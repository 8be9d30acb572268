package audio

import (
	"errors"
	"slices"
	"strings"
	"sync"
)

// CodecEncoder is a registered codec's encoder: one per stream, since a
// codec may keep state between frames.
type CodecEncoder interface {
	Encoder
	// String names the encoder for pipeline dumps.
	String() string
}

// StateCopier is a CodecEncoder that can take over the history of another
// encoder of the same codec and rate: a leg that moves from a shared
// encoder to its own continues the stream its decoder has been following,
// without a glitch. Encoders of stateless codecs (G.711) need not have it.
type StateCopier interface {
	CopyStateFrom(src CodecEncoder) error
}

// FECDecoder is a CodecDecoder that can rebuild a lost packet from the
// forward error correction carried in the packet after it (Opus in-band
// FEC, RFC 7587 3.3): better than concealment when that packet is here.
type FECDecoder interface {
	DecodeFEC(dst []int16, next []byte, samples int) ([]int16, error)
}

// LossAware is a CodecEncoder that tunes its redundancy to the loss the
// far end reports (percent, from RTCP receiver reports).
type LossAware interface {
	SetPacketLoss(percent int) error
}

// ErrStateCopy is returned when an encoder cannot take another's state.
var ErrStateCopy = errors.New("encoder state cannot be copied")

// CodecDecoder is a registered codec's decoder with the loss concealment
// that suits the codec (pitch repetition for a waveform codec, the codec's
// own PLC for Opus). One per stream.
type CodecDecoder interface {
	Decoder
	// Conceal appends samples of concealment for a lost packet to dst. On
	// an error the caller plays silence instead.
	Conceal(dst []int16, samples int) ([]int16, error)
	// String names the decoder for pipeline dumps.
	String() string
}

// CodecInfo describes an RTP audio codec voxgate can transcode: what SDP
// and the browser page signal, and how to make its encoder and decoder.
type CodecInfo struct {
	// Name is the encoding name as SDP writes it: "PCMU", "PCMA", "G722",
	// "opus". Lookups ignore case.
	Name string
	// PayloadType is the static RTP payload type, or the dynamic one (96 and
	// up) voxgate offers.
	PayloadType uint8
	// Rate is the RTP clock rate (G.722's is 8000 although its audio is
	// sampled at 16 kHz, RFC 3551; Opus's is always 48000, RFC 7587).
	Rate int
	// Channels is what rtpmap signals (2 for Opus, RFC 7587); the audio is
	// mono either way.
	Channels int
	// PCMRate is the codec's own sample rate, what its decoder produces and
	// its encoder consumes unless the codec runs at any mixing rate.
	PCMRate int
	// Fmtp is what voxgate asks of the peer's encoder, or "".
	Fmtp string
	// Silent, when not nil, reports whether a payload is silence or close
	// to it (DTX, comfort noise): where the jitter buffer drops or
	// stretches least audibly, and what a room need not decode.
	Silent func(payload []byte) bool
	// Inactive, when not nil, reports whether the encoder flagged a payload
	// as carrying no voice (Opus: SILK's VAD flags clear), whatever its
	// size. A leg that is already silent stays silent on such payloads (an
	// Opus DTX refresh frame at 48 kHz is some 60 bytes); one that talks
	// goes silent only on Silent payloads.
	Inactive func(payload []byte) bool
	// DTX: receivers of the codec accept gaps in the stream while the
	// sender is silent (discontinuous transmission, RFC 7587 3.1.3), so a
	// room sends a silent listener one packet per 400 ms, not 50.
	DTX bool
	// NewEncoder returns an encoder for PCM at rate when the codec can run
	// at rate, else at PCMRate; the encoder's Rate says which.
	NewEncoder func(rate int) (CodecEncoder, error)
	// NewDecoder returns a decoder producing PCM at rate when the codec can
	// run at rate, else at PCMRate; the decoder's Rate says which.
	NewDecoder func(rate int) (CodecDecoder, error)
}

// Codec is the codec as a leg reports it.
func (c CodecInfo) Codec() Codec { return Codec{Name: c.Name, Rate: c.Rate} }

// Dynamic reports whether the codec has no static payload type.
func (c CodecInfo) Dynamic() bool { return c.PayloadType >= 96 }

var registry struct {
	mu     sync.RWMutex
	codecs []CodecInfo
}

// RegisterCodec adds a codec to the registry; packages call it from init.
// It panics on a second codec of the same name or on an incomplete
// CodecInfo, as a programming error.
func RegisterCodec(c CodecInfo) {
	if c.Name == "" || c.Rate <= 0 || c.PCMRate <= 0 || c.NewEncoder == nil || c.NewDecoder == nil {
		panic("audio: RegisterCodec of an incomplete CodecInfo " + c.Name)
	}
	c.Channels = max(c.Channels, 1)
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if slices.ContainsFunc(registry.codecs, func(x CodecInfo) bool { return strings.EqualFold(x.Name, c.Name) }) {
		panic("audio: RegisterCodec called twice for " + c.Name)
	}
	registry.codecs = append(registry.codecs, c)
}

// LookupCodec returns the registered codec of that name, ignoring case.
func LookupCodec(name string) (CodecInfo, bool) {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	for _, c := range registry.codecs {
		if strings.EqualFold(c.Name, name) {
			return c, true
		}
	}
	return CodecInfo{}, false
}

// Codecs returns the registered codecs in the order they registered.
func Codecs() []CodecInfo {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	return slices.Clone(registry.codecs)
}

// CodecNames returns the registered codecs' names as a phrase for error
// messages: "PCMU, PCMA, G722 or opus".
func CodecNames() string {
	var names []string
	for _, c := range Codecs() {
		names = append(names, c.Name)
	}
	return orList(names)
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
