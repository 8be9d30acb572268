package sip

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
)

// CascadeHeader marks an INVITE that another node of a cluster sends to
// the node hosting a room (a cascade leg); its value names the room. It is
// trusted only from the addresses WithCascadeFrom accepts: from anyone
// else it is ignored and the INVITE is classified as any other.
const CascadeHeader = "X-Voxgate-Room"

// WithCascadeFrom trusts CascadeHeader from the source addresses trusted
// accepts (the live nodes of the cluster). It is asked on the SIP stack's
// goroutine: it must answer from memory.
func WithCascadeFrom(trusted func(ip string) bool) Option {
	return func(s *Server) error {
		s.cascadeFrom = trusted
		return nil
	}
}

// cascadeOrigin tells a trusted cascade leg: Origin{Kind: "cascade", Name:
// room}. bad: a node sent a room name no room can have.
func (s *Server) cascadeOrigin(req *sip.Request) (o Origin, ok, bad bool) {
	if s.cascadeFrom == nil {
		return Origin{}, false, false
	}
	h := req.GetHeader(CascadeHeader)
	if h == nil {
		return Origin{}, false, false
	}
	if !s.cascadeFrom(sourceIP(req)) {
		s.log.Debug("cascade header ignored: not from a node of the cluster", "source", req.Source())
		return Origin{}, false, false
	}
	room, err := cascadeRoom(h.Value())
	if err != nil {
		s.log.Warn("cascade leg refused", "source", req.Source(), "error", err)
		return Origin{}, false, true
	}
	return Origin{Kind: "cascade", Name: room}, true, false
}

// cascadeRoom checks the room name of CascadeHeader: 1 to 128 bytes of
// UTF-8, no control characters, no path separators, not "." or "..".
func cascadeRoom(v string) (string, error) {
	room := strings.TrimSpace(v)
	switch {
	case room == "" || len(room) > 128:
		return "", fmt.Errorf("%s: a room name of 1 to 128 bytes", CascadeHeader)
	case !utf8.ValidString(room) || strings.ContainsFunc(room, unicode.IsControl):
		return "", fmt.Errorf("%s: not UTF-8 text", CascadeHeader)
	case strings.ContainsAny(room, "/\\") || room == "." || room == "..":
		return "", fmt.Errorf("%s: %q is not a room name", CascadeHeader, room)
	}
	return room, nil
}

// plainUser is a room name that can stand as a request URI's user as is.
var plainUser = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// DialNode calls room on the cluster node at addr (sip:host:port, its
// advertised address) as callerID: a cascade leg, marked with
// CascadeHeader, that the node puts straight into the room it hosts.
func (s *Server) DialNode(ctx context.Context, addr, room, callerID string) (*Call, error) {
	var uri sip.Uri
	if err := sip.ParseUri(addr, &uri); err != nil || uri.Host == "" {
		return nil, fmt.Errorf("node address %q: not sip:host:port", addr)
	}
	uri.User = "room"
	if plainUser.MatchString(room) {
		uri.User = room
	}
	from := sip.Uri{Scheme: "sip", User: callerID, Host: s.cfg.Domain}
	o := DialOptions{headers: []sip.Header{sip.NewHeader(CascadeHeader, room)}}
	return s.dial(ctx, uri, from, room, Origin{Kind: "cascade", Name: room}, o)
}
