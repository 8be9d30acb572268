package webclient

import (
	"net"
	"net/http"

	"github.com/voxgate/voxgate/internal/config"
)

// WithSIPWebSocket serves h, package sip's SIP over WebSocket handler, on
// /sip when Config.SIPWebSocket is on. The handler checks the handshake
// (subprotocol "sip") and takes the connection over; over HTTPS it is wss.
func WithSIPWebSocket(h http.Handler) Option { return func(s *Server) { s.sipWS = h } }

func (s *Server) mountSIPWebSocket(mux *http.ServeMux) {
	if !s.cfg.SIPWebSocket || s.sipWS == nil {
		return
	}
	mux.Handle("GET /sip", s.sipWS) // a GET that is not a WebSocket upgrade gets 426
}

// validateSIPWebSocket refuses SIP over plain WebSocket off loopback:
// browsers give pages off localhost a microphone only over HTTPS, and such
// a page may only open wss://, so ws:// there could only carry passwords'
// digests and calls in the clear.
func (c *Config) validateSIPWebSocket() error {
	if !c.SIPWebSocket || c.TLSCert != "" {
		return nil
	}
	host, _, _ := net.SplitHostPort(c.Listen)
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return config.Fieldf("sip_websocket", "needs tls_cert and tls_key when listen (%s) is not a loopback address: browsers open wss:// from pages off localhost", c.Listen)
}
