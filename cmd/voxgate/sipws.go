package main

import (
	"context"
	"log/slog"

	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/webclient"
)

// sipWebRTC gives package sip the web server's WebRTC (pion, with the web
// side's ICE settings) for browsers' calls over SIP over WebSocket. The web
// server is built after the SIP server (it serves the SIP server's
// WebSocket handler), so web is set once both are built, before either
// starts.
type sipWebRTC struct {
	on  bool
	web *webclient.Server
}

var (
	_ sip.WebRTC      = (*sipWebRTC)(nil)
	_ sip.WebRTCMedia = (*webclient.SIPPeer)(nil)
)

// sipWebSocket wires SIP over WebSocket when web.sip_websocket is on.
func sipWebSocket(cfg *Config, w *wiring) *sipWebRTC {
	a := &sipWebRTC{on: cfg.Web.SIPWebSocket}
	if a.on {
		w.sipOpts = append(w.sipOpts, sip.WithWebRTC(a))
	}
	return a
}

// handler mounts the SIP server's WebSocket handler on the web server.
func (a *sipWebRTC) handler(srv *sip.Server) []webclient.Option {
	if !a.on {
		return nil
	}
	return []webclient.Option{webclient.WithSIPWebSocket(srv.WebSocketHandler())}
}

func (a *sipWebRTC) NewMedia(ctx context.Context, log *slog.Logger) (sip.WebRTCMedia, error) {
	p, err := a.web.SIPMedia().NewMedia(ctx, log)
	if err != nil {
		return nil, err
	}
	return p, nil
}
