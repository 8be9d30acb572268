package sip

import "github.com/voxgate/voxgate/audio"

// consume hands packets to f the way the bridge takes them now: pushed
// from the reading goroutine.
func consume(s *rtpSession, f func(*audio.Packet)) func() {
	s.setHandler(audio.PacketHandlerFunc(f))
	return func() { s.setHandler(nil) }
}
