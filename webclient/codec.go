package webclient

import (
	"github.com/pion/webrtc/v4"

	"github.com/voxgate/voxgate/audio/opus"
)

// Browsers speak Opus. Its entry in the audio codec registry gives the
// payload type, RTP clock, channels and fmtp that pion negotiates, and the
// codec a Call reports to the bridge.
var browserCodec = opus.Info.Codec()

// opusCapability is Opus as a pion track and media engine take it.
func opusCapability() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: uint32(opus.Info.Rate),
		Channels: uint16(opus.Info.Channels), SDPFmtpLine: opus.Info.Fmtp}
}

// opusParameters is Opus as the media engine registers it.
func opusParameters() webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: opusCapability(), PayloadType: webrtc.PayloadType(opus.Info.PayloadType)}
}

// telephoneEventMime is RFC 4733's telephone-event as pion names it.
const telephoneEventMime = "audio/telephone-event"

// telephoneEventParameters is RFC 4733 telephone-event at Opus's clock, as
// browsers offer it (Chromium: telephone-event/48000 beside Opus) and send
// RTCRtpSender.dtmf's digits with.
func telephoneEventParameters() webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: telephoneEventMime,
		ClockRate: uint32(opus.Info.Rate), SDPFmtpLine: "0-16"}, PayloadType: 101}
}
