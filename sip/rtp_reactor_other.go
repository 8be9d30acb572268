//go:build !linux

package sip

// reactor reads RTP sockets where epoll exists (Linux); elsewhere each
// session reads its socket with a goroutine of its own.
type reactor struct{}

func pickReactor() *reactor             { return nil }
func (r *reactor) add(*rtpSession) bool { return false }
func (r *reactor) remove(*rtpSession)   {}
